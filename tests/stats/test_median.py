"""median_ci(): the order-statistic interval of a median, its exact level, and that level held in
simulation on skewed data (timing noise is not normal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deltatune.errors import ConfigError
from deltatune.stats import median_ci


@pytest.mark.parametrize(("n", "level"), [(2, 0.5), (3, 0.75), (4, 0.875), (5, 0.9375)])
def test_small_samples_get_min_max_with_the_level_it_reaches(n: int, level: float) -> None:
    x = [3.0, 1.0, 4.0, 1.5, 9.0][:n]
    r = median_ci(x)
    assert (r.low, r.high) == (min(x), max(x))
    assert r.level == pytest.approx(level)


def test_larger_samples_get_the_narrowest_interval_reaching_the_level() -> None:
    x = np.arange(30.0)
    r = median_ci(x, level=0.95)
    # k = 10: P(Bin(30, 1/2) <= 9) = 0.0214 -> 95.7 %; k = 11 would reach only 90.1 %
    assert (r.low, r.high) == (9.0, 20.0)
    assert r.level == pytest.approx(1 - 2 * stats.binom.cdf(9, 30, 0.5))
    assert r.level >= 0.95 > 1 - 2 * stats.binom.cdf(10, 30, 0.5)


def test_order_does_not_matter_and_one_value_is_nan() -> None:
    assert median_ci([5.0, 1.0, 3.0, 2.0, 4.0, 6.0]) == median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    one = median_ci([2.0])
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.level)
    with pytest.raises(ConfigError):
        median_ci([1.0, float("nan")])


@pytest.mark.parametrize("n", [5, 9, 15])
def test_coverage_on_skewed_data_holds_the_level_reached(n: int) -> None:
    """Log-normal ratios (a right tail, as disturbed timing rounds give): the interval holds the true
    median (1.0) at least as often as its stated level, within binomial noise of 2000 draws."""
    rng = np.random.default_rng(n)
    hits, level = 0, math.nan
    for _ in range(2000):
        r = median_ci(rng.lognormal(0.0, 0.3, n))
        hits += r.low <= 1.0 <= r.high
        level = r.level
    assert hits / 2000 >= level - 0.02
