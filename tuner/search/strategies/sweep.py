"""A single global threshold swept over its range: the simplest baseline a per-layer search must beat.

Trial ``k`` of ``n`` sets every layer to ``lo · (hi/lo)^(k/(n-1))`` and the input to the same position in
``[input_lo, input_hi]`` (log scale), dilation 1, mode ``max``. ``k`` counts the study's finished sweep
trials and ``n`` is those plus the trials this run adds, so a sweep interrupted and then finished
(``--finish``) measures the grid an uninterrupted one does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deltatune.delta.thresholds import ThresholdFile
from deltatune.search.strategies._base import Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    import optuna
    from optuna.trial import FrozenTrial

__all__ = ["GlobalSweepStrategy"]


class GlobalSweepStrategy(Strategy):
    """``n_trials`` log-spaced global thresholds, low to high (sequential: one worker)."""

    name = "sweep"
    description = "one global threshold, log-spaced over [lo, hi]"
    parallel = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        #: the next trial's index on the grid
        self.k = 0
        #: the grid's size: the trials of the sweep in all, earlier runs' included
        self.n = self.n_trials or 10

    def resume(self, done: Sequence[FrozenTrial]) -> None:
        """Start after the finished sweep trials of earlier runs, on a grid of those plus this run's."""
        self.k = len(done)
        self.n = self.k + (self.n_trials or 10)

    def exhausted(self) -> bool:
        return self.k >= self.n

    def propose(self, trial: optuna.Trial) -> ThresholdFile:
        n = self.n
        pos = self.k / (n - 1) if n > 1 else 0.5
        self.k += 1
        r = self.space.ranges
        t = r.lo * (r.hi / r.lo) ** pos
        t_in = r.input_lo * (r.input_hi / r.input_lo) ** pos
        trial.set_user_attr("sweep_position", pos)
        th = {n_: (t_in if n_ == "input" else t) for n_ in self.space.names}
        return ThresholdFile(th, mode="max", input_dilation=1)
