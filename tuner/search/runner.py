"""Run a threshold search: N worker processes, one Optuna study, then the held-out check.

:func:`run_search` is what ``deltatune search`` calls. Each worker process builds its own
:class:`~deltatune.search.objective.Evaluator` (its own delta network), loads the shared study with its own
sampler seed, and runs its share of the trials with ask/tell::

    trial = study.ask()
    config = strategy.propose(trial)               # sampler draw, or a baseline's fixed thresholds
    ev = evaluator.evaluate(config)                # tuning frames
    trial.set_constraint("budget", ev.accuracy_loss - budget)   # feasible iff <= 0 (Optuna 5)
    study.tell(trial, [ev.accuracy_loss, ev.speedup])

Every trial records ``thresholds``, ``input_dilation``, ``mode``, ``strategy``, ``space``, ``worker``,
``seed`` and ``pck`` in its user attributes. The study records the workload and budget in the user
attribute ``deltatune``; resuming it with a different workload or budget is refused. After the workers,
the feasible front is re-scored on the held-out frames (study user attribute ``heldout``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltatune._workers import (
    alive,
    all_workers_gone,
    busy_machine,
    fail_trials,
    on_interrupt,
    optimize_resilient,
    register_worker,
    taken_by,
    unowned,
    worker_deaths,
)
from deltatune.delta.fingerprint import weights_fingerprint
from deltatune.delta.latency import PREDICTION_TOLERANCE
from deltatune.delta.rule import is_keyframe_change, is_keyframe_interval
from deltatune.delta.thresholds import ThresholdFile
from deltatune.errors import ConfigError
from deltatune.search.objective import MAC_SPEEDUP_CAP, Evaluator, resolve_speed
from deltatune.search.pareto import (
    DUPLICATE_ATTR,
    FRAMES_ATTR,
    META_KEY,
    WEIGHTS_ATTR,
    best_under,
    hypervolume,
    pareto_frame,
    study_meta,
    trials_frame,
)
from deltatune.search.retime import Retimed, fastest_first, retime_candidates, retime_trials
from deltatune.search.segments import SEGMENTS_ATTR, SegmentsEvaluator, aggregate_error
from deltatune.search.spaces import SPACES, Ranges, make_space
from deltatune.search.storage import StorageSpec, check_heartbeat, marked_studies, resolve_storage, shown_url
from deltatune.search.strategies import make_strategy, startup_warning, strategy_class
from deltatune.search.study_workload import RANDOM_WEIGHTS_NOTICE, StudyWorkload
from deltatune.search.training import ATTR as FINETUNE_ATTR
from deltatune.search.training import DivergedFinetune, HopelessFinetune, Trainer, TrainSpace

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = [
    "SearchSettings",
    "SearchResult",
    "run_search",
    "open_study",
    "rescore_heldout",
    "DIRECTIONS",
    "fail_interrupted_trials",
    "fail_orphaned_trials",
    "finish_target",
]

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")  # accuracy loss, speedup
#: user attribute of a trial whose setting its worker had already scored (read from the memo)
REPEAT_ATTR = "repeat"
#: user attribute of a trial pruned because its fine-tune blew up (a lower --train-lr is the cure)
DIVERGED_ATTR = "diverged"


@dataclass(frozen=True)
class SearchSettings:
    """Everything a search run needs (the CLI's options, validated).

    The defaults are a library call's: MAC speedups (``speed="macs"``, deterministic, no timing) and no
    re-timing (``retime=0``), 12 trials. ``deltatune search`` passes its own: the latency model
    (``speed="latency"``), the 3 fastest feasible points re-timed, 40 trials."""

    workload: StudyWorkload
    trials: int = 12
    strategy: str = "tpe"
    space: str = "group"
    budget: float = 1.0
    speed: str = "macs"
    study: str | None = None
    storage: str | None = None
    jobs: int = 1
    seed: int = 0
    tune_dilation: bool = True
    modes: tuple[str, ...] = ("max",)
    ranges: Ranges = field(default_factory=Ranges)
    anchors: int | None = None
    #: ``trials`` counts finished trials of the study in total ("finish to N"), not new ones: a resumed
    #: search runs only what is missing.
    finish: bool = False
    #: RDB storages: seconds between heartbeats of a running trial (a dead worker's trial is retried
    #: after 3x this long without one)
    heartbeat: float = 10.0
    #: training hyperparameters sampled with the thresholds (``search --train``); None: thresholds only
    train: TrainSpace | None = None
    #: stop starting new trials after this many seconds per worker (Optuna's ``timeout``); None: no limit
    timeout: float | None = None
    #: re-time this many of the fastest feasible front points for real and recommend on measured speed
    #: (:mod:`deltatune.search.retime`); 0: recommend on the search's own speed objective
    retime: int = 0
    #: interleaved dense/delta rounds per re-timed point
    retime_repeats: int = 5
    #: key-frame intervals to search (``DeltaNetwork.keyframe_interval``; 0 = none); one value: fixed
    keyframes: tuple[int, ...] = (0,)
    #: key-frame-on-change fractions to search (``DeltaNetwork.keyframe_change``; None = off); one: fixed
    keyframe_changes: tuple[float | None, ...] = (None,)
    #: further segments every trial is also scored on (:mod:`deltatune.search.segments`)
    also_on: tuple[StudyWorkload, ...] = ()
    #: how the segments' objectives combine: ``worst`` (default) or ``mean``
    aggregate: str = "worst"
    #: ``--speed latency``: the thread count trials are priced at (calibration table and latency model);
    #: None: the process's own. Set for ``jobs > 1`` workers to the command's, which re-times the front.
    price_threads: int | None = None
    #: ``--speed latency``: fit the latency model on this clip now instead of using a cached fit, and
    #: cache the new one (the command's process fits; its workers read that fit)
    refit: bool = False

    def __post_init__(self) -> None:
        check_heartbeat(self.heartbeat)
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: must be >= 0")
        if self.trials < 1:
            raise ConfigError(f"--trials {self.trials}: need at least 1")
        if not (math.isfinite(self.budget) and self.budget >= 0):  # inf: all feasible, hypervolume inf
            raise ConfigError(f"--budget {self.budget}: must be a finite number >= 0 (accuracy points)")
        if self.jobs < 1:
            raise ConfigError(f"--jobs {self.jobs}: need at least 1 worker")
        if self.space not in SPACES:
            raise ConfigError(f"--space {self.space!r} is unknown; choose one of {', '.join(SPACES)}")
        cls = strategy_class(self.strategy)
        if self.jobs > 1 and not cls.parallel:
            raise ConfigError(
                f"--strategy {self.strategy} is sequential (each step depends on the last); use --jobs 1"
            )
        speed, _ = resolve_speed(self.speed)
        if self.refit and speed != "latency":
            raise ConfigError(f"--refit: only --speed latency uses a latency model, not --speed {self.speed}")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ConfigError(
                f"--timeout {self.timeout}: must be a finite number of seconds > 0 (leave it out: no limit)"
            )
        if not self.keyframes or not all(is_keyframe_interval(k) for k in self.keyframes):
            raise ConfigError(f"--keyframes {','.join(map(str, self.keyframes))}: need integers >= 0 "
                              "(0: no key frames)")
        if not self.keyframe_changes or not all(is_keyframe_change(v) for v in self.keyframe_changes):
            shown = ",".join("none" if v is None else str(v) for v in self.keyframe_changes)
            raise ConfigError(f"--keyframe-change {shown}: need fractions in (0, 1] or none")
        if (problem := aggregate_error(self.aggregate)) is not None:
            raise ConfigError(problem)
        seen = {(self.workload.video, self.workload.start): "the clip itself (--video, --start)"}
        for seg in self.also_on:
            key = (seg.video, seg.start)
            if key in seen:
                raise ConfigError(f"--also-on {seg.video}@{seg.start}: the same stretch as {seen[key]}; each "
                                  "segment must start elsewhere (video@first-frame)")
            seen[key] = "another --also-on segment"
        if self.also_on and self.workload.labels is not None:
            raise ConfigError("--also-on scores against the dense model; it cannot be combined with --labels")
        if self.retime < 0:
            raise ConfigError(f"--retime {self.retime}: must be >= 0 (0 re-times nothing)")
        if self.retime_repeats < 2:
            raise ConfigError(
                f"--retime-repeats {self.retime_repeats}: need at least 2 rounds for an interval"
            )
        if self.train is not None:
            from deltatune.search.strategies import SamplerStrategy

            if not issubclass(cls, SamplerStrategy):
                raise ConfigError(
                    f"--train needs a sampler strategy (tpe, nsga2, gp, random), not {self.strategy}"
                )
            self.train.check_disjoint(self.workload, self.also_on)
        self.storage_spec()  # the study name and the storage URL, before any work
        from deltatune.delta._context import MODES

        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ConfigError(f"--modes {','.join(self.modes)}: choose from {', '.join(MODES)}")

    @property
    def study_name(self) -> str:
        return f"{self.workload.model}-{self.strategy}-{self.space}" if self.study is None else self.study

    def storage_spec(self) -> StorageSpec:
        return resolve_storage(self.storage, self.study_name, jobs=self.jobs, heartbeat=self.heartbeat)


@dataclass
class SearchResult:
    """What a search run produced (all trials of the study, not only this run's)."""

    study: str
    storage: str
    n_trials: int
    new_trials: int
    trials: pd.DataFrame
    front: pd.DataFrame
    best_feasible: dict[str, Any] | None
    hypervolume: float
    budget: float
    speed: str
    random_weights: bool
    notices: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    #: the re-timed front points (:class:`~deltatune.search.retime.Retimed` dicts), fastest measured first
    retimed: list[dict[str, Any]] = field(default_factory=list)
    #: trials of the study that were pruned (a fine-tune over the budget, or cut off by the timeout); not
    #: in ``n_trials``, which counts finished ones
    pruned: int = 0
    #: of those, the ones started since this run began (by this process, or another on the same study)
    new_pruned: int = 0
    #: streams the clip has: those asked for, or fewer where the video has fewer crop windows (a video
    #: of one's own without ``--window`` is one stream, the whole frame); 0 when not known
    streams: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        front = [
            {
                "trial": int(r.trial),
                "accuracy_loss": float(r.accuracy_loss),
                "speedup": float(r.speedup),
                "feasible": bool(r.feasible),
                "strategy": r.strategy,
                "heldout_accuracy_loss": _num(r.heldout_accuracy_loss),
                "heldout_speedup": _num(r.heldout_speedup),
            }
            for r in self.front.itertuples()
        ]
        return {
            "study": self.study,
            "storage": shown_url(self.storage),
            "n_trials": self.n_trials,
            "new_trials": self.new_trials,
            "pruned": self.pruned,
            "new_pruned": self.new_pruned,
            "budget": self.budget,
            "speed": self.speed,
            "hypervolume": self.hypervolume,
            "hypervolume_reference": [self.budget, 1.0],
            "random_weights": self.random_weights,
            "pareto": front,
            "best_feasible": self.best_feasible,
            "notices": self.notices,
            "retimed": self.retimed,
            "streams": self.streams,
            "wall_s": round(self.wall_s, 2),
        }


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


class _NoInterruptTraceback(logging.Filter):
    """Drops Optuna's warnings about a trial stopped by Ctrl-C ("Trial N failed with parameters: {...}
    because of the following error: KeyboardInterrupt()" with the whole stack, then "Trial N failed with
    value None."): an interrupt is no failure to explain, and the command says what was kept. A trial
    that failed of an error keeps both lines. Under ``--debug`` (root logger at DEBUG) they stay."""

    def __init__(self) -> None:
        super().__init__()
        self._stopped: str | None = None  # "Trial N " of the trial an interrupt stopped

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        message = record.getMessage()
        if record.exc_info is not None and isinstance(record.exc_info[1], KeyboardInterrupt):
            self._stopped = message[: message.find("failed")]
            return False
        if self._stopped is not None and message == f"{self._stopped}failed with value None.":
            self._stopped = None
            return False
        return True


def optuna_warnings_only() -> None:
    """Optuna logs warnings and errors only, on its own handler, without an interrupted trial's stack."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # also creates Optuna's handler
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoInterruptTraceback) for f in handler.filters):
            handler.addFilter(_NoInterruptTraceback())


def open_study(
    spec: StorageSpec, name: str, *, sampler: optuna.samplers.BaseSampler | None = None, create: bool = True
) -> optuna.Study:
    """Load study ``name`` (creating it with our two directions when ``create``)."""
    import optuna

    optuna_warnings_only()
    storage = spec.open(write=create)
    if create:
        return optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            directions=list(DIRECTIONS),
            load_if_exists=True,
        )
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        held = marked_studies(storage, META_KEY)
        listed = ", ".join(held[:10]) + (f" and {len(held) - 10} more" if len(held) > 10 else "")
        raise ConfigError(
            f"--study {name}: no such study in {shown_url(spec.url)} "
            f"(search studies there: {listed or 'none'})"
        ) from None


def _weights_file_respelled(was: dict[str, Any], now: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether two workloads differ only in how their weights file is named (``w.pt`` from its folder,
    ``/data/w.pt`` from elsewhere, a copy) while the study recorded its weights' fingerprint, which is
    compared once the network is built (same content: the same weights). Resuming from another folder
    was refused as "a different workload", and the advice, a new --study, threw away its trials."""
    files = [w for w in (was.get("weights"), now.get("weights")) if w not in (None, "default", "none")]
    rest = {k for k in {*was, *now} if k != "weights" and was.get(k) != now.get(k)}
    return len(files) == 2 and not rest and bool(old.get(WEIGHTS_ATTR))


def _check_meta(study: optuna.Study, meta: dict[str, Any], *, record: bool = True) -> None:
    """Refuse to add trials to ``study`` when ``meta`` (what this search would store) differs from what
    its trials were scored with; a new study gets ``meta`` recorded (with ``record``). Keys missing from
    ``meta`` are not compared (the early check knows the settings, not yet the network)."""
    old = study_meta(study)
    if not old:
        if record:
            study.set_user_attr(META_KEY, meta)
        return
    old = dict(old)
    if isinstance(old.get("workload"), dict):  # fill fields added since (e.g. joints) as they were then
        old["workload"] = StudyWorkload.from_dict(old["workload"]).to_dict()
    was, now = old.get("workload"), meta.get("workload")
    if isinstance(was, dict) and isinstance(now, dict) and _weights_file_respelled(was, now, old):
        # one weights file named from another folder, or a copy: the fingerprint check below decides
        now = {**now, "weights": was["weights"]}
        meta = {**meta, "workload": now}
    if isinstance(was, dict) and isinstance(now, dict) and was != now:
        diff = ", ".join(f"{k} {_shown(k, was.get(k))} (now {_shown(k, now.get(k))})"
                         for k in now if was.get(k) != now.get(k))
        raise ConfigError(
            f"--study {study.study_name}: it was created with a different workload: {diff}; use a new "
            "--study name"
        )
    threads, was_threads = meta.get("price_threads"), old.get("price_threads")
    if threads and was_threads and threads != was_threads:
        raise ConfigError(
            f"--study {study.study_name}: its trials were priced at {was_threads} torch thread(s), "
            f"this run would price at {threads}: a speedup depends on the thread count, so "
            "the two would not compare on one front. Run with the first run's OMP_NUM_THREADS, or use a "
            "new --study name"
        )
    for key, what in (("speed", "speed objective (--speed)"),
                      ("search_space", "search space (--space, --modes, --thr-range, --no-dilation, "
                                       "--keyframes, --keyframe-change)")):
        if key in meta and key in old and old[key] != meta[key]:  # a study made before: not recorded
            raise ConfigError(
                f"--study {study.study_name}: it was created with a different {what}: "
                f"{_changed(old[key], meta[key])}; its trials "
                "and new ones would not compare on one front. Use a new --study name, or the same options"
            )
    for key in ("workload", "budget", "threshold_names", "train", "also_on", "aggregate"):
        if key in meta and old.get(key) != meta.get(key):
            what = {
                "workload": "workload (model, video, windows, frames, joints)",
                "budget": "budget",
                "threshold_names": "network",
                "train": "training space (--train options)",
                "also_on": "set of segments (--also-on)",
                "aggregate": "aggregate (--aggregate)",
            }[key]
            was, now = old.get(key), meta.get(key)
            said = "other truncation points" if key == "threshold_names" else _changed(was, now)
            if key == "train" and (was is None) != (now is None):
                said = "it ran with --train, now without" if now is None else "it ran without --train"
            raise ConfigError(
                f"--study {study.study_name}: it was created with a different {what}: {said}; "
                "use a new --study name"
            )
    # same weights file, other contents (re-distilled, re-trained): its trials were scored on other weights
    if old.get(WEIGHTS_ATTR) and meta.get(WEIGHTS_ATTR) and old[WEIGHTS_ATTR] != meta[WEIGHTS_ATTR]:
        raise ConfigError(
            f"--study {study.study_name}: it was created with other weights (fingerprint "
            f"{old[WEIGHTS_ATTR]}, now {meta[WEIGHTS_ATTR]}); use a new --study name"
        )
    # same video name, other contents (re-exported, overwritten): its trials were scored on other frames
    if old.get(FRAMES_ATTR) and meta.get(FRAMES_ATTR) and old[FRAMES_ATTR] != meta[FRAMES_ATTR]:
        raise ConfigError(
            f"--study {study.study_name}: it was created on other frames (fingerprint {old[FRAMES_ATTR]}, "
            f"now {meta[FRAMES_ATTR]}): the video changed under the same name, or decodes differently "
            "here; use a new --study name"
        )


def _changed(was: Any, now: Any) -> str:
    """How a stored setting differs from this run's, for a refusal: ``key old (now new)`` for each key
    that differs when both are dicts, else ``old (now new)``."""
    if isinstance(was, dict) and isinstance(now, dict):
        return ", ".join(f"{k} {_shown(k, was.get(k))} (now {_shown(k, now.get(k))})"
                         for k in sorted(was.keys() | now.keys()) if was.get(k) != now.get(k))
    return f"{was!r} (now {now!r})"


def _shown(key: str, value: Any) -> str:
    """A stored setting as the user wrote it: ``weights`` None is ``--weights none`` (random init)."""
    return "'none' (random weights)" if key == "weights" and value is None else repr(value)


def _settings_meta(settings: SearchSettings) -> dict[str, Any]:
    """The part of a study's metadata the settings alone give (checked before any model work)."""
    return {
        "workload": settings.workload.to_dict(),
        "budget": settings.budget,
        "model": settings.workload.model,
        "train": settings.train.to_dict() if settings.train is not None else None,
        "also_on": [w.to_dict() for w in settings.also_on] or None,
        "aggregate": settings.aggregate if settings.also_on else None,
        "speed": resolve_speed(settings.speed)[0],
        "search_space": _space_meta(settings),
        "price_threads": _price_threads(settings),
    }


def _price_threads(settings: SearchSettings) -> int | None:
    """The torch thread count a timed speed (``latency``, ``measured``) prices trials at: the same
    setting is 1.39x at two threads and 0.98x at one, so a resume at another count would put two scales
    on one front. ``None`` for MAC counts, which threads do not change."""
    import torch

    if resolve_speed(settings.speed)[0] == "macs":
        return None
    return settings.price_threads or torch.get_num_threads()


def _space_meta(settings: SearchSettings) -> dict[str, Any]:
    """What decides a trial's parameters and their ranges (as JSON reads it back): trials drawn from
    another space do not belong on one front. The strategy and the seed may change on a resume (a random
    warm-up, then TPE): they choose points, not what a point is."""
    return json.loads(json.dumps({
        "space": settings.space,
        "modes": list(settings.modes),
        "thr_range": [settings.ranges.lo, settings.ranges.hi],
        "input_range": [settings.ranges.input_lo, settings.ranges.input_hi],
        "multipliers": list(settings.ranges.mult),
        "dilation": settings.tune_dilation,
        "keyframes": list(settings.keyframes),
        "keyframe_change": list(settings.keyframe_changes),
    }))


def _study_meta(settings: SearchSettings, ev: Evaluator, speed_used: str) -> dict[str, Any]:
    return {
        **_settings_meta(settings),
        "speed": speed_used,  # as resolved where the network is known
        "threshold_names": ev.threshold_names,
        "random_weights": ev.random_weights,
        WEIGHTS_ATTR: weights_fingerprint(ev.model),
        FRAMES_ATTR: ev.frames_fingerprint(),
    }


def _existing_study(spec: StorageSpec, name: str) -> optuna.Study | None:
    """Study ``name`` when the storage already holds it, else None (creating nothing)."""
    if spec.kind == "journal" and not Path(spec.url).is_file():
        return None
    try:
        return open_study(spec, name, create=False)
    except ConfigError:  # no such study (yet)
        return None


def finish_target(settings: SearchSettings) -> int:
    """The finished trials the study holds once a search with ``settings`` is done: ``settings.trials``
    with ``finish``; else ``settings.trials`` new ones after those it holds already (a new study's anchor
    trials count among them). Read before the search, so an interrupt can say how to get there."""
    from optuna.trial import TrialState

    if settings.finish:
        return settings.trials
    existing = _existing_study(settings.storage_spec(), settings.study_name)
    done = 0 if existing is None else len(existing.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return done + settings.trials


def make_evaluator(
    settings: SearchSettings,
    main: Evaluator | None = None,
    *,
    evaluator_for: Callable[[StudyWorkload], Evaluator] | None = None,
) -> Any:
    """The search's evaluator: ``main`` (or one built for ``settings.workload``), wrapped in a
    :class:`SegmentsEvaluator` when trials are also scored on other segments (``settings.also_on``).
    ``evaluator_for(workload)`` supplies the segments' evaluators (e.g. from a per-process cache); by
    default each is built here."""
    if isinstance(main, SegmentsEvaluator):
        return main
    return _build_evaluator(
        settings.workload,
        settings.also_on,
        aggregate=settings.aggregate,
        speed=resolve_speed(settings.speed)[0],
        price_threads=settings.price_threads,
        refit=settings.refit,
        main=main,
        evaluator_for=evaluator_for,
    )


def study_evaluator(meta: dict[str, Any]) -> Any:
    """The evaluator a search study's trials were scored with, rebuilt from its metadata
    (:func:`~deltatune.search.pareto.study_meta`: workload, speed, price threads, ``--also-on`` segments and
    aggregate): a re-score outside ``search`` (``pareto --heldout``) then stores what ``search`` would."""
    return _build_evaluator(
        StudyWorkload.from_dict(meta["workload"]),
        tuple(StudyWorkload.from_dict(w) for w in meta.get("also_on") or ()),
        aggregate=str(meta.get("aggregate") or "worst"),
        speed=str(meta.get("speed", "macs")),
        price_threads=meta.get("price_threads"),
    )


def _build_evaluator(
    workload: StudyWorkload,
    also_on: tuple[StudyWorkload, ...],
    *,
    aggregate: str,
    speed: str,
    price_threads: int | None,
    refit: bool = False,
    main: Evaluator | None = None,
    evaluator_for: Callable[[StudyWorkload], Evaluator] | None = None,
) -> Any:
    """``main`` (or an :class:`Evaluator` of ``workload``), wrapped with one evaluator per ``also_on``
    segment (``evaluator_for``'s, or built here) when there are any: the one way a search's evaluator is
    made, whether from its settings or from a stored study's metadata."""
    main = main or Evaluator(workload, speed=speed, price_threads=price_threads, refit_latency=refit)
    if not also_on:
        return main
    build = evaluator_for or (  # run_search checks the segments have keypoints, naming --also-on
        lambda w: Evaluator(w, speed=speed, price_threads=price_threads, refit_latency=refit,
                            require_keypoints=False)
    )
    return SegmentsEvaluator(main, [build(w) for w in also_on], aggregate=aggregate)


def _make_space(settings: SearchSettings, ev: Evaluator) -> Any:
    """The search space of ``settings`` over the evaluator's truncation points, grouped as the model's
    card declares (``ModelCard.threshold_groups``)."""
    return make_space(
        settings.space,
        ev.threshold_names,
        tune_dilation=settings.tune_dilation,
        modes=settings.modes,
        ranges=settings.ranges,
        group_patterns=ev.info.threshold_groups,
        keyframes=settings.keyframes,
        keyframe_changes=settings.keyframe_changes,
    )


def _worker(
    settings: SearchSettings,
    worker: int,
    n_trials: int,
    seed: int,
    on_trial: Callable[[int], None] | None = None,
    evaluator: Evaluator | None = None,
    trainer: Trainer | None = None,
) -> list[int]:
    """Run up to ``n_trials`` trials of the study in this process; returns their numbers.

    Trials run through ``study.optimize``, so with an RDB storage each running trial has Optuna's
    heartbeat, and a trial whose worker died is failed and enqueued again by any live worker (see
    :mod:`deltatune.search.storage`). With ``settings.finish`` the worker also stops once the study holds
    ``settings.trials`` finished or running trials and none is queued, whoever ran them (several
    processes, one study); before counting, it fails and queues again the running trials of dead
    processes on this host (:func:`fail_orphaned_trials`), so a killed sibling's trial is run, not
    counted. A dead worker on another host is seen only once its heartbeat is stale.
    """
    import optuna
    from optuna.trial import TrialState

    optuna_warnings_only()
    ev = make_evaluator(settings, evaluator)
    speed_used, _ = resolve_speed(settings.speed)
    space = _make_space(settings, ev)
    strategy = make_strategy(settings.strategy, space, seed=seed, budget=settings.budget, n_trials=n_trials)
    study = open_study(settings.storage_spec(), settings.study_name, sampler=strategy.make_sampler())
    _check_meta(study, _study_meta(settings, ev, speed_used))
    register_worker(study)  # before any trial (see fail_orphaned_trials)
    strategy.resume(_finished_by(study, strategy.name))
    if settings.train is not None and trainer is None:
        trainer = Trainer(ev, budget=settings.budget)
    if trainer is not None and settings.timeout is not None:
        trainer.deadline = time.monotonic() + settings.timeout
    done: list[int] = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", platform.node())
        original = _duplicate_anchor(trial.study, trial.user_attrs.get("anchor"), trial.number)
        if original is not None:
            trial.set_user_attr(DUPLICATE_ATTR, original)
            raise optuna.TrialPruned(f"anchor trial {original} already ran or is running in another worker")
        if settings.train is not None and trainer is not None:
            ft = settings.train.suggest(trial, settings.workload)
            trial.set_user_attr(FINETUNE_ATTR, json.loads(ft.to_json()) if ft is not None else None)
            if ft is not None:
                trial.set_user_attr("finetune_weights", str(trainer.path(ft)))
            t0, runs = time.perf_counter(), trainer.trained
            try:
                key, state = trainer.weights(ft)
            except HopelessFinetune as exc:
                trial.set_user_attr("pruned", str(exc))
                if isinstance(exc, DivergedFinetune):
                    trial.set_user_attr(DIVERGED_ATTR, True)
                raise optuna.TrialPruned(str(exc)) from None
            finally:
                trial.set_user_attr("finetune_s", round(time.perf_counter() - t0, 2))
                trial.set_user_attr("finetune_trained", trainer.trained > runs)  # False: read from the cache
            ev.use_weights(state, key)
            if ft is not None:  # the exported file records the weights the trial ran
                trial.set_user_attr(WEIGHTS_ATTR, ev.net.weights_fingerprint)
        config = strategy.propose(trial)
        result = ev.evaluate(config)
        for k, v in config.to_attrs().items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("strategy", strategy.name)
        trial.set_user_attr("space", space.name if _uses_space(strategy) else None)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("pck", result.pck)
        if result.repeated:
            trial.set_user_attr(REPEAT_ATTR, True)
        if SEGMENTS_ATTR in result.extra:
            trial.set_user_attr(SEGMENTS_ATTR, result.extra[SEGMENTS_ATTR])
        trial.set_constraint("budget", result.accuracy_loss - settings.budget)
        strategy.after_trial(config, result)
        return result.accuracy_loss, result.speedup

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            done.append(trial.number)
            if on_trial is not None:
                on_trial(trial.number)
        if strategy.exhausted():
            log.info("strategy %s finished after %d trials", strategy.name, len(done))
            study.stop()
        elif settings.finish:
            # a trial of another search process on this host that was killed mid-trial is failed and
            # queued again here, not counted as taken (that stopped the study one short)
            fail_orphaned_trials(study)
            taken = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
            queued = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if len(taken) >= settings.trials and not queued:  # retries of lost trials are run first
                study.stop()

    if n_trials > 0 and not strategy.exhausted():
        optimize_resilient(study, objective, n_trials=n_trials, callbacks=[after], timeout=settings.timeout)
    return done


def _finished_by(study: optuna.Study, strategy: str) -> list[optuna.trial.FrozenTrial]:
    """The study's COMPLETE trials that ``strategy`` proposed, oldest first (what it resumes from)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted((t for t in done if t.user_attrs.get("strategy") == strategy), key=lambda t: t.number)


def _uses_space(strategy: Any) -> bool:
    from deltatune.search.strategies import SamplerStrategy

    return isinstance(strategy, SamplerStrategy)


def _worker_entry(
    settings_d: dict[str, Any],
    worker: int,
    n_trials: int,
    seed: int,
    parent: int | None = None,
    env: dict[str, str] | None = None,
) -> list[int]:
    """Picklable entry point for a worker process (settings travel as a plain dict); it exits when
    ``parent`` (the ``search`` process) dies, and takes the parent's ``DELTATUNE_*`` environment ``env``
    (a reused loky worker still has an earlier call's)."""
    from deltatune._workers import adopt_env, exit_with_parent

    if env is not None:
        adopt_env(env)
    if parent is not None:
        exit_with_parent(parent)
    logging.getLogger("deltatune").setLevel(logging.WARNING)
    from deltatune._workers import quiet_storage_threads

    quiet_storage_threads()
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, settings_d.get("jobs", 1))))
    return _worker(_settings_from_dict(settings_d), worker, n_trials, seed)


def _settings_from_dict(d: dict[str, Any]) -> SearchSettings:
    d = dict(d)
    d["workload"] = StudyWorkload.from_dict(d["workload"])
    d["modes"] = tuple(d["modes"])
    d["keyframes"] = tuple(d.get("keyframes", (0,)))
    d["keyframe_changes"] = tuple(d.get("keyframe_changes", (None,)))
    d["also_on"] = tuple(StudyWorkload.from_dict(w) for w in d.get("also_on", ()))
    r = dict(d["ranges"])
    r["mult"] = tuple(r["mult"])
    d["ranges"] = Ranges(**r)
    if d.get("train") is not None:
        d["train"] = TrainSpace.from_dict(d["train"])
    return SearchSettings(**d)


def rescore_heldout(
    study: optuna.Study, evaluator: Evaluator, trials: list[int], trainer: Trainer | None = None
) -> dict[str, dict[str, float]]:
    """Score ``trials`` on the held-out frames (skipping ones already scored); store and return them all.

    Trials of a ``--train`` search run with their own fine-tuned weights (``trainer`` puts them on the
    evaluator; required when any trial records a fine-tune)."""
    heldout = dict(study.user_attrs.get("heldout") or {})
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    changed = False
    for n in trials:
        if str(n) in heldout or n not in by_number:
            continue
        attrs = by_number[n].user_attrs
        if attrs.get(FINETUNE_ATTR) is not None and trainer is None:
            raise ConfigError(f"trial {n} ran fine-tuned weights; re-scoring it needs its fine-tune")
        if trainer is not None:
            trainer.apply(attrs)
        r = evaluator.evaluate(ThresholdFile.from_attrs(by_number[n].user_attrs), split="heldout")
        heldout[str(n)] = {"accuracy_loss": r.accuracy_loss, "speedup": r.speedup, "pck": r.pck}
        changed = True
    if changed:
        study.set_user_attr("heldout", heldout)
    return heldout


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker process (recorded ``pid`` on this ``host``) is gone, and
    enqueue each again (Optuna's retry callback: same parameters, ``failed_trial`` in its system attributes).

    A killed worker cannot tell its trial; without this it would show RUNNING forever (journal files
    have no heartbeats). Trials of other hosts are left alone: their processes cannot be checked here
    (an RDB storage's heartbeats cover them).

    A worker killed between creating a trial (Optuna's ``ask``) and recording its ``pid`` and ``host`` in
    it leaves a RUNNING trial that does not name its worker. Such a trial is failed too when every worker
    that ever opened the study (the ``worker:<host>:<pid>`` study attributes) ran on this host and is
    gone: then nobody can still be running it. Otherwise it is left alone.
    """
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from deltatune.search.storage import quiet_experimental

    quiet_experimental()
    retry = RetryHeartbeatStaleTrialCallback(max_retry=3)
    failed = fail_trials(study, _orphans(study))
    for n in failed:
        retry(study, unowned(study.get_trials(deepcopy=False)[n]))
    if failed:  # said wherever it happens: at a start, or by a --finish worker between its trials
        # named by study: an ablation's runs are inner studies, whose trial numbers alone said nothing
        log.warning("study %s: marked %d trial(s) of dead workers FAIL and queued them again: %s",
                    study.study_name, len(failed), failed)
    return failed


def fail_interrupted_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials that an interrupt (Ctrl-C, SIGTERM) of this process leaves behind.

    Optuna fails the trial whose objective the interrupt stopped, but one that lands after Optuna created
    the trial (``ask``) and before the objective ran, or while the result was being told, left it RUNNING
    (the trial table said a trial was still running after the search had ended). The trials naming this
    process are failed, and the ones naming no worker when every other worker of the study is gone (as
    :func:`fail_orphaned_trials` decides, counting this process as gone). They are not queued again: an
    interrupted trial is stopped, as Optuna's own interrupt handling leaves it. Trials of dead sibling
    workers are first failed and queued again by :func:`fail_orphaned_trials`, as a next start would
    (a ``--jobs`` worker that the same Ctrl-C killed before Optuna could fail its trial included).
    """
    fail_orphaned_trials(study)
    return fail_trials(study, _orphans(study, leaving=os.getpid()))


def _orphans(study: optuna.Study, *, leaving: int | None = None) -> list[int]:
    """The numbers of the RUNNING trials nobody runs any more (see :func:`fail_orphaned_trials`); a
    ``leaving`` process of this host counts as gone."""
    from optuna.trial import TrialState

    host, out = platform.node(), []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    unnamed_are_orphans = bool(running) and all_workers_gone(study, leaving=leaving)
    for t in running:
        pid, where = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if isinstance(pid, int) and where is not None:
            if where != host or (pid != leaving and alive(pid)):
                continue
        elif not unnamed_are_orphans:  # killed before its worker was written into it
            continue
        out.append(t.number)
    return out


def _granularity_notice(ev: Evaluator, budget: float) -> str | None:
    """A classifier's loss moves in steps of one sample (``100 / samples`` top-1 points): say so when the
    budget is below one step, since then only settings that flip no sample are feasible."""
    if ev.task == "pose":
        return None
    samples = (ev.frames["tune"].shape[0] - 1) * ev.frames["tune"].shape[1]
    step = 100.0 / max(samples, 1)
    if budget >= step:
        return None
    return (f"top-1 loss moves in steps of {step:.2f} points ({samples} tuning samples): --budget {budget} "
            "admits only settings that change no sample's top-1 class; more --frames, or more streams "
            "(--streams, or --window crops of a video of one's own), give a finer scale")


#: Anchor trials of a sampler search by default: ``min(ANCHORS_MAX, trials // 4)``.
ANCHORS_MAX = 6
#: Study user attribute holding the number of anchor trials its first run chose.
ANCHORS_ATTR = "anchors"


def _run_anchors(
    study: optuna.Study,
    settings: SearchSettings,
    ev: Evaluator,
    seed: int,
    *,
    trainer: Trainer | None = None,
    on_trial: Callable[[int], None] | None = None,
) -> list[int]:
    """Start a new sampler study with uniform-threshold trials, run here one at a time: all 0 (the exact
    delta network, always feasible), log position 0 of the range, then a bisection on the log position
    for the largest uniform threshold within the budget (0.5 first, then 0.25 or 0.75, ...).

    So even a short search has a feasible front, and the samplers start from where feasibility ends.
    Without the bisection (3 fixed anchors: 0, position 0 and 0.5), TPE on vtest frames 320-335 got
    position 0.5 at 1.07 points, just over the 1-point budget, and spent its 37 other trials at
    thresholds near 0 (0.87-0.99x), while uniform position 0.45 gives 1.35x at 0.80 points.
    Default: ``min(ANCHORS_MAX, trials // 4)`` anchors, of the study's first run (stored in the study:
    a resume goes on with that count); they count towards ``trials``; the first three are the fixed ones
    above whatever their outcome, except that a bisection needs a feasible position 0.
    A ``--train`` search's anchors run the original weights (``TrainSpace.anchor_params``). Returns the
    trials' numbers.

    A study stopped during its anchors (killed, or a first run with fewer trials) finishes them on the
    next run: an anchor the study holds finished is read, not run again (the bisection goes on from its
    outcome), and one queued again after its worker died is run, not queued twice.
    """
    from optuna.trial import TrialState

    from deltatune.search.strategies import SamplerStrategy

    if not issubclass(strategy_class(settings.strategy), SamplerStrategy):
        return []
    # the count the study's first run chose: a resume with another --trials goes on with the same bisection
    # (one resumed with --trials 4 stopped a 6-anchor bisection at its 2 held anchors)
    planned = study.user_attrs.get(ANCHORS_ATTR)
    if settings.anchors is not None:
        n = settings.anchors
    elif isinstance(planned, int):
        n = planned
    else:
        n = min(ANCHORS_MAX, settings.trials // 4)
    if planned != n:
        study.set_user_attr(ANCHORS_ATTR, n)
    space = _make_space(settings, ev)
    train = settings.train.anchor_params() if settings.train is not None else {}
    held = {t.user_attrs["anchor"]: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "anchor" in t.user_attrs}
    # anchors count towards this call's trials: it runs no more of them than it has trials for (a resume
    # sized by its first run would otherwise run 4 anchors for --trials 1); the next resume goes on
    limit = settings.trials
    if settings.finish:
        limit = max(0, limit - len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))))
    lo: float | None = None  # the largest feasible log position so far
    hi = 1.0  # the smallest infeasible one (1: the top of the range, never tried)
    done: list[int] = []
    for i in range(n):
        if i == 0:
            pos: float | None = None
        elif i == 1:
            pos = 0.0
        elif lo is None:
            break  # even the bottom of the range loses too much: nothing uniform to bisect
        else:
            pos = (lo + hi) / 2
        key = "zero" if pos is None else pos
        trial = held.get(key) or _await_anchor(study, key)
        if trial is None and len(done) >= limit:
            break
        # a copy pruned as a duplicate of another worker's (see _duplicate_anchor) waits for that one; if
        # it was lost in turn, the copy queued again in its place is run here. An anchor that failed or
        # was pruned on its own (cut off by --timeout) is not run again.
        for _ in range(3):
            if trial is not None or len(done) >= limit:
                break
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not any(t.user_attrs.get("anchor") == key for t in waiting):  # not queued again already
                study.enqueue_trial({**space.anchor_params(pos), **train}, user_attrs={"anchor": key})
            copies = _duplicates(study)
            numbers = _worker(settings, 0, 1, seed, on_trial=on_trial, evaluator=ev, trainer=trainer)
            done += numbers
            # the trial that ran (another process starting the same study may have run this one's anchor)
            trial = study.trials[numbers[-1]] if numbers else _await_anchor(study, key)
            if trial is None and _duplicates(study) == copies:
                break
        ran = trial.user_attrs.get("anchor", pos) if trial is not None else pos
        if not isinstance(ran, float):
            continue  # the all-0 anchor, or a sampled trial
        if trial is not None and trial.state == TrialState.COMPLETE and trial.values[0] <= settings.budget:
            lo = ran if lo is None else max(lo, ran)
        else:
            hi = min(hi, ran)
    return done


def _duplicate_anchor(study: optuna.Study, key: object, number: int) -> int | None:
    """The number of the trial of ``study`` that ran anchor ``key``, or runs it numbered below ``number``
    (:func:`deltatune._workers.taken_by`); None if there is none, or ``key`` is None (trial ``number`` is no
    anchor). Two searches starting one new study at the same moment can both queue an anchor: one of 8
    trials went to a second copy. The later copy is pruned unrun when it starts."""
    return None if key is None else taken_by(study, "anchor", key, number)


def _duplicates(study: optuna.Study) -> int:
    """How many anchor copies ``study`` holds pruned unrun as duplicates (:func:`_duplicate_anchor`):
    a run that pruned one (of this anchor, or of another one queued before it) ran nothing."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
               if DUPLICATE_ATTR in t.user_attrs)


#: Seconds between looks at an anchor trial that another worker of the study is running.
ANCHOR_POLL_S = 0.5


def _await_anchor(study: optuna.Study, key: object, *, poll_s: float = ANCHOR_POLL_S
                  ) -> optuna.trial.FrozenTrial | None:
    """The finished anchor trial ``key`` of ``study`` once no other worker is running it, else None.

    Two searches started on one new study (two terminals, or two hosts on one PostgreSQL study) both ran
    every anchor: the second saw the first's anchor neither finished nor queued, and queued its own copy.
    Now it waits for the running copy and reads its outcome, so the bisection goes on from there. A dead
    runner does not keep it waiting: one on this host is failed and its trial queued again
    (:func:`fail_orphaned_trials`), one on another host once its heartbeat is stale (RDB storages); the
    queued trial is then run here."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    said = False
    while True:
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.user_attrs.get("anchor") == key]
        if not running:
            break
        if not said:
            t = running[0]
            log.warning("study %s: waiting for anchor trial %d, which another worker (%s) is running",
                        study.study_name, t.number,
                        f"pid {t.user_attrs['pid']} on {t.user_attrs['host']}" if "pid" in t.user_attrs
                        else "starting")
            said = True
        time.sleep(poll_s)
        fail_orphaned_trials(study)
        fail_stale_trials(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("anchor") == key]
    return done[0] if done else None


def _shifted(report: Callable[[int], None], offset: int, n: int) -> None:
    report(offset + n)


def _sampling_started(study: optuna.Study) -> bool:
    """Whether ``study`` holds a trial that is not an anchor (its sampler has started): from then on a
    resume runs no anchors. A study with only (some of) its anchors has not."""
    return any("anchor" not in t.user_attrs for t in study.get_trials(deepcopy=False))


#: ``--speed measured`` with several workers: each times its trials while the others run.
MEASURED_JOBS_NOTICE = (
    "--speed measured with --jobs {jobs}: the workers time their trials at the same time, each with "
    "fewer threads, so the trials' speedups are contended and at another thread count than yours; read "
    "the re-timed front (--retime), or use --speed latency or --jobs 1"
)


def _split(total: int, jobs: int) -> list[int]:
    return [total // jobs + (1 if i < total % jobs else 0) for i in range(jobs)]


def run_search(
    settings: SearchSettings,
    *,
    on_progress: Callable[[int], None] | None = None,
    heldout: bool = True,
    evaluator: Evaluator | None = None,
    progress_training: bool = False,
    on_retime: Callable[[int, int], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> SearchResult:
    """Run ``settings.trials`` new trials on the study (resuming it if it exists), then the held-out check.

    With ``settings.finish`` the study is run up to ``settings.trials`` finished trials in total.

    ``on_progress(n_finished_this_run)`` is called with 0 once the settings are checked against a stored
    study, then as trials finish (for a progress bar; with ``finish``, the study's finished trials);
    ``progress_training`` shows a bar for each fine-tune of a ``--train`` search; ``on_retime(done,
    total)`` reports the re-timing of the front (``settings.retime``). The notices that matter before the
    time is spent (random weights, a sampler that never leaves its random start, ...) are said as they are
    found, to ``on_notice`` (default: a logged warning), and are among the result's ``notices`` too.
    ``evaluator`` reuses an already built :class:`Evaluator` of the same workload in this process (worker
    processes of ``jobs > 1`` always build their own).
    """
    from optuna.trial import TrialState

    t0 = time.perf_counter()
    notices: list[str] = []

    def say_now(notice: str) -> None:
        notices.append(notice)
        (on_notice or log.warning)(notice)

    _, speed_notice = resolve_speed(settings.speed)
    if speed_notice:
        say_now(speed_notice)
    if settings.jobs > 1 and resolve_speed(settings.speed)[0] == "measured":
        say_now(MEASURED_JOBS_NOTICE.format(jobs=settings.jobs))
    spec = settings.storage_spec()
    if evaluator is not None and evaluator.workload != settings.workload:
        raise ConfigError("run_search: the evaluator was built for another workload")
    if evaluator is not None and evaluator.speed != resolve_speed(settings.speed)[0]:
        raise ConfigError(f"run_search: the evaluator scores --speed {evaluator.speed}, not {settings.speed}")
    existing = _existing_study(spec, settings.study_name)
    if existing is not None:  # a resume with other settings is refused before the network and clip are built
        _check_meta(existing, _settings_meta(settings), record=False)
    if on_progress is not None and settings.finish and existing is not None:
        # --finish counts the study's finished trials: so does its bar (it went 0/8 to 3/8 on a study done)
        offset = len(existing.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        on_progress = partial(_shifted, on_progress, offset)
    if on_progress is not None:
        on_progress(0)  # the settings hold: a progress bar may show from here on
    # main process: validates inputs early, held-out check, jobs == 1 worker
    ev = make_evaluator(settings, evaluator)
    ev.check_scorable()  # every segment must have keypoints to lose
    for e in getattr(ev, "evaluators", [ev])[1:]:  # a whole other video came from --also-on
        e.check_scorable(f"--also-on {e.workload.video}" if e.workload.start == 0 else None)
    if ev.random_weights:
        wl = settings.workload
        say_now(RANDOM_WEIGHTS_NOTICE.format(model=wl.model, seed=wl.weights_seed))
    granularity = _granularity_notice(ev, settings.budget)
    if granularity:
        notices.append(granularity)
    # a "tpe" of 4 trials is random search: said once the inputs hold (a refused search says only why),
    # before the time is spent
    startup = startup_warning(settings.strategy, settings.trials)
    if startup is not None:
        say_now(startup)
    # the fit the trials are priced with, made now or cached (a segments search: its clip's)
    latency = getattr(getattr(ev, "evaluators", [ev])[0], "latency", None)
    if latency is not None and (rough := latency.poor_fit_note()):
        notices.append(rough)
    speed_used, _ = resolve_speed(settings.speed)
    study = open_study(spec, settings.study_name)
    _check_meta(study, _study_meta(settings, ev, speed_used))
    fail_orphaned_trials(study)
    n_before = len(study.get_trials(deepcopy=False))
    trainer = Trainer(ev, budget=settings.budget, progress=progress_training) if settings.train else None
    # seeds differ per worker and per resume, so a resumed study never replays its first run's draws
    # (modulo 2**32: the samplers seed numpy, which takes nothing larger; --seed 123456 overflowed)
    seeds = [(settings.seed * 100_003 + n_before * 101 + w) % 2**32 for w in range(settings.jobs)]
    counter = {"n": 0}

    def _one(_: int) -> None:
        counter["n"] += 1
        if on_progress is not None:
            on_progress(counter["n"])

    new: list[int] = []
    anchors: list[int] = []
    # an interrupt between Optuna's creating a trial and running it left the trial RUNNING
    with on_interrupt(lambda: fail_interrupted_trials(study)):
        out_of_time = False
        if not _sampling_started(study):  # a new study: its anchor trials first, here, one at a time
            t_anchors = time.perf_counter()
            anchors = _run_anchors(study, settings, ev, seeds[0], trainer=trainer, on_trial=_one)
            if settings.timeout is not None:  # the anchors' time counts towards --timeout
                left = settings.timeout - (time.perf_counter() - t_anchors)
                out_of_time = left <= 0
                settings = replace(settings, timeout=max(left, 1e-3))
        to_run = 0 if out_of_time else max(0, settings.trials - len(anchors))
        if settings.finish:  # up to N finished trials, and every queued one (retries of lost trials)
            finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            queued = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            to_run = 0 if out_of_time else max(0, settings.trials - len(finished), len(queued))
        shares = _split(to_run, settings.jobs)

        if settings.jobs == 1 and to_run > 0:
            new = _worker(settings, 0, to_run, seeds[0], on_trial=_one, evaluator=ev, trainer=trainer)
        elif to_run > 0:
            new = _run_parallel(settings, shares, seeds, study, n_before, on_progress)
    new = anchors + new

    study = open_study(spec, settings.study_name, create=False)
    df = trials_frame(study)
    front = pareto_frame(df)
    if trainer is not None:
        trainer.deadline = None  # re-scoring reads finished fine-tunes only
    if heldout and not front.empty:
        rescore_heldout(study, ev, [int(t) for t in front["trial"]], trainer=trainer)
        df = trials_frame(study)
        front = pareto_frame(df)
    best = _row_dict(best_under(df))
    retimed: list[Retimed] = []
    if settings.retime > 0 and best is not None:
        cands = retime_candidates(front, settings.retime)
        total = len(cands)
        busy = busy_machine()  # said beside the re-timed front it qualifies (the intervals ran 0.23-3.07x)
        if busy:
            notices.append(f"re-timing: {busy}")
        if on_retime is not None:  # the bar starts with the first point's timing, not after it
            on_retime(0, total)
        timed = retime_trials(
            study, ev, cands, repeats=settings.retime_repeats, trainer=trainer,
            on_trial=(lambda k: on_retime(k, total)) if on_retime is not None else None,
        )
        retimed = fastest_first(timed.values())
        best = _row_dict(df[df["trial"] == retimed[0].trial].iloc[0])
        assert best is not None
        top = retimed[0]
        best.update(measured_speedup=top.measured, measured_ci=[top.ci_low, top.ci_high],
                    measured_ci_level=top.ci_level, predicted_speedup=top.predicted,
                    measured_dense_ms=top.dense_ms)
    if best is not None and settings.train is not None:
        best["finetune"] = study.trials[best["trial"]].user_attrs.get(FINETUNE_ATTR)
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    repeats = _repeat_notice(study, new)
    if repeats:
        notices.append(repeats)
    capped = _capped_notice(df, speed_used, study)
    if capped:
        notices.append(capped)
    for notice in (_slower_than_dense_notice(best, speed_used, settings.budget, settings.keyframe_changes),
                   _heldout_notice(best, settings), _prediction_notice(best, speed_used, ev)):
        if notice:
            notices.append(notice)
    pruned = [t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
              if DUPLICATE_ATTR not in t.user_attrs]  # a second copy of an anchor, pruned unrun
    if pruned:
        said = (f"{len(pruned)} trial(s) pruned: a fine-tune that blew up, could not stay within the budget, "
                "or was cut off by --timeout (each trial's 'pruned' attribute says which)")
        blew = [t for t in pruned if t.user_attrs.get(DIVERGED_ATTR)]
        if blew:  # the one cause a lower learning rate cures: say it where the user reads
            said += f"; {len(blew)} blew up, as trial {blew[0].number}'s: {blew[0].user_attrs['pruned']}"
        notices.append(said)
    return SearchResult(
        study=settings.study_name,
        storage=spec.url,
        n_trials=n_complete,
        new_trials=len(new),
        pruned=len(pruned),
        new_pruned=sum(1 for t in pruned if t.number >= n_before),
        trials=df,
        front=front,
        best_feasible=best,
        hypervolume=hypervolume(front, ref_loss=settings.budget),
        budget=settings.budget,
        speed=speed_used,
        random_weights=ev.random_weights,
        notices=notices,
        wall_s=time.perf_counter() - t0,
        retimed=[{**r.to_dict(), "measured": r.measured} for r in retimed],
        streams=int(ev.frames["tune"].shape[1]),
    )


def _capped_notice(df: Any, speed: str, study: optuna.Study) -> str | None:
    """Says how many trials reached the MAC speedup cap (:data:`MAC_SPEEDUP_CAP`): on these tuning
    frames they did (almost) no multiply-adds, so the search could not tell their speeds apart. With
    ``--also-on`` a segment at the cap counts too: ``--aggregate mean`` folds it into a score below the
    cap (100x on a still segment and 2x on another give 51x) that it still dominates."""
    from optuna.trial import TrialState

    if speed != "macs" or df.empty:
        return None
    whole = set(df.loc[df["speedup"] >= MAC_SPEEDUP_CAP, "trial"].astype(int))
    part = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.number not in whole
            and any(float(seg.get("speedup", 0.0)) >= MAC_SPEEDUP_CAP
                    for seg in t.user_attrs.get(SEGMENTS_ATTR) or [])}
    if not whole and not part:
        return None
    said = f"{len(whole)} trial(s) scored the MAC speedup cap, {MAC_SPEEDUP_CAP:g}x" if whole else ""
    if part:
        some = f"{len(part)} {'more ' if whole else ''}trial(s)"
        said += (", and " if said else "") + (f"{some} reached it on one of their segments, which the "
                                              "aggregate score hides")
    return (f"{said}: on those frames they did (almost) no multiply-adds, every change truncated, so "
            "their speeds cannot be told apart; frames where more moves (--start, another segment) or "
            "--speed latency tell them apart")


def _repeat_notice(study: optuna.Study, new: list[int]) -> str | None:
    """Says how many of this run's trials proposed a setting already scored (see
    :meth:`Evaluator.evaluate`'s memo), or None when none did."""
    if not new:
        return None
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    k = sum(1 for n in new if n in by_number and by_number[n].user_attrs.get(REPEAT_ATTR))
    if k == 0:
        return None
    return (f"{k} of {len(new)} trials proposed a setting their worker had already scored (counted once on "
            "the front, not evaluated again): the sampler keeps returning to points it has tried, so "
            "more trials of it add little (--strategy random explores without converging)")


#: A dense frame (all streams) below this many milliseconds is too cheap for delta inference to pay:
#: the delta network's per-layer costs alone come near it (see :func:`_slower_than_dense_notice`).
SMALL_DENSE_MS = 5.0


def _slower_than_dense_notice(
    best: dict[str, Any] | None, speed: str, budget: float, keyframe_changes: tuple[Any, ...] = (None,)
) -> str | None:
    """Says so when the recommended trial is not faster than the dense model: measured when the front was
    re-timed (slower: its CI of the median below 1; not measurably faster: a CI that reaches below 1),
    else by the latency estimate. MAC counts never fall below 1, so a MAC search says nothing here. Key
    frames on change are suggested unless the search already tried them (``keyframe_changes``)."""
    if best is None:
        return None
    verdict = "runs slower than"
    if best.get("measured_speedup") is not None:
        low, high = best["measured_ci"]
        if low >= 1.0:
            return None
        how = f"{best['measured_speedup']:.2f}x measured"
        if high >= 1.0:
            verdict = "is not measurably faster than"
            how += f", CI [{low:.2f}, {high:.2f}] reaches below 1"
    elif speed in ("latency", "measured") and best["speedup"] < 1.0:
        how = f"{best['speedup']:.2f}x by the {speed} objective"
    else:
        return None
    dense_ms = best.get("measured_dense_ms")
    if dense_ms is not None and dense_ms < SMALL_DENSE_MS:
        return (f"the recommended trial {verdict} the dense model on this machine ({how}): the dense model "
                f"takes only {dense_ms:.1f} ms a frame here, so the delta network's fixed costs (about "
                "20-40 us per layer for masks, truncation and Python, whatever changed) outweigh the work "
                "it skips. Delta inference pays on models whose frames cost tens of milliseconds; run "
                "this one dense")
    tried = any(c is not None for c in keyframe_changes)
    keyframes = "" if tried else ", key frames on change (--keyframe-change none,0.5)"
    return (f"the recommended trial {verdict} the dense model on this machine ({how}): within a "
            f"{budget:g}-point budget no trial skipped enough work to pay for the delta bookkeeping (where "
            "most pixels change every frame, as under a moving camera or strong compression noise, there is "
            "little to skip). Run the "
            f"dense model, or try more --trials{keyframes} or a larger --budget")




def _prediction_notice(best: dict[str, Any] | None, speed: str, ev: Any) -> str | None:
    """Says so when the recommended trial, re-timed, measured more than :data:`PREDICTION_TOLERANCE` away
    from the latency model's prediction: the front's predicted speedups are then rough on this clip (the
    recommendation itself is measured). Names the clip the model was fitted on and how to refit."""
    if speed != "latency" or best is None or best.get("measured_speedup") is None:
        return None
    measured, predicted = float(best["measured_speedup"]), best.get("predicted_speedup")
    if predicted is None or measured <= 0 or abs(float(predicted) / measured - 1) <= PREDICTION_TOLERANCE:
        return None
    gap = float(predicted) / measured - 1
    where = getattr(ev, "latency_fitted_on", lambda: None)()
    here = getattr(ev, "clip_label", lambda: None)()
    fitted = f" (fitted on {where})" if where else ""
    what = ("To refit it (on this clip, at another moment)" if where is not None and where == here
            else "To fit it on this clip")
    return (f"the latency model{fitted} predicted {float(predicted):.2f}x for the recommended trial, which "
            f"measured {measured:.2f}x ({gap:+.0%}): on this clip the front's predicted speedups are rough "
            f"(the recommendation itself is measured). {what}, search again with --refit; or search with "
            "--speed measured")


def _heldout_notice(best: dict[str, Any] | None, settings: SearchSettings) -> str | None:
    """Says so when the recommended trial loses more than the budget on the held-out frames: the setting
    fits the tuning frames and may not hold on other video. None when it stays within the budget, or was
    not re-scored."""
    if best is None or best.get("heldout_accuracy_loss") is None:
        return None
    lost = float(best["heldout_accuracy_loss"])
    if lost <= settings.budget:
        return None
    w = settings.workload
    return (f"on the {w.heldout_frames} held-out frame(s) per stream the recommended trial lost {lost:.2f} "
            f"points, over the {settings.budget:g}-point budget ({best['accuracy_loss']:.2f} on the tuning "
            "frames): this setting may not hold on other video. Tune on more --frames, on more segments at "
            "once (--also-on), or with a smaller --budget, and check it with deltatune bench --start N on "
            "frames no search saw")


def _row_dict(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "trial": int(row["trial"]),
        "accuracy_loss": float(row["accuracy_loss"]),
        "speedup": float(row["speedup"]),
        "feasible": bool(row["feasible"]),
        "strategy": row["strategy"],
        "heldout_accuracy_loss": _num(row["heldout_accuracy_loss"]),
        "heldout_speedup": _num(row["heldout_speedup"]),
    }


def _run_parallel(
    settings: SearchSettings,
    shares: list[int],
    seeds: list[int],
    study: optuna.Study,
    n_before: int,
    on_progress: Callable[[int], None] | None,
) -> list[int]:
    """``len(shares)`` loky worker processes; a thread polls the storage to report progress."""
    import torch
    from joblib import Parallel, delayed
    from optuna.trial import TrialState

    from deltatune._workers import deltatune_env

    stop = threading.Event()

    def _poll() -> None:
        last = -1
        while not stop.wait(1.0):
            try:
                n = (
                    len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))
                    - n_before
                )
            except Exception:  # a storage read racing a writer: try again next tick
                continue
            if n != last and on_progress is not None:
                on_progress(n)
                last = n

    thread = threading.Thread(target=_poll, daemon=True)
    thread.start()
    d = asdict(settings)
    d["workload"] = settings.workload.to_dict()
    # workers run with fewer threads each; they price trials at this command's count, which re-times them
    d["price_threads"] = settings.price_threads or torch.get_num_threads()
    d["refit"] = False  # this process has refitted (make_evaluator); the workers read its fit
    try:
        with worker_deaths():
            results = Parallel(n_jobs=len(shares), backend="loky")(
                delayed(_worker_entry)(d, w, n, seeds[w], os.getpid(), deltatune_env())
                for w, n in enumerate(shares)
                if n > 0
            )
    finally:
        stop.set()
        thread.join()
    return [n for r in results for n in r]
