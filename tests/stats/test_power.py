"""repeats_for_power(): equals statsmodels' solve_power rounded up, reproduces Cohen's table, is monotone."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import TTestIndPower, TTestPower

from deltatune.errors import ConfigError
from deltatune.stats import MAX_REPEATS, repeats_for_power


@pytest.mark.parametrize("g", [0.3, 0.5, 0.8, 1.2, 2.0])
def test_equals_statsmodels_solve_power_ceil(g):
    paired = TTestPower().solve_power(effect_size=g, alpha=0.05, power=0.8, alternative="two-sided")
    unpaired = TTestIndPower().solve_power(effect_size=g, alpha=0.05, power=0.8, alternative="two-sided")
    assert repeats_for_power(g, paired=True) == math.ceil(paired)
    assert repeats_for_power(g, paired=False) == math.ceil(unpaired)


def test_cohen_1988_table():
    """Cohen (1988), Statistical Power Analysis, Table 2.4.1 (two-tailed alpha .05, power .80):
    n per group = 64 for d = .50 and 26 for d = .80. (For d = .20 the table gives 393; the exact noncentral-t
    solution is 393.4, so rounding up gives 394.)"""
    assert [repeats_for_power(d, paired=False) for d in (0.2, 0.5, 0.8)] == [394, 64, 26]


def test_paired_needs_fewer_and_values():
    assert repeats_for_power(0.5, paired=True) == 34
    assert repeats_for_power(1.0, paired=True) == 10


def test_monotone_in_effect_size_and_sign_free():
    sizes = [repeats_for_power(g, paired=True) for g in (0.1, 0.2, 0.4, 0.8, 1.6)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 5
    assert repeats_for_power(-0.5, paired=False) == repeats_for_power(0.5, paired=False)


def test_bounds_and_undefined():
    assert repeats_for_power(0.0, paired=True) is None
    assert repeats_for_power(float("nan"), paired=True) is None
    assert repeats_for_power(float("inf"), paired=False) is None
    assert repeats_for_power(0.01, paired=True) == MAX_REPEATS == 10_000
    assert repeats_for_power(50.0, paired=True) == 2
    assert repeats_for_power(10.0, paired=False) == 2  # statsmodels' root finder fails here


def test_large_effects_where_the_root_finder_fails():
    # statsmodels' solve_power returns NaN or a wrong root here; the answer is checked against power()
    assert repeats_for_power(8.0, paired=True) == 3
    assert TTestPower().power(effect_size=8.0, nobs=3, alpha=0.05) >= 0.8
    assert TTestPower().power(effect_size=10.0, nobs=2, alpha=0.05) == pytest.approx(0.7328, abs=1e-4)
    assert repeats_for_power(10.0, paired=True) == 3


def test_alpha_and_power_change_the_answer():
    assert repeats_for_power(0.5, paired=False, power=0.9) == 86  # Cohen (1988) Table 2.4.1: 86
    assert repeats_for_power(0.5, paired=False, alpha=0.01) == 96  # Cohen (1988) Table 2.4.1: 96


def test_bad_arguments():
    with pytest.raises(ConfigError, match="alpha"):
        repeats_for_power(0.5, paired=True, alpha=0)
    with pytest.raises(ConfigError, match="effect_size"):
        repeats_for_power("big", paired=True)
