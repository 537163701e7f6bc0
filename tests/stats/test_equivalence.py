"""tost(): equals statsmodels' TOST and two one-sided scipy t-tests; the CI decides like the p-value."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from deltatune.errors import ConfigError
from deltatune.stats import tost
from tests.stats.data import SLEEP_GROUP1, SLEEP_GROUP2

BASE = np.array([0.712, 0.695, 0.731, 0.704, 0.688, 0.742, 0.719, 0.701, 0.725, 0.698])
NEAR = BASE + np.array([0.001, -0.002, 0.0015, 0.0, -0.001, 0.002, -0.0005, 0.001, -0.0015, 0.0005])


def test_nearly_identical_levels_are_equivalent_with_a_wide_margin_only():
    wide = tost(NEAR, BASE, margin=0.01, paired=True)
    tiny = tost(NEAR, BASE, margin=0.0005, paired=True)
    assert wide.equivalent and wide.pvalue < 1e-6
    assert not tiny.equivalent and tiny.pvalue > 0.05
    assert wide.diff == pytest.approx(0.0001, abs=1e-12)  # mean of the jitter
    assert (wide.test, wide.margin, wide.paired, wide.alpha) == ("TOST", 0.01, True, 0.05)


def test_paired_equals_statsmodels_and_two_one_sided_t_tests():
    d = np.subtract(SLEEP_GROUP1, SLEEP_GROUP2)
    r = tost(SLEEP_GROUP1, SLEEP_GROUP2, margin=2.0, paired=True)
    assert r.pvalue == pytest.approx(
        ttost_paired(np.array(SLEEP_GROUP1), np.array(SLEEP_GROUP2), -2.0, 2.0)[0]
    )
    lower = stats.ttest_1samp(d, -2.0, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, 2.0, alternative="less").pvalue
    assert r.pvalue == pytest.approx(max(lower, upper), rel=1e-12)
    assert round(r.pvalue, 4) == 0.1542  # t = (-1.58 + 2) / (1.23 / sqrt(10)) = 1.080 on 9 df
    assert not r.equivalent
    ci = stats.ttest_rel(SLEEP_GROUP1, SLEEP_GROUP2).confidence_interval(confidence_level=0.9)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert round(r.ci_low, 4) == -2.2930 and round(r.ci_high, 4) == -0.8670


def test_unpaired_equals_statsmodels_welch():
    rng = np.random.default_rng(8)
    a, b = rng.normal(1.0, 0.1, 12), rng.normal(1.02, 0.2, 9)
    r = tost(a, b, margin=0.15, paired=False, alpha=0.1)
    assert r.pvalue == pytest.approx(ttost_ind(a, b, -0.15, 0.15, usevar="unequal")[0], rel=1e-12)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence_level=0.8)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert r.diff == pytest.approx(a.mean() - b.mean(), abs=1e-15)


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize(("other", "equivalent"), [(1.25, True), (2.25, False)])
def test_constant_levels_are_decided_by_their_known_difference(paired, other, equivalent):
    """Two levels whose runs all give one value each: the difference is known exactly, so it is inside
    the margin (p = 0) or not (p = 1), paired as unpaired; Welch's TOST alone has no variance to divide by
    and gave NaN, which the report shows as "not tested"."""
    r = tost([1.0] * 4, [other] * 4, margin=0.5, paired=paired)
    assert (r.pvalue, r.equivalent) == ((0.0, True) if equivalent else (1.0, False))
    assert r.ci_low == r.ci_high == pytest.approx(1.0 - other)


@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0, 2.3, 2.5, 4.0])
def test_equivalent_exactly_when_ci_inside_margins(margin):
    r = tost(SLEEP_GROUP1, SLEEP_GROUP2, margin=margin, paired=True)
    assert r.equivalent == (-margin < r.ci_low and r.ci_high < margin)
    assert r.equivalent == (margin > 2.293)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"margin": 0.0}, "margin"), ({"margin": -1.0}, "margin"), ({"margin": 1.0, "alpha": 0.6}, "alpha")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        tost(SLEEP_GROUP1, SLEEP_GROUP2, paired=True, **kwargs)
