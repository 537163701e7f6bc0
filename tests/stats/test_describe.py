"""describe(): summary numbers equal numpy's, the CI equals a direct scipy.stats.bootstrap call."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deltatune.errors import ConfigError
from deltatune.stats import describe

VALUES = [0.712, 0.695, 0.731, 0.704, 0.688, 0.742, 0.719, 0.701]


def test_summary_numbers_match_numpy():
    d = describe(VALUES)
    assert d.n == 8
    assert d.mean == pytest.approx(np.mean(VALUES), abs=1e-15)
    assert d.sd == pytest.approx(np.std(VALUES, ddof=1), abs=1e-15)
    assert d.median == pytest.approx(0.708, abs=1e-12)  # (0.704 + 0.712) / 2
    assert round(d.mean, 6) == 0.711500


def test_ci_equals_scipy_bca_bootstrap():
    d = describe(VALUES, level=0.9, n_resamples=999, seed=3)
    ref = stats.bootstrap(
        (np.array(VALUES),),
        np.mean,
        n_resamples=999,
        confidence_level=0.9,
        method="BCa",
        rng=np.random.default_rng(3),
    )
    assert d.ci_method == "BCa"
    assert d.ci_low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert d.ci_high == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    assert d.ci_low < d.mean < d.ci_high
    assert d.level == 0.9


def test_deterministic_given_seed():
    assert describe(VALUES, seed=5) == describe(VALUES, seed=5)
    assert describe(VALUES, seed=5).ci_low != describe(VALUES, seed=6).ci_low


def test_single_value_has_nan_sd_and_ci():
    d = describe([3.5])
    assert (d.n, d.mean, d.median) == (1, 3.5, 3.5)
    assert math.isnan(d.sd) and math.isnan(d.ci_low) and math.isnan(d.ci_high)
    assert d.ci_method == "n/a"
    assert d.to_dict()["ci_low"] is None


def test_constant_data_give_a_point_ci():
    d = describe([2.0, 2.0, 2.0, 2.0])
    assert (d.ci_low, d.ci_high, d.sd, d.ci_method) == (2.0, 2.0, 0.0, "constant")


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ([], {}, "at least 1"),
        ([1.0, float("nan")], {}, "NaN"),
        ([1.0, float("inf")], {}, "NaN or infinite"),
        ([[1.0, 2.0]], {}, "1-D"),
        (["a", "b"], {}, "numbers"),
        ([1.0, 2.0], {"level": 1.0}, "level"),
        ([1.0, 2.0], {"n_resamples": 0}, "n_resamples"),
    ],
)
def test_bad_input_raises_config_error(values, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        describe(values, **kwargs)
