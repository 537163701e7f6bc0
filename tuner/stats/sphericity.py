"""Sphericity: the Greenhouse-Geisser correction of a repeated-measures F test.

A within-unit F test assumes that every contrast of the levels varies as much across units as every other
(sphericity). With seeds or clips that react to some levels more than to others it does not hold, and the
F test's p-value is too small. Greenhouse and Geisser (1959) scale both degrees of freedom by
``epsilon = tr(V)^2 / (p tr(V V))``, where ``V`` is the covariance across units of the effect's ``p``
orthonormal contrasts; ``epsilon`` is 1 under sphericity and at least ``1/p``. An effect with one degree of
freedom (two levels) has one contrast and ``epsilon = 1``. Applied to every effect, always: the test for
sphericity (Mauchly's) has next to no power at a handful of units, so "not rejected" would mean nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["contrasts", "effect_contrasts", "gg_epsilon", "gg_pvalue"]


def contrasts(k: int) -> np.ndarray:
    """``k x (k - 1)`` orthonormal contrasts of ``k`` levels (columns orthogonal to the constant).

    >>> c = contrasts(3); np.allclose(c.T @ c, np.eye(2)), np.allclose(c.sum(axis=0), 0)
    (True, True)
    """
    q, _ = np.linalg.qr(np.column_stack([np.ones(k), np.eye(k)[:, : k - 1]]))
    return q[:, 1:]


def effect_contrasts(levels: Sequence[int], effect: Sequence[int]) -> np.ndarray:
    """Orthonormal contrasts of an effect over cells ordered as ``itertools.product`` of the factors'
    levels (``levels[i]`` levels of factor ``i``): the Kronecker product of each factor's contrasts when it
    is in ``effect`` (indices), else of its normalised constant (averaging over it)."""
    m = np.ones((1, 1))
    for i, k in enumerate(levels):
        m = np.kron(m, contrasts(k) if i in effect else np.ones((k, 1)) / math.sqrt(k))
    return m


def gg_epsilon(cells: np.ndarray, contrast: np.ndarray) -> float:
    """Greenhouse-Geisser epsilon of an effect: ``cells`` is units x cells (one value per unit and cell),
    ``contrast`` the effect's orthonormal contrasts (cells x p). NaN with fewer than 2 units or no
    variation in the contrasts.

    >>> y = np.array([[1.0, 2.0, 3.0], [2.0, 2.5, 3.0], [0.0, 2.0, 4.0], [1.0, 1.0, 5.0]])
    >>> round(gg_epsilon(y, contrasts(3)), 4)
    0.7386
    """
    p = contrast.shape[1]
    if cells.shape[0] < 2 or p == 0:
        return math.nan
    if p == 1:
        return 1.0
    v = contrast.T @ np.cov(cells, rowvar=False) @ contrast
    denom = p * float(np.trace(v @ v))
    if denom <= 0:
        return math.nan
    return float(min(1.0, max(1.0 / p, float(np.trace(v)) ** 2 / denom)))


def gg_pvalue(f: float, df1: float, df2: float, epsilon: float) -> float:
    """The F test's p with both degrees of freedom scaled by ``epsilon`` (the uncorrected p when epsilon is
    NaN, e.g. no variation at all)."""
    from scipy import stats

    eps = 1.0 if not math.isfinite(epsilon) else epsilon
    return float(stats.f.sf(f, eps * df1, eps * df2))
