"""Train the Faster R-CNN + MobileNetV2 person detector on video frames (pseudo-labels or MOT boxes).

The setting follows a student team's experiment: Adam, lr 1e-3, batch 8, 10 epochs, weight decay 0 /
5e-4 / 0.15 / 1, small square inputs, the backbone a "classic" (dense) or a delta-convolution network.
As they noted, a detection head meant to run on a delta backbone is trained on the *delta* features:
``head_features="delta"`` trains it on the features of the delta-converted backbone run over the
training frames as one stream (:mod:`deltatune.train.detection_data`).

* **Data**: frames ``frames`` of ``video`` (default: the training part of
  :func:`deltatune.data.pseudo_boxes.split_frames`), resized to ``size`` with boxes scaled.
* **Model**: :class:`deltatune_models.faster_rcnn.FasterRCNNMobileNetV2` with ImageNet MobileNetV2
  weights in the backbone (``backbone_weights``) and a seeded random head; backbone stride, anchors,
  neck and sampling from the config (see :data:`DEFAULT_STRIDE` and the defaults after it: the
  stride-16 backbone ``features[:14]`` at 320x320).
* **Frozen backbone** (default): only the neck, RPN and box head train, on cached backbone features, so
  a step (batch 8) takes about 0.27 s on one thread. ``train_backbone=True`` trains everything but the
  backbone's BatchNorms (dense features only, no cache; much slower).
* **Optimizers**: ``adam`` is ``torch.optim.Adam`` (weight decay as an L2 term in the gradient, as the
  name says), ``adamw`` decoupled weight decay (what ``deltatune finetune``'s ``adam`` is), ``sgd`` with
  momentum 0.9.
* **Determinism**: the head's init is seeded by ``seed``; epoch ``e``'s frame order comes from a
  generator seeded by ``(seed, e)``; before step ``k`` the global generator (the detector's fg/bg
  sampling) is seeded by ``(seed, k)``. A run resumed from its checkpoint therefore ends at the same
  weights as an uninterrupted one.
* **Checkpoints**: after every epoch (and when stopped early) to ``<out>.ckpt``, atomically; the final
  weights to ``out`` as ``{"format", "config", "model": state_dict}``, loadable with
  ``create_model("fasterrcnn_mobilenet_v2", weights=out, **model_kwargs(config))`` and by
  :func:`deltatune.train.detection_eval.load_detector`.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deltatune._atomic import atomic_torch_save
from deltatune.errors import ConfigError, VideoError, at_least, check_ranges, non_negative, positive
from deltatune.train.checkpoints import check_not_past, checkpoint_path, load_checkpoint
from deltatune.train.seeds import derived_seed, seeded_generator

from .detection_data import HEAD_FEATURES, DetectionData, backbone_features, load_detection_data, normalize

__all__ = [
    "DetectionTrainConfig",
    "DetectionTrainResult",
    "train_detector",
    "build_detector",
    "model_kwargs",
    "training_frames",
    "source_length",
    "DETECTOR",
    "DETECTION_OPTIMIZERS",
    "DEFAULT_SIZE",
    "DEFAULT_ANCHOR_SIZES",
    "DEFAULT_ASPECT_RATIOS",
    "DEFAULT_STRIDE",
    "WEIGHTS_FORMAT",
]

DETECTOR = "fasterrcnn_mobilenet_v2"
DETECTION_OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
WEIGHTS_FORMAT = "deltatune-detector/1"
#: Default input ``(H, W)``. vtest's pedestrians (about 50-110 px tall, 20-45 px wide at 768x576) become
#: about 20-60 x 6-26 px (median 45 x 12) at 320x320; at 160x160 (the old default) they were 6-9 px wide
#: on a 5x5 stride-32 map and nothing was learnt (2026-12-03: held-out avg IoU 0.003, mAP@0.5 0.003).
DEFAULT_SIZE: tuple[int, int] = (320, 320)
#: Backbone output stride: 16 cuts MobileNetV2's ``features`` after the 96-channel stride-16 block
#: (``features[:14]``, a plain ``nn.Sequential`` the delta engine converts). Measured 2026-12-03 on vtest
#: at 320x320, pseudo-labels: with stride 32 (10x10 cells, anchor centres 32 px apart) a pedestrian's best
#: anchor had median IoU 0.28 (2 % >= 0.7, about one positive anchor per box), the RPN's proposals rarely
#: reached IoU 0.5, so the box head's positives were almost only the ground-truth boxes themselves and its
#: scores did not rank proposals (held-out mAP@0.5 0.016-0.06). Stride 16: held-out mAP@0.5 0.6.
DEFAULT_STRIDE = 16
#: Anchors (input pixels; aspect ratio = height / width) for pedestrians of 20-60 x 6-26 px at 320x320 on
#: the stride-16 map: upright 2:1 to 4:1 boxes of 16 and 32 px (e.g. 8 x 32 to 23 x 64 px). The best
#: anchor of a box has median IoU 0.46 (0.28 with the old 32/64 px, ratios 1-3 on stride 32).
DEFAULT_ANCHOR_SIZES: tuple[float, ...] = (16.0, 32.0)
DEFAULT_ASPECT_RATIOS: tuple[float, ...] = (2.0, 3.0, 4.0)
#: Head sizes and sampling for a fast CPU run (a study trains ~40 detectors): a 64-channel neck (the box
#: head's fc6 has 64*49 inputs instead of 256*49), 64 sampled RoIs per image (at most 16 positives; a
#: frame has about 7 people) and 500 / 200 proposals before / after NMS in training (1000 / 300: the
#: 1000x1000 IoU of NMS dominated a step). 2026-12-03, one thread, batch 8 at 320x320: 0.27 s per step
#: (1.5 s with the zoo's 256 channels, 128 RoIs, 1000 / 300 proposals on stride 32).
DEFAULT_NECK_CHANNELS = 64
DEFAULT_BOX_BATCH = 64
DEFAULT_RPN_TOP_N_TRAIN: tuple[int, int] = (500, 200)
#: What weights files written before these settings existed were trained with (read by ``from_json``).
_LEGACY_MODEL_SETTINGS: dict[str, Any] = {
    "stride": 32,
    "neck_channels": 256,
    "box_batch_size_per_image": 128,
    "rpn_pre_nms_top_n_train": 1000,
    "rpn_post_nms_top_n_train": 300,
}


@dataclass(frozen=True)
class DetectionTrainConfig:
    """Everything that determines a detector training run (stored in its checkpoint and weights)."""

    video: str = "vtest"
    frames: tuple[int, int] | None = None  # (start, stop); None: the training part of the default split
    size: tuple[int, int] = DEFAULT_SIZE
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    # 3 epochs over the 600 training frames (225 steps): 2026-12-03, one thread, cached features, 59-61 s
    # of steps, held-out mAP@0.5 0.67 (300 frames x 6 epochs: 59 s, 0.61); 10 epochs would take ~200 s
    epochs: int = 3
    batch_size: int = 8
    train_backbone: bool = False
    head_features: str = "dense"
    threshold: float = 0.05  # the delta backbone's threshold, every truncation point (head_features=delta)
    backbone_weights: str = "default"  # 'default' (ImageNet), 'none' (random) or a detector weights file
    anchor_sizes: tuple[float, ...] = DEFAULT_ANCHOR_SIZES
    aspect_ratios: tuple[float, ...] = DEFAULT_ASPECT_RATIOS
    seed: int = 0
    # the detector's settings (FasterRCNNCfg): see DEFAULT_STRIDE ... DEFAULT_RPN_TOP_N_TRAIN
    stride: int = DEFAULT_STRIDE
    neck_channels: int = DEFAULT_NECK_CHANNELS
    box_batch_size_per_image: int = DEFAULT_BOX_BATCH
    rpn_pre_nms_top_n_train: int = DEFAULT_RPN_TOP_N_TRAIN[0]
    rpn_post_nms_top_n_train: int = DEFAULT_RPN_TOP_N_TRAIN[1]

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values no run can use (before any model work)."""
        check_ranges("detector training settings", {
            "--lr": positive(self.lr),
            "--weight-decay": non_negative(self.weight_decay),
            "--epochs": at_least(self.epochs, 1),
            "--batch-size": at_least(self.batch_size, 1),
            "--threshold": non_negative(self.threshold),
            "--size": (self.size, len(self.size) == 2 and min(self.size) >= 32, "two sides of at least 32"),
            "--frames": (self.frames, self.frames is None or (0 <= self.frames[0] < self.frames[1]),
                         "A:B with 0 <= A < B"),
            "anchor_sizes": (self.anchor_sizes, bool(self.anchor_sizes) and min(self.anchor_sizes) > 0,
                             "positive sizes"),
            "aspect_ratios": (self.aspect_ratios, bool(self.aspect_ratios) and min(self.aspect_ratios) > 0,
                              "positive ratios"),
            "stride": (self.stride, self.stride in (8, 16, 32), "8, 16 or 32"),
            "neck_channels": at_least(self.neck_channels, 1),
            "box_batch_size_per_image": at_least(self.box_batch_size_per_image, 1),
            "rpn_pre_nms_top_n_train": at_least(self.rpn_pre_nms_top_n_train, 1),
            "rpn_post_nms_top_n_train": at_least(self.rpn_post_nms_top_n_train, 1),
        })
        if self.optimizer not in DETECTION_OPTIMIZERS:
            raise ConfigError(
                f"--optimizer {self.optimizer!r}: choose one of {', '.join(DETECTION_OPTIMIZERS)}"
            )
        if self.head_features not in HEAD_FEATURES:
            raise ConfigError(
                f"--head-features {self.head_features!r}: choose one of {', '.join(HEAD_FEATURES)}"
            )
        if self.train_backbone and self.head_features == "delta":
            raise ConfigError(
                "--head-features delta needs a frozen backbone (the delta features come from a fixed "
                "converted backbone); drop --train-backbone"
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DetectionTrainConfig:
        d = _LEGACY_MODEL_SETTINGS | json.loads(text)
        for k in ("size", "frames", "anchor_sizes", "aspect_ratios"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class DetectionTrainResult:
    """What a run produced: files, steps and epochs done, losses (total of the four detector losses: the
    mean per epoch, and per step), and wall times (backbone features; training steps)."""

    weights: Path
    checkpoint: Path
    steps: int
    epochs: int
    epoch_losses: tuple[float, ...]
    step_losses: tuple[float, ...]
    features_time_s: float
    train_time_s: float
    #: the steps a resumed run found done in its checkpoint (0: a fresh run); ``train_time_s`` is this run's
    resumed_at: int = 0


def training_frames(cfg: DetectionTrainConfig) -> range:
    """The video frames a config trains on: ``cfg.frames``, else the default split's training part."""
    if cfg.frames is not None:
        return range(*cfg.frames)
    from deltatune.data.pseudo_boxes import split_frames

    return split_frames(source_length(cfg.video)).train


def source_length(source: str) -> int:
    """The number of frames of ``source``: a MOT folder's ``seqLength``, else the video's frame count.

    Remembered per file version (path and modification time): a video whose header has no frame count is
    decoded to count them, and a study asks once per design point and run."""
    from deltatune.data.video import resolve_source

    from .detection_data import is_mot_sequence

    mot = is_mot_sequence(source)
    path = Path(source) / "seqinfo.ini" if mot else resolve_source(source)
    if not path.exists():
        raise VideoError(f"video source {source} does not exist")
    return _length(str(path), mot, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _length(path: str, mot: bool, _mtime_ns: int) -> int:
    """``source_length`` of a ``seqinfo.ini`` (``mot``) or a video file at one modification time."""
    if mot:
        from deltatune.data.mot import read_seqinfo

        return int(read_seqinfo(Path(path))["seqLength"])
    from deltatune.data.video import read_frames, video_info

    return video_info(path).frames or sum(1 for _ in read_frames(path))


def build_detector(cfg: DetectionTrainConfig, weights: str | Path | None = None) -> nn.Module:
    """The detector of ``cfg`` (anchors) with ``weights`` (a detector weights file) or, without, the
    backbone weights of ``cfg`` and a head initialised from ``cfg.seed``."""
    from deltatune_models import create_model

    kwargs = model_kwargs(cfg)
    if weights is not None:
        return create_model(DETECTOR, weights=weights, **kwargs)
    w = cfg.backbone_weights
    torch.manual_seed(derived_seed(cfg.seed))
    return create_model(DETECTOR, weights=None if w == "none" else w, **kwargs)


def model_kwargs(cfg: DetectionTrainConfig) -> dict[str, Any]:
    """The ``create_model("fasterrcnn_mobilenet_v2", ...)`` settings of ``cfg`` (anchors, stride, head)."""
    names = ("anchor_sizes", "aspect_ratios", *_LEGACY_MODEL_SETTINGS)
    return {k: getattr(cfg, k) for k in names}


def _make_optimizer(cfg: DetectionTrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    g = seeded_generator(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def train_detector(
    cfg: DetectionTrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    data: DetectionData | None = None,
    cache_dir: str | Path | None = None,
    stop_after: int | None = None,
) -> DetectionTrainResult:
    """Train the detector of ``cfg`` (module docstring) and write its weights to ``out``.

    ``resume`` continues from ``<out>.ckpt`` (same config). ``data`` (from
    :func:`~deltatune.train.detection_data.load_detection_data`, matching ``cfg``) skips decoding.
    ``cache_dir``: where backbone features are cached (default ``<data dir>/cache/detection``).
    ``stop_after`` ends the run after that many steps in total, writing the checkpoint but no weights
    (an interrupted run, for tests).
    """
    from tqdm.auto import tqdm

    cfg.validate()
    out = Path(out)
    ckpt = checkpoint_path(out)
    t0 = time.perf_counter()
    if data is None:
        data = load_detection_data(cfg.video, training_frames(cfg), cfg.size)
    elif data.size != tuple(cfg.size):
        raise ConfigError(f"data of size {data.size} for a config of size {tuple(cfg.size)}")
    model = build_detector(cfg)
    feats: Tensor | None = None
    if not cfg.train_backbone:
        feats = backbone_features(
            model.backbone, data, cfg.head_features, threshold=cfg.threshold, cache_dir=cache_dir
        )
        model.backbone.requires_grad_(False)
    features_s = time.perf_counter() - t0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(cfg, params)
    n = len(data)
    per_epoch = -(-n // cfg.batch_size)
    total = per_epoch * cfg.epochs
    step, step_losses = 0, []
    resumed_at = 0
    if resume and ckpt.is_file():
        blob = load_checkpoint(ckpt, cfg.to_json(), "detector training", may_differ=("epochs",))
        check_not_past(ckpt, -(-int(blob["step"]) // per_epoch), cfg.epochs, "epochs", "--epochs")
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        step, step_losses = int(blob["step"]), list(blob["step_losses"])
        resumed_at = step

    def save() -> None:
        state = {"config": cfg.to_json(), "model": model.state_dict(), "optimizer": opt.state_dict()}
        atomic_torch_save(state | {"step": step, "step_losses": step_losses}, ckpt)

    end = total if stop_after is None else min(total, stop_after)
    h, w = data.size
    bar = tqdm(total=total, initial=step, disable=not progress, desc="detector", unit="step", leave=False)
    t1 = time.perf_counter()
    model.train()
    while step < end:
        epoch, b = divmod(step, per_epoch)
        idx = _epoch_order(cfg.seed, epoch, n)[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        torch.manual_seed(derived_seed(cfg.seed * 1_000_033 + step))  # the detector's fg/bg sampling
        targets = data.targets(idx)
        if feats is None:
            losses = model(normalize(data.images[idx]), targets)
        else:
            images = torch.zeros(()).expand(len(idx), 3, h, w)  # only the image size is read
            losses = model(images, targets, features=feats[idx])
        loss = sum(losses.values())
        assert isinstance(loss, Tensor)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        step_losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{step_losses[-1]:.3f}")
        if step % per_epoch == 0 or step == end:
            save()
    bar.close()
    train_s = time.perf_counter() - t1
    if step >= total:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        atomic_torch_save({"format": WEIGHTS_FORMAT, "config": cfg.to_json(), "model": state}, out)
    done = step // per_epoch
    epoch_losses = tuple(
        sum(step_losses[e * per_epoch : (e + 1) * per_epoch]) / per_epoch for e in range(done)
    )
    return DetectionTrainResult(
        out, ckpt, step, done, epoch_losses, tuple(step_losses), features_s, train_s, resumed_at
    )
