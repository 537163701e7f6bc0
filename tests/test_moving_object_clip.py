"""``benchmarks/moving_object_clip.py``: a synthetic clip with one compact moving object, decoded back as
a one-stream workload whose changes are where the disc moves, and one-line errors for bad arguments."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from deltatune.data.video import read_frames
from deltatune.workload import load_workload
from tests._scripts import run_benchmark


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark("moving_object_clip.py", *args)


def test_the_clip_decodes_as_one_stream_whose_change_is_the_moving_disc(tmp_path: Path) -> None:
    clip = tmp_path / "disc.mp4"
    r = _run(str(clip), "--frames", "12")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{clip}: 12 frames, 320x240, 25 fps"
    decoded = [f.astype(np.int16) for f in read_frames(clip)]
    assert len(decoded) == 12 and decoded[0].shape == (240, 320, 3)
    # the disc (red) is where the script draws it: frame 5 centred near x = 70, y = 120 + 30 sin(1)
    red = (decoded[5][..., 0] > 200) & (decoded[5][..., 1] < 90)
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - 70) < 3 and abs(ys.mean() - (120 + 30 * np.sin(1.0))) < 3
    # frame to frame, large changes are confined to the disc's old and new places (a few % of the frame)
    moved = np.abs(decoded[6] - decoded[5]).max(axis=2) > 40
    assert 0.005 < moved.mean() < 0.05
    wl = load_workload("hrnet_tiny", weights=None, frames=4, video=str(clip))  # the whole frame: 1 stream
    assert tuple(wl.frames.shape[:3]) == (4, 1, 3)


def test_bad_arguments_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    for args, needle in (([str(tmp_path / "a.mp4"), "--frames", "1"], "--frames 1: need at least 2"),
                         ([str(tmp_path / "a.avi")], "give a .mp4 file name")):
        r = _run(*args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(tmp_path.iterdir()) == []
