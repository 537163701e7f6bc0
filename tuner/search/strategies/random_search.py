"""Uniform random draws in the search space (Optuna's RandomSampler): the floor any strategy must beat."""

from __future__ import annotations

from deltatune.search.strategies._base import SamplerStrategy

__all__ = ["RandomStrategy"]


class RandomStrategy(SamplerStrategy):
    """Random search; its sampler is the base class's seeded :class:`optuna.samplers.RandomSampler`."""

    name = "random"
    description = "Optuna RandomSampler"
