"""Floating-point noise removed before anything is ranked, so that values equal in exact arithmetic tie.

A rank test decides by the order of its values, and floating-point arithmetic breaks ties that exact
arithmetic has: ``5.1 - 5.0`` is 0.0999999999999996 and ``5.4 - 5.3`` is 0.1000000000000005, so six
differences of "0.1" got six distinct ranks, and the Wilcoxon p of a study was 0.039 where the same data
times 10 (integers, ties kept) gave the exact 0.0625. Accuracy losses are multiples of 100 / n_images, and
``300/119 - 200/119 != 100/119``. Every rank-based statistic here (Wilcoxon and its floor, Mann-Whitney,
Hodges-Lehmann, rank-biserial r, Cliff's delta, Friedman, Kruskal-Wallis and their post-hoc tests, the
aligned rank transform) first snaps its values: values within :data:`RELATIVE_PRECISION` of the data's
scale (the largest magnitude among the values the ranked numbers come from) of each other become one
value. Noise, at about 1e-16 of that scale, is far inside that tolerance, and measured differences far
outside it.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["RELATIVE_PRECISION", "scale_of", "snap", "snap_together", "snapped_differences"]

#: The tolerance of :func:`snap`, relative to the data's scale: ten million times the 1e-16 of
#: floating-point noise, and a billionth of the largest value, below any difference a study measures.
RELATIVE_PRECISION = 1e-9


def scale_of(*arrays: np.ndarray) -> float:
    """The largest magnitude among the values of ``arrays`` (0.0 when there are none)."""
    sizes = [float(np.max(np.abs(a))) for a in arrays if np.size(a)]
    return max(sizes, default=0.0)


def snap(values: np.ndarray, scale: float) -> np.ndarray:
    """The 1-D ``values`` with every run of values no more than ``RELATIVE_PRECISION * scale`` apart (in
    sorted order) replaced by one of its own values (its lower median), and values that close to 0 by 0.0.

    Values that differ by floating-point noise become the same float, so they tie when ranked and are
    equal when compared; the value kept is one of the data's, not a rounded one (a Hodges-Lehmann shift of
    0.1 stays 0.1). A ``scale`` that is 0 or not finite leaves the values as they are. Snapping again
    with the same scale changes nothing.

    >>> d = np.array([5.1 - 5.0, 5.4 - 5.3, 4.0 - 4.0])
    >>> s = snap(d, 5.1)
    >>> bool(d[0] == d[1]), bool(s[0] == s[1]), float(s[2])
    (False, True, 0.0)
    """
    x = np.array(values, dtype=np.float64)
    tol = RELATIVE_PRECISION * scale
    if x.size == 0 or not (math.isfinite(scale) and scale > 0):
        return x
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    group = np.concatenate([[0], np.cumsum(np.diff(ordered) > tol)])
    starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
    ends = np.concatenate([starts[1:], [x.size]])
    kept = ordered[(starts + ends - 1) // 2]
    near_zero = np.minimum.reduceat(np.abs(ordered), starts) <= tol
    x[order] = np.where(near_zero, 0.0, kept)[group]
    return x


def snap_together(*samples: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every sample :func:`snap`-ped as one pooled set at their common scale (values compared across
    samples, as pooled ranks and within-block ranks compare them, must be snapped alike)."""
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    pooled = snap(np.concatenate(arrays), scale_of(*arrays)) if arrays else np.array([])
    return tuple(np.split(pooled, np.cumsum([a.size for a in arrays])[:-1]))


def snapped_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The paired differences ``a - b``, their magnitudes :func:`snap`-ped at the scale of ``a`` and ``b``
    and their signs kept: the signed-rank tests rank ``|a - b|``, so -0.0999999999999996 and
    +0.1000000000000005 must tie as well, and the noise of a subtraction is relative to its operands,
    not to the (possibly much smaller) difference."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.sign(d) * snap(np.abs(d), scale_of(a, b)) + 0.0
