"""Equivalence testing: is the difference between two levels smaller than a margin that matters?

A non-significant difference is not evidence of no difference. TOST (Schuirmann 1987) turns the question
around: the null hypothesis is a difference of at least ``margin`` in either direction, and rejecting both
one-sided nulls shows the difference lies within ``(-margin, margin)``. Equivalently, the (1 - 2 alpha) CI
of the mean difference lies inside the margins.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from deltatune.errors import ConfigError
from deltatune.stats._normality import no_spread
from deltatune.stats._results import EquivalenceResult
from deltatune.stats._validate import as_pair, check_fraction, check_margin

__all__ = ["tost"]


def tost(
    a: Sequence[float], b: Sequence[float], *, margin: float, paired: bool, alpha: float = 0.05
) -> EquivalenceResult:
    """Two one-sided t-tests of ``-margin < mean(a - b) < margin`` (paired) or of the difference in means.

    Paired: ``statsmodels.stats.weightstats.ttost_paired`` on the differences. Unpaired:
    ``ttost_ind`` with ``usevar="unequal"`` (Welch). ``pvalue`` is the larger one-sided p-value and
    ``equivalent`` is ``pvalue < alpha``. The CI is the (1 - 2 alpha) Student (paired) or Welch (unpaired)
    CI of the mean difference (:func:`~deltatune.stats.describe.mean_difference_ci`). ``margin`` is in
    the unit of the data and must be > 0. Each level needs at least 2 values.

    >>> r = tost([0.70, 0.71, 0.69, 0.72], [0.70, 0.70, 0.70, 0.71], margin=0.05, paired=True)
    >>> r.equivalent, round(r.diff, 4), round(r.pvalue, 4)
    (True, 0.0025, 0.0011)
    """
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired

    from deltatune.stats.describe import mean_difference_ci

    x, y = as_pair(a, b, paired=paired, min_n=2)
    margin = check_margin(margin, "margin")
    alpha = check_fraction(alpha, "alpha")
    if alpha >= 0.5:
        raise ConfigError(f"alpha: TOST needs alpha < 0.5 (its CI is 1 - 2 alpha), got {alpha!r}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # zero variance: statsmodels/scipy give NaN or 0/1, reported as such
        if paired:
            pvalue = ttost_paired(x, y, -margin, margin)[0]
        else:
            pvalue = ttost_ind(x, y, -margin, margin, usevar="unequal")[0]
        low, high = mean_difference_ci(x, y, paired=paired, level=1 - 2 * alpha)
    pvalue = float(pvalue)
    if not paired and no_spread(x, y, paired=False):
        # two constant levels: no t statistic, but the difference is known exactly (as for constant paired
        # differences, where statsmodels gives 0 inside the margin and 1 outside); NaN would say "untested"
        pvalue = 0.0 if abs(float(x[0] - y[0])) < margin else 1.0
    return EquivalenceResult(
        test="TOST",
        margin=margin,
        pvalue=pvalue,
        equivalent=bool(pvalue < alpha),
        diff=float(np.mean(x) - np.mean(y)),
        ci_low=low,
        ci_high=high,
        paired=paired,
        alpha=alpha,
    )
