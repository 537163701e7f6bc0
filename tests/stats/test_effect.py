"""Effect sizes: values agree with scipy's test statistics; g's CI is the noncentral-t interval, the
rank-based ones agree with a direct scipy.stats.bootstrap call."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deltatune.errors import ConfigError
from deltatune.stats import cliffs_delta, hedges_g, magnitude, rank_biserial
from tests.stats.data import DARWIN_DIFFERENCES, SLEEP_GROUP1, SLEEP_GROUP2

A = np.array([0.62, 0.71, 0.68, 0.75, 0.66, 0.73, 0.70, 0.69])
B = np.array([0.60, 0.65, 0.66, 0.70, 0.64, 0.69, 0.71, 0.63])


def test_hedges_g_paired_is_corrected_t_over_sqrt_n():
    # d_z = t / sqrt(n) for the paired t statistic; J = 1 - 3 / (4 (n - 1) - 1)
    t = stats.ttest_rel(SLEEP_GROUP1, SLEEP_GROUP2).statistic
    g = hedges_g(SLEEP_GROUP1, SLEEP_GROUP2, paired=True)
    assert g.value == pytest.approx((1 - 3 / 35) * t / math.sqrt(10), rel=1e-12)
    assert round(g.value, 4) == -1.1745  # -4.0621 / sqrt(10) * 32 / 35
    assert (g.name, g.magnitude, g.level) == ("hedges_g", "large", 0.95)


def test_hedges_g_unpaired_is_corrected_student_t():
    # pooled-SD d = t * sqrt(1 / n_a + 1 / n_b) for Student's (equal-variance) t; df = n_a + n_b - 2
    a, b = A, B[:6]
    t = stats.ttest_ind(a, b, equal_var=True).statistic
    g = hedges_g(a, b, paired=False)
    assert g.value == pytest.approx((1 - 3 / (4 * 12 - 1)) * t * math.sqrt(1 / 8 + 1 / 6), rel=1e-12)
    assert round(g.value, 4) == 0.8642


def test_hedges_g_ci_puts_the_observed_t_at_the_tails_of_the_noncentral_t():
    # the bounds are the population effects whose noncentral t has the observed t at its 97.5 / 2.5 % point
    g = hedges_g(A, B, paired=True)
    n = A.size
    t = stats.ttest_rel(A, B).statistic
    assert g.ci_method == "noncentral t"
    assert stats.nct.cdf(t, n - 1, g.ci_low * math.sqrt(n)) == pytest.approx(0.975, abs=1e-8)
    assert stats.nct.cdf(t, n - 1, g.ci_high * math.sqrt(n)) == pytest.approx(0.025, abs=1e-8)
    assert g.ci_low < g.value < g.ci_high


def _noncentral_t_below(t: float, df: int, ncp: float, draws: int = 400_000) -> float:
    """Monte Carlo P(T <= t) of the noncentral t, T = (Z + ncp) / sqrt(V / df), seed fixed."""
    rng = np.random.default_rng(20261208)
    z, v = rng.standard_normal(draws), rng.chisquare(df, draws)
    return float(np.mean((z + ncp) / np.sqrt(v / df) <= t))


@pytest.mark.parametrize("df", [2, 4, 30])
@pytest.mark.parametrize("huge", [True, False])
def test_hedges_g_ci_of_a_huge_t_is_the_noncentral_t_limit_not_a_point(df: int, huge: bool) -> None:
    """Pairs that differ by 0.3 +- 2e-7 have t in the millions, where scipy's nct.cdf is NaN: five such
    pairs gave "g_z 1517893 [1897367, 1897367]", an interval of width 0 that excludes its own estimate,
    and at t = 1e5 every df's upper end was about 101,453 (df = 2: 192,065). For large t,
    T = (Z + ncp) / sqrt(V / df) is ncp / sqrt(V / df) but for Z, so the ends are t sqrt(q / df) at the
    chi-square quantiles q of 2.5 % and 97.5 %; checked against that formula and against a simulation of
    the noncentral t itself (Z included) at each end."""
    n = df + 1
    if huge:  # t from 3.4e6 (df 2) to 1.1e7 (df 30)
        d = 0.3 + np.array([1e-7, -1e-7, 2e-7, -2e-7, 0.0, 1e-7, -1e-7, 2e-7, -2e-7] * 4)[:n]
    else:  # t from 1e5 (df 2) to 1.6e5 (df 30)
        d = 1.0 + np.linspace(-1, 1, n) * math.sqrt(n) * 1e-5
    b = np.arange(n, dtype=float)
    g = hedges_g(b + d, b, paired=True)
    t = g.value / (1 - 3 / (4 * df - 1)) * math.sqrt(n)  # g_z = J t / sqrt(n)
    assert t == pytest.approx(stats.ttest_rel(b + d, b).statistic, rel=1e-6)
    low = t * math.sqrt(stats.chi2.ppf(0.025, df) / df) / math.sqrt(n)
    high = t * math.sqrt(stats.chi2.ppf(0.975, df) / df) / math.sqrt(n)
    assert (g.ci_low, g.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert g.ci_low < g.value < g.ci_high
    assert _noncentral_t_below(t, df, g.ci_low * math.sqrt(n)) == pytest.approx(0.975, abs=0.002)
    assert _noncentral_t_below(t, df, g.ci_high * math.sqrt(n)) == pytest.approx(0.025, abs=0.002)
    flipped = hedges_g(b, b + d, paired=True)  # a negative t: the same interval, mirrored
    assert (flipped.ci_low, flipped.ci_high) == pytest.approx((-g.ci_high, -g.ci_low), rel=1e-12)


def test_hedges_g_ci_meets_the_large_t_limit_where_it_takes_over() -> None:
    """Below LARGE_T the interval is nct's root search, as before; just above it the chi-square limit:
    at the switch the two agree within 2e-6 (relative), where scipy's nct is still exact enough to compare."""
    from deltatune.stats.effect import LARGE_T, _noncentral_t_ci

    for df in (2, 9, 200, 10_000):
        below = _noncentral_t_ci(LARGE_T, df, 1.0, 0.95)
        above = _noncentral_t_ci(LARGE_T * (1 + 1e-12), df, 1.0, 0.95)
        assert below == pytest.approx(above, rel=2e-6)
        assert stats.nct.cdf(LARGE_T, df, below[0]) == pytest.approx(0.975, abs=1e-8)
        assert stats.nct.cdf(LARGE_T, df, below[1]) == pytest.approx(0.025, abs=1e-8)


def test_hedges_g_unpaired_ci_approaches_the_large_sample_normal_interval():
    # Hedges & Olkin (1985): se(d) ~ sqrt((n_a + n_b) / (n_a n_b) + d^2 / (2 (n_a + n_b))) for large samples
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.5, 1.0, 200), rng.normal(0.0, 1.0, 200)
    g = hedges_g(a, b, paired=False)
    se = math.sqrt(400 / 200**2 + g.value**2 / 800)
    assert g.ci_low == pytest.approx(g.value - 1.96 * se, abs=0.01)
    assert g.ci_high == pytest.approx(g.value + 1.96 * se, abs=0.01)


@pytest.mark.parametrize("paired", [True, False])
def test_hedges_g_ci_covers_the_true_effect_95_percent_of_the_time_with_five_repeats(paired: bool) -> None:
    # the sample sizes studies have: a BCa bootstrap CI of g covers 82-89 % here (measured), this one 95 %
    rng = np.random.default_rng(1)
    delta, n, draws = 0.8, 5, 1500
    covered = 0
    for _ in range(draws):
        a = rng.normal(delta, 1.0, n)
        b = np.zeros(n) if paired else rng.normal(0.0, 1.0, n)
        g = hedges_g(a, b, paired=paired)
        covered += g.ci_low <= delta <= g.ci_high
    assert 0.93 <= covered / draws <= 0.97


def test_cliffs_delta_equals_mann_whitney_u():
    u = stats.mannwhitneyu(A, B, alternative="two-sided").statistic  # U of A, ties count 1/2
    d = cliffs_delta(A, B)
    assert d.value == pytest.approx(2 * u / (A.size * B.size) - 1, abs=1e-15)
    assert round(d.value, 4) == 0.4375
    assert d.magnitude == "medium"
    assert d.ci_low < d.value < d.ci_high


def test_cliffs_delta_is_the_mean_sign_of_every_pair_with_ties_and_bootstrap_batches():
    """Computed from ranks, it must equal the definition exactly: the mean of ``sign(a_i - b_j)`` over every
    pair, on tied data and on the batched shapes the bootstrap and its jackknife pass (a batch of one
    sample's resamples against the other sample)."""
    from deltatune.stats.effect import _cliff

    rng = np.random.default_rng(4)
    for _ in range(100):
        n_a, n_b = rng.integers(1, 20, 2)
        a = rng.integers(0, 4, (5, 1, n_a)).astype(float)  # few values: many ties
        b = rng.integers(0, 4, (1, 3, n_b)).astype(float)
        pairs = np.mean(np.sign(a[..., :, None] - b[..., None, :]), axis=(-2, -1))
        assert np.array_equal(_cliff(a, b), pairs)
    big_a, big_b = rng.normal(0.0, 1.0, 3000), rng.normal(0.2, 1.0, 2500)  # thousands of runs
    assert cliffs_delta(big_a, big_b, n_resamples=200).value == np.mean(np.sign(big_a[:, None] - big_b))


def test_cliffs_delta_complete_separation():
    d = cliffs_delta([5.0, 6.0, 7.0, 8.0], [1.0, 2.0, 3.0, 4.0])
    assert (d.value, d.magnitude) == (1.0, "large")
    assert cliffs_delta([1.0, 2.0], [5.0, 6.0, 7.0]).value == -1.0


def test_rank_biserial_from_wilcoxon_on_darwin_data():
    """Darwin/Fisher Zea mays: T- = 24 (ranks 10 and 14 of |d|), T+ = 96 -> r = (96 - 24) / 120 = 0.6."""
    d = np.array(DARWIN_DIFFERENCES, dtype=float)
    t_plus = stats.wilcoxon(d, alternative="greater").statistic
    r = rank_biserial(d, np.zeros_like(d))
    assert t_plus == 96.0
    assert r.value == pytest.approx(0.6, abs=1e-15)
    assert r.value == pytest.approx(2 * t_plus / (15 * 16 / 2) - 1, abs=1e-15)
    assert r.magnitude == "large"


def test_rank_biserial_drops_zero_differences_like_wilcoxon():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    b = np.array([1.0, 1.5, 3.0, 3.0, 5.5, 4.0, 7.0])  # d = 0, .5, 0, 1, -.5, 2, 0
    t_plus = stats.wilcoxon(a, b, alternative="greater").statistic  # zero_method="wilcox": n = 4
    r = rank_biserial(a, b)
    assert r.value == pytest.approx(2 * t_plus / (4 * 5 / 2) - 1, abs=1e-15)
    assert r.value == pytest.approx(0.7, abs=1e-15)  # ranks 1.5, 3, -1.5, 4 -> (8.5 - 1.5) / 10


def test_rank_biserial_ci_is_deterministic_and_covers():
    r1 = rank_biserial(A, B, seed=3)
    assert r1 == rank_biserial(A, B, seed=3)
    assert r1.ci_low <= r1.value <= r1.ci_high
    # d = .02 .06 .02 .05 .02 .04 -.01 .06: only -0.01 is negative and it has rank 1, so (35 - 1) / 36
    assert r1.value == pytest.approx(34 / 36, abs=1e-12)


def test_undefined_effects_are_nan():
    g = hedges_g([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], paired=True)  # constant differences: sd 0
    assert math.isnan(g.value) and math.isnan(g.ci_low) and g.magnitude == "n/a"
    two = hedges_g([1.0, 2.0], [0.0, 2.0], paired=True)  # J(1) = 0: no unbiased g from 2 pairs
    assert math.isnan(two.value) and two.ci_method == "n/a"
    r = rank_biserial([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(r.value) and r.to_dict()["value"] is None


@pytest.mark.parametrize(
    ("name", "value", "label"),
    [
        ("hedges_g", 0.19, "negligible"),
        ("hedges_g", 0.2, "small"),
        ("hedges_g", -0.49, "small"),
        ("hedges_g", 0.5, "medium"),
        ("hedges_g", 0.8, "large"),
        ("cliffs_delta", 0.146, "negligible"),
        ("cliffs_delta", 0.147, "small"),
        ("cliffs_delta", -0.33, "medium"),
        ("cliffs_delta", 0.474, "large"),
        ("rank_biserial", 0.32, "small"),
    ],
)
def test_magnitude_thresholds(name, value, label):
    assert magnitude(name, value) == label


def test_magnitude_of_an_unknown_effect_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"effect size 'foo' has no magnitude thresholds; known: hedges_g"):
        magnitude("foo", 0.6)  # a bare KeyError: 'foo' before


def test_bad_input():
    with pytest.raises(ConfigError, match="equal lengths"):
        hedges_g([1.0, 2.0, 3.0], [1.0, 2.0], paired=True)
    with pytest.raises(ConfigError, match="at least 2"):
        hedges_g([1.0], [2.0], paired=False)
    with pytest.raises(ConfigError, match="level"):
        cliffs_delta([1.0, 2.0], [2.0, 3.0], level=95)


def test_hedges_g_is_undefined_for_a_constant_difference_with_rounding_noise() -> None:
    # 1.94 - 1.07 computed from floats differs from run to run only in the last bits: no spread at all
    a = [1.9400000000000002, 1.94, 1.9399999999999997, 1.94, 1.94]
    b = [1.07] * 5
    g = hedges_g(a, b, paired=True)
    assert math.isnan(g.value) and g.magnitude == "n/a"
    assert math.isnan(hedges_g(a, b, paired=False).value)


def test_rank_effects_tie_values_equal_in_exact_arithmetic() -> None:
    """5.1 - 5.0 and 5.4 - 5.3 differ in their last bits; ranked apart they made the rank-biserial r of a
    study 0.861 where the same data times 10 gave 0.778. Accuracy losses (multiples of 100/119, computed as
    differences) likewise must tie in Cliff's delta as their image counts do."""
    base = np.array([5.0, 5.2, 4.8, 4.9, 5.1, 5.3, 4.0, 5.1])
    new = np.array([5.1, 5.3, 4.9, 5.0, 5.2, 5.4, 5.6, 5.0])
    integers = np.round(10 * new) - np.round(10 * base)
    r, tenfold = rank_biserial(new, base), rank_biserial(10 * new, 10 * base)
    assert r.value == tenfold.value == rank_biserial(integers, np.zeros(8)).value
    assert (r.ci_low, r.ci_high) == pytest.approx((tenfold.ci_low, tenfold.ci_high), abs=1e-12)
    counts_a, counts_b = [1, 1, 2, 2, 3], [1, 2, 2, 3, 3]
    a = [(k + 3) * 100 / 119 - 3 * 100 / 119 for k in counts_a]
    b = [k * 100 / 119 for k in counts_b]
    assert cliffs_delta(a, b).value == cliffs_delta(counts_a, counts_b).value


def test_an_effect_from_fewer_than_four_pairs_or_values_gets_no_magnitude_word() -> None:
    """One non-zero pair made the rank-biserial r 1.00 "large" whatever the data: from fewer than
    MIN_MAGNITUDE_N pairs (non-zero pairs for r) or values at the smaller level the value is kept and the
    word is replaced by the reason."""
    from deltatune.stats.effect import MIN_MAGNITUDE_N

    assert MIN_MAGNITUDE_N == 4
    r = rank_biserial([1.0, 2.0, 3.0, 4.5], [1.0, 2.0, 3.0, 4.0])  # three zero differences, one of +0.5
    assert r.value == 1.0 and r.magnitude == "too few to name: 1 non-zero pair"
    three = rank_biserial([1.5, 2.5, 3.5, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert three.magnitude == "too few to name: 3 non-zero pairs"
    assert rank_biserial([1.5, 2.5, 3.5, 4.5], [1.0, 2.0, 3.0, 4.0]).magnitude == "large"
    g = hedges_g([1.0, 2.5, 3.2], [0.0, 1.0, 2.0], paired=True)
    assert math.isfinite(g.value) and g.magnitude == "too few to name: 3 pairs"
    assert hedges_g([1.0, 2.5, 3.2, 4.1], [0.0, 1.0, 2.0, 3.3], paired=True).magnitude == magnitude(
        "hedges_g", hedges_g([1.0, 2.5, 3.2, 4.1], [0.0, 1.0, 2.0, 3.3], paired=True).value)
    d = cliffs_delta([5.0, 6.0, 7.0], [1.0, 2.0, 3.0, 4.0])
    assert d.value == 1.0 and d.magnitude == "too few to name: 3 values at the smaller level"
