"""Tuning on several stretches of video at once: a setting is as good as its worst segment.

A threshold setting tuned on one clip often loses more accuracy on the next one (the same scene later, or
another camera). Scoring every trial on several segments and keeping the **worst** accuracy loss and the
**worst** speedup (``aggregate="worst"``, the default) makes the budget hold on each of them; the mean
(``"mean"``) is offered for comparison, but a mean lets one easy segment pay for a hard one.

:class:`SegmentsEvaluator` wraps the search's own :class:`~deltatune.search.objective.Evaluator` (the
first segment: its workload is the study's, its held-out frames re-score the front, and re-timing times
it) and one evaluator per further segment. Everything but scoring goes to the first one.
"""

from __future__ import annotations

import statistics
from typing import Any

from deltatune.errors import ConfigError
from deltatune.search.objective import Evaluation, Evaluator

__all__ = ["SegmentsEvaluator", "AGGREGATES", "SEGMENTS_ATTR"]

#: How the per-segment objectives become a trial's objectives.
AGGREGATES = ("worst", "mean")
#: Trial user attribute with each segment's objectives.
SEGMENTS_ATTR = "segments"


class SegmentsEvaluator:
    """Scores a setting on the main evaluator's workload and on ``others``; aggregates per ``aggregate``."""

    def __init__(self, main: Evaluator, others: list[Evaluator], *, aggregate: str = "worst") -> None:
        if aggregate not in AGGREGATES:
            raise ConfigError(f"--aggregate {aggregate!r} is unknown; choose one of {', '.join(AGGREGATES)}")
        for ev in others:
            if ev.threshold_names != main.threshold_names:
                raise ConfigError(f"segment {ev.workload.video}@{ev.workload.start}: another network")
        self.main = main
        self.others = others
        self.aggregate = aggregate

    @property
    def evaluators(self) -> list[Evaluator]:
        return [self.main, *self.others]

    def labels(self) -> list[str]:
        """``video@start`` of every segment, the main one first."""
        return [f"{e.workload.video}@{e.workload.start}" for e in self.evaluators]

    def evaluate(self, config: Any, *, split: Any = "tune") -> Evaluation:
        """Score ``config`` on every segment's ``split``; the result's ``extra["segments"]`` lists each."""
        results = [e.evaluate(config, split=split) for e in self.evaluators]
        losses = [r.accuracy_loss for r in results]
        speeds = [r.speedup for r in results]
        if self.aggregate == "worst":
            loss, speed, pck = max(losses), min(speeds), min(r.pck for r in results)
        else:
            loss, speed = statistics.fmean(losses), statistics.fmean(speeds)
            pck = statistics.fmean(r.pck for r in results)
        per = [
            {"segment": label, "accuracy_loss": r.accuracy_loss, "speedup": r.speedup}
            for label, r in zip(self.labels(), results, strict=True)
        ]
        return Evaluation(
            accuracy_loss=loss,
            speedup=speed,
            pck=pck,
            split=split,
            frames=sum(r.frames for r in results),
            streams=results[0].streams,
            extra={SEGMENTS_ATTR: per},
            repeated=all(r.repeated for r in results),
        )

    def use_weights(self, state: Any, key: str | None = None) -> None:
        for e in self.evaluators:
            e.use_weights(state, key)

    def __getattr__(self, name: str) -> Any:
        # everything but scoring (workload, info, net, timed, frames, ...) is the main segment's
        return getattr(self.main, name)
