"""Pseudo ground-truth person boxes ("pseudo-labels") for a static-camera video, and a train/held-out split.

vtest (768x576, 795 frames, a fixed camera over a plaza) has no box labels. Its pseudo-labels come from
background subtraction, with the blob step of :mod:`deltatune.train.persons`:

1. **Background**: the per-pixel median of up to ``background_frames`` evenly spaced frames of the
   whole video (:func:`deltatune.train.persons.background_model`).
2. **Blobs**: pixels whose largest channel difference to the background exceeds ``threshold``, on
   ``cell`` x ``cell`` cells, cleaned by a binary opening and closing, split into connected blobs
   (:func:`deltatune.train.persons.foreground_blobs`).
3. **Split and tighten**: inside each blob's cell-aligned box, the full-resolution pixels above
   ``threshold`` are counted per column; runs of columns holding more than ``split_fraction`` x the
   fullest column's count are one box each, tight around those columns' foreground pixels. This splits
   pedestrians side by side with a gap between them (the cell mask's closing joins them) and cuts off
   the thin, flapping barrier tape that pedestrians cross; it also removes the up to ``cell - 1`` pixels
   per side that the cell grid adds.
4. **Filter**: a box is kept iff its height is at least ``min_height`` pixels, its width at least
   ``min_width`` and its aspect ratio height / width lies in ``[min_aspect, max_aspect]``: lone
   pedestrians are upright (h / w about 1.5-4); wide blobs are groups walking side by side, bags or
   lighting changes, very thin ones are poles and edges.

They are *pseudo*-labels, not ground truth: two pedestrians that overlap become one blob (one box, or
none when the merged blob is too wide), a pedestrian who stands still long enough becomes background,
and a person's shadow or a strongly contrasting bag may stretch a box. A detector trained and scored on
them learns and is judged on what the procedure sees.

**Checked by eye** (default parameters, 2026-12-03: boxes drawn on vtest frames 0, 150, 300, 450, 600
and 750 and looked at; every pedestrian at least half visible counted): 34 pedestrians; 26 got one tight
box of their own; 8 are in 4 merged-pair boxes (two people overlapping or touching: frame 150 twice,
300 and 750 once); none was missed; no false box (the flapping barrier tape, the tripod and the lamp
post produce blobs, all filtered out). One box (frame 600) also takes in the tripod head beside the
person. Before the column split (and with ``min_height=40``) 21 of the same 34 were boxed alone: the
tape and the closing merged pedestrians into wide blobs that the aspect filter then dropped.

Results are cached per video and parameters under ``<data dir>/cache/pseudo_boxes/`` (atomic write); a
corrupt cache file is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from deltatune.data.video import source_digest
from deltatune.errors import ConfigError, VideoError

__all__ = [
    "PseudoLabelParams",
    "PseudoLabels",
    "FrameSplit",
    "pseudo_person_boxes",
    "pseudo_labels",
    "split_frames",
    "QUALITY_NOTE",
]

log = logging.getLogger(__name__)

#: Cache format; 2: frames are decoded upright (display rotation / EXIF orientation applied), so boxes
#: cached from a rotated clip before that are in the wrong frame and must not be read back.
_CACHE_FORMAT = "deltatune-pseudo-boxes/2"

#: What the check by eye found (module docstring): pedestrians, own tight box, in merged pairs, missed,
#: false boxes, on vtest frames 0, 150, 300, 450, 600, 750 with the default parameters.
QUALITY_NOTE = {"pedestrians": 34, "own_box": 26, "in_merged_pairs": 8, "missed": 0, "false_boxes": 0}


@dataclass(frozen=True)
class PseudoLabelParams:
    """The settings of the pseudo-labelling procedure (module docstring, steps 1-4); pixel units."""

    threshold: int = 30
    cell: int = 4
    min_height: int = 30
    min_width: int = 10
    min_aspect: float = 1.2
    max_aspect: float = 5.0
    split_fraction: float = 0.1
    background_frames: int = 100

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings no video can use."""
        ok = (
            0 <= self.threshold < 255
            and self.cell >= 1
            and self.min_height >= 1
            and self.min_width >= 1
            and 0 < self.min_aspect <= self.max_aspect
            and 0 <= self.split_fraction < 1
            and self.background_frames >= 1
        )
        if not ok:
            raise ConfigError(f"pseudo-label parameters out of range: {self}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class PseudoLabels:
    """Pseudo-label person boxes of every frame of one video.

    ``boxes[f]`` is a float32 ``[G, 4]`` tensor of ``(x1, y1, x2, y2)`` in frame pixels (edges, so a box
    of the pixel columns ``a..b`` spans ``a`` to ``b + 1``) for frame ``f`` of the video.
    """

    source: Path
    width: int
    height: int
    params: PseudoLabelParams
    boxes: list[Tensor] = field(repr=False)

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class FrameSplit:
    """Training frames and held-out frames of one video, with ``gap`` unused frames between them (so that
    no held-out frame is a near copy of a training frame)."""

    train: range
    held_out: range

    @property
    def gap(self) -> int:
        return self.held_out.start - self.train.stop


def split_frames(n_frames: int, *, train_end: int | None = None, gap: int | None = None) -> FrameSplit:
    """Frames ``0 .. train_end-1`` for training and ``train_end + gap .. n_frames-1`` held out.

    Defaults: ``train_end = min(600, round(0.76 n))`` and ``gap = min(50, round(0.065 n))``; for vtest
    (795 frames) frames 0-599 train and 650-794 (145 frames) are held out.
    """
    if train_end is None:
        train_end = min(600, round(0.76 * n_frames))
    if gap is None:
        gap = min(50, round(0.065 * n_frames))
    if train_end < 1 or gap < 0 or train_end + gap >= n_frames - 1:
        raise ConfigError(
            f"split of {n_frames} frames: training frames 0..{train_end - 1} and a gap of {gap} leave "
            "fewer than 2 held-out frames"
        )
    return FrameSplit(range(0, train_end), range(train_end + gap, n_frames))


def _column_runs(active: Tensor) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in a 1-D bool tensor."""
    edges = torch.diff(active.to(torch.int8), prepend=active.new_zeros(1, dtype=torch.int8),
                       append=active.new_zeros(1, dtype=torch.int8))  # fmt: skip
    starts = torch.where(edges == 1)[0].tolist()
    stops = torch.where(edges == -1)[0].tolist()
    return list(zip(starts, stops, strict=True))


def pseudo_person_boxes(frame: Tensor, background: Tensor, params: PseudoLabelParams | None = None) -> Tensor:
    """Pseudo-label boxes ``[G, 4]`` (float32 ``x1, y1, x2, y2``) of one uint8 ``[3, H, W]`` frame against
    its uint8 ``background`` (module docstring, steps 2-4), left to right within each blob."""
    from deltatune.train.persons import foreground_blobs

    p = params or PseudoLabelParams()
    diff = (frame.to(torch.int16) - background.to(torch.int16)).abs().amax(dim=0) > p.threshold
    out = []
    for x0, y0, x1, y1 in foreground_blobs(frame, background, threshold=p.threshold, cell=p.cell):
        inside = diff[y0:y1, x0:x1]
        cols = inside.sum(dim=0)
        if int(cols.max()) == 0:
            continue
        for c0, c1 in _column_runs(cols > p.split_fraction * cols.max()):
            rows = torch.where(inside[:, c0:c1].any(dim=1))[0]
            ty0, ty1 = y0 + int(rows[0]), y0 + int(rows[-1]) + 1
            tx0, tx1 = x0 + c0, x0 + c1
            h, w = ty1 - ty0, tx1 - tx0
            if h < p.min_height or w < p.min_width or not (p.min_aspect <= h / w <= p.max_aspect):
                continue
            out.append((tx0, ty0, tx1, ty1))
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 4)


def _cache_path(folder: Path, source: Path, params: PseudoLabelParams) -> Path:
    text = json.dumps([_CACHE_FORMAT, source_digest(source), params.to_json()])
    return folder / f"{source.stem}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.pt"


def _read_cache(path: Path, source: Path, params: PseudoLabelParams) -> PseudoLabels | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob["format"] != _CACHE_FORMAT or blob["params"] != params.to_json():
            raise ValueError("different format or parameters")
        return PseudoLabels(source, int(blob["width"]), int(blob["height"]), params, list(blob["boxes"]))
    except Exception as exc:  # noqa: BLE001 - a bad cache is recomputed, never fatal
        log.warning("ignoring unreadable pseudo-label cache %s (%s)", path, exc)
        return None


def _every_frame(source: Path, n: int, *, step: int = 1) -> Iterator[np.ndarray]:
    """Frames ``0, step, ...`` of the ``n`` that ``source`` holds (its container's count, where it states
    one). A file cut short or damaged is refused where decoding stops, in one line that says why every
    frame is read, rather than labelled up to the cut as if that were the whole video."""
    from deltatune.data.video import read_frames

    try:
        yield from read_frames(source, step=step, count=-(-n // step))
    except VideoError as exc:
        raise VideoError(f"pseudo-labels are made from every frame of the video: {exc}") from exc


def pseudo_labels(
    video: str | Path = "vtest",
    params: PseudoLabelParams | None = None,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> PseudoLabels:
    """Pseudo-label person boxes for every frame of a static-camera ``video`` (a file, image folder or
    sample name; module docstring), read from the cache or computed (two decoding passes) and cached.

    ``cache_dir`` defaults to ``<data dir>/cache/pseudo_boxes``.
    """
    from tqdm.auto import tqdm

    from deltatune._atomic import atomic_torch_save
    from deltatune.data.assets import data_dir
    from deltatune.data.video import read_frames, resolve_source, video_info
    from deltatune.train.persons import background_model

    p = params or PseudoLabelParams()
    p.validate()
    source = resolve_source(video)
    info = video_info(source)
    folder = Path(cache_dir) if cache_dir is not None else data_dir() / "cache" / "pseudo_boxes"
    path = _cache_path(folder, source, p)
    cached = _read_cache(path, source, p)
    # a cache of fewer frames than the video states was made from the frames before a cut: made again, the
    # cut is said
    if cached is not None and (info.frames is None or len(cached) == info.frames):
        return cached
    n = info.frames or sum(1 for _ in read_frames(source))
    step = max(1, -(-n // p.background_frames))  # ceil: at most background_frames frames
    sample = [torch.from_numpy(f.copy()).permute(2, 0, 1) for f in _every_frame(source, n, step=step)]
    if not sample:
        raise VideoError(f"video {source} has no frames")
    background = background_model(torch.stack(sample), max_frames=p.background_frames)
    del sample
    boxes = []
    frames = _every_frame(source, n)
    for f in tqdm(frames, total=n, disable=not progress, desc="pseudo-labels", leave=False):
        boxes.append(pseudo_person_boxes(torch.from_numpy(f.copy()).permute(2, 0, 1), background, p))
    labels = PseudoLabels(source, info.width, info.height, p, boxes)
    blob = {"format": _CACHE_FORMAT, "params": p.to_json(), "width": info.width, "height": info.height}
    atomic_torch_save(blob | {"boxes": boxes}, path)
    return labels
