"""Videos damaged part-way, written and damaged here (cut short, or garbled bytes mid-stream), read by the
real decoder: the frames before the damage come as the whole file's, and a read that needs a frame at or
past the damage is refused in one line naming the file and the frame where decoding stops."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from deltatune.cli import main
from deltatune.data import read_frames
from deltatune.errors import VideoError

N = 60  # frames written


def _write(path: Path, codec: str, options: dict[str, str], container: dict[str, str] | None = None) -> Path:
    """``N`` frames of 128x96 moving noise (every frame differs) with ``codec``."""
    import av

    base = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    with av.open(str(path), "w", options=container or {}) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.options = options
        for i in range(N):
            img = np.roll(base, 3 * i, axis=1)
            img[:8, :8] = 4 * i
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def _cut(whole: Path, name: str) -> Path:
    """``whole`` truncated at 60 % of its bytes (a copy interrupted, a recording that crashed)."""
    data = whole.read_bytes()
    path = whole.with_name(name)
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def _garble(whole: Path, name: str) -> Path:
    """``whole`` with 45-55 % of its bytes overwritten by random ones (the header and index intact)."""
    data = bytearray(whole.read_bytes())
    a, z = int(len(data) * 0.45), int(len(data) * 0.55)
    data[a:z] = np.random.default_rng(1).integers(0, 256, z - a, dtype=np.uint8).tobytes()
    path = whole.with_name(name)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Whole clips and their damaged copies: intra-only MPEG-4 Part 2 in AVI (one frame's bytes after
    another), H.264 in MP4 (its index up front, as ``faststart`` writes it) and H.264 in Matroska (which
    states no frame count)."""
    d = tmp_path_factory.mktemp("damaged")
    avi = _write(d / "clip.avi", "mpeg4", {"g": "1"})
    mp4 = _write(d / "clip.mp4", "libx264", {"g": "12"}, {"movflags": "faststart"})
    mkv = _write(d / "clip.mkv", "libx264", {"g": "12"})
    return {
        "avi": avi,
        "mp4": mp4,
        "mkv": mkv,
        "cut.avi": _cut(avi, "cut.avi"),
        "garbled.avi": _garble(avi, "garbled.avi"),
        "cut.mp4": _cut(mp4, "cut.mp4"),
        "garbled.mp4": _garble(mp4, "garbled.mp4"),
        "garbled.mkv": _garble(mkv, "garbled.mkv"),
    }


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _refused(path: Path, **request: int) -> str:
    with pytest.raises(VideoError) as exc:
        list(read_frames(path, **request))
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


@pytest.mark.parametrize("kind", ["avi", "mp4"])
def test_a_cut_video_reads_up_to_the_cut_and_refuses_frames_past_it(
    clips: dict[str, Path], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The container still states 60 frames; the decoder ends cleanly after about 60 % of them. Frames
    past the cut were read as fewer frames than asked for (a clip straddling the cut came back short),
    or said to lie "beyond the end" of a video that states 60."""
    whole, cut = list(read_frames(clips[kind])), clips[f"cut.{kind}"]
    with caplog.at_level(logging.WARNING):
        kept = list(read_frames(cut))  # to the end: what decodes intact, as the whole file's frames
    assert 20 < len(kept) < 45 and _same(kept, whole[: len(kept)])
    assert _same(list(read_frames(cut, start=5, count=10)), whole[5:15])  # before the cut: nothing to say
    assert not caplog.records
    last = len(kept) - 1
    said = (
        f"video {cut} ends after frame {last}, though its container states {N} frames (truncated or damaged)"
    )
    assert _refused(cut, start=last - 2, count=10) == f"{said}; frames {last - 2}..{last + 7} were asked for"
    assert _refused(cut, start=50, count=5) == f"{said}; frames 50..54 were asked for"
    assert _refused(cut, start=50) == f"{said}; frames from 50 on were asked for"


def test_garbled_bytes_in_an_avi_are_named_not_read_through(clips: dict[str, Path]) -> None:
    """Random bytes mid-stream in an AVI: the decoder conceals the frame at the damage (a copy of the one
    before, marked corrupt) and the demuxer loses the packets after it, so a clip through the damage came
    back with a repeated frame and a jump, every later frame under an earlier number, without a word. Its
    packets are fewer than it states frames, so no read seeks past the damage either: frame 40 of the
    decoder's count is not the file's frame 40."""
    whole, bad = list(read_frames(clips["avi"])), clips["garbled.avi"]
    msg = _refused(bad, start=40, count=10)
    m = re.fullmatch(
        rf"video {re.escape(str(bad))} is damaged at frame (\d+) \((the decoder stops there: "
        r"[^;]+|the decoder marks it corrupt)\); frames 40\.\.49 were asked for",
        msg,
    )
    assert m, msg
    at = int(m.group(1))
    assert 15 < at < 40
    assert _same(list(read_frames(bad, count=at)), whole[:at])  # every frame before it, as written
    said = f"video {bad} is damaged at frame {at} ("
    assert _refused(bad, start=at - 3, count=10).startswith(said)
    assert _refused(bad, count=at + 1).startswith(said)
    whole_read = _refused(bad)  # the whole video: the same frame, nothing asked for to name
    assert whole_read.startswith(said) and whole_read.endswith(")")


def test_a_garbled_mp4_refuses_frames_the_damage_hides_and_seeks_past_it(clips: dict[str, Path]) -> None:
    """H.264 in MP4 keeps its sample table up front, intact: frame numbers hold past the damage. A clip
    that starts after the next key frame is read by seeking there, as the whole file's frames; one that
    starts within the damage is refused, naming where decoding stopped."""
    whole, bad = list(read_frames(clips["mp4"])), clips["garbled.mp4"]
    msg = _refused(bad, count=N)
    m = re.match(rf"video {re.escape(str(bad))} is damaged at frame (\d+) \(", msg)
    assert m, msg
    at = int(m.group(1))
    assert 10 < at < 36 and msg.endswith(f"; frames 0..{N - 1} were asked for")
    assert _same(list(read_frames(bad, start=48, count=10)), whole[48:58])
    assert _refused(bad, start=at, count=3).startswith(f"video {bad} is damaged at frame {at} (")


def test_a_matroska_file_that_lost_packets_is_refused_not_renumbered(clips: dict[str, Path]) -> None:
    """Garbled bytes in a Matroska file: the demuxer skips the damaged blocks without an error and the
    decoder goes on, so 60 frames asked for came back as 49, one of them garbage and the ones after it
    under earlier numbers (frame 25 was the clip's 36th), without a word. The decoder marks the frame at
    the damage corrupt; a read through it is refused."""
    whole, bad = list(read_frames(clips["mkv"])), clips["garbled.mkv"]
    msg = _refused(bad, count=N)
    m = re.fullmatch(
        rf"video {re.escape(str(bad))} is damaged at frame (\d+) \(the decoder marks it corrupt\); "
        rf"frames 0\.\.{N - 1} were asked for",
        msg,
    )
    assert m, msg
    at = int(m.group(1))
    assert _same(list(read_frames(bad, count=at)), whole[:at])
    assert _refused(bad, start=45, count=10).startswith(f"video {bad} is damaged at frame {at} (")
    assert _refused(bad).startswith(f"video {bad} is damaged at frame {at} (")


def _edge(path: Path) -> int:
    """The first frame of ``path`` that does not decode intact."""
    try:
        return len(list(read_frames(path)))
    except VideoError as exc:
        m = re.search(r"is damaged at frame (\d+)", str(exc))
        assert m, exc
        return int(m.group(1))


@pytest.mark.parametrize(
    ("kind", "start"),
    [("cut.avi", 40), ("cut.avi", "straddle"), ("garbled.avi", "straddle"), ("garbled.avi", 40)],
)
def test_bench_on_a_damaged_video_is_one_line_and_exit_2(
    clips: dict[str, Path],
    kind: str,
    start: int | str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``bench`` on frames the file cannot give: one line naming the file and the frame where decoding
    stops, exit code 2, no traceback, no plot (nor its folder). Before, a clip straddling the cut was
    refused as a short video ("has 31 frame(s)"), one past it as "beyond the end" of a video that states
    60 frames, and one through garbled bytes was timed on a repeated frame and renumbered ones."""
    monkeypatch.chdir(tmp_path)
    path = clips[kind]
    if start == "straddle":
        start = _edge(path) - 3
    argv = ["bench", "--model", "hrnet_tiny", "--weights", "none", "--window", "0,0,72,96", "--repeats", "1"]
    argv += ["--video", str(path), "--start", str(start), "--frames", "10", "--plot", "out/b.png"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in captured.err, lines
    assert lines[0].startswith(f"deltatune bench: error: video {path} ")
    what = "ends after frame" if kind.startswith("cut") else "is damaged at frame"
    assert what in lines[0] and lines[0].endswith(f"; frames {start}..{int(start) + 9} were asked for"), (
        lines[0]
    )
    assert not (tmp_path / "out").exists()
