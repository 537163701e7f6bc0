"""Start decoding a video near frame N instead of at its first frame.

Frame N of a video file is the N-th frame a decoder outputs, in presentation order. Reading from frame
N used to decode every frame before it: on a long 1080p H.264 clip that is minutes for a segment late in
the video, paid again by every process that reads it (search workers, ``--also-on`` segments).

A :class:`FrameIndex` lists every video packet's presentation timestamp (pts) in presentation order and
which packets are key frames, read by demuxing the file (no decoding; about a second for a long clip,
kept in memory per process). A reader then seeks to the last key frame at or before N and identifies
each decoded frame by its pts. :func:`frame_index` returns ``None`` when the index cannot be trusted (a
packet without pts, two packets with one pts, fewer packets than the container states frames or, where
it states none, clearly fewer than its duration implies: a truncated or damaged file, whose frame numbers
past the damage would shift); the reader then decodes from the start as before, and reports the damage
where it meets it.
The reader also checks every frame it decodes after a seek against the index (see
:meth:`FrameIndex.expect`) and falls back to decoding from the start on any surprise (a frame the
decoder marks corrupt among them), so a seek never changes which frames are read. Damage before the key
frame it seeks to is not decoded, so not seen: the frames after it are read as in a healthy file.
"""

from __future__ import annotations

import bisect
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FrameIndex", "frame_index"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameIndex:
    """The video stream's packet timestamps in presentation order, and the key frames among them."""

    #: pts of frame 0, 1, 2, ... (presentation order)
    pts: tuple[int, ...]
    #: frame numbers of the key frames, ascending
    keys: tuple[int, ...]
    position: Mapping[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", {p: i for i, p in enumerate(self.pts)})

    def key_before(self, n: int) -> int | None:
        """The last key frame at or before frame ``n`` after frame 0 (a seek there saves decoding), or
        ``None`` when decoding from the start is as good."""
        i = bisect.bisect_right(self.keys, n)
        return self.keys[i - 1] if i and self.keys[i - 1] > 0 else None

    def expect(self, pts: int | None, previous: int) -> int | None:
        """The frame number of a frame decoded after a seek, given the number of the frame before it
        (``-1`` before the first): frames before the key frame (open-GOP leading pictures) give a number
        below it and are skipped by the caller; ``None`` means the decoder output something the index
        does not explain (an unknown pts, a skipped or repeated frame), so the caller must not trust it."""
        n = None if pts is None else self.position.get(pts)
        if n is None:
            return None
        if previous >= 0 and n != previous + 1:
            return None
        return n


def frame_index(path: Path) -> FrameIndex | None:
    """The :class:`FrameIndex` of the video file at ``path`` (``None`` when it cannot be trusted or the
    file cannot be demuxed; the caller then decodes from the start). Cached per file version."""
    st = path.stat()
    return _index(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _index(path: str, _size: int, _mtime_ns: int) -> FrameIndex | None:
    import av

    from deltatune.data.video import _promised

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stated, about = _promised(container)
            raw = [(p.pts, bool(p.is_keyframe)) for p in container.demux(stream) if p.size]
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        log.debug("no frame index for %s (%s): decoding from the start", path, exc)
        return None
    packets = [(int(p), key) for p, key in raw if p is not None]
    if not packets or len(packets) != len(raw):  # a packet without pts: no trustworthy order
        return None
    # a truncated file, or packets lost to damage (frame numbers past it would shift); without a stated
    # count, clearly fewer packets than the duration implies (the rule of the reader's own check)
    if len(packets) < stated or (not stated and about is not None and len(packets) < 0.9 * about - 1):
        log.debug(
            "no frame index for %s (%d packets, where its container states %s frames): decoding from "
            "the start",
            path,
            len(packets),
            stated or f"about {about}",
        )
        return None
    pts = sorted(p for p, _ in packets)
    if len(set(pts)) != len(pts):
        return None
    position = {p: i for i, p in enumerate(pts)}
    keys = tuple(sorted(position[p] for p, key in packets if key))
    return FrameIndex(tuple(pts), keys)
