"""Decode frames of a video (or a sample name: vtest, carphone) into an image folder of PNG files.

Why: a GPU machine may lack PyAV, the video decoder; deltatune reads an image folder with Pillow alone,
and PNG is lossless, so the folder holds exactly the decoded pixels. Name the folder after the sample
(``.../vtest``) and it keeps the sample's crop windows. The CUDA checks (tests/delta/test_cuda.py,
docs/gpu.md) ran on frames exported this way.

Run: ``.venv/bin/python benchmarks/export_frames.py vtest --count 40 --out /tmp/frames/vtest
[--start 0]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from PIL import Image

from deltatune.data.video import read_frames, resolve_source
from deltatune.errors import ConfigError, DeltatuneError


def export(source: str, out: Path, *, start: int, count: int) -> int:
    """Write frames ``start .. start + count - 1`` as ``out/000000.png ...``; returns how many. The
    frames go to a sibling folder first, renamed to ``out`` when all are written: a failed run (a
    corrupt file, ``start`` beyond the end) leaves nothing behind."""
    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: the folder is not empty")
    frames = read_frames(resolve_source(source), start=start, count=count)  # checks the path first
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    n = 0
    try:
        for n, frame in enumerate(frames, 1):
            Image.fromarray(frame).save(partial / f"{n - 1:06d}.png")
        if out.exists():
            out.rmdir()
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", help="video file or sample name (vtest, carphone)")
    p.add_argument("--out", type=Path, required=True, help="image folder to create (must be empty)")
    p.add_argument("--start", type=int, default=0, help="first frame (default 0)")
    p.add_argument("--count", type=int, default=40, help="frames to write (default 40)")
    args = p.parse_args(argv)
    try:
        n = export(args.source, args.out, start=args.start, count=args.count)
    except (DeltatuneError, OSError) as exc:
        print(f"export_frames: error: {exc}", file=sys.stderr)
        return 2
    print(f"{n} frames -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
