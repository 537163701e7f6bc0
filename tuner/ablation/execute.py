"""What one run of a study does, and what it records.

A run is one design point on one repeated unit (:class:`~deltatune.ablation.spec.Run`):

- **search** runs one threshold search (:func:`deltatune.search.runner.run_search`) with the run's
  strategy, trials, space, budget and seed on the tuning frames, picks the fastest setting within the
  budget, and scores it on the held-out frames (and on every ``score_on`` segment). The inner search is an
  Optuna study of its own, ``<study>.<run key>``, in the same storage: a run retried after a crash finishes
  that search to its asked number of trials instead of starting again.
- **detection** trains the person detector of the run's settings and seed and scores it on held-out
  frames with a classic or a delta backbone (:mod:`deltatune.ablation.detection`).
- **evaluate** applies a fixed threshold setting (a file or one number, times ``scale``) with the run's
  truncation mode, accumulation and input dilation to one segment, and scores the whole segment.

Speed is measured in every run where ``speed_repeats > 0``: dense PyTorch (the faster of NCHW and
channels-last) and the delta network (sparse backend) timed in turn on the same frames, one untimed
warm-up round, then ``speed_repeats`` rounds; each round's ``dense ms / delta ms`` is kept, so the report
can give an interval for the speedup instead of one number.

Each process keeps its evaluators (converted networks, dense references) between runs: building one takes
seconds, and runs of one study share workloads.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from deltatune.ablation.spec import (
    Run,
    Segment,
    StudySpec,
    parse_frames,
    run_study_name,
    split_list,
)
from deltatune.errors import ConfigError

if TYPE_CHECKING:
    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.train.finetune import FinetuneConfig

__all__ = [
    "RunOutcome",
    "Observation",
    "WorkerState",
    "execute_run",
    "fixed_finetune_config",
    "study_train_lrs",
]

log = logging.getLogger(__name__)


@dataclass
class Observation:
    """The metrics of one scored stretch of video (``extra``: observation factors, e.g. scored_on)."""

    metrics: dict[str, float]
    extra: dict[str, str] = field(default_factory=dict)
    speed: list[tuple[float, float]] = field(default_factory=list)  # (dense ms, delta ms) per repeat

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "extra": dict(self.extra),
            "speed": [list(s) for s in self.speed],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Observation:
        return cls(
            {k: (math.nan if v is None else float(v)) for k, v in d["metrics"].items()},
            dict(d.get("extra") or {}),
            [tuple(s) for s in d.get("speed") or []],
        )  # type: ignore[misc]


@dataclass
class RunOutcome:
    """What a run stores: its observations, the chosen setting, the search front (search runs)."""

    observations: list[Observation]
    config: dict[str, Any] | None = None
    front: list[tuple[float, float]] = field(default_factory=list)  # (accuracy loss, speedup)
    wall_s: float = 0.0
    #: the model ran seeded random weights (``weights = "default"`` on a model with none here)
    random_weights: bool = False
    #: fingerprint of the study's weights the run ran (:func:`~deltatune.delta.fingerprint.
    #: weights_fingerprint`; ``None``: a detection run, which trains its own), so that a resumed study can
    #: tell a weights file that changed on disk since its finished runs
    weights: str | None = None
    #: the settings of a search run's fixed fine-tune (``FinetuneConfig.to_json``, its learning rate
    #: resolved; ``None``: the original weights), so that a resumed study can tell runs made at another rate
    finetune: dict[str, Any] | None = None
    #: the learning rates a ``train = on`` run's search sampled (``None``: no such search), likewise
    train_lr: list[float] | None = None


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


class WorkerState:
    """Per-process caches: one evaluator per workload (it also holds the timing network)."""

    def __init__(self, spec: StudySpec, storage: str | None) -> None:
        self.spec = spec
        self.storage = storage
        self._evaluators: dict[Any, Any] = {}
        #: other per-process objects runs share (detection studies: decoded frames)
        self.memo: dict[Any, Any] = {}

    def workload(self, segment: Segment | None = None) -> Any:
        from deltatune.search.study_workload import StudyWorkload

        s = self.spec
        weights = s.weights if s.weights in (None, "default") else s.local_path(s.weights)
        wl = StudyWorkload(
            s.model, weights=weights, video=s.local_path(s.video), frames=s.frames, streams=s.streams,
            start=s.start, heldout=s.heldout, joints=s.joints, windows=s.windows,
        )
        # a sample with fewer default crop windows (carphone has one) is scored on all it has
        return wl.on_segment(s.local_segment(segment or Segment(s.video, s.start)))

    def weights_of(self, ev: Any) -> str:
        """The fingerprint of evaluator ``ev``'s original weights (fine-tunes run copies), computed once
        per evaluator: what a run records as the weights it ran."""
        from deltatune.delta.fingerprint import weights_fingerprint

        key = ("weights", id(ev))
        if key not in self.memo:
            self.memo[key] = weights_fingerprint(ev.model)
        return str(self.memo[key])

    def evaluator(self, workload: Any) -> Any:
        from deltatune.search.objective import Evaluator

        if workload not in self._evaluators:
            # scoring other video: frames without keypoints give a NaN loss (see _score), not an error;
            # the run's own search still refuses them (run_search checks its evaluators)
            self._evaluators[workload] = Evaluator(workload, require_keypoints=False)
        return self._evaluators[workload]


def study_thresholds_file(spec: StudySpec, value: str, names: list[str]) -> ThresholdFile:
    """A study's thresholds file ``value`` (as written, or relative to the study file), read for a
    network with truncation points ``names``: a :class:`ThresholdError` when it does not fit them."""
    from deltatune.delta.thresholds import check_names, load_thresholds

    tf = load_thresholds(spec.local_path(value), names)
    check_names(tf.thresholds.keys(), names, source=f"thresholds file {value}")
    return tf


def evaluate_setting(spec: StudySpec, p: Any, names: list[str]) -> ThresholdFile:
    """The setting an evaluate run scores: its thresholds (a file's, or one value for every point) times
    ``scale``; mode, input dilation and key frames as the study sets them, else as a thresholds file says
    (an exported search setting is scored as it was found, not at the defaults), else the defaults."""
    from deltatune.ablation.spec import keyframe_change_value
    from deltatune.delta.thresholds import ThresholdFile

    value, scale = spec.setting(p, "thresholds"), float(spec.setting(p, "scale"))
    tf = study_thresholds_file(spec, value, names) if isinstance(value, str) else None
    given = {k: getattr(tf, k) if tf is not None and spec.table_of(k) is None else spec.setting(p, k)
             for k in ("mode", "input_dilation", "keyframe_interval", "keyframe_change")}  # fmt: skip
    if given["keyframe_change"] is None:  # a file's "none", as a study writes it
        given["keyframe_change"] = "none"
    thr = ({k: (None if v is None else v * scale) for k, v in tf.thresholds.items()} if tf is not None
           else {n: float(value) * scale for n in names})  # fmt: skip
    return ThresholdFile(
        thr,
        mode=str(given["mode"]),
        input_dilation=int(given["input_dilation"]),
        keyframe_interval=int(given["keyframe_interval"]),
        keyframe_change=keyframe_change_value(given["keyframe_change"]),
    )


Weights = tuple[str | None, dict[str, torch.Tensor] | None]
#: the original weights
ORIGINAL: Weights = (None, None)


def _score(
    state: WorkerState,
    workload: Any,
    config: Any,
    split: str,
    *,
    accumulate: bool,
    extra: dict[str, str],
    weights: Weights = ORIGINAL,
) -> Observation:
    """Score ``config`` on ``split`` of ``workload`` with ``weights`` (``(key, state dict)`` of a
    fine-tune, or the original); time it when the study asks for speed. Speedups are against the
    original dense model (same architecture)."""
    ev = state.evaluator(workload)
    ev.use_weights(weights[1], weights[0])
    ev.set_accumulate(accumulate)
    r = ev.evaluate(config, split=split)  # type: ignore[arg-type]
    speed: list[tuple[float, float]] = []
    metrics = {"accuracy_loss": r.accuracy_loss, "mac_speedup": r.speedup}
    if ev.counted_keypoints(split) == 0:  # nothing to lose there: the loss is unknown, not 0
        metrics["accuracy_loss"] = math.nan
        _warn_once(f"{workload.video}@{workload.start} ({split})", ev)
    if state.spec.speed_repeats > 0:
        speed = ev.timed(config, split, repeats=state.spec.speed_repeats)  # type: ignore[arg-type]
        metrics["measured_speedup"] = _median_ratio(speed)
    return Observation(metrics, extra, speed)


_WARNED: set[str] = set()


def _warn_once(where: str, ev: Any) -> None:
    if where not in _WARNED:
        _WARNED.add(where)
        log.warning(
            "%s: %s on these frames; its accuracy loss is recorded as NaN (speed is still measured)",
            where,
            ev.no_keypoint_phrase(),
        )


def _median_ratio(speed: list[tuple[float, float]]) -> float:
    import statistics

    return statistics.median(d / max(s, 1e-9) for d, s in speed) if speed else math.nan


def execute_run(state: WorkerState, run: Run) -> RunOutcome:
    """Do ``run`` and return what it measured (raises :class:`ConfigError` on bad input)."""
    t0 = time.perf_counter()
    spec = state.spec
    if spec.kind == "evaluate":
        out = _evaluate_run(state, run)
    elif spec.kind == "search":
        out = _search_run(state, run)
    elif spec.kind == "detection":
        from deltatune.ablation.detection import detection_run

        out = detection_run(state, run)
    else:  # pragma: no cover - validated by the spec
        raise ConfigError(f"study kind {spec.kind!r} is unknown")
    out.wall_s = time.perf_counter() - t0
    out.random_weights = any(bool(getattr(ev, "random_weights", False)) for ev in state._evaluators.values())
    return out


def _evaluate_run(state: WorkerState, run: Run) -> RunOutcome:
    from deltatune.ablation.spec import parse_segment

    spec, p = state.spec, run.point
    wl = state.workload(parse_segment(run.unit))
    ev = state.evaluator(wl)
    config = evaluate_setting(spec, p, ev.threshold_names)
    obs = _score(state, wl, config, "all", accumulate=bool(spec.setting(p, "accumulate")), extra={})
    return RunOutcome([obs], config=config.to_attrs(), weights=state.weights_of(ev))


def train_space(spec: StudySpec, p: Any, wl: Any, seed: int, **kw: Any) -> Any:
    """The fine-tuning frames and space of a run at point ``p``: ``train_frames``, else the first frames
    after the clip that no segment the run is scored on (``also_on``, ``score_on``) overlaps; checked
    against those segments either way, so no run is scored on frames its fine-tune saw."""
    from deltatune.search.training import TrainSpace

    segments = spec.also_on(p) + list(spec.score_on)
    others = [wl.on_segment(spec.local_segment(seg)) for seg in segments]
    frames = parse_frames(spec.setting(p, "train_frames"))
    if frames is None:
        return TrainSpace.after(wl, others, seed=seed, **kw)
    space = TrainSpace(start=frames.start, frames=len(frames), seed=seed, **kw)
    space.check(wl, others)
    return space


def fixed_finetune_config(spec: StudySpec, run: Run, wl: Any) -> FinetuneConfig | None:
    """The settings of ``run``'s fixed fine-tune (``finetune_steps > 0``; ``None``: it runs the original
    weights). An unset ``lr`` is the model's own fine-tuning rate
    (:func:`~deltatune.train.finetune.default_lr`), as in ``deltatune finetune`` and ``search --train``:
    one rate for every model wrecked blazepose's weights (1e-4; its own is 1e-6)."""
    p = run.point
    steps = int(spec.setting(p, "finetune_steps"))
    if steps == 0:
        return None
    lr = spec.setting(p, "lr")
    return train_space(spec, p, wl, run.seed).config(
        wl,
        steps=steps,
        **({} if lr is None else {"lr": float(lr)}),  # None: the config's own default, the model's rate
        weight_decay=float(spec.setting(p, "weight_decay")),
        sparsity_penalty=float(spec.setting(p, "sparsity_penalty")),
        truncation_aware=bool(spec.setting(p, "truncation_aware")),
    )


def study_train_lrs(spec: StudySpec) -> tuple[float, ...]:
    """The learning rates a ``train = on`` run's search samples: ``search --train``'s default levels for the
    study's model (:func:`~deltatune.search.training.default_lrs`, around its own fine-tuning rate; a study
    file cannot set them). They were 1e-5, 3e-5 and 1e-4 for every model, every one of which wrecks
    blazepose."""
    from deltatune.search.training import default_lrs

    return default_lrs(spec.model, spec.weights)


def _fixed_finetune(state: WorkerState, cfg: FinetuneConfig | None, wl: Any) -> Weights:
    """The weights of fixed fine-tune ``cfg``, computed once and cached; ``None``: the original."""
    from deltatune.search.training import Trainer

    if cfg is None:
        return ORIGINAL
    return Trainer(state.evaluator(wl), budget=None, lr_option="the study file's lr").weights(cfg)


def _search_run(state: WorkerState, run: Run) -> RunOutcome:
    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.search.runner import SearchSettings, make_evaluator, run_search

    spec, p = state.spec, run.point
    wl = state.workload()
    ev = state.evaluator(wl)
    accumulate = bool(spec.setting(p, "accumulate"))
    train = bool(spec.setting(p, "train"))  # with finetune_steps > 0 refused by the study file's parser
    fixed_cfg = fixed_finetune_config(spec, run, wl)
    fixed = _fixed_finetune(state, fixed_cfg, wl)
    recorded = None if fixed_cfg is None else json.loads(fixed_cfg.to_json())
    levels = study_train_lrs(spec) if train else None
    rates = {"finetune": recorded, "train_lr": None if levels is None else list(levels)}  # provenance
    timeout = float(spec.setting(p, "timeout"))
    settings = SearchSettings(
        workload=wl,
        trials=int(spec.setting(p, "trials")),
        strategy=str(spec.setting(p, "strategy")),
        space=str(spec.setting(p, "space")),
        budget=float(spec.setting(p, "budget")),
        study=run_study_name(spec.name, run.key),
        storage=state.storage,
        seed=run.seed,
        tune_dilation=bool(spec.setting(p, "tune_dilation")),
        modes=(str(spec.setting(p, "mode")),),
        finish=True,
        train=train_space(spec, p, wl, run.seed, lr=levels) if levels else None,
        timeout=timeout if timeout > 0 else None,
        also_on=tuple(wl.on_segment(spec.local_segment(seg)) for seg in spec.also_on(p)),
        aggregate=str(spec.setting(p, "aggregate")),
        keyframes=tuple(int(t) for t in split_list(spec.setting(p, "keyframes"))),
    )
    # every segment's evaluator is built once per worker, like the main one, so each gets this run's
    # weights and accumulation (a cached one still holds an earlier run's)
    search_ev = make_evaluator(settings, ev, evaluator_for=state.evaluator)
    search_ev.use_weights(fixed[1], fixed[0])
    search_ev.set_accumulate(accumulate)
    said = set(spec.startup_notes())  # `deltatune ablate` said these once, before any run started

    def notice(text: str) -> None:
        (log.debug if text in said else log.warning)(text)

    res = run_search(settings, evaluator=search_ev, on_notice=notice)
    front = [(float(r.accuracy_loss), float(r.speedup)) for r in res.front.itertuples()]
    best = res.best_feasible
    if best is None:
        nan = math.nan
        metrics = {"tune_loss": nan, "tune_speedup": nan, "heldout_loss": nan, "heldout_speedup": nan}
        config = None
    else:
        metrics = {
            "tune_loss": best["accuracy_loss"],
            "tune_speedup": best["speedup"],
            "heldout_loss": _nan(best["heldout_accuracy_loss"]),
            "heldout_speedup": _nan(best["heldout_speedup"]),
        }
        config = _config_of(state, settings, int(best["trial"]))
    weights = fixed
    if config is not None and config.get("finetune") is not None:
        from deltatune.search.training import Trainer, finetune_of_attrs

        weights = Trainer(ev, budget=None).weights(finetune_of_attrs(config))
    metrics["hypervolume"] = res.hypervolume
    metrics["feasible_trials"] = float(res.trials["feasible"].sum()) if "feasible" in res.trials else 0.0
    if not spec.score_on:
        obs = Observation(metrics)
        if config is not None and spec.speed_repeats > 0:
            timed = _score(
                state,
                wl,
                ThresholdFile.from_attrs(config),
                "heldout",
                accumulate=accumulate,
                extra={},
                weights=weights,
            )
            obs.metrics["measured_speedup"] = timed.metrics["measured_speedup"]
            obs.speed = timed.speed
        elif spec.speed_repeats > 0:
            obs.metrics["measured_speedup"] = math.nan
        return RunOutcome([obs], config=config, front=front, weights=state.weights_of(ev), **rates)
    # generalisation: the chosen setting scored on its tuning frames, its held-out frames, other segments
    observations: list[Observation] = []
    own = {"tuning": (wl, "tune"), "held-out": (wl, "heldout")}
    targets: list[tuple[str, Any, str]] = [(label, *own[label]) for label in spec.observe]
    targets += [(seg.label, state.workload(seg), "all") for seg in spec.score_on]
    for label, workload, split in targets:
        if config is None:
            observations.append(
                Observation({"accuracy_loss": math.nan, "mac_speedup": math.nan}, {"scored_on": label})
            )
            continue
        observations.append(
            _score(
                state,
                workload,
                ThresholdFile.from_attrs(config),
                split,
                accumulate=accumulate,
                extra={"scored_on": label},
                weights=weights,
            )
        )
    return RunOutcome(observations, config=config, front=front, weights=state.weights_of(ev), **rates)


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def _config_of(state: WorkerState, settings: Any, trial: int) -> dict[str, Any]:
    """The setting stored on trial ``trial`` of the inner search, as trial attributes
    (:meth:`~deltatune.delta.thresholds.ThresholdFile.to_attrs`: what the run's ``config`` records), with
    the trial's fine-tuning configuration under ``finetune`` (``None``: it ran the run's weights)."""
    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.search.runner import open_study
    from deltatune.search.training import ATTR

    study = open_study(settings.storage_spec(), settings.study_name, create=False)
    attrs = study.trials[trial].user_attrs
    return {**ThresholdFile.from_attrs(attrs).to_attrs(), "finetune": attrs.get(ATTR)}
