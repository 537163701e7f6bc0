"""Write a synthetic clip in which one compact object moves over a still, textured background.

Why: the sample clips are pedestrians crossing a static camera's view (vtest, cropped around people) and a
talking head (carphone); neither has the small, compact change region that a delta network is best at and
that, for example, a fixed camera watching one moving part shows. This clip is that case, reproducibly
and without third-party video: a 320x240 H.264 file, a red disc 30 px in radius moving right by 6 px a
frame on a sine path, over a smooth colour pattern, with Gaussian sensor noise (sigma 1.5 grey levels)
so that the input step has noise to ignore. ``deltatune bench`` and ``search`` read it like any video
(the whole frame is one stream).

Run: ``.venv/bin/python benchmarks/moving_object_clip.py /tmp/disc.mp4 [--frames 40] [--seed 1]``, then
e.g. ``deltatune bench --model mobilenet_v2 --video /tmp/disc.mp4 --frames 20 --threshold 0.05``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from deltatune._atomic import atomic_write

WIDTH, HEIGHT, RADIUS, FPS = 320, 240, 30, 25


def frames(count: int, seed: int) -> list[np.ndarray]:
    """The clip's ``count`` RGB frames (``uint8 [240, 320, 3]``)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = (128 + 60 * np.sin(xx / 9.0)[..., None] * np.array([1.0, 0.5, 0.2])
                  + 40 * np.cos(yy / 13.0)[..., None] * np.array([0.2, 0.6, 1.0])).clip(0, 255)
    out = []
    for t in range(count):
        f = background.copy()
        cx, cy = 40 + 6 * t, 120 + 30 * np.sin(t / 5)
        f[(xx - cx) ** 2 + (yy - cy) ** 2 < RADIUS**2] = (250, 40, 40)
        out.append((f + rng.normal(0, 1.5, f.shape)).clip(0, 255).astype(np.uint8))
    return out


def write_clip(path: Path, count: int, seed: int) -> None:
    """Encode :func:`frames` as H.264 at ``path`` (written whole or not at all)."""
    import av

    def write(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for f in frames(count, seed):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
            out.mux(stream.encode())

    atomic_write(path, write)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the .mp4 file to write")
    p.add_argument("--frames", type=int, default=40, help="frames (default 40; the disc leaves at ~46)")
    p.add_argument("--seed", type=int, default=1, help="seed of the sensor noise (default 1)")
    a = p.parse_args(argv)
    if a.frames < 2:
        print(f"moving_object_clip.py: error: --frames {a.frames}: need at least 2", file=sys.stderr)
        return 2
    if a.out.suffix.lower() != ".mp4":
        print(f"moving_object_clip.py: error: {a.out}: give a .mp4 file name", file=sys.stderr)
        return 2
    write_clip(a.out, a.frames, a.seed)
    print(f"{a.out}: {a.frames} frames, {WIDTH}x{HEIGHT}, {FPS} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
