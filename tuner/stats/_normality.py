"""The normality screen behind the choice of test: Shapiro-Wilk, and the wording of the reason."""

from __future__ import annotations

import numpy as np

__all__ = ["shapiro_p", "fmt_p"]


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
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
        return None, f"{what}: all values equal (Shapiro-Wilk undefined)"
    return float(shapiro(x).pvalue), None
