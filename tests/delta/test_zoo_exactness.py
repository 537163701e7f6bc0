"""Issue 3: with thresholds 0 the delta versions of the zoo's pose models equal their dense outputs
within 1e-4 relative on >= 50 real vtest frames."""

from __future__ import annotations

import pytest
import torch

from deltatune.delta import convert
from deltatune.inspection import max_relative_error
from deltatune.workload import load_workload

#: Slow (minutes on 2 cores): 50 real frames through full-size zoo models, dense and delta.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("hrnet", None),  # any weights: seeded random init (official files are not available offline)
        ("pose_resnet50", None),
        ("blazepose", "default"),  # real pretrained weights converted from MediaPipe's TFLite file
    ],
)
def test_pose_models_exact_at_zero_on_50_frames(name, weights, vtest_path) -> None:
    torch.manual_seed(0)
    wl = load_workload(name, weights=weights, frames=50)
    clip = wl.frames[:, :1]  # one pedestrian window: 50 real frames
    net = convert(wl.model, thresholds=0.0, record_stats=False)
    worst = 0.0
    with torch.no_grad():
        for x in clip:
            worst = max(worst, max_relative_error(net(x), wl.model(x)))
    assert worst <= 1e-4, worst
