"""What ``inspect`` computes: the accuracy loss against the dense model, and the last frame it keeps for
``--plot`` (real default hrnet and MobileNetV2 weights, real decoded vtest frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deltatune.inspection import inspect_model

ROOT = Path(__file__).resolve().parents[1]
HRNET_SETTING = ROOT / "studies" / "thresholds" / "hrnet.json"


def test_the_last_frames_fired_pixels_are_what_the_statistics_count(vtest_path: Path) -> None:
    """With two frames, frame 1 is the only delta frame: the fired pixels the hooks keep must be exactly
    the shares the statistics recorder counts for every truncation point."""
    r = inspect_model("hrnet", video=vtest_path, frames=2, thresholds_file=HRNET_SETTING, keep_last=True)
    last = r.last_frame
    assert last is not None and not last.dense_frame
    assert last.images.shape == (3, 256, 192, 3) and 0.0 <= last.images.min() <= last.images.max() <= 1.0
    by_name = {p["name"]: p for p in r.truncation_points}
    assert set(last.fired) == set(by_name)  # every point, input included, left its mask
    for name, mask in last.fired.items():
        assert mask.dtype == bool and mask.shape[0] == 3
        assert np.isclose(mask.mean(), by_name[name]["frac_fired"], atol=1e-6), name
    assert 0.0 < last.fired["input"].mean() < 0.5  # vtest at this setting: a minority of pixels moves


def test_keypoints_agree_at_threshold_zero_and_drift_at_a_large_one(vtest_path: Path) -> None:
    exact = inspect_model("hrnet", video=vtest_path, frames=4, threshold=0.0, keep_last=True)
    assert exact.metric == "PCK@0.2" and exact.accuracy_loss == 0.0
    e = exact.last_frame
    assert e is not None and e.dense_points is not None and e.delta_points is not None
    assert e.dense_points.shape == (3, 17, 2) and e.present is not None and e.present.shape == (3, 17)
    np.testing.assert_allclose(e.delta_points, e.dense_points, atol=1e-3)
    assert e.present.any()  # vtest's windows show people the dense model finds
    # keypoints are in crop pixels of the 192x256 input
    assert (e.dense_points[..., 0] <= 192).all() and (e.dense_points[..., 1] <= 256).all()
    loose = inspect_model("hrnet", video=vtest_path, frames=4, threshold=0.3, keep_last=True)
    assert loose.accuracy_loss is not None and loose.accuracy_loss > 1.0
    assert loose.last_frame is not None and loose.last_frame.delta_points is not None
    assert not np.allclose(loose.last_frame.delta_points, loose.last_frame.dense_points, atol=1e-3)


def test_a_classifier_keeps_its_top1_classes(vtest_path: Path, mobilenet_weights: Path) -> None:
    """With two frames the loss is the last frame's top-1 disagreement over the three streams."""
    for threshold in (0.0, 0.2):
        r = inspect_model("mobilenet_v2", video=vtest_path, frames=2, threshold=threshold, keep_last=True)
        last = r.last_frame
        assert r.metric == "top-1" and last is not None and last.dense_points is None
        assert last.dense_classes is not None and last.delta_classes is not None
        assert last.dense_classes.shape == (3,) and last.dense_classes.dtype.kind == "i"
        assert r.accuracy_loss == pytest.approx(100 * np.mean(last.dense_classes != last.delta_classes))
        if threshold == 0.0:
            assert r.accuracy_loss == 0.0


def test_without_keep_last_nothing_is_kept(vtest_path: Path) -> None:
    r = inspect_model("hrnet_tiny", weights=None, video=vtest_path, frames=2)
    assert r.last_frame is None and "accuracy_loss" in r.to_dict() and "last_frame" not in r.to_dict()


def test_the_crops_are_shown_as_the_video_has_them_whatever_the_models_colour_order(vtest_path: Path) -> None:
    """pose_resnet50 takes BGR input with other means than hrnet's RGB; undoing each model's
    preprocessing must give the same picture of the same crops."""
    rgb = inspect_model("hrnet", video=vtest_path, frames=2, keep_last=True).last_frame
    bgr = inspect_model("pose_resnet50", weights=None, video=vtest_path, frames=2, keep_last=True).last_frame
    assert rgb is not None and bgr is not None
    np.testing.assert_allclose(bgr.images, rgb.images, atol=1e-5)
    assert np.abs(bgr.images - rgb.images[..., ::-1]).max() > 0.1  # a swap would show


def test_a_point_feeding_a_max_pool_governs_the_conv_behind_it() -> None:
    """conv -> LeakyReLU -> max pool -> conv: the activation's row showed 0 multiply-adds, and the second
    conv's were attributed to nothing. Max pooling is exact and no truncation point of its own: the
    changes it passes on are the ones the activation let through."""
    import torch
    from torch import nn

    from deltatune.delta import convert
    from deltatune.inspection import governed_macs

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
                          nn.Conv2d(8, 4, 3, padding=1)).eval()
    net = convert(model, thresholds=0.0)
    frames = torch.rand(2, 1, 3, 16, 16)
    for f in frames:
        net(f)
    macs = governed_macs(net)
    assert set(macs) == set(net.threshold_names)  # the pool is no row of its own
    relu = next(n for n in net.threshold_names if n != "input")
    assert macs[relu] == 8 * 4 * 9 * 8 * 8  # the second conv, on the pooled 8x8 map
    assert macs["input"] == 3 * 8 * 9 * 16 * 16


def test_layers_that_read_another_conv_are_counted_apart_not_left_out() -> None:
    """conv -> ReLU -> conv -> conv (an inverted residual's projection read by the next expansion): the
    third conv reads the second with no non-linearity between, so no point feeds it; its multiply-adds
    were in no row and the column summed to less than the model."""
    import torch
    from torch import nn

    from deltatune.delta import convert
    from deltatune.inspection import governed_macs, macs_behind_layers

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1),
                          nn.Conv2d(4, 6, 1)).eval()
    net = convert(model, thresholds=0.0)
    for f in torch.rand(2, 1, 3, 16, 16):
        net(f)
    hw = 16 * 16
    assert sum(governed_macs(net).values()) == 3 * 8 * 9 * hw + 8 * 4 * hw
    assert macs_behind_layers(net) == 4 * 6 * hw


def test_mobilenet_v2s_feeds_column_and_the_layers_behind_add_up_to_the_model(
    vtest_path: Path, mobilenet_weights: Path
) -> None:
    r = inspect_model("mobilenet_v2", video=vtest_path, frames=2, threshold=0.05)
    feeds = sum(p["dense_macs"] for p in r.truncation_points)
    assert r.dense_macs == pytest.approx(3 * 0.30e9, rel=0.02)  # `deltatune models`: 0.30 GMACs a crop
    assert feeds + r.macs_behind_layers == r.dense_macs and r.macs_behind_layers > 0.4 * r.dense_macs
    assert "in layers no point feeds" in r.render()
