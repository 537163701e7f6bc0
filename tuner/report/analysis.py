"""The statistics of an ablation study's report: summaries, tests, effect sizes, equivalence and power.

:func:`analyse` turns an :class:`~deltatune.ablation.results.AblationResults` into an :class:`Analysis`
(frozen dataclasses, ``to_dict()`` for JSON). It only arranges the data and calls :mod:`deltatune.stats`;
the rules of the statistics (which test, which effect size) live there. What is arranged here:

- **per level and per design cell**: n, mean, SD, median and a 95 % Student-t CI of each metric, one
  value per run (a run's rows at several levels of a factor that varies inside it, the segments a search
  run is scored on, are averaged: they are one run, not several);
- **per factor with >= 2 levels**: its levels compared. With ``pairing == "unit"`` an observation's block
  is its unit plus the levels of all *other* factors, only blocks that have every level are kept, and
  each unit's complete blocks are averaged: the tests are paired on the units (blocks of one unit share
  its seed or segment, so they are not independent pairs); with ``pairing == "none"`` each run's mean
  per level is compared unpaired, and a factor that varies inside a run pairs on the run. Two
  levels: one level-vs-baseline test; more: an omnibus test with post-hoc *and* each level vs baseline;
- **per level-vs-baseline comparison**: equivalence (TOST, Bayesian signed-rank) when the metric has a
  margin, almost stochastic order oriented so that "dominates" means "is better", a power note, and a
  plain-words summary; p-values are Holm-corrected over *all* such comparisons of the report;
- **factors together**: with two or more varied factors, one factorial ANOVA per metric (every factor
  and two-way interaction, blocked on the unit when the study pairs on it; see
  :mod:`deltatune.stats.factorial`);
- **measured speed**: per run the median speed-up over its timing repeats, per level a CI over runs.

Missing data never raise: a comparison whose level has fewer than 2 observations (or blocks) gets a NaN
result whose ``reason`` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np

from deltatune.ablation.results import run_keys
from deltatune.errors import ConfigError
from deltatune.report._support import (
    FAILURES,
    Plain,
    RunSpeed,
    attempt,
    empty_description,
    nan_test,
    provenance_summary,
    run_count,
    speed_per_run,
)
from deltatune.report.seed_table import seed_table_stats
from deltatune.report.wording import equivalence_verdict, fmt, level_name, p_is, power_note, summary
from deltatune.stats import (
    ASOResult,
    BayesResult,
    Description,
    EquivalenceResult,
    FactorialResult,
    OmnibusResult,
    TestResult,
    almost_stochastic_order,
    bayes_signed_rank,
    compare_many,
    compare_two,
    describe,
    factorial_anova,
    hodges_lehmann,
    holm,
    mean_difference_ci,
    tost,
)

if TYPE_CHECKING:
    import pandas as pd

    from deltatune.ablation.results import AblationResults, MetricSpec
    from deltatune.report._support import ProvenanceSummary, RunCount

__all__ = [
    "Analysis",
    "MetricAnalysis",
    "LevelSummary",
    "FactorComparison",
    "PairwiseComparison",
    "RunSpeed",
    "analyse",
    "MIN_N",
]

#: Fewest observations (or complete blocks) per level for a test.
MIN_N = 2


@dataclass(frozen=True)
class LevelSummary(Plain):
    """``metric`` over the observations of one level of ``factor`` (or of one design cell).

    For a cell, ``factor`` is the factors joined by " × " and ``level`` their levels joined by " / ".
    """

    metric: str
    factor: str
    level: str
    description: Description


@dataclass(frozen=True)
class PairwiseComparison(Plain):
    """``level`` (a) against ``baseline`` (b) on ``metric``: test, effects, equivalence, order and power.

    ``diff`` is ``mean(a) - mean(b)`` (over the complete blocks when paired) with its 95 % CI (paired t or
    Welch, :func:`deltatune.stats.mean_difference_ci`);
    ``shift`` is the Hodges-Lehmann estimate of the same difference, the rank tests' own; ``better`` says
    whether a is better than b in the metric's direction, by the estimate of the test that was run (the
    mean difference for a t-test, ``shift`` for a rank test; ``None`` when undefined).
    ``p_holm`` is the Holm-adjusted p over all pairwise comparisons of the analysis; ``significant`` is
    ``p_holm < alpha``. ``equivalence``/``bayes``/``aso`` are ``None`` when not computed (``notes`` say
    why).
    """

    metric: str
    factor: str
    level: str
    baseline: str
    paired: bool
    primary: bool
    n_a: int
    n_b: int
    test: TestResult
    diff: float
    diff_ci_low: float
    diff_ci_high: float
    better: bool | None
    p_raw: float
    p_holm: float
    significant: bool
    equivalence: EquivalenceResult | None
    equivalence_verdict: str | None
    bayes: BayesResult | None
    aso: ASOResult | None
    power_n: int | None
    power_note: str
    summary: str
    notes: tuple[str, ...] = ()
    shift: float = math.nan

    @property
    def rank_test(self) -> bool:
        """Whether the test run was a rank test (Wilcoxon, Mann-Whitney): its estimate is ``shift``."""
        return self.test.test in RANK_TESTS


#: The rank tests :func:`~deltatune.stats.compare_two` may choose; their estimate is the Hodges-Lehmann shift.
RANK_TESTS = ("Wilcoxon signed-rank", "Mann-Whitney U")


@dataclass(frozen=True)
class FactorComparison(Plain):
    """All comparisons of the levels of ``factor`` on ``metric``.

    ``n_blocks``/``n_incomplete`` count the complete and dropped blocks (paired only; ``None`` unpaired).
    ``omnibus`` is set for more than two levels when it could be computed.
    """

    metric: str
    factor: str
    levels: tuple[str, ...]
    baseline: str
    paired: bool
    primary: bool
    n_blocks: int | None
    n_incomplete: int | None
    omnibus: OmnibusResult | None
    omnibus_summary: str | None
    pairwise: tuple[PairwiseComparison, ...]
    notes: tuple[str, ...] = ()
    block_unit: str = ""
    """What the pairs are when not the study's unit: ``run`` for a factor that varies inside each run of an
    unpaired study."""


@dataclass(frozen=True)
class MetricAnalysis(Plain):
    """Everything about one metric: per-level and per-cell summaries and the factors' comparisons.

    ``n_observations`` counts the metric's recorded observations and ``n_missing`` those without a
    finite value (a search run that found no setting within its budget, accuracy where nothing could be
    scored), which every summary and test leaves out: a reader must see how many are gone, not infer it
    from a small n.
    """

    spec: MetricSpec
    levels: tuple[LevelSummary, ...]
    cells: tuple[LevelSummary, ...]
    comparisons: tuple[FactorComparison, ...]
    n_observations: int = 0
    n_missing: int = 0
    #: two or more design factors with two or more levels: their main effects and two-way interactions in
    #: one (blocked) model; ``factorial_note`` says why it is missing, or how the rows were averaged
    factorial: FactorialResult | None = None
    factorial_note: str | None = None
    #: why runs are missing from the per-level table (a paired study's incomplete blocks)
    levels_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analysis(Plain):
    """The statistics of a study's report (see the module docstring); metrics in report order.

    ``family_size`` is the number of pairwise p-values that entered the Holm correction (comparisons that
    could not be tested are left out of it); ``n_pairwise`` counts all pairwise comparisons.
    """

    study: str
    alpha: float
    seed: int
    pairing: str
    metrics: tuple[MetricAnalysis, ...]
    family_size: int
    n_pairwise: int
    speed_runs: tuple[RunSpeed, ...]
    speed_levels: tuple[LevelSummary, ...]
    runs: RunCount
    provenance: ProvenanceSummary
    notes: tuple[str, ...] = ()
    #: a detection study's seed table (:func:`deltatune.report.seed_table.seed_table_stats`), else ``None``
    seed_table: dict[str, Any] | None = None

    @property
    def pairwise(self) -> list[PairwiseComparison]:
        """Every level-vs-baseline comparison, in report order."""
        return [p for m in self.metrics for c in m.comparisons for p in c.pairwise]

    @property
    def primary(self) -> FactorComparison | None:
        """The comparison the study was designed for (``results.primary``), if any."""
        return next((c for m in self.metrics for c in m.comparisons if c.primary), None)


# ---------------------------------------------------------------------------------------------- helpers


def _levels_of(obs: pd.DataFrame, factor: str, declared: list[str]) -> list[str]:
    """The declared levels, then any level seen in the data but not declared (kept, not dropped)."""
    seen = [str(v) for v in obs[factor].unique()] if factor in obs else []
    return [*map(str, declared), *[v for v in seen if v not in set(map(str, declared))]]


def _describe(values: np.ndarray, *, ratio: bool = False) -> Description:
    return describe(values, ratio=ratio) if values.size else empty_description()


# ------------------------------------------------------------------------------------------ comparisons


#: Fewest pairs for the Bayesian signed-rank test (with 2 it put p_rope at 1.00 for any small difference).
MIN_BAYES_PAIRS = 3


def _pairwise(
    spec: MetricSpec,
    factor: str,
    level: str,
    baseline: str,
    a: np.ndarray,
    b: np.ndarray,
    *,
    paired: bool,
    primary: bool,
    alpha: float,
    seed: int,
    unit: str,
    aso_iterations: int,
    aso_confidence: float = 0.95,
) -> PairwiseComparison:
    """One level-vs-baseline comparison, before the Holm correction (``p_holm`` NaN). ``aso_confidence``:
    the ASO bootstrap's confidence level, Bonferroni-corrected for the study's comparisons."""
    notes: list[str] = []
    n = int(a.size if paired else a.size + b.size)
    eq = bayes = aso = None
    diff = lo = hi = shift = math.nan
    if min(a.size, b.size) >= 1:  # known from one pair too (its CI and the tests are not)
        diff = float(np.mean(a) - np.mean(b))
    if min(a.size, b.size) < MIN_N:
        what = "complete blocks" if paired else "observations"
        counts = (f"{a.size}" if paired else
                  f"{a.size} ({level_name(factor, level)}) and {b.size} ({level_name(factor, baseline)})")
        test = nan_test(f"too few {what} to test: {counts}; at least {MIN_N} are needed", paired=paired, n=n)
    else:
        try:
            test = compare_two(a, b, paired=paired, alpha=alpha, seed=seed)
        except FAILURES as e:
            test = nan_test(f"not tested: {e}", paired=paired, n=n)
        shift = hodges_lehmann(a, b, paired=paired)
        lo, hi = mean_difference_ci(a, b, paired=paired)
        if spec.margin is not None:
            eq = attempt(notes, "TOST", tost, a, b, margin=spec.margin, paired=paired, alpha=alpha)
            if paired and a.size < MIN_BAYES_PAIRS:  # two pairs gave p_rope 1.00, certainty from nothing
                notes.append(f"Bayesian signed-rank test not computed: {a.size} pairs, it needs "
                             f"{MIN_BAYES_PAIRS} or more for a posterior that says anything")
            elif paired:
                bayes = attempt(
                    notes, "Bayesian signed-rank", bayes_signed_rank, a, b, rope=spec.margin, seed=seed
                )
            else:
                notes.append("Bayesian signed-rank test needs paired data: not computed")
        sign = 1.0 if spec.higher_is_better else -1.0
        aso = attempt(
            notes,
            "ASO",
            almost_stochastic_order,
            sign * a,
            sign * b,
            num_bootstrap_iterations=aso_iterations,
            confidence_level=aso_confidence,
            seed=seed,
        )
    if spec.margin is not None and eq is None and not notes:
        notes.append("equivalence not tested: too few observations")
    estimate = shift if test.test in RANK_TESTS else diff  # the direction of the test that was run
    if not math.isfinite(test.pvalue):  # untested (one pair): a difference, but no direction claimed
        estimate = math.nan
    better = None if not math.isfinite(estimate) or estimate == 0 else (estimate > 0) == spec.higher_is_better
    return PairwiseComparison(
        metric=spec.name,
        factor=factor,
        level=level,
        baseline=baseline,
        paired=paired,
        primary=primary,
        n_a=int(a.size),
        n_b=int(b.size),
        test=test,
        diff=diff,
        diff_ci_low=lo,
        diff_ci_high=hi,
        better=better,
        p_raw=float(test.pvalue),
        p_holm=math.nan,
        significant=False,
        equivalence=eq,
        equivalence_verdict=equivalence_verdict(eq, spec.margin, min(a.size, b.size)),
        bayes=bayes,
        aso=aso,
        power_n=test.power_n,
        power_note=power_note(test, a.size if paired or a.size == b.size else f"{a.size} and {b.size}", unit,
                              alpha),
        summary="",
        notes=tuple(notes),
        shift=shift,
    )


def within_run(d: pd.DataFrame, factors: list[str]) -> list[str]:
    """The ``factors`` whose level varies inside one run of the observations ``d`` (the segments a search
    run is scored on): their rows are one run's, not separate runs."""
    if d.empty:
        return []
    most = d.groupby(["run", "unit"])[factors].nunique().max()
    return [f for f in factors if int(most[f]) > 1]


def per_run(d: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    """``d`` with each run's values at one setting of ``keep`` averaged into one row (the other factors'
    columns dropped): one value per run and setting, the run being the independent unit."""
    return d.groupby(["run", "unit", *keep], as_index=False, sort=False)["value"].mean()


def per_unit(d: pd.DataFrame, factor: str) -> pd.DataFrame:
    """``d`` with each unit's values at one level of ``factor`` averaged into one row: a paired study's
    independent samples are its units (seeds, segments), whose runs at the other factors' levels share
    them."""
    return d.groupby(["unit", factor], as_index=False, sort=False)["value"].mean()


def _samples(
    d: pd.DataFrame, factor: str, levels: list[str], others: list[str], paired: bool
) -> tuple[dict[str, np.ndarray], int | None, int | None, list[str]]:
    """Values per level: complete blocks (paired, aligned by position) or all values (unpaired)."""
    notes: list[str] = []
    if not paired:
        if others and len(d):
            # only settings of the other factors that have every compared level: with a cell missing (lr
            # 0.1 run without weight decay only), pooling would credit the other factor's effect to this
            # one, the unpaired counterpart of dropping incomplete blocks
            has = d.groupby(others, sort=False)[factor].agg(lambda v: set(levels) <= set(v))
            keep = d.set_index(others).index.map(has).to_numpy(bool)
            gone = int((~keep & d[factor].isin(levels).to_numpy()).sum())
            if gone:
                notes.append(f"{gone} run(s) left out: their setting of {', '.join(others)} lacks a level "
                             f"compared here, so pooling them would mix that factor's effect into {factor}'s")
            d = d[keep]
            d, extra = _balanced(d[d[factor].isin(levels)], factor, others)
            if extra:
                notes.append(f"{extra} run(s) left out to balance the levels within each setting of "
                             f"{', '.join(others)} (the first runs of each kept): pooling unequal numbers of "
                             f"runs per setting would mix that factor's effect into {factor}'s")
        return {lv: d.loc[d[factor] == lv, "value"].to_numpy(float) for lv in levels}, None, None, notes
    if d.empty:
        return {lv: np.empty(0) for lv in levels}, 0, 0, notes
    key = ["unit", *others]
    cells = d.groupby([*key, factor], sort=False)["value"]
    dup = len(d) - cells.ngroups
    if dup:
        notes.append(f"{dup} repeated observation(s) of the same block and level were averaged")
    wide = cells.mean().unstack(factor).reindex(columns=levels)
    complete = wide.dropna()
    incomplete = len(wide) - len(complete)
    if others and len(complete):
        # one pair per unit: its complete blocks (the unit at one setting of the other factors) averaged.
        # A unit's blocks share its seed or segment, so they are not independent pairs: testing them as
        # such turns a unit that reacts to the factor in its own way into several "confirmations"
        per_unit = complete.groupby(level="unit", sort=False).mean()
        if len(per_unit) < len(complete):
            notes.append(f"paired on the unit: the {len(complete)} complete block(s) (a unit at one setting "
                         "of the other factors) averaged within each unit, one pair per unit "
                         f"({len(per_unit)}); a unit's blocks share it and are not independent pairs")
        complete = per_unit
    return {lv: complete[lv].to_numpy(float) for lv in levels}, len(complete), incomplete, notes


def _balanced(d: pd.DataFrame, factor: str, others: list[str]) -> tuple[pd.DataFrame, int]:
    """``d`` with as many runs of each level in every setting of ``others`` (the fewest any level has
    there; the first runs by unit, else in file order), and how many were left out. Unpaired tests pool a
    level's runs over the other factors' settings: with 10 runs of level A at weight decay 0 and 2 at 1,
    and the reverse for B, weight decay's effect would read as a difference between A and B."""
    if "unit" in d.columns:
        d = d.sort_values("unit", kind="stable")
    groups = d.groupby([*others, factor], sort=False)
    fewest = groups["value"].transform("size").groupby([d[o] for o in others], sort=False).transform("min")
    rank = groups.cumcount()
    kept = d[(rank < fewest).to_numpy(bool)]
    return kept, len(d) - len(kept)


def _omnibus(
    samples: dict[str, np.ndarray], spec: MetricSpec, factor: str, *, paired: bool, alpha: float
) -> tuple[OmnibusResult | None, str | None]:
    small = [level_name(factor, lv) for lv, v in samples.items() if v.size < MIN_N]
    if small:
        return None, f"omnibus test not run: too few observations for {', '.join(small)}"
    try:
        om = compare_many(samples, paired=paired, higher_is_better=spec.higher_is_better, alpha=alpha)
    except FAILURES as e:
        return None, f"omnibus test not run: {e}"
    # "level (rank)", as the critical-difference diagram labels them: "2 1.67" read as two numbers
    ranks = ", ".join(f"{level_name(factor, k)} ({fmt(v, 3)})"
                      for k, v in om.mean_ranks.sort_values().items())
    text = (
        f"{om.test} over {om.k} levels (n = {om.n}): statistic = {fmt(om.statistic)}, {p_is(om.pvalue)} "
        f"(not corrected); post-hoc {om.posthoc_test}; mean ranks (1 = best): {ranks}. Why: {om.reason}"
    )
    return om, text


def _compare_factor(
    d: pd.DataFrame,
    results: AblationResults,
    spec: MetricSpec,
    factor: str,
    levels: list[str],
    *,
    alpha: float,
    seed: int,
    aso_iterations: int,
    aso_confidence: float = 0.95,
) -> FactorComparison:
    primary = results.primary is not None and results.primary[0] == factor
    baseline = str(results.primary[1]) if primary and results.primary is not None else levels[0]
    if baseline not in levels:
        baseline = levels[0]
    is_primary = primary and results.primary is not None and results.primary[2] == spec.name
    paired = results.pairing == "unit"
    others = [f for f in results.factors if f != factor]
    notes_in: list[str] = []
    block_unit = ""
    within = within_run(d, list(results.factors))
    if not paired and factor in within:
        # the tested factor varies inside each run (the segments a search run is scored on): its levels'
        # values come from the same runs, so they pair on the run
        paired, block_unit = True, "run"
        d = d.assign(unit=run_keys(d))
        notes_in.append(f"{factor} varies inside each run, so its levels are compared paired on the run")
    elif not paired:  # a run is one independent sample: its rows at other levels of a within-run factor
        d = per_run(d, [f for f in results.factors if f not in within])  # are one run's, not several runs'
        others = [f for f in others if f not in within]  # averaged out
        if within:
            notes_in.append(f"each run's values averaged over {', '.join(within)} first (it varies inside a "
                            "run): one value per run")
    # a level with no value of this metric at all (e.g. accuracy on video where nothing can be scored)
    # would empty every paired block: test the other levels without it
    measured = set(d.loc[d["value"].notna(), factor].astype(str))
    empty = [lv for lv in levels if lv not in measured and lv != baseline]
    tested = [lv for lv in levels if lv not in empty]
    samples, n_blocks, n_incomplete, notes = _samples(d, factor, tested, others, paired)
    notes = notes_in + notes
    for lv in empty:
        samples[lv] = np.empty(0)
    if empty:
        notes.insert(0, f"no {spec.name} observed on {', '.join(level_name(factor, lv) for lv in empty)}: "
                        "left out of the tests")
    omnibus = summary = None
    if len(tested) > 2:
        omnibus, summary = _omnibus({lv: samples[lv] for lv in tested}, spec, factor, paired=paired,
                                    alpha=alpha)
    def pair(lv: str) -> tuple[np.ndarray, np.ndarray]:
        """A level and the baseline on every block that has both (a block that lacks only a third level
        still pairs them), each unit's blocks averaged; the omnibus test keeps ``samples``."""
        if len(tested) <= 2 or lv in empty or (not paired and not others):
            return samples[lv], samples[baseline]
        two = _samples(d, factor, [lv, baseline], others, paired)[0]
        return two[lv], two[baseline]

    pairwise = tuple(
        _pairwise(
            spec,
            factor,
            lv,
            baseline,
            *pair(lv),
            paired=paired,
            primary=is_primary,
            alpha=alpha,
            seed=seed,
            unit=block_unit or results.unit_name,
            aso_iterations=aso_iterations,
            aso_confidence=aso_confidence,
        )
        for lv in levels
        if lv != baseline
    )
    return FactorComparison(
        metric=spec.name,
        factor=factor,
        levels=tuple(levels),
        baseline=baseline,
        paired=paired,
        primary=is_primary,
        n_blocks=n_blocks,
        n_incomplete=n_incomplete,
        omnibus=omnibus,
        omnibus_summary=summary,
        pairwise=pairwise,
        notes=tuple(notes),
        block_unit=block_unit,
    )


# -------------------------------------------------------------------------------------------- summaries


def _level_summaries(
    d: pd.DataFrame, spec: MetricSpec, factor_levels: dict[str, list[str]], *, paired: bool, unit: str
) -> tuple[list[LevelSummary], list[LevelSummary], list[str]]:
    # one value per independent sample and level: a unit's runs at the other factors' levels when the study
    # pairs on the unit (they share its seed or segment), else a run (its rows at other levels of a factor
    # that varies inside it are one run); counting those as separate values made the CI too narrow
    levels, notes = [], []
    for f, lvs in factor_levels.items():
        others = [o for o in factor_levels if o != f]
        per, gone = _level_frame(d, f, factor_levels, paired=paired)
        if gone:
            notes.append(f"per level of {f}: {gone} run(s) left out, each of a {unit} at a setting of "
                         f"{', '.join(others)} that lacks a level of {f} (as the tests leave them out): "
                         f"a {unit} averaged over other settings at each level would mix those factors' "
                         f"effects into {f}'s")
        levels += [LevelSummary(spec.name, f, lv,
                                _describe(per.loc[per[f] == lv, "value"].to_numpy(float), ratio=spec.ratio))
                   for lv in lvs]
    cells: list[LevelSummary] = []
    if len(factor_levels) >= 2 and not d.empty:
        names = list(factor_levels)
        groups = {tuple(map(str, k)): g["value"].to_numpy(float) for k, g in d.groupby(names, sort=False)}
        for combo in product(*factor_levels.values()):
            if combo in groups:
                cells.append(
                    LevelSummary(
                        spec.name, " × ".join(names), " / ".join(combo),
                        _describe(groups[combo], ratio=spec.ratio),
                    )
                )
    return levels, cells, notes


def _level_frame(
    d: pd.DataFrame, factor: str, factor_levels: dict[str, list[str]], *, paired: bool
) -> tuple[pd.DataFrame, int]:
    """The rows the per-level table summarizes for ``factor`` (columns ``unit``, ``factor``, ``value``;
    unpaired also ``run``), and how many observed rows were left out: paired, one row per unit and level,
    its complete blocks' runs averaged (:func:`per_unit` of :func:`_complete_blocks`); else one row per
    run and level (:func:`per_run`)."""
    others = [o for o in factor_levels if o != factor]
    rows, gone = d, 0
    if paired and others:
        rows, gone = _complete_blocks(d, factor, factor_levels[factor], others)
    return (per_unit(rows, factor) if paired else per_run(rows, [factor])), gone


def level_values(results: AblationResults, metric: str, factor: str) -> pd.DataFrame:
    """The values of ``metric`` per level of ``factor`` that the report's per-level table summarizes, as
    :func:`analyse` reads them (missing and infinite values left out): in a study paired on its unit, one
    value per unit and level (its runs at the other factors' levels averaged, incomplete blocks dropped),
    else one per run. A plot of every run would pool a unit's runs at the other factors' levels as
    independent values, which neither the table nor the tests do."""
    import pandas as pd

    obs = results.observations
    if obs.empty or factor not in obs.columns:
        return pd.DataFrame(columns=["unit", factor, "value"])
    obs = obs.assign(
        unit=obs["unit"].astype(str), value=obs["value"].astype(float),
        **{f: obs[f].astype(str) for f in results.factors if f in obs.columns},
    )
    obs = obs[np.isfinite(obs["value"].to_numpy())]
    factor_levels = {f: _levels_of(obs, f, lv) for f, lv in results.factors.items()}
    return _level_frame(obs[obs["metric"] == metric], factor, factor_levels,
                        paired=results.pairing == "unit")[0]


def _complete_blocks(
    d: pd.DataFrame, factor: str, levels: list[str], others: list[str]
) -> tuple[pd.DataFrame, int]:
    """The rows of blocks (a unit at one setting of ``others``) observed at every level of ``factor``, and
    how many observed rows were left out; ``d`` unchanged where no block is complete (nothing to show
    otherwise, and the tests say why they could not run)."""
    seen = d[d["value"].notna()]
    if seen.empty:
        return d, 0
    key = ["unit", *others]
    full = seen.groupby(key, sort=False)[factor].agg(lambda v: set(levels) <= set(map(str, v)))
    keep = seen.set_index(key).index.map(full).to_numpy(bool)
    if not keep.any():
        return d, 0
    return seen[keep], int((~keep).sum())


# ---------------------------------------------------------------------------------------------- analyse


def _capped_notes(obs: pd.DataFrame, metrics: tuple[MetricSpec, ...] | list[MetricSpec]) -> list[str]:
    """A note per MAC-speedup metric of a study with values at the cap
    (:data:`~deltatune.search.objective.MAC_SPEEDUP_CAP`): a segment where the setting did (almost) no
    multiply-adds records the cap, not its larger (or infinite) ratio, so its means and tests understate
    those runs. A table's metrics (labelled by their names) are not MAC counts of ours."""
    from deltatune.search.objective import MAC_SPEEDUP_CAP

    out = []
    for spec in metrics:
        if not spec.label.startswith("MAC speedup"):
            continue
        values = obs.loc[obs["metric"] == spec.name, "value"]
        k = int((values >= MAC_SPEEDUP_CAP).sum())
        if k:
            out.append(f"{k} {spec.name} observation(s) at the {MAC_SPEEDUP_CAP:g}x cap: the setting did "
                       "(almost) no multiply-adds there, and the cap stands in for a larger (or infinite) "
                       f"ratio, so the means and tests of {spec.name} understate those runs (deltatune "
                       "inspect gives the uncapped figure)")
    return out


def _level_medians(runs: tuple[RunSpeed, ...], factor: str, level: str, *, paired: bool) -> np.ndarray:
    """The runs' median speed-ups at ``level`` of ``factor``, one per unit (its runs' mean) when the study
    pairs on the unit: the runs of one seed at other factors' levels are not independent."""
    runs = [r for r in runs if r.levels.get(factor) == level and math.isfinite(r.median)]
    if not paired:
        return np.array([r.median for r in runs])
    by_unit: dict[str, list[float]] = {}
    for r in runs:
        by_unit.setdefault(r.unit or r.run, []).append(r.median)
    return np.array([float(np.mean(v)) for v in by_unit.values()])


def _holm_pass(metrics: list[MetricAnalysis], alpha: float) -> tuple[list[MetricAnalysis], int]:
    """Holm-adjust every pairwise p of ``metrics`` as one family and write the summaries."""
    flat = [p for m in metrics for c in m.comparisons for p in c.pairwise]
    adjusted = iter(holm([p.p_raw for p in flat]).tolist() if flat else [])
    out = []
    for m in metrics:
        comps = []
        for c in m.comparisons:
            pws = []
            for p in c.pairwise:
                ph = float(next(adjusted))
                p = replace(p, p_holm=ph, significant=bool(math.isfinite(ph) and ph < alpha))
                pws.append(replace(p, summary=summary(p, m.spec, alpha)))
            comps.append(replace(c, pairwise=tuple(pws)))
        out.append(replace(m, comparisons=tuple(comps)))
    return out, sum(math.isfinite(p.p_raw) for p in flat)


def _factorial(
    d: pd.DataFrame, factors: list[str], results: AblationResults, alpha: float
) -> tuple[FactorialResult | None, str | None]:
    """The factorial ANOVA of one metric's observations when two or more design factors vary, blocked on
    the unit when the study pairs on it; ``(None, why)`` when the data cannot carry it.

    The runs are the experimental units: a factor that varies inside a run (the segments a search run is
    scored on) is averaged out of each run first, and said so, since its rows are not independent runs
    (testing them as such would count one run several times)."""
    if len(factors) < 2 or not len(d):
        return None, None
    within = within_run(d, factors)
    design = [f for f in factors if f not in within]
    said = None
    if within:
        d = per_run(d, design)
        said = (f"The factorial ANOVA uses each run's mean over {', '.join(within)}: "
                f"{'it varies' if len(within) == 1 else 'they vary'} inside a run, so its rows are not "
                "separate runs.")
    if len(design) < 2:
        return None, None
    notes: list[str] = []
    block = "unit" if results.pairing == "unit" else None
    r = attempt(notes, "factorial ANOVA", factorial_anova, d, design, block=block, alpha=alpha)
    return r, (notes[0] if notes else said)


def analyse(
    results: AblationResults, *, alpha: float = 0.05, seed: int = 0, aso_iterations: int = 1000
) -> Analysis:
    """The statistics of ``results`` for its report (see the module docstring); deterministic in ``seed``.

    Raises :class:`~deltatune.errors.ConfigError` when the observations lack a column of the schema;
    missing or too few observations give NaN results with a reason instead. ``aso_iterations``: bootstrap
    iterations of each almost-stochastic-order test (deepsig's default 1000 takes a few seconds per
    comparison; fewer give a coarser ``eps_min``).
    """
    obs = results.observations
    needed = ["run", "unit", "metric", "value", *results.factors]
    missing = [c for c in needed if c not in obs.columns]
    if missing:
        raise ConfigError(f"observations: missing column(s) {', '.join(missing)}")
    obs = obs.copy()
    for c in ["unit", *results.factors]:
        obs[c] = obs[c].astype(str)
    obs["value"] = obs["value"].astype(float)
    notes = []
    bad = ~np.isfinite(obs["value"].to_numpy())
    recorded = obs.groupby("metric").size().to_dict()
    missing = obs[bad].groupby("metric").size().to_dict()
    every = obs  # a run whose values are all missing (a search that found nothing) still ran
    if bad.any():
        n_missing = int(np.isnan(obs["value"].to_numpy()).sum())  # an empty cell, a run that scored nothing
        if n_missing:
            notes.append(f"{n_missing} missing observation(s) (no value recorded) were left out")
        if int(bad.sum()) > n_missing:
            notes.append(f"{int(bad.sum()) - n_missing} infinite observation(s) were left out")
        obs = obs[~bad]
    notes += _capped_notes(obs, results.metrics)
    factor_levels = {f: _levels_of(obs, f, lv) for f, lv in results.factors.items()}
    for f, lv in factor_levels.items():  # listed as a factor, but every run has the same setting
        if len(lv) == 1:
            notes.append(f"factor {f} has one level ({lv[0]}): there is nothing to compare, so no test of "
                         "it; it is a setting every run shares")
    specs = list(results.metrics)
    pf = results.primary[0] if results.primary else None
    if results.primary is not None:
        specs.sort(key=lambda s: s.name != results.primary[2])  # stable: primary metric first
    order = sorted(factor_levels, key=lambda f: f != pf)
    varied = [f for f in order if len(factor_levels[f]) >= 2]  # observed with two levels or more
    metrics = []
    # deepsig's advice for several comparisons: each ASO's confidence level Bonferroni-corrected, 1 - alpha
    # / m over the study's level-vs-baseline comparisons (uncorrected, 5 of 7 levels that differed by
    # nothing were "almost stochastically better" from 3 runs each)
    n_compared = len(specs) * sum(len(factor_levels[f]) - 1 for f in varied)
    aso_confidence = 1.0 - alpha / max(1, n_compared)
    for spec in specs:
        d = obs[obs["metric"] == spec.name]
        levels, cells, levels_notes = _level_summaries(
            d, spec, factor_levels, paired=results.pairing == "unit", unit=results.unit_name
        )
        comps = tuple(
            _compare_factor(
                d, results, spec, f, factor_levels[f], alpha=alpha, seed=seed, aso_iterations=aso_iterations,
                aso_confidence=aso_confidence,
            )
            for f in varied
        )
        factorial, factorial_note = _factorial(d, varied, results, alpha)
        metrics.append(
            MetricAnalysis(
                spec,
                tuple(levels),
                tuple(cells),
                comps,
                n_observations=int(recorded.get(spec.name, 0)),
                n_missing=int(missing.get(spec.name, 0)),
                factorial=factorial,
                factorial_note=factorial_note,
                levels_notes=tuple(levels_notes),
            )
        )
    metrics, family = _holm_pass(metrics, alpha)
    speed_runs = speed_per_run(results.speed_repeats, list(factor_levels))
    speed_levels = tuple(
        LevelSummary("speed ratio", f, lv, _describe(meds, ratio=True))
        for f in factor_levels
        for lv in factor_levels[f]
        if (meds := _level_medians(speed_runs, f, lv, paired=results.pairing == "unit")).size
    )
    return Analysis(
        study=results.name,
        alpha=alpha,
        seed=seed,
        pairing=results.pairing,
        metrics=tuple(metrics),
        family_size=family,
        n_pairwise=sum(len(c.pairwise) for m in metrics for c in m.comparisons),
        speed_runs=speed_runs,
        speed_levels=speed_levels,
        runs=run_count(results, every),
        provenance=provenance_summary(results.provenance),
        notes=tuple(notes),
        seed_table=seed_table_stats(results, seed, alpha),
    )
