"""analyse(): blocks, test choice plumbing, Holm family, equivalence, ASO orientation, missing data."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import stats

from deltatune.errors import ConfigError
from deltatune.report.analysis import analyse
from deltatune.report.wording import summary
from deltatune.stats import holm
from tests.report.conftest import ASO_ITERATIONS
from tests.report.synthetic import make_results

#: Slow (~1.5 min on 2 cores): nearly every test runs the full analysis (ASO, bootstrap, Holm) of a study.
pytestmark = pytest.mark.slow


def _comparison(analysis, metric, factor):
    return next(
        c for m in analysis.metrics if m.spec.name == metric for c in m.comparisons if c.factor == factor
    )


def test_clear_effect_is_significant_after_holm_and_null_factor_is_not(two_by_two) -> None:
    _, a = two_by_two
    tpe = _comparison(a, "speedup", "strategy").pairwise[0]
    assert (tpe.level, tpe.baseline) == ("tpe", "greedy")
    assert tpe.significant and tpe.p_holm < 0.05 and tpe.better is True
    assert tpe.diff == pytest.approx(1.0, abs=0.15)
    assert tpe.diff_ci_low < tpe.diff < tpe.diff_ci_high
    assert tpe.test.test in {"paired t-test", "Wilcoxon signed-rank"} and tpe.test.paired
    assert [e.name for e in tpe.test.effect_sizes] == ["hedges_g", "rank_biserial"]
    assert tpe.test.effect_sizes[0].magnitude == "large"
    assert "significant after Holm correction" in tpe.summary and "Hedges' g" in tpe.summary
    for metric in ("speedup", "loss"):
        space = _comparison(a, metric, "space").pairwise[0]
        assert (space.level, space.baseline) == ("layer", "group")
        assert not space.significant and space.p_holm >= 0.05
        assert "not significant after correction" in space.summary


def test_primary_comparison_comes_first_with_its_baseline() -> None:
    r = make_results(primary=("strategy", "tpe", "loss"), margin=None, loss_margin=None)
    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    assert [m.spec.name for m in a.metrics] == ["loss", "speedup"]
    first = a.metrics[0].comparisons[0]
    assert first.primary and first.factor == "strategy" and first.baseline == "tpe"
    assert a.primary is first
    assert [p.level for p in first.pairwise] == ["greedy"]
    # the primary factor keeps its baseline for the other metrics; other factors use their first level
    assert _comparison(a, "speedup", "strategy").baseline == "tpe"
    assert not _comparison(a, "speedup", "strategy").primary
    assert _comparison(a, "loss", "space").baseline == "group"


def test_paired_blocks_are_unit_plus_other_factors_and_only_complete_ones_are_kept() -> None:
    """A block is a unit at one setting of the other factors; only blocks with every level are kept, and
    each unit's blocks are averaged into one pair: the pairs are the seeds, not the seed x other-factor
    blocks (which share the seed and would count one seed's reaction to a level several times)."""
    # 3 strategies x 2 spaces x 5 seeds, each run scored on 2 clips (an observation factor); no margins:
    # equivalence is tested elsewhere and only slows this test down
    study = {
        "strategies": ("greedy", "tpe", "nsga2"),
        "clips": ("a", "b"),
        "margin": None,
        "loss_margin": None,
    }
    r = make_results(**study)
    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    strategy = _comparison(a, "speedup", "strategy")
    assert (strategy.n_blocks, strategy.n_incomplete) == (5, 0)  # 5 seeds, each over space x clip
    assert all(p.n_a == p.n_b == p.test.n == 5 for p in strategy.pairwise)
    assert strategy.omnibus is not None and strategy.omnibus.n == 5 and strategy.omnibus.k == 3
    assert any("one pair per unit (5)" in n for n in strategy.notes)
    assert _comparison(a, "speedup", "space").n_blocks == 5
    assert _comparison(a, "speedup", "scored_on").n_blocks == 5
    assert a.runs.design_factors == ("strategy", "space") and a.runs.completed == 30
    # the pairs are each seed's mean over its blocks: the paired t of those means, computed here
    obs = r.observations[r.observations["metric"] == "speedup"]
    seed_means = obs.groupby(["unit", "strategy"])["value"].mean().unstack("strategy")
    tpe = next(p for p in strategy.pairwise if p.level == "tpe")
    diff = seed_means["tpe"] - seed_means["greedy"]
    assert tpe.diff == pytest.approx(diff.mean())
    if tpe.test.test == "paired t-test":
        t = stats.ttest_rel(seed_means["tpe"], seed_means["greedy"])
        assert tpe.test.pvalue == pytest.approx(t.pvalue)

    # drop one observation: its block loses a level and is left out; its seed keeps its other blocks
    def keep(row: dict) -> bool:
        return not (
            row["strategy"] == "tpe"
            and row["space"] == "group"
            and row["unit"] == "3"
            and row.get("scored_on") == "a"
            and row["metric"] == "speedup"
        )

    r = make_results(**study, keep=keep)
    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    strategy = _comparison(a, "speedup", "strategy")
    assert (strategy.n_blocks, strategy.n_incomplete) == (5, 1)
    assert all(p.n_a == 5 for p in strategy.pairwise)
    obs = r.observations[r.observations["metric"] == "speedup"]
    three = obs[(obs["unit"] == "3") & ~((obs["space"] == "group") & (obs["scored_on"] == "a"))]
    tpe = next(p for p in strategy.pairwise if p.level == "tpe")
    means = obs[obs["unit"] != "3"].groupby(["unit", "strategy"])["value"].mean().unstack("strategy")
    of_three = three.groupby("strategy")["value"].mean()
    diffs = [*(means["tpe"] - means["greedy"]), of_three["tpe"] - of_three["greedy"]]
    assert tpe.diff == pytest.approx(np.mean(diffs))  # seed 3 over its 3 complete blocks only
    assert _comparison(a, "speedup", "space").n_blocks == 5
    assert _comparison(a, "loss", "strategy").n_blocks == 5  # other metrics keep every block


def test_a_level_where_a_metric_was_never_observed_is_left_out_not_emptying_every_block() -> None:
    """Accuracy on video where nothing can be scored is NaN for every run (an ablation scoring carphone
    with hrnet): the other levels are still paired and tested, and the report says which level is out."""
    study = {"clips": ("a", "b", "c"), "margin": None, "loss_margin": None}

    def keep(row: dict) -> bool:
        return not (row.get("scored_on") == "c" and row["metric"] == "loss")

    a = analyse(make_results(**study, keep=keep), aso_iterations=ASO_ITERATIONS)
    loss = _comparison(a, "loss", "scored_on")
    assert (loss.n_blocks, loss.n_incomplete) == (5, 0)  # 5 seeds, each over strategy x space
    tested = {p.level: p for p in loss.pairwise}
    assert tested["b"].n_a == 5 and math.isfinite(tested["b"].p_raw)
    assert tested["c"].n_a == 0 and math.isnan(tested["c"].p_raw)
    assert loss.omnibus is None  # two levels left
    assert any("no loss observed on c" in n for n in loss.notes)
    speed = _comparison(a, "speedup", "scored_on")  # observed everywhere: all three levels
    assert speed.omnibus is not None and speed.omnibus.k == 3
    assert not any("observed on" in n for n in speed.notes)


def test_metric_counts_its_observations_without_a_value() -> None:
    """A search run with no setting within its budget records NaN tuning and held-out metrics: the
    metric's analysis says how many of its observations have no value, other metrics say none."""
    r = make_results(margin=None, loss_margin=None)
    obs = r.observations.copy()
    gone = (obs["metric"] == "loss") & (obs["strategy"] == "tpe") & obs["unit"].isin(["0", "1", "2"])
    obs.loc[gone, "value"] = math.nan
    a = analyse(dataclasses.replace(r, observations=obs), aso_iterations=ASO_ITERATIONS)
    by_name = {m.spec.name: m for m in a.metrics}
    assert (by_name["loss"].n_missing, by_name["loss"].n_observations) == (6, 20)  # 3 seeds x 2 spaces
    assert (by_name["speedup"].n_missing, by_name["speedup"].n_observations) == (0, 20)
    tpe = next(lv for lv in by_name["loss"].levels if (lv.factor, lv.level) == ("strategy", "tpe"))
    assert tpe.description.n == 2  # seeds 3 and 4, each the mean of its 2 spaces
    assert _comparison(a, "loss", "strategy").n_blocks == 2  # only seeds 3 and 4 have both levels


def test_unpaired_uses_all_values_per_level() -> None:
    a = analyse(make_results(pairing="none"), aso_iterations=ASO_ITERATIONS)
    c = _comparison(a, "speedup", "strategy")
    assert not c.paired and c.n_blocks is None
    p = c.pairwise[0]
    assert (p.n_a, p.n_b, p.test.n) == (10, 10, 20)
    assert p.test.test in {"Welch t-test", "Mann-Whitney U"}
    assert [e.name for e in p.test.effect_sizes] == ["hedges_g", "cliffs_delta"]
    assert p.bayes is None and any("paired" in n for n in p.notes)  # Bayesian signed-rank needs pairs
    assert p.equivalence is not None and not p.equivalence.paired


def test_equivalence_verdict_flips_with_the_margin() -> None:
    tiny = {"greedy": 0.0, "tpe": 0.02}
    one = {"effects": tiny, "noise": 0.01, "spaces": ("group",), "loss_margin": None}
    wide = analyse(make_results(**one, margin=0.5), aso_iterations=ASO_ITERATIONS)
    narrow = analyse(make_results(**one, margin=0.005), aso_iterations=ASO_ITERATIONS)
    pw, pn = (_comparison(x, "speedup", "strategy").pairwise[0] for x in (wide, narrow))
    assert pw.equivalence.equivalent and pw.equivalence_verdict.startswith("equivalent within ±0.5")
    assert not pn.equivalence.equivalent and pn.equivalence_verdict.startswith(
        "not shown equivalent within ±0.005"
    )
    assert pw.bayes.p_rope > 0.9 and pn.bayes.p_rope < 0.1
    assert pw.bayes.p_left + pw.bayes.p_rope + pw.bayes.p_right == pytest.approx(1.0)
    # a metric without margin has no equivalence at all
    none = analyse(make_results(spaces=("group",), margin=None), aso_iterations=ASO_ITERATIONS)
    p = _comparison(none, "speedup", "strategy").pairwise[0]
    assert p.equivalence is None and p.bayes is None and p.equivalence_verdict is None


def test_holm_family_is_every_pairwise_comparison(three_by_two) -> None:
    _, a = three_by_two
    pws = a.pairwise
    # 2 metrics x (strategy: 2 vs baseline + space: 1)
    assert len(pws) == 6 == a.family_size == a.n_pairwise
    assert all(p.p_holm >= p.p_raw for p in pws)
    np.testing.assert_allclose([p.p_holm for p in pws], holm([p.p_raw for p in pws]))
    assert all(p.significant == (p.p_holm < a.alpha) for p in pws)


def test_aso_is_oriented_so_that_dominating_means_better(two_by_two) -> None:
    _, a = two_by_two
    speed = _comparison(a, "speedup", "strategy").pairwise[0]  # tpe has the higher speed-up
    loss = _comparison(a, "loss", "strategy").pairwise[0]  # ... and the lower loss (lower is better)
    assert speed.better is True and loss.better is True
    assert speed.aso.a_dominates and speed.aso.eps_min < 0.2
    assert loss.aso.a_dominates and loss.aso.eps_min < 0.5


def test_more_than_two_levels_get_an_omnibus_test_and_comparisons_to_the_baseline(three_by_two) -> None:
    _, a = three_by_two
    c = _comparison(a, "speedup", "strategy")
    assert c.omnibus is not None and c.omnibus.pvalue < 0.05
    assert list(c.omnibus.posthoc.index) == ["greedy", "tpe", "nsga2"]
    assert c.omnibus.mean_ranks.idxmin() == "tpe"  # rank 1 = best
    assert [(p.level, p.baseline) for p in c.pairwise] == [("tpe", "greedy"), ("nsga2", "greedy")]
    assert c.omnibus_summary.startswith(c.omnibus.test) and "Why:" in c.omnibus_summary
    assert _comparison(a, "speedup", "space").omnibus is None  # two levels: no omnibus


def test_power_note_and_summaries(two_by_two) -> None:
    _, a = two_by_two
    for p in a.pairwise:
        assert p.power_note.startswith("power:")
        if p.power_n is not None:  # strategy x space: a pair is a seed, averaged over the other factor
            assert f"about {p.power_n} seeds (pairs) would give" in p.power_note
        assert p.summary.startswith(f"{p.level} vs {p.baseline}: ")
        assert "95 % CI" in p.summary and "Holm p" in p.summary


def test_with_one_factor_a_pair_is_a_unit() -> None:
    """Only with other factors is a paired block a unit at one setting of them; the power note said
    "seeds (pairs)" there too, counting 4 blocks of 2 segments as 4 segments."""
    a = analyse(make_results(spaces=("group",)), aso_iterations=ASO_ITERATIONS)
    noted = [p.power_note for p in a.pairwise if p.power_n is not None]
    assert noted and all(" seeds (pairs) would give" in n and "blocks" not in n for n in noted), noted


def test_one_observation_gives_nan_results_with_a_reason_not_an_exception() -> None:
    # nsga2 ran once (seed 0, space group): unpaired it has 1 value, paired it has no complete block
    def keep(row: dict) -> bool:
        return row["strategy"] != "nsga2" or (row["unit"] == "0" and row["space"] == "group")

    for pairing in ("none", "unit"):
        r = make_results(strategies=("greedy", "tpe", "nsga2"), pairing=pairing, keep=keep)
        a = analyse(r, aso_iterations=ASO_ITERATIONS)
        c = _comparison(a, "speedup", "strategy")
        nsga2 = next(p for p in c.pairwise if p.level == "nsga2")
        assert math.isnan(nsga2.p_raw) and math.isnan(nsga2.p_holm) and not nsga2.significant
        assert "too few" in nsga2.test.reason and nsga2.summary.startswith("nsga2 vs greedy: not tested")
        assert nsga2.aso is None and nsga2.equivalence is None
        assert c.omnibus is None and "too few observations" in c.omnibus_summary
        assert a.family_size == a.n_pairwise - 2  # nsga2 vs greedy, on both metrics
        tpe = next(p for p in c.pairwise if p.level == "tpe")
        assert math.isfinite(tpe.p_raw) and tpe.n_a == (10 if pairing == "none" else 5)
        level = next(s for s in a.metrics[0].levels if s.level == "nsga2")
        assert level.description.n == 1 and math.isnan(level.description.ci_low)
        json.dumps(a.to_dict(), allow_nan=False)
    # paired: the one nsga2 run makes every other block incomplete for the omnibus test; tpe vs greedy
    # keeps every block that has both (it lost them all before)
    assert "complete blocks" in nsga2.test.reason


def test_declared_level_without_data_and_constant_values() -> None:
    def keep(row: dict) -> bool:
        return row["strategy"] != "nsga2"

    r = make_results(
        strategies=("greedy", "tpe", "nsga2"), keep=keep, pairing="none", margin=None, loss_margin=None
    )
    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    empty = next(s for s in a.metrics[0].levels if s.level == "nsga2")
    assert empty.description.n == 0 and math.isnan(empty.description.mean)
    assert a.runs.completed == 20 and a.runs.n_missing == 10
    assert any(m.startswith("strategy / space = nsga2 / group, seed") for m in a.runs.missing)
    # all values equal: the tests are degenerate but the analysis completes
    flat = make_results(effects={"greedy": 0.0, "tpe": 0.0}, noise=0.0, unit_sd=0.0)
    fa = analyse(flat, aso_iterations=ASO_ITERATIONS)
    assert len(fa.pairwise) == 4
    json.dumps(fa.to_dict(), allow_nan=False)
    # the sentences say the effect size is undefined instead of printing "nan"
    spec = next(m.spec for m in fa.metrics if m.spec.name == fa.pairwise[0].metric)
    sentence = summary(fa.pairwise[0], spec, 0.05)
    assert "nan" not in sentence and "Hedges' g_z undefined" in sentence  # paired: g_z


def test_measured_speed_per_run_and_per_level(two_by_two) -> None:
    r, a = two_by_two
    assert len(a.speed_runs) == 20
    run = a.speed_runs[0]
    assert run.n_repeats == 4 and run.ci_low <= run.median <= run.ci_high
    assert run.ci_level == pytest.approx(0.875)  # [min, max] of 4 repeats: 1 - 2 / 2**4
    assert run.levels == {"strategy": "greedy", "space": "group"}
    tpe = next(s for s in a.speed_levels if (s.factor, s.level) == ("strategy", "tpe"))
    assert tpe.description.n == 5 and tpe.description.mean == pytest.approx(3.0, abs=0.05)  # one per seed


def test_to_dict_is_json_and_provenance_is_summarized(two_by_two) -> None:
    _, a = two_by_two
    d = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert d["family_size"] == 4 and d["metrics"][0]["spec"]["name"] == "speedup"
    assert d["metrics"][0]["comparisons"][0]["pairwise"][0]["test"]["test"] == a.pairwise[0].test.test
    assert a.provenance.git_revisions == {"abc1234": 20}
    assert a.provenance.versions == {"numpy": ("2.1.0",), "torch": ("2.13.0",)}
    assert a.runs.completed == a.runs.expected == 20 and a.runs.n_missing == 0


def test_missing_column_is_a_config_error() -> None:
    r = make_results()
    bad = type(r)(**{**r.__dict__, "observations": r.observations.drop(columns=["space"])})
    with pytest.raises(ConfigError, match="space"):
        analyse(bad)


def test_wilcoxon_floor_is_two_over_two_to_the_n() -> None:
    from scipy import stats

    from deltatune.report.wording import wilcoxon_floor

    assert wilcoxon_floor("Wilcoxon signed-rank", 5) == 0.0625
    # scipy's exact test with every difference of one sign reaches exactly that floor
    assert stats.wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0]).pvalue == pytest.approx(0.0625)
    assert wilcoxon_floor("paired t-test", 5) is None


def test_the_factorial_anova_counts_runs_not_the_segments_a_run_was_scored_on() -> None:
    """A search run scored on two clips gives two rows; fitting them as two runs would double the residual
    degrees of freedom of the design factors. The factorial ANOVA averages each run over the clips and
    says so; one varied design factor alone gets none."""
    r = make_results(clips=("vtest@640", "carphone"))
    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    m = next(m for m in a.metrics if m.spec.name == "speedup")
    assert m.factorial is not None and [t.term for t in m.factorial.terms] == [
        "strategy", "space", "strategy × space"]
    assert m.factorial.n == 20  # 2 x 2 cells x 5 seeds; each 1-df effect against its seed interaction
    assert m.factorial.n_blocks == 5  # the heading says "n = 20 observations of 5 seeds"
    assert [t.error_df for t in m.factorial.terms] == [4, 4, 4]
    assert m.factorial_note.startswith("The factorial ANOVA uses each run's mean over scored_on")
    one = analyse(make_results(spaces=("group",), clips=("vtest@640", "carphone")),
                  aso_iterations=ASO_ITERATIONS)
    assert all(m.factorial is None and m.factorial_note is None for m in one.metrics)


@pytest.mark.parametrize(("eps", "said"), [
    (0.1, "ASO eps_min = 0.100 (tpe almost stochastically better)"),
    (0.31, "ASO eps_min = 0.310 (tpe better more often than not; a confident claim needs eps_min < 0.2)"),
    (0.97, "ASO eps_min = 0.970 (tpe not shown almost stochastically better)"),
])
def test_aso_is_called_almost_stochastically_better_only_below_the_confident_threshold(
    two_by_two, eps: float, said: str
) -> None:
    """eps_min of 0.31-0.44 was "almost stochastically better", below the 0.2 the README cites for a
    claim; near 1 it read as the baseline being better, which a handful of runs cannot show."""
    _, a = two_by_two
    pw = next(p for p in a.pairwise if p.level == "tpe" and p.aso is not None)
    aso = dataclasses.replace(pw.aso, eps_min=eps, a_dominates=eps < 0.5)
    spec = next(m.spec for m in a.metrics if m.spec.name == pw.metric)
    assert said in summary(dataclasses.replace(pw, aso=aso), spec, 0.05)


def test_a_rank_test_is_reported_with_its_own_estimate_and_direction(tmp_path) -> None:
    """Wilcoxon or Mann-Whitney tests a shift, not the mean: one seed gaining 500 where nine gain about 0.4
    printed "+50.4 (95 % CI -62.8 to +164) ... significant", and a Mann-Whitney comparison whose values
    are mostly higher was "(worse)" because one baseline run was 40. The summary now leads with the
    Hodges-Lehmann shift, and the direction is the shift's."""
    from deltatune.ablation.table import read_results_table

    gains = [0.38, 0.39, 0.4, 0.41, 0.42, 0.4, 0.43, 0.37, 0.41, 500.0]
    rows = [f"{s},{lv},{10 + (g if lv == 'new' else 0)}"
            for s, g in enumerate(gains) for lv in ("old", "new")]
    paired = tmp_path / "outlier.csv"
    paired.write_text("seed,method,score\n" + "\n".join(rows) + "\n")
    res = read_results_table(paired, factors=["method"], baseline=("method", "old"))
    pw = analyse(res, aso_iterations=20).pairwise[0]
    assert pw.test.test == "Wilcoxon signed-rank" and pw.rank_test
    walsh = [(a + b) / 2 for i, a in enumerate(gains) for b in gains[i:]]
    assert pw.shift == pytest.approx(np.median(walsh)) and 0.39 < pw.shift < 0.42
    assert pw.summary.startswith(f"new vs old: shift +{pw.shift:.3g} score (better) (Hodges-Lehmann, the "
                                 "rank test's estimate; mean difference +50.4, 95 % t CI ")
    ties = tmp_path / "ties.csv"
    a, b = [1, 2, 2, 3, 40], [2, 3, 3, 4, 4, 5]
    ties.write_text("run,method,score\n" + "\n".join(
        [f"a{i},a,{v}" for i, v in enumerate(a)] + [f"b{i},b,{v}" for i, v in enumerate(b)]) + "\n")
    pw = analyse(read_results_table(ties, factors=["method"]), aso_iterations=20).pairwise[0]
    assert pw.test.test == "Mann-Whitney U" and pw.diff < 0  # the mean says b is worse ...
    assert pw.shift == np.median(np.subtract.outer(b, a)) > 0 and pw.better  # ... the test's shift: better
    assert pw.summary.startswith("b vs a: shift +1.00 score (better direction) (Hodges-Lehmann")


def test_a_level_vs_baseline_test_keeps_every_pair_it_has(tmp_path) -> None:
    """Three variants, one seed without a run of the third: the omnibus test needs seeds with all three,
    but q vs the baseline p has that seed's pair too (it was left out of every pairwise test)."""
    from deltatune.ablation.table import read_results_table

    rows = [f"{s},{v},{10 + s + {'p': 0, 'q': 1, 'r': 2}[v] + 0.1 * ((s * 7 + i) % 3)}"
            for s in range(6) for i, v in enumerate("pqr") if not (s == 5 and v == "r")]
    path = tmp_path / "three.csv"
    path.write_text("seed,variant,score\n" + "\n".join(rows) + "\n")
    a = analyse(read_results_table(path, factors=["variant"]), aso_iterations=20)
    c = a.metrics[0].comparisons[0]
    assert (c.n_blocks, c.n_incomplete) == (5, 1) and c.omnibus is not None and c.omnibus.n == 5
    n = {p.level: p.n_a for p in c.pairwise}
    assert n == {"q": 6, "r": 5}


def test_pairs_that_all_differ_by_the_same_amount_are_said_to_have_no_spread(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every one of five seeds 0.05 lower at lr=1e-2: no t-test or t CI is defined, and the rank test's
    p cannot go below 0.0625. The sentence said "95 % t CI -0.050 to -0.050" as if it were an interval;
    it now says the pairs all differ by exactly that. A difference of exactly 0 has an effect size, 0, for
    which no number of seeds gives power (it said no effect size could be estimated)."""
    from deltatune.ablation.table import read_results_table

    path = tmp_path / "s.csv"
    shift = [1, -1, 2, -2, 0]  # acc: differences that sum to exactly 0
    rows = [f"{s},{lr},{0.5 + 0.01 * s - (0.05 if lr == '1e-2' else 0)},"
            f"{70 + s + (shift[s] if lr == '1e-2' else 0)}" for s in range(5) for lr in ("1e-3", "1e-2")]
    path.write_text("seed,lr,loss,acc\n" + "\n".join(rows) + "\n")
    table = read_results_table(path, factors=["lr"], baseline=("lr", "1e-3"), higher_is_better=["acc"])
    a = analyse(table, aso_iterations=ASO_ITERATIONS)
    loss = next(p for p in a.pairwise if p.metric == "loss")
    assert loss.summary.startswith("lr=1e-2 vs lr=1e-3: -0.050 loss (better direction) (every one of the 5 "
                                   "pairs differs by exactly this: no spread, so neither a t-test nor a t CI "
                                   "is defined), Wilcoxon signed-rank p = 0.062"), loss.summary
    assert "an exact Wilcoxon p cannot go below 0.0625" in loss.summary
    acc = next(p for p in a.pairwise if p.metric == "acc")
    assert acc.power_note == ("power: the observed Hedges' g_z is 0, and no number of seeds (pairs) gives "
                              "power to detect a difference of 0"), acc.power_note


@pytest.mark.parametrize("tied", [False, True])
def test_a_rank_test_at_its_floor_that_holm_lifts_over_alpha_says_more_repeats_are_needed(
    tmp_path, tied: bool  # type: ignore[no-untyped-def]
) -> None:
    """Six seeds all 0.05 lower: the exact Wilcoxon p is at its floor, 2/2^6 = 0.031, below alpha, but the
    Holm correction over the report's two tests doubles it, so no result of six pairs could be
    significant; the sentence says so (the floor was only checked against the uncorrected alpha). A
    seventh seed with no difference changes nothing (the test drops it; the note missed it, counting 7)."""
    from deltatune.ablation.table import read_results_table

    path = tmp_path / "s.csv"
    shift = [1, -1, 2, -2, 3, -3, 0]
    seeds = 7 if tied else 6
    rows = [f"{s},{lr},{0.5 + 0.01 * s - (0.05 if lr == '1e-2' and s < 6 else 0)},"
            f"{70 + s + (shift[s] if lr == '1e-2' else 0)}" for s in range(seeds) for lr in ("1e-3", "1e-2")]
    path.write_text("seed,lr,loss,acc\n" + "\n".join(rows) + "\n")
    table = read_results_table(path, factors=["lr"], baseline=("lr", "1e-3"), higher_is_better=["acc"])
    a = analyse(table, aso_iterations=ASO_ITERATIONS)
    loss = next(p for p in a.pairwise if p.metric == "loss")
    assert loss.p_raw == pytest.approx(1 / 32) and loss.p_holm == pytest.approx(1 / 16)
    assert not loss.significant
    pairs = "6 non-zero pairs (1 zero difference dropped)" if tied else "6 pairs"
    assert f"with {pairs} an exact Wilcoxon p cannot go below 0.0312, which it reached (every one agrees): " \
           "after the Holm correction" in loss.summary, loss.summary


@pytest.mark.parametrize("runs", [3, 4])
def test_a_mann_whitney_test_that_cannot_be_significant_says_so_as_the_wilcoxon_one_does(
    tmp_path, runs: int  # type: ignore[no-untyped-def]
) -> None:
    """Unpaired, both levels constant (the loss of two deterministic methods): the rule keeps the rank test
    (no t statistic exists), whose p cannot go below the split of the values that puts every run of one
    level below every run of the other. Three runs a level: 0.1, never significant; four: 2/70 = 0.029,
    reached, and the Holm correction over the report's two tests doubles it. The Wilcoxon sentence said
    so for pairs; the Mann-Whitney one said nothing."""
    from deltatune.ablation.table import read_results_table

    rows = [f"{m},{0.5 if m == 'A' else 0.4},{70 + i + (0.3 * i * i if m == 'B' else 0)}"
            for m in ("A", "B") for i in range(runs)]
    path = tmp_path / "constant.csv"
    path.write_text("method,loss,acc\n" + "\n".join(rows) + "\n")
    table = read_results_table(path, factors=["method"], higher_is_better=["acc"], paired=False)
    loss = next(p for p in analyse(table, aso_iterations=ASO_ITERATIONS).pairwise if p.metric == "loss")
    assert loss.test.test == "Mann-Whitney U" and not loss.significant
    floor = 2 / math.comb(2 * runs, runs)
    assert loss.test.floor == pytest.approx(floor) and loss.p_raw == pytest.approx(floor)
    if runs == 3:
        assert ("with 3 and 3 values a Mann-Whitney p cannot go below 0.1: more repeats are needed before it "
                "can be significant") in loss.summary, loss.summary
    else:
        assert loss.p_holm == pytest.approx(2 * floor)
        assert ("with 4 and 4 values a Mann-Whitney p cannot go below 0.0286, which it reached (no value of "
                "one level above any of the other): after the Holm correction no result of these values "
                "could be significant; more repeats are needed") in loss.summary, loss.summary


def test_one_pair_has_a_mean_difference_but_no_test_or_interval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One seed under both levels: the difference is known (0.1) though nothing can be tested and no CI
    drawn; it was shown as "–"."""
    from deltatune.ablation.table import read_results_table

    path = tmp_path / "one.csv"
    path.write_text("seed,lr,acc\n0,0.1,0.6\n0,0.01,0.5\n")
    a = analyse(read_results_table(path, factors=["lr"]), aso_iterations=ASO_ITERATIONS)
    (pw,) = a.pairwise
    assert pw.diff == pytest.approx(0.1) and math.isnan(pw.diff_ci_low) and math.isnan(pw.p_raw)
    assert pw.summary.startswith("lr=0.1 vs lr=0.01: not tested (too few complete blocks to test: 1")


def test_aso_draws_no_conclusion_from_two_runs_per_level(two_by_two) -> None:  # type: ignore[no-untyped-def]
    """Two runs per level gave "tpe almost stochastically better (eps_min 0.191)": the sentence now says
    the runs are too few for a claim either way."""
    _, a = two_by_two
    pw = next(p for p in a.pairwise if p.level == "tpe" and p.aso is not None)
    aso = dataclasses.replace(pw.aso, eps_min=0.191, a_dominates=True)
    spec = next(m.spec for m in a.metrics if m.spec.name == pw.metric)
    two = dataclasses.replace(pw, aso=aso, n_a=2, n_b=5)  # the smaller level decides
    assert "ASO eps_min = 0.191 (from 2 runs at a level: too few for a claim either way)" in summary(
        two, spec, 0.05)
    assert "(tpe almost stochastically better)" in summary(dataclasses.replace(pw, aso=aso), spec, 0.05)


def test_two_constant_independent_levels_are_said_to_be_constant(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Unpaired, both levels the same value in every run: the rank test's sentence printed a "95 % t CI
    +0.050 to +0.050"; it says the levels are constant. One run at a level gets no ASO conclusion."""
    from deltatune.ablation.table import read_results_table

    path = tmp_path / "c.csv"
    path.write_text("lr,acc\n" + "".join(f"{lr},{v}\n" for lr, v in (("0.1", 0.55), ("0.01", 0.5)) for _ in
                                         range(4)))
    a = analyse(read_results_table(path, factors=["lr"]), aso_iterations=ASO_ITERATIONS)
    (pw,) = a.pairwise
    assert not pw.paired and "(both levels are constant: no spread, so neither a t-test nor a t CI is " \
        "defined)" in pw.summary, pw.summary


def test_an_unpaired_study_counts_runs_not_the_segments_a_run_was_scored_on() -> None:
    """Unpaired, a run scored on four segments is still one sample: the level test and each level's CI
    take each run's mean over the segments (pooling the rows gave a t test of 12 "runs" per level from 3
    and a CI that covered the true mean 58 % of the time), and the segment factor, which varies inside
    every run, pairs on the run."""
    clips = ("a", "b", "c", "d")
    r = make_results(seeds=3, clips=clips, pairing="none", spaces=("group",), margin=None,
                     loss_margin=None)
    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    strategy = _comparison(a, "speedup", "strategy")
    tpe = strategy.pairwise[0]
    assert not strategy.paired and (tpe.n_a, tpe.n_b) == (3, 3)
    assert any("averaged over scored_on" in n for n in strategy.notes)
    obs = r.observations[r.observations["metric"] == "speedup"]
    means = obs.groupby(["run", "strategy"])["value"].mean()
    assert tpe.test.test == "Welch t-test", tpe.test.reason  # both groups of 3 run means look normal
    want = stats.ttest_ind(means.xs("tpe", level="strategy"), means.xs("greedy", level="strategy"),
                           equal_var=False)
    assert tpe.test.pvalue == pytest.approx(want.pvalue)
    m = next(m for m in a.metrics if m.spec.name == "speedup")
    level = next(s for s in m.levels if (s.factor, s.level) == ("strategy", "tpe"))
    assert level.description.n == 3
    assert level.description.mean == pytest.approx(stats.gmean(means.xs("tpe", level="strategy")))
    segments = _comparison(a, "speedup", "scored_on")
    assert segments.paired and segments.block_unit == "run" and segments.n_blocks == 6
    assert all(p.test.paired and p.n_a == 6 for p in segments.pairwise)
    assert all("runs (pairs)" in p.power_note for p in segments.pairwise), segments.pairwise[0].power_note
    assert next(s for s in m.levels if s.factor == "scored_on").description.n == 6


@pytest.mark.parametrize(("gap", "where"), [(0.0, "inside"), (0.05, "outside")])
def test_equivalence_from_runs_with_no_spread_is_not_claimed(tmp_path, gap: float, where: str) -> None:  # type: ignore[no-untyped-def]
    """Every seed's detector scored average IoU 0 with both backbones (a training too short for any box
    to pass the score cut): TOST's p is 0, but "equivalent (TOST p < 0.001)" two lines under a note that
    such runs are copies claimed what the runs cannot show. The verdict says where the difference lies
    and that no spread is no evidence."""
    from deltatune.ablation.table import read_results_table

    path = tmp_path / "flat.csv"
    rows = [f"{s},{b},{gap if b == 'delta' else 0.0},{0.3 + 0.01 * s + (0.002 if b == 'delta' else 0)}"
            for s in range(4) for b in ("classic", "delta")]
    path.write_text("seed,backbone,avg_iou,map50\n" + "\n".join(rows) + "\n")
    table = read_results_table(path, factors=["backbone"], baseline=("backbone", "classic"),
                               higher_is_better=["avg_iou", "map50"], margins={"avg_iou": 0.02})
    a = analyse(table, aso_iterations=ASO_ITERATIONS)
    iou = next(p for p in a.pairwise if p.metric == "avg_iou")
    verdict = iou.equivalence_verdict
    assert verdict.startswith(f"{where} ±0.02 in every run (no spread"), verdict
    assert "equivalent within" not in iou.summary, iou.summary


def test_a_paired_studys_level_summaries_count_units_not_the_runs_that_share_them() -> None:
    """2 strategies x 2 spaces x 5 seeds: a strategy's 10 runs are 5 seeds under two spaces; its CI over 10
    "independent" runs was too narrow (a seed that suits the strategy counted twice). One value per seed,
    its runs averaged; the measured speed per level the same way."""
    r = make_results(margin=None, loss_margin=None)
    a = analyse(r, aso_iterations=ASO_ITERATIONS)
    m = next(m for m in a.metrics if m.spec.name == "speedup")
    tpe = next(s for s in m.levels if (s.factor, s.level) == ("strategy", "tpe"))
    obs = r.observations[(r.observations["metric"] == "speedup") & (r.observations["strategy"] == "tpe")]
    seeds = obs.groupby("unit")["value"].mean()
    assert tpe.description.n == 5
    logs = np.log(seeds)  # a speed-up is a ratio: the t interval of the logs, mapped back
    assert (tpe.description.ci_low, tpe.description.ci_high) == pytest.approx(
        tuple(np.exp(stats.t.interval(0.95, 4, loc=logs.mean(), scale=stats.sem(logs)))))
    assert tpe.description.mean == pytest.approx(np.exp(logs.mean())) and tpe.description.ci_method == "log-t"
    assert all(c.description.n == 5 for c in m.cells)  # a cell: one run per seed already
    speed = next(s for s in a.speed_levels if (s.factor, s.level) == ("strategy", "tpe"))
    runs = [x for x in a.speed_runs if x.levels["strategy"] == "tpe"]
    assert len(runs) == 10 and speed.description.n == 5
    per_seed = {u: np.mean([x.median for x in runs if x.unit == u]) for u in {x.unit for x in runs}}
    assert speed.description.mean == pytest.approx(stats.gmean(list(per_seed.values())))


def test_unpaired_levels_are_compared_only_where_the_other_factors_settings_have_both(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """lr 0.1 adds 5 points and weight decay nothing, but the lr 0.1 / wd 1e-4 cell was never run: pooled,
    weight decay 0 held every lr 0.1 run and came out 2.8 points "better", its CI and effect sizes
    excluding 0. Unpaired, like an incomplete paired block, runs whose other-factor setting lacks a
    compared level are left out, and the report says so."""
    from deltatune.ablation.table import read_results_table

    rng = np.random.default_rng(4)
    rows = [f"{lr},{wd},{50 + (5 if lr == '0.1' else 0) + rng.normal(0, 1):.4f}"
            for lr, wd in (("0.001", "0"), ("0.001", "1e-4"), ("0.1", "0")) for _ in range(10)]
    path = tmp_path / "b.csv"
    path.write_text("lr,weight_decay,map\n" + "\n".join(rows) + "\n")
    table = read_results_table(path, factors=["lr", "weight_decay"], paired=False,
                               higher_is_better=["map"])
    a = analyse(table, aso_iterations=ASO_ITERATIONS)
    wd = _comparison(a, "map", "weight_decay")
    pw = wd.pairwise[0]
    assert (pw.n_a, pw.n_b) == (10, 10)  # lr 0.001 only
    assert any("10 run(s) left out: their setting of lr lacks a level" in n for n in wd.notes), wd.notes
    obs = table.observations
    low = obs[obs["lr"] == "0.001"]
    want = (low.loc[low["weight_decay"] == "1e-4", "value"].mean()
            - low.loc[low["weight_decay"] == "0", "value"].mean())
    assert pw.diff == pytest.approx(want) and abs(pw.diff) < 1.5
    lr = _comparison(a, "map", "lr").pairwise[0]
    assert (lr.n_a, lr.n_b) == (10, 10) and lr.significant  # the lr effect, within wd 0


def test_run_names_repeated_across_seeds_are_different_runs_and_a_blank_one_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A table that names its runs per seed ("r1" under seeds 0-5) made lr look like a factor that varies
    inside one run: it was paired on that "run", 1 pair against 3 runs a level in the table. A run is a
    name within its unit; an empty name is one error naming the line."""
    from deltatune.ablation.table import read_results_table

    rows = [f"r1,{s},{'a' if s < 3 else 'b'},{1.0 + 0.1 * s}" for s in range(6)]
    path = tmp_path / "named.csv"
    path.write_text("run,seed,lr,loss\n" + "\n".join(rows) + "\n")
    a = analyse(read_results_table(path, factors=["lr"], paired=False), aso_iterations=ASO_ITERATIONS)
    lr = _comparison(a, "loss", "lr")
    assert not lr.paired and (lr.pairwise[0].n_a, lr.pairwise[0].n_b) == (3, 3)
    assert a.runs.completed == 6 and a.runs.design_factors == ("lr",)  # six runs, not one
    blank = tmp_path / "blank.csv"
    blank.write_text("run,seed,lr,loss\nr1,0,a,1.0\n ,1,b,2.0\n")
    with pytest.raises(ConfigError, match=r"blank\.csv: line 3: run: empty; name every run"):
        read_results_table(blank, factors=["lr"], paired=False)


def test_equivalence_from_two_pairs_is_said_to_be_rough_and_no_bayes_is_drawn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two seeds, a difference of about 0: TOST p 0.007 ("equivalent") and the Bayesian test's p_rope
    1.00, where the same report found two pairs too few for g_z or ASO. The verdict says what it rests
    on, and the Bayesian test is not drawn from two pairs."""
    from deltatune.ablation.table import read_results_table

    path = tmp_path / "two.csv"
    path.write_text("seed,method,acc\n0,a,0.50\n0,b,0.52\n1,a,0.61\n1,b,0.60\n")
    table = read_results_table(path, factors=["method"], baseline=("method", "a"),
                               higher_is_better=["acc"], margins={"acc": 1.0})
    pw = analyse(table, aso_iterations=ASO_ITERATIONS).pairwise[0]
    assert pw.equivalence is not None and pw.equivalence.equivalent
    assert "but from 2 pairs a level: its t-tests rest on a normality these data cannot check" in (
        pw.equivalence_verdict)
    assert pw.bayes is None and any("it needs 3 or more" in n for n in pw.notes), pw.notes


def test_a_significant_difference_between_two_constant_levels_says_what_it_counts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """75.0 in all five runs of A, 75.1 in all five of B, unpaired: Mann-Whitney p = 0.008, "significant",
    under a note that such runs may be copies. The sentence says what the significance rests on."""
    from deltatune.ablation.table import read_results_table

    rows = [f"{m},{75.0 if m == 'A' else 75.1}" for m in ("A", "B") for _ in range(5)]
    path = tmp_path / "copies.csv"
    path.write_text("method,acc\n" + "\n".join(rows) + "\n")
    table = read_results_table(path, factors=["method"], higher_is_better=["acc"], paired=False)
    pw = analyse(table, aso_iterations=ASO_ITERATIONS).pairwise[0]
    assert pw.test.test == "Mann-Whitney U" and pw.significant
    assert "each level is one run, and the test counts copies as replicates" in pw.summary, pw.summary


def test_mac_speedups_at_the_cap_are_counted_in_a_note() -> None:
    """An evaluate study scored a large threshold on a quiet segment: mac_speedup recorded the 100x cap
    (inspect gave 114x) and went into means and tests as measured, with nothing said."""
    from deltatune.ablation.results import MetricSpec
    from deltatune.search.objective import MAC_SPEEDUP_CAP

    r = make_results(margin=None, loss_margin=None, speed=False, fronts=False)
    obs = r.observations.copy()
    hit = (obs["metric"] == "speedup") & (obs["unit"] == "0")
    obs.loc[hit, "value"] = MAC_SPEEDUP_CAP
    metrics = tuple(MetricSpec(m.name, "MAC speedup" if m.name == "speedup" else m.label, m.higher_is_better,
                               m.margin) for m in r.metrics)
    a = analyse(dataclasses.replace(r, observations=obs, metrics=metrics), aso_iterations=ASO_ITERATIONS)
    said = f"{int(hit.sum())} speedup observation(s) at the 100x cap"
    assert any(n.startswith(said) for n in a.notes), a.notes
    plain = analyse(make_results(margin=None, loss_margin=None, speed=False, fronts=False),
                    aso_iterations=ASO_ITERATIONS)
    assert not any("cap" in n for n in plain.notes)


def test_pairs_that_do_not_differ_at_all_say_no_spread_not_a_floor_of_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two seeds with the same loss under both levels: the sentence said "an exact Wilcoxon p cannot go
    below 1" and the test's reason "only 2 values (Shapiro-Wilk needs 3)"; the cause is that no pair
    differs at all."""
    from deltatune.ablation.table import read_results_table

    path = tmp_path / "same.csv"
    path.write_text("seed,dilation,loss\n0,1,0.4\n0,3,0.4\n1,1,0.7\n1,3,0.7\n")
    pw = analyse(read_results_table(path, factors=["dilation"]), aso_iterations=ASO_ITERATIONS).pairwise[0]
    assert pw.test.reason.startswith("every pair differs by the same amount (no spread)"), pw.test.reason
    assert "cannot go below" not in pw.summary, pw.summary


def test_unpaired_levels_are_balanced_within_the_other_factors_settings(tmp_path) -> None:
    """lr has no effect and weight decay adds 10, but lr A has 10 runs at wd 0 and 2 at wd 1, lr B the
    reverse: pooling every run credited wd's effect to lr ("B vs A +8.7, significant") while the same
    report's factorial ANOVA found nothing. The levels are now balanced within each wd setting."""
    from deltatune.ablation.table import read_results_table

    rng = np.random.default_rng(7)
    rows = [f"{lr},{wd},{50 + 10 * wd + rng.normal(0, 1)}"
            for lr, wd, k in (("A", 0, 10), ("A", 1, 2), ("B", 0, 2), ("B", 1, 10)) for _ in range(k)]
    path = tmp_path / "unbalanced.csv"
    path.write_text("lr,wd,acc\n" + "\n".join(rows) + "\n")
    a = analyse(read_results_table(path, factors=["lr", "wd"]), aso_iterations=20)
    lr = next(c for c in a.metrics[0].comparisons if c.factor == "lr")
    pw = lr.pairwise[0]
    assert (pw.n_a, pw.n_b) == (4, 4) and not pw.significant and abs(pw.diff) < 2
    assert any("16 run(s) left out to balance the levels within each setting of wd" in n for n in lr.notes)


def test_a_paired_level_table_keeps_the_blocks_the_tests_compare(tmp_path) -> None:
    """lr has no effect, wd adds 10, and lr B lacks its wd-1 run on 4 of 6 seeds: each seed averaged over
    whatever runs it had put B 3.5 below A in the per-level table (CIs apart) while the paired test found
    -0.03. The table now averages each seed over the blocks complete at both levels, and says so."""
    from deltatune.ablation.table import read_results_table

    rng = np.random.default_rng(20)
    rows = []
    for s in range(6):
        for lr in "AB":
            for wd in (0, 1):
                v = 50 + 10 * wd + rng.normal(0, 0.5)
                rows.append(f"{s},{lr},{wd},{'' if lr == 'B' and wd == 1 and s < 4 else v}")
    path = tmp_path / "missing.csv"
    path.write_text("seed,lr,wd,acc\n" + "\n".join(rows) + "\n")
    m = analyse(read_results_table(path, factors=["lr", "wd"]), aso_iterations=20).metrics[0]
    mean = {(s.factor, s.level): s.description.mean for s in m.levels}
    assert abs(mean["lr", "A"] - mean["lr", "B"]) < 0.5
    assert any(n.startswith("per level of lr: 4 run(s) left out") for n in m.levels_notes)


def test_aso_claims_need_five_runs_and_a_bonferroni_confidence_level(tmp_path) -> None:
    """Eight levels that differ by nothing, three seeds each: 5 of 7 were "almost stochastically better"
    while every paired test said nothing (each ASO at 95 %, uncorrected, from 3 runs). From 3 runs there
    is no claim now, and each ASO's confidence level is 1 - alpha / m over the study's comparisons."""
    from deltatune.ablation.table import read_results_table

    rng = np.random.default_rng(3)
    rows = [f"{s},L{lv},{rng.normal(0, 1)}" for s in range(3) for lv in range(8)]
    path = tmp_path / "many.csv"
    path.write_text("seed,lv,score\n" + "\n".join(rows) + "\n")
    a = analyse(read_results_table(path, factors=["lv"]), aso_iterations=50)
    assert len(a.pairwise) == 7
    for pw in a.pairwise:
        assert pw.aso is not None and pw.aso.confidence_level == pytest.approx(1 - 0.05 / 7)
        assert "almost stochastically better)" not in pw.summary.replace("not shown almost", "")
        assert "from 3 runs at a level: too few for a claim either way" in pw.summary
    # a single comparison keeps deepsig's 0.95; five runs a level may claim
    rows = [f"{s},{lv},{s + (5 if lv == 'b' else 0)}" for s in range(5) for lv in "ab"]
    path.write_text("seed,lv,score\n" + "\n".join(rows) + "\n")
    pw = analyse(read_results_table(path, factors=["lv"]), aso_iterations=50).pairwise[0]
    assert pw.aso.confidence_level == 0.95 and "(b almost stochastically better)" in pw.summary


def test_a_p_value_or_eps_min_near_a_threshold_keeps_the_digits_its_verdict_rests_on() -> None:
    """0.0497 was printed "Holm p = 0.050: significant" and 0.0503 "Holm p = 0.050: not significant";
    eps_min 0.19995 "0.200 (... almost stochastically better)". Three decimals stay the rule elsewhere."""
    from deltatune.report.wording import fmt_eps, fmt_p, p_is

    assert [fmt_p(p) for p in (0.0497, 0.0503, 0.05, 0.0123)] == ["0.0497", "0.0503", "0.050", "0.012"]
    assert (fmt_p(0.0999), fmt_p(0.0101), fmt_p(0.0004)) == ("0.0999", "0.0101", "< 0.001")
    assert p_is(0.04996, "Holm p") == "Holm p = 0.04996"
    assert [fmt_eps(e) for e in (0.1996, 0.2004, 0.4998, 0.31)] == ["0.1996", "0.2004", "0.4998", "0.310"]


@pytest.mark.parametrize("pairing", ["unit", "none"])
def test_level_values_are_the_values_the_per_level_table_summarizes(pairing: str) -> None:
    """The box plots drew every run while the table and tests use one value per seed in a paired study
    (a seed's runs in two spaces averaged): the boxes showed twice the values, their spread that of
    runs, not of the independent samples. level_values gives the plots the table's own values."""
    from deltatune.report.analysis import level_values

    r = make_results(pairing=pairing)
    analysis = analyse(r, aso_iterations=ASO_ITERATIONS)
    speed = next(m for m in analysis.metrics if m.spec.name == "speedup")
    for factor in ("strategy", "space"):
        frame = level_values(r, "speedup", factor)
        for s in (s for s in speed.levels if s.factor == factor):
            values = frame.loc[frame[factor] == s.level, "value"].to_numpy(float)
            assert values.size == s.description.n == (5 if pairing == "unit" else 10)
            assert stats.gmean(values) == pytest.approx(s.description.mean, rel=1e-12)  # a ratio
            assert np.std(values, ddof=1) == pytest.approx(s.description.sd, rel=1e-12)
    if pairing == "unit":
        assert sorted(frame["unit"]) == sorted([str(u) for u in range(5)] * 2)
