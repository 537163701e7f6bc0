"""Comparing two levels: choose the t-test or its rank-based counterpart, run it, add effect sizes.

The rule (fixed in advance, so it cannot be tuned to the outcome):

- **paired** (the same seeds/clips under both levels): Shapiro-Wilk on the differences ``a - b``. If they
  look normal (``p >= alpha``) a paired t-test (``scipy.stats.ttest_rel``), otherwise the Wilcoxon
  signed-rank test (``scipy.stats.wilcoxon``, zero differences dropped, exact p for small n). With fewer
  than 3 pairs or all-equal differences Shapiro-Wilk is undefined and the Wilcoxon test is used.
- **unpaired**: Shapiro-Wilk on each group. If both look normal, Welch's t-test (``ttest_ind`` with
  ``equal_var=False``; no equal-variance assumption), otherwise the Mann-Whitney U test (two-sided;
  :func:`mann_whitney`: exact also with tied values, where scipy would approximate).

Shapiro-Wilk has little power with a handful of repeats, so "looks normal" means only "no evidence against
normality"; the rank tests lose little efficiency when the data are normal, which is why doubt favours them.
Except where a rank test cannot reach ``alpha`` at all: its p is at least :func:`rank_floor` of these
values (five pairs: 0.0625; three against three: 0.1; more where values are tied: [1, 1, 1, 2] against
[2, 3, 3, 3], 0.057), so with so few repeats choosing it would make every difference, however consistent,
"not significant"; the t-test is used there (the reason says so), unless the data are constant (all
differences equal), where no t statistic is defined.
``parametric=True``/``False`` overrides the rule (the reason then says so).

The rank tests rank differences (paired) or values (unpaired) snapped to a billionth of the data's scale
(:mod:`deltatune.stats._ties`), so values equal in exact arithmetic tie: ``5.1 - 5.0`` and ``5.4 - 5.3``
are one difference, not two that floating-point noise orders.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from deltatune.errors import ConfigError
from deltatune.stats._normality import fmt_p, no_spread, same_up_to_rounding, shapiro_p
from deltatune.stats._results import TestResult
from deltatune.stats._ties import snap_together, snapped_differences
from deltatune.stats._validate import as_pair, check_fraction
from deltatune.stats.effect import cliffs_delta, hedges_g, rank_biserial
from deltatune.stats.power import repeats_for_power

__all__ = ["compare_two", "mann_whitney", "rank_floor"]


def rank_floor(a: Sequence[float], b: Sequence[float], *, paired: bool) -> float:
    """The smallest two-sided p the rank test :func:`compare_two` runs on ``a`` and ``b`` could give, however
    their values were arranged; at most 1.

    Paired, the Wilcoxon signed-rank test: every sign agreeing, ``2 / 2**n`` for the ``n`` pairs whose
    difference is not zero (the test drops the others; tied differences change nothing, one sign pattern
    in ``2**n`` is still the most extreme). Unpaired, the Mann-Whitney U test (:func:`mann_whitney`): the
    split of the pooled values that puts the smallest ``len(a)`` of them into ``a``, or the largest (the
    rank sum is then as small or as large as it can be, so nothing is more extreme), its p computed as
    :func:`mann_whitney` computes it for these values. Without ties that is ``2 / C(n_a + n_b, n_a)``;
    tied values can raise it (several splits then share the extreme rank sum): ``[1, 1, 1, 2]`` against
    ``[2, 3, 3, 3]`` cannot go below 0.057, not 2/70 = 0.029, and a count of the values alone would let the
    rule choose a Mann-Whitney test that could not reach 0.05.

    >>> rank_floor([1, 2, 3, 4, 5], [0, 0, 0, 0, 0], paired=True), rank_floor([1, 2, 3], [4, 5, 6],
    ...                                                                        paired=False)
    (0.0625, 0.1)
    >>> [round(rank_floor(a, b, paired=False), 4) for a, b in [([1, 2, 3, 4], [5, 6, 7, 8]),
    ...                                                         ([1, 1, 1, 2], [2, 3, 3, 3])]]
    [0.0286, 0.0571]
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:  # a difference of floating-point noise is a zero difference (deltatune.stats._ties)
        return min(1.0, 2.0 / 2 ** int(np.count_nonzero(snapped_differences(x, y))))
    pooled = np.sort(np.concatenate(snap_together(x, y)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        low = mann_whitney(pooled[: x.size], pooled[x.size :]).pvalue
        high = mann_whitney(pooled[-x.size :], pooled[: -x.size]).pvalue
    return min(1.0, float(low), float(high))


#: Most rearrangements of tied values :func:`mann_whitney` enumerates (8 against 8: 12,870; 0.3 s).
EXACT_REARRANGEMENTS = 20_000
#: Most values (both levels together) for which :func:`mann_whitney` asks scipy for the exact p without
#: ties (its recursion is fast there; scipy's default is exact only up to 8 values in a level).
EXACT_VALUES = 60


def mann_whitney(x: np.ndarray, y: np.ndarray) -> Any:
    """The two-sided Mann-Whitney U test of ``x`` against ``y`` (scipy's result object), exact wherever
    it can be had in a fraction of a second.

    scipy's default is exact only without ties and with at most 8 values in a level; otherwise it uses
    the normal approximation, which at a few runs per level goes below the exact floor
    (:func:`rank_floor`): three 2.0s against three 1.0s gave p = 0.047, where no rearrangement of six
    values can give less than 0.1, and 10 runs against 20 gave 0.050 where the exact p is 0.049.
    Without ties and up to :data:`EXACT_VALUES` values: scipy's exact distribution. With ties and at
    most :data:`EXACT_REARRANGEMENTS` ways to split the values: every split enumerated (a permutation
    test of U, exact with ties too). Larger samples: the approximation, which is good there. Values equal
    but for floating-point noise tie (:func:`~deltatune.stats._ties.snap_together`)."""
    from scipy import stats

    x, y = snap_together(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return stats.mannwhitneyu(x, y, alternative="two-sided", method=_mann_whitney_method(x, y))


def _mann_whitney_method(x: np.ndarray, y: np.ndarray) -> Any:
    """The ``method`` :func:`mann_whitney` gives scipy for these values: every split enumerated (ties, at
    most :data:`EXACT_REARRANGEMENTS` splits), ``"exact"`` (no ties, up to :data:`EXACT_VALUES` values, or
    at most 8 in a level, where scipy's default is exact too), else ``"asymptotic"`` (scipy's default
    there). It depends only on the pooled values and the sizes, not on which level holds which value."""
    from scipy import stats

    tied = np.unique(np.concatenate([x, y])).size < x.size + y.size
    if tied and math.comb(x.size + y.size, x.size) <= EXACT_REARRANGEMENTS:
        return stats.PermutationMethod(n_resamples=np.inf)
    if not tied and (x.size + y.size <= EXACT_VALUES or min(x.size, y.size) <= 8):
        return "exact"
    return "asymptotic"


def _paired_reason(p: float | None, why: str | None, alpha: float) -> tuple[bool, str]:
    """``(use_t, reason)`` for paired data from the Shapiro-Wilk result on the differences."""
    if p is None:
        return False, f"{why}, so a Wilcoxon signed-rank test"
    if p >= alpha:
        return True, (
            f"paired differences look normal (Shapiro-Wilk p = {fmt_p(p)} >= {alpha:g}), so a paired t-test"
        )
    return False, (
        f"paired differences do not look normal (Shapiro-Wilk p = {fmt_p(p)} < {alpha:g}), "
        "so a Wilcoxon signed-rank test"
    )


def _unpaired_reason(
    p_a: float | None, why_a: str | None, p_b: float | None, why_b: str | None, alpha: float
) -> tuple[bool, str]:
    """``(use_t, reason)`` for independent groups from the Shapiro-Wilk results of each group."""
    if p_a is None or p_b is None:
        return False, f"{why_a if p_a is None else why_b}, so a Mann-Whitney U test"
    quoted = f"Shapiro-Wilk p = {fmt_p(p_a)} and {fmt_p(p_b)}"
    if p_a >= alpha and p_b >= alpha:
        return True, f"both groups look normal ({quoted} >= {alpha:g}), so a Welch t-test"
    if p_a < alpha and p_b < alpha:
        return False, f"neither group looks normal ({quoted} < {alpha:g}), so a Mann-Whitney U test"
    worst = "a" if p_a < alpha else "b"
    return False, f"group {worst} does not look normal ({quoted}, alpha {alpha:g}), so a Mann-Whitney U test"


def compare_two(
    a: Sequence[float],
    b: Sequence[float],
    *,
    paired: bool,
    alpha: float = 0.05,
    seed: int = 0,
    parametric: bool | None = None,
    n_resamples: int = 2000,
) -> TestResult:
    """Test whether levels ``a`` and ``b`` differ, choosing the test by the rule in the module docstring.

    ``alpha`` is the Shapiro-Wilk threshold of that rule and the level ``power_n`` plans for (the result
    reports p-values; deciding is left to the caller, after a multiplicity correction such as :func:`holm`
    where several tests are made).
    Effect sizes: Hedges' g, plus the matched-pairs rank-biserial (paired) or Cliff's delta (unpaired),
    with CIs (noncentral t for g, BCa bootstraps of ``n_resamples`` resamples for the rank-based ones);
    ``power_n`` is :func:`repeats_for_power` at the observed g. Each level needs at least 2 values.
    Deterministic given ``seed``.

    >>> r = compare_two([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0],
    ...                 [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4], paired=True)
    >>> r.test, round(r.pvalue, 4), r.n
    ('Wilcoxon signed-rank', 0.0039, 10)
    >>> r.reason
    'paired differences do not look normal (Shapiro-Wilk p = 0.033 < 0.05), so a Wilcoxon signed-rank test'
    """
    from scipy import stats

    x, y = same_up_to_rounding(*as_pair(a, b, paired=paired, min_n=2), paired=paired)
    alpha = check_fraction(alpha, "alpha")
    if parametric is not None and not isinstance(parametric, bool):
        raise ConfigError(f"parametric: expected True, False or None, got {parametric!r}")

    if paired:
        p_norm, why = shapiro_p(x - y, "the paired differences")
        use_t, reason = _paired_reason(p_norm, why, alpha)
        normality = p_norm
        t_name, rank_name, quoted = "paired t-test", "Wilcoxon signed-rank test", [p_norm]
    else:
        p_a, why_a = shapiro_p(x, "group a")
        p_b, why_b = shapiro_p(y, "group b")
        use_t, reason = _unpaired_reason(p_a, why_a, p_b, why_b, alpha)
        normality = None if p_a is None or p_b is None else min(p_a, p_b)
        t_name, rank_name, quoted = "Welch t-test", "Mann-Whitney U test", [p_a, p_b]
    # what the Wilcoxon test ranks: the differences, floating-point noise snapped away so that differences
    # equal in exact arithmetic tie (5.1 - 5.0 and 5.4 - 5.3); it ranks only the non-zero ones, so its
    # floor is that of those pairs
    d = snapped_differences(x, y) if paired else np.empty(0)
    ranked = int(np.count_nonzero(d)) if paired else x.size
    floor = rank_floor(x, y, paired=paired)
    constant = no_spread(x, y, paired=paired)
    if parametric is None and constant:  # no t statistic exists, whatever Shapiro-Wilk could say
        use_t = False
        same = "every pair differs by the same amount" if paired else "both levels are constant"
        reason = f"{same} (no spread), so no t statistic exists: a {rank_name}"
    if parametric is None and not use_t and floor >= alpha and not constant:
        use_t = True
        if paired:
            tied = f" ({x.size - ranked} zero difference(s) dropped)" if ranked < x.size else ""
            what = f"{ranked} pairs{tied} an exact Wilcoxon"
        else:  # tied values can raise the floor above the 2 / C(n_a + n_b, n_a) of distinct ones
            rx, ry = snap_together(x, y)  # as mann_whitney ranks them
            tied = " (some tied)" if np.unique(np.concatenate([rx, ry])).size < x.size + y.size else ""
            exact = "a" if _mann_whitney_method(rx, ry) == "asymptotic" else "an exact"
            what = f"{x.size} and {y.size} values{tied} {exact} Mann-Whitney"
        reason = (f"{reason.rsplit(', so ', 1)[0]}, but with {what} p cannot go below {floor:.3g}, so it "
                  f"could never reach alpha {alpha:g}: a {t_name}")
    if parametric is not None:
        use_t = parametric
        ps = " and ".join(fmt_p(p) for p in quoted if p is not None)
        reason = f"a {t_name if parametric else rank_name} was requested" + (
            f" (Shapiro-Wilk p = {ps})" if ps else ""
        )

    df = math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # zero variance / all-zero: the numbers say it (inf, p = 1)
        if paired and use_t:
            test, res = "paired t-test", stats.ttest_rel(x, y)
            df = float(res.df)
        elif paired:
            # on the pairs that differ (the test drops zero differences anyway): with zeros among more
            # than 13 pairs scipy approximates, and 9 zeros beside 5 agreeing pairs gave p = 0.043, below
            # the 2 / 2**5 = 0.0625 any arrangement of 5 signs allows; without them it is exact
            nonzero = d[d != 0]
            test, res = "Wilcoxon signed-rank", stats.wilcoxon(nonzero if nonzero.size else d)
        elif use_t:
            test, res = "Welch t-test", stats.ttest_ind(x, y, equal_var=False)
            df = float(res.df)
        else:
            test, res = "Mann-Whitney U", mann_whitney(x, y)

    g = hedges_g(x, y, paired=paired, n_resamples=n_resamples, seed=seed)
    if paired:
        rank_effect = rank_biserial(x, y, n_resamples=n_resamples, seed=seed)
    else:
        rank_effect = cliffs_delta(x, y, n_resamples=n_resamples, seed=seed)
    return TestResult(
        test=test,
        statistic=float(res.statistic),
        pvalue=float(res.pvalue),
        n=int(x.size if paired else x.size + y.size),
        paired=paired,
        reason=reason,
        normality_pvalue=normality,
        mean_difference=float(np.mean(x) - np.mean(y)),
        effect_sizes=(g, rank_effect),
        power_n=repeats_for_power(g.value, paired=paired, alpha=alpha) if math.isfinite(g.value) else None,
        df=df,
        floor=floor,
        ranked=ranked,
    )
