"""compare_many(): the omnibus choice, agreement with scipy/statsmodels/scikit-posthocs, a worked example."""

from __future__ import annotations

import json
import math
import warnings
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy import stats
from statsmodels.stats.anova import AnovaRM
from statsmodels.stats.multitest import multipletests

from deltatune.errors import ConfigError
from deltatune.stats import compare_many
from tests.stats.data import ROUNDING_METHODS, ROUNDING_TIMES


def _rounding_groups() -> dict[str, np.ndarray]:
    return {name: ROUNDING_TIMES[:, i] for i, name in enumerate(ROUNDING_METHODS)}


def test_rounding_times_friedman():
    """Hollander & Wolfe (1973, p. 140ff), R's ``friedman.test(RoundingTimes)``:
    Friedman chi-squared = 11.143, df = 2, p-value = 0.003805."""
    r = compare_many(_rounding_groups(), paired=True, higher_is_better=False)
    # the residuals fail Shapiro-Wilk (p = 0.014), so the rule itself picks Friedman
    assert r.test == "Friedman"
    assert r.reason.startswith(
        "the residuals of the block + level model do not look normal (Shapiro-Wilk p = 0.014"
    )
    assert round(r.statistic, 3) == 11.143
    assert r.df == 2
    assert round(r.pvalue, 6) == 0.003805
    assert (r.n, r.k, r.paired) == (22, 3, True)
    # rank sums 53, 47, 32 over 22 players (rank 1 = fastest)
    np.testing.assert_allclose(r.mean_ranks.to_numpy() * 22, [53, 47, 32], atol=1e-9)
    assert list(r.mean_ranks.index) == list(ROUNDING_METHODS)


def test_rounding_times_nemenyi_equals_scikit_posthocs():
    r = compare_many(_rounding_groups(), paired=True)
    ref = sp.posthoc_nemenyi_friedman(ROUNDING_TIMES)
    assert r.posthoc_test == "Nemenyi"
    np.testing.assert_allclose(r.posthoc.to_numpy(), ref.to_numpy(), rtol=1e-12)
    assert list(r.posthoc.index) == list(r.posthoc.columns) == list(ROUNDING_METHODS)
    assert round(r.posthoc.loc["round out", "wide angle"], 4) == 0.0044
    assert round(r.posthoc.loc["round out", "narrow angle"], 4) == 0.6374


def test_mean_rank_direction_follows_higher_is_better():
    low = compare_many(_rounding_groups(), paired=True, higher_is_better=False).mean_ranks
    high = compare_many(_rounding_groups(), paired=True, higher_is_better=True).mean_ranks
    np.testing.assert_allclose(low + high, 4.0)  # rank r becomes k + 1 - r
    assert high.idxmin() == "round out" and low.idxmin() == "wide angle"


def _paired_normal_groups() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    block = rng.normal(0, 2, 12)
    return {
        name: block + shift + rng.normal(0, 0.5, 12)
        for name, shift in zip("abc", (0.0, 0.4, 1.0), strict=True)
    }


def test_paired_normal_chooses_rm_anova_with_holm_paired_t():
    groups = _paired_normal_groups()
    r = compare_many(groups, paired=True)
    long = pd.DataFrame(
        [(v, i, name) for name, vals in groups.items() for i, v in enumerate(vals)],
        columns=["y", "s", "level"],
    )
    row = AnovaRM(long, depvar="y", subject="s", within=["level"]).fit().anova_table.iloc[0]
    assert r.test == "repeated-measures ANOVA"
    assert r.reason.startswith("the residuals of the block + level model look normal (Shapiro-Wilk p = 0.92")
    assert r.statistic == pytest.approx(row["F Value"], rel=1e-12)
    # Greenhouse-Geisser: epsilon by the textbook formula (double-centred covariance of the levels)
    y = np.column_stack(list(groups.values()))
    c = np.eye(3) - 1 / 3
    cov = c @ np.cov(y, rowvar=False) @ c
    eps = np.trace(cov) ** 2 / (2 * np.trace(cov @ cov))
    assert (r.df, r.df_denom) == pytest.approx((2.0 * eps, 22.0 * eps), rel=1e-12)
    assert r.pvalue == pytest.approx(stats.f.sf(row["F Value"], 2 * eps, 22 * eps), rel=1e-12)
    assert r.pvalue >= row["Pr > F"] and r.reason.endswith(f"(Greenhouse-Geisser corrected for sphericity: "
                                                          f"epsilon {eps:.2f})")
    raw = [stats.ttest_rel(groups[x], groups[y]).pvalue for x, y in combinations("abc", 2)]
    adj = multipletests(raw, method="holm")[1]
    assert r.posthoc_test == "paired t-tests (Holm)"
    assert [r.posthoc.loc["a", "b"], r.posthoc.loc["a", "c"], r.posthoc.loc["b", "c"]] == pytest.approx(adj)
    assert r.posthoc.loc["c", "a"] == r.posthoc.loc["a", "c"] and r.posthoc.loc["b", "b"] == 1.0


def test_unpaired_normal_chooses_welch_anova():
    rng = np.random.default_rng(4)
    groups = {
        n: rng.normal(m, sd, 15) for n, m, sd in zip("abc", (0.0, 0.5, 1.5), (1.0, 2.0, 1.0), strict=True)
    }
    r = compare_many(groups, paired=False)
    ref = stats.f_oneway(*groups.values(), equal_var=False)
    assert r.test == "Welch's one-way ANOVA"
    assert r.reason == (
        "all levels look normal (Shapiro-Wilk smallest p = 0.16 of 3 >= 0.05), so Welch's one-way ANOVA"
    )
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    long = pd.DataFrame({"v": np.concatenate(list(groups.values())), "g": np.repeat(list("abc"), 15)})
    post = sp.posthoc_ttest(long, val_col="v", group_col="g", equal_var=False, p_adjust="holm")
    np.testing.assert_allclose(
        r.posthoc.to_numpy(), post.loc[list("abc"), list("abc")].to_numpy(), rtol=1e-12
    )
    assert r.posthoc_test == "Welch t-tests (Holm)" and r.n == 45


def test_unpaired_skewed_chooses_kruskal_wallis_with_dunn():
    rng = np.random.default_rng(5)
    groups = {n: rng.exponential(scale, 15) for n, scale in zip("abc", (1.0, 2.0, 4.0), strict=True)}
    r = compare_many(groups, paired=False, higher_is_better=False)
    ref = stats.kruskal(*groups.values())
    assert r.test == "Kruskal-Wallis"
    assert "smallest p = 0.018 of 3 < 0.05" in r.reason
    assert (r.statistic, r.pvalue, r.df) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue), 2.0)
    long = pd.DataFrame({"v": np.concatenate(list(groups.values())), "g": np.repeat(list("abc"), 15)})
    post = sp.posthoc_dunn(long, val_col="v", group_col="g", p_adjust="holm")
    np.testing.assert_allclose(
        r.posthoc.to_numpy(), post.loc[list("abc"), list("abc")].to_numpy(), rtol=1e-12
    )
    pooled = stats.rankdata(np.concatenate(list(groups.values())))
    np.testing.assert_allclose(r.mean_ranks.to_numpy(), pooled.reshape(3, 15).mean(axis=1))


def test_parametric_override():
    r = compare_many(_rounding_groups(), paired=True, parametric=True)
    assert r.test == "repeated-measures ANOVA"
    assert r.reason.startswith("a repeated-measures ANOVA was requested (Shapiro-Wilk p = 0.014) "
                               "(Greenhouse-")


def test_to_dict_is_json_ready():
    out = json.loads(json.dumps(compare_many(_rounding_groups(), paired=True).to_dict(), allow_nan=False))
    assert out["posthoc"]["round out"]["round out"] == 1.0
    assert out["df_denom"] is None and round(out["means"]["wide angle"], 4) == 5.4591


@pytest.mark.parametrize(
    ("groups", "paired", "message"),
    [
        ({"a": [1.0, 2.0], "b": [2.0, 3.0]}, True, "at least 3 levels"),
        ({"a": [1.0, 2.0], "b": [2.0, 3.0], "c": [1.0, 2.0, 3.0]}, True, "equal lengths"),
        ({"a": [1.0, 2.0], "b": [2.0, 3.0], "c": [1.0]}, False, "at least 2"),
        ({1: [1.0, 2.0], "1": [2.0, 3.0], "c": [1.0, 2.0]}, False, "distinct"),
        ([[1.0, 2.0]], False, "mapping"),
    ],
)
def test_bad_input(groups, paired, message):
    with pytest.raises(ConfigError, match=message):
        compare_many(groups, paired=paired)


def test_a_post_hoc_pair_with_no_spread_takes_the_rank_test_not_an_infinite_t():
    """Two deterministic strategies repeated over seeds differ by the same amount in every seed: a paired
    t statistic is undefined there (scipy: t = -inf, p = 0, "significant" from three copies of one
    number). The pair takes the exact Wilcoxon signed-rank p, as compare_two does; the other pairs keep
    their t-tests, all Holm-adjusted together, and the test's name says which pairs."""
    groups = {"tpe": [1.05, 1.17, 1.13], "nsga2": [1.08, 1.08, 1.08], "greedy": [1.09, 1.09, 1.09]}
    r = compare_many(groups, paired=True, parametric=True)
    raw = [stats.ttest_rel(groups["tpe"], groups["nsga2"]).pvalue,
           stats.ttest_rel(groups["tpe"], groups["greedy"]).pvalue,
           stats.wilcoxon(groups["nsga2"], groups["greedy"]).pvalue]
    with pytest.warns(RuntimeWarning, match="catastrophic cancellation"):  # scipy's own doubt about it
        infinite_t = stats.ttest_rel(groups["nsga2"], groups["greedy"]).pvalue
    assert raw[2] == pytest.approx(0.25) and infinite_t == 0.0
    adj = multipletests(raw, method="holm")[1]
    got = [r.posthoc.loc["tpe", "nsga2"], r.posthoc.loc["tpe", "greedy"], r.posthoc.loc["nsga2", "greedy"]]
    assert got == pytest.approx(adj, rel=1e-12)
    assert r.posthoc_test == (
        "paired t-tests (Holm; Wilcoxon signed-rank for 1 pair whose differences are all equal)")
    # identical levels: p = 1; unpaired constant levels take Mann-Whitney U
    same = compare_many({"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0], "c": [0.2, 0.9, 0.4]}, paired=True,
                        parametric=True)
    assert same.posthoc.loc["a", "b"] == 1.0
    un = compare_many({"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0], "c": [0.2, 0.9, 0.4]}, paired=False,
                      parametric=True)
    mw = 0.1  # exact: 2 of the 20 ways to split six values are as extreme (scipy's approximation: 0.047)
    with warnings.catch_warnings():  # scipy doubts the variance of a constant sample (it is 0)
        warnings.simplefilter("ignore", RuntimeWarning)
        welch = [stats.ttest_ind([1.0] * 3, [0.2, 0.9, 0.4], equal_var=False).pvalue,
                 stats.ttest_ind([2.0] * 3, [0.2, 0.9, 0.4], equal_var=False).pvalue]
    assert un.posthoc.loc["a", "b"] == pytest.approx(multipletests([mw, *welch], method="holm")[1][0])
    assert un.posthoc_test == "Welch t-tests (Holm; Mann-Whitney U for 1 pair of two constant levels)"


def test_levels_equal_up_to_rounding_are_equal_not_a_ranked_difference():
    """0.1 + 0.2 against 0.3 in six blocks: every difference is 5.5e-17, which the exact Wilcoxon test
    ranked as six positive differences (raw p 0.031). Rounding noise is no difference: p = 1, here and
    in compare_two."""
    from deltatune.stats import compare_two

    a, b = [0.1 + 0.2] * 6, [0.3] * 6
    assert a[0] != b[0]
    assert compare_two(a, b, paired=True).pvalue == 1.0
    r = compare_many({"a": a, "b": b, "c": [0.1, 0.5, 0.2, 0.9, 0.3, 0.4]}, paired=True, parametric=True)
    assert r.posthoc.loc["a", "b"] == 1.0


def test_values_equal_in_exact_arithmetic_tie_in_the_friedman_test_and_mean_ranks() -> None:
    """Accuracy losses are multiples of 100/119 computed as differences of accuracies, and
    300/119 - 200/119 != 100/119: within a block, losses equal in exact arithmetic must tie in the
    Friedman test, its Nemenyi post-hoc and the mean ranks, as the image counts do (here: the same
    numbers as the counts, whatever the unit)."""
    counts = {"a": [1, 2, 1, 3, 2, 1], "b": [1, 2, 2, 3, 1, 1], "c": [2, 3, 2, 4, 3, 2]}
    losses = {k: [(n + 5) * 100 / 119 - 5 * 100 / 119 if k == "a" else n * 100 / 119 for n in v]
              for k, v in counts.items()}
    assert any(x != y and math.isclose(x, y) for x, y in zip(losses["a"], losses["b"], strict=True))
    r = compare_many(losses, paired=True, parametric=False)
    as_counts = {k: [float(n) for n in v] for k, v in counts.items()}
    ref = compare_many(as_counts, paired=True, parametric=False)
    assert (r.statistic, r.pvalue) == (ref.statistic, ref.pvalue)
    assert r.mean_ranks.tolist() == ref.mean_ranks.tolist()
    pd.testing.assert_frame_equal(r.posthoc, ref.posthoc)
    un = compare_many(losses, paired=False, parametric=False)
    un_ref = compare_many(as_counts, paired=False, parametric=False)
    assert (un.statistic, un.pvalue) == (un_ref.statistic, un_ref.pvalue)
    pd.testing.assert_frame_equal(un.posthoc, un_ref.posthoc)
