"""``benchmarks/video_codecs.py``: the re-encodings it scores are what their names say (PNG lossless, JPEG and
H.264 lossy, every frame kept), and the script prints one row per encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deltatune.data.video import read_frames, resolve_source
from tests._scripts import ROOT, run_benchmark

SCRIPT = ROOT / "benchmarks" / "video_codecs.py"


def _script():  # noqa: ANN202
    import importlib.util

    spec = importlib.util.spec_from_file_location("deltatune_bench_video_codecs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_encoding_keeps_every_frame_and_only_png_is_lossless(tmp_path: Path) -> None:
    bench = _script()
    frames = list(read_frames(resolve_source("vtest"), start=100, count=4))
    decoded = {}
    for label, suffix, codec, pix_fmt, options in bench.CODECS:
        path = bench.encode(frames, tmp_path / f"{len(decoded)}{suffix}", codec, pix_fmt, options)
        decoded[label] = [f.astype(np.int16) for f in read_frames(path)]
        assert len(decoded[label]) == len(frames), label
    original = [f.astype(np.int16) for f in frames]
    assert all(np.array_equal(a, b) for a, b in zip(decoded["decoded (lossless PNG)"], original, strict=True))
    for label in ("H.264 crf 28", "JPEG frames q 75"):
        error = np.mean([np.abs(a - b).mean() for a, b in zip(decoded[label], original, strict=True)])
        assert 0 < error < 8, (label, error)  # lossy, and still the same picture


@pytest.mark.slow
def test_the_script_prints_one_row_per_encoding() -> None:
    r = run_benchmark("video_codecs.py", "--model", "hrnet_tiny", "--threshold", "0", "--starts", "0",
                      "--frames", "3", timeout=600)
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| ") and "x (" in ln]
    assert len(rows) == len(_script().CODECS)
    # threshold 0 is the exact delta network: nothing is lost, whatever the encoding
    assert all(ln.split("|")[3].strip() == "0.00" for ln in rows), rows
