"""compare_two(): the test choice, agreement with scipy, and three published worked examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from deltatune.errors import ConfigError
from deltatune.stats import compare_two, repeats_for_power
from deltatune.stats.two_levels import rank_floor
from tests.stats.data import DARWIN_DIFFERENCES, SLEEP_GROUP1, SLEEP_GROUP2

# ------------------------------------------------------------------------------------ published examples


def test_student_sleep_paired_t():
    """Student (1908) / Cushny & Peebles: R's ``t.test(extra ~ group, data = sleep, paired = TRUE)`` gives
    t = -4.0621, df = 9, p-value = 0.002833."""
    r = compare_two(SLEEP_GROUP1, SLEEP_GROUP2, paired=True, parametric=True)
    assert r.test == "paired t-test"
    assert round(r.statistic, 4) == -4.0621
    assert r.df == 9
    assert round(r.pvalue, 6) == 0.002833
    assert round(r.mean_difference, 2) == -1.58  # R: mean difference -1.58


def test_student_sleep_rule_picks_wilcoxon():
    """The differences of the sleep data fail Shapiro-Wilk at 0.05 (R's
    ``shapiro.test(sleep$extra[1:10] - sleep$extra[11:20])``: W = 0.82987, p-value = 0.03334; the -4.6 of
    patient 9 is an outlier), so the automatic rule does not pick the t-test here."""
    r = compare_two(SLEEP_GROUP1, SLEEP_GROUP2, paired=True)
    assert round(r.normality_pvalue, 5) == 0.03334
    assert r.test == "Wilcoxon signed-rank"
    assert r.reason == (
        "paired differences do not look normal (Shapiro-Wilk p = 0.033 < 0.05), "
        "so a Wilcoxon signed-rank test"
    )
    ref = stats.wilcoxon(SLEEP_GROUP1, SLEEP_GROUP2)
    assert (r.statistic, r.pvalue) == (ref.statistic, ref.pvalue)
    # at a stricter screening threshold the same data pass, and the rule picks the t-test
    strict = compare_two(SLEEP_GROUP1, SLEEP_GROUP2, paired=True, alpha=0.01)
    assert strict.test == "paired t-test" and round(strict.statistic, 4) == -4.0621
    assert "Shapiro-Wilk p = 0.033 >= 0.01" in strict.reason


def test_darwin_zea_mays_fisher_t_and_wilcoxon():
    """Fisher (1935), Darwin's Zea mays: paired t = 2.148, p = 0.0497 (15 pairs); scipy's ``wilcoxon``
    documentation: two-sided statistic 24.0, exact p = 0.041259765625."""
    d = np.array(DARWIN_DIFFERENCES, dtype=float)
    zero = np.zeros_like(d)
    r = compare_two(d, zero, paired=True)  # Shapiro-Wilk p = 0.098: the rule picks the t-test
    assert r.test == "paired t-test"
    assert round(r.normality_pvalue, 3) == 0.098
    assert round(r.statistic, 3) == 2.148
    assert round(r.pvalue, 4) == 0.0497
    w = compare_two(d, zero, paired=True, parametric=False)
    assert w.test == "Wilcoxon signed-rank"
    assert w.statistic == 24.0
    assert w.pvalue == 0.041259765625
    assert w.reason == "a Wilcoxon signed-rank test was requested (Shapiro-Wilk p = 0.098)"


# ------------------------------------------------------------------------------------ the choice


def _paired_normal():
    rng = np.random.default_rng(2024)
    b = rng.normal(10, 1, 30)
    return b + rng.normal(0.5, 0.3, 30), b


def _paired_skewed():
    rng = np.random.default_rng(7)
    b = rng.normal(10, 1, 30)
    return b + rng.exponential(1.0, 30), b


def test_paired_normal_differences_choose_the_t_test():
    a, b = _paired_normal()
    r = compare_two(a, b, paired=True)
    ref = stats.ttest_rel(a, b)
    assert r.test == "paired t-test"
    assert r.normality_pvalue == pytest.approx(stats.shapiro(a - b).pvalue, abs=0)
    assert r.reason.startswith("paired differences look normal (Shapiro-Wilk p = 0.96 >= 0.05)")
    assert (r.statistic, r.pvalue, r.df, r.n) == (ref.statistic, ref.pvalue, 29.0, 30)


def test_paired_skewed_differences_choose_wilcoxon():
    a, b = _paired_skewed()
    r = compare_two(a, b, paired=True)
    ref = stats.wilcoxon(a, b)
    assert r.test == "Wilcoxon signed-rank"
    assert round(r.normality_pvalue, 4) == 0.0012
    assert (r.statistic, r.pvalue) == (ref.statistic, ref.pvalue)
    assert math.isnan(r.df)


def test_unpaired_normal_groups_choose_welch():
    rng = np.random.default_rng(11)
    a, b = rng.normal(5, 1, 25), rng.normal(5.8, 2, 20)
    r = compare_two(a, b, paired=False)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert r.test == "Welch t-test"
    assert r.reason == "both groups look normal (Shapiro-Wilk p = 0.51 and 0.59 >= 0.05), so a Welch t-test"
    assert (r.statistic, r.pvalue, r.df) == (ref.statistic, ref.pvalue, ref.df)
    assert r.n == 45 and not r.paired


def test_unpaired_skewed_groups_choose_mann_whitney():
    rng = np.random.default_rng(12)
    a, b = rng.exponential(1, 25), rng.exponential(2, 20)
    r = compare_two(a, b, paired=False)
    ref = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact")  # 45 values, no ties
    assert r.test == "Mann-Whitney U"
    assert r.reason.startswith("neither group looks normal (Shapiro-Wilk p = 0.0021 and 0.00017 < 0.05)")
    assert (r.statistic, r.pvalue) == (ref.statistic, ref.pvalue)
    assert r.normality_pvalue == pytest.approx(0.00017225805932148493, rel=1e-9)


@pytest.mark.parametrize(("a", "b", "exact"), [
    ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], 0.1),  # two constant levels: 2 of C(6, 3) = 20 splits
    ([2.0, 2.0], [1.0, 1.0], 1 / 3),
    ([1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 3.0], 2 / 70),
    ([1.0, 2.0, 2.0, 3.0, 9.0], [4.0, 5.0, 5.0, 6.0, 7.0], None),  # ties, overlapping
])
def test_mann_whitney_with_ties_is_exact_and_never_below_the_floor(a, b, exact):
    """With tied values scipy's Mann-Whitney uses the normal approximation (three 2.0s against three 1.0s:
    p = 0.047, below the 0.1 that no split of six values can go under); the p is the share of all
    splits of the pooled values whose U is as extreme, enumerated here."""
    from itertools import combinations

    r = compare_two(a, b, paired=False, parametric=False)
    pooled = np.array(a + b)
    u = stats.mannwhitneyu(a, b, method="asymptotic").statistic
    centre = len(a) * len(b) / 2
    splits = [np.array(ix) for ix in combinations(range(pooled.size), len(a))]
    us = [stats.mannwhitneyu(pooled[ix], np.delete(pooled, ix), method="asymptotic").statistic
          for ix in splits]
    enumerated = np.mean([abs(v - centre) >= abs(u - centre) - 1e-9 for v in us])
    assert r.test == "Mann-Whitney U"
    assert r.pvalue == pytest.approx(enumerated)
    if exact is not None:
        assert r.pvalue == pytest.approx(exact)
    assert r.pvalue >= rank_floor(a, b, paired=False) - 1e-12


def test_mann_whitney_without_ties_is_exact_beyond_eight_values_a_level():
    """scipy's default is exact only up to 8 values in a level: 10 runs against 20 got the normal
    approximation, p = 0.0503, where the exact p is 0.0490 (the other side of alpha)."""
    rng = np.random.default_rng(3)
    a = rng.exponential(1.0, 10) + 0.6
    b = rng.exponential(1.0, 20)
    r = compare_two(a, b, paired=False, parametric=False)
    exact = stats.mannwhitneyu(a, b, method="exact").pvalue
    assert r.pvalue == pytest.approx(exact, rel=1e-12)
    assert r.pvalue != pytest.approx(stats.mannwhitneyu(a, b).pvalue, rel=1e-3)


def test_one_non_normal_group_is_enough():
    rng = np.random.default_rng(11)
    a, b = rng.normal(5, 1, 25), rng.exponential(2, 20) ** 2
    r = compare_two(a, b, paired=False)
    assert r.test == "Mann-Whitney U"
    assert r.reason.startswith("group b does not look normal (Shapiro-Wilk p = 0.51 and ")


def test_a_rank_test_that_cannot_reach_alpha_is_not_chosen():
    """An exact Wilcoxon p of n pairs is at least 2 / 2**n: with 5 pairs every seed improving by at least
    1.0 was "not significant" (Wilcoxon, because Shapiro-Wilk flagged the one larger gain) while noisier
    normal-looking pairs were "significant" (t). Below the floor the t-test is used, and says why."""
    r = compare_two([1.0, 2.0], [0.5, 1.0], paired=True)
    assert r.test == "paired t-test" and r.normality_pvalue is None
    assert r.reason == ("the paired differences: only 2 values (Shapiro-Wilk needs 3), but with 2 pairs an "
                        "exact Wilcoxon p cannot go below 0.5, so it could never reach alpha 0.05: a paired "
                        "t-test")
    assert r.pvalue == pytest.approx(stats.ttest_rel([1.0, 2.0], [0.5, 1.0]).pvalue)
    gains = np.array([1.0, 1.01, 1.02, 1.03, 2.0])
    five = compare_two(10 + gains, np.full(5, 10.0), paired=True)
    assert five.test == "paired t-test" and five.normality_pvalue < 0.05
    assert five.reason.startswith("paired differences do not look normal (Shapiro-Wilk p = ")
    assert five.reason.endswith("but with 5 pairs an exact Wilcoxon p cannot go below 0.0625, so it could "
                                "never reach alpha 0.05: a paired t-test")
    assert five.pvalue == pytest.approx(stats.ttest_rel(10 + gains, np.full(5, 10.0)).pvalue)
    assert five.pvalue < 0.01
    # six pairs can reach 0.03125: the rule's rank test again
    six = compare_two(10 + np.append(gains, 1.04), np.full(6, 10.0), paired=True)
    assert six.test == "Wilcoxon signed-rank"
    # ... but not when one of the six is a zero difference: Wilcoxon drops it and ranks five
    tied_gains = np.array([0.0, 1.0, 1.01, 1.02, 1.03, 5.0])
    tied = compare_two(10 + tied_gains, np.full(6, 10.0), paired=True)
    assert tied.test == "paired t-test" and tied.normality_pvalue < 0.05
    assert tied.reason.endswith("but with 5 pairs (1 zero difference(s) dropped) an exact Wilcoxon p "
                                "cannot go below 0.0625, so it could never reach alpha 0.05: a paired t-test")
    assert stats.wilcoxon(tied_gains).pvalue == pytest.approx(0.0625)
    # three against three: Mann-Whitney cannot go below 0.1
    u = compare_two([1.0, 1.1, 5.0], [2.0, 2.1, 2.2], paired=False)
    assert u.test == "Welch t-test"
    assert "3 and 3 values an exact Mann-Whitney p cannot go below 0.1" in u.reason
    assert compare_two([1.0, 1.1, 5.0, 1.2], [2.0, 2.1, 2.2, 2.3], paired=False).test == "Mann-Whitney U"


def _smallest_p_of_any_split(a, b):
    """The smallest two-sided Mann-Whitney p over every split of the pooled values into ``len(a)`` and
    ``len(b)``, each computed by scipy as the tool computes it for such values (tied: every split
    enumerated; distinct: the exact distribution)."""
    from itertools import combinations

    pooled = np.array(a + b, dtype=float)
    tied = np.unique(pooled).size < pooled.size
    method = stats.PermutationMethod(n_resamples=np.inf) if tied else "exact"
    return min(stats.mannwhitneyu(pooled[list(ix)], np.delete(pooled, list(ix)), alternative="two-sided",
                                  method=method).pvalue
               for ix in combinations(range(pooled.size), len(a)))


@pytest.mark.parametrize(("a", "b", "floor"), [
    ([1.0, 1.0, 1.0, 2.0], [2.0, 3.0, 3.0, 3.0], 4 / 70),  # counting values said 2/70
    ([0.5, 0.5, 0.5, 0.6, 0.6], [0.6, 0.7, 0.7, 0.7, 0.7], 6 / 252),  # counting said 2/252
    ([1.0, 1.0], [1.0, 1.0, 2.0, 3.0], 2 / 15),  # only the largest values in a are that extreme
    ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], 2 / 70),  # no ties: 2 / C(8, 4)
    ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], 0.1),
])
def test_the_mann_whitney_floor_is_the_smallest_p_any_split_of_these_values_gives(a, b, floor):
    """The rule "no rank test where it cannot reach alpha" needs the smallest p the test could give
    these values. It was 2 / C(n_a + n_b, n_a), which only distinct values attain: with ties several splits
    share the extreme rank sum, and 1, 1, 1, 2 against 2, 3, 3, 3 cannot go below 0.057, yet the floor said
    0.029. Checked against every split of the pooled values, whichever level holds which value."""
    got = rank_floor(a, b, paired=False)
    assert got == pytest.approx(_smallest_p_of_any_split(a, b), rel=1e-12)
    assert got == pytest.approx(floor, rel=1e-12)
    assert got == pytest.approx(rank_floor(b, a, paired=False), rel=1e-12)


@pytest.mark.parametrize("d", [
    [0.0, 1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.0, 2.0, 3.0, 3.0], [0.0, 0.0, -1.0, 2.0],
])
def test_the_wilcoxon_floor_counts_pairs_that_differ_and_ties_do_not_raise_it(d):
    """Paired, the floor is 2 / 2**n over the n non-zero differences: with tied or zero differences scipy's
    Wilcoxon (up to 13 pairs) enumerates every sign pattern, of which all-positive and all-negative
    are still the only most extreme ones. Checked against every sign pattern of these differences."""
    from itertools import product

    d = np.array(d)
    ps = [stats.wilcoxon(np.array(signs) * d).pvalue for signs in product((1, -1), repeat=d.size)]
    floor = rank_floor(d, np.zeros_like(d), paired=True)
    assert floor == pytest.approx(min(ps), rel=1e-12)
    assert floor == 2 / 2 ** np.count_nonzero(d)


def test_tied_values_that_keep_mann_whitney_from_alpha_choose_welch():
    """1, 1, 1, 2 against 2, 3, 3, 3 (neither looks normal): the floor counted from the sizes, 0.029, let the
    rule choose Mann-Whitney, which gave p = 0.057, "not significant", though no split of these values can
    give less; by the rule's own terms that is the t-test's case (Welch p = 0.0054). Where ties leave the
    floor below alpha the rank test stays: 0.5 x3, 0.6 x2 against 0.6, 0.7 x4 reaches 0.024."""
    a, b = [1.0, 1.0, 1.0, 2.0], [2.0, 3.0, 3.0, 3.0]
    r = compare_two(a, b, paired=False)
    assert r.test == "Welch t-test"
    assert r.floor == pytest.approx(4 / 70, rel=1e-12)
    assert r.reason == ("neither group looks normal (Shapiro-Wilk p = 0.0012 and 0.0012 < 0.05), but with "
                        "4 and 4 values (some tied) an exact Mann-Whitney p cannot go below 0.0571, so it "
                        "could never reach alpha 0.05: a Welch t-test")
    assert r.pvalue == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    assert round(r.pvalue, 4) == 0.0054
    rank = compare_two(a, b, paired=False, parametric=False)  # what the rule chose before
    assert rank.test == "Mann-Whitney U" and rank.pvalue == pytest.approx(r.floor, rel=1e-12)
    lower = compare_two([0.5, 0.5, 0.5, 0.6, 0.6], [0.6, 0.7, 0.7, 0.7, 0.7], paired=False)
    assert lower.test == "Mann-Whitney U"
    assert lower.floor == pytest.approx(6 / 252, rel=1e-12) and lower.pvalue == pytest.approx(lower.floor)


def test_identical_levels():
    r = compare_two([0.7, 0.8, 0.9], [0.7, 0.8, 0.9], paired=True)
    assert r.test == "Wilcoxon signed-rank" and r.pvalue == 1.0
    assert r.reason == ("every pair differs by the same amount (no spread), so no t statistic exists: a "
                        "Wilcoxon signed-rank test")  # it said "Shapiro-Wilk undefined", or "only 2 values"
    assert math.isnan(r.effect_sizes[0].value) and r.power_n is None


# ------------------------------------------------------------------------------------ effects and output


def test_effect_sizes_and_power():
    a, b = _paired_normal()
    r = compare_two(a, b, paired=True, seed=1, n_resamples=500)
    g, rb = r.effect_sizes
    assert (g.name, rb.name) == ("hedges_g", "rank_biserial")
    assert g.value == pytest.approx(
        (1 - 3 / 115) * stats.ttest_rel(a, b).statistic / math.sqrt(30), rel=1e-12
    )
    assert r.power_n == repeats_for_power(g.value, paired=True) == 5  # g = 1.79
    u = compare_two(a, b, paired=False, n_resamples=500)
    assert [e.name for e in u.effect_sizes] == ["hedges_g", "cliffs_delta"]
    assert r.mean_difference == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)


def test_deterministic_and_json_ready():
    a, b = _paired_skewed()
    r1 = compare_two(a, b, paired=True, seed=4, n_resamples=300)
    assert r1 == compare_two(a, b, paired=True, seed=4, n_resamples=300)
    out = json.loads(json.dumps(r1.to_dict(), allow_nan=False))
    assert out["test"] == "Wilcoxon signed-rank" and out["df"] is None
    assert out["effect_sizes"][1]["name"] == "rank_biserial"


def test_bad_input():
    with pytest.raises(ConfigError, match="equal lengths"):
        compare_two([1.0, 2.0, 3.0], [1.0, 2.0], paired=True)
    with pytest.raises(ConfigError, match="at least 2"):
        compare_two([1.0], [1.0, 2.0], paired=False)
    with pytest.raises(ConfigError, match="NaN"):
        compare_two([1.0, float("nan")], [1.0, 2.0], paired=False)
    with pytest.raises(ConfigError, match="parametric"):
        compare_two([1.0, 2.0], [1.0, 2.0], paired=True, parametric="yes")


def test_a_wilcoxon_p_never_goes_below_its_floor_when_many_pairs_tie_at_zero():
    """14 pairs, 9 of them equal and 5 agreeing: scipy approximated (zeros among more than 13 pairs) and
    gave p = 0.043, below the 2 / 2**5 = 0.0625 that any arrangement of 5 signs allows, while the reason
    said it could not go below 0.0625. The test now runs on the pairs that differ, exactly."""
    a = np.arange(14, dtype=float)
    b = a.copy()
    b[9:] -= [1.0, 2.0, 3.0, 4.0, 5.0]
    r = compare_two(a, b, paired=True, parametric=False)
    assert r.test == "Wilcoxon signed-rank" and r.floor == 0.0625
    assert r.pvalue == pytest.approx(0.0625, rel=1e-12) and r.pvalue >= r.floor
    six = np.arange(15, dtype=float)
    r6 = compare_two(six, six - np.r_[np.zeros(9), np.arange(1.0, 7.0)], paired=True, parametric=False)
    assert r6.pvalue == pytest.approx(2 / 2**6, rel=1e-12) == r6.floor


# the reviewer's repro: six differences of "0.1" computed from floats, one of 1.6 and one of -0.1
TIES_BASE = [5.0, 5.2, 4.8, 4.9, 5.1, 5.3, 4.0, 5.1]
TIES_NEW = [5.1, 5.3, 4.9, 5.0, 5.2, 5.4, 5.6, 5.0]


def test_differences_equal_in_exact_arithmetic_tie_in_the_wilcoxon_test() -> None:
    """5.1 - 5.0 and 5.4 - 5.3 differ in their last bits, and ranked apart they gave p = 0.039 where the
    same data times 10 (integers, the ties kept) give the exact 0.0625: the unit of a metric must not
    decide significance. Both scalings now rank as the integer differences do."""
    tenfold = compare_two([10 * v for v in TIES_NEW], [10 * v for v in TIES_BASE], paired=True)
    r = compare_two(TIES_NEW, TIES_BASE, paired=True)
    integers = np.round(10 * np.array(TIES_NEW)) - np.round(10 * np.array(TIES_BASE))
    assert len(set((np.array(TIES_NEW) - np.array(TIES_BASE)).tolist())) > 3  # the noise is there
    assert r.test == tenfold.test == "Wilcoxon signed-rank"
    assert r.pvalue == tenfold.pvalue == stats.wilcoxon(integers).pvalue
    assert r.statistic == tenfold.statistic == stats.wilcoxon(integers).statistic
    assert r.effect_sizes[1].value == tenfold.effect_sizes[1].value


def test_a_difference_of_rounding_noise_does_not_count_toward_the_wilcoxon_floor() -> None:
    """0.3 - (0.1 + 0.2) is 5.5e-17, no difference: the floor counts the pairs that do differ."""
    a, b = [0.3, 1.0, 2.0, 3.0, 4.0], [0.1 + 0.2, 0.5, 1.0, 1.5, 2.0]
    assert rank_floor(a, b, paired=True) == 2.0 / 2**4
    assert compare_two(a, b, paired=True, parametric=False).ranked == 4


def test_values_equal_in_exact_arithmetic_tie_in_the_mann_whitney_test() -> None:
    """Accuracy losses are multiples of 100/119, and 300/119 - 200/119 != 100/119: the losses of one level
    tie those of the other in exact arithmetic, and the exact (tied) Mann-Whitney p must be that of the
    image counts, not one where the last bits order the ties."""
    counts_a, counts_b = [1, 1, 2, 2, 3], [1, 2, 2, 3, 3]
    a = [(k + 3) * 100 / 119 - 3 * 100 / 119 for k in counts_a]  # computed as differences of accuracies
    b = [k * 100 / 119 for k in counts_b]
    assert any(v != w and math.isclose(v, w) for v in a for w in b)  # the noise is there
    r = compare_two(a, b, paired=False, parametric=False)
    exact = stats.mannwhitneyu(counts_a, counts_b, method=stats.PermutationMethod(n_resamples=np.inf))
    assert (r.statistic, r.pvalue) == (exact.statistic, exact.pvalue)
    assert r.effect_sizes[1].value == compare_two(counts_a, counts_b, paired=False).effect_sizes[1].value
