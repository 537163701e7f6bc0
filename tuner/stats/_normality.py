"""The normality screen behind the choice of test: Shapiro-Wilk, and the wording of the reason."""

from __future__ import annotations

import numpy as np

__all__ = ["shapiro_p", "fmt_p", "normality_choice", "all_equal", "no_spread", "same_up_to_rounding"]


def fmt_p(p: float) -> str:
    """A p-value with two significant digits, as quoted in a ``reason`` (``0.41``, ``0.033``, ``1.2e-05``)."""
    return f"{p:.2g}"


def shapiro_p(x: np.ndarray, what: str) -> tuple[float | None, str | None]:
    """``(p, None)``: the Shapiro-Wilk p-value of ``x``; or ``(None, why)`` when the test is undefined.

    Shapiro-Wilk needs at least 3 values that are not all equal. ``what`` names the data in ``why``
    (e.g. ``"the paired differences"``).
    """
    from scipy.stats import shapiro

    if x.size < 3:
        return None, f"{what}: only {x.size} values (Shapiro-Wilk needs 3)"
    if all_equal(x):
        return None, f"{what}: all values equal (Shapiro-Wilk undefined)"
    return float(shapiro(x).pvalue), None


def all_equal(x: np.ndarray) -> bool:
    """Whether every value of ``x`` is the same, up to floating-point noise (a relative 1e-12)."""
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))))


def no_spread(a: np.ndarray, b: np.ndarray, *, paired: bool) -> bool:
    """Whether a comparison of ``a`` and ``b`` has no spread for a t statistic: paired, every difference
    the same; unpaired, both samples constant (up to floating-point noise: :func:`all_equal`)."""
    return all_equal(a - b) if paired else all_equal(a) and all_equal(b)


def same_up_to_rounding(a: np.ndarray, b: np.ndarray, *, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)``, with ``a`` replaced by ``b``'s values where the two differ by floating-point noise only
    (paired: every difference within a relative 1e-12; unpaired: both constant at the same value). The
    rank tests count any non-zero difference: six pairs that all differ by 5.5e-17 (``0.1 + 0.2`` against
    ``0.3``) gave an exact Wilcoxon p of 0.031, "significant" from rounding."""
    scale = 1e-12 * max(1.0, float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    if paired and a.shape == b.shape and float(np.max(np.abs(a - b))) <= scale:
        return b.copy(), b
    if not paired and all_equal(a) and all_equal(b) and abs(float(a[0] - b[0])) <= scale:
        return np.full_like(a, float(b[0])), b
    return a, b


def normality_choice(
    p_values: list[float | None], whys: list[str | None], alpha: float, what: str
) -> tuple[bool, str]:
    """``(normal, phrase)``: whether all screened data look normal, and the phrase quoting why."""
    undefined = [w for w in whys if w is not None]
    if undefined:
        return False, undefined[0]
    ps = [p for p in p_values if p is not None]
    quoted = f"p = {fmt_p(ps[0])}" if len(ps) == 1 else f"smallest p = {fmt_p(min(ps))} of {len(ps)}"
    if min(ps) >= alpha:
        return True, f"{what} look normal (Shapiro-Wilk {quoted} >= {alpha:g})"
    return False, f"{what} do not look normal (Shapiro-Wilk {quoted} < {alpha:g})"
