"""``deltatune predict``: a delta network over a video, its predictions written as CSV (real engine, real
weights, real decoded vtest frames)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deltatune.cli import main
from deltatune.data.labels import load_keypoint_csv
from deltatune.errors import DeltatuneError
from deltatune.metrics import predict_keypoints
from deltatune.metrics.classification import top1_classes
from deltatune.predict import predict_video
from deltatune.workload import load_workload

THRESHOLDS = Path(__file__).resolve().parents[1] / "studies" / "thresholds"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_at_threshold_zero_the_keypoints_are_the_dense_models(tmp_path: Path) -> None:
    """Exact at threshold 0: every keypoint of the CSV is the dense model's, in full-frame pixels, and the
    file reads back as --labels."""
    out = tmp_path / "kp.csv"
    res = predict_video("hrnet", out, frames=6)
    wl = load_workload("hrnet", frames=6)
    windows = [_window(w) for w in wl.windows]
    with torch.no_grad():
        kp, peaks = predict_keypoints(wl.model, wl.frames, input_size=wl.info.input_size, windows=windows,
                                      with_peaks=True)
    rows = _rows(out)
    assert res.frames == 6 and res.streams == 3 and res.rows == len(rows) == 6 * 3 * 17
    assert list(rows[0]) == ["frame", "stream", "joint", "x", "y", "visible", "score"]
    got = np.array([[float(r["x"]), float(r["y"])] for r in rows]).reshape(6, 3, 17, 2)
    np.testing.assert_allclose(got, kp.numpy(), atol=0.011)  # written to 2 decimals
    visible = np.array([int(r["visible"]) for r in rows]).reshape(6, 3, 17)
    np.testing.assert_array_equal(visible, (peaks > 0.2).numpy())
    labels = load_keypoint_csv(out)
    assert labels.coords.shape == (6, 3, 17, 2) and int(labels.visible.sum()) == int(visible.sum())


def _window(text: str) -> object:
    from deltatune.data.video import parse_window

    return parse_window(text)


def test_a_tuned_setting_skips_work_and_classifiers_write_top1(tmp_path: Path) -> None:
    res = predict_video("mobilenet_v2", tmp_path / "c.csv", frames=8, start=100,
                        thresholds_file=THRESHOLDS / "mobilenet_v2.json")
    rows = _rows(tmp_path / "c.csv")
    assert list(rows[0]) == ["frame", "stream", "class", "probability"]
    assert res.rows == len(rows) == 8 * 3 and res.mac_speedup > 1.0 and res.ms_per_frame > 0
    assert [int(r["frame"]) for r in rows[::3]] == list(range(100, 108))  # the video's frame numbers
    wl = load_workload("mobilenet_v2", frames=8, start=100)
    with torch.no_grad():
        dense = torch.stack([top1_classes(wl.model(x)) for x in wl.frames])
    agree = np.mean(np.array([int(r["class"]) for r in rows]).reshape(8, 3) == dense.numpy())
    assert agree >= 0.8  # the documented setting changes about 1 top-1 class in 100
    assert all(0 < float(r["probability"]) <= 1 for r in rows)
    # the MAC speed-up, totalled frame by frame, is what the network's own records of the clip give
    from deltatune.delta import convert

    net = convert(wl.model, wl.frames[0], thresholds=0.0)
    net.load_thresholds(THRESHOLDS / "mobilenet_v2.json")
    with torch.no_grad():
        for x in wl.frames:
            net(x)
    assert res.mac_speedup == pytest.approx(net.mac_speedup(), rel=1e-12)


def test_the_overlay_video_shows_each_present_keypoint(tmp_path: Path) -> None:
    """--overlay: the source's frames and size, with a dot drawn at every present keypoint."""
    from deltatune.data.video import read_frames

    res = predict_video("hrnet", tmp_path / "kp.csv", frames=5, start=100, overlay=tmp_path / "kp.mp4",
                        thresholds_file=THRESHOLDS / "hrnet.json")
    drawn = list(read_frames(tmp_path / "kp.mp4"))
    source = _vtest(100, 5)
    assert len(drawn) == res.frames == 5 and drawn[0].shape == source[0].shape
    rows = [r for r in _rows(tmp_path / "kp.csv") if r["visible"] == "1" and r["frame"] == "104"]
    assert rows
    for r in rows:  # the dot's centre differs from the source frame by far more than coding noise
        x, y = round(float(r["x"])), round(float(r["y"]))
        if 0 <= x < 768 and 0 <= y < 576:
            diff = np.abs(drawn[4][y, x].astype(int) - source[4][y, x].astype(int)).sum()
            assert diff > 60, (r, diff)
    assert oct((tmp_path / "kp.mp4").stat().st_mode & 0o777) == "0o644"


def _vtest(start: int, count: int) -> list[np.ndarray]:
    from deltatune.data.video import read_frames
    from deltatune.workload import resolve_video

    return list(read_frames(resolve_video("vtest")[0], start=start, count=count))


def test_a_run_that_stops_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "kp.csv"

    def stop(done: int, total: int | None) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_video("hrnet", out, frames=6, on_frame=stop, overlay=tmp_path / "kp.mp4")
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    with pytest.raises(DeltatuneError, match="thresholds file"):  # another model's setting
        predict_video("hrnet", out, frames=4, thresholds_file=THRESHOLDS / "mobilenet_v2.json")
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_summarises_and_prints_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--model", "hrnet", "--thresholds", str(THRESHOLDS / "hrnet.json"),
                 "--frames", "5", "--window", "96,96,240,320", "-o", "kp.csv", "--no-progress"]) == 0
    line = capsys.readouterr().out
    assert "frames 0..4 x 1 stream" in line and "85 rows of keypoints -> kp.csv" in line
    assert "ms a frame after the key frame, MAC" in line  # one stream: a frame is that stream's
    assert "note:" not in line
    # several streams: the time is of a frame of all of them together, and it says so
    assert main(["predict", "--model", "hrnet", "--thresholds", str(THRESHOLDS / "hrnet.json"),
                 "--frames", "3", "--window", "96,96,240,320", "--window", "0,0,240,320", "-o", "k3.csv",
                 "--no-progress"]) == 0
    assert "ms a frame after the key frame (all 2 streams), MAC" in capsys.readouterr().out
    # without a setting it runs at thresholds 0 and says how to get one
    assert main(["predict", "--model", "hrnet", "--frames", "3", "--window", "96,96,240,320", "-o", "k0.csv",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "note: no --thresholds: every threshold is 0" in out and "deltatune search --model hrnet" in out
    assert main(["predict", "--model", "hrnet", "--frames", "3", "--start", "790", "-o", "k2.csv",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["first_frame"] == 790 and d["frames"] == 3 and d["rows"] == 3 * 3 * 17
    # the dense key frame, with the first call's set-up, is timed apart from the delta frames' mean
    assert d["key_frame_ms"] > 0 and d["ms_per_frame"] > 0
    # one frame is only the key frame: no delta frame to time, and it says so instead of a speed
    assert main(["predict", "--model", "hrnet", "--frames", "1", "--window", "96,96,240,320", "-o", "k1.csv",
                 "--threshold", "0.05", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "only the key frame, run densely" in out and "MAC speedup" not in out
    # a classifier's one frame of one stream is one row, counted as one
    assert main(["predict", "--model", "mobilenet_v2", "--frames", "1", "--window", "96,96,240,240", "-o",
                 "c1.csv", "--no-progress"]) == 0
    assert "; 1 row of top-1 classes -> c1.csv" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-o", "kp.txt"], "-o kp.txt: unsupported file type '.txt'"),
        (["-o", "kp.csv", "--start", "900"], "--start 900: "),
        (["-o", "kp.csv", "--frames", "0"], "--frames 0: need at least 1"),
        (["-o", "kp.csv", "--start", "790", "--frames", "20"], "has 795 frames; frames 790..809 asked for"),
        (["-o", "kp.csv", "--threshold", "-1"], "--threshold must be a finite number >= 0"),
        (["-o", "kp.csv", "--video", "missing.mp4"], "missing.mp4"),
        (["-o", "kp.csv", "--threads", "0"], "--threads 0: need at least 1"),
        (["-o", "kp.csv", "--overlay", "kp.avi"], "--overlay kp.avi: unsupported file type '.avi'"),
        (["-o", "kp.csv", "--mot", "det.txt"], "--mot det.txt: writes a detector's boxes; hrnet is a pose"),
        (["-o", "kp.csv", "--mot", "det.csv"], "--mot det.csv: unsupported file type '.csv'"),
        (["-o", "b.csv", "--model", "fasterrcnn_mobilenet_v2"], "pass --weights with a detector from"),
        (["-o", "b.csv", "--model", "fasterrcnn_mobilenet_v2", "--weights", "d.pt", "--window", "0,0,96,96"],
         "--window: the detector reads whole frames"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
    needle: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--model", "hrnet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_students_detector_writes_boxes_from_its_delta_backbone(
    vtest_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A detector trained with `detect train` (tiny: 8 frames of a MOT cut of vtest, 96x96): at threshold
    0 the delta backbone's boxes are the dense detector's, in full-frame pixels; the overlay draws them."""
    from deltatune.data.video import read_frames
    from deltatune.train.detection_data import _resize, normalize
    from deltatune.train.detection_eval import load_detector
    from tests.mot_sequence import write_mot_sequence

    seq = write_mot_sequence(vtest_path, tmp_path / "vtest-cut", count=12)
    det = tmp_path / "det.pt"
    assert main(["detect", "train", "--video", str(seq), "--frames", "0:8", "--size", "96", "--epochs", "2",
                 "--batch-size", "4", "-o", str(det), "--json"]) == 0
    capsys.readouterr()
    res = predict_video("fasterrcnn_mobilenet_v2", tmp_path / "boxes.csv", weights=det, video=seq,
                        start=8, frames=4, overlay=tmp_path / "boxes.mp4", mot=tmp_path / "det.txt")
    rows = _rows(tmp_path / "boxes.csv")
    assert res.rows == len(rows) > 0 and list(rows[0]) == ["frame", "stream", "x1", "y1", "x2", "y2", "score",
                                                            "label"]
    model, cfg = load_detector(det)
    raw = list(read_frames(seq / "img1", start=8, count=4))
    h, w = raw[0].shape[:2]
    for i, frame in enumerate(raw):
        x = _resize(torch.from_numpy(frame).permute(2, 0, 1), tuple(cfg.size))[None]  # as it was trained
        with torch.no_grad():
            dense = model(normalize(x))[0]
        mine = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2", "score")] for r in rows
                         if int(r["frame"]) == 8 + i]).reshape(-1, 5)
        want = torch.cat([dense["boxes"] * torch.tensor([w / cfg.size[1], h / cfg.size[0]] * 2),
                          dense["scores"][:, None]], 1).numpy()
        assert mine.shape == want.shape
        np.testing.assert_allclose(mine, want, atol=0.06)  # written to 0.1 pixel
        # MOTChallenge det.txt: frame 1-based (the sequence's 000009.jpg is frame 9), x,y 1-based, w,h
        mot = np.array([[float(v) for v in line.split(",")] for line in
                        (tmp_path / "det.txt").read_text().splitlines() if line.startswith(f"{9 + i},")])
        assert mot.shape == (len(want), 10) and (mot[:, [1, 7, 8, 9]] == -1).all()
        xywh = np.c_[want[:, :2] + 1, want[:, 2:4] - want[:, :2], want[:, 4]]
        np.testing.assert_allclose(mot[:, 2:7], xywh, atol=0.06)
    assert len((tmp_path / "det.txt").read_text().splitlines()) == res.rows
    assert len(list(read_frames(tmp_path / "boxes.mp4"))) == 4
    # without a threshold the note points a detector's user to --threshold (search does not take detectors)
    assert main(["predict", "--model", "fasterrcnn_mobilenet_v2", "--weights", str(det), "--video", str(seq),
                 "--frames", "2", "-o", str(tmp_path / "p.csv"), "--no-progress"]) == 0
    note = capsys.readouterr().out.splitlines()[-1]
    assert note.endswith("; pass --threshold T (the seed study's delta backbone runs 0.05; `deltatune detect "
                         "eval --threshold T` scores one)") and "deltatune search" not in note
    # a sequence whose seqinfo.ini names another image folder is read from it, as `detect` reads it
    (seq / "img1").rename(seq / "frames")
    ini = seq / "seqinfo.ini"
    ini.write_text(ini.read_text().replace("imDir=img1", "imDir=frames"))
    again = predict_video("fasterrcnn_mobilenet_v2", tmp_path / "moved.csv", weights=det, video=seq,
                          start=8, frames=4)
    assert again.rows == res.rows and _rows(tmp_path / "moved.csv") == rows


def test_a_video_that_ends_early_is_said_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """vtest cut short: its container still announces 795 frames, the decoder stops after a few. The
    predictions cover what decoded, and the summary says the file ended early."""
    from deltatune.data.assets import asset_path

    monkeypatch.chdir(tmp_path)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(asset_path("vtest").read_bytes()[:150_000])
    assert main(["predict", "--model", "mobilenet_v2", "--video", str(cut), "--window", "0,0,224,224", "-o",
                 "c.csv", "--no-progress", "--threshold", "0.05"]) == 0
    out = capsys.readouterr().out
    n = len((tmp_path / "c.csv").read_text().splitlines()) - 1
    assert 0 < n < 795 and f"note: the video ended after {n} of the 795 frames its container announces" in out
    # --json: the object says it too (it printed no note at all)
    assert main(["predict", "--model", "mobilenet_v2", "--video", str(cut), "--window", "0,0,224,224", "-o",
                 "j.csv", "--no-progress", "--threshold", "0.05", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["frames"] == n and said["notes"] == [
        f"the video ended after {n} of the 795 frames its container announces (a truncated or damaged "
        "file?); the predictions cover the frames it had"]
    assert main(["predict", "--model", "mobilenet_v2", "--video", str(cut), "--window", "0,0,224,224", "-o",
                 "d.csv", "--no-progress", "--threshold", "0.05", "--frames", "3"]) == 0
    assert "ended after" not in capsys.readouterr().out
    # --frames asked for more than it had: refused, naming where the file ends, and nothing is written
    assert main(["predict", "--model", "mobilenet_v2", "--video", str(cut), "--window", "0,0,224,224", "-o",
                 "e.csv", "--no-progress", "--threshold", "0.05", "--frames", "700"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"deltatune predict: error: video {cut} ends after frame {n - 1}, though its container "
                   "states 795 frames (truncated or damaged); frames 0..699 were asked for"), err
    assert not (tmp_path / "e.csv").exists()


def test_a_matroska_file_that_ends_early_is_said_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Matroska says no frame count, so a truncated .mkv was read in part without a word; its duration
    still implies about how many frames it had."""
    import av

    from deltatune.data import read_frames
    from deltatune.data.assets import asset_path

    monkeypatch.chdir(tmp_path)
    whole = tmp_path / "whole.mkv"
    with av.open(str(whole), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 224, 224, "yuv420p"
        for f in read_frames(asset_path("vtest"), count=20):
            for packet in stream.encode(av.VideoFrame.from_ndarray(f[:224, :224].copy(), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.5)])
    args = ["predict", "--model", "mobilenet_v2", "--no-progress", "--threshold", "0.05", "-o"]
    assert main([*args, "w.csv", "--video", str(whole)]) == 0
    assert "ended after" not in capsys.readouterr().out  # the whole file: nothing to say
    assert main([*args, "c.csv", "--video", str(cut)]) == 0
    n = len((tmp_path / "c.csv").read_text().splitlines()) - 1
    out = capsys.readouterr().out
    assert 0 < n < 18 and f"note: the video ended after {n} frames, where its container's duration implies " \
        "about 20" in out, out


def test_a_keypoint_whose_heatmap_peak_is_not_positive_is_not_visible(tmp_path: Path) -> None:
    """BlazePose has no presence threshold: every keypoint was written visible, 988 of 1560 of them at the
    crop's corner with a negative score (a peak <= 0 has no position) and drawn there."""
    out = tmp_path / "bp.csv"
    predict_video("blazepose", out, frames=3)
    rows = _rows(out)
    assert rows and all(r["visible"] == str(int(float(r["score"]) > 0)) for r in rows)
