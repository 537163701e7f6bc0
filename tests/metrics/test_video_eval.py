"""Pose evaluation on real video with a real pretrained pose network (BlazePose on vtest crops)."""

from __future__ import annotations

import re

import pytest
import torch

from deltatune.data.labels import load_keypoint_csv
from deltatune.data.video import DEFAULT_WINDOWS
from deltatune.delta import convert
from deltatune.metrics import pck
from deltatune.metrics.video import evaluate_pose, predict_keypoints
from deltatune.workload import load_workload

JOINTS = [f"j{i}" for i in range(39)]


@pytest.fixture(scope="module")
def blazepose_run(vtest_path):
    wl = load_workload("blazepose", frames=8)
    windows = DEFAULT_WINDOWS["vtest"]
    dense = predict_keypoints(wl.model, wl.frames, input_size=wl.info.input_size, windows=windows)
    return wl, windows, dense


def test_dense_predictions_map_into_their_crop_windows(blazepose_run) -> None:
    _, windows, dense = blazepose_run
    assert dense.shape == (8, len(windows), 39, 2)
    for s, w in enumerate(windows):
        xs, ys = dense[:, s, :, 0], dense[:, s, :, 1]
        assert bool(((xs >= w.x) & (xs <= w.x + w.w)).all()) and bool(((ys >= w.y) & (ys <= w.y + w.h)).all())


def test_delta_fidelity_exact_at_zero_and_lossy_when_truncating(blazepose_run) -> None:
    wl, windows, dense = blazepose_run
    net = convert(wl.model, thresholds=0.0)
    same = predict_keypoints(net, wl.frames, input_size=wl.info.input_size, windows=windows)
    ev = evaluate_pose(same, reference=dense)
    assert ev.pck == 1.0 and ev.reference == "dense"
    net.set_thresholds(2.0)
    net.reset()
    coarse = predict_keypoints(net, wl.frames, input_size=wl.info.input_size, windows=windows)
    assert evaluate_pose(coarse, reference=dense).pck < 1.0
    want = {"frame", "stream", "joint", "distance", "threshold", "correct", "visible"}
    assert set(ev.table.columns) >= want
    assert ev.per_joint().iloc[-1]["pck"] == 1.0


def test_labels_from_csv_in_full_frame_coordinates(blazepose_run, tmp_path) -> None:
    _, windows, dense = blazepose_run
    lines = ["frame,stream,joint,x,y,visible"]
    for f in range(dense.shape[0]):
        for s in range(dense.shape[1]):
            for j in range(39):
                x, y = dense[f, s, j].tolist()
                # joint 0 of stream 0 is moved 1000 px away: wrong; joint 1 is marked invisible: not counted
                if s == 0 and j == 0:
                    x += 1000.0
                lines.append(f"{f},{s},j{j},{x},{y},{0 if j == 1 else 1}")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    labels = load_keypoint_csv(path, joint_names=JOINTS)
    ev = evaluate_pose(dense, reference=labels)
    counted = 8 * len(windows) * 38  # joint 1 invisible everywhere
    wrong = 8  # joint 0 of stream 0 on every frame
    assert ev.reference == "labels"
    assert ev.pck == pytest.approx((counted - wrong) / counted)
    assert int(ev.table["visible"].sum()) == counted
    assert not ev.table.query("stream == 0 and joint == 0")["correct"].any()


def test_dense_reference_counts_only_present_keypoints_when_asked(blazepose_run) -> None:
    """``predict_keypoints(with_peaks=True)`` gives the peaks that decide presence; ``evaluate_pose``
    then counts only those reference keypoints (here: BlazePose logits above 0, a mixed mask)."""
    from deltatune.metrics import present_joints

    wl, windows, _ = blazepose_run
    dense, peaks = predict_keypoints(wl.model, wl.frames, input_size=wl.info.input_size, windows=windows,
                                     with_peaks=True)
    assert peaks.shape == dense.shape[:3]
    present = present_joints(peaks, 0.0)
    assert 0.0 < present.mean() < 1.0
    net = convert(wl.model, thresholds=2.0)
    coarse = predict_keypoints(net, wl.frames, input_size=wl.info.input_size, windows=windows)
    ev = evaluate_pose(coarse, reference=dense, present=present)
    assert ev.to_dict()["n_keypoints"] == int(present.sum())
    assert ev.pck == pytest.approx(pck(coarse, dense, visible=present).value)


def test_an_output_without_heatmaps_is_a_one_line_error() -> None:
    """A model of one's own returning ``{"hm": ...}`` ended ``predict`` in a TypeError traceback; it is a
    ConfigError now (exit 2, one line), and still a TypeError for callers that test output types."""
    from deltatune.errors import ConfigError
    from deltatune.metrics import heatmaps_of

    t = torch.zeros(1, 17, 8, 6)
    assert heatmaps_of({"heatmaps": t}) is t and heatmaps_of((t, None)) is t
    for bad, said in (({"hm": t}, "dict (keys hm) has no heatmaps"), ([], "list has no heatmaps")):
        with pytest.raises(ConfigError, match=re.escape(said)) as info:
            heatmaps_of(bad)
        assert isinstance(info.value, TypeError)
