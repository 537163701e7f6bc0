"""Video input on the real sample clips: decoding, image folders, crops, resizes and error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deltatune.data import (
    DEFAULT_WINDOWS,
    CropWindow,
    FrameStreams,
    load_clip,
    parse_window,
    read_frames,
    video_info,
)
from deltatune.errors import VideoError


def _one_line(exc: pytest.ExceptionInfo[BaseException], *needles: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg
    return msg


# --- decoding -------------------------------------------------------------------------------------


def test_vtest_decodes_fully(vtest_path: Path) -> None:
    info = video_info(vtest_path)
    assert (info.width, info.height, info.frames) == (768, 576, 795)
    assert info.fps == pytest.approx(10.0)
    n = 0
    for frame in read_frames(vtest_path):
        assert frame.shape == (576, 768, 3) and frame.dtype == np.uint8
        n += 1
    assert n == 795


def test_carphone_decodes(carphone_path: Path) -> None:
    info = video_info(carphone_path)
    assert (info.width, info.height, info.frames) == (176, 144, 120)
    assert info.fps == pytest.approx(30000 / 1001)
    frames = list(read_frames(carphone_path))
    assert len(frames) == 120
    assert all(f.shape == (144, 176, 3) and f.dtype == np.uint8 for f in frames)
    # Real content: frames differ (he talks), and the picture is not blank.
    assert np.abs(frames[0].astype(int) - frames[60].astype(int)).mean() > 1.0
    assert frames[0].std() > 20


def test_vtest_is_a_static_camera(vtest_head: list[np.ndarray]) -> None:
    # About 2 % of pixels change per frame (docs/design.md#speed-on-cpu). Check the clip behaves like
    # that (not garbage).
    a, b = (f.astype(np.int16) for f in vtest_head[:2])
    changed = (np.abs(a - b).max(axis=-1) > 25).mean()
    assert 0.0 < changed < 0.1


def test_start_step_count_select_frames(vtest_path: Path, vtest_head: list[np.ndarray]) -> None:
    got = list(read_frames(vtest_path, start=3, step=4, count=5))
    assert len(got) == 5
    for g, i in zip(got, [3, 7, 11, 15, 19], strict=True):
        np.testing.assert_array_equal(g, vtest_head[i])
    tail = list(read_frames(vtest_path, start=790, step=2))
    assert len(tail) == 3  # frames 790, 792, 794
    assert list(read_frames(vtest_path, count=0)) == []


def test_start_beyond_end(carphone_path: Path) -> None:
    with pytest.raises(VideoError) as exc:
        list(read_frames(carphone_path, start=500))
    _one_line(exc, str(carphone_path), "frame 500 is beyond the end", "120 frames")


@pytest.mark.parametrize("kwargs", [{"start": -1}, {"step": 0}, {"count": -2}])
def test_bad_range_arguments(carphone_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(VideoError) as exc:
        read_frames(carphone_path, **kwargs)
    _one_line(exc, str(carphone_path))


# --- image folders --------------------------------------------------------------------------------


def test_image_folder_round_trip(tmp_path: Path, vtest_head: list[np.ndarray]) -> None:
    frames = vtest_head[:6]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"frame_{i:04d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    info = video_info(tmp_path)
    assert (info.width, info.height, info.frames, info.fps) == (768, 576, 6, None)
    got = list(read_frames(tmp_path))
    assert len(got) == 6
    for g, f in zip(got, frames, strict=True):
        assert g.dtype == np.uint8
        np.testing.assert_array_equal(g, f)
    picked = list(read_frames(tmp_path, start=1, step=2))
    assert len(picked) == 3
    np.testing.assert_array_equal(picked[2], frames[5])


def test_image_folder_sorted_by_name_and_jpeg(tmp_path: Path, vtest_head: list[np.ndarray]) -> None:
    # Written out of order; JPEG is lossy so compare loosely.
    Image.fromarray(vtest_head[1]).save(tmp_path / "b.jpg", quality=95)
    Image.fromarray(vtest_head[0]).save(tmp_path / "a.jpg", quality=95)
    got = list(read_frames(tmp_path))
    err0 = np.abs(got[0].astype(int) - vtest_head[0].astype(int)).mean()
    err_swapped = np.abs(got[0].astype(int) - vtest_head[1].astype(int)).mean()
    assert err0 < 4 and err0 < err_swapped


def _encode(path: Path, frames: list[np.ndarray], rotation: int | None) -> None:
    """Write ``frames`` as H.264 in MP4, with a display rotation (degrees, counter-clockwise) if given."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


@pytest.mark.parametrize(("rotation", "turns"), [(-90, 3), (90, 1), (180, 2)])
def test_rotated_video_comes_upright(
    tmp_path: Path, vtest_head: list[np.ndarray], rotation: int, turns: int
) -> None:
    # A phone's portrait clip: landscape frames plus a display rotation. Players (and ffmpeg) turn it
    # upright; so must we, or every person in it lies on their side. The same frames are encoded without
    # the rotation, so the decoded pixels must be exactly the quarter turns of those.
    frames = [f[:256, :320] for f in vtest_head[:3]]
    _encode(tmp_path / "plain.mp4", frames, None)
    _encode(tmp_path / "rotated.mp4", frames, rotation)
    plain = list(read_frames(tmp_path / "plain.mp4"))
    rotated = list(read_frames(tmp_path / "rotated.mp4"))
    assert len(rotated) == 3
    for r, f in zip(rotated, plain, strict=True):
        np.testing.assert_array_equal(r, np.rot90(f, turns))
        assert r.flags["C_CONTIGUOUS"]
    info = video_info(tmp_path / "rotated.mp4")
    assert (info.width, info.height) == ((256, 320) if turns % 2 else (320, 256))
    if turns % 2:
        # A window that fits only the upright (portrait) frame is accepted, and crops upright pixels.
        win = CropWindow(0, 200, 192, 100)
        batch = next(iter(FrameStreams(tmp_path / "rotated.mp4", windows=[win])))
        want = torch.from_numpy(rotated[0][200:300, :192].copy()).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(batch[0], want)


def test_exif_orientation_is_applied(tmp_path: Path, vtest_head: list[np.ndarray]) -> None:
    # Orientation 6: the stored pixels are shown turned 90 degrees clockwise.
    stored = vtest_head[0][:200, :300]
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "a.png", exif=exif)
    raw = np.array(Image.open(tmp_path / "a.png").convert("RGB"))
    got = list(read_frames(tmp_path))
    np.testing.assert_array_equal(got[0], np.rot90(raw, -1))
    info = video_info(tmp_path)
    assert (info.width, info.height) == (200, 300)


def test_sixteen_bit_grey_images_are_scaled_not_clipped(tmp_path: Path, vtest_head: list[np.ndarray]) -> None:
    # 16-bit PNG frames (scientific cameras, render exports): Pillow's convert("RGB") would clip every
    # value above 255, leaving an almost white frame.
    grey8 = vtest_head[0][:120, :160].mean(axis=2).round().astype(np.uint8)
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "f0.png")
    assert Image.open(tmp_path / "f0.png").mode.startswith("I")
    got = next(read_frames(tmp_path))
    assert got.shape == (120, 160, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.repeat(grey8[..., None], 3, axis=2))
    floats = tmp_path / "floats"
    floats.mkdir()
    Image.fromarray(grey8.astype(np.float32) / 255).save(floats / "f0.tif")
    with pytest.raises(VideoError) as exc:
        next(read_frames(floats))
    _one_line(exc, "f0.tif", "float")


def test_image_folder_numbers_sort_by_value(tmp_path: Path, vtest_head: list[np.ndarray]) -> None:
    # Frames numbered without zero padding: 1, 2, ..., 10, 11 must not be read as 1, 10, 11, 2, ...
    for i in range(12):
        Image.fromarray(vtest_head[i][:64, :48]).save(tmp_path / f"frame{i + 1}.png")
    got = list(read_frames(tmp_path))
    for g, f in zip(got, vtest_head[:12], strict=True):
        np.testing.assert_array_equal(g, f[:64, :48])


def test_image_folder_errors(tmp_path: Path, vtest_head: list[np.ndarray]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError) as exc:
        read_frames(empty)
    _one_line(exc, str(empty), "no images")

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(vtest_head[0]).save(mixed / "0.png")
    Image.fromarray(vtest_head[0][:100, :100]).save(mixed / "1.png")
    with pytest.raises(VideoError) as exc:
        list(read_frames(mixed))
    _one_line(exc, str(mixed / "1.png"))

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "0.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(VideoError) as exc:
        list(read_frames(broken))
    _one_line(exc, str(broken / "0.png"))


# --- errors on files ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    for call in (lambda: read_frames(missing), lambda: video_info(missing), lambda: FrameStreams(missing)):
        with pytest.raises(VideoError) as exc:
            call()
        _one_line(exc, str(missing), "does not exist")


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "random.avi"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError) as exc:
        list(read_frames(bad))
    _one_line(exc, str(bad))
    with pytest.raises(VideoError) as exc:
        video_info(bad)
    _one_line(exc, str(bad))
    text = tmp_path / "notes.mp4"  # not a video at all: FFmpeg's reason, without its error number
    text.write_text("root:x:0:0:root:/root:/bin/bash\n" * 20)
    with pytest.raises(VideoError) as exc:
        video_info(text)
    assert str(exc.value) == f"video {text} cannot be opened (Invalid data found when processing input)"


def test_truncated_video_is_an_error_or_shorter(tmp_path: Path, vtest_path: Path) -> None:
    # The header survives, the tail is cut: decoding must either stop early or raise VideoError.
    cut = tmp_path / "cut.avi"
    cut.write_bytes(vtest_path.read_bytes()[:400_000])
    try:
        n = sum(1 for _ in read_frames(cut))
    except VideoError as exc:
        assert "\n" not in str(exc) and str(cut) in str(exc)
    else:
        assert 0 < n < 795


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_an_mp4_cut_before_its_index_says_it_was_cut(
    tmp_path: Path, vtest_head: list[np.ndarray], keep: float
) -> None:
    """An MP4 written without +faststart keeps its index ('moov' box) at the end; cut short (an
    interrupted download), FFmpeg says only "Invalid data found". The error now says the file was cut and
    how to mend it. The same file whole opens, and a file that is no MP4 gets no such hint."""
    whole = tmp_path / "whole.mp4"
    _encode(whole, vtest_head, None)
    data = whole.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat") > 0  # the index is written last
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VideoError) as exc:
        video_info(cut)
    _one_line(exc)
    assert f"video {cut} cannot be opened (" in str(exc.value)
    assert "it has no index ('moov' box) and its last box runs past the end of the file, so it was cut " \
        "short" in str(exc.value) and "+faststart" in str(exc.value)
    assert video_info(whole).width == vtest_head[0].shape[1]
    other = tmp_path / "other.mp4"
    other.write_bytes(b"\x00\x00\x00\x08free" + bytes(100))
    with pytest.raises(VideoError) as exc:
        video_info(other)
    assert "moov" not in str(exc.value)


# --- windows and streams --------------------------------------------------------------------------


def test_parse_window() -> None:
    assert parse_window("1, 2,30,40") == CropWindow(1, 2, 30, 40)
    assert str(parse_window("1,2,30,40")) == "1,2,30,40"
    for bad in ["1,2,3", "a,b,c,d", "1,2,0,4", "-1,0,5,5", "1,2,3,4,5"]:
        with pytest.raises(VideoError) as exc:
            parse_window(bad)
        _one_line(exc)


def test_window_outside_frame(vtest_path: Path) -> None:
    win = CropWindow(700, 0, 100, 100)
    with pytest.raises(VideoError) as exc:
        FrameStreams(vtest_path, windows=[win])
    _one_line(exc, "700,0,100,100", "768x576", str(vtest_path))


def test_default_windows_fit_and_are_3_to_4(vtest_path: Path, carphone_path: Path) -> None:
    for name, path in [("vtest", vtest_path), ("carphone", carphone_path)]:
        info = video_info(path)
        assert 1 <= len(DEFAULT_WINDOWS[name]) <= 4
        for w in DEFAULT_WINDOWS[name]:
            w.check(info.width, info.height)
            assert w.w * 4 == w.h * 3


def test_default_vtest_windows_see_people_move(vtest_path: Path) -> None:
    # Over the whole clip, every default window must see foreground (moving people) against the median
    # background in a good share of frames; a window on the lawn corner or the building would not.
    # Every 5th frame at quarter resolution (x/y divided by 4) keeps this fast.
    frames = np.stack([f[::4, ::4] for f in read_frames(vtest_path, step=5)]).astype(np.int16)
    background = np.median(frames, axis=0)
    fg = np.abs(frames - background).max(axis=-1) > 40
    for w in DEFAULT_WINDOWS["vtest"]:
        share = fg[:, w.y // 4 : (w.y + w.h) // 4, w.x // 4 : (w.x + w.w) // 4].mean(axis=(1, 2))
        assert (share > 0.005).mean() > 0.3, w
    corner = fg[:, 0:25, 0:25].mean(axis=(1, 2))  # building corner, top left: nobody walks there
    assert (corner > 0.005).mean() < 0.1


def test_streams_crop_without_resize(vtest_path: Path, vtest_head: list[np.ndarray]) -> None:
    wins = [CropWindow(0, 0, 48, 64), CropWindow(700, 500, 48, 64)]
    streams = FrameStreams(vtest_path, windows=wins, count=3)
    assert len(streams) == 3 and streams.batch_size == 2 and streams.frame_shape == (64, 48)
    batches = list(streams)
    assert len(batches) == 3
    for t, frame in zip(batches, vtest_head, strict=False):
        assert t.shape == (2, 3, 64, 48) and t.dtype == torch.float32
        for b, w in enumerate(wins):
            expected = frame[w.y : w.y + w.h, w.x : w.x + w.w].transpose(2, 0, 1) / 255.0
            np.testing.assert_allclose(t[b].numpy(), expected, atol=1e-6)


def test_whole_frame_is_one_stream(carphone_path: Path) -> None:
    clip = load_clip(carphone_path, count=4)
    assert clip.shape == (4, 1, 3, 144, 176)
    assert 0.0 <= float(clip.min()) and float(clip.max()) <= 1.0


def test_resize_matches_pillow(vtest_path: Path, vtest_head: list[np.ndarray]) -> None:
    # torch's antialiased bilinear is meant to match Pillow's BILINEAR resize: an independent reference.
    win = DEFAULT_WINDOWS["vtest"][1]
    streams = FrameStreams(vtest_path, windows=[win], size=(256, 192), count=1)
    got = next(iter(streams))[0].permute(1, 2, 0).numpy() * 255.0
    crop = Image.fromarray(np.ascontiguousarray(win.crop(vtest_head[0])))
    ref = np.asarray(crop.resize((192, 256), Image.Resampling.BILINEAR), dtype=np.float64)
    assert got.shape == (256, 192, 3)
    assert np.abs(got - ref).mean() < 1.0 and np.abs(got - ref).max() < 4.0


def test_resize_stretches_other_aspect(carphone_path: Path) -> None:
    # Aspect 176:144 to 64x64: stretched, not padded, so no constant border appears.
    clip = load_clip(carphone_path, size=(64, 64), count=2, step=10)
    assert clip.shape == (2, 1, 3, 64, 64)
    full = load_clip(carphone_path, count=1)
    assert clip[0].mean().item() == pytest.approx(full[0].mean().item(), abs=0.01)


def test_mixed_window_sizes_need_size(vtest_path: Path) -> None:
    wins = [CropWindow(0, 0, 30, 40), CropWindow(0, 0, 60, 80)]
    with pytest.raises(VideoError) as exc:
        FrameStreams(vtest_path, windows=wins)
    _one_line(exc, "size")
    streams = FrameStreams(vtest_path, windows=wins, size=(40, 30), count=2)
    assert streams.to_tensor().shape == (2, 2, 3, 40, 30)


def test_len_matches_iteration(vtest_path: Path) -> None:
    streams = FrameStreams(vtest_path, windows=DEFAULT_WINDOWS["vtest"], size=(64, 48), start=780, step=4)
    clip = streams.to_tensor()
    assert len(streams) == clip.shape[0] == 4  # 780, 784, 788, 792
    assert clip.shape[1:] == (3, 3, 64, 48)


def test_source_digest_follows_content_not_name(tmp_path: Path, vtest_head: list[np.ndarray]) -> None:
    from deltatune.data.video import source_digest

    folder = tmp_path / "clip"
    folder.mkdir()
    Image.fromarray(vtest_head[0]).save(folder / "a.png")
    (folder / "notes.txt").write_text("not an image")
    one = source_digest(folder)
    (folder / "notes.txt").write_text("edited")  # not a frame: same digest
    assert source_digest(folder) == one
    Image.fromarray(vtest_head[5]).save(folder / "a.png")  # same name, other frame
    assert source_digest(folder) != one
    video = tmp_path / "v.bin"
    video.write_bytes(b"abc")
    assert source_digest(video) == "ba7816bf8f01cfea"  # SHA-256 of b"abc"
    assert source_digest(str(video)) == source_digest(video)


def test_a_folder_laid_out_as_a_mot_sequence_is_named_so(tmp_path: Path) -> None:
    """A folder whose frames are in img1/ but that has no seqinfo.ini (so it is read as an image folder)
    said only that it "contains no images"; the line now points at img1/."""
    seq = tmp_path / "seq"
    (seq / "img1").mkdir(parents=True)
    with pytest.raises(VideoError, match=r"a MOT sequence keeps its frames in .*img1, which holds none"):
        read_frames(seq, count=1).__next__()
    Image.new("RGB", (32, 32)).save(seq / "img1" / "000001.jpg")
    with pytest.raises(VideoError, match=r"its img1/ holds the frames of a MOT sequence without a "
                       r"seqinfo.ini: pass .*seq/img1$"):
        read_frames(seq, count=1).__next__()


def test_a_matroska_clip_says_no_length_and_its_frames_are_counted(
    tmp_path: Path, vtest_head: list[np.ndarray]
) -> None:
    """Matroska does not store a frame count (``video_info`` gives None), and `search --spread` refused
    every .mkv; its packets are counted instead, one per frame."""
    import av

    from deltatune.cli.search import _spread
    from deltatune.data.video import count_frames
    from deltatune.search.study_workload import StudyWorkload

    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 192, 144, "yuv420p"
        for f in vtest_head[:12]:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:144, :192]), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert video_info(path).frames is None and count_frames(path) == 12
    segments = _spread(StudyWorkload("hrnet_tiny", weights=None, video=str(path), frames=4, streams=1), 3)
    assert [s.start for s in segments] == [4, 8]
