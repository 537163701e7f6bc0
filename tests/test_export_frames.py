"""``benchmarks/export_frames.py``: a video's frames as a PNG folder that deltatune reads back to the
same pixels and the same workload (what a GPU machine without PyAV runs on, tests/delta/test_cuda.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import torch

from deltatune.data.video import read_frames
from deltatune.workload import load_workload
from tests._scripts import run_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "export_frames.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark(SCRIPT.name, *args)


def test_exported_folder_holds_the_decoded_pixels_and_the_sample_windows(vtest_path, tmp_path) -> None:
    out = tmp_path / "vtest"  # named after the sample: it keeps vtest's crop windows
    r = _run(str(vtest_path), "--start", "5", "--count", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{i:06d}.png" for i in range(4)]
    for a, b in zip(read_frames(out), read_frames(vtest_path, start=5, count=4), strict=True):
        assert a.flags.writeable and np.array_equal(a, b)
    from_folder = load_workload("hrnet_tiny", weights=None, video=out, frames=4)
    from_video = load_workload("hrnet_tiny", weights=None, video=vtest_path, frames=4, start=5)
    assert from_folder.n_streams == from_video.n_streams == 3
    assert torch.equal(from_folder.frames, from_video.frames)


def test_bad_inputs_are_one_line_and_exit_2(vtest_path, tmp_path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x.txt").write_text("x")
    for args, needle in [
        ((str(vtest_path), "--count", "0", "--out", str(tmp_path / "a")), "--count must be at least 1"),
        ((str(vtest_path), "--out", str(full)), "is not empty"),
        ((str(tmp_path / "missing.avi"), "--out", str(tmp_path / "b")), "missing.avi"),
    ]:
        r = _run(*args)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing half-written
