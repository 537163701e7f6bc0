"""Optuna's NSGA-II sampler as a strategy (constrained domination handles the budget)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from deltatune.search.strategies._base import SamplerStrategy

if TYPE_CHECKING:
    import optuna

__all__ = ["NSGAIIStrategy"]


class NSGAIIStrategy(SamplerStrategy):
    """NSGA-II with a small population, so that short searches get past the random first generation."""

    name = "nsga2"
    description = "Optuna NSGAIISampler (population 8)"
    population_size: ClassVar[int] = 8

    @classmethod
    def random_startup(cls, n_trials: int | None) -> int:
        """NSGA-II's first generation, :data:`population_size` trials, is drawn at random."""
        return cls.population_size

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        import optuna

        return optuna.samplers.NSGAIISampler(seed=self.seed, population_size=self.population_size)
