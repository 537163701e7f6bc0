"""Teacher keypoints: BlazePose-full on real video crops, mapped to the 17 COCO joints, cached on disk.

For every (frame, crop window) of a :class:`FrameRange`, the teacher sees the *square* box around the
window (side ``max(w, h)``, same centre, zero padding outside the frame) resized to 256×256 — BlazePose
wants an aspect-preserving, roughly centred person crop — and its 33 body landmarks are mapped to COCO-17
with :data:`deltatune_models.blazepose.BLAZEPOSE_TO_COCO17`:

==================  =====================  ==================  =====================
COCO joint          BlazePose landmark     COCO joint          BlazePose landmark
==================  =====================  ==================  =====================
0 nose              0 nose                 9 left_wrist        15 left_wrist
1 left_eye          2 left_eye             10 right_wrist      16 right_wrist
2 right_eye         5 right_eye            11 left_hip         23 left_hip
3 left_ear          7 left_ear             12 right_hip        24 right_hip
4 right_ear         8 right_ear            13 left_knee        25 left_knee
5 left_shoulder     11 left_shoulder       14 right_knee       26 right_knee
6 right_shoulder    12 right_shoulder      15 left_ankle       27 left_ankle
7 left_elbow        13 left_elbow          16 right_ankle      28 right_ankle
8 right_elbow       14 right_elbow
==================  =====================  ==================  =====================

Keypoints are stored in frame *edge* coordinates (see :mod:`deltatune.train.geometry`) with the teacher's
visibility, presence and pose flag, so any student crop of the same frame can be labelled by a geometric
transform without rerunning the teacher. :func:`teacher_targets` caches them in one ``.pt`` file keyed by
the frame ranges, windows and the teacher's weights, loadable with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from deltatune._atomic import atomic_torch_save
from deltatune.errors import ConfigError

from .geometry import Box, crop_resize, square_box

__all__ = [
    "FrameRange",
    "TeacherTargets",
    "parse_frame_ranges",
    "load_frames",
    "teacher_targets",
    "run_teacher",
    "PRESENT_THRESHOLD",
]

log = logging.getLogger(__name__)

#: A teacher joint counts as present/visible when visibility, presence and the pose flag all exceed this.
PRESENT_THRESHOLD = 0.5
TEACHER_SIZE = 256
_CACHE_FORMAT = 2
#: Sources filmed by a static camera: the teacher's crops come from background subtraction.
STATIC_SOURCES = frozenset({"vtest"})


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start..stop`` (inclusive) every ``step`` of a sample asset or video file ``source``."""

    source: str
    start: int
    stop: int
    step: int = 1

    def __post_init__(self) -> None:
        if self.start < 0 or self.stop < self.start or self.step < 1:
            raise ConfigError(f"frame range {self}: need 0 <= start <= stop and step >= 1")

    @property
    def indices(self) -> list[int]:
        """The frame indices this range covers."""
        return list(self.frames)

    @property
    def frames(self) -> range:
        """The frame indices this range covers, as a :class:`range`."""
        return range(self.start, self.stop + 1, self.step)

    def __str__(self) -> str:
        step = f":{self.step}" if self.step != 1 else ""
        return f"{self.source}:{self.start}-{self.stop}{step}"


_RANGE = re.compile(r"^(?P<src>[^:]+):(?P<a>\d+)-(?P<b>\d+)(?::(?P<step>\d+))?$")


def parse_frame_ranges(text: str | Sequence[str]) -> list[FrameRange]:
    """Parse ``"vtest:0-599:2,carphone:0-89"`` (source:first-last[:step], comma separated).

    >>> [str(r) for r in parse_frame_ranges("vtest:0-599:2,carphone:0-89")]
    ['vtest:0-599:2', 'carphone:0-89']
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in (i.strip() for i in items):
        m = _RANGE.match(item)
        if not m:
            raise ConfigError(f"frame range {item!r} is not 'source:first-last[:step]' (e.g. vtest:0-599:2)")
        out.append(FrameRange(m["src"], int(m["a"]), int(m["b"]), int(m["step"] or 1)))
    if not out:
        raise ConfigError("no frame ranges given")
    return out


#: Frames a static camera's range needs at least: its background is the median of its own frames.
MIN_STATIC_FRAMES = 2


def check_static_ranges(ranges: Sequence[FrameRange]) -> None:
    """Refuse a range of a static camera (:data:`STATIC_SOURCES`) too short to hold a background: persons
    are found against the median of the range's own frames, and the median of one frame is that frame,
    so it held no person and the command ended with "the teacher found no person"."""
    for r in ranges:
        if Path(r.source).stem in STATIC_SOURCES and len(r.indices) < MIN_STATIC_FRAMES:
            raise ConfigError(
                f"frame range {r}: {len(r.indices)} frame; on a static camera the teacher finds persons "
                f"against the median of the range's frames, so a range needs at least {MIN_STATIC_FRAMES} "
                "(tens of frames also find persons who stand still)"
            )


def load_frames(ranges: Sequence[FrameRange]) -> dict[str, Tensor]:
    """Decode the frames of ``ranges``: ``{str(range): uint8 [T, 3, H, W]}`` (RGB)."""
    from deltatune.data.video import read_frames, resolve_source

    out: dict[str, Tensor] = {}
    for r in ranges:
        frames = read_frames(resolve_source(r.source), start=r.start, count=len(r.indices), step=r.step)
        stack = [torch.from_numpy(f.copy()).permute(2, 0, 1) for f in frames]
        if len(stack) != len(r.indices):
            raise ConfigError(f"frame range {r} asks for {len(r.indices)} frames, the video has {len(stack)}")
        out[str(r)] = torch.stack(stack)
    return out


def default_windows(source: str) -> list[Box]:
    """The crop windows of a source: :data:`deltatune.data.video.DEFAULT_WINDOWS` as :class:`Box`."""
    from deltatune.data.video import DEFAULT_WINDOWS

    name = source if source in DEFAULT_WINDOWS else Path(source).stem
    if name not in DEFAULT_WINDOWS:
        raise ConfigError(f"no default crop windows for {source!r} (known: {', '.join(DEFAULT_WINDOWS)})")
    return [Box(w.x, w.y, w.w, w.h) for w in DEFAULT_WINDOWS[name]]


@dataclass
class TeacherTargets:
    """Teacher persons found in the frames of ``ranges``; person ``p`` is in frame ``frame[p]`` of range
    ``range_index[p]``.

    ``keypoints`` ``[P, 17, 2]`` frame edge coordinates; ``visibility``, ``presence`` ``[P, 17]``;
    ``pose_flag`` ``[P]``; ``teacher_box`` ``[P, 4]`` (the square crop the teacher saw). Samples are
    (range, frame, window) triples over ``windows[range]``; a sample's reference person is the one
    :meth:`primary` picks.
    """

    ranges: list[FrameRange]
    windows: list[list[Box]]
    range_index: Tensor
    frame: Tensor
    keypoints: Tensor
    visibility: Tensor
    presence: Tensor
    pose_flag: Tensor
    teacher_box: Tensor

    def __post_init__(self) -> None:
        self._by_frame: dict[tuple[int, int], list[int]] = {}
        for p in range(int(self.frame.shape[0])):
            key = (int(self.range_index[p]), int(self.frame[p]))
            self._by_frame.setdefault(key, []).append(p)
        self._counted = self.counted()

    def samples(self) -> list[tuple[int, int, int]]:
        """Every (range, frame, window) triple, in order."""
        out = []
        for ri, r in enumerate(self.ranges):
            for fi in range(len(r.indices)):
                out += [(ri, fi, wi) for wi in range(len(self.windows[ri]))]
        return out

    def counted(self, threshold: float = PRESENT_THRESHOLD) -> Tensor:
        """``[P, 17]`` bool: joints the teacher marks visible and present, of persons its flag accepts."""
        flag = (self.pose_flag > threshold)[:, None]
        return flag & (self.visibility > threshold) & (self.presence > threshold)

    def primary(self, range_index: int, frame: int, box: Box) -> int | None:
        """The person a top-down crop ``box`` of this frame is about, or ``None``.

        Among persons with a pose flag above 0.5 whose centre (middle of the tight box around their
        counted joints) lies inside ``box``, the one nearest the box centre.
        """
        best, best_d = None, float("inf")
        bx, by = box.center
        for p in self._by_frame.get((range_index, frame), []):
            seen = self._counted[p]
            if int(seen.sum()) < 2:
                continue
            pts = self.keypoints[p][seen]
            cx = float(pts[:, 0].min() + pts[:, 0].max()) / 2
            cy = float(pts[:, 1].min() + pts[:, 1].max()) / 2
            if not (box.x0 <= cx < box.x0 + box.w and box.y0 <= cy < box.y0 + box.h):
                continue
            d = (cx - bx) ** 2 + (cy - by) ** 2
            if d < best_d:
                best, best_d = p, d
        return best

    def to_dict(self) -> dict[str, object]:
        """Tensors and JSON text only (``torch.load(..., weights_only=True)`` reads it back)."""
        meta = {
            "format": _CACHE_FORMAT,
            "ranges": [str(r) for r in self.ranges],
            "windows": [[[b.x0, b.y0, b.w, b.h] for b in ws] for ws in self.windows],
        }
        tensors = {k: getattr(self, k) for k in _TENSORS}
        return {"meta": json.dumps(meta), **tensors}

    @classmethod
    def from_dict(cls, blob: dict[str, object]) -> TeacherTargets:
        """Inverse of :meth:`to_dict`."""
        meta = json.loads(str(blob["meta"]))
        return cls(
            ranges=parse_frame_ranges(meta["ranges"]),
            windows=[[Box(*b) for b in ws] for ws in meta["windows"]],
            **{k: blob[k] for k in _TENSORS},  # type: ignore[arg-type]
        )


_TENSORS = ("range_index", "frame", "keypoints", "visibility", "presence", "pose_flag", "teacher_box")


@torch.no_grad()
def run_teacher(
    teacher: nn.Module, frames: Sequence[Tensor], boxes: Sequence[Box], *, batch_size: int = 16
) -> dict[str, Tensor]:
    """Run BlazePose-full on each (frame, square box) pair.

    ``frames`` holds one uint8 ``[3, H, W]`` frame per box. Returns COCO-17 ``keypoints`` ``[S, 17, 2]``
    in frame edge coordinates, ``visibility``/``presence`` ``[S, 17]`` and ``pose_flag`` ``[S]``.
    """
    from deltatune_models.blazepose import blazepose_to_coco17

    keys: list[Tensor] = []
    vis: list[Tensor] = []
    pres: list[Tensor] = []
    flags: list[Tensor] = []
    for lo in range(0, len(boxes), batch_size):
        chunk = range(lo, min(lo + batch_size, len(boxes)))
        squares = [boxes[i] for i in chunk]
        x = torch.stack(
            [
                crop_resize(frames[i], sq, (TEACHER_SIZE, TEACHER_SIZE))
                for i, sq in zip(chunk, squares, strict=True)
            ]
        )
        out = teacher(x)
        lm = blazepose_to_coco17(out.landmarks)  # [n, 17, 5] in teacher input pixels (edge coordinates)
        scale = torch.tensor([[sq.w / TEACHER_SIZE] for sq in squares])[:, :, None]
        origin = torch.tensor([[sq.x0, sq.y0] for sq in squares], dtype=torch.float32)[:, None, :]
        keys.append(lm[..., :2] * scale + origin)
        vis.append(lm[..., 3])
        pres.append(lm[..., 4])
        flags.append(out.pose_flag)
    if not boxes:
        return {
            "keypoints": torch.zeros(0, 17, 2),
            "visibility": torch.zeros(0, 17),
            "presence": torch.zeros(0, 17),
            "pose_flag": torch.zeros(0),
        }
    return {
        "keypoints": torch.cat(keys),
        "visibility": torch.cat(vis),
        "presence": torch.cat(pres),
        "pose_flag": torch.cat(flags),
    }


def _cache_key(ranges: Sequence[FrameRange], windows: Sequence[Sequence[Box]], teacher_id: str) -> str:
    text = json.dumps(
        [_CACHE_FORMAT, [str(r) for r in ranges], [[str(b) for b in ws] for ws in windows], teacher_id]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _teacher_id() -> str:
    from deltatune.data.assets import asset_path, sha256_file

    return sha256_file(asset_path("blazepose_tflite", fetch=True))[:16]


def teacher_boxes(source: str, clip: Tensor, windows: Sequence[Box]) -> list[list[Box]]:
    """The square crops the teacher runs on, per frame of ``clip``.

    Static cameras (:data:`STATIC_SOURCES`): one square per foreground blob
    (:func:`deltatune.train.persons.person_boxes`, background = median of ``clip``). Other sources: the
    square around each crop window (the person fills the window, as in carphone).
    """
    from .persons import background_model, person_boxes

    if Path(source).stem in STATIC_SOURCES:
        background = background_model(clip)
        return [person_boxes(clip[i], background) for i in range(clip.shape[0])]
    return [[square_box(w) for w in windows] for _ in range(clip.shape[0])]


def teacher_targets(
    ranges: Sequence[FrameRange],
    *,
    frames: dict[str, Tensor] | None = None,
    cache_dir: str | Path | None = None,
    teacher: nn.Module | None = None,
) -> TeacherTargets:
    """Teacher persons in every frame of ``ranges`` (see :func:`teacher_boxes`), cached.

    Read from ``cache_dir`` (default ``data_dir()/distill``) when present, computed and cached otherwise.
    ``frames`` (from :func:`load_frames`) avoids decoding twice; a static camera's background is the
    median of the range's own frames. ``teacher`` overrides the BlazePose-full model (for tests; nothing
    is cached then).
    """
    from deltatune.data.assets import data_dir

    windows = [default_windows(r.source) for r in ranges]
    folder = Path(cache_dir) if cache_dir is not None else data_dir() / "distill"
    path = folder / f"teacher-{_cache_key(ranges, windows, _teacher_id())}.pt"
    if teacher is None and path.is_file():
        try:
            return TeacherTargets.from_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # a corrupt cache is rebuilt, never fatal
            log.warning("ignoring unreadable teacher cache %s (%s)", path, exc)
    if frames is None:
        frames = load_frames(ranges)
    own_teacher = teacher is None
    if teacher is None:
        from deltatune_models.blazepose import build_blazepose

        teacher = build_blazepose(full=True)
    teacher.eval()
    cols: dict[str, list[Tensor]] = {k: [] for k in _TENSORS}
    for ri, (r, ws) in enumerate(zip(ranges, windows, strict=True)):
        clip = frames[str(r)]
        per_frame = teacher_boxes(r.source, clip, ws)
        fi = [i for i, bs in enumerate(per_frame) for _ in bs]
        boxes = [b for bs in per_frame for b in bs]
        out = run_teacher(teacher, [clip[i] for i in fi], boxes)
        cols["range_index"].append(torch.full((len(fi),), ri, dtype=torch.long))
        cols["frame"].append(torch.tensor(fi, dtype=torch.long))
        cols["teacher_box"].append(
            torch.tensor([[b.x0, b.y0, b.w, b.h] for b in boxes], dtype=torch.long).reshape(-1, 4)
        )
        for k, v in out.items():
            cols[k].append(v.float())
    result = TeacherTargets(
        ranges=list(ranges), windows=windows, **{k: torch.cat(v) for k, v in cols.items()}
    )
    if own_teacher:
        atomic_torch_save(result.to_dict(), path)
        log.info("cached teacher targets for %s at %s", ", ".join(map(str, ranges)), path)
    return result
