"""Optuna's Gaussian-process sampler as a strategy.

In Optuna 5 ``GPSampler`` handles several objectives (log expected hypervolume improvement) and
constraints set with ``trial.set_constraint`` (a GP per constraint). Its cost grows quickly with the number
of parameters, so prefer ``--space group`` or ``global`` with it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from deltatune.search.strategies._base import SamplerStrategy

if TYPE_CHECKING:
    import optuna

__all__ = ["GPStrategy"]

log = logging.getLogger(__name__)


class GPStrategy(SamplerStrategy):
    """GPSampler with 8 random startup trials."""

    name = "gp"
    description = "Optuna GPSampler (logEHVI, constraint-aware; use with --space group/global)"
    #: random trials before the Gaussian process is fitted
    STARTUP: ClassVar[int] = 8

    @classmethod
    def random_startup(cls, n_trials: int | None) -> int:
        """The :data:`STARTUP` random trials GPSampler draws before it fits its model."""
        return cls.STARTUP

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        import optuna

        if self.space.dimension > 64:
            log.warning(
                "the GP sampler over %d parameters is slow; consider --space group or global",
                self.space.dimension,
            )
        return optuna.samplers.GPSampler(seed=self.seed, n_startup_trials=self.STARTUP)
