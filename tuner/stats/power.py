"""Sample-size planning: how many repeats per level a t-test needs to detect a given effect."""

from __future__ import annotations

import math
import warnings

import numpy as np

from deltatune.errors import ConfigError
from deltatune.stats._validate import check_fraction

__all__ = ["repeats_for_power", "MAX_REPEATS"]

#: Upper bound returned by :func:`repeats_for_power` (effects this small are not worth chasing).
MAX_REPEATS = 10_000
#: Fewest repeats per level for which a t-test is defined.
MIN_REPEATS = 2


def repeats_for_power(
    effect_size: float, *, paired: bool, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Repeats per level for a two-sided t-test to reach ``power`` at standardized effect ``effect_size``.

    Paired: the number of pairs for a one-sample t-test on the differences (statsmodels ``TTestPower``;
    ``effect_size`` is g_z). Unpaired: the size of each of two equal groups (``TTestIndPower``, ratio 1).
    The solution is rounded up. Returns ``None`` when the effect is 0 or not finite (no sample size
    suffices or the effect is undefined), ``MIN_REPEATS`` (2) when even 2 repeats are enough, and
    ``MAX_REPEATS`` (10 000) when more than that would be needed. The sign of the effect does not matter.

    >>> repeats_for_power(0.5, paired=True), repeats_for_power(0.5, paired=False)
    (34, 64)
    """
    import statsmodels.tools.sm_exceptions  # noqa: F401  (installs statsmodels' warning filters on import:
    from statsmodels.stats.power import TTestIndPower, TTestPower  # before catch_warnings, which drops them)

    alpha = check_fraction(alpha, "alpha")
    power = check_fraction(power, "power")
    try:
        es = abs(float(effect_size))
    except (TypeError, ValueError):
        raise ConfigError(f"effect_size: expected a number, got {effect_size!r}") from None
    if es == 0 or not math.isfinite(es):
        return None
    if paired:
        model, size_arg = TTestPower(), "nobs"
    else:
        model, size_arg = TTestIndPower(), "nobs1"

    def power_at(n: int) -> float:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            p = model.power(effect_size=es, alpha=alpha, alternative="two-sided", **{size_arg: n})
            if not math.isfinite(p):
                # scipy's noncentral t underflows to NaN in the far (opposite) tail at a large
                # noncentrality; that tail contributes ~0, so the one-sided power at alpha / 2 is the answer
                p = model.power(effect_size=es, alpha=alpha / 2, alternative="larger", **{size_arg: n})
        return float(p) if math.isfinite(p) else 1.0  # both tails overflowed: the power is 1

    # The root finder fails to converge outside these bounds, so they are checked first.
    if power_at(MIN_REPEATS) >= power:
        return MIN_REPEATS
    if power_at(MAX_REPEATS) < power:
        return MAX_REPEATS
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # statsmodels' ConvergenceWarning: handled below
        n = float(model.solve_power(effect_size=es, alpha=alpha, power=power, alternative="two-sided"))
    if math.isfinite(n):
        up = min(MAX_REPEATS, max(MIN_REPEATS, math.ceil(n)))
        if power_at(up) >= power and (up == MIN_REPEATS or power_at(up - 1) < power):
            return up
    # the root finder failed or converged to a wrong root (it does at large effects): bisect on n instead
    low, high = MIN_REPEATS, MAX_REPEATS  # power(low) < target <= power(high); power grows with n
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if power_at(mid) >= power else (mid, high)
    return high
