"""One run of a detection study: the person detector of the run's design point and seed, trained (once)
and scored with the run's backbone on held-out frames.

The factors (``FACTORS["detection"]`` in :mod:`deltatune.ablation.spec`) are the settings of
:class:`~deltatune.train.detection.DetectionTrainConfig` (``optimizer``, ``lr``, ``weight_decay``,
``epochs``, ``batch_size``, ``size``, ``head_features``, ``threshold``, ``train_frames``; the seed is the
run's), the backbone the detector runs with (``classic``: dense, ``delta``: the delta network at
``threshold`` on every truncation point), the score threshold of the average IoU and the scored frames
(``eval_frames``; default: the held-out part of the video's split).

* **Training** is :func:`~deltatune.train.detection.train_detector`. Its weights are cached under
  ``$DELTATUNE_DETECTOR_CACHE/<hash of the training config>.pt`` (default folder:
  ``<data dir>/cache/detectors``): the classic and the delta run of one
  (head features, weight decay, ..., seed) share the trained detector, because the backbone a detector
  runs with at inference does not change its training. A run interrupted while training resumes from the
  training checkpoint.
* **Scoring** is :func:`~deltatune.train.detection_eval.evaluate_detector` with the delta backbone: it
  scores the dense and the delta detections on the same frames and times both interleaved
  (``speed_repeats`` rounds, as ``deltatune bench``, on the first ``timed_frames`` frames or all), so
  one evaluation serves both backbones and their ms/frame come from one interleaved measurement. It is
  cached beside the weights, keyed by the frames, the threshold, the score threshold, the repeats, the
  timed frames, the host and the torch thread count (a run with ``--threads 2`` is not served the
  times measured with 1). The classic run records the dense backbone's numbers; the delta run the
  delta backbone's, with its timed rounds as speed repeats.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltatune.ablation.spec import DesignPoint, Run, StudySpec, field_location, parse_frames, parse_size
from deltatune.errors import ConfigError, DeltatuneError

if TYPE_CHECKING:
    from deltatune.ablation.execute import RunOutcome, WorkerState
    from deltatune.train.detection import DetectionTrainConfig

__all__ = [
    "detector_cache",
    "CACHE_ENV",
    "detection_config",
    "eval_frames",
    "check_detection_inputs",
    "detection_run",
]

_EVAL_FORMAT = "deltatune-detector-eval/1"
CACHE_ENV = "DELTATUNE_DETECTOR_CACHE"


def detector_cache() -> Path:
    """Where trained detectors (and their scores) are cached: ``$DELTATUNE_DETECTOR_CACHE``, or
    ``<data dir>/cache/detectors``."""
    import os

    from deltatune.data.assets import data_dir

    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else data_dir() / "cache" / "detectors"


def detection_config(spec: StudySpec, point: DesignPoint, seed: int) -> DetectionTrainConfig:
    """The training config of ``point`` with ``seed`` (the study's video; unset settings: the trainer's
    defaults)."""
    from dataclasses import replace

    from deltatune.train.detection import DetectionTrainConfig

    s = spec.setting
    frames = parse_frames(s(point, "train_frames"))
    cfg = DetectionTrainConfig(
        video=_source(spec),
        frames=None if frames is None else (frames.start, frames.stop),
        optimizer=str(s(point, "optimizer")),
        lr=float(s(point, "lr")),
        weight_decay=float(s(point, "weight_decay")),
        epochs=int(s(point, "epochs")),
        batch_size=int(s(point, "batch_size")),
        head_features=str(s(point, "head_features")),
        threshold=float(s(point, "threshold")),
        seed=seed,
    )
    size = parse_size(s(point, "size"))
    return cfg if size is None else replace(cfg, size=size)


def eval_frames(spec: StudySpec, point: DesignPoint) -> range:
    """The frames a run scores: ``eval_frames``, else the held-out part of the video's default split."""
    from deltatune.train.detection_eval import held_out_frames

    return parse_frames(spec.setting(point, "eval_frames")) or held_out_frames(_source(spec))


def _source(spec: StudySpec) -> str:
    """The study's video: a sample name, or a file / MOT folder relative to the study file."""
    return spec.local_path(spec.video)


def check_detection_inputs(spec: StudySpec) -> None:
    """Cheap checks before any training: every point's settings, the video, and frame ranges that lie
    inside it and do not overlap (held-out frames must be unseen)."""
    from deltatune.train.detection import source_length, training_frames

    try:
        n = source_length(_source(spec))
    except DeltatuneError as exc:  # missing, unreadable, not a video
        raise ConfigError(f"{field_location(spec, 'study', 'video')}: {exc}") from None
    for point in spec.points():
        cfg = detection_config(spec, point, 0)
        try:
            cfg.validate()
        except ConfigError as exc:
            raise ConfigError(f"{spec.path}: {exc}") from None
        train, held = training_frames(cfg), eval_frames(spec, point)
        for what, r in (("train_frames", train), ("eval_frames", held)):
            if r.stop > n:
                raise ConfigError(
                    f"{_where(spec, what)} {r.start}:{r.stop}: the video {spec.video} has {n} frames"
                )
        if len(held) < 2:
            raise ConfigError(
                f"{_where(spec, 'eval_frames')} {held.start}:{held.stop}: need at least 2 frames"
            )
        if train.start < held.stop and held.start < train.stop:
            raise ConfigError(
                f"{_where(spec, 'eval_frames')} {held.start}:{held.stop} overlap train_frames "
                f"{train.start}:{train.stop}; score on frames the detector did not train on"
            )
        timed = int(spec.setting(point, "timed_frames"))
        if timed > len(held):  # the report would show the number asked for, not the one timed
            raise ConfigError(
                f"{_where(spec, 'timed_frames')} {timed}: more than the {len(held)} frames of eval_frames "
                f"{held.start}:{held.stop}; use at most {len(held)}, or 0 for all of them"
            )


def _where(spec: StudySpec, key: str) -> str:
    """``file:line: table.key`` of a detection setting (in [fixed] or [factors]; its default: the file)."""
    table = spec.table_of(key)
    return field_location(spec, table, key) + ":" if table else f"{spec.path}: {key}"


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _data(state: WorkerState, cfg: DetectionTrainConfig, frames: range) -> Any:
    """Frames ``frames`` of the study's video at ``cfg``'s size with their boxes, decoded once per worker."""
    from deltatune.train.detection_data import load_detection_data

    key = ("detection-data", cfg.video, frames, cfg.size)
    if key not in state.memo:
        state.memo[key] = load_detection_data(cfg.video, frames, cfg.size)
    return state.memo[key]


def detector_path(cfg: DetectionTrainConfig) -> Path:
    """Where the detector trained with ``cfg`` is cached (present once trained)."""
    return detector_cache() / f"{_key(cfg.to_json())}.pt"


def _trained(state: WorkerState, cfg: DetectionTrainConfig) -> Path:
    """The weights of ``cfg``: from the cache, else trained (resuming an interrupted training)."""
    from deltatune.train.detection import train_detector, training_frames

    path = detector_path(cfg)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    train_detector(cfg, path, resume=True, data=_data(state, cfg, training_frames(cfg)))
    return path


def _evaluated(
    state: WorkerState,
    weights: Path,
    cfg: DetectionTrainConfig,
    frames: range,
    score_threshold: float,
    timed_frames: int | None,
) -> dict[str, Any]:
    """The dense and delta scores of ``weights`` on ``frames`` (cached beside the weights)."""
    import torch

    from deltatune._atomic import atomic_write_text
    from deltatune.train.detection_eval import evaluate_detector, load_detector

    repeats = max(1, state.spec.speed_repeats)
    spec_key = [_EVAL_FORMAT, cfg.video, frames.start, frames.stop, cfg.threshold, score_threshold, repeats,
                timed_frames, platform.node(), torch.get_num_threads()]  # fmt: skip
    path = weights.with_name(f"{weights.stem}.eval-{_key(*spec_key)}.json")
    if path.is_file():
        try:
            blob = json.loads(path.read_text())
            if blob.get("format") == _EVAL_FORMAT:
                return dict(blob)
        except (OSError, ValueError):
            pass  # recomputed below
    model, _ = load_detector(weights)
    r = evaluate_detector(
        model, _data(state, cfg, frames), backbone="delta", threshold=cfg.threshold,
        score_threshold=score_threshold, repeats=repeats, timed_frames=timed_frames,
    )  # fmt: skip
    assert r.delta is not None
    blob = {
        "format": _EVAL_FORMAT,
        "scores": {
            name: {
                "avg_iou": s.avg_iou,
                "map50": s.map50,
                "ms_per_frame": s.ms_per_frame,
                "detections_per_frame": s.detections_per_frame,
            }  # fmt: skip
            for name, s in (("classic", r.dense), ("delta", r.delta))
        },
        "rounds": [list(x) for x in r.rounds],
        "mac_speedup": r.mac_speedup,
        "scored_frames": r.scored_frames,
        "n_gt": r.n_gt,
        "timed_frames": timed_frames or len(frames),
        "measured_at": time.time(),  # a later run that reuses these scores says when they were measured
    }
    atomic_write_text(path, json.dumps(blob, indent=1))
    return blob


def detection_run(state: WorkerState, run: Run) -> RunOutcome:
    """Train (or reuse) the run's detector and score it with the run's backbone (module docstring)."""
    from deltatune.ablation.execute import Observation, RunOutcome

    spec, p = state.spec, run.point
    cfg = detection_config(spec, p, run.seed)
    frames = eval_frames(spec, p)
    score_threshold = float(spec.setting(p, "score_threshold"))
    weights = _trained(state, cfg)
    timed = int(spec.setting(p, "timed_frames"))
    ev = _evaluated(state, weights, cfg, frames, score_threshold, min(timed, len(frames)) or None)
    backbone = str(spec.setting(p, "backbone"))
    s = ev["scores"][backbone]
    ms = float(s["ms_per_frame"])
    metrics = {
        "avg_iou": float(s["avg_iou"]),
        "map50": float(s["map50"]),
        "ms_per_frame": ms,
        "fps": 1000.0 / ms if ms > 0 else float("inf"),
    }
    speed = [(float(d), float(x)) for d, x in ev["rounds"]] if backbone == "delta" else []
    config = {
        "detector": weights.name,
        "train": json.loads(cfg.to_json()),
        "eval_frames": [frames.start, frames.stop],
        "timed_frames": ev.get("timed_frames", len(frames)),
        "score_threshold": score_threshold,
        "detections_per_frame": float(s["detections_per_frame"]),
        "backbone_mac_speedup": ev["mac_speedup"] if backbone == "delta" else 1.0,
        "scored_frames": ev["scored_frames"],
        "n_gt": ev["n_gt"],
        "scores_measured_at": ev.get("measured_at"),  # None: cached by a version that did not record it
    }
    return RunOutcome([Observation(metrics, {}, speed)], config=config)
