"""almost_stochastic_order(): equals deepsig.aso, is near 0 / near 1 for clear orders, is deterministic."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from deepsig import aso

from deltatune.errors import ConfigError
from deltatune.stats import almost_stochastic_order

RNG = np.random.default_rng(0)
HIGH = RNG.normal(0.80, 0.01, 12)
LOW = RNG.normal(0.70, 0.01, 12)
ITER = 100  # deepsig's bootstrap is slow (a Python loop); enough for clear orders


def test_clear_orders_give_eps_near_0_and_near_1():
    up = almost_stochastic_order(HIGH, LOW, num_bootstrap_iterations=ITER)
    down = almost_stochastic_order(LOW, HIGH, num_bootstrap_iterations=ITER)
    assert up.eps_min == 0.0 and up.a_dominates
    assert round(down.eps_min, 3) == 0.995 and not down.a_dominates
    assert (up.test, up.confidence_level, up.seed, up.threshold) == ("almost stochastic order", 0.95, 0, 0.5)


def test_equals_deepsig_restores_numpy_state_and_applies_the_threshold():
    a = HIGH[:8] - 0.1  # overlapping distributions: a is better more often than not, but not clearly
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    r = almost_stochastic_order(a, LOW, num_bootstrap_iterations=ITER, seed=5, threshold=0.2)
    assert np.array_equal(np.random.get_state()[1], before)
    ref = aso(
        a, LOW, confidence_level=0.95, num_bootstrap_iterations=ITER, num_jobs=1, show_progress=False, seed=5
    )
    assert r.eps_min == pytest.approx(float(ref), abs=0)
    assert round(r.eps_min, 3) == 0.301
    assert not r.a_dominates and r.threshold == 0.2  # dominance at deepsig's default 0.5, not at 0.2
    assert r == almost_stochastic_order(a, LOW, num_bootstrap_iterations=ITER, seed=5, threshold=0.2)


@pytest.mark.parametrize(("a", "b"), [
    ([0.2, 0.5, 0.1], [0.3, 0.4, 0.0]),  # three repeats, overlapping
    ([1.0, 1.0, 2.0, 0.5, 1.0], [0.9, 1.0, 1.0]),  # ties, unequal sizes
    (list(RNG.normal(0.0, 1.0, 9)), list(RNG.normal(0.4, 2.0, 7))),
])
def test_the_vectorised_quantile_function_gives_deepsigs_own_result(a, b):
    """almost_stochastic_order swaps deepsig's per-point quantile function for a vectorised one during its
    call; deepsig's unmodified aso (the swap is undone afterwards) gives bitwise the same eps_min."""
    module = importlib.import_module("deepsig.aso")
    original = module.get_quantile_function
    r = almost_stochastic_order(a, b, num_bootstrap_iterations=150, seed=3)
    assert module.get_quantile_function is original
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = aso(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), confidence_level=0.95,
                  num_bootstrap_iterations=150, num_jobs=1, show_progress=False, seed=3)
    assert r.eps_min == float(ref)


def test_the_same_values_in_both_levels_dominate_neither_way():
    """Levels that scored alike on every unit (in any order): 0.5, where deepsig's 0 / 0 gives 1.0."""
    same = [0.0, 0.85, 0.0, 1.7]
    with pytest.warns(UserWarning):  # deepsig's note on the sample sizes
        ref = aso(same, same[::-1], num_bootstrap_iterations=ITER, num_jobs=1, show_progress=False)
    assert float(ref) == 1.0
    r = almost_stochastic_order(same, same[::-1], num_bootstrap_iterations=ITER)
    assert r.eps_min == 0.5 and not r.a_dominates
    nearly = almost_stochastic_order(same, [0.0, 0.85, 0.0, 1.71], num_bootstrap_iterations=ITER)
    assert nearly.eps_min > 0.9  # one value apart is deepsig's answer again: b larger at the top


def test_bad_arguments():
    with pytest.raises(ConfigError, match="at least 2"):
        almost_stochastic_order([1.0], [1.0, 2.0])
    with pytest.raises(ConfigError, match="num_bootstrap_iterations"):
        almost_stochastic_order([1.0, 2.0], [1.0, 2.0], num_bootstrap_iterations=0)
