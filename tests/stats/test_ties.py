"""snap(): values equal but for floating-point noise become one of the data's values; others stay apart."""

from __future__ import annotations

import numpy as np

from deltatune.stats._ties import snap, snap_together, snapped_differences


def test_noisy_copies_become_one_of_their_own_values_and_noise_around_zero_becomes_zero() -> None:
    values = np.array([5.1 - 5.0, 5.4 - 5.3, 0.2, 0.3 - (0.1 + 0.2), 0.1 + 1e-6])
    s = snap(values, 5.4)
    assert s[0] == s[1] and s[0] in values[:2]
    assert s[3] == 0.0 and not np.signbit(s[3])
    assert s[2] == 0.2 and s[4] == values[4]  # real differences stay apart, untouched
    assert np.array_equal(snap(s, 5.4), s)


def test_differences_of_opposite_sign_tie_in_magnitude_and_samples_share_one_grid() -> None:
    d = snapped_differences(np.array([5.0, 5.4]), np.array([5.1, 5.3]))  # -0.0999..96, +0.1000..05
    assert d[0] == -d[1]
    a, b = snap_together(np.array([300 / 119 - 200 / 119]), np.array([100 / 119]))
    assert a[0] == b[0]
