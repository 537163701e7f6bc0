"""Linear delta ops on real small networks: merges whose operands broadcast to a larger result."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deltatune.delta import convert


class _BroadcastConst(nn.Module):
    """A one-channel map plus and minus constants that broadcast it to four channels (a positional map
    ``[1, 4, H, W]``, a per-channel bias ``[1, 4, 1, 1]``), then a conv and a channel sum."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 1, 3, padding=1)
        self.b = nn.Conv2d(3, 1, 1)
        self.c = nn.Conv2d(4, 3, 3, padding=1)
        self.register_buffer("pos", torch.randn(1, 4, 10, 12))
        self.register_buffer("bias", torch.randn(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.relu(self.a(x) + self.pos)
        z = F.relu(self.bias - self.b(x))
        return self.c(y + z), F.relu(self.pos + self.a(x)).sum(1)


class _BroadcastDeltas(nn.Module):
    """A conditioning vector's per-channel map ``[N, 4, 1, 1]`` added to a frame's ``[N, 4, H, W]``: two
    changing operands of different shapes (one of them without change on some frames)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.lin = nn.Linear(5, 4)
        self.c = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        g = self.lin(c).view(-1, 4, 1, 1)
        a = self.a(x)
        return self.c(torch.cat([F.relu(a + g), F.relu(g - a)], dim=1))


def _err(a: object, b: object) -> float:
    fa = a if isinstance(a, tuple) else (a,)
    fb = b if isinstance(b, tuple) else (b,)
    return max(float((x - y).abs().max()) for x, y in zip(fa, fb, strict=True))


def _patch_frames(n: int, shape: tuple[int, int, int, int], *, seed: int) -> list[torch.Tensor]:
    """A random frame, then ``n`` frames, each the one before with a 2-row patch moved down brightened."""
    g = torch.Generator().manual_seed(seed)
    frames = [torch.rand(*shape, generator=g)]
    for t in range(n):
        x = frames[-1].clone()
        x[:, :, 2 * t : 2 * t + 2, 3:6] += 0.5
        frames.append(x)
    return frames


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_a_delta_broadcast_by_a_constant_reaches_every_element_of_the_result(backend: str) -> None:
    """``conv1ch(x) + pos[1, 4, H, W]``: the change reaches all four channels. Passed on with the
    operand's one channel, the reference backend was 0.56 off and the sparse one raised in its
    truncation kernel."""
    model = _BroadcastConst().eval()
    frames = _patch_frames(4, (2, 3, 10, 12), seed=2)
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=None)
    with torch.no_grad():
        errs = [_err(net(x), model(x)) for x in frames]
    assert max(errs) < 1e-4, errs


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_two_deltas_of_different_shapes_add_to_the_broadcast_shape(backend: str) -> None:
    """A ``[N, 4, 1, 1]`` delta plus a ``[N, 4, H, W]`` one, including frames where either carries no
    change (the other was passed on alone, with its own shape: the cat after it raised)."""
    model = _BroadcastDeltas().eval()
    g = torch.Generator().manual_seed(3)
    x, c = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 5, generator=g)
    x1 = x.clone()
    x1[:, :, 2:4, 2:4] += 0.5
    c1 = c.clone()
    c1[1] += 0.3
    frames = [(x, c), (x1, c), (x1, c1), (x, c1), (x, c1)]
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=None)
    with torch.no_grad():
        errs = [_err(net(*f), model(*f)) for f in frames]
    assert max(errs) < 1e-4, errs


class _Reductions(nn.Module):
    """Score heads: a sum to one value per sample ``[N]``, a mean to a scalar, and a non-linearity on
    the per-sample values."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = F.relu(self.a(x))
        per_sample = y.sum((1, 2, 3))
        return per_sample, y.mean(), torch.sigmoid(per_sample - 10.0) + F.relu(y.mean((1, 2, 3)) - 0.2)


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_reductions_to_one_value_per_sample_or_a_scalar_are_exact(backend: str) -> None:
    """``y.sum((1, 2, 3))`` (``[N]``) and ``y.mean()`` (a scalar) are linear: each element is one
    pixel of its own (a changed sample updates its value). Frame 1 raised in the mask inference."""
    model = _Reductions().eval()
    g = torch.Generator().manual_seed(4)
    frames = [torch.rand(2, 3, 6, 8, generator=g)]
    for t in range(3):
        x = frames[-1].clone()
        x[t % 2, :, 1:3, 2 * t : 2 * t + 2] += 0.5  # one stream changes, the other not
        frames.append(x)
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=None)
    with torch.no_grad():
        errs = [_err(net(x), model(x)) for x in frames]
        assert max(errs) < 1e-4, errs
        truncated = convert(model, thresholds=0.05, backend=backend)
        outs = [truncated(x) for x in frames]
    assert [tuple(o.shape) for o in outs[-1]] == [(2,), (), (2,)]


class _CatConstants(nn.Module):
    """A conv output concatenated with constants: coordinate maps computed from its shape each frame
    (CoordConv) and a stored map, along channels; and a stored strip along the width."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Conv2d(9, 4, 3, padding=1)
        self.side = nn.Conv2d(6, 2, 3, padding=1)
        self.register_buffer("plane", torch.randn(1, 1, 16, 16))
        self.register_buffer("strip", torch.randn(1, 6, 16, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.relu(self.conv(x))
        n, _, h, w = y.shape
        yy = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(n, 1, h, w)
        xx = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(n, 1, h, w)
        a = self.head(torch.cat([y, yy, self.plane.expand_as(yy), xx], dim=1))
        b = self.side(F.relu(torch.cat([y, self.strip.expand_as(y[..., :3])], dim=3)))
        return a, b


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_constant_parts_of_a_cat_reuse_one_zero_change_across_frames(backend: str) -> None:
    """Every delta frame passes each constant part of a cat on as the same zero tensors (the op's
    zero cache), which stay zero, and the network stays exact, also across a key frame. A fresh zero
    tensor was allocated and cleared per constant part on every delta frame."""
    model = _CatConstants().eval()
    frames = _patch_frames(7, (2, 3, 16, 16), seed=4)
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=None)
    net.keyframe_interval = 4
    cats = [op for op in net.ops if op.kind == "cat"]
    assert len(cats) == 2
    seen: list[list[tuple[int, ...]]] = []
    with torch.no_grad():
        for i, x in enumerate(frames):
            assert _err(net(x), model(x)) < 1e-4, i
            if i % 4:  # a delta frame (0 and 4 run dense)
                zeros = [[z for z in op._zeros.get(op._zeros._key) if z is not None] for op in cats]
                assert [len(z) for z in zeros] == [3, 1]
                assert all(not z.data.any() and not z.mask.any() for zs in zeros for z in zs)
                seen.append([tuple(z.data.data_ptr() for z in zs) for zs in zeros])
    assert len(seen) == 6 and all(s == seen[0] for s in seen), seen
