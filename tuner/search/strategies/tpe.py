"""Optuna's TPE sampler (its multi-objective default) as a strategy.

The budget reaches every sampler as ``trial.set_constraint`` (Optuna 5): TPE weights infeasible trials down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deltatune.search.strategies._base import SamplerStrategy

if TYPE_CHECKING:
    import optuna

__all__ = ["TPEStrategy"]


class TPEStrategy(SamplerStrategy):
    """Multivariate TPE with constant liar (safe with several workers on one study)."""

    name = "tpe"
    description = "Optuna TPESampler (multivariate, constant liar, 4-10 random startup trials)"

    @classmethod
    def random_startup(cls, n_trials: int | None) -> int:
        """Random draws before TPE models the front: a third of a short run, 10 (Optuna's default) at most,
        so a 12-trial run still spends most of its budget on modelled proposals; 4 at least."""
        return max(4, min(10, (n_trials or 30) // 3))

    def startup_trials(self) -> int:
        """:meth:`random_startup` of this run's trials."""
        return self.random_startup(self.n_trials)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        import optuna

        return optuna.samplers.TPESampler(
            seed=self.seed, multivariate=True, constant_liar=True, n_startup_trials=self.startup_trials()
        )
