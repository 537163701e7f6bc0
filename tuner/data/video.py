"""Video input: decode a video file or an image folder into RGB frames, crop fixed windows, batch streams.

A *stream* in deltatune is one batch entry that the delta engine follows frame by frame. A fixed camera
usually shows several regions of interest; :class:`FrameStreams` turns each :class:`CropWindow` into one
stream, so a ``[B, 3, H, W]`` batch per frame carries B independent streams.

Decoding uses PyAV (``av``); image folders are read with Pillow. Frames come upright, as a player
shows them: a video's display rotation (phones store portrait clips as landscape frames plus a rotation)
and a JPEG's EXIF orientation are applied, and sizes (:func:`video_info`, crop windows) are those of the
upright frames. Every failure on user input (missing path, empty folder, corrupt file, ``start`` beyond
the end, a window outside the frame) raises :class:`~deltatune.errors.VideoError` with a one-line
message naming the input.

Example::

    from deltatune.data import asset_path, FrameStreams, DEFAULT_WINDOWS
    streams = FrameStreams(asset_path("vtest", fetch=True), windows=DEFAULT_WINDOWS["vtest"],
                           size=(256, 192), count=50)
    for batch in streams:          # float32 [3, 3, 256, 192] in [0, 1]
        ...
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from deltatune.errors import VideoError

if TYPE_CHECKING:
    from av.container import InputContainer

    from deltatune.data.seek import FrameIndex

__all__ = [
    "IMAGE_SUFFIXES",
    "VideoInfo",
    "CropWindow",
    "parse_window",
    "as_window",
    "read_frames",
    "video_info",
    "count_frames",
    "FrameStreams",
    "load_clip",
    "DEFAULT_WINDOWS",
    "resolve_source",
    "source_digest",
]

logger = logging.getLogger(__name__)

#: File suffixes (lower case) read from an image folder.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a source before decoding it: frame size, frame count (None if the container
    does not say) and frames per second (None for image folders or when unknown)."""

    source: Path
    width: int
    height: int
    frames: int | None
    fps: float | None
    #: about how many frames the container's duration and frame rate imply, for one that does not say its
    #: frame count (Matroska): a hint of a truncated file, never a count (``None``: not known)
    frames_about: int | None = None


@dataclass(frozen=True)
class CropWindow:
    """A fixed crop rectangle in pixels: left ``x``, top ``y``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        vals = (self.x, self.y, self.w, self.h)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            raise VideoError(f"crop window {vals} must be four integers x,y,w,h")
        if self.x < 0 or self.y < 0 or self.w <= 0 or self.h <= 0:
            raise VideoError(f"crop window {self} needs x,y >= 0 and w,h > 0")

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"

    def check(self, width: int, height: int, *, source: str | Path | None = None) -> None:
        """Raise :class:`VideoError` unless the window lies inside a ``width`` x ``height`` frame."""
        if self.x + self.w > width or self.y + self.h > height:
            where = f" of {source}" if source is not None else ""
            raise VideoError(
                f"crop window x,y,w,h={self} reaches ({self.x + self.w}, {self.y + self.h}), "
                f"outside the {width}x{height} frame{where}"
            )

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """Return the ``[h, w, 3]`` view of an ``[H, W, 3]`` frame (no copy)."""
        self.check(frame.shape[1], frame.shape[0])
        return frame[self.y : self.y + self.h, self.x : self.x + self.w]


def as_window(window: CropWindow | str | Sequence[int]) -> CropWindow:
    """A crop window from what a caller naturally writes: a :class:`CropWindow`, ``"x,y,w,h"`` (as
    ``--window`` takes it) or four integers ``(x, y, w, h)``; anything else is a one-line error.

    >>> as_window((96, 96, 240, 320)) == as_window("96,96,240,320") == CropWindow(96, 96, 240, 320)
    True
    """
    if isinstance(window, CropWindow):
        return window
    if isinstance(window, str):
        return parse_window(window)
    try:
        x, y, w, h = window
    except (TypeError, ValueError):
        raise VideoError(f"crop window {window!r}: give 'x,y,w,h', four integers or a CropWindow") from None
    return CropWindow(x, y, w, h)


def parse_window(text: str) -> CropWindow:
    """Parse ``"x,y,w,h"`` (integers, spaces allowed) into a :class:`CropWindow`.

    >>> parse_window("96, 96, 240, 320")
    CropWindow(x=96, y=96, w=240, h=320)
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise VideoError(f"crop window {text!r} is not four integers 'x,y,w,h'") from None
    return CropWindow(x, y, w, h)


#: Default crop windows per sample asset, each one stream. vtest (768x576): three 3:4 (w:h) windows on
#: the paths pedestrians walk along, chosen from a background-subtraction heat map of all 795 frames:
#: left path (pedestrians in ~78 % of frames), right path (100 %), lawn in front (~48 %).
#: carphone (176x144): one 108x144 (3:4) window on the talking man.
DEFAULT_WINDOWS: dict[str, list[CropWindow]] = {
    "vtest": [CropWindow(96, 96, 240, 320), CropWindow(456, 96, 240, 320), CropWindow(168, 256, 240, 320)],
    "carphone": [CropWindow(34, 0, 108, 144)],
}


def _check_range(source: Path, start: int, count: int | None, step: int) -> None:
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise VideoError(f"start={start!r} for {source} must be an integer >= 0")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise VideoError(f"count={count!r} for {source} must be None or an integer >= 0")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise VideoError(f"step={step!r} for {source} must be an integer >= 1")


def _natural_key(path: Path) -> tuple[tuple[str | int, ...], str]:
    """Sort key that orders numbers in file names by value: ``2.png`` before ``10.png`` (plain string
    order would put frame 10 between 1 and 2 in a folder numbered without zero padding)."""
    parts = re.split(r"(\d+)", path.name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), path.name


def _image_files(folder: Path) -> list[Path]:
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key
    )
    if not files:
        img1, mot = folder / "img1", ""
        if img1.is_dir():  # a MOT sequence's layout without its seqinfo.ini (which makes img1/ the frames)
            held = any(p.suffix.lower() in IMAGE_SUFFIXES for p in img1.iterdir())
            mot = (f"; its img1/ holds the frames of a MOT sequence without a seqinfo.ini: pass {img1}"
                   if held else f"; a MOT sequence keeps its frames in {img1}, which holds none either")
        raise VideoError(
            f"image folder {folder} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))}){mot}"
        )
    return files


def _folder_fps(folder: Path) -> float | None:
    """The frame rate of an image folder that is a MOT sequence's frames (the ``imDir`` of a
    ``seqinfo.ini`` beside it, whose ``frameRate`` says it); ``None`` for any other folder, which has none
    (an overlay video of it was written at 25 fps, whatever the sequence's 14 or 30)."""
    from deltatune.data.mot import read_seqinfo
    from deltatune.errors import LabelError

    ini = folder.resolve().parent / "seqinfo.ini"
    if not ini.is_file():
        return None
    try:
        info = read_seqinfo(ini)
    except LabelError:  # a broken seqinfo.ini says nothing about these frames
        return None
    return float(info["frameRate"]) if info["imDir"] == folder.resolve().name else None


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            upright = ImageOps.exif_transpose(im)  # a phone's portrait JPEG is stored sideways + a tag
            return _rgb8(upright, path)
    except UnidentifiedImageError as exc:  # a text file, or a format Pillow does not know
        raise VideoError(f"image {path} cannot be read (Pillow cannot identify it: empty, damaged, or a "
                         "format it does not know)") from exc
    except OSError as exc:  # a truncated or damaged image, or one the disk cannot give
        why = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise VideoError(f"image {path} cannot be read ({why})") from exc


def _rgb8(im: Any, path: Path) -> np.ndarray:
    """A Pillow image as a writable ``uint8`` RGB array (as decoded video frames are).

    16-bit grey images (modes ``I;16*``, and ``I`` as Pillow opens some 16-bit files) are scaled from
    0-65535 to 0-255: Pillow's own ``convert("RGB")`` clips them at 255, which turns a 16-bit frame
    almost white. Float images (``F``) have no agreed range and are refused."""
    if im.mode.startswith("I;16") or im.mode == "I":
        wide = np.clip(np.asarray(im).astype(np.int64), 0, 65535)
        grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "F":
        raise VideoError(
            f"image {path} has float pixels (mode F), whose range is unknown; "
            "save frames as 8- or 16-bit images"
        )
    return np.array(im.convert("RGB"))


def _quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns that make a frame with display rotation ``rotation`` (degrees,
    counter-clockwise, as PyAV's ``VideoFrame.rotation`` and FFmpeg's display matrix give it) upright,
    as players and ``ffmpeg`` show it. Angles that are not a multiple of 90 are rounded to one."""
    return round(rotation / 90) % 4


def _upright(frame: np.ndarray, turns: int) -> np.ndarray:
    """``frame`` [H, W, 3] turned ``turns`` quarter turns counter-clockwise (a contiguous copy)."""
    return frame if turns == 0 else np.ascontiguousarray(np.rot90(frame, turns))


def _first_frame_turns(container: InputContainer) -> int:
    """The display rotation of a video, from its first frame (0 when none decodes: decoding errors are
    reported where the frames are read)."""
    import av

    try:
        frame = next(container.decode(container.streams.video[0]), None)
    except (av.error.FFmpegError, StopIteration):
        return 0
    return 0 if frame is None else _quarter_turns(frame.rotation)


def _open_video(path: Path) -> InputContainer:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)  # FFmpeg's words, without its error number
        cut = _missing_index(path)
        raise VideoError(f"video {path} cannot be opened ({' '.join(str(why).split())}){cut}") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"video {path} has no video stream")
    return container


def _missing_index(path: Path) -> str:
    """A hint for an MP4/MOV file FFmpeg cannot open: ``": ..."`` when its top-level boxes (ISO base media
    file format: 4-byte big-endian size, 4-byte type) hold no ``moov`` box, the index of its frames;
    ``""`` otherwise, or when the file is no such file.

    A recorder or ``ffmpeg`` without ``-movflags +faststart`` writes the index last, so a file cut short
    (an interrupted download or copy) loses it and FFmpeg says only "Invalid data found when processing
    input"."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            offset, types = 0, []
            while offset + 8 <= size:
                f.seek(offset)
                head = f.read(16)
                box, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if box == 1 and len(head) == 16:  # a 64-bit size follows the type
                    box = int.from_bytes(head[8:16], "big")
                types.append(kind)
                if kind == b"moov" or box == 0 or box < 8:  # the index; "to the end of the file"; not a box
                    break
                offset += box
    except OSError:
        return ""
    if not types or types[0] != b"ftyp" or b"moov" in types:
        return ""
    cut = " and its last box runs past the end of the file" if offset > size else ""
    return (f": it has no index ('moov' box){cut}, so it was cut short (an interrupted download, copy or "
            "recording); copy it again, or re-export it with ffmpeg -movflags +faststart, which writes the "
            "index first")


def resolve_source(source: str | Path, *, fetch: bool = True) -> Path:
    """A sample video's name (``vtest``, ``carphone``) -> its verified asset path (fetched if ``fetch``);
    anything else -> the path as given (the readers report a missing one as :class:`VideoError`)."""
    from deltatune.data.assets import ASSETS, asset_path

    name = str(source)
    if name in ASSETS and ASSETS[name].filename.endswith((".avi", ".mp4")):
        return asset_path(name, fetch=fetch)
    return Path(name)


def source_digest(source: str | Path) -> str:
    """16 hex digits of SHA-256 over a video file's bytes, or over an image folder's image files (names
    and bytes): what a cache of results computed from the video is keyed by, so that a clip re-exported
    under the same name is not read back from the old clip's cache. Sample names resolve first."""
    import hashlib

    from deltatune.data.assets import sha256_file

    path = resolve_source(source, fetch=True)
    if path.is_file():
        return sha256_file(path)[:16]
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()[:16]


def _resolve(source: str | Path) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise VideoError(f"video source {path} does not exist")
    return path


def video_info(source: str | Path) -> VideoInfo:
    """Return frame size, frame count and fps of a video file or image folder without decoding it all."""
    path = _resolve(source)
    if path.is_dir():
        files = _image_files(path)
        first = _load_image(files[0])
        return VideoInfo(path, int(first.shape[1]), int(first.shape[0]), len(files), _folder_fps(path))
    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        if width <= 0 or height <= 0:
            raise VideoError(f"video {path} reports no frame size")
        stated, about = _promised(container)
        frames = stated or None
        fps = float(stream.average_rate) if stream.average_rate else None
        if _first_frame_turns(container) % 2:
            width, height = height, width  # a portrait clip stored as landscape frames
    finally:
        container.close()
    return VideoInfo(path, width, height, frames, fps, about)


def count_frames(source: str | Path) -> int:
    """The number of frames of a video file or image folder, for a container that does not say it
    (:func:`video_info` gives ``None``: Matroska, WebM): its video packets counted, without decoding
    them (one packet per frame; a fraction of the time decoding takes)."""
    import av

    path = _resolve(source)
    if path.is_dir():
        return len(_image_files(path))
    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
    except av.error.FFmpegError as exc:
        raise VideoError(f"video {path} cannot be read to its end to count its frames ({exc})") from exc
    finally:
        container.close()


def read_frames(
    source: str | Path, *, start: int = 0, count: int | None = None, step: int = 1
) -> Iterator[np.ndarray]:
    """Yield RGB ``uint8`` frames ``[H, W, 3]`` of a video file or an image folder (in file-name order,
    numbers by value: ``2.png`` before ``10.png``).

    Frames ``start, start + step, ...`` are yielded, at most ``count`` of them. The path is checked
    and the file opened when this is called; decoding errors and ``start`` beyond the end raise
    :class:`VideoError` while iterating.

    A video damaged part-way is read up to the damage: a read that needs a frame at or past it raises
    :class:`VideoError` naming the file and the frame where decoding stops (a decoding error, a frame the
    decoder marks corrupt, or an end before the frame count its container states); frames before it are
    yielded as decoded, and damage past the last frame asked for is not decoded, so not seen. A read to
    the end (``count=None``) of a file cut short ends at the cut (compare with :func:`video_info`'s
    count to tell).
    """
    path = _resolve(source)
    _check_range(path, start, count, step)
    if path.is_dir():
        return _iter_images(path, _image_files(path), start, count, step)
    return _iter_video(path, _open_video(path), start, count, step)


def _iter_images(
    folder: Path, files: list[Path], start: int, count: int | None, step: int
) -> Iterator[np.ndarray]:
    if start >= len(files):
        raise VideoError(f"frame {start} is beyond the end of {folder} ({len(files)} images)")
    picked = files[start::step]
    if count is not None:
        picked = picked[:count]
    shape: tuple[int, ...] | None = None
    for f in picked:
        img = _load_image(f)
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise VideoError(
                f"image {f} is {img.shape[1]}x{img.shape[0]}, unlike {shape[1]}x{shape[0]} before it"
            )
        yield img


def _iter_video(
    path: Path, container: InputContainer, start: int, count: int | None, step: int
) -> Iterator[np.ndarray]:
    """Frames of a video file: from the last key frame before ``start`` when the file's
    :func:`~deltatune.data.seek.frame_index` allows it (:mod:`deltatune.data.seek`), else from frame 0."""
    from deltatune.data.seek import frame_index

    if count == 0:
        container.close()
        return
    index = frame_index(path) if start > 0 else None
    key = index.key_before(start) if index is not None else None
    first, some_read = start, False
    if index is not None and key is not None:
        emitted = yield from _iter_from_key(container, index, key, start, count, step)
        if emitted < 0:
            return
        logger.debug("%s: decoded frames do not match its frame index; decoding from the start", path)
        container = _open_video(path)
        start, count = start + emitted * step, None if count is None else count - emitted
        some_read = emitted > 0
    yield from _iter_sequential(path, container, start, count, step, some_read=some_read, first=first)


def _promised(container: InputContainer) -> tuple[int, int | None]:
    """How many frames a video's container says it holds (0: it does not say), and, for one that does not
    say, about how many its duration and frame rate imply (``None``: not known)."""
    stream = container.streams.video[0]
    stated = int(stream.frames or 0)
    about = None
    if not stated and stream.average_rate and container.duration:  # microseconds (av.time_base)
        about = int(round(container.duration / 1e6 * float(stream.average_rate)))
    return stated, about


def _asked(first: int, last: int | None, step: int) -> str:
    """The frames a read asked for, as its errors end: ``; frames 650..689 were asked for``, ``; frames
    from 40 on were asked for`` (nothing for a whole video)."""
    every = f" (step {step})" if step > 1 else ""
    if last is None:
        return f"; frames from {first} on{every} were asked for" if first or step > 1 else ""
    if last == first:
        return f"; frame {first} was asked for"
    return f"; frames {first}..{last}{every} were asked for"


def _cut_short(path: Path, decoded: int, need: int, stated: int, about: int | None) -> str | None:
    """Why a video whose decoding ended cleanly after ``decoded`` frames, before frame ``need`` that a read
    asked for, is damaged: its container states more frames (or, saying none, its duration implies
    clearly more: the rule ``predict`` uses) than decode, and ``need`` is among them. ``None``: the video
    is as long as it says, and ``need`` lies past its end."""
    if decoded <= 0:
        return None
    if stated:
        if decoded >= stated or need >= stated:
            return None
        says = f"its container states {stated} frames (truncated or damaged)"
    else:
        if about is None or decoded >= 0.9 * about - 1 or need >= about:
            return None
        says = f"its container's duration implies about {about} frames (truncated or damaged?)"
    return f"video {path} ends after frame {decoded - 1}, though {says}"


def _decoder_why(exc: Exception) -> str:
    """FFmpeg's words for a decoding error, without its error number and call."""
    return " ".join(str(getattr(exc, "strerror", None) or exc).split())


def _iter_from_key(
    container: InputContainer, index: FrameIndex, key: int, start: int, count: int | None, step: int
) -> Generator[np.ndarray, None, int]:
    """Seek to key frame ``key`` and yield frames ``start, start + step, ...`` (at most ``count``),
    each identified by its pts (:meth:`~deltatune.data.seek.FrameIndex.expect`). Returns ``-1`` when
    done, or how many frames it yielded before the decoder surprised it (a frame the index does not
    explain, a decoding error, a frame the decoder marks corrupt: the caller goes on from the start of the
    file, and reports damage where it meets it); the container is closed either way."""
    import av

    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    emitted, previous = 0, -1
    try:
        container.seek(index.pts[key], stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            pts = frame.pts
            if previous < 0 and pts is not None and index.position.get(pts, key) < key:
                continue  # a leading picture of an open GOP, shown before the key frame
            n = index.expect(pts, previous if previous >= 0 else key - 1)
            if n is None or frame.is_corrupt:
                return emitted
            previous = n
            if n < start or (n - start) % step:
                continue
            yield _upright(frame.to_ndarray(format="rgb24"), _quarter_turns(frame.rotation))
            emitted += 1
            if count is not None and emitted >= count:
                return -1
    except av.error.FFmpegError:
        return emitted  # reported, with its frame number, by the sequential reader
    finally:
        container.close()
    # the end of the file: done if it is where the index ends; else (or with nothing yielded, so that
    # the error names the frame count) the sequential reader decides
    return -1 if emitted and previous == len(index.pts) - 1 else emitted


def _iter_sequential(
    path: Path,
    container: InputContainer,
    start: int,
    count: int | None,
    step: int,
    *,
    some_read: bool = False,
    first: int | None = None,
) -> Iterator[np.ndarray]:
    """Decode from frame 0, yielding frames ``start, start + step, ...`` (at most ``count``).
    ``some_read``: earlier frames of the same request were yielded already, so none left is no error;
    ``first``: the request's first frame, as errors name it (``start`` when ``None``).

    Damage met before the request is done raises :class:`VideoError` naming the file and the frame: a
    decoding error, a frame the decoder marks corrupt, or an end before the frames the container states
    (see :func:`_cut_short`). A read to the end (``count=None``) ends before a corrupt last frame (the cut
    of a truncated file) and at a short end, as at the end of a healthy file."""
    import av

    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stated, about = _promised(container)
    last = None if count is None else start + (count - 1) * step
    asked = _asked(start if first is None else first, last, step)
    index, emitted, corrupt = -1, 0, -1
    try:
        for frame in container.decode(stream):
            index += 1
            if corrupt >= 0:  # frames decode after a corrupt one: damage inside the stream, not its cut end
                raise VideoError(
                    f"video {path} is damaged at frame {corrupt} (the decoder marks it corrupt){asked}"
                )
            if frame.is_corrupt:  # the cut end of a truncated file, or damage: the next frame tells
                corrupt = index
                continue
            if index < start or (index - start) % step:
                continue
            yield _upright(frame.to_ndarray(format="rgb24"), _quarter_turns(frame.rotation))
            emitted += 1
            if count is not None and emitted >= count:
                return
    except av.error.FFmpegError as exc:
        at, why = (
            (corrupt, "the decoder marks it corrupt")
            if corrupt >= 0
            else (index + 1, f"the decoder stops there: {_decoder_why(exc)}")
        )
        raise VideoError(f"video {path} is damaged at frame {at} ({why}){asked}") from exc
    finally:
        container.close()
    decoded = corrupt if corrupt >= 0 else index + 1
    if corrupt >= 0:
        logger.debug("%s: its last frame (%d) is corrupt, the cut end of a truncated file", path, corrupt)
    if (count is not None and emitted < count) or (emitted == 0 and not some_read):
        cut = _cut_short(path, decoded, start + emitted * step, stated, about)
        if cut is not None:
            raise VideoError(f"{cut}{asked}")
    if emitted == 0 and not some_read:
        if decoded <= 0:
            raise VideoError(f"video {path} has no decodable frames")
        raise VideoError(f"frame {start} is beyond the end of {path} ({decoded} frames)")


class FrameStreams:
    """Frames of one source as float32 batches ``[B, 3, H, W]`` in [0, 1] (RGB), one entry per stream.

    Each :class:`CropWindow` is one stream; without windows the whole frame is the single stream.
    ``size=(H, W)`` resizes every crop with bilinear interpolation and antialiasing. When a window's
    aspect ratio differs from ``size`` the crop is stretched anyway (no padding, no centre crop), so
    choose windows with the model's aspect ratio (e.g. 3:4 w:h for 256x192 pose models). Without
    ``size`` all windows must have the same size. Windows are checked against the frame size here.

    ``len()`` works when the frame count is known (``count`` given, or the container states it).
    """

    def __init__(
        self,
        source: str | Path,
        *,
        windows: Sequence[CropWindow] | None = None,
        size: tuple[int, int] | None = None,
        start: int = 0,
        count: int | None = None,
        step: int = 1,
    ) -> None:
        self.source = _resolve(source)
        _check_range(self.source, start, count, step)
        self.info = video_info(self.source)
        self.windows: tuple[CropWindow, ...] = tuple(windows) if windows else ()
        for w in self.windows:
            if not isinstance(w, CropWindow):
                raise VideoError(f"crop window {w!r} for {self.source} is not a CropWindow")
            w.check(self.info.width, self.info.height, source=self.source)
        if size is not None:
            if len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size
            ):
                raise VideoError(f"size={size!r} for {self.source} must be two positive integers (H, W)")
            size = (int(size[0]), int(size[1]))
        elif len({(w.h, w.w) for w in self.windows}) > 1:
            raise VideoError(
                f"crop windows {', '.join(map(str, self.windows))} differ in size; "
                "pass size=(H, W) to resize them"
            )
        self.size = size
        self.start, self.count, self.step = start, count, step

    @property
    def batch_size(self) -> int:
        """Number of streams (batch entries per frame)."""
        return max(1, len(self.windows))

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(H, W)`` of every stream's frames."""
        if self.size is not None:
            return self.size
        if self.windows:
            return (self.windows[0].h, self.windows[0].w)
        return (self.info.height, self.info.width)

    def __len__(self) -> int:
        total = self.info.frames
        if total is None:
            if self.count is None:
                raise TypeError(f"frame count of {self.source} is unknown; pass count=")
            return self.count
        available = max(0, math.ceil((total - self.start) / self.step))
        return available if self.count is None else min(self.count, available)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for frame in read_frames(self.source, start=self.start, count=self.count, step=self.step):
            yield self.convert(frame)

    def convert(self, frame: np.ndarray) -> torch.Tensor:
        """Turn one RGB ``uint8`` frame ``[H, W, 3]`` into this object's ``[B, 3, H', W']`` batch."""
        full = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)  # [3, H, W] uint8
        if self.windows:
            crops = [full[:, w.y : w.y + w.h, w.x : w.x + w.w] for w in self.windows]
        else:
            crops = [full]
        out = []
        for c in crops:
            t = c.unsqueeze(0).to(torch.float32).div_(255.0)
            if self.size is not None and tuple(t.shape[-2:]) != self.size:
                t = F.interpolate(t, size=self.size, mode="bilinear", align_corners=False, antialias=True)
                t = t.clamp_(0.0, 1.0)
            out.append(t)
        return torch.cat(out, dim=0).contiguous()

    def to_tensor(self) -> torch.Tensor:
        """Decode everything into one ``[T, B, 3, H, W]`` tensor (for short clips: it all stays in memory)."""
        frames = list(self)
        if not frames:
            h, w = self.frame_shape
            return torch.empty((0, self.batch_size, 3, h, w), dtype=torch.float32)
        return torch.stack(frames, dim=0)

    def __repr__(self) -> str:
        wins = ", ".join(map(str, self.windows)) or "full frame"
        return (
            f"FrameStreams({str(self.source)!r}, windows=[{wins}], size={self.size}, "
            f"start={self.start}, count={self.count}, step={self.step})"
        )


def load_clip(
    source: str | Path,
    *,
    windows: Sequence[CropWindow] | None = None,
    size: tuple[int, int] | None = None,
    start: int = 0,
    count: int | None = None,
    step: int = 1,
) -> torch.Tensor:
    """Load a short clip as float32 ``[T, B, 3, H, W]`` in [0, 1]; see :class:`FrameStreams`.

    Everything is kept in memory: 50 frames of three 256x192 streams take about 88 MB.
    """
    return FrameStreams(source, windows=windows, size=size, start=start, count=count, step=step).to_tensor()
