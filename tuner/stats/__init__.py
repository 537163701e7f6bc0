"""Statistics for ablation studies: descriptions, effect sizes, test choice, equivalence and power.

Every function takes plain sequences of numbers, validates them (raising
:class:`deltatune.errors.ConfigError` with a one-line message), calls a library implementation (scipy,
statsmodels, scikit-posthocs, baycomp, deepsig) and returns a frozen result object with ``to_dict()``.
Everything random (bootstraps, posterior sampling) is deterministic given ``seed``. The heavy libraries are
imported inside the functions, so importing this package is cheap.

- :func:`describe` — n, mean, SD, median and a Student-t CI of the mean; :func:`mean_difference_ci` — the
  paired-t or Welch CI of a difference of means; :func:`median_ci` — the order-statistic CI of a median.
- :func:`hedges_g`, :func:`cliffs_delta`, :func:`rank_biserial` — effect sizes with CIs (noncentral t for g,
  bootstraps for the rank-based ones).
- :func:`compare_two` — paired/Welch t-test or Wilcoxon/Mann-Whitney, chosen by Shapiro-Wilk.
- :func:`compare_many` — RM ANOVA/Friedman or Welch ANOVA/Kruskal-Wallis, with a post-hoc matrix.
- :func:`factorial_anova` — every factor and two-way interaction of a crossed design in one (blocked)
  model: type II F tests, or the aligned rank transform, chosen by Shapiro-Wilk.
- :func:`holm` — Holm-adjusted p-values.
- :func:`tost` — equivalence within a margin; :func:`bayes_signed_rank` — ROPE probabilities;
  :func:`almost_stochastic_order` — ASO's ``eps_min``.
- :func:`repeats_for_power` — repeats per level for 80 % power.
"""

from __future__ import annotations

from deltatune.stats._results import (
    ASOResult,
    BayesResult,
    Description,
    EffectSize,
    EquivalenceResult,
    OmnibusResult,
    TestResult,
)
from deltatune.stats.aso import almost_stochastic_order
from deltatune.stats.bayes import bayes_signed_rank
from deltatune.stats.corrections import holm
from deltatune.stats.describe import describe, hodges_lehmann, mean_difference_ci
from deltatune.stats.effect import cliffs_delta, hedges_g, magnitude, rank_biserial
from deltatune.stats.equivalence import tost
from deltatune.stats.factorial import FactorialResult, FactorialTerm, factorial_anova
from deltatune.stats.many_levels import compare_many
from deltatune.stats.median import MedianInterval, median_ci
from deltatune.stats.power import MAX_REPEATS, repeats_for_power
from deltatune.stats.two_levels import compare_two

__all__ = [
    "ASOResult",
    "BayesResult",
    "Description",
    "EffectSize",
    "EquivalenceResult",
    "FactorialResult",
    "FactorialTerm",
    "OmnibusResult",
    "TestResult",
    "almost_stochastic_order",
    "bayes_signed_rank",
    "cliffs_delta",
    "compare_many",
    "compare_two",
    "describe",
    "factorial_anova",
    "hedges_g",
    "hodges_lehmann",
    "holm",
    "mean_difference_ci",
    "median_ci",
    "MedianInterval",
    "magnitude",
    "rank_biserial",
    "repeats_for_power",
    "MAX_REPEATS",
    "tost",
]
