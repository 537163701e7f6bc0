"""PCK / PCKh on tiny hand-computed fixtures; every distance and threshold is written out."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from deltatune.errors import DeltatuneError
from deltatune.metrics import (
    accuracy_loss_points,
    box_sizes,
    pck,
    pckh,
    pose_frame_table,
    summarize,
)

# Two persons, three joints.
# Person 0: ref (0,0), (10,0), (10,20): tight box w=10, h=20 -> size 20 -> t = 0.2*20 = 4
#   offsets (3,0), (0,4), (3,4): distances 3, 4, 5 -> correct, wrong (4 < 4 is false), wrong
# Person 1: ref (100,100), (130,100), (100,140), joint 2 invisible
#   tight box over visible joints only: w=30, h=0 -> size 30 -> t = 0.2*30 = 6
#   offsets (6,8), (0,5), (50,50): distances 10, 5, 70.7 -> wrong, correct, not counted
REF = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 20.0]], [[100.0, 100.0], [130.0, 100.0], [100.0, 140.0]]])
OFFSETS = np.array([[[3.0, 0.0], [0.0, 4.0], [3.0, 4.0]], [[6.0, 8.0], [0.0, 5.0], [50.0, 50.0]]])
PRED = REF + OFFSETS
VISIBLE = np.array([[True, True, True], [True, True, False]])


def test_pck_hand_computed() -> None:
    r = pck(PRED, REF, visible=VISIBLE)
    assert r.thresholds.tolist() == [4.0, 6.0]
    assert (r.n_keypoints, r.n_correct, r.n_skipped) == (5, 2, 0)
    assert r.value == pytest.approx(2 / 5)
    # joint 0: p0 correct, p1 wrong -> 1/2; joint 1: p0 wrong, p1 correct -> 1/2; joint 2: p0 wrong -> 0/1
    np.testing.assert_allclose(r.per_joint, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(r.per_frame, [1 / 3, 1 / 2])
    assert r.alpha == 0.2


def test_pck_accepts_tensors_and_all_visible_by_default() -> None:
    # all visible: person 1's tight box becomes w=30, h=40 -> size 40 -> t = 8; distances 10, 5, 70.7
    # -> wrong, correct, wrong. Total: person 0 1/3, person 1 1/3 -> 2/6
    r = pck(torch.tensor(PRED), torch.tensor(REF))
    assert r.thresholds.tolist() == [4.0, 8.0]
    assert (r.n_keypoints, r.n_correct) == (6, 2)
    np.testing.assert_allclose(r.per_frame, [1 / 3, 1 / 3])


def test_distance_exactly_at_threshold_is_wrong_and_just_below_is_right() -> None:
    ref = np.array([[[0.0, 0.0], [10.0, 20.0]]])  # size 20 -> t = 0.2 * 20 = 4.0 exactly
    at = np.array([[[4.0, 0.0], [10.0, 24.0]]])  # distances 4, 4
    below = np.array([[[np.nextafter(4.0, 0.0), 0.0], [10.0, 23.999]]])  # 4 - 1 ulp, ~3.999
    assert pck(at, ref).value == 0.0
    assert pck(below, ref).value == 1.0


def test_given_box_size_overrides_the_tight_box() -> None:
    # box sizes 50 and 10 -> t = 10 and 2
    # person 0: distances 3, 4, 5 all < 10 -> 3 correct; person 1: distances 10, 5 both >= 2 -> 0 correct
    r = pck(PRED, REF, visible=VISIBLE, box_size=np.array([50.0, 10.0]))
    assert r.thresholds.tolist() == [10.0, 2.0]
    assert (r.n_keypoints, r.n_correct) == (5, 3)
    assert r.value == pytest.approx(3 / 5)


def test_alpha_scales_the_threshold() -> None:
    # alpha 0.5: t = 0.5*20 = 10 and 0.5*30 = 15 -> person 0: 3, 4, 5 < 10; person 1: 10, 5 < 15 -> 5/5
    assert pck(PRED, REF, visible=VISIBLE, alpha=0.5).value == 1.0


def test_invisible_joints_do_not_count_even_when_far_off() -> None:
    far = PRED.copy()
    far[1, 2] = [1e6, 1e6]  # invisible joint moved far away: nothing changes
    assert pck(far, REF, visible=VISIBLE).to_dict() == pck(PRED, REF, visible=VISIBLE).to_dict()


def test_person_with_fewer_than_two_visible_keypoints_is_skipped_without_a_box() -> None:
    ref = np.array([[[0.0, 0.0], [10.0, 0.0]], [[5.0, 5.0], [50.0, 50.0]], [[1.0, 1.0], [2.0, 2.0]]])
    pred = ref + 1.0  # every distance sqrt(2) ~ 1.414
    visible = np.array([[True, True], [True, False], [False, False]])
    r = pck(pred, ref, visible=visible)
    # person 0: size 10 -> t = 2 > 1.414 -> 2/2; person 1: one visible keypoint -> size 0 -> skipped;
    # person 2: nothing visible -> not counted and not "skipped"
    assert (r.n_keypoints, r.n_correct, r.n_skipped) == (2, 2, 1)
    assert r.per_frame[0] == 1.0 and math.isnan(r.per_frame[1]) and math.isnan(r.per_frame[2])
    # with a box, person 1 counts: t = 0.2 * 10 = 2 > 1.414 -> correct
    r = pck(pred, ref, visible=visible, box_size=[10.0, 10.0, 10.0])
    assert (r.n_keypoints, r.n_correct, r.n_skipped) == (3, 3, 0)


def test_non_finite_reference_is_not_counted_and_non_finite_prediction_is_wrong() -> None:
    ref = np.array([[[0.0, 0.0], [10.0, 0.0], [np.nan, np.nan]]])
    pred = np.array([[[0.0, 0.0], [np.nan, 0.0], [0.0, 0.0]]])
    r = pck(pred, ref)  # t = 0.2 * 10 = 2; joint 0 d=0 correct; joint 1 d=NaN wrong; joint 2 not counted
    assert (r.n_keypoints, r.n_correct) == (2, 1)
    assert math.isnan(r.per_joint[2])


def test_leading_frame_stream_shape_is_kept() -> None:
    ref = np.broadcast_to(REF, (4, 2, 3, 2))  # [F=4, S=2, K=3, 2]: the fixture repeated over 4 frames
    pred = np.broadcast_to(PRED, (4, 2, 3, 2))
    r = pck(pred, ref, visible=np.broadcast_to(VISIBLE, (4, 2, 3)))
    assert r.per_frame.shape == (4, 2)
    np.testing.assert_allclose(r.per_frame, np.tile([1 / 3, 1 / 2], (4, 1)))
    assert (r.n_keypoints, r.n_correct) == (20, 8)  # 4 * 5 and 4 * 2


def test_nothing_counted_gives_nan_and_to_dict_is_strict_json() -> None:
    r = pck(PRED, REF, visible=np.zeros((2, 3), bool))
    assert math.isnan(r.value) and r.n_keypoints == 0
    d = r.to_dict()
    assert d["value"] is None and d["per_joint"] == [None, None, None]
    json.dumps(d, allow_nan=False)


def test_result_is_frozen() -> None:
    r = pck(PRED, REF)
    with pytest.raises(AttributeError):
        r.value = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.per_joint[0] = 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pred": PRED[:, :2], "ref": REF}, "pred"),
        ({"pred": PRED[0], "ref": REF[0]}, "ref"),
        ({"pred": PRED[:, :0], "ref": REF[:, :0]}, "at least one joint"),
        ({"visible": VISIBLE[:1]}, "visible"),
        ({"visible": VISIBLE.astype(float)}, "visible"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"box_size": [1.0]}, "box_size"),
        ({"box_size": [1.0, -1.0]}, "box_size"),
    ],
)
def test_pck_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"pred": PRED, "ref": REF, **kwargs}
    with pytest.raises(DeltatuneError, match=match):
        pck(args.pop("pred"), args.pop("ref"), **args)


# --------------------------------------------------------------------------------------------- PCKh


def test_pckh_hand_computed() -> None:
    ref = np.zeros((2, 3, 2))
    pred = np.array([[[2.9, 0.0], [0.0, 3.0], [9.0, 9.0]], [[14.0, 0.0], [0.0, 20.0], [0.0, 0.0]]])
    visible = np.array([[True, True, False], [True, True, True]])
    heads = np.array([[0.0, 0.0, 6.0, 8.0], [10.0, 10.0, 40.0, 50.0]])
    r = pckh(pred, ref, visible=visible, head_boxes=heads)
    # person 0: diagonal hypot(6, 8) = 10 -> head 0.6*10 = 6 -> t = 0.5*6 = 3
    #   distances 2.9 (correct), 3.0 (not < 3), joint 2 invisible
    # person 1: diagonal hypot(30, 40) = 50 -> head 30 -> t = 15; distances 14 (correct), 20, 0 (correct)
    assert r.thresholds.tolist() == [3.0, 15.0]
    assert (r.n_keypoints, r.n_correct) == (5, 3)
    np.testing.assert_allclose(r.per_joint, [1.0, 0.0, 1.0])
    assert r.alpha == 0.5


def test_pckh_skips_a_person_without_a_usable_head_box() -> None:
    ref = np.zeros((2, 1, 2))
    heads = np.array([[0.0, 0.0, 6.0, 8.0], [np.nan, np.nan, np.nan, np.nan]])
    r = pckh(ref, ref, head_boxes=heads)  # person 1 has a NaN head box -> skipped
    assert (r.n_keypoints, r.n_correct, r.n_skipped) == (1, 1, 1)
    with pytest.raises(DeltatuneError, match="head_boxes"):
        pckh(ref, ref, head_boxes=heads[:, :2])


# --------------------------------------------------------------------------------------------- helpers


def test_box_sizes_is_max_of_width_and_height() -> None:
    boxes = np.array([[0.0, 0.0, 30.0, 80.0], [5.0, 5.0, 15.0, 9.0]])  # (30, 80) -> 80; (10, 4) -> 10
    assert box_sizes(boxes).tolist() == [80.0, 10.0]
    with pytest.raises(DeltatuneError, match="boxes"):
        box_sizes(np.zeros((2, 3)))


def test_accuracy_loss_points() -> None:
    assert accuracy_loss_points(0.5, 0.25) == 25.0  # 100 * (0.5 - 0.25)
    assert accuracy_loss_points(0.25, 0.5) == -25.0  # candidate better: negative loss
    assert accuracy_loss_points(0.9, 0.885) == pytest.approx(1.5)
    for bad in (85.0, -0.1, float("nan")):
        with pytest.raises(DeltatuneError, match="pck_candidate"):
            accuracy_loss_points(0.9, bad)


# --------------------------------------------------------------------------------------------- tables


def test_pose_frame_table_rows_and_summary_match_pck() -> None:
    df = pose_frame_table(PRED, REF, visible=VISIBLE)
    assert list(df.columns) == ["frame", "stream", "joint", "distance", "threshold", "correct", "visible"]
    assert df["frame"].tolist() == [0, 0, 0, 1, 1, 1] and df["stream"].tolist() == [0] * 6
    assert df["joint"].tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_allclose(df["distance"], [3, 4, 5, 10, 5, math.hypot(50, 50)])
    assert df["threshold"].tolist() == [4.0, 4.0, 4.0, 6.0, 6.0, 6.0]
    assert df["correct"].tolist() == [True, False, False, False, True, False]
    assert df["visible"].tolist() == [True, True, True, True, True, False]

    by_joint = summarize(df)
    assert by_joint["joint"].tolist() == [0, 1, 2, "all"]
    assert by_joint["n_keypoints"].tolist() == [2, 2, 1, 5]
    assert by_joint["n_correct"].tolist() == [1, 1, 0, 2]
    np.testing.assert_allclose(by_joint["pck"], [0.5, 0.5, 0.0, 0.4])  # overall = pck(...).value = 2/5

    by_frame = summarize(df, by="frame")
    np.testing.assert_allclose(by_frame["pck"], [1 / 3, 1 / 2, 2 / 5])


def test_pose_frame_table_frame_stream_grid_and_relabelling() -> None:
    ref = np.stack([REF, REF])  # [F=2, S=2, K=3, 2]
    df = pose_frame_table(ref + OFFSETS, ref, visible=np.stack([VISIBLE, VISIBLE]))
    assert df["frame"].tolist() == [0] * 6 + [1] * 6
    assert df["stream"].tolist() == [0, 0, 0, 1, 1, 1] * 2
    by_stream = summarize(df, by=["stream"])
    np.testing.assert_allclose(by_stream["pck"], [1 / 3, 1 / 2, 2 / 5])  # stream 0: 2/6, 1: 2/4, all 4/10

    df = pose_frame_table(PRED, REF, frame_index=np.array([10, 11]), stream_index=np.array([3, 3]))
    assert df["frame"].tolist() == [10] * 3 + [11] * 3 and set(df["stream"]) == {3}


def test_summary_counts_nothing_for_skipped_persons() -> None:
    ref = np.array([[[0.0, 0.0], [10.0, 0.0]], [[5.0, 5.0], [50.0, 50.0]]])
    visible = np.array([[True, True], [True, False]])  # person 1 skipped: threshold 0
    df = pose_frame_table(ref, ref, visible=visible)
    assert df["threshold"].tolist() == [2.0, 2.0, 0.0, 0.0]
    out = summarize(df)
    assert out["n_keypoints"].tolist() == [1, 1, 2] and out["pck"].tolist() == [1.0, 1.0, 1.0]


def test_summarize_rejects_bad_tables() -> None:
    with pytest.raises(DeltatuneError, match="lacks columns"):
        summarize(pd.DataFrame({"joint": [0]}))
    with pytest.raises(DeltatuneError, match="by"):
        summarize(pose_frame_table(PRED, REF), by="distance")
    with pytest.raises(DeltatuneError, match="frame_index"):
        pose_frame_table(PRED, REF, frame_index=np.array([1, 2, 3]))
