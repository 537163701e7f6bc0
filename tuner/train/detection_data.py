"""Frames, boxes and cached backbone features for training and evaluating the person detector.

**Frames and boxes.** A source is either a static-camera video (a file or a sample name such as
``vtest``), whose boxes are the pseudo-labels of :mod:`deltatune.data.pseudo_boxes`, or a MOT16/17
sequence folder (one with a ``seqinfo.ini``), whose boxes are its ``gt/gt.txt``
(:mod:`deltatune.data.mot`). Frames are resized to the detector's input size ``(H, W)`` with bilinear
interpolation and antialiasing (as :class:`~deltatune.data.video.FrameStreams`; the aspect ratio is
not kept) and stored as uint8; boxes are scaled by the same factors per axis.

**Backbone features.** With a frozen backbone the features of a frame never change during training, so
they are computed once and cached under ``<data dir>/cache/detection/``, keyed by the frames, the size,
the backbone's weights and the feature kind:

* ``dense``: the backbone run on each frame on its own;
* ``delta``: the backbone converted by :func:`deltatune.delta.convert` at one threshold for every
  truncation point, run over the frames **in order, as one stream** (frame 0 dense, then deltas), so the
  features carry the truncation errors the delta backbone will have at inference.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deltatune.data.pseudo_boxes import PseudoLabelParams
from deltatune.errors import ConfigError

__all__ = [
    "DetectionData",
    "HEAD_FEATURES",
    "load_detection_data",
    "make_detection_data",
    "normalize",
    "backbone_features",
    "is_mot_sequence",
]

log = logging.getLogger(__name__)

#: What the detection head sees: the dense backbone's features, or the delta backbone's.
HEAD_FEATURES: tuple[str, ...] = ("dense", "delta")
_CACHE_FORMAT = "deltatune-detection-features/1"


@dataclass(frozen=True)
class DetectionData:
    """Consecutive frames of one source at the detector's input size, with their person boxes.

    ``images``: uint8 ``[T, 3, H, W]`` RGB; ``boxes[i]``: float32 ``[G, 4]`` ``(x1, y1, x2, y2)`` in input
    pixels for ``images[i]``, which is frame ``frames[i]`` of the source. ``key`` identifies the content
    (source, frames, size, labels) for caches.
    """

    source: str
    frames: range
    size: tuple[int, int]
    images: Tensor = field(repr=False)
    boxes: list[Tensor] = field(repr=False)
    key: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def targets(self, index: Tensor | list[int]) -> list[dict[str, Tensor]]:
        """The detector's training targets (label 1 = person) for the frames at ``index``."""
        out = []
        for i in torch.as_tensor(index).tolist():
            b = self.boxes[i]
            out.append({"boxes": b, "labels": torch.ones(b.shape[0], dtype=torch.int64)})
        return out


def is_mot_sequence(source: str | Path) -> bool:
    """True for a MOT sequence folder (it holds a ``seqinfo.ini``)."""
    return Path(source).is_dir() and (Path(source) / "seqinfo.ini").is_file()


def normalize(images: Tensor) -> Tensor:
    """uint8 ``[N, 3, H, W]`` RGB -> the zoo's float input (ImageNet mean and std)."""
    from deltatune_models import IMAGENET_MEAN, IMAGENET_STD

    x = images.to(torch.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype)[:, None, None]
    return (x - mean) / std


def _resize(frame: Tensor, size: tuple[int, int]) -> Tensor:
    x = frame[None].to(torch.float32)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8)[0]


def _scale_boxes(boxes: Tensor, frame_hw: tuple[int, int], size: tuple[int, int]) -> Tensor:
    sy, sx = size[0] / frame_hw[0], size[1] / frame_hw[1]
    return (boxes.reshape(-1, 4) * torch.tensor([sx, sy, sx, sy])).to(torch.float32)


def load_detection_data(
    source: str | Path,
    frames: range,
    size: tuple[int, int],
    *,
    pseudo_params: PseudoLabelParams | None = None,
) -> DetectionData:
    """Frames ``frames`` (a step-1 range) of ``source`` resized to ``size = (H, W)``, with their boxes
    (module docstring). ``pseudo_params``: :class:`~deltatune.data.pseudo_boxes.PseudoLabelParams` for a
    video (default: the documented defaults)."""
    from deltatune.data.assets import sha256_file
    from deltatune.data.pseudo_boxes import pseudo_labels
    from deltatune.data.video import read_frames

    if frames.step != 1 or len(frames) < 1 or frames.start < 0:
        raise ConfigError(f"frames {frames}: need a non-empty range of consecutive frames from 0 on")
    if len(size) != 2 or min(size) < 32:
        raise ConfigError(f"input size {size}: need (H, W), each at least 32 pixels")
    if is_mot_sequence(source):
        from deltatune.data.mot import load_mot_sequence

        seq = load_mot_sequence(source)
        all_boxes, hw, n = seq.boxes, (seq.height, seq.width), seq.length
        raw = seq.frames(start=frames.start, count=len(frames))
        label_id = f"mot:{seq.root.resolve()}:{sha256_file(seq.root / 'gt' / 'gt.txt')[:16]}"
    else:
        params = pseudo_params or PseudoLabelParams()
        labels = pseudo_labels(source, params)
        all_boxes, hw, n = labels.boxes, (labels.height, labels.width), len(labels)
        raw = read_frames(labels.source, start=frames.start, count=len(frames))
        video_id = sha256_file(labels.source)[:16] if labels.source.is_file() else str(labels.source)
        label_id = f"pseudo:{video_id}:{params.to_json()}"
    if frames.stop > n:
        raise ConfigError(f"frames {frames.start}..{frames.stop - 1}: {source} has {n} frames")
    boxes = [all_boxes[i] for i in frames]
    return make_detection_data(raw, boxes, hw, size, source=str(source), frames=frames, label_id=label_id)


def make_detection_data(
    raw_frames: Iterable[np.ndarray],
    boxes: Sequence[Tensor],
    frame_hw: tuple[int, int],
    size: tuple[int, int],
    *,
    source: str,
    frames: range,
    label_id: str,
) -> DetectionData:
    """:class:`DetectionData` from RGB uint8 ``[H, W, 3]`` frames and their boxes ``[G, 4]`` in frame
    pixels (``frame_hw = (H, W)``), resized to ``size``; ``label_id`` names the labels in cache keys."""
    images = torch.stack([_resize(torch.from_numpy(np.array(f)).permute(2, 0, 1), size)
                          for f in raw_frames])  # fmt: skip
    if images.shape[0] != len(frames) or len(boxes) != len(frames):
        raise ConfigError(
            f"{source}: {images.shape[0]} frames and {len(boxes)} box lists for the {len(frames)} frames "
            f"{frames.start}..{frames.stop - 1}"
        )
    scaled = [_scale_boxes(b, frame_hw, size) for b in boxes]
    text = json.dumps([label_id, frames.start, frames.stop, list(size)])
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return DetectionData(source, frames, (int(size[0]), int(size[1])), images, scaled, key)


def _weights_key(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _compute_features(
    backbone: nn.Module, data: DetectionData, kind: str, threshold: float, batch: int
) -> Tensor:
    out = []
    with torch.no_grad():
        if kind == "dense":
            backbone.eval()
            for i in range(0, len(data), batch):
                out.append(backbone(normalize(data.images[i : i + batch])))
        else:
            from deltatune.delta import convert

            net = convert(backbone, thresholds=threshold, backend="sparse", record_stats=False)
            for i in range(len(data)):  # one stream, in frame order
                out.append(net(normalize(data.images[i : i + 1])).clone())
    return torch.cat(out)


def backbone_features(
    backbone: nn.Module,
    data: DetectionData,
    kind: str = "dense",
    *,
    threshold: float = 0.0,
    cache_dir: str | Path | None = None,
    batch: int = 16,
) -> Tensor:
    """The backbone's features ``[T, C, h, w]`` of every frame of ``data`` (module docstring), from the
    cache (``cache_dir``, default ``<data dir>/cache/detection``) or computed and cached."""
    from deltatune._atomic import atomic_torch_save
    from deltatune.data.assets import data_dir

    if kind not in HEAD_FEATURES:
        raise ConfigError(f"head features {kind!r}: choose one of {', '.join(HEAD_FEATURES)}")
    if threshold < 0:
        raise ConfigError(f"threshold {threshold}: must be >= 0")
    spec = [_CACHE_FORMAT, data.key, kind, threshold if kind == "delta" else None, _weights_key(backbone),
            torch.__version__]  # fmt: skip
    name = hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:20]
    path = (Path(cache_dir) if cache_dir is not None else data_dir() / "cache" / "detection") / f"{name}.pt"
    if path.is_file():
        try:
            feats = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(feats, Tensor) and feats.shape[0] == len(data):
                return feats
        except Exception as exc:  # noqa: BLE001 - a bad cache is recomputed, never fatal
            log.warning("ignoring unreadable feature cache %s (%s)", path, exc)
    feats = _compute_features(backbone, data, kind, threshold, batch)
    atomic_torch_save(feats, path)
    return feats
