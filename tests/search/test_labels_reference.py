"""Searching against labels instead of the dense model's own predictions."""

from __future__ import annotations

import pytest

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
