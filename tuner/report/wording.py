"""Plain-words text of a report: number formats, test names, verdicts and the "how to read" section.

Kept apart from the statistics (:mod:`deltatune.report.analysis`) and the layout
(:mod:`deltatune.report.document`) so that both output formats say exactly the same thing.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deltatune.ablation.results import MetricSpec
    from deltatune.report.analysis import PairwiseComparison
    from deltatune.stats import EquivalenceResult, TestResult

__all__ = [
    "fmt",
    "fmt_p",
    "p_is",
    "fmt_signed",
    "fmt_percent",
    "level_name",
    "pair_name",
    "test_name",
    "effect_name",
    "power_note",
    "equivalence_verdict",
    "summary",
    "missing_values",
    "HOW_TO_READ",
]

#: Display names of the tests' identifiers (``deltatune.stats`` result ``test`` fields); unknown
#: identifiers are shown as they are.
_TEST_NAMES = {
    "paired_t": "paired t-test",
    "paired-t": "paired t-test",
    "ttest_rel": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank",
    "welch": "Welch's t-test",
    "welch_t": "Welch's t-test",
    "ttest_ind": "Welch's t-test",
    "mannwhitneyu": "Mann-Whitney U",
    "mann_whitney": "Mann-Whitney U",
    "mann-whitney": "Mann-Whitney U",
    "rm_anova": "repeated-measures ANOVA",
    "rm-anova": "repeated-measures ANOVA",
    "friedman": "Friedman",
    "anova": "one-way ANOVA",
    "kruskal": "Kruskal-Wallis",
    "kruskal_wallis": "Kruskal-Wallis",
    "kruskal-wallis": "Kruskal-Wallis",
    "nemenyi": "Nemenyi",
    "conover": "Conover",
    "tost": "TOST",
    "bayes_signed_rank": "Bayesian signed-rank",
    "aso": "almost stochastic order",
    "none": "no test",
}

_EFFECT_NAMES = {"hedges_g": "Hedges' g", "cliffs_delta": "Cliff's delta", "rank_biserial": "rank-biserial r"}


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt(x: Any, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits; "–" for a missing or non-finite value."""
    if isinstance(x, bool | str):
        return str(x)
    if not _finite(x):
        return "–"
    v = float(x)
    if v == 0:
        return "0"
    if abs(v) >= 10**digits:
        return f"{v:.0f}" if abs(v) < 1e9 else f"{v:.{digits - 1}e}"
    if abs(v) >= 1:
        return f"{v:#.{digits}g}".rstrip(".")
    if abs(v) >= 10**-digits:
        return f"{v:.{digits}f}"
    return f"{v:.{digits - 1}e}"


def fmt_signed(x: Any, digits: int = 3) -> str:
    """Like :func:`fmt` with an explicit sign ("+0.31", "-1.2")."""
    s = fmt(x, digits)
    return s if s == "–" or s.startswith("-") else f"+{s}"


def fmt_percent(x: Any, digits: int = 3) -> str:
    """A fraction as a percentage with ``digits`` significant digits, written as the rest of the report and
    the README write percentages, a space before the sign: 0.75 -> "75 %", 0.99167 -> "99.2 %"; "–" when
    missing."""
    return f"{100 * float(x):.{digits}g} %" if _finite(x) else "–"


#: A level that reads as a number: an integer, decimal or exponent number, or a ratio (``1/2``).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(/(\d+\.?\d*|\.\d+))?")


def reads_as_number(level: object) -> bool:
    """Whether a level's name reads as a number (``2``, ``0.001``, ``1e-3``, ``1/2``, ``inf``)."""
    text = str(level).strip()
    if _NUMBER.fullmatch(text):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def level_name(factor: str, level: object) -> str:
    """A level as the report's sentences, comparisons and labels name it: ``factor=level`` where the level
    reads as a number (``keyframe_interval=2``, ``lr=0.001``), since a bare number beside the report's
    statistics reads as one of them ("every level but 1", "mean ranks: 2 1.67"); any other level as it is
    (``tpe``). Tables with a factor column and plots whose axis or legend names the factor show levels
    bare."""
    return f"{factor}={level}" if reads_as_number(level) else str(level)


def pair_name(factor: str, level: object, baseline: object) -> str:
    """A level-vs-baseline comparison named as :func:`level_name` names its levels (``tpe vs greedy``,
    ``keyframe_interval=2 vs keyframe_interval=0``)."""
    return f"{level_name(factor, level)} vs {level_name(factor, baseline)}"


#: Common significance levels: a p-value that three decimals would round onto one gets more digits.
_ALPHAS = (0.01, 0.05, 0.1)


def _off_the_mark(v: float, decimals: int, marks: tuple[float, ...]) -> str:
    """``v`` with ``decimals`` decimals, or more (up to 6) where that rounds it onto one of ``marks`` that
    it is not: 0.0497 printed "0.050" beside "significant" and 0.0503 "0.050" beside "not significant"."""
    text = f"{v:.{decimals}f}"
    while decimals < 6 and v not in marks and any(float(text) == m for m in marks):
        decimals += 1
        text = f"{v:.{decimals}f}"
    return text


def fmt_p(p: Any) -> str:
    """A p-value: "< 0.001" below 0.001, else three decimals (more where three would round it onto 0.01,
    0.05 or 0.1, the side of which the verdict beside it depends on); "–" when missing."""
    if not _finite(p):
        return "–"
    v = float(p)
    return "< 0.001" if v < 0.001 else _off_the_mark(v, 3, _ALPHAS)


def fmt_prob(p: Any) -> str:
    """A posterior probability in the p-value's format: three decimals, "< 0.001" and "> 0.999" at the
    ends (a sampled 1.00 is not certainty, and "1.00" beside p-values of "< 0.001" read as another
    scale); "–" when missing."""
    if not _finite(p):
        return "–"
    v = float(p)
    return "< 0.001" if v < 0.001 else "> 0.999" if v > 0.999 else f"{v:.3f}"


def fmt_eps(eps: Any) -> str:
    """An ASO eps_min as :func:`fmt` writes it, with more decimals where three would round it onto 0.2 or
    0.5, the thresholds its verdict is read against (0.19995 printed "0.200 ... better")."""
    if not _finite(eps) or not 0.001 <= abs(float(eps)) < 1:
        return fmt(eps)
    return _off_the_mark(float(eps), 3, (CONFIDENT_ASO, 0.5))


def p_is(p: Any, name: str = "p") -> str:
    """``"p = 0.031"`` or ``"p < 0.001"`` for a sentence (``name`` replaces "p", e.g. "Holm p")."""
    s = fmt_p(p)
    return f"{name} {s}" if s.startswith("<") else f"{name} = {s}"


def test_name(test: str) -> str:
    """Display name of a test identifier."""
    return _TEST_NAMES.get(test.lower(), _TEST_NAMES.get(test.lower().replace(" ", "_"), test))


def effect_name(name: str, paired: bool = False) -> str:
    """Display name of an effect-size identifier; a paired Hedges' g is g_z (the mean difference over the
    SD of the differences), named so."""
    if name == "hedges_g" and paired:
        return "Hedges' g_z"
    return _EFFECT_NAMES.get(name, name)


def power_note(test: TestResult, n: int | str, unit: str, alpha: float = 0.05) -> str:
    """The power note of a comparison: repeats for 80 % power at the observed Hedges' g, at ``alpha``
    (the level :func:`~deltatune.stats.compare_two` planned ``power_n`` for). ``n``: what the comparison
    has (its pairs, or its runs at each level: ``"5 and 9"``)."""
    from deltatune.stats.power import MAX_REPEATS

    g = test.effect_sizes[0].value if test.effect_sizes else math.nan
    what = f"{unit}s (pairs)" if test.paired else f"{unit}s per level"
    if g == 0:
        return f"power: the observed {effect_name('hedges_g', test.paired)} is 0, and no number of {what} " \
               "gives power to detect a difference of 0"
    if not math.isfinite(g) or test.power_n is None:
        return "power: no effect size could be estimated, so no sample size can be suggested"
    many = f"more than {MAX_REPEATS}" if test.power_n >= MAX_REPEATS else f"about {test.power_n}"
    return (
        f"power: {many} {what} would give 80 % power to detect the observed "
        f"{effect_name('hedges_g', test.paired)} = {g:.2f} at alpha {alpha:g} (this comparison has {n})"
    )


def point_interval(low: float, high: float) -> bool:
    """Whether a CI of a difference is one point: every pair (or both constant levels) differs by one
    amount, so there is no spread, no t statistic and no interval to show."""
    return math.isfinite(low) and low == high


#: Fewer runs at a level (or pairs) than this and an equivalence verdict says it rests on normality that
#: the data cannot check (Shapiro-Wilk needs 3 values).
MIN_CHECKED_N = 3


def equivalence_verdict(
    eq: EquivalenceResult | None, margin: float | None, n: int | None = None
) -> str | None:
    """The equivalence verdict of TOST within ``±margin`` (``None`` without a margin); ``n``: the fewest
    runs at either level (pairs, paired), below :data:`MIN_CHECKED_N` said to be rough."""
    if margin is None:
        return None
    if eq is None or not math.isfinite(eq.pvalue):
        return f"equivalence within ±{margin:g} not tested"
    if point_interval(eq.ci_low, eq.ci_high):  # every pair (or both constant levels) differs alike
        where = "inside" if eq.equivalent else "outside"
        return (f"{where} ±{margin:g} in every run (no spread: TOST's {p_is(eq.pvalue)} only restates it, "
                "and runs that all agree may be copies, not evidence of equivalence beyond them)")
    if eq.equivalent and n is not None and n < MIN_CHECKED_N:
        what = ("pair" if n == 1 else "pairs") if eq.paired else ("run" if n == 1 else "runs")
        return (f"equivalent within ±{margin:g} (TOST {p_is(eq.pvalue)}), but from {n} {what} a level: its "
                "t-tests rest on a normality these data cannot check; read it as rough")
    if eq.equivalent:
        return f"equivalent within ±{margin:g} (TOST {p_is(eq.pvalue)})"
    return f"not shown equivalent within ±{margin:g} (TOST {p_is(eq.pvalue)})"


def wilcoxon_floor(test: str, n: int) -> float | None:
    """The smallest two-sided p an exact Wilcoxon signed-rank test can give with ``n`` pairs, none of them a
    zero difference: ``2 / 2**n`` (:func:`~deltatune.stats.two_levels.rank_floor` of such pairs; a test's
    own ``floor`` counts its zero differences out); ``None`` for other tests."""
    return min(1.0, 2.0 / 2**n) if test == "Wilcoxon signed-rank" and n > 0 else None


#: The eps_min below which the report calls a level "almost stochastically better": deepsig's authors'
#: threshold for a confident claim (Ulmer et al. 2022); below 0.5 it is only "better more often than not".
CONFIDENT_ASO = 0.2
#: Fewer runs at either level than this and the report draws no almost-stochastic-order conclusion: two
#: levels that differed by nothing got a "confident" eps_min < 0.2 in 10.5 % of comparisons from 3 runs
#: each, 7 % from 5 (200 simulations each, 1000 bootstrap iterations).
MIN_ASO_RUNS = 5


def aso_too_few(pw: PairwiseComparison) -> bool:
    """Whether either level of ``pw`` has too few runs for an almost-stochastic-order claim."""
    return min(pw.n_a, pw.n_b) < MIN_ASO_RUNS


def summary(pw: PairwiseComparison, spec: MetricSpec, alpha: float) -> str:
    """One sentence on what the comparison found, as a reader would say it."""
    head = pair_name(pw.factor, pw.level, pw.baseline)
    level = level_name(pw.factor, pw.level)
    if not math.isfinite(pw.p_raw):
        return f"{head}: not tested ({pw.test.reason})"
    direction = "" if pw.better is None else (" (better" if pw.better else " (worse")
    if direction:  # a difference no test told from chance is only a direction, not a finding
        direction += ")" if pw.significant else " direction)"
    verdict = "significant after Holm correction" if pw.significant else "not significant after correction"
    mean = f"{fmt_signed(pw.diff_ci_low)} to {fmt_signed(pw.diff_ci_high)}"
    flat = pw.test.n >= 2 and point_interval(pw.diff_ci_low, pw.diff_ci_high)  # no spread
    if flat:
        which = (f"every one of the {pw.test.n} pairs differs by exactly this" if pw.paired
                 else "both levels are constant")
        estimate = (f"{fmt_signed(pw.diff)} {spec.label}{direction} ({which}: no spread, so neither a t-test "
                    "nor a t CI is defined)")
    elif pw.rank_test:  # its verdict is about the shift, not the mean, which one outlier can move anywhere
        estimate = (f"shift {fmt_signed(pw.shift)} {spec.label}{direction} (Hodges-Lehmann, the rank test's "
                    f"estimate; mean difference {fmt_signed(pw.diff)}, 95 % t CI {mean})")
    else:
        estimate = f"{fmt_signed(pw.diff)} {spec.label}{direction} (95 % CI {mean})"
    parts = [
        f"{head}: {estimate}, {pw.test.test} {p_is(pw.p_raw)}, {p_is(pw.p_holm, 'Holm p')}: {verdict} at "
        f"alpha {alpha:g}"
    ]
    if flat and not pw.paired and pw.significant:
        parts.append("both levels gave one value in every run: if their runs are copies (a deterministic "
                     "method, whatever the seed), each level is one run, and the test counts copies as "
                     "replicates")
    floor = wilcoxon_floor(pw.test.test, pw.test.n)
    if floor is not None and math.isfinite(pw.test.floor):  # its zero differences dropped, as the test does
        floor = pw.test.floor
    if pw.test.test == "Mann-Whitney U" and math.isfinite(pw.test.floor):  # of these values, ties counted
        floor = pw.test.floor
    if floor is not None and floor >= 1:  # every difference zero: nothing to rank, and nothing to find
        floor = None
    pairs = f"{pw.test.n} pairs"
    if 0 < pw.test.ranked < pw.test.n:  # the test ranks only the pairs that differ
        zeros = pw.test.n - pw.test.ranked
        pairs = f"{pw.test.ranked} non-zero pairs ({zeros} zero difference{'s' * (zeros > 1)} dropped)"
    # the floor is the p the test gives the most extreme arrangement of these values (not said to be exact
    # for Mann-Whitney: beyond 8 runs a level, or with ties and many runs, it is approximated)
    with_floor = (f"with {pairs} an exact Wilcoxon" if pw.paired
                  else f"with {pw.n_a} and {pw.n_b} values a Mann-Whitney")
    agree = "every one agrees" if pw.paired else "no value of one level above any of the other"
    these = "these pairs" if pw.paired else "these values"
    if floor is not None and floor >= alpha:
        parts.append(f"{with_floor} p cannot go below {floor:.3g}: more repeats are needed before it can be "
                     "significant")
    elif floor is not None and math.isclose(pw.p_raw, floor, rel_tol=1e-9) and not pw.significant:
        # below alpha alone, but the Holm correction multiplies it by up to the family's size
        parts.append(f"{with_floor} p cannot go below {floor:.3g}, which it reached ({agree}): after the "
                     f"Holm correction no result of {these} could be significant; more repeats are needed")
    if pw.test.effect_sizes:
        e = pw.test.effect_sizes[0]
        if math.isfinite(e.value):
            parts.append(f"{effect_name(e.name, pw.paired)} = {e.value:.2f} ({e.magnitude})")
        elif pw.paired and min(pw.n_a, pw.n_b) == 2:  # J(1) = 0: no unbiased estimate from 2 pairs
            parts.append(f"{effect_name(e.name, pw.paired)} undefined (only 2 pairs: too few to estimate it)")
        else:  # e.g. every pair differs by the same amount: no spread to measure the difference in
            parts.append(f"{effect_name(e.name, pw.paired)} undefined (no spread to scale the difference by, "
                         "or too few pairs)")
    if pw.equivalence_verdict:
        parts.append(pw.equivalence_verdict)
    if pw.aso is not None and math.isfinite(pw.aso.eps_min):
        if aso_too_few(pw):  # eps_min of two values against two is no evidence either way
            who = f"from {min(pw.n_a, pw.n_b)} runs at a level: too few for a claim either way"
        elif pw.aso.a_dominates and pw.aso.eps_min < CONFIDENT_ASO:
            who = f"{level} almost stochastically better"
        elif pw.aso.a_dominates:
            who = (f"{level} better more often than not; a confident claim needs eps_min < "
                   f"{CONFIDENT_ASO:g}")
        else:
            who = f"{level} not shown almost stochastically better"
        parts.append(f"ASO eps_min = {fmt_eps(pw.aso.eps_min)} ({who})")  # as the ASO table writes it
    return "; ".join(parts)


def missing_values(
    n_missing: int, n_observations: int, unit_name: str = "seed", *, from_table: bool = False
) -> str:
    """The sentence under a metric's heading when some of its observations have no value. ``unit_name``
    is the study's repeated unit: ``"segment"`` for fixed settings scored on segments, where only the
    accuracy can be missing; ``"seed"`` for runs that search, where a search can also find nothing.
    ``from_table``: the runs came from a CSV table, where a missing value is an empty (or NaN) cell."""
    why = "accuracy is unknown where the dense model finds nothing to score"
    if from_table:
        why = "the table leaves those cells empty (or NaN)"
    elif unit_name != "segment":
        why = (
            "a search run that found no setting within its budget has no tuning or held-out values, "
            f"and {why}"
        )
    return (
        f"No value in {n_missing} of {n_observations} observations: {why}. They are left out of every table "
        "and test below, so a level's n can be smaller than its runs and a paired test can lose whole blocks."
    )


#: The "how to read this report" section: (term, explanation) pairs, shared by HTML and Markdown.
HOW_TO_READ: tuple[tuple[str, str], ...] = (
    (
        "Levels and CIs",
        "Each table gives, per level of a factor, the number of observations n, mean, standard deviation, "
        "median and a 95 % Student-t confidence interval of the mean (differences of means: paired t or "
        "Welch). With a handful of seeds the CI is wide: read it before the mean. (A bootstrap CI would be "
        "narrower, and wrong: at 5 repeats it covers the true mean only about 85 % of the time.) A speed-up "
        "is a ratio: its tables give the geometric mean and the t interval of the logs, mapped back, which "
        "stays above 0 where a plain t interval of 2-3 speed-ups can reach below it.",
    ),
    (
        "Pairing",
        "When levels were run on the same repeated units (same seeds or clips), each level is compared "
        "with the baseline unit by unit: a block is one unit under one combination of the other factors, "
        "the omnibus test keeps the blocks that have every level and a level-vs-baseline test those that "
        "have both, and each unit's blocks are averaged into one pair (they "
        "share the unit's seed or clip, so they are not independent pairs). Otherwise the levels are "
        "compared as independent samples.",
    ),
    (
        "Test choice",
        "Two levels: Shapiro-Wilk on the paired differences (or on each sample) decides between the paired "
        "t-test and the Wilcoxon signed-rank test (paired), or Welch's t-test and the Mann-Whitney U test "
        "(unpaired), except where the rank test cannot reach alpha with so few (or so tied) values (then the "
        "t-test); the 'why this test' column quotes the reason. More than two levels: an omnibus test, "
        "repeated-measures ANOVA "
        "(Greenhouse-Geisser corrected for sphericity) or Friedman (paired), Welch's one-way ANOVA or "
        "Kruskal-Wallis (unpaired), chosen the same way, with a post-hoc matrix (paired t-tests with Holm, "
        "Nemenyi, Welch t-tests with Holm or Dunn with Holm); each level is also compared with the baseline "
        "by the two-level rule.",
    ),
    (
        "Factors together",
        "With two or more varied factors each metric also gets one factorial ANOVA: every factor and every "
        "pair of factors (their interaction) in one model. When the study pairs on a repeated unit, a "
        "within-unit (repeated-measures) ANOVA: each effect is tested against its own interaction with the "
        "unit, so a seed that reacts to a level in its own way counts as noise, not evidence (units "
        "without a value in every cell are left out); otherwise least squares, type II sums of squares. "
        "Shapiro-Wilk on its residuals decides between "
        "its F tests and the aligned rank transform (ART: each effect's aligned values ranked and refitted). "
        "Partial eta squared is the effect's share of the variance left after the other effects. An "
        "interaction means a factor's effect depends on another's level; the level-vs-baseline tests average "
        "over the other factors, so read the per-cell table first. Its p-values are not adjusted.",
    ),
    (
        "Holm",
        "Every level-vs-baseline comparison of the report (all metrics, all factors) forms one family; "
        "Holm's step-down correction adjusts their p-values so that the chance of any false positive stays "
        "below alpha. 'Significant' means Holm-adjusted p < alpha. Omnibus p-values are not adjusted, nor "
        "are the CIs: a 95 % CI that excludes 0 beside a Holm p above alpha is one comparison's evidence, "
        "not enough once the family is counted.",
    ),
    (
        "Effect sizes",
        "Hedges' g is the mean difference in standard deviations (0.2 small, 0.5 medium, 0.8 large). Paired, "
        "it is g_z: the mean difference over the SD of the paired differences, which is larger than over "
        "the levels' own SD when seeds move both levels alike, so those words read high for it (Lakens "
        "2013). The "
        "rank-biserial correlation (paired) and Cliff's delta (unpaired) are rank-based, from -1 to 1 "
        "(0.147 small, 0.33 medium, 0.474 large). g's CI inverts the noncentral t distribution of the t "
        "statistic (exact for normal data, and sensible with few repeats): it is the interval of the "
        "population effect, without g's small-sample shrinkage, so with 3-5 repeats it is not centred on g "
        "and reaches further from 0 than g does; the rank-based CIs are bootstrap "
        "intervals, too narrow with few repeats (in simulation the rank-biserial one held the effect 70-84 % "
        "of the time at 5 pairs and 85-93 % at 8): read them as rough.",
    ),
    (
        "Equivalence margin",
        "A metric with a margin m declares differences within ±m practically irrelevant. TOST (two one-sided "
        "tests) shows equivalence when its p < alpha, i.e. the (1 - 2 alpha) CI of the difference (90 % at "
        "alpha 0.05) lies inside ±m; 'not shown equivalent' means the data cannot rule out a difference of m "
        "or more, not that the levels differ. The Bayesian signed-rank test gives the posterior "
        "probabilities that the difference (level - baseline) is below -m (p_left), inside ±m (p_rope) or "
        "above m (p_right): for a higher-is-better metric p_left is 'practically worse', for a "
        "lower-is-better one (a loss, a time) 'practically better'.",
    ),
    (
        "Almost stochastic order",
        "ASO (Dror et al. 2019) compares whole score distributions: eps_min near 0 means the level is "
        "better than the baseline almost everywhere (in the metric's direction). The report says 'almost "
        "stochastically better' below 0.2, deepsig's authors' threshold for a confident claim, and 'better "
        "more often than not' from 0.2 to 0.5, from 5 runs a level or more (from 3, levels that differ by "
        "nothing got below 0.2 one time in ten). Each eps_min is an upper confidence bound at 1 - alpha / m "
        "for the study's m comparisons (Bonferroni, as deepsig's authors advise). At 0.5 or above the "
        "level is not shown better; a value near 1 is not evidence that the baseline is better (with a "
        "handful of runs it can be near 1 both ways). ASO treats the levels as independent samples: it "
        "ignores the pairing, so a difference every pair shows can still get a high eps_min; the paired "
        "test is the one to read for that.",
    ),
    (
        "Resampling seed",
        "The bootstrap CIs, the Bayesian signed-rank test's sampling and ASO draw random numbers from this "
        "seed (the header's 'resampling seed'), so the same runs give the same report. It is not a seed of "
        "the runs.",
    ),
    (
        "Power",
        "The power note gives how many repeats per level a t-test would need for an 80 % chance of "
        "detecting the observed Hedges' g at the report's alpha. A number far above the study's n means a "
        "non-significant result says little; the observed effect is itself an estimate.",
    ),
    (
        "Measured speed",
        "Each run's timing repeats give a median speed-up (dense / delta time) with the order-statistic CI "
        "of the median over its repeats (distribution-free, with the confidence level it reaches: up to 8 "
        "repeats it is [min, max], and up to 5 that is less than 95 %, e.g. 75 % at 3 repeats); each "
        "level's CI is the t interval over its runs' medians.",
    ),
    (
        "Critical-difference diagram",
        "Levels are placed on their mean rank (1 = best); a bar joins levels that the post-hoc test does "
        "not tell apart.",
    ),
)
