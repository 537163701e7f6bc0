"""bayes_signed_rank(): equals baycomp's SignedRankTest, sums to 1, is deterministic and direction-aware."""

from __future__ import annotations

import math

import numpy as np
import pytest
from baycomp import SignedRankTest

from deltatune.errors import ConfigError
from deltatune.stats import bayes_signed_rank

BASE = np.array([0.712, 0.695, 0.731, 0.704, 0.688, 0.742, 0.719, 0.701, 0.725, 0.698])
JITTER = np.array([0.001, -0.002, 0.0015, 0.0, -0.001, 0.002, -0.0005, 0.001, -0.0015, 0.0005])
BETTER = BASE + np.array([0.031, 0.024, 0.040, 0.018, 0.027, 0.035, 0.022, 0.029, 0.033, 0.026])


def test_equals_baycomp_with_a_minus_b_orientation():
    r = bayes_signed_rank(BETTER, BASE, rope=0.025, seed=3, n_samples=3000)
    # baycomp reads differences as y - x, so (x=b, y=a) is a - b
    ref = SignedRankTest(BASE, BETTER, 0.025, nsamples=3000, random_state=3).probs(with_rope=True)
    assert (r.p_left, r.p_rope, r.p_right) == pytest.approx(tuple(ref), abs=0)
    assert r.p_left + r.p_rope + r.p_right == pytest.approx(1.0, abs=1e-12)
    assert r.p_right > r.p_rope > r.p_left


def test_clear_winner_and_mirror():
    right = bayes_signed_rank(BETTER, BASE, rope=0.005, n_samples=2000)
    left = bayes_signed_rank(BASE, BETTER, rope=0.005, n_samples=2000)
    assert right.p_right == 1.0 and right.test == "Bayesian signed-rank"
    assert (left.p_left, left.p_rope, left.p_right) == pytest.approx(
        (right.p_right, right.p_rope, right.p_left)
    )


def test_nearly_identical_with_a_wide_rope_is_in_the_rope():
    r = bayes_signed_rank(BASE + JITTER, BASE, rope=0.01, n_samples=2000)
    assert r.p_rope == 1.0 and r.p_left == 0.0 and r.p_right == 0.0
    narrow = bayes_signed_rank(BASE + JITTER, BASE, rope=0.0005, n_samples=2000)
    assert narrow.p_rope < 0.9
    assert narrow.p_left + narrow.p_rope + narrow.p_right == pytest.approx(1.0, abs=1e-12)


def test_deterministic_given_seed():
    a = bayes_signed_rank(BASE + 3 * JITTER, BASE, rope=0.002, seed=1, n_samples=2000)
    assert a == bayes_signed_rank(BASE + 3 * JITTER, BASE, rope=0.002, seed=1, n_samples=2000)
    assert a.p_rope != bayes_signed_rank(BASE + 3 * JITTER, BASE, rope=0.002, seed=2, n_samples=2000).p_rope


def test_zero_rope_has_no_rope_mass():
    r = bayes_signed_rank(BETTER, BASE, rope=0.0, n_samples=500)
    assert r.p_rope == 0.0 and r.p_right == 1.0


def test_unpaired_is_not_applicable():
    r = bayes_signed_rank([1.0, 2.0, 3.0], [1.0, 2.0], rope=0.1, paired=False)
    assert r.test == "n/a (unpaired)" and math.isnan(r.p_rope)
    assert r.to_dict()["p_left"] is None


def test_bad_arguments():
    with pytest.raises(ConfigError, match="rope"):
        bayes_signed_rank(BASE, BASE, rope=-0.1)
    with pytest.raises(ConfigError, match="equal lengths"):
        bayes_signed_rank(BASE, BASE[:5], rope=0.1)


@pytest.mark.parametrize(
    ("diff", "rope"),
    [
        (BETTER - BASE, 0.025),
        (BETTER - BASE, 0.0),
        (JITTER, 0.001),  # differences on the ROPE's edge, ties, a zero difference (the prior's value)
        (np.array([0.1, 0.1, -0.1, 0.2, 0.0, -0.2, 0.1]), 0.1),  # Walsh sums exactly on +-2 rope
        (np.array([0.1, 0.2, 0.3, -0.3]), 0.15),  # 0.1 + 0.2 is not 0.3 in floating point: as baycomp
        (np.random.default_rng(4).normal(0.05, 1.0, 200), 0.1),
    ],
)
@pytest.mark.parametrize("block", [500, 2_000_000])
def test_the_sample_is_baycomps_draw_for_draw(
    diff: np.ndarray, rope: float, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The posterior sample equals baycomp's own (its per-draw n x n loop) for the same seed, including
    ties, sums exactly on the ROPE's edges, and with the work cut into many blocks (of rows, of draws: the
    Dirichlet draws taken a block at a time are the same numbers); only the order of additions differs."""
    from deltatune.stats import bayes
    from deltatune.stats.bayes import signed_rank_sample

    monkeypatch.setattr(bayes, "_BLOCK", block)
    x = np.zeros(diff.size)
    ref = SignedRankTest.sample(x, diff, rope, nsamples=3000, random_state=5, prior=0.5)
    ours = signed_rank_sample(diff, rope, n_samples=3000, seed=5)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
