"""The engine on a real pretrained network (MobileNetV2, ImageNet weights) and real video (vtest)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deltatune.delta import convert
from deltatune.inspection import max_relative_error
from deltatune.workload import load_workload

#: Slow (~1 min on 2 cores): 300 real frames through MobileNetV2.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mobilenet_clip(vtest_path, mobilenet_weights):
    # 300 frames of one pedestrian window of vtest, preprocessed for MobileNetV2 (224x224)
    wl = load_workload("mobilenet_v2", frames=300)
    assert not wl.random_weights
    return wl.model, wl.frames[:, :1]


def test_mobilenet_v2_exact_at_zero_on_200_frames(mobilenet_clip) -> None:
    model, clip = mobilenet_clip
    net = convert(model, thresholds=0.0)
    worst = 0.0
    with torch.no_grad():
        for x in clip[:200]:
            worst = max(worst, max_relative_error(net(x), model(x)))
    assert worst <= 1e-4
    assert net.mac_speedup() > 1.0  # static camera: some pixels do not change at all


def _error_thirds(model, clip, *, accumulate: bool) -> tuple[float, float]:
    net = convert(model, thresholds=0.05, accumulate=accumulate, record_stats=False)
    errs = []
    with torch.no_grad():
        for x in clip:
            errs.append(max_relative_error(net(x), model(x)))
    e = torch.tensor(errs[1:])
    n = len(e) // 3
    return float(e[:n].mean()), float(e[2 * n :].mean())


def test_error_stays_bounded_over_300_frames_and_drifts_without_accumulation(mobilenet_clip) -> None:
    model, clip = mobilenet_clip
    # the first seven blocks of MobileNetV2 at 112x112 keep this test fast; 300 real frames
    features = model.features[:7]
    small = F.interpolate(clip.flatten(0, 1), size=(112, 112), mode="bilinear").unflatten(0, clip.shape[:2])
    first, last = _error_thirds(features, small, accumulate=True)
    assert first > 0  # thresholds > 0 really truncate
    assert last <= 1.5 * first
    d_first, d_last = _error_thirds(features, small, accumulate=False)
    assert d_last > 1.5 * d_first  # dropped residuals: the error grows over the stream
    assert d_last > last
