"""Multiple-comparison correction of a family of p-values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deltatune.errors import ConfigError

__all__ = ["holm"]


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, via ``statsmodels.stats.multitest.multipletests``.

    Holm controls the family-wise error rate like Bonferroni but is uniformly more powerful and needs no
    independence assumption, so it suits a handful of comparisons against a baseline. NaN p-values (tests
    that could not be run) are returned as NaN and do not count towards the family size.

    >>> holm([0.01, 0.04, float("nan"), 0.03]).round(4).tolist()
    [0.03, 0.06, nan, 0.06]
    """
    from statsmodels.stats.multitest import multipletests

    try:
        p = np.asarray(pvalues, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("pvalues: expected a sequence of numbers") from None
    if p.ndim != 1:
        raise ConfigError(f"pvalues: expected a 1-D sequence, got shape {p.shape}")
    known = ~np.isnan(p)
    if np.any((p[known] < 0) | (p[known] > 1)):
        raise ConfigError("pvalues: every p-value must lie in [0, 1] (or be NaN)")
    out = np.full(p.shape, np.nan)
    if known.any():
        out[known] = multipletests(p[known], method="holm")[1]
    return out
