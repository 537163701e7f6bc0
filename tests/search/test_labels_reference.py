"""Searching against labels instead of the dense model's own predictions."""

from __future__ import annotations

import pytest
import torch

from deltatune.data.video import load_clip
from deltatune.delta import ThresholdFile
from deltatune.errors import ConfigError
from deltatune.metrics.video import predict_keypoints
from deltatune.search import Evaluator, StudyWorkload
from deltatune.search.study_workload import load_model
from deltatune.workload import preprocess
from tests.search.conftest import TINY


def write_labels(path, kp, *, frame_offset: int = 0) -> None:
    lines = ["frame,stream,joint,x,y,visible"]
    for f in range(kp.shape[0]):
        for s in range(kp.shape[1]):
            for j in range(kp.shape[2]):
                x, y = kp[f, s, j].tolist()
                lines.append(f"{f + frame_offset},{s},{j},{x},{y},1")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def dense_keypoints():
    """The dense model's keypoints in full-frame pixels, computed through the public evaluation path."""
    from deltatune_models import model_info

    model, _ = load_model(TINY)
    info = model_info(TINY.model)
    windows = TINY.crop_windows()
    clip = load_clip(TINY.video_path(), windows=windows, size=tuple(info.input_size), count=TINY.frames)
    return predict_keypoints(model, preprocess(clip, info), input_size=info.input_size, windows=windows)


def test_labels_equal_to_dense_predictions_give_zero_loss_at_zero(tmp_path, dense_keypoints) -> None:
    path = tmp_path / "labels.csv"
    write_labels(path, dense_keypoints)
    ev = Evaluator(StudyWorkload(**{**TINY.to_dict(), "windows": (), "labels": str(path)}))
    assert ev.dense_pck == {"tune": 1.0, "heldout": 1.0}
    zero = ThresholdFile({n: 0.0 for n in ev.threshold_names})
    assert ev.evaluate(zero).accuracy_loss == 0.0
    coarse = ThresholdFile({n: 5.0 for n in ev.threshold_names})
    assert ev.evaluate(coarse).accuracy_loss > 0.0


def test_labels_that_do_not_cover_the_clip_are_a_clear_error(tmp_path, dense_keypoints) -> None:
    path = tmp_path / "short.csv"
    write_labels(path, dense_keypoints[:3])
    with pytest.raises(ConfigError, match="needs frames 0..5"):
        Evaluator(StudyWorkload(**{**TINY.to_dict(), "windows": (), "labels": str(path)}))


def test_labels_of_more_sample_streams_give_their_first_ones_and_other_mismatches_say_what_to_change(
    tmp_path, dense_keypoints
) -> None:
    """``deltatune predict`` on vtest labels all three of its windows; a search of the first one (the
    sample's windows, in the same order) reads the first stream of them. With windows of one's own the
    labels' streams cannot be matched to them, and the error says so, as it says what else is off."""
    import torch

    path = tmp_path / "three.csv"
    write_labels(path, torch.cat([dense_keypoints, dense_keypoints + 7.0, dense_keypoints - 7.0], dim=1))
    ev = Evaluator(StudyWorkload(**{**TINY.to_dict(), "windows": (), "labels": str(path)}))
    assert ev.dense_pck == {"tune": 1.0, "heldout": 1.0}  # stream 0, not the shifted copies
    own = StudyWorkload(**{**TINY.to_dict(), "windows": ("96,96,240,320",), "labels": str(path)})
    with pytest.raises(ConfigError, match=r"= \(6, 3, 17\), the search needs frames 0..5, 1 stream\(s\) .*"
                                          r"one --window per labelled stream"):
        own.check()
    short = tmp_path / "short.csv"
    write_labels(short, dense_keypoints[:3])
    with pytest.raises(ConfigError, match="they end at frame 2: lower --frames or --start"):
        StudyWorkload(**{**TINY.to_dict(), "windows": (), "labels": str(short)}).check()


def _stride8_pose_net() -> torch.nn.Module:
    """A pose net of one's own whose heatmaps are 1/8 of its input (the zoo's are 1/4)."""
    from torch import nn

    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(),
                         nn.Conv2d(16, 17, 3, 2, 1)).eval()


def test_labels_are_matched_at_the_models_own_heatmap_stride(tmp_path, monkeypatch) -> None:
    """Labels are in full-frame pixels and the search maps its keypoints there through the model's own
    heatmap size: with stride 4 assumed, a stride-8 model's keypoints landed at half their place and its
    own dense predictions, given as labels, scored below 100 %."""
    from deltatune_models import ModelCard, _registry, model_info, register_model

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))  # registered for this test only
    register_model(_stride8_pose_net, card=ModelCard(
        family="test", task="pose", input_size=(256, 192), outputs="heatmaps [N,17,32,24]", num_joints=17,
        present_confidence=0.0))
    wl = StudyWorkload("_stride8_pose_net", weights=None, video="vtest", frames=6, streams=1)
    info = model_info(wl.model)
    windows = wl.crop_windows()
    model, _ = load_model(wl)
    clip = load_clip(wl.video_path(), windows=windows, size=tuple(info.input_size), count=wl.frames)
    kp = predict_keypoints(model, preprocess(clip, info), input_size=info.input_size, windows=windows)
    path = tmp_path / "stride8.csv"
    write_labels(path, kp)
    ev = Evaluator(StudyWorkload(**{**wl.to_dict(), "windows": (), "labels": str(path)}))
    assert ev.dense_pck == {"tune": 1.0, "heldout": 1.0}
    assert ev._heatmap_size() == (32, 24)


@pytest.mark.parametrize(("model", "weights", "joints"),
                         [("blazepose", "default", 39), ("hrnet_w32_mpii", None, 16)])
def test_labels_predict_writes_number_the_models_own_joints(tmp_path, model, weights, joints) -> None:
    """``deltatune predict`` writes "the CSV search --labels reads", but the search read every CSV as
    COCO's 17 joints: BlazePose's labels (39 joints) were refused as 'joint 17 is out of range for 17
    joints', hrnet_w32_mpii's (16) read as 17 and refused as '(4, 1, 17) ... has 16 joints'. The search
    reads them with the model's own joints (its model card); BlazePose's given to hrnet_w32_mpii are
    refused naming that model's range."""
    from deltatune.data.video import DEFAULT_WINDOWS
    from deltatune.errors import LabelError
    from deltatune.predict import predict_video

    path = tmp_path / f"{model}.csv"
    predict_video(model, path, weights=weights, frames=4, windows=DEFAULT_WINDOWS["vtest"][:1])
    workload = StudyWorkload(model, weights=weights, video="vtest", frames=4, streams=1, labels=str(path))
    workload.check()
    assert workload.load_labels().coords.shape == (4, 1, joints, 2)
    if model == "blazepose":
        mpii = StudyWorkload("hrnet_w32_mpii", weights=None, video="vtest", frames=4, streams=1,
                             labels=str(path))
        with pytest.raises(LabelError, match=r"joint 16 is out of range for hrnet_w32_mpii's 16 joints "
                                             r"\(the file numbers joints up to 38\): .* 0-15 in its order"):
            mpii.check()
