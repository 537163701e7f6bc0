"""Tuning on several stretches of video at once: a setting is as good as its worst segment.

A threshold setting tuned on one clip often loses more accuracy on the next one (the same scene later, or
another camera). Scoring every trial on several segments and keeping the **worst** accuracy loss and the
**worst** speedup (``aggregate="worst"``, the default) makes the budget hold on each of them. A high
quantile (``"q90"``: the 90th percentile of the losses and the 10th of the speedups, interpolated) lets
one outlier segment out of many go over; the mean (``"mean"``) is offered for comparison, but a mean lets
one easy segment pay for a hard one.

:class:`SegmentsEvaluator` wraps the search's own :class:`~deltatune.search.objective.Evaluator` (the
first segment: its workload is the study's, its held-out frames re-score the front, and re-timing times
it) and one evaluator per further segment. Everything but scoring, the weights and accumulation goes to the
first one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from deltatune.errors import ConfigError
from deltatune.search.objective import Evaluation, Evaluator

__all__ = ["SegmentsEvaluator", "SEGMENTS_ATTR", "aggregate_error", "aggregate_words", "combine"]

#: Trial user attribute with each segment's objectives.
SEGMENTS_ATTR = "segments"


def _quantile_level(aggregate: str) -> float | None:
    """The level of a ``qP`` aggregate (``"q90"`` -> 0.9); None for any other name or a P outside
    [50, 100)."""
    if not aggregate.startswith("q"):
        return None
    try:
        p = float(aggregate[1:])
    except ValueError:
        return None
    return p / 100 if 50 <= p < 100 else None


def aggregate_error(aggregate: str) -> str | None:
    """What is wrong with an ``--aggregate`` value (one line), or None when it is valid."""
    if aggregate in ("worst", "mean") or _quantile_level(aggregate) is not None:
        return None
    return (f"--aggregate {aggregate!r} is unknown; choose worst, mean or qP, a quantile with 50 <= P < 100 "
            "(e.g. q90)")


def scored_on_words(workloads: Sequence[Any], aggregate: str) -> str:
    """What a search on several segments scored each trial on, as ``search`` and ``pareto`` say it:
    ``workloads`` the clip's then each further segment's (anything with ``video`` and ``start``)."""
    segs = ", ".join(f"{w.video}@{w.start}" for w in workloads)
    return (f"each trial scored on {len(workloads)} segments ({segs}); objectives: the "
            f"{aggregate_words(aggregate)} over them")


def aggregate_words(aggregate: str) -> str:
    """How a search's output names an aggregate: ``worst`` and ``mean`` as they are, ``q90`` as "90th-
    percentile loss and 10th-percentile speedup"."""
    if _quantile_level(aggregate) is None:
        return aggregate
    p = float(aggregate[1:])
    return f"{p:g}th-percentile loss and {100 - p:g}th-percentile speedup"


def combine(values: list[float], aggregate: str, *, larger_is_worse: bool) -> float:
    """One objective over the segments: the worst value, the mean, or for ``qP`` the quantile on the
    bad side (the P-th percentile where larger is worse, as for a loss; the (100-P)-th where smaller is,
    as for a speedup), linearly interpolated between segments (numpy's default)."""
    import numpy as np

    if aggregate == "worst":
        return max(values) if larger_is_worse else min(values)
    if aggregate == "mean":
        return statistics.fmean(values)
    level = _quantile_level(aggregate)
    if level is None:
        raise ConfigError(aggregate_error(aggregate) or aggregate)
    return float(np.quantile(values, level if larger_is_worse else 1 - level))


class SegmentsEvaluator:
    """Scores a setting on the main evaluator's workload and on ``others``; aggregates per ``aggregate``."""

    def __init__(self, main: Evaluator, others: list[Evaluator], *, aggregate: str = "worst") -> None:
        if (problem := aggregate_error(aggregate)) is not None:
            raise ConfigError(problem)
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
        loss = combine(losses, self.aggregate, larger_is_worse=True)
        speed = combine(speeds, self.aggregate, larger_is_worse=False)
        pck = combine([r.pck for r in results], self.aggregate, larger_is_worse=False)
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
        """Put the weights on every segment's evaluator: a segment on other weights is another model."""
        for e in self.evaluators:
            e.use_weights(state, key)

    def set_accumulate(self, on: bool) -> None:
        """Set accumulation on every segment's network, not only the main one's (which the attribute
        forwarding below would reach): a segment left at the default scores another setting."""
        for e in self.evaluators:
            e.set_accumulate(on)

    def __getattr__(self, name: str) -> Any:
        # everything but scoring (workload, info, net, timed, frames, ...) is the main segment's
        return getattr(self.main, name)
