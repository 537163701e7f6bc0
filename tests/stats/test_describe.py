"""describe() and mean_difference_ci(): summary numbers equal numpy's, the CIs equal scipy's t intervals
and cover the true mean at the sample sizes studies have."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deltatune.errors import ConfigError
from deltatune.stats import describe, mean_difference_ci

VALUES = [0.712, 0.695, 0.731, 0.704, 0.688, 0.742, 0.719, 0.701]


def test_summary_numbers_match_numpy():
    d = describe(VALUES)
    assert d.n == 8
    assert d.mean == pytest.approx(np.mean(VALUES), abs=1e-15)
    assert d.sd == pytest.approx(np.std(VALUES, ddof=1), abs=1e-15)
    assert d.median == pytest.approx(0.708, abs=1e-12)  # (0.704 + 0.712) / 2
    assert round(d.mean, 6) == 0.711500


def test_ci_is_the_student_t_interval():
    d = describe(VALUES, level=0.9)
    x = np.array(VALUES)
    half = stats.t.ppf(0.95, df=x.size - 1) * np.std(x, ddof=1) / math.sqrt(x.size)
    assert d.ci_method == "t" and d.level == 0.9
    assert d.ci_low == pytest.approx(np.mean(x) - half, rel=1e-12)
    assert d.ci_high == pytest.approx(np.mean(x) + half, rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_ci_covers_the_true_mean_at_study_sizes(n):
    """Nominal 95 % must mean about 95 %: over 1000 normal samples the interval holds the true mean at
    least 93 % of the time (binomial SE 0.7 %). A BCa bootstrap covered 50 / 72 / 85 / 87 % here."""
    rng = np.random.default_rng(n)
    hits = 0
    for _ in range(1000):
        d = describe(rng.normal(3.0, 2.0, n))
        hits += d.ci_low <= 3.0 <= d.ci_high
    assert hits >= 930


@pytest.mark.parametrize("n", [2, 3, 5])
def test_a_ratio_interval_stays_positive_and_covers_the_geometric_mean(n):
    """Speed-ups are ratios: the plain t interval of 1.5x and 2.5x is [-4.35, 8.35]. On the log scale
    the interval is above 0, symmetric in log (low x high = geometric mean squared), and over 1000
    lognormal samples (sd 0.3 on the log scale) it holds the true geometric mean at least 93 % of the time
    (95.4 / 95.0 / 94.7 % at n = 2 / 3 / 5), where the plain t interval of the same samples went below 0 in
    73 % of the draws at n = 2 and 15 % at n = 3."""
    plain, ratio = describe([1.5, 2.5]), describe([1.5, 2.5], ratio=True)
    assert plain.ci_low < 0 < ratio.ci_low and ratio.ci_method == "log-t"
    assert ratio.ci_low * ratio.ci_high == pytest.approx(ratio.mean**2, rel=1e-12)
    assert ratio.mean == pytest.approx(math.sqrt(1.5 * 2.5)) and ratio.median == 2.0
    rng = np.random.default_rng(n)
    hits = below_0 = 0
    for _ in range(1000):
        x = np.exp(rng.normal(math.log(2.0), 0.3, n))
        d = describe(x, ratio=True)
        assert d.ci_low > 0
        hits += d.ci_low <= 2.0 <= d.ci_high
        below_0 += describe(x).ci_low < 0
    assert hits >= 930
    assert below_0 > (500 if n == 2 else 100 if n == 3 else -1)


def test_a_ratio_with_no_spread_or_a_non_positive_value_falls_back():
    assert describe([2.0, 2.0, 2.0], ratio=True).ci_method == "constant"
    assert describe([2.0, 2.0, 2.0], ratio=True).mean == 2.0
    assert describe([0.0, 1.0, 2.0], ratio=True) == describe([0.0, 1.0, 2.0])


def test_deterministic():
    assert describe(VALUES) == describe(VALUES)


def test_mean_difference_ci_paired_and_welch():
    a, b = np.array(VALUES), np.array(VALUES[::-1]) - 0.02
    lo, hi = mean_difference_ci(a, b, paired=True)
    d = describe(a - b)
    assert (lo, hi) == (d.ci_low, d.ci_high)
    lo, hi = mean_difference_ci(a, b[:5], paired=False, level=0.9)
    ref = stats.ttest_ind(a, b[:5], equal_var=False).confidence_interval(0.9)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert lo < np.mean(a) - np.mean(b[:5]) < hi


def test_mean_difference_ci_edge_cases():
    assert mean_difference_ci([2.0, 2.0], [1.0, 1.0, 1.0], paired=False) == (1.0, 1.0)
    assert all(math.isnan(v) for v in mean_difference_ci([2.0], [1.0, 1.5], paired=False))
    with pytest.raises(ConfigError, match="equal lengths"):
        mean_difference_ci([1.0, 2.0], [1.0], paired=True)


def test_mean_difference_ci_covers_at_study_sizes():
    """Welch's interval with 5 and 4 values of unequal spread: at least 93 % coverage over 1000 draws."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(1000):
        lo, hi = mean_difference_ci(rng.normal(1.0, 1.0, 5), rng.normal(0.0, 2.0, 4), paired=False)
        hits += lo <= 1.0 <= hi
    assert hits >= 930


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
    ],
)
def test_bad_input_raises_config_error(values, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        describe(values, **kwargs)


def test_differences_equal_up_to_rounding_are_constant_not_a_t_interval() -> None:
    """0.45 - 0.50 and 0.47 - 0.52 differ in the last bits: a t interval of width ~1e-17 came out, with
    scipy's "catastrophic cancellation" warning on the report's stderr. They are one difference."""
    import warnings

    a, b = [0.45, 0.47, 0.44, 0.50, 0.46], [0.50, 0.52, 0.49, 0.55, 0.51]
    assert len({x - y for x, y in zip(a, b, strict=True)}) > 1  # not bitwise equal
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = mean_difference_ci(a, b, paired=True)
    assert lo == hi == pytest.approx(-0.05)


def test_hodges_lehmann_is_the_shift_of_the_differences_as_the_rank_tests_tie_them() -> None:
    """Six differences of 0.1 computed from floats (5.1 - 5.0, 5.4 - 5.3, ...) are one value to the
    Wilcoxon test; the median of their Walsh averages is that value, not a mix of its noisy copies."""
    from deltatune.stats import hodges_lehmann

    base = np.array([5.0, 5.2, 4.8, 4.9, 5.1, 5.3, 4.0, 5.1])
    new = np.array([5.1, 5.3, 4.9, 5.0, 5.2, 5.4, 5.6, 5.0])
    shift = hodges_lehmann(new, base, paired=True)
    assert shift in set((new - base).tolist())  # one of the data's own differences
    assert 10 * shift == pytest.approx(hodges_lehmann(10 * new, 10 * base, paired=True), rel=1e-14)


def test_values_equal_up_to_floating_point_noise_have_no_spread() -> None:
    """Three hypervolumes of 0.044 computed along different paths differ by ~1e-17: the report printed
    "sd 8.50e-18" beside the point interval [0.044, 0.044]."""
    x = [0.1 + 0.2 - 0.3 + 0.044, 0.044, 0.044 + 1e-18]
    assert len(set(x)) > 1
    d = describe(x)
    assert d.sd == 0.0 and d.ci_low == d.ci_high and d.ci_method == "constant"
