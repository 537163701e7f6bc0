"""bootstrap_ci(): scipy's BCa when it is defined, the percentile interval of the defined resamples if not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deltatune.stats._bootstrap import bootstrap_ci


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def _mean_over_sd(x, axis=-1):
    with np.errstate(all="ignore"):
        return np.mean(x, axis=axis) / np.std(x, axis=axis, ddof=1)  # NaN on an all-zero resample


def test_bca_equals_scipy():
    x = np.array([3.1, 2.7, 3.6, 2.9, 3.3, 4.0, 3.0])
    low, high, method = bootstrap_ci((x,), _mean, paired=False, level=0.9, n_resamples=500, seed=2)
    ref = stats.bootstrap((x,), np.mean, n_resamples=500, confidence_level=0.9, rng=np.random.default_rng(2))
    assert method == "BCa"
    assert (low, high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore::scipy.stats.DegenerateDataWarning")
def test_percentile_fallback_uses_the_defined_resamples():
    x = np.array([0.0, 0.0, 0.0, 0.0, 1.0])  # a third of the resamples are all zeros: statistic NaN
    low, high, method = bootstrap_ci((x,), _mean_over_sd, paired=False, level=0.95, n_resamples=400, seed=0)
    ref = stats.bootstrap(
        (x,), _mean_over_sd, n_resamples=400, vectorized=True, axis=-1, rng=np.random.default_rng(0)
    )
    assert math.isnan(ref.confidence_interval.low)  # scipy's BCa is undefined here
    dist = ref.bootstrap_distribution[~np.isnan(ref.bootstrap_distribution)]
    assert method == "percentile"
    assert (low, high) == pytest.approx(tuple(np.percentile(dist, [2.5, 97.5])), rel=1e-12)


def test_too_few_values():
    low, high, method = bootstrap_ci(
        (np.array([1.0]),), _mean, paired=False, level=0.95, n_resamples=10, seed=0
    )
    assert math.isnan(low) and math.isnan(high) and method == "n/a"


@pytest.mark.parametrize("n", [2, 3])
def test_no_interval_from_fewer_than_four_values(n: int) -> None:
    """Two or three values have 3 or 10 distinct resamples: their percentiles are not an interval."""
    x = np.array([1.0, 2.5, 4.0][:n])
    assert bootstrap_ci((x,), _mean, paired=False, level=0.95, n_resamples=200, seed=0)[2] == "n/a"
    x4 = np.array([1.0, 2.5, 4.0, 3.0])
    low, high, method = bootstrap_ci((x4,), _mean, paired=False, level=0.95, n_resamples=200, seed=0)
    assert method in ("BCa", "percentile") and low < high


def test_a_bootstrap_distribution_of_one_value_is_no_interval() -> None:
    """Five pairs that all differ the same way: every resample's rank-biserial r is -1, and the interval
    was [-1.00, -1.00], a certainty no five pairs give. It is n/a; the value itself stays."""
    from deltatune.stats import rank_biserial

    r = rank_biserial([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.7, 3.1, 4.9, 5.2])
    assert r.value == -1.0 and math.isnan(r.ci_low) and math.isnan(r.ci_high) and r.ci_method == "n/a"
