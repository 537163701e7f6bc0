"""Shared loop of the greedy front-to-back baselines (DeltaCNN's README loop, CBinfer's).

All thresholds start at 0. Layers are visited in execution order (``input`` first); the current layer's
threshold starts at ``start`` and is multiplied by ``factor`` while the accuracy loss stays within the
layer's allowance; on the first step beyond it the layer keeps its last good value (0 if none) and the
next layer starts. Every evaluation is one trial of the study. A layer is also left once its threshold
passes ``cap`` (nothing more to gain). The loop ends when every layer is done. A resumed search replays the
study's finished trials of the loop (their losses) and goes on from the step after them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from deltatune.delta.thresholds import ThresholdFile
from deltatune.search.strategies._base import Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    import optuna
    from optuna.trial import FrozenTrial

    from deltatune.search.objective import Evaluation

__all__ = ["GreedyStrategy"]


class GreedyStrategy(Strategy):
    """Front-to-back greedy threshold growth; subclasses set ``factor`` and :meth:`allowance`."""

    parallel = False
    factor: ClassVar[float] = 2.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.names = list(self.space.names)
        self.current: dict[str, float | None] = {n: 0.0 for n in self.names}
        self.index = 0
        self.candidate = self._start(0)
        self.last_good = 0.0

    def _start(self, i: int) -> float:
        r = self.space.ranges
        return r.input_lo if self.names[i] == "input" else r.lo

    def _cap(self, i: int) -> float:
        r = self.space.ranges
        return 10 * (r.input_hi if self.names[i] == "input" else r.hi)

    def allowance(self, index: int) -> float:
        """Accuracy loss allowed once layers ``0..index`` are truncated (default: the whole budget)."""
        return self.budget

    def exhausted(self) -> bool:
        return self.index >= len(self.names)

    def propose(self, trial: optuna.Trial) -> ThresholdFile:
        trial.set_user_attr("greedy_layer", self.names[self.index])
        th = dict(self.current)
        th[self.names[self.index]] = self.candidate
        return ThresholdFile(th, mode="max", input_dilation=1)

    def resume(self, done: Sequence[FrozenTrial]) -> None:
        """Replay the loop's finished trials: each was the step the loop takes next, so its stored loss
        moves the loop on as it did then. A trial of another layer than the loop's next (not this loop's)
        ends the replay."""
        for t in done:
            if self.exhausted() or t.user_attrs.get("greedy_layer") != self.names[self.index]:
                return
            self._step(t.values[0])

    def after_trial(self, config: ThresholdFile, evaluation: Evaluation) -> None:
        self._step(evaluation.accuracy_loss)

    def _step(self, loss: float) -> None:
        """Move the loop on after its current candidate lost ``loss``."""
        name = self.names[self.index]
        if loss <= self.allowance(self.index):
            self.last_good = self.candidate
            self.current[name] = self.candidate
            self.candidate *= self.factor
            if self.candidate <= self._cap(self.index):
                return
        else:
            self.current[name] = self.last_good
        self.index += 1
        if self.index < len(self.names):
            self.candidate = self._start(self.index)
            self.last_good = 0.0
