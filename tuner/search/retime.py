"""Re-timing the final front: the search's recommendation rests on measured wall clock, not a prediction.

A search prices trials with a model (MACs, or the latency model's predicted wall-clock speedup) because
timing every trial is slow and noisy. The few feasible points that could be recommended are then timed for
real: each in ``repeats`` interleaved rounds of dense PyTorch and the delta network on the tuning frames
(:meth:`~deltatune.search.objective.Evaluator.timed`: the faster dense layout, the sparse backend calibrated
for this machine; with several segments, those of the segment whose prediction decided the trial's, compared
with that segment's own prediction: :func:`timing_segment`), one speedup per round, summarised by the median
and the order-statistic CI of the median over the rounds (:func:`deltatune.stats.median_ci`, with the level
it reaches: 93.75 % for the default 5 rounds; the median, because a round disturbed by another process is an
outlier of either sign; ``bench`` reports medians too). The recommendation is the re-timed feasible point
with the highest measured median speedup.

Results are stored in the study's ``retimed`` user attribute, keyed by trial number, with the host they
were measured on: a resumed search re-times only what this host has not timed yet.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from deltatune.search.objective import Evaluator
    from deltatune.search.training import Trainer

__all__ = [
    "Retimed", "fastest_first", "retime_candidates", "retime_trials", "stored_retimings", "timing_segment",
    "RETIMED_ATTR", "RETIME_PLAN_ATTR", "unfinished_retiming",
]

#: Study user attribute holding the re-timings: ``{trial number: Retimed.to_dict()}``.
RETIMED_ATTR = "retimed"
#: Study user attribute holding the last re-timing's plan: ``{"host", "trials", "repeats"}``, written before
#: the first timing, so that a re-timing stopped part-way (killed, Ctrl-C) can be told from a finished one.
RETIME_PLAN_ATTR = "retime_plan"


@dataclass(frozen=True)
class Retimed:
    """One trial timed for real: speedups per round (dense ms / delta ms) and what the search predicted."""

    trial: int
    predicted: float
    speed: str
    ratios: tuple[float, ...]
    #: dense and delta ms per frame of the median round (:func:`median_round`), so that their ratio is a
    #: round's speedup beside the median of them (re-timings stored before: each column's median)
    dense_ms: float
    delta_ms: float
    ci_low: float
    ci_high: float
    host: str
    #: the confidence level ``[ci_low, ci_high]`` reaches (see :func:`deltatune.stats.median_ci`); NaN in
    #: re-timings stored before it was recorded (they hold a percentile-bootstrap interval)
    ci_level: float = float("nan")
    #: the segment timed (``video@start``) when the search scored several (``--also-on``, ``--spread``):
    #: the one whose predicted speedup decided the trial's, and ``predicted`` is that segment's own
    segment: str | None = None

    @property
    def measured(self) -> float:
        """Median measured speedup over the rounds."""
        return float(np.median(self.ratios))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratios"] = list(self.ratios)
        if d["segment"] is None:  # a one-clip search's record stays readable by versions without the field
            del d["segment"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Retimed:
        return cls(**{**d, "ratios": tuple(float(r) for r in d["ratios"])})


def median_round(ratios: Sequence[float]) -> int:
    """Index of the round whose speedup is the median (the lower middle one of an even count): the
    round whose dense and delta ms a re-timing shows. Medians of the two columns taken apart can come
    from different rounds, and one disturbed round then shows 264.9 ms against 84.3 ms (3.1x) beside a
    measured 1.04x (rounds 0.99, 10.36, 1.04)."""
    return int(np.argsort(np.asarray(ratios), kind="stable")[(len(ratios) - 1) // 2])


def fastest_first(timings: Iterable[Retimed]) -> list[Retimed]:
    """Re-timings in the order a recommendation reads them: the fastest measured first, ties by trial."""
    return sorted(timings, key=lambda r: (-r.measured, r.trial))


def stored_retimings(study: optuna.Study) -> list[Retimed]:
    """The re-timings a search stored in ``study`` (one per trial: the last host's to time it, since each
    host's re-timing of a trial replaces another's), :func:`fastest_first`: what ``pareto`` shows and draws
    when the study is opened again."""
    stored = study.user_attrs.get(RETIMED_ATTR) or {}
    return fastest_first(Retimed.from_dict(v) for v in stored.values())


def unfinished_retiming(study: optuna.Study) -> tuple[str, list[int], int] | None:
    """``(host, the trials it did not re-time, how many it planned)`` when the study's last re-timing
    stopped before timing every trial it planned (:data:`RETIME_PLAN_ATTR`), else None. Its
    recommendation is then the fastest of a part of the candidates, which ``pareto`` says."""
    plan = study.user_attrs.get(RETIME_PLAN_ATTR)
    if not isinstance(plan, dict):
        return None
    host, repeats = str(plan.get("host")), int(plan["repeats"])
    planned = [int(t) for t in plan.get("trials", [])]
    stored = study.user_attrs.get(RETIMED_ATTR) or {}
    timed = {int(k) for k, v in stored.items()
             if v.get("host") == host and len(v.get("ratios", ())) >= repeats}
    missing = [t for t in planned if t not in timed]
    return (host, missing, len(planned)) if missing else None


def retime_candidates(front: pd.DataFrame, n: int) -> list[int]:
    """The ``n`` feasible front points with the highest predicted speedup (trial numbers, fastest first).

    Trials that tie on both objectives count once (the lowest trial number): a sampler that keeps drawing
    the same setting, as TPE does when only thresholds 0 are feasible, would otherwise spend every
    re-timing on copies of one point."""
    if n <= 0 or front.empty:
        return []
    ok = front[front["feasible"].astype(bool)].sort_values(["speedup", "trial"], ascending=[False, True])
    ok = ok.drop_duplicates(subset=["accuracy_loss", "speedup"], keep="first")
    return [int(t) for t in ok["trial"].head(n)]


def timing_segment(evaluator: Any, trial: optuna.trial.FrozenTrial) -> tuple[Any, float, str | None]:
    """``(evaluator to time on, its predicted speedup, segment label)`` for ``trial``: with several
    segments, the one whose own prediction is the trial's (the worst, or nearest the mean or quantile),
    so that the measurement meets the prediction of the same frames; else the evaluator itself."""
    from deltatune.search.segments import SEGMENTS_ATTR

    target = float(trial.values[1])
    per = trial.user_attrs.get(SEGMENTS_ATTR)
    evaluators = getattr(evaluator, "evaluators", None)
    if not per or evaluators is None or len(per) != len(evaluators):
        return evaluator, target, None
    i = min(range(len(per)), key=lambda k: (abs(float(per[k]["speedup"]) - target), k))
    return evaluators[i], float(per[i]["speedup"]), str(per[i]["segment"])


def retime_trials(
    study: optuna.Study,
    evaluator: Evaluator,
    trials: list[int],
    *,
    repeats: int = 5,
    trainer: Trainer | None = None,
    on_trial: Callable[[int], None] | None = None,
) -> dict[int, Retimed]:
    """Time ``trials`` of ``study`` (``repeats`` interleaved rounds each) and store the results in the study.

    Trials this host already re-timed are read back, not timed again. ``trainer`` puts a ``--train``
    trial's fine-tuned weights on the evaluator first. ``on_trial(done)`` reports progress."""
    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.search.training import ATTR as FINETUNE_ATTR
    from deltatune.stats import median_ci

    host = platform.node()
    plan = {"host": host, "trials": [int(t) for t in trials], "repeats": repeats}
    study.set_user_attr(RETIME_PLAN_ATTR, plan)
    stored = {int(k): Retimed.from_dict(v) for k, v in (study.user_attrs.get(RETIMED_ATTR) or {}).items()}
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    speed = evaluator.speed
    out: dict[int, Retimed] = {}
    for i, n in enumerate(trials):
        old = stored.get(n)
        if old is not None and old.host == host and len(old.ratios) >= repeats:
            out[n] = old
        else:
            t = by_number[n]
            if trainer is not None:
                trainer.apply(t.user_attrs)
            elif t.user_attrs.get(FINETUNE_ATTR) is not None:
                from deltatune.errors import ConfigError

                raise ConfigError(f"trial {n} ran fine-tuned weights; re-timing it needs its fine-tune")
            on, predicted, segment = timing_segment(evaluator, t)
            rounds = on.timed(ThresholdFile.from_attrs(t.user_attrs), "tune", repeats=repeats)
            ratios = tuple(d / max(s, 1e-9) for d, s in rounds)
            ci = median_ci(ratios)
            dense, delta = (float(v) for v in rounds[median_round(ratios)])
            out[n] = stored[n] = Retimed(
                trial=n, predicted=predicted, speed=speed, ratios=ratios, dense_ms=dense,
                delta_ms=delta, ci_low=ci.low, ci_high=ci.high, host=host, ci_level=ci.level, segment=segment,
            )
            study.set_user_attr(RETIMED_ATTR, {str(k): v.to_dict() for k, v in stored.items()})
        if on_trial is not None:
            on_trial(i + 1)
    return out
