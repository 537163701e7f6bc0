"""MOTChallenge (MOT16/MOT17) sequences: ``seqinfo.ini``, ground-truth boxes per frame, and the frames.

A sequence folder holds::

    seqinfo.ini          [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    gt/gt.txt            frame,id,x,y,w,h,conf,class,visibility   (one box per row, frames from 1)
    img1/000001.jpg ...  the frames (imDir, imExt)

Evaluation filter (MOT16/17's): a row is kept iff ``conf == 1`` (the "consider" flag), ``class == 1``
(pedestrian) and ``visibility >= min_visibility``. The default ``min_visibility = 0.0`` keeps every
considered pedestrian, however occluded, as the MOTChallenge evaluation does; a higher value (e.g. 0.25)
drops heavily occluded ones. Rows of other classes (static persons, distractors, vehicles ...) are
dropped, not turned into "ignore" regions: a detection on them counts as a false positive.

Coordinates: MOT's ``x, y`` are 1-based pixel positions of the top-left corner; a box becomes
``(x - 1, y - 1, x - 1 + w, y - 1 + h)`` in 0-based continuous pixel coordinates (width ``w``). Boxes
that reach over the image border (common in MOT: people entering the view) are clipped to the image; a
box wholly outside the image, or with ``w <= 0`` or ``h <= 0``, is an error.

Every problem with the input raises :class:`~deltatune.errors.LabelError` (exit code 2 in the CLI) in one
line naming the file, and the line for ``gt.txt`` rows; frames are decoded with
:func:`deltatune.data.video.read_frames` (Pillow), whose errors are :class:`~deltatune.errors.VideoError`.
"""

from __future__ import annotations

import configparser
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deltatune.data.video import IMAGE_SUFFIXES, read_frames
from deltatune.errors import LabelError, VideoError

__all__ = ["MOTSequence", "load_mot_sequence", "read_seqinfo", "read_mot_gt", "SEQINFO_FIELDS"]

#: Required keys of ``seqinfo.ini``'s ``[Sequence]`` section.
SEQINFO_FIELDS: tuple[str, ...] = ("name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt")
_GT_COLUMNS = 9


@dataclass(frozen=True)
class MOTSequence:
    """One MOT sequence: its ``seqinfo.ini`` facts and the kept ground truth per frame.

    ``boxes[f]`` is a float32 ``[G, 4]`` tensor of ``(x1, y1, x2, y2)`` for frame ``f`` (0-based, so MOT
    frame 1 is ``boxes[0]``), ``ids[f]`` the int64 track ids of those boxes; every frame has an entry.
    """

    root: Path
    name: str
    image_dir: Path
    frame_rate: float
    length: int
    width: int
    height: int
    image_ext: str
    boxes: list[torch.Tensor]
    ids: list[torch.Tensor]

    def frame_paths(self) -> list[Path]:
        """Image file of every frame, ``image_dir / f"{frame:06d}{image_ext}"`` for frames 1..length."""
        return [self.image_dir / f"{i:06d}{self.image_ext}" for i in range(1, self.length + 1)]

    def frames(self, *, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """RGB ``uint8 [H, W, 3]`` frames ``start, start + 1, ...`` (0-based) read from ``image_dir``.

        Raises :class:`VideoError` when an image's size differs from ``imWidth x imHeight``.
        """
        for i, frame in enumerate(read_frames(self.image_dir, start=start, count=count)):
            if frame.shape[:2] != (self.height, self.width):
                raise VideoError(
                    f"{self.image_dir}: frame {start + i + 1} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"but seqinfo.ini says {self.width}x{self.height}"
                )
            yield frame


def _int_field(path: Path, section: configparser.SectionProxy, key: str) -> int:
    text = section[key]
    try:
        value = int(text)
    except ValueError:
        raise LabelError(f"{path}: {key}={text!r} is not an integer") from None
    if value <= 0:
        raise LabelError(f"{path}: {key}={value} must be > 0")
    return value


def read_seqinfo(path: str | Path) -> dict[str, str | int | float]:
    """Parse ``seqinfo.ini`` into ``{field: value}`` (ints for lengths and sizes, float frame rate)."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: seqinfo.ini not found")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep MOT's camelCase keys
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = " ".join(str(exc).split())
        raise LabelError(f"{path}: not a readable ini file ({first[:160]})") from None
    if not parser.has_section("Sequence"):
        raise LabelError(f"{path}: no [Sequence] section")
    section = parser["Sequence"]
    for key in SEQINFO_FIELDS:
        if key not in section or not section[key].strip():
            raise LabelError(f"{path}: [Sequence] has no {key!r} (needs {', '.join(SEQINFO_FIELDS)})")
    info: dict[str, str | int | float] = {k: section[k].strip() for k in ("name", "imDir", "imExt")}
    for key in ("seqLength", "imWidth", "imHeight"):
        info[key] = _int_field(path, section, key)
    try:
        info["frameRate"] = float(section["frameRate"])
    except ValueError:
        raise LabelError(f"{path}: frameRate={section['frameRate']!r} is not a number") from None
    if not info["frameRate"] > 0:  # type: ignore[operator]
        raise LabelError(f"{path}: frameRate={info['frameRate']} must be > 0")
    return info


def _parse_row(
    path: Path, lineno: int, line: str
) -> tuple[int, int, float, float, float, float, int, int, float]:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != _GT_COLUMNS:
        raise LabelError(
            f"{path}:{lineno}: expected {_GT_COLUMNS} comma-separated values "
            f"frame,id,x,y,w,h,conf,class,visibility, got {len(parts)}"
        )
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise LabelError(f"{path}:{lineno}: non-numeric value in {line.strip()!r}") from None
    if not all(math.isfinite(v) for v in nums):
        raise LabelError(f"{path}:{lineno}: non-finite value in {line.strip()!r}")
    frame, tid, x, y, w, h, conf, cls, vis = nums
    for name, value in (("frame", frame), ("id", tid), ("class", cls), ("conf", conf)):
        if value != int(value):
            raise LabelError(f"{path}:{lineno}: {name}={value:g} is not an integer")
    return int(frame), int(tid), x, y, w, h, int(conf), int(cls), vis


def read_mot_gt(
    path: str | Path, *, length: int, width: int, height: int, min_visibility: float = 0.0
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Kept boxes and track ids per frame (0-based lists of ``length``) from a MOT ``gt.txt``.

    Every row is checked (frame in 1..``length``, ``w, h > 0``, box not wholly outside the
    ``width x height`` image, visibility in [0, 1]), kept or not; see the module docstring for the filter.
    """
    path = Path(path)
    if not 0.0 <= min_visibility <= 1.0:
        raise LabelError(f"min_visibility={min_visibility} must lie in [0, 1]")
    if not path.is_file():
        raise LabelError(f"{path}: ground-truth file gt.txt not found")
    boxes: list[list[list[float]]] = [[] for _ in range(length)]
    ids: list[list[int]] = [[] for _ in range(length)]
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            frame, tid, x, y, w, h, conf, cls, vis = _parse_row(path, lineno, line)
            if not 1 <= frame <= length:
                raise LabelError(f"{path}:{lineno}: frame {frame} outside 1..{length} (seqLength)")
            if w <= 0 or h <= 0:
                raise LabelError(f"{path}:{lineno}: box w={w:g} h={h:g} is empty")
            if not 0.0 <= vis <= 1.0:
                raise LabelError(f"{path}:{lineno}: visibility {vis:g} outside [0, 1]")
            x1, y1 = x - 1, y - 1
            x2, y2 = x1 + w, y1 + h
            if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
                raise LabelError(
                    f"{path}:{lineno}: box x1,y1,x2,y2=({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies wholly outside "
                    f"the {width}x{height} image"
                )
            if conf != 1 or cls != 1 or vis < min_visibility:
                continue
            boxes[frame - 1].append(
                [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]
            )
            ids[frame - 1].append(tid)
    return (
        [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes],
        [torch.tensor(i, dtype=torch.int64) for i in ids],
    )


def load_mot_sequence(folder: str | Path, *, min_visibility: float = 0.0) -> MOTSequence:
    """Load a MOT16/MOT17 sequence folder: ``seqinfo.ini`` and the filtered ``gt/gt.txt`` boxes."""
    root = Path(folder)
    if not root.is_dir():
        raise LabelError(f"{root}: MOT sequence folder not found")
    info = read_seqinfo(root / "seqinfo.ini")
    length, width, height = int(info["seqLength"]), int(info["imWidth"]), int(info["imHeight"])
    image_dir = root / str(info["imDir"])
    if image_dir.is_dir():  # the frames are read from there: a sequence cut short (or a wrong seqLength)
        # failed only as "12 frames and 15 box lists for the 15 frames 0..14"
        held = sum(1 for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if held != length:
            raise LabelError(f"{root / 'seqinfo.ini'}: seqLength={length} but {info['imDir']}/ holds {held} "
                             f"image{'' if held == 1 else 's'}")
    boxes, ids = read_mot_gt(
        root / "gt" / "gt.txt", length=length, width=width, height=height, min_visibility=min_visibility
    )
    ext = str(info["imExt"])
    return MOTSequence(
        root=root,
        name=str(info["name"]),
        image_dir=image_dir,
        frame_rate=float(info["frameRate"]),
        length=length,
        width=width,
        height=height,
        image_ext=ext if ext.startswith(".") else "." + ext,
        boxes=boxes,
        ids=ids,
    )
