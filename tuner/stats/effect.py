"""Standardized effect sizes with CIs: Hedges' g, Cliff's delta and matched-pairs rank-biserial.

A p-value says whether a difference is detectable with this many repeats; an effect size says how large it
is relative to the run-to-run spread. g is the parametric one (in SD units); Cliff's delta and the
rank-biserial correlation are their rank-based counterparts, read as dominance probabilities. g's CI is
the noncentral-t interval of the population effect (exact under normality, Steiger & Fouladi 1997): with
the 4-10 repeats studies have, a bootstrap of a ratio with the SD below it is unusable (a resample of
near-equal differences has an SD near 0, which sends the upper end past 30). The rank-based CIs are BCa
bootstraps (``scipy.stats.bootstrap``; pairs are resampled together when the design is paired).

Magnitude labels use the usual thresholds on the absolute value: Cohen (1988) 0.2 / 0.5 / 0.8 for g;
Romano et al. (2006) 0.147 / 0.33 / 0.474 for Cliff's delta, also used here for the rank-biserial
correlation (both are differences of two dominance probabilities on [-1, 1]). An effect from fewer than
:data:`MIN_MAGNITUDE_N` pairs (non-zero pairs for the rank-biserial r) or values at a level gets no label,
only the reason (one non-zero pair makes r = +-1, "large", whatever the data).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from deltatune.errors import ConfigError
from deltatune.stats._bootstrap import bootstrap_ci
from deltatune.stats._results import EffectSize
from deltatune.stats._ties import snap_together, snapped_differences
from deltatune.stats._validate import as_pair, check_fraction, check_positive_int

__all__ = ["hedges_g", "cliffs_delta", "rank_biserial", "magnitude"]

_THRESHOLDS = {
    "hedges_g": (0.2, 0.5, 0.8),  # Cohen (1988)
    "cliffs_delta": (0.147, 0.33, 0.474),  # Romano et al. (2006)
    "rank_biserial": (0.147, 0.33, 0.474),
}
_LABELS = ("negligible", "small", "medium", "large")


def magnitude(name: str, value: float) -> str:
    """The verbal magnitude of effect ``name`` (a key of the threshold table) at ``value``.

    >>> magnitude("hedges_g", -0.6), magnitude("cliffs_delta", 0.1), magnitude("hedges_g", float("nan"))
    ('medium', 'negligible', 'n/a')
    """
    if name not in _THRESHOLDS:
        known = ", ".join(_THRESHOLDS)
        raise ConfigError(f"effect size {name!r} has no magnitude thresholds; known: {known}")
    if math.isnan(value):
        return "n/a"
    size = abs(value)
    for label, bound in zip(_LABELS, _THRESHOLDS[name], strict=False):
        if size < bound:
            return label
    return _LABELS[-1]


#: The fewest pairs (non-zero pairs for the rank-biserial r) or values at the smaller level from which an
#: effect size gets a magnitude word. From one non-zero pair r is +-1 whatever the data, and from 2-3 a
#: "large" says more about the count than about the effect: the value is shown, the word is not.
MIN_MAGNITUDE_N = 4


def _word(name: str, value: float, n: int, nouns: tuple[str, str]) -> str:
    """:func:`magnitude` of ``value``, or, where it rests on fewer than :data:`MIN_MAGNITUDE_N` of what
    ``nouns`` (singular, plural) name (``n`` of them), why there is no word: ``"too few to name: 1 non-zero
    pair"``."""
    if math.isfinite(value) and n < MIN_MAGNITUDE_N:
        return f"too few to name: {n} {nouns[0] if n == 1 else nouns[1]}"
    return magnitude(name, value)


#: What an effect of each design rests on (singular, plural), for :func:`_word`.
_PAIRS = ("pair", "pairs")
_NONZERO_PAIRS = ("non-zero pair", "non-zero pairs")
_SMALLER_LEVEL = ("value at the smaller level", "values at the smaller level")


def _correction(df: int) -> float:
    """Hedges' small-sample correction J = 1 - 3 / (4 df - 1); NaN for df < 2 (J(1) = 0: no unbiased g)."""
    return 1.0 - 3.0 / (4.0 * df - 1.0) if df >= 2 else math.nan


# In bootstrap resamples a zero SD gives +-inf (a mean difference with no spread: an effect beyond any
# finite one, which sorts correctly into the percentiles) or NaN (no difference at all); the point estimate
# of a sample with zero SD is NaN instead (see hedges_g).


def _rounding_zero(sd: np.ndarray, a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """``sd`` with spreads at floating-point rounding level (relative to the data) set to exactly 0: a
    difference that is constant but for rounding has no standardized size, not an astronomical one."""
    scale = np.maximum(np.max(np.abs(a), axis=axis), np.max(np.abs(b), axis=axis))
    return np.where(sd <= 1e-12 * np.maximum(scale, 1e-300), 0.0, sd)


def _g_paired(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    d = a - b
    n = d.shape[axis]
    with np.errstate(all="ignore"):
        sd = _rounding_zero(np.std(d, axis=axis, ddof=1), a, b, axis)
        return _correction(n - 1) * np.mean(d, axis=axis) / sd


def _g_unpaired(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    n1, n2 = a.shape[axis], b.shape[axis]
    df = n1 + n2 - 2
    pooled = np.sqrt(((n1 - 1) * np.var(a, axis=axis, ddof=1) + (n2 - 1) * np.var(b, axis=axis, ddof=1)) / df)
    pooled = _rounding_zero(pooled, a, b, axis)
    with np.errstate(all="ignore"):
        return _correction(df) * (np.mean(a, axis=axis) - np.mean(b, axis=axis)) / pooled


def _cliff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cliff's delta from the Mann-Whitney U of ``a`` (midranks of the pooled sample: a tie counts half),
    ``(2 U - n_a n_b) / (n_a n_b)``: O(n log n) per bootstrap resample and per jackknife sample of the BCa
    interval, where comparing every pair is O(n_a n_b) (minutes at a few thousand values)."""
    from scipy.stats import rankdata

    a = np.moveaxis(a, axis, -1)
    b = np.moveaxis(b, axis, -1)
    lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])  # the jackknife pairs a batch with one sample
    a = np.broadcast_to(a, lead + a.shape[-1:])
    b = np.broadcast_to(b, lead + b.shape[-1:])
    n_a, n_b = a.shape[-1], b.shape[-1]
    rank_sum = rankdata(np.concatenate([a, b], axis=-1), axis=-1)[..., :n_a].sum(axis=-1)
    u = rank_sum - n_a * (n_a + 1) / 2.0  # midranks are halves, so u and the sum of signs below are exact
    return (2.0 * u - n_a * n_b) / (n_a * n_b)  # the same float as the mean of the n_a n_b pair signs


def _rank_biserial(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import rankdata

    d = np.moveaxis(a - b, axis, -1)
    zeros = np.sum(d == 0, axis=-1, keepdims=True)
    # zeros rank lowest, so subtracting their count ranks the non-zero |d| among themselves (wilcox rule)
    ranks = rankdata(np.abs(d), axis=-1) - zeros
    t_plus = np.sum(np.where(d > 0, ranks, 0.0), axis=-1)
    t_minus = np.sum(np.where(d < 0, ranks, 0.0), axis=-1)
    total = t_plus + t_minus
    with np.errstate(all="ignore"):
        r = (t_plus - t_minus) / total
    return np.where(total > 0, r, np.nan)


#: Above this t statistic :func:`_noncentral_t_ci` uses the noncentral t's large-t limit instead of
#: ``scipy.stats.nct``, whose cdf is NaN over much of the range the ends lie in there (at t = 1e5, df 2 to
#: 30, from a noncentrality of about 101,450 on: df = 2's 95 % upper end, 192,065, was put at 101,453). At
#: 1e4 the limit's ends are within 1.4e-5 of the exact ones (relative, df 2 to 1e6), nct's within 3e-9.
LARGE_T = 1e4


def _noncentral_t_ci(t: float, df: int, scale: float, level: float) -> tuple[float, float]:
    """CI of a standardized effect ``delta = ncp * scale`` from the t statistic ``t`` with ``df`` degrees of
    freedom: the noncentrality parameters at which ``t`` sits at the upper and lower ``(1 - level) / 2``
    tail of the noncentral t distribution (``scipy.stats.nct``), found by root search.

    Above :data:`LARGE_T` (pairs that differ by nearly the same amount) the large-t limit: the noncentral
    t is ``T = (Z + ncp) / sqrt(V / df)`` (Z standard normal, V chi-square with ``df``), and Z is
    negligible beside ``ncp``, so ``T ~ ncp / sqrt(V / df)`` and the ends are ``t * sqrt(q / df)`` at the
    chi-square quantiles ``q`` of ``(1 - level) / 2`` and ``(1 + level) / 2``. scipy's ``nct.cdf`` is NaN
    there, which read as a cdf of 0 above ``t`` made the search's root the edge of that NaN region (df 2
    to 30 all gave about 101,453 at t = 1e5) or ``t`` itself (both ends: an interval of width 0 beside
    its estimate)."""
    from scipy.optimize import brentq
    from scipy.stats import chi2, nct

    tail = (1.0 - level) / 2.0
    if t < 0:  # by symmetry; scipy's nct.cdf is least reliable at negative t
        low, high = _noncentral_t_ci(-t, df, scale, level)
        return -high, -low
    if t > LARGE_T:
        return (t * math.sqrt(float(chi2.ppf(tail, df)) / df) * scale,
                t * math.sqrt(float(chi2.isf(tail, df)) / df) * scale)

    def bound(p: float) -> float:
        def f(ncp: float) -> float:  # nct.cdf(t, df, ncp) falls as ncp grows
            v = float(nct.cdf(t, df, ncp))
            if math.isnan(v):  # scipy gives NaN in places deep in the tails, where the cdf is 1 or 0
                v = 1.0 if ncp < t else 0.0
            return v - p

        width = 10.0 + t
        lo, hi = t - width, t + width
        while f(lo) < 0:
            lo -= width
        while f(hi) > 0:
            hi += width
        return float(brentq(f, lo, hi, xtol=1e-10))

    return bound(1.0 - tail) * scale, bound(tail) * scale


def _g_with_ci(a: np.ndarray, b: np.ndarray, *, paired: bool, level: float) -> EffectSize:
    level = check_fraction(level, "level")
    value = float((_g_paired if paired else _g_unpaired)(a, b))
    if not math.isfinite(value):  # zero spread, or only 2 pairs: the standardized effect is undefined
        low, high, method, value = math.nan, math.nan, "n/a", math.nan
    else:
        if paired:
            df, scale = a.size - 1, 1.0 / math.sqrt(a.size)
        else:
            df, scale = a.size + b.size - 2, math.sqrt(1.0 / a.size + 1.0 / b.size)
        t = value / _correction(df) / scale  # g = J * t * scale
        low, high = _noncentral_t_ci(t, df, scale, level)
        method = "noncentral t"
    n, nouns = (a.size, _PAIRS) if paired else (min(a.size, b.size), _SMALLER_LEVEL)
    return EffectSize(name="hedges_g", value=value, ci_low=low, ci_high=high, level=level,
                      magnitude=_word("hedges_g", value, n, nouns), ci_method=method)


def _effect(
    name: str,
    statistic: Callable[..., np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    *,
    paired: bool,
    level: float,
    n_resamples: int,
    seed: int,
    batch: int | None = None,
    basis: tuple[int, tuple[str, str]] | None = None,
) -> EffectSize:
    """The effect ``statistic`` of ``a`` and ``b`` with its bootstrap CI; ``basis``: how many of what it
    rests on (``(1, _NONZERO_PAIRS)``), below :data:`MIN_MAGNITUDE_N` of which it gets no magnitude word."""
    level = check_fraction(level, "level")
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    value = float(statistic(a, b))
    if not math.isfinite(
        value
    ):  # e.g. zero spread in the sample itself: the standardized effect is undefined
        value, low, high, method = math.nan, math.nan, math.nan, "n/a"
    else:
        low, high, method = bootstrap_ci(
            (a, b), statistic, paired=paired, level=level, n_resamples=n_resamples, seed=seed, batch=batch
        )
    return EffectSize(
        name=name,
        value=value,
        ci_low=low,
        ci_high=high,
        level=level,
        magnitude=magnitude(name, value) if basis is None else _word(name, value, *basis),
        ci_method=method,
    )


def hedges_g(
    a: Sequence[float],
    b: Sequence[float],
    *,
    paired: bool,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> EffectSize:
    """Hedges' g of ``a`` minus ``b``, with a bootstrap CI.

    Paired (``d = a - b``, ``n`` pairs; the "g_z" of Lakens 2013 with Hedges' correction)::

        g = J(n - 1) * mean(d) / sd(d)

    Unpaired (pooled SD, Hedges & Olkin 1985)::

        s_p = sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2))
        g   = J(n_a + n_b - 2) * (mean(a) - mean(b)) / s_p

    with SDs of ``ddof=1`` and the small-sample correction ``J(df) = 1 - 3 / (4 df - 1)``. g is NaN when the
    SD in the denominator is 0 (e.g. identical differences), where the standardized effect is undefined, and
    with only 2 pairs (``J(1) = 0``: no unbiased estimate exists).

    The CI is that of the population effect (``mean(d) / sd(d)``, resp. the pooled-SD one) by inverting
    the noncentral t distribution of the t statistic ``t = g / (J * scale)``, ``scale = 1 / sqrt(n)``
    (paired) or ``sqrt(1 / n_a + 1 / n_b)``: exact when the data are normal, and it stays finite and
    sensible with 3-10 repeats, where a bootstrap of g does not. ``n_resamples`` and ``seed`` are kept for
    a uniform signature with the rank-based effects and are not used.

    >>> a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 1.75, 2.0, 3.5, 4.75]
    >>> round(hedges_g(a, b, paired=True).value, 4), round(hedges_g(a, b, paired=False).value, 4)
    (1.3064, 0.2796)
    """
    x, y = as_pair(a, b, paired=paired, min_n=2)
    check_positive_int(n_resamples, "n_resamples")
    return _g_with_ci(x, y, paired=paired, level=level)


def cliffs_delta(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> EffectSize:
    """Cliff's delta ``P(a > b) - P(a < b)`` over all ``(a_i, b_j)`` pairs of two independent samples.

    Equals ``2 U / (n_a n_b) - 1`` for the Mann-Whitney U of ``a``; ranges over [-1, 1], 0 = no dominance.
    Values equal but for floating-point noise tie (:mod:`deltatune.stats._ties`). The CI resamples each
    sample independently (BCa); deterministic given ``seed``.

    >>> round(cliffs_delta([3.0, 4.0, 5.0], [1.0, 2.0, 3.5]).value, 4)
    0.7778
    """
    x, y = snap_together(*as_pair(a, b, paired=False))  # values equal but for rounding tie
    # scipy draws each batch of resamples separately, so the batch size fixes which resamples a seed gives:
    # this one keeps the seeded CIs of earlier reports
    batch = max(1, 2_000_000 // (x.size * y.size))
    return _effect(
        "cliffs_delta",
        _cliff,
        x,
        y,
        paired=False,
        level=level,
        n_resamples=n_resamples,
        seed=seed,
        batch=batch,
        basis=(min(x.size, y.size), _SMALLER_LEVEL),
    )


def rank_biserial(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> EffectSize:
    """Matched-pairs rank-biserial correlation of the Wilcoxon signed-rank test on ``d = a - b``.

    ``r = (T+ - T-) / (T+ + T-)``, where ``T+`` (``T-``) sums the ranks of ``|d|`` over positive (negative)
    differences, zero differences dropped first as in ``scipy.stats.wilcoxon``'s default (Kerby 2014). It is
    the share of rank mass favouring ``a`` minus that favouring ``b``, on [-1, 1]; NaN if every difference
    is 0. Differences equal but for floating-point noise tie (:mod:`deltatune.stats._ties`). The CI
    resamples pairs (BCa); deterministic given ``seed``.

    >>> round(rank_biserial([2.0, 3.0, 5.0, 4.0], [1.0, 1.0, 1.0, 5.0]).value, 4)  # d = 1, 2, 4, -1
    0.7
    """
    x, y = as_pair(a, b, paired=True)
    # the differences snapped once, as the Wilcoxon test ranks them, and handed on as pairs (d, 0): every
    # bootstrap resample of pairs then ties what the sample ties
    d = snapped_differences(x, y)
    return _effect(
        "rank_biserial", _rank_biserial, d, np.zeros_like(d), paired=True, level=level,
        n_resamples=n_resamples, seed=seed, basis=(int(np.count_nonzero(d)), _NONZERO_PAIRS),
    )
