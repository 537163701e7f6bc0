"""Bootstrap confidence intervals: scipy's BCa, with a percentile fallback when BCa is undefined.

BCa (bias-corrected and accelerated) is second-order accurate and is scipy's default, but it needs a
jackknife and a non-degenerate bootstrap distribution; with tiny or tied samples it returns NaN. The
fallback is the plain percentile interval of the same bootstrap distribution, using only the resamples on
which the statistic is defined (a resample of a standardized effect can have zero spread).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

__all__ = ["bootstrap_ci", "MIN_BOOTSTRAP_N"]

#: The fewest values per sample a bootstrap interval is computed from. Three values have 10 distinct
#: resamples (two have 3): their "interval" is a handful of points, often one (2 pairs that differ the same
#: way gave a rank-biserial CI of [-1.00, -1.00]), which reads as certainty where there is least of it.
MIN_BOOTSTRAP_N = 4


def bootstrap_ci(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    paired: bool,
    level: float,
    n_resamples: int,
    seed: int,
    batch: int | None = None,
) -> tuple[float, float, str]:
    """``(low, high, method)`` of a two-sided bootstrap CI of ``statistic(*data, axis=-1)``.

    ``statistic`` must be vectorized (take ``axis``). ``method`` is ``"BCa"``, ``"percentile"`` or
    ``"n/a"`` (fewer than :data:`MIN_BOOTSTRAP_N` values in a sample, no resample on which the statistic
    is defined, or every resample giving the same value: an interval of zero width is no interval).
    ``batch`` bounds how many resamples are evaluated at once (memory), as in ``scipy.stats.bootstrap``.
    """
    from scipy.stats import bootstrap

    if min(x.size for x in data) < MIN_BOOTSTRAP_N:
        return math.nan, math.nan, "n/a"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # DegenerateDataWarning / RuntimeWarning: handled below by the fallback
        warnings.simplefilter("ignore")
        try:
            res = bootstrap(
                data,
                statistic,
                n_resamples=n_resamples,
                batch=batch,
                vectorized=True,
                paired=paired,
                axis=-1,
                confidence_level=level,
                method="BCa",
                rng=np.random.default_rng(seed),
            )
        except (ValueError, FloatingPointError, ZeroDivisionError):
            return math.nan, math.nan, "n/a"
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
        dist = dist[~np.isnan(dist)]  # +-inf (an unbounded effect) stays and sorts to the ends
        if dist.size == 0 or np.all(dist == dist[0]):
            return math.nan, math.nan, "n/a"
        if math.isfinite(low) and math.isfinite(high):
            return low, high, "BCa"
        tail = (1.0 - level) / 2.0
        low, high = np.percentile(dist, [100.0 * tail, 100.0 * (1.0 - tail)])
        return float(low), float(high), "percentile"
