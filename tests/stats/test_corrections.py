"""holm(): equals statsmodels' multipletests; NaN p-values pass through and leave the family."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from deltatune.errors import ConfigError
from deltatune.stats import holm


def test_equals_multipletests():
    p = [0.001, 0.02, 0.04, 0.3, 0.012]
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
    # by hand: sorted 0.001*5, 0.012*4, 0.02*3, 0.04*2, 0.3*1 with the running maximum
    np.testing.assert_allclose(holm(p), [0.005, 0.06, 0.08, 0.3, 0.048], atol=1e-12)


def test_nan_passes_through_and_is_not_counted():
    out = holm([0.01, float("nan"), 0.04])
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04], atol=1e-12)  # family of 2, not 3


def test_all_nan_and_empty():
    assert np.isnan(holm([float("nan"), float("nan")])).all()
    assert holm([]).shape == (0,)


def test_caps_at_one():
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])


@pytest.mark.parametrize("p", [[0.5, 1.2], [-0.1], [[0.1, 0.2]], ["x"]])
def test_bad_pvalues_raise(p):
    with pytest.raises(ConfigError, match="pvalues"):
        holm(p)
