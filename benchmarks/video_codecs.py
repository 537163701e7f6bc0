"""How the video's compression changes what a delta network skips: the same frames, re-encoded.

Why: a delta network skips pixels that did not change between frames, and compression noise is change.
An inter-frame codec (H.264, VP9) copies a static background from frame to frame, so it stays exactly
still; intra-only compression (a folder of JPEG frames, as MOT16 ships them, or MJPEG) encodes every
frame on its own, so the background flickers by a few grey levels everywhere. This re-encodes segments
of the vtest sample (itself MPEG-4 part 2) with several codecs and as PNG (lossless) and JPEG folders,
and scores one fixed threshold setting on each with ``deltatune inspect``'s computation (MAC speedup and
accuracy loss against the dense model on the same decoded frames), at the sample's three crop windows.
MAC counts, not timings: no quiet machine needed.

Run: ``.venv/bin/python benchmarks/video_codecs.py --model hrnet --thresholds studies/thresholds/hrnet.json
[--starts 0,200,400,650] [--frames 40]`` (or ``--threshold T``: one threshold everywhere)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from deltatune.data.video import DEFAULT_WINDOWS, read_frames, resolve_source
from deltatune.errors import DeltatuneError
from deltatune.inspection import inspect_model

#: (label, file suffix, PyAV codec or image format, pixel format, encoder options). An image format
#: (``png``, ``jpeg``) writes a folder of image files: PNG is lossless; JPEG is intra-only compression at
#: the given quality, as MOT16 ships its frames and as MJPEG cameras write them.
CODECS: tuple[tuple[str, str, str, str, dict[str, str]], ...] = (
    ("decoded (lossless PNG)", "", "png", "", {}),
    ("H.264 crf 18", ".mp4", "libx264", "yuv420p", {"crf": "18"}),
    ("H.264 crf 28", ".mp4", "libx264", "yuv420p", {"crf": "28"}),
    ("VP9 crf 32", ".webm", "libvpx-vp9", "yuv420p", {"crf": "32", "b": "0"}),
    ("JPEG frames q 95", "", "jpeg", "", {"quality": "95"}),
    ("JPEG frames q 75", "", "jpeg", "", {"quality": "75"}),
)


def encode(frames: list[np.ndarray], path: Path, codec: str, pix_fmt: str, options: dict[str, str]) -> Path:
    """Write ``frames`` (RGB) to ``path``: a video with a PyAV ``codec`` at 10 fps, or a folder of ``png`` /
    ``jpeg`` files."""
    if codec in ("png", "jpeg"):
        from PIL import Image

        path.mkdir(parents=True)
        for i, f in enumerate(frames):
            kw = {"quality": int(options["quality"])} if codec == "jpeg" else {}
            Image.fromarray(f).save(path / f"{i:06d}.{'jpg' if codec == 'jpeg' else 'png'}", **kw)
        return path
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=10, options=options)
        st.height, st.width = frames[0].shape[:2]
        st.pix_fmt = pix_fmt
        for f in frames:
            for packet in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    return path


def _kib_per_frame(path: Path, n: int) -> float:
    size = sum(f.stat().st_size for f in path.rglob("*")) if path.is_dir() else path.stat().st_size
    return size / n / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hrnet")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--thresholds", help="a thresholds file (deltatune or DeltaCNN format)")
    g.add_argument("--threshold", type=float, help="one threshold for every truncation point")
    p.add_argument("--starts", default="0,200,400,650", help="first frames of the vtest segments")
    p.add_argument("--frames", type=int, default=40, help="frames per segment (default 40)")
    args = p.parse_args(argv)
    starts = [int(s) for s in args.starts.split(",")]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for start in starts:
                frames = list(read_frames(resolve_source("vtest"), start=start, count=args.frames))
                for label, suffix, codec, pix_fmt, options in CODECS:
                    path = encode(frames, Path(tmp) / f"{start}-{len(rows)}{suffix}", codec, pix_fmt, options)
                    r = inspect_model(args.model, video=path, frames=args.frames,
                                      windows=DEFAULT_WINDOWS["vtest"], thresholds_file=args.thresholds,
                                      threshold=args.threshold)
                    loss = r.accuracy_loss or 0.0
                    rows.append((start, label, r.mac_speedup, loss, _kib_per_frame(path, len(frames))))
                    print(f"vtest@{start:<4} {label:<24} MAC {r.mac_speedup:5.2f}x  loss {loss:5.2f}  "
                          f"{rows[-1][4]:6.1f} KiB/frame", flush=True)
    except DeltatuneError as exc:
        print(f"video_codecs: error: {exc}", file=sys.stderr)
        return 2
    setting = args.thresholds or f"threshold {args.threshold:g}"
    print(f"\nmean over {len(starts)} segments of {args.frames} frames ({args.model}, {setting}):")
    print("| video as | MAC speedup | accuracy loss (points) | KiB/frame |\n|---|---|---|---|")
    for label, *_ in CODECS:
        mine = [r for r in rows if r[1] == label]
        mac, loss, kib = (float(np.mean([r[i] for r in mine])) for i in (2, 3, 4))
        lo, hi = min(r[2] for r in mine), max(r[2] for r in mine)
        print(f"| {label} | {mac:.2f}x ({lo:.2f}-{hi:.2f}) | {loss:.2f} | {kib:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
