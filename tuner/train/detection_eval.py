"""Evaluate a trained person detector on held-out frames with a dense ("classic") or a delta backbone.

The held-out frames (default: the held-out part of :func:`deltatune.data.pseudo_boxes.split_frames`) run
as one stream. The delta backbone is :func:`deltatune.delta.convert` of the detector's backbone on the
``sparse`` backend at the given thresholds; its output features go into the same detection head
(:meth:`~deltatune_models.faster_rcnn.FasterRCNNMobileNetV2.detect_from_features`).

* **Accuracy** over frames 1..T-1 of the stream (frame 0 runs dense for both, see docs/design.md,
  Metrics): **average IoU** (:func:`deltatune.metrics.detection.average_iou`) of the detections whose
  score is at least ``score_threshold`` (it ignores scores, so low-score boxes would only inflate it),
  and **mAP@0.5** (:func:`~deltatune.metrics.detection.average_precision`) over every detection.
* **Speed** of backbone + head, measured like ``deltatune bench``
  (:func:`deltatune.delta.latency.time_interleaved`): one untimed warm-up round (which also picks the
  faster dense layout, NCHW or channels-last), then ``repeats`` rounds of dense then delta on the same
  frames 1..T-1, statistics off; the reported ms/frame are the medians. Missing layer costs of the sparse
  backend are calibrated first (``calibrate=True``), as the bench does. FPS = 1000 / ms per frame.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deltatune.errors import ConfigError, WeightsError, missing_file

from .detection import WEIGHTS_FORMAT, DetectionTrainConfig, build_detector
from .detection_data import DetectionData, load_detection_data, normalize

__all__ = [
    "DetectorScore",
    "DetectionEvalResult",
    "load_detector",
    "held_out_frames",
    "evaluate_detector",
    "evaluate_checkpoint",
    "score_detections",
    "DEFAULT_SCORE_THRESHOLD",
]

#: Detections below this score are left out of the average IoU.
DEFAULT_SCORE_THRESHOLD = 0.5


@dataclass(frozen=True)
class DetectorScore:
    """Accuracy and speed of the detector with one backbone."""

    backbone: str  # "dense" or "delta"
    avg_iou: float
    map50: float
    ms_per_frame: float
    detections_per_frame: float
    detections: list[dict[str, Tensor]] = field(default_factory=list, repr=False, compare=False)

    @property
    def fps(self) -> float:
        return 1000.0 / self.ms_per_frame if self.ms_per_frame > 0 else float("inf")


@dataclass(frozen=True)
class DetectionEvalResult:
    """Dense and (when asked) delta scores of one detector on the same held-out frames, from one run."""

    frames: range
    scored_frames: int
    n_gt: int
    size: tuple[int, int]
    threshold: float | None  # the delta backbone's single threshold (None: a thresholds file)
    dense: DetectorScore
    delta: DetectorScore | None
    mac_speedup: float | None
    repeats: int
    #: ``(dense ms, delta ms)`` per frame of every timed round (delta evaluations)
    rounds: tuple[tuple[float, float], ...] = ()
    #: how many of ``frames`` the detector trained on (:func:`evaluate_checkpoint`; 0: all held out)
    trained_on: int = 0


def load_detector(path: str | Path) -> tuple[nn.Module, DetectionTrainConfig]:
    """A detector weights file written by :func:`~deltatune.train.detection.train_detector`: the model (in
    eval mode) and the config it was trained with."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"detector weights {p}: {missing_file(p)}")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise WeightsError(
            f"detector weights {p}: not a readable PyTorch file ({type(exc).__name__})"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(
            f"detector weights {p}: not written by `deltatune detect train` ({WEIGHTS_FORMAT})"
        )
    cfg = DetectionTrainConfig.from_json(blob["config"])
    return build_detector(cfg, weights=p).eval(), cfg


def held_out_frames(source: str) -> range:
    """The default split's held-out frames of ``source``."""
    from deltatune.data.pseudo_boxes import split_frames

    from .detection import source_length

    return split_frames(source_length(source)).held_out


def score_detections(
    detections: Sequence[dict[str, Tensor]], gt: Sequence[Tensor], *, score_threshold: float
) -> tuple[float, float]:
    """``(average IoU of the detections scoring >= score_threshold, mAP@0.5 of all detections)``."""
    from deltatune.metrics.detection import average_iou, average_precision

    kept = [d["boxes"][d["scores"] >= score_threshold] for d in detections]
    boxes = [d["boxes"] for d in detections]
    scores = [d["scores"] for d in detections]
    return average_iou(kept, list(gt)), average_precision(boxes, scores, list(gt))


class _DeltaDetector:
    """The detector with a delta backbone, callable per frame, with the stream interface the timing
    helpers use (``reset``, ``stats``)."""

    def __init__(self, model: Any, net: Any, size: tuple[int, int]) -> None:
        self.model, self.net, self.size = model, net, size
        self.stats = net.stats

    def reset(self) -> None:
        self.net.reset()

    def __call__(self, x: Tensor) -> list[dict[str, Tensor]]:
        return self.model.detect_from_features(self.net(x), self.size)


def evaluate_detector(
    model: nn.Module,
    data: DetectionData,
    *,
    backbone: str = "delta",
    threshold: float | None = 0.05,
    thresholds_file: str | Path | None = None,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    repeats: int = 3,
    calibrate: bool = True,
    timed_frames: int | None = None,
) -> DetectionEvalResult:
    """Score ``model`` (a trained detector) on ``data`` (held-out frames, one stream) with the dense
    backbone and, for ``backbone="delta"``, the delta backbone at ``threshold`` (every truncation
    point) or the thresholds of ``thresholds_file`` (module docstring). ``timed_frames``: time only the
    first that many frames of the stream (all are scored; default: time them all)."""
    from deltatune.delta import convert
    from deltatune.delta.latency import best_dense_ms, time_interleaved

    if backbone not in ("dense", "delta"):
        raise ConfigError(f"backbone {backbone!r}: choose dense (classic) or delta")
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if len(data) < 2:
        raise ConfigError(f"{len(data)} held-out frame(s): need at least 2 (frame 0 runs dense)")
    if timed_frames is not None and timed_frames < 2:
        raise ConfigError(f"timed frames {timed_frames}: need at least 2 (frame 0 runs dense)")
    if threshold is not None and threshold < 0:
        raise ConfigError(f"--threshold must be >= 0, got {threshold}")
    model = model.eval()
    size = data.size
    frames = normalize(data.images)[:, None]  # [T, 1, 3, H, W]: one stream
    gt = data.boxes[1:]
    timed = frames if timed_frames is None else frames[:timed_frames]
    with torch.no_grad():
        dense_dets = [model(x)[0] for x in frames[1:]]
    dense_acc = score_detections(dense_dets, gt, score_threshold=score_threshold)
    n_gt = sum(int(g.shape[0]) for g in gt)
    if backbone == "dense":
        with torch.no_grad():
            best_dense_ms(model, list(timed[1:]))  # warm-up round, untimed
            runs = [best_dense_ms(model, list(timed[1:])) for _ in range(repeats)]
        dense = DetectorScore(
            "dense", *dense_acc, statistics.median(runs), _per_frame(dense_dets), dense_dets
        )
        return DetectionEvalResult(data.frames, len(gt), n_gt, size, None, dense, None, None, repeats)

    net = convert(model.backbone, thresholds=0.0 if threshold is None else threshold, backend="sparse")
    if thresholds_file is not None:
        net.load_thresholds(thresholds_file)
    if calibrate:
        from deltatune.delta.calibration import calibrate as calibrate_net

        calibrate_net(net, frames[0])
    detector = _DeltaDetector(model, net, size)
    with torch.no_grad():
        net.reset()
        delta_dets = [detector(x)[0] for x in frames][1:]
    mac_speedup = net.mac_speedup()
    delta_acc = score_detections(delta_dets, gt, score_threshold=score_threshold)
    rounds = time_interleaved(model, detector, timed, repeats=repeats)
    dense_ms = statistics.median(r[0] for r in rounds)
    delta_ms = statistics.median(r[1] for r in rounds)
    return DetectionEvalResult(
        data.frames,
        len(gt),
        n_gt,
        size,
        threshold if thresholds_file is None else None,
        DetectorScore("dense", *dense_acc, dense_ms, _per_frame(dense_dets), dense_dets),
        DetectorScore("delta", *delta_acc, delta_ms, _per_frame(delta_dets), delta_dets),
        mac_speedup,
        repeats,
        tuple((float(d), float(s)) for d, s in rounds),
    )


def evaluate_checkpoint(
    weights: str | Path,
    *,
    frames: range | None = None,
    video: str | None = None,
    **kwargs: Any,
) -> DetectionEvalResult:
    """:func:`evaluate_detector` of a weights file on ``frames`` of ``video`` (defaults: the video it was
    trained on, its held-out frames), at the size it was trained at."""
    from dataclasses import replace

    from .detection import training_frames

    model, cfg = load_detector(weights)
    thresholds_file = kwargs.get("thresholds_file")
    if thresholds_file is not None and kwargs.get("backbone", "delta") == "delta":
        from deltatune.delta import convert

        # a file for another network is refused here, from the converted backbone (a fraction of a second),
        # before the frames are decoded and labelled and the dense detector run over them
        convert(model.backbone, backend="sparse").load_thresholds(thresholds_file)
    source = video or cfg.video
    rng = frames if frames is not None else held_out_frames(source)
    data = load_detection_data(source, rng, cfg.size)
    seen = set(training_frames(cfg)) if _same_source(source, cfg.video) else set()
    result = evaluate_detector(model, data, **kwargs)
    return replace(result, trained_on=len(seen.intersection(result.frames)))


def _same_source(a: str, b: str) -> bool:
    """Whether two ``--video`` values name one video: ``vtest`` and the path of its downloaded file are
    one (training frames scored as "held-out" otherwise), as are two spellings of one path."""
    from deltatune.errors import DeltatuneError
    from deltatune.workload import resolve_video

    if a == b:
        return True
    try:
        return resolve_video(a)[0].resolve() == resolve_video(b)[0].resolve()
    except (DeltatuneError, OSError):
        return False


def _per_frame(dets: Sequence[dict[str, Tensor]]) -> float:
    return sum(int(d["boxes"].shape[0]) for d in dets) / max(1, len(dets))
