"""Label loaders on small files written into tmp_path, incl. every malformed case."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deltatune.data.labels import (
    COCO_KEYPOINT_NAMES,
    MPII_JOINT_NAMES,
    KeypointLabels,
    load_coco_keypoints,
    load_keypoint_csv,
)
from deltatune.errors import LabelError


def _kps(*points: tuple[float, float, int], k: int = 17) -> list[float]:
    """Flat COCO keypoint list: the given (x, y, v) first, the rest unlabelled (0, 0, 0)."""
    flat: list[float] = []
    for x, y, v in points:
        flat += [x, y, v]
    return flat + [0, 0, 0] * (k - len(points))


def _write_json(tmp_path: Path, doc: Any, name: str = "clip.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _coco_doc() -> dict[str, Any]:
    return {
        "images": [{"id": 30, "file_name": "c.jpg"}, {"id": 10, "file_name": "a.jpg"}, {"id": 20}],
        "annotations": [
            {"image_id": 20, "keypoints": _kps((1, 2, 2), (3, 4, 1)), "bbox": [0, 0, 10, 20]},
            {"image_id": 10, "keypoints": _kps((5, 6, 2))},
            {"image_id": 20, "keypoints": _kps((7, 8, 2)), "bbox": [5, 5, 1, 2]},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }


# --------------------------------------------------------------------------------------------- COCO


def test_coco_frames_follow_sorted_image_ids_and_streams_follow_file_order(tmp_path: Path) -> None:
    lab = load_coco_keypoints(_write_json(tmp_path, _coco_doc()))
    # ids sorted 10, 20, 30 -> frames 0, 1, 2; image 20 has two annotations -> streams 0 and 1
    assert lab.coords.shape == (3, 2, 17, 2)
    assert lab.joint_names == COCO_KEYPOINT_NAMES
    assert lab.coords[0, 0, 0].tolist() == [5.0, 6.0]  # image 10, first annotation
    assert lab.coords[1, 0, :2].tolist() == [[1.0, 2.0], [3.0, 4.0]]  # image 20, first annotation
    assert lab.coords[1, 1, 0].tolist() == [7.0, 8.0]  # image 20, second annotation
    # v=1 (labelled, occluded) counts as visible; v=0 is not visible and its coords become NaN
    assert lab.visible[1, 0, :3].tolist() == [True, True, False]
    assert np.isnan(lab.coords[1, 0, 2]).all()
    assert int(lab.visible.sum()) == 4  # 1 + 2 + 1 labelled keypoints
    assert not lab.visible[2].any() and not lab.visible[0, 1].any()  # image 30 empty; frame 0 has 1 person
    # bbox [x, y, w, h] -> (x1, y1, x2, y2); absent boxes are NaN
    assert lab.boxes is not None
    assert lab.boxes[1, 0].tolist() == [0.0, 0.0, 10.0, 20.0]
    assert lab.boxes[1, 1].tolist() == [5.0, 5.0, 6.0, 7.0]
    assert np.isnan(lab.boxes[0, 0]).all()


def test_coco_frame_index_and_track_id(tmp_path: Path) -> None:
    doc = {
        "images": [{"id": 1, "frame_index": 3}, {"id": 2, "frame_index": 0}],
        "annotations": [
            {"image_id": 1, "track_id": 7, "keypoints": _kps((1, 1, 2))},
            {"image_id": 1, "track_id": 3, "keypoints": _kps((2, 2, 2))},
            {"image_id": 2, "track_id": 7, "keypoints": _kps((3, 3, 2))},
        ],
    }
    lab = load_coco_keypoints(_write_json(tmp_path, doc))
    # frames: max(frame_index) + 1 = 4; streams: sorted tracks 3 -> 0, 7 -> 1
    assert (lab.n_frames, lab.n_streams, lab.n_joints) == (4, 2, 17)
    assert lab.coords[3, 1, 0].tolist() == [1.0, 1.0]  # image 1 = frame 3, track 7 = stream 1
    assert lab.coords[3, 0, 0].tolist() == [2.0, 2.0]  # track 3 = stream 0
    assert lab.coords[0, 1, 0].tolist() == [3.0, 3.0]  # image 2 = frame 0, track 7
    assert not lab.visible[1].any() and not lab.visible[2].any()  # frames without an image
    assert lab.boxes is None


def test_coco_joint_names_from_category(tmp_path: Path) -> None:
    doc = {
        "images": [{"id": 1}],
        "annotations": [{"image_id": 1, "keypoints": [1, 2, 2, 3, 4, 0]}],
        "categories": [{"id": 1, "keypoints": ["head", "tail"]}],
    }
    lab = load_coco_keypoints(_write_json(tmp_path, doc))
    assert lab.joint_names == ("head", "tail") and lab.coords.shape == (1, 1, 2, 2)
    assert lab.visible[0, 0].tolist() == [True, False]


def _bad(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    for dotted, value in changes.items():
        target = out
        parts = dotted.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"annotations": _DELETE}, "'annotations'"),
        ({"images": {"id": 1}}, "'images'"),
        ({"annotations__0__keypoints": _kps(k=16)}, "annotation 0: expected 51 keypoint values .* got 48"),
        ({"annotations__1__keypoints": "x"}, "annotation 1: expected 51"),
        ({"annotations__0__keypoints__2": 3}, "visibility flags"),
        ({"annotations__0__keypoints__0": "a"}, "must all be numbers"),
        ({"annotations__0__image_id": 99}, "unknown image_id 99"),
        ({"annotations__0__bbox": [0, 0, -1, 2]}, "bbox"),
        ({"images__0__id": "a"}, "image 0 has no integer 'id'"),
        ({"images__0__id": 10}, "duplicate image ids"),
        ({"images__0__frame_index": 0}, "some images have 'frame_index'"),
        ({"categories__0__keypoints": []}, "non-empty list of names"),
    ],
)
def test_coco_malformed(tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    path = _write_json(tmp_path, _bad(_coco_doc(), **changes))
    with pytest.raises(LabelError, match=match) as info:
        load_coco_keypoints(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_coco_negative_or_duplicate_frame_index_and_duplicate_track(tmp_path: Path) -> None:
    images = [{"id": 1, "frame_index": -1}, {"id": 2, "frame_index": 0}]
    with pytest.raises(LabelError, match="frame_index -1"):
        load_coco_keypoints(_write_json(tmp_path, {"images": images, "annotations": []}))
    images = [{"id": 1, "frame_index": 0}, {"id": 2, "frame_index": 0}]
    with pytest.raises(LabelError, match="share one frame_index"):
        load_coco_keypoints(_write_json(tmp_path, {"images": images, "annotations": []}))
    anns = [{"image_id": 1, "track_id": 4, "keypoints": _kps()}] * 2
    with pytest.raises(LabelError, match="track_id 4 appears twice"):
        load_coco_keypoints(_write_json(tmp_path, {"images": [{"id": 1}], "annotations": anns}))


def test_coco_not_json_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')
    with pytest.raises(LabelError, match="broken.json: not valid JSON"):
        load_coco_keypoints(path)
    with pytest.raises(LabelError, match="not found"):
        load_coco_keypoints(tmp_path / "nope.json")
    with pytest.raises(LabelError, match="JSON object"):
        load_coco_keypoints(_write_json(tmp_path, [1, 2]))


# --------------------------------------------------------------------------------------------- CSV


def _write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clip.csv"
    path.write_text(text)
    return path


HEADER = "frame,stream,joint,x,y,visible\n"


def test_csv_names_indices_and_missing_rows(tmp_path: Path) -> None:
    text = HEADER + "0,0,nose,1.5,2,1\n0,0,5,3,4,true\n2,1,right_ankle,7,8,2\n2,1,0,,,0\n"
    lab = load_keypoint_csv(_write_csv(tmp_path, text))
    # frames max 2 + 1 = 3, streams max 1 + 1 = 2, K = 17 COCO joints
    assert lab.coords.shape == (3, 2, 17, 2) and lab.boxes is None
    assert lab.coords[0, 0, 0].tolist() == [1.5, 2.0]
    assert lab.coords[0, 0, 5].tolist() == [3.0, 4.0]
    assert lab.coords[2, 1, 16].tolist() == [7.0, 8.0]  # right_ankle = index 16
    assert lab.visible[2, 1, 16] and not lab.visible[2, 1, 0]  # "0" -> invisible; empty coords allowed
    assert np.isnan(lab.coords[2, 1, 0]).all()
    assert int(lab.visible.sum()) == 3
    assert not lab.visible[1].any()  # frame 1 has no rows


def test_csv_with_mpii_names_and_extra_columns(tmp_path: Path) -> None:
    text = "frame, stream, joint, x, y, visible, note\n0, 0, head_top, 1, 2, 1, hi\n0, 0, 15, 3, 4, 1, x\n"
    lab = load_keypoint_csv(_write_csv(tmp_path, text), joint_names=MPII_JOINT_NAMES)
    assert lab.coords.shape == (1, 1, 16, 2)
    assert lab.coords[0, 0, 9].tolist() == [1.0, 2.0]  # head_top = index 9
    assert lab.coords[0, 0, 15].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("frame,joint,x,y,visible\n0,0,1,1,1\n", r"missing CSV columns \['stream'\]"),
        (HEADER, "no rows"),
        ("", "empty"),
        (HEADER + "-1,0,0,1,1,1\n", "line 2: frame -1 is negative"),
        (HEADER + "0,0,0,1,1,1\n0,-2,0,1,1,1\n", "line 3: stream -2 is negative"),
        (HEADER + "0.5,0,0,1,1,1\n", "line 2: frame '0.5' is not an integer"),
        (HEADER + "a,0,0,1,1,1\n", "frame 'a' is not an integer"),
        (HEADER + "0,0,elbow,1,1,1\n", "unknown joint 'elbow'"),
        (HEADER + "0,0,17,1,1,1\n", "joint 17 is out of range for 17 joints"),
        # another skeleton's labels (BlazePose numbers 39 points): the file's range and the model's order
        (HEADER + "0,0,0,1,1,1\n0,0,20,1,1,1\n0,0,38,1,1,1\n",
         r"line 3: joint 20 is out of range for 17 joints \(the file numbers joints up to 38\): labels must "
         r"number the model's own joints, 0-16 in its order \(nose, left_eye, right_eye, ...\)"),
        (HEADER + "0,0,0,1,1,maybe\n", "visible 'maybe'"),
        (HEADER + "0,0,0,,1,1\n", "x '' is not a finite number .required for a visible keypoint"),
        (HEADER + "0,0,0,1,abc,0\n", "y 'abc' is not a finite number"),
        (HEADER + "0,0,0,1,inf,1\n", "y 'inf'"),
        (HEADER + "0,0,0,1,1,1\n0,0,nose,2,2,1\n", "line 3: frame 0, stream 0, joint 0 appears twice"),
        (HEADER + '0,0,0,1,1,1\n"0,0\n', "cannot parse CSV"),
    ],
)
def test_csv_malformed(tmp_path: Path, body: str, match: str) -> None:
    path = _write_csv(tmp_path, body)
    with pytest.raises(LabelError, match=match) as info:
        load_keypoint_csv(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_a_models_own_joints_name_its_labels(tmp_path: Path) -> None:
    """``deltatune predict`` numbers each model's own joints, and labels were read as COCO's 17 whatever
    the model: BlazePose's (39) were out of range, hrnet_w32_mpii's (16) read as 17. A model's joints
    come from its card; a number past them is refused naming the model and its real range."""
    from deltatune.data.labels import model_joint_names
    from deltatune_models import model_info
    from deltatune_models.blazepose import LANDMARK_NAMES

    assert model_joint_names(model_info("blazepose")) == LANDMARK_NAMES and len(LANDMARK_NAMES) == 39
    assert model_joint_names(model_info("hrnet_w32_mpii")) == MPII_JOINT_NAMES
    assert model_joint_names(model_info("pose_resnet_tiny")) == COCO_KEYPOINT_NAMES
    path = _write_csv(tmp_path, HEADER + "0,0,0,1,1,1\n0,0,38,1,1,1\n0,0,right_heel,1,1,0\n")
    lab = load_keypoint_csv(path, joint_names=model_joint_names(model_info("blazepose")), model="blazepose")
    assert lab.coords.shape == (1, 1, 39, 2) and lab.visible[0, 0].tolist().count(True) == 2
    with pytest.raises(LabelError) as refused:
        load_keypoint_csv(path, joint_names=MPII_JOINT_NAMES, model="hrnet_w32_mpii")
    assert str(refused.value) == (
        f"{path}: line 3: joint 38 is out of range for hrnet_w32_mpii's 16 joints (the file numbers joints "
        "up to 38): labels must number the model's own joints, 0-15 in its order (r_ankle, r_knee, r_hip, "
        "...)"
    )
    doc = {"images": [{"id": 1}], "annotations": [{"image_id": 1, "keypoints": _kps((5, 6, 2), k=16)}]}
    lab = load_coco_keypoints(_write_json(tmp_path, doc), joint_names=MPII_JOINT_NAMES)  # no category
    assert lab.joint_names == MPII_JOINT_NAMES and lab.coords[0, 0, 0].tolist() == [5.0, 6.0]


def test_a_frame_or_stream_past_what_labels_may_hold_is_refused_before_any_array(tmp_path: Path) -> None:
    """Labels are dense arrays of frames x streams x joints: one millisecond timestamp in the frame column
    asked numpy for 421 TiB and ended in a traceback. A frame or stream past MAX_LABEL_SLOTS' share is
    one line naming the file, the line (or image) and the value."""
    last = "3,947,579"  # MAX_LABEL_SLOTS (2^26) // 17 joints - 1
    cases = [
        (HEADER + "0,0,0,1,1,1\n1700000000000,0,0,1,1,1\n",
         f"line 3: frame 1700000000000 is past the last frame a labels file of 1 stream(s) of 17 joints may "
         f"have, {last} (its labels are dense arrays of at most 67,108,864 frame x stream x joint slots); "
         "frames number the video's frames from 0: is it a timestamp?"),
        (HEADER + "1e30,0,0,1,1,1\n", "line 2: frame 1e30 is past the last frame"),
        (HEADER + "5,0,0,1,1,1\n0,1000000000000,0,1,1,1\n",
         f"line 3: stream 1000000000000 is past the last stream a labels file of 17 joints may have, {last}"),
    ]
    for body, said in cases:
        path = _write_csv(tmp_path, body)
        with pytest.raises(LabelError) as refused:
            load_keypoint_csv(path)
        assert str(refused.value).startswith(f"{path}: {said}") and "\n" not in str(refused.value)
    images = [{"id": 1, "frame_index": 0}, {"id": 2, "frame_index": 1_700_000_000_000}]
    path = _write_json(tmp_path, {"images": images, "annotations": [{"image_id": 1, "keypoints": _kps()}]})
    with pytest.raises(LabelError) as refused:
        load_coco_keypoints(path)
    assert str(refused.value).startswith(f"{path}: image 2: frame 1700000000000 (its frame_index) is past "
                                         "the last frame a labels file of 1 stream(s) of 17 joints may have")


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="nope.csv: label file not found"):
        load_keypoint_csv(tmp_path / "nope.csv")


# --------------------------------------------------------------------------------------------- dataclass


def test_keypoint_labels_validates_shapes_and_serialises() -> None:
    coords = np.array([[[[1.0, 2.0], [np.nan, np.nan]]]])  # [1, 1, 2, 2]
    lab = KeypointLabels(coords, np.array([[[True, False]]]), ("a", "b"))
    d = lab.to_dict()
    assert d["coords"] == [[[[1.0, 2.0], [None, None]]]] and d["visible"] == [[[True, False]]]
    json.dumps(d, allow_nan=False)
    with pytest.raises(LabelError, match="visible"):
        KeypointLabels(coords, np.ones((1, 1, 3), bool), ("a", "b"))
    with pytest.raises(LabelError, match="joint_names"):
        KeypointLabels(coords, np.ones((1, 1, 2), bool), ("a",))
    with pytest.raises(LabelError, match="boxes"):
        KeypointLabels(coords, np.ones((1, 1, 2), bool), ("a", "b"), boxes=np.zeros((1, 1, 2)))
    assert math.isnan(lab.coords[0, 0, 1, 0])
