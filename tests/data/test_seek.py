"""Reading from frame N by seeking to a key frame: the same frames as decoding from frame 0, on the real
sample (AVI) and on H.264 with B-frames and open GOPs, and a fall-back when the index does not hold."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from deltatune.data import read_frames
from deltatune.data.seek import FrameIndex, frame_index

FALLBACK = "do not match its frame index"


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def open_gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 frames of H.264 with 3 B-frames, a key frame every 25 and open GOPs (leading pictures)."""
    import av

    path = tmp_path_factory.mktemp("seek") / "open_gop.mp4"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = 64, 96, "yuv420p"
        stream.options = {"g": "25", "bf": "3", "x264-params": "open-gop=1"}
        for i in range(120):
            img = np.roll(base, 2 * i, axis=1)
            img[:8, :8] = i  # every frame differs from its neighbours
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.mark.parametrize(
    ("start", "count", "step"), [(650, 12, 1), (499, 5, 3), (790, None, 1), (501, 4, 50)]
)
def test_vtest_from_frame_n_equals_decoding_from_the_start(
    vtest_path: Path, start: int, count: int | None, step: int, caplog: pytest.LogCaptureFixture
) -> None:
    index = frame_index(vtest_path)
    assert index is not None and len(index.pts) == 795
    assert index.key_before(start) is not None  # a seek past frame 0 happens
    everything = list(read_frames(vtest_path, start=0, count=start + 200))  # frame 0 on: never seeks
    want = everything[start::step][:count] if count is not None else everything[start::step]
    with caplog.at_level(logging.DEBUG, logger="deltatune.data.video"):
        got = list(read_frames(vtest_path, start=start, count=count, step=step))
    assert _same(got, want)
    assert FALLBACK not in caplog.text


@pytest.mark.parametrize("start", [24, 25, 26, 49, 77, 101, 119])
def test_h264_open_gop_from_frame_n_equals_decoding_from_the_start(
    open_gop_clip: Path, start: int, caplog: pytest.LogCaptureFixture
) -> None:
    index = frame_index(open_gop_clip)
    assert index is not None and len(index.pts) == 120 and len(index.keys) > 1
    everything = list(read_frames(open_gop_clip))
    with caplog.at_level(logging.DEBUG, logger="deltatune.data.video"):
        got = list(read_frames(open_gop_clip, start=start, count=6))
    assert _same(got, everything[start : start + 6])
    assert FALLBACK not in caplog.text


def test_a_wrong_index_falls_back_to_decoding_from_the_start(
    vtest_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The reader checks each decoded frame's pts against the index: an index that is wrong from frame
    652 on is noticed after two frames were read, and the rest comes from a decode from frame 0."""
    import deltatune.data.seek as seek

    real = frame_index(vtest_path)
    assert real is not None
    pts = list(real.pts)
    pts[652] = pts[-1] + 1000  # a frame the decoder never shows
    monkeypatch.setattr(seek, "frame_index", lambda path: FrameIndex(tuple(pts), real.keys))
    want = list(read_frames(vtest_path, start=0, count=660))[650:660]
    with caplog.at_level(logging.DEBUG, logger="deltatune.data.video"):
        got = list(read_frames(vtest_path, start=650, count=10))
    assert _same(got, want)
    assert FALLBACK in caplog.text


def test_start_beyond_the_end_after_a_seek_names_the_frame_count(vtest_path: Path) -> None:
    from deltatune.errors import VideoError

    with pytest.raises(VideoError, match=r"frame 800 is beyond the end of .* \(795 frames\)"):
        list(read_frames(vtest_path, start=800))


def test_key_before() -> None:
    index = FrameIndex((0, 10, 20, 30, 40, 50), (0, 2, 5))
    assert [index.key_before(n) for n in range(6)] == [None, None, 2, 2, 2, 5]
    assert index.expect(30, 2) == 3 and index.expect(40, 2) is None and index.expect(35, 2) is None


def _encode_clip(path: Path, fmt: str, codec: str, options: dict[str, str], vfr: bool = False) -> None:
    """90 frames, each different from its neighbours, in ``fmt`` / ``codec``; ``vfr``: frame durations
    alternate (33 ms, 33 ms, 50 ms), as phones record."""
    import fractions

    import av

    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        stream.options = options
        if vfr:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        t = 0
        for i in range(90):
            img = np.roll(base, 2 * i, axis=1)
            img[:8, :8] = i
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if vfr:
                frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
                t += 33 if i % 3 else 50
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "options", "vfr"),
    [
        ("clip.ts", "mpegts", "libx264", {"g": "20", "bf": "2"}, False),  # FFmpeg's seek lands elsewhere
        ("clip.mkv", "matroska", "libx264", {"g": "20", "bf": "3"}, False),
        ("clip.webm", "webm", "libvpx-vp9", {"g": "20"}, False),
        ("vfr.mp4", "mp4", "libx264", {"g": "15", "bf": "2"}, True),
    ],
)
def test_other_containers_read_the_same_frames_from_frame_n(
    tmp_path: Path, name: str, fmt: str, codec: str, options: dict[str, str], vfr: bool
) -> None:
    path = tmp_path / name
    _encode_clip(path, fmt, codec, options, vfr)
    everything = list(read_frames(path))
    assert len(everything) == 90
    for start in (1, 19, 20, 21, 45, 61, 89):
        assert _same(list(read_frames(path, start=start, count=5)), everything[start : start + 5]), start
