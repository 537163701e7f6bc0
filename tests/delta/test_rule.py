"""DeltaCNN's rule as defined in ``deltatune.delta.rule``, and every other body of it held to it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deltatune.delta import native
from deltatune.delta.rule import (
    fires,
    input_step,
    island_step,
    pixel_score,
    refresh_due,
    refresh_exact,
    truncation_step,
)

CL = torch.channels_last


def test_truncation_step_by_hand() -> None:
    """One pixel, one channel, ReLU, threshold 0.5: a change of 0.3 is held back in the residual, the
    next change of 0.3 makes it fire with the accumulated 0.6; a negative change below zero emits 0."""
    a = torch.tensor([[[[1.0]]]])
    r = torch.zeros_like(a)
    upd = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    s1 = truncation_step(a, r, torch.full_like(a, 0.3), upd, torch.relu, 0.5, "max")
    assert not s1.fire.item() and s1.emitted.item() == 0.0
    assert s1.a.item() == 1.0 and s1.r.item() == pytest.approx(0.3)
    s2 = truncation_step(s1.a, s1.r, torch.full_like(a, 0.3), upd, torch.relu, 0.5, "max")
    assert s2.fire.item() and s2.emitted.item() == pytest.approx(0.6)
    assert s2.a.item() == pytest.approx(1.6) and s2.r.item() == 0.0
    s3 = truncation_step(s2.a, s2.r, torch.full_like(a, -3.0), upd, torch.relu, None, "max")
    assert s3.fire.item() and s3.emitted.item() == pytest.approx(-1.6)  # relu(-1.4) - relu(1.6)
    dropped = truncation_step(a, r, torch.full_like(a, 0.3), upd, torch.relu, 0.5, "max", accumulate=False)
    assert dropped.r.item() == 0.0 and dropped.a.item() == 1.0  # the ablation forgets the change


def test_scores_fire_and_refresh_rules() -> None:
    d = torch.tensor([3.0, -4.0]).reshape(1, 2, 1, 1)
    assert pixel_score(d, "max").item() == 4.0
    assert pixel_score(d, "norm").item() == pytest.approx(5.0)
    assert pixel_score(d, "rms").item() == pytest.approx((12.5) ** 0.5)
    with pytest.raises(ValueError):
        pixel_score(d, "mean")
    upd = torch.tensor([True, False]).reshape(1, 1, 1, 2)
    score = torch.tensor([1.0, 9.0]).reshape(1, 1, 1, 2)
    assert fires(score, upd, 0.5).tolist() == [[[[True, False]]]] == fires(score, upd, None).tolist()
    assert not fires(score, upd, 1.0).any()
    assert refresh_exact([0.0, None, 0], True) and not refresh_exact([0.0, 0.01], True)
    assert not refresh_exact([0.0], False)
    assert refresh_due(25, 100, 0.25) and not refresh_due(24, 100, 0.25) and not refresh_due(100, 100, None)


def test_input_step_keeps_the_reference_where_nothing_fired() -> None:
    ref = torch.zeros(1, 2, 1, 3)
    x = torch.tensor([[[[0.05, 1.0, 0.0]], [[0.0, 0.0, -2.0]]]])
    diff, score, active, new_ref = input_step(x, ref, 0.1, "max")
    assert active.reshape(-1).tolist() == [False, True, True]
    assert torch.equal(new_ref[..., 0], ref[..., 0]) and torch.equal(new_ref[..., 1:], x[..., 1:])
    assert torch.equal(diff * active, x * active) and score.shape == (1, 1, 1, 3)
    _, _, _, overwritten = input_step(x, ref, 0.1, "max", accumulate=False)
    assert torch.equal(overwritten, x)


def test_island_step_is_the_truncation_step_for_a_pointwise_op() -> None:
    """For a pointwise ``f`` the island rule (acc, out) equals the truncation rule (a + r, f(a))."""
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 4, 5, 6, generator=gen)
    r = torch.randn(2, 4, 5, 6, generator=gen) * 0.1
    d = torch.randn(2, 4, 5, 6, generator=gen) * 0.5
    upd = torch.ones(2, 1, 5, 6, dtype=torch.bool)
    for accumulate in (True, False):
        t = truncation_step(a, r, d, upd, torch.relu, 0.3, "max", accumulate)
        emitted, fire, _, out, _, _ = island_step(
            [a + r], [d], torch.relu(a), torch.relu, lambda y: upd, 0.3, "max", accumulate
        )
        assert torch.equal(fire, t.fire)
        torch.testing.assert_close(emitted, t.emitted)
        torch.testing.assert_close(out, torch.relu(t.a) if accumulate else torch.relu(a + r + d))


@pytest.mark.skipif(not native.available(), reason="compiled kernels could not be built here")
@pytest.mark.parametrize("mode", ["max", "norm", "rms"])
@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("threshold", [None, 0.0, 0.3])
def test_compiled_truncation_kernel_equals_the_rule(mode, accumulate, threshold) -> None:
    """The C++ ``truncate_pointwise`` (ReLU6 here: slope 0, clamp at 6) against ``truncation_step``."""
    nk = native.kernels()
    gen = torch.Generator().manual_seed(5)
    shape = (2, 5, 7, 9)
    a = (torch.randn(shape, generator=gen) * 3).contiguous(memory_format=CL)
    r = (torch.randn(shape, generator=gen) * 0.1).contiguous(memory_format=CL)
    mask = torch.rand(2, 1, 7, 9, generator=gen) < 0.4
    d = (torch.randn(shape, generator=gen) * mask).contiguous(memory_format=CL)
    want = truncation_step(a, r, d, mask.expand(2, 1, 7, 9), nn.ReLU6(), threshold, mode, accumulate)
    a_k, r_k = a.clone(memory_format=CL), r.clone(memory_format=CL)
    emitted, fire, fired = nk.truncate_pointwise(
        [d],
        [1],
        [mask],
        a_k,
        r_k,
        -1.0 if threshold is None else threshold,
        {"max": 0, "norm": 1, "rms": 2}[mode],
        accumulate,
        0.0,
        float("-inf"),
        6.0,
        None,
        True,
    )
    assert torch.equal(fire.reshape(want.fire.shape), want.fire) and fired == int(want.fire.sum())
    torch.testing.assert_close(emitted, want.emitted, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a_k, want.a, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(r_k, want.r, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not native.available(), reason="compiled kernels could not be built here")
@pytest.mark.parametrize("mode", ["max", "norm", "rms"])
@pytest.mark.parametrize("accumulate", [True, False])
def test_compiled_input_kernel_equals_the_rule(mode, accumulate) -> None:
    nk = native.kernels()
    gen = torch.Generator().manual_seed(6)
    ref = torch.rand(2, 3, 8, 10, generator=gen).contiguous(memory_format=CL)
    x = ref + (torch.rand(2, 1, 8, 10, generator=gen) < 0.3) * torch.randn(2, 3, 8, 10, generator=gen)
    x = x.contiguous(memory_format=CL)
    diff, _, active, new_ref = input_step(x, ref, 0.2, mode, accumulate=accumulate)
    delta, act, count, ref_k = nk.input_sparsify(
        x, ref.clone(memory_format=CL), 0.2, {"max": 0, "norm": 1, "rms": 2}[mode], accumulate, True
    )
    assert torch.equal(act.reshape(active.shape), active) and count == int(active.sum())
    assert torch.equal(delta, diff * active) and torch.equal(ref_k, new_ref)


def test_gathered_step_equals_the_rule_on_whole_tensors() -> None:
    """The op's gathered path (updated pixels only) against the rule on the whole tensors."""
    from deltatune.delta._context import RunContext
    from deltatune.delta.backends import ReferenceBackend
    from deltatune.delta.truncation import PointwiseTruncation
    from deltatune.delta.values import DeltaTensor

    gen = torch.Generator().manual_seed(8)
    op = PointwiseTruncation("t", nn.PReLU(4, 0.2), "prelu", 0.1)  # no piecewise form given: torch paths
    op.attach(RunContext(backend=ReferenceBackend()))
    a0 = torch.randn(1, 4, 16, 16, generator=gen)
    op(DeltaTensor(a0, None, True))
    a, r = a0.clone(), torch.zeros_like(a0)
    for _ in range(3):
        mask = torch.rand(1, 1, 16, 16, generator=gen) < 0.05  # few pixels: the gathered path runs
        d = torch.randn(1, 4, 16, 16, generator=gen) * mask
        got = op(DeltaTensor(d, mask, False))
        want = truncation_step(a, r, d, mask, op.fn, 0.1, "max")
        a, r = want.a, want.r
        assert torch.equal(got.mask, want.fire)
        torch.testing.assert_close(got.data, want.emitted)
        torch.testing.assert_close(op.a, a)
        torch.testing.assert_close(op.r, r)
