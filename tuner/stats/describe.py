"""Descriptive summary of one sample, with a bootstrap confidence interval of the mean."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deltatune.stats._bootstrap import bootstrap_ci
from deltatune.stats._results import Description
from deltatune.stats._validate import as_sample, check_fraction, check_positive_int

__all__ = ["describe"]


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def describe(
    values: Sequence[float], *, level: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Description:
    """Size, mean, SD (ddof=1), median and a bootstrap CI of the mean of ``values``.

    The CI is scipy's BCa bootstrap (``scipy.stats.bootstrap``), which makes no normality assumption and
    corrects for skew, as is typical for accuracy and speed-up measurements over a handful of seeds. When
    BCa is undefined the percentile interval is used instead (``ci_method`` says which). With ``n < 2`` the
    CI (and SD) is NaN; constant data give ``[mean, mean]``. Deterministic given ``seed``.

    >>> d = describe([1.0, 2.0, 3.0, 4.0, 5.0], seed=0)
    >>> d.n, d.mean, round(d.sd, 4), d.median
    (5, 3.0, 1.5811, 3.0)
    >>> d.ci_low < 3.0 < d.ci_high
    True
    """
    x = as_sample(values, "values")
    level = check_fraction(level, "level")
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    mean = float(np.mean(x))
    sd = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    median = float(np.median(x))
    if x.size < 2:
        low, high, method = math.nan, math.nan, "n/a"
    elif np.all(x == x[0]):
        low, high, method = mean, mean, "constant"
    else:
        low, high, method = bootstrap_ci(
            (x,), _mean, paired=False, level=level, n_resamples=n_resamples, seed=seed
        )
    return Description(
        n=int(x.size),
        mean=mean,
        sd=sd,
        median=median,
        ci_low=low,
        ci_high=high,
        level=level,
        ci_method=method,
    )
