"""The latency model: features from real calibration data, and a fit that recovers known coefficients."""

from __future__ import annotations

import pytest
import torch

from deltatune.delta import convert
from deltatune.delta.calibration import Calibration
from deltatune.delta.latency import LatencyFeatures, LatencyModel, features
from deltatune.delta.sparse import SparseBackend
from tests.delta.nets import AllOps, moving_square_clip, randomize_bn


def test_features_use_measured_calibration() -> None:
    torch.manual_seed(0)
    backend = SparseBackend(calibration=Calibration(None))  # measured now, in memory
    net = convert(randomize_bn(AllOps()), thresholds=0.0, backend=backend, record_stats=False)
    clip = moving_square_clip(5)
    f0 = features(net, clip)
    assert backend.calibration.layers  # real timings of this machine
    assert f0.conv_ms > 0 and f0.elements > 0 and f0.frames == 4
    net.set_thresholds(10.0)  # nothing fires after the first layer: less work everywhere
    f1 = features(net, clip)
    assert f1.elements < f0.elements and f1.conv_ms <= f0.conv_ms
    assert not net.stats.enabled  # features() restores the recorder state


def test_fit_recovers_coefficients() -> None:
    pairs = [(1.0, 1e5), (2.0, 3e5), (0.5, 2e5), (3.0, 1e4), (1.5, 5e4)]
    feats = [LatencyFeatures(c, e, 10) for c, e in pairs]
    truth = LatencyModel(1.2, 2e-5, 0.7)
    model = LatencyModel.fit(feats, [truth.predict(f) for f in feats])
    for f in feats:
        assert model.predict(f) == pytest.approx(truth.predict(f), rel=1e-6)
    with pytest.raises(ValueError):
        LatencyModel.fit(feats[:2], [1.0, 2.0])


def test_features_need_the_sparse_backend() -> None:
    net = convert(randomize_bn(AllOps()), thresholds=0.0)
    with pytest.raises(TypeError):
        features(net, moving_square_clip(2))
