"""The latency model: features from real calibration data, and a fit that recovers known coefficients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltatune.delta import convert
from deltatune.delta.calibration import Calibration, calibrate
from deltatune.delta.latency import FEATURE_NAMES, LatencyFeatures, LatencyModel, features
from deltatune.delta.sparse import SparseBackend
from tests.delta.nets import AllOps, moving_square_clip, randomize_bn


def test_features_use_measured_calibration() -> None:
    torch.manual_seed(0)
    backend = SparseBackend(calibration=Calibration(None))  # measured now, in memory
    net = convert(
        randomize_bn(AllOps()), thresholds=0.0, backend=backend, record_stats=False, dense_refresh=None
    )
    clip = moving_square_clip(5)
    calibrate(net, clip[0], repeats=1)
    f0 = features(net, clip)
    assert backend.calibration.layers  # real timings of this machine
    assert f0.conv_ms > 0 and f0.updated_elements > 0 and f0.dense_elements > 0 and f0.frames == 4
    assert f0.active_ops > 0 and f0.refreshed == 0
    assert 0 <= f0.sparse_conv_ms <= f0.conv_ms  # which calls ran sparse depends on this machine's costs
    # forcing the choice settles which sum each call lands in: every call sparse, then every call dense
    backend.break_even = 1.0
    sparse = features(net, clip)
    assert sparse.sparse_conv_ms == pytest.approx(sparse.conv_ms) and sparse.conv_ms > 0
    backend.break_even = 0.0
    dense = features(net, clip)
    assert dense.sparse_conv_ms == 0.0 and dense.conv_ms > 0
    backend.break_even = None
    net.set_thresholds(10.0)  # nothing fires after the first layer: less work everywhere
    f1 = features(net, clip)
    assert f1.updated_elements < f0.updated_elements and f1.conv_ms <= f0.conv_ms
    assert f1.active_ops < f0.active_ops and f1.dense_elements < f0.dense_elements
    assert not net.stats.enabled  # features() restores the recorder state


def test_fit_recovers_coefficients() -> None:
    rows = [  # conv ms (its sparse-kernel part), refresh ms, updated, dense elements, active ops
        (1.0, 0.2, 0.0, 1e5, 4e6, 100),
        (2.0, 1.5, 0.0, 3e5, 3e6, 80),
        (0.5, 0.1, 0.0, 2e5, 5e6, 120),
        (3.0, 0.5, 0.0, 1e4, 1e6, 40),
        (1.5, 1.0, 0.0, 5e4, 2e6, 60),
        (0.7, 0.6, 0.0, 4e5, 6e6, 150),
        (2.5, 0.3, 0.0, 2e4, 2.5e6, 90),
        (1.2, 0.9, 0.0, 3e4, 2e6, 70),
        (0.0, 0.0, 9.0, 0.0, 8e6, 200),
    ]
    feats = [LatencyFeatures(c, u, d, o, 10, refresh_ms=r, sparse_conv_ms=s) for c, s, r, u, d, o in rows]
    truth = LatencyModel((1.2, 1.8, 1.5, 2e-5, 3e-7, 0.01, 0.7))
    model = LatencyModel.fit(feats, [truth.predict(f) for f in feats])
    for f in feats:
        assert model.predict(f) == pytest.approx(truth.predict(f), rel=1e-6)
    with pytest.raises(ValueError):
        LatencyModel.fit(feats[:2], [1.0, 2.0])


def test_fit_keeps_coefficients_non_negative_at_the_constrained_optimum() -> None:
    """Timings that fall as active ops rise would need a negative coefficient: the fit clamps it to 0
    and the rest is the best non-negative fit (KKT: zero gradient on positive coefficients, a
    non-negative one on clamped coefficients), on the same relative-error, column-scaled problem."""
    rows = [
        (1.0, 1e5, 4e6, 100),
        (2.0, 3e5, 3e6, 80),
        (0.5, 2e5, 5e6, 120),
        (3.0, 1e4, 1e6, 40),
        (1.5, 5e4, 2e6, 60),
        (0.7, 4e5, 6e6, 150),
        (2.5, 2e4, 2.5e6, 90),
    ]
    feats = [LatencyFeatures(c, u, d, o, 10) for c, u, d, o in rows]
    ms = [1.2 * c + 2e-6 * u + 5.0 - 0.02 * o for c, u, _, o in rows]
    model = LatencyModel.fit(feats, ms)
    coef = np.array(model.coef)
    assert (coef >= 0).all() and coef[FEATURE_NAMES.index("active_ops")] == 0.0  # clamped
    a = np.array([f.vector() for f in feats])
    y = np.array(ms)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-12)
    aw = (a / scale) / y[:, None]
    grad = aw.T @ (aw @ (coef * scale) - 1.0)
    assert np.allclose(grad[coef > 0], 0.0, atol=1e-8)
    assert (grad[coef == 0] >= -1e-8).all()


def test_features_need_the_sparse_backend() -> None:
    net = convert(randomize_bn(AllOps()), thresholds=0.0)
    with pytest.raises(TypeError):
        features(net, moving_square_clip(2))


def test_time_delta_times_without_recording_and_restores_it() -> None:
    """Timing is inference only: the recorder is off while frames run (so refresh frames may take the
    lazy dense path) and back on afterwards; the outputs of the timed run are the network's own."""
    from deltatune.delta.latency import time_delta

    torch.manual_seed(0)
    net = convert(randomize_bn(AllOps()), thresholds=0.0, dense_refresh=0.25)
    seen: list[bool] = []
    net.graph_module.register_forward_hook(lambda *_: seen.append(net.stats.enabled))
    clip = moving_square_clip(4)  # global noise: every frame after the first is a refresh frame
    assert net.stats.enabled
    ms = time_delta(net, clip)
    assert ms > 0 and net.stats.enabled
    assert seen and not any(seen)
    assert net.refreshed_frames == 3 and len(seen) == 2  # frame 0 and the first refresh frame; then lazy


def test_training_configs_span_exact_to_sparse() -> None:
    """The fit sees thresholds 0, the sparsest and the most nearly exact configurations of the sampler,
    and random scales between them (one scale per configuration, not per layer)."""
    import random
    import statistics

    from deltatune.delta.latency import SCALE_RANGE, training_configs

    names = ["input", *(f"l{i}" for i in range(200))]
    configs = training_configs(names, random.Random(0), 12)
    assert len(configs) == 12
    assert all(v == 0 for v in configs[0].values()) and configs[1]["input"] == 0.01
    scales = [statistics.median(v for v in c.values() if v > 0) for c in configs[2:]]
    lo, hi = SCALE_RANGE
    assert hi / 3 < scales[0] < hi * 3 and lo / 3 < scales[1] < lo * 3
    assert all(lo / 3 < s < hi * 3 for s in scales[2:])
    assert max(scales[2:]) / min(scales[2:]) > 10  # the random ones differ in scale, not only per layer


def test_features_see_every_refresh_frame_with_statistics_off() -> None:
    """features() observes per-op work through hooks, so lazy refresh frames (which skip the delta graph)
    must not happen under it: the features are the same with the recorder on or off."""
    torch.manual_seed(0)
    model = randomize_bn(AllOps())
    clip = moving_square_clip(5)  # global noise: every frame after the first is a refresh frame
    cal = Calibration(None)
    calibrate(
        convert(model, thresholds=0.0, backend=SparseBackend(calibration=cal), dense_refresh=None),
        clip[0],
        repeats=1,
    )  # every layer's costs (refresh frames are priced by them)
    got = []
    for record in (True, False):
        backend = SparseBackend(calibration=cal)
        net = convert(model, thresholds=0.0, backend=backend, record_stats=record, dense_refresh=0.25)
        got.append(features(net, clip))
    assert got[0].refreshed == got[1].refreshed == 1.0
    assert got[1].refresh_ms == pytest.approx(got[0].refresh_ms) and got[1].refresh_ms > 0
    assert got[1].active_ops == got[0].active_ops


def test_a_fit_that_misses_its_own_timings_says_so() -> None:
    """A fit timed while other work ran misses its own configurations (a cached one missed by up to 76 %)
    and priced later searches without a word."""
    from deltatune.delta.latency import FittedLatency, LatencyModel

    rough = FittedLatency(LatencyModel(), 50.0, (0.05, 0.2, 0.3, 0.76))
    assert (rough.poor_fit_note() or "").startswith(
        "the latency model misses its own 4 timed configurations by 25% at the median (up to 76%)"
    )
    assert FittedLatency(LatencyModel(), 50.0, (0.05, 0.1, 0.76)).poor_fit_note() is None  # one outlier
    assert FittedLatency(LatencyModel(), 50.0, ()).poor_fit_note() is None
