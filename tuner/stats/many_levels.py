"""Comparing k >= 3 levels: an omnibus test, a post-hoc p-value matrix and mean ranks.

The rule mirrors :mod:`deltatune.stats.two_levels` (fixed in advance):

- **paired** (block ``i`` = the ``i``-th value of every level, e.g. the same seed or clip): Shapiro-Wilk on
  the residuals of the additive block + level model (``y - block mean - level mean + grand mean``), which
  is the ANOVA's own normality assumption. Normal -> repeated-measures ANOVA (statsmodels ``AnovaRM``, its
  p and degrees of freedom Greenhouse-Geisser corrected for sphericity: :mod:`deltatune.stats.sphericity`)
  with pairwise paired t-tests (``scipy.stats.ttest_rel``) Holm-adjusted;
  otherwise the Friedman test (``scipy.stats.friedmanchisquare``) with the Nemenyi post-hoc test
  (``scikit_posthocs.posthoc_nemenyi_friedman``, Demšar 2006).
- **unpaired**: Shapiro-Wilk on each level. All normal -> Welch's one-way ANOVA (statsmodels
  ``anova_oneway`` with ``use_var="unequal"``; equal to ``scipy.stats.f_oneway(..., equal_var=False)``) with
  pairwise Welch t-tests (``scipy.stats.ttest_ind``, as ``scikit_posthocs.posthoc_ttest``) Holm-adjusted;
  otherwise Kruskal-Wallis
  (``scipy.stats.kruskal``) with Dunn's test Holm-adjusted (``scikit_posthocs.posthoc_dunn``).

Values equal but for floating-point noise tie in every rank test and mean rank
(:mod:`deltatune.stats._ties`). Shapiro-Wilk is undefined with fewer than 3 values or constant values; the
rank tests are then used. A post-hoc pair with no spread (no t statistic) takes its rank test, as
:func:`compare_two` would.
``parametric=True``/``False`` overrides the rule. Two levels are compared with :func:`compare_two`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from deltatune.errors import ConfigError
from deltatune.stats._normality import (
    fmt_p,
    no_spread,
    normality_choice,
    same_up_to_rounding,
    shapiro_p,
)
from deltatune.stats._results import OmnibusResult
from deltatune.stats._ties import snap_together
from deltatune.stats._validate import as_sample, check_fraction, check_names
from deltatune.stats.corrections import holm
from deltatune.stats.sphericity import contrasts, gg_epsilon, gg_pvalue
from deltatune.stats.two_levels import mann_whitney

__all__ = ["compare_many"]


def _levels(groups: Mapping[str, Sequence[float]], *, paired: bool) -> tuple[list[str], list[np.ndarray]]:
    if not isinstance(groups, Mapping):
        raise ConfigError("groups: expected a mapping of level name -> values")
    names = [str(k) for k in groups]
    check_names(list(groups))
    if len(names) < 3:
        raise ConfigError(f"groups: compare_many needs at least 3 levels, got {len(names)} (use compare_two)")
    samples = [as_sample(v, f"groups[{k!r}]", min_n=2) for k, v in groups.items()]
    if paired and len({s.size for s in samples}) != 1:
        sizes = {n: s.size for n, s in zip(names, samples, strict=True)}
        raise ConfigError(f"groups: paired levels need equal lengths (one value per block), got {sizes}")
    return names, samples


def _pairwise_t_holm(names: list[str], samples: list[np.ndarray], *, paired: bool) -> tuple[str, Any]:
    """``(name, matrix)``: Holm-adjusted pairwise t-tests (paired: ``ttest_rel``; else Welch's
    ``ttest_ind``), the post-hoc tests of the two ANOVAs.

    A pair with no spread (paired: all its differences equal; unpaired: both levels constant) has no t
    statistic: ``ttest_rel`` returns t = inf and p = 0 for differences that are all 0.007 (a deterministic
    strategy against another, repeated over seeds), a "significant" difference from three copies of one
    number. Such a pair takes the rank test :func:`~deltatune.stats.two_levels.compare_two` uses there
    (Wilcoxon signed-rank, exact: 0.25 for three pairs; Mann-Whitney U), and the name says so.
    """
    import pandas as pd
    from scipy import stats

    pairs = list(combinations(range(len(names)), 2))
    raw, degenerate = [], 0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # all-zero differences: the Wilcoxon p is 1, with a warning
        for i, j in pairs:
            a, b = same_up_to_rounding(samples[i], samples[j], paired=paired)
            flat = no_spread(a, b, paired=paired)
            degenerate += flat
            if paired:
                res: Any = stats.wilcoxon(a, b) if flat else stats.ttest_rel(a, b)
            else:
                res = mann_whitney(a, b) if flat else stats.ttest_ind(
                    a, b, equal_var=False
                )
            raw.append(float(res.pvalue))
    matrix = np.eye(len(names))
    for (i, j), p in zip(pairs, holm(raw), strict=True):
        matrix[i, j] = matrix[j, i] = p
    name = "paired t-tests (Holm" if paired else "Welch t-tests (Holm"
    if degenerate:
        rank, what = ("Wilcoxon signed-rank", "whose differences are all equal") if paired else (
            "Mann-Whitney U", "of two constant levels")
        name += f"; {rank} for {degenerate} pair{'s' if degenerate > 1 else ''} {what}"
    return name + ")", pd.DataFrame(matrix, index=names, columns=names)


def compare_many(
    groups: Mapping[str, Sequence[float]],
    *,
    paired: bool,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    parametric: bool | None = None,
) -> OmnibusResult:
    """Test whether any of k >= 3 levels differ, with post-hoc pairwise p-values and mean ranks.

    ``groups`` maps level name -> values; with ``paired`` the values are aligned by position (block ``i`` =
    the ``i``-th value of every level). The test is chosen by the rule in the module docstring, with
    ``alpha`` as the Shapiro-Wilk threshold. ``posthoc`` is the k x k matrix of adjusted p-values (1 on the
    diagonal) in the order of ``groups``. ``mean_ranks``: paired -> the mean within-block rank (1..k, as in
    the Friedman test and a critical-difference diagram); unpaired -> the mean rank in the pooled sample
    (1..N, as in Kruskal-Wallis). Rank 1 is the best value: the highest if ``higher_is_better``, else the
    lowest; ties get average ranks. Each level needs at least 2 values.

    >>> r = compare_many({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 3.5, 4.0, 6.0], "z": [3.0, 4.5, 6.0, 8.0]},
    ...                  paired=True)
    >>> r.test, round(r.statistic, 2), round(r.pvalue, 5), r.mean_ranks.tolist()
    ('repeated-measures ANOVA', 38.42, 0.00297, [3.0, 2.0, 1.0])
    >>> r.reason.split(" (")[1]
    'Shapiro-Wilk p = 0.66 >= 0.05), so a repeated-measures ANOVA'
    """
    import pandas as pd
    import scikit_posthocs as sp
    from scipy import stats
    from statsmodels.stats.anova import AnovaRM
    from statsmodels.stats.oneway import anova_oneway

    alpha = check_fraction(alpha, "alpha")
    if parametric is not None and not isinstance(parametric, bool):
        raise ConfigError(f"parametric: expected True, False or None, got {parametric!r}")
    names, samples = _levels(groups, paired=paired)
    # what the rank tests and mean ranks rank: values equal but for floating-point noise tie
    ranked = list(snap_together(*samples))
    k = len(names)
    sign = -1.0 if higher_is_better else 1.0

    if paired:
        y = np.column_stack(samples)  # blocks x levels
        resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
        p_norm, why = shapiro_p(resid.ravel(), "the residuals of the block + level model")
        normal, phrase = normality_choice([p_norm], [why], alpha, "the residuals of the block + level model")
        normality = p_norm
        t_name, rank_name = "a repeated-measures ANOVA", "a Friedman test"
    else:
        results = [shapiro_p(s, f"level {n!r}") for n, s in zip(names, samples, strict=True)]
        ps, whys = [p for p, _ in results], [w for _, w in results]
        normal, phrase = normality_choice(ps, whys, alpha, "all levels")
        known = [p for p, _ in results if p is not None]
        normality = min(known) if len(known) == k else None
        t_name, rank_name = "Welch's one-way ANOVA", "a Kruskal-Wallis test"
    if parametric is None:
        reason = f"{phrase}, so {t_name if normal else rank_name}"
    else:
        normal = parametric
        quoted = "" if normality is None else f" (Shapiro-Wilk p = {fmt_p(normality)})"
        reason = f"{t_name if parametric else rank_name} was requested{quoted}"

    df_denom = math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # constant data: the NaN statistic says it
        if paired and normal:
            long = pd.DataFrame(
                {
                    "value": y.ravel(),
                    "block": np.repeat(np.arange(y.shape[0]), k),
                    "level": np.tile(np.arange(k), y.shape[0]),
                }
            )
            row = AnovaRM(long, depvar="value", subject="block", within=["level"]).fit().anova_table.iloc[0]
            test, statistic = "repeated-measures ANOVA", float(row["F Value"])
            eps = gg_epsilon(y, contrasts(k))
            eps = eps if math.isfinite(eps) else 1.0
            df, df_denom = eps * float(row["Num DF"]), eps * float(row["Den DF"])  # Greenhouse-Geisser
            pvalue = gg_pvalue(statistic, float(row["Num DF"]), float(row["Den DF"]), eps)
            reason = f"{reason} (Greenhouse-Geisser corrected for sphericity: epsilon {eps:.2f})"
            posthoc_test, posthoc = _pairwise_t_holm(names, samples, paired=True)
        elif paired:
            res = stats.friedmanchisquare(*ranked)
            test, statistic, pvalue, df = "Friedman", float(res.statistic), float(res.pvalue), float(k - 1)
            posthoc_test = "Nemenyi"
            posthoc = sp.posthoc_nemenyi_friedman(pd.DataFrame(np.column_stack(ranked), columns=names))
        else:
            long = pd.DataFrame(  # for Dunn's test, which ranks
                {
                    "value": np.concatenate(ranked),
                    "level": np.repeat(names, [s.size for s in samples]),
                }
            )
            if normal:
                res = anova_oneway(samples, use_var="unequal", welch_correction=True)
                test, statistic, pvalue = "Welch's one-way ANOVA", float(res.statistic), float(res.pvalue)
                df, df_denom = float(res.df_num), float(res.df_denom)
                posthoc_test, posthoc = _pairwise_t_holm(names, samples, paired=False)
            else:
                res = stats.kruskal(*ranked)
                test, statistic, pvalue, df = (
                    "Kruskal-Wallis",
                    float(res.statistic),
                    float(res.pvalue),
                    k - 1.0,
                )
                posthoc_test = "Dunn (Holm)"
                posthoc = sp.posthoc_dunn(long, val_col="value", group_col="level", p_adjust="holm")
    posthoc = posthoc.reindex(index=names, columns=names).astype(float)
    posthoc.index.name = posthoc.columns.name = None

    if paired:
        ranks = stats.rankdata(sign * np.column_stack(ranked), axis=1).mean(axis=0)
    else:
        pooled = stats.rankdata(sign * np.concatenate(ranked))
        ranks = np.array(
            [part.mean() for part in np.split(pooled, np.cumsum([s.size for s in samples])[:-1])]
        )
    return OmnibusResult(
        test=test,
        statistic=statistic,
        pvalue=pvalue,
        n=int(samples[0].size if paired else sum(s.size for s in samples)),
        k=k,
        paired=paired,
        reason=reason,
        posthoc_test=posthoc_test,
        posthoc=posthoc,
        mean_ranks=pd.Series(ranks, index=names, name="mean_rank"),
        normality_pvalue=normality,
        means=pd.Series([float(np.mean(s)) for s in samples], index=names, name="mean"),
        df=df,
        df_denom=df_denom,
    )
