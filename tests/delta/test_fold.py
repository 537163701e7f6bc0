"""Graph rewrites before conversion: a symmetric zero pad becomes the padding of the convs that read it
(no pad op left, same outputs); every other pad stays an op of its own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deltatune.delta import convert
from deltatune.delta.linear import ChannelAffineOp, PadOp
from tests.delta.nets import diagonal_clip, moving_square_clip


class PadThenConvs(nn.Module):
    """The three ways to write a zero pad, each before an unpadded conv (TFLite's stride-2 pattern)."""

    def __init__(self) -> None:
        super().__init__()
        self.pad1 = nn.ZeroPad2d(1)
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.pad2 = nn.ConstantPad2d((2, 2, 1, 1), 0.0)
        self.dw = nn.Conv2d(8, 8, (3, 5), stride=2, groups=8)
        self.act = nn.ReLU6()
        self.head = nn.Conv2d(8, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.stem(self.pad1(x)))
        y = self.act(self.dw(self.pad2(y)))
        return self.head(F.pad(y, (1, 1, 1, 1)))


def _pads(net: torch.nn.Module) -> int:
    return sum(isinstance(op, PadOp) for op in net.ops)  # type: ignore[attr-defined]


def test_symmetric_zero_pads_fold_into_the_convs_and_the_outputs_stay_exact() -> None:
    torch.manual_seed(0)
    model = PadThenConvs().eval()
    net = convert(model, thresholds=0.0)
    assert _pads(net) == 0
    convs = {op.name: op.conv.padding for op in net.ops if op.kind == "conv"}  # type: ignore[attr-defined]
    assert convs == {"stem": (1, 1), "dw": (1, 2), "head": (1, 1)}
    assert model.stem.padding == (0, 0) and isinstance(model.pad1, nn.ZeroPad2d)  # the user's model untouched
    with torch.no_grad():
        for x in moving_square_clip(12, size=40):
            ref = model(x)
            assert float((net(x) - ref).abs().max()) <= 1e-5 * float(ref.abs().max())


class Unfoldable(nn.Module):
    """Pads that must stay: asymmetric, non-zero, read by more than a conv, or before a padded conv."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 3, 3, padding=1 if kind == "padded_conv" else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "asymmetric":
            return self.conv(F.pad(x, (1, 0, 1, 0)))
        if self.kind == "value":
            return self.conv(F.pad(x, (1, 1, 1, 1), value=0.5))
        if self.kind == "reflect":
            return self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        p = F.pad(x, (1, 1, 1, 1))
        if self.kind == "shared":
            return self.conv(p) + p[:, :, 1:-1, 1:-1]
        return self.conv(p)  # padded_conv: padding 1 already


@pytest.mark.parametrize("kind", ["asymmetric", "value", "reflect", "shared", "padded_conv"])
def test_other_pads_stay_ops_and_stay_exact(kind: str) -> None:
    torch.manual_seed(1)
    model = Unfoldable(kind).eval()
    net = convert(model, thresholds=0.0)
    assert _pads(net) == 1
    with torch.no_grad():
        for x in moving_square_clip(6, size=24):
            ref = model(x)
            assert float((net(x) - ref).abs().max()) <= 1e-5 * float(ref.abs().max())


def _reparametrized(how: str, bn: bool) -> nn.Module:
    """conv (its weight reparametrized by ``how``) [+ BN] + ReLU + conv, with BN statistics that matter."""
    conv = nn.Conv2d(3, 4, 3, padding=1)
    conv = {
        "weight_norm": lambda c: nn.utils.parametrizations.weight_norm(c),
        "spectral_norm": lambda c: nn.utils.parametrizations.spectral_norm(c),
        "old_weight_norm": lambda c: nn.utils.weight_norm(c),
        "old_spectral_norm": lambda c: nn.utils.spectral_norm(c),
    }[how](conv)
    norm = nn.BatchNorm2d(4)
    with torch.no_grad():
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.uniform_(0.5, 2.0)
    model = nn.Sequential(conv, *([norm] if bn else []), nn.ReLU(), nn.Conv2d(4, 2, 1))
    model.train()
    with torch.no_grad():  # a few training steps' worth of power iterations: u, v are not the initial ones
        for _ in range(3):
            model(torch.rand(2, 3, 8, 8))
    return model.eval()


@pytest.mark.parametrize("bn", [True, False])
@pytest.mark.parametrize("how", ["weight_norm", "spectral_norm", "old_weight_norm", "old_spectral_norm"])
def test_a_reparametrized_conv_converts_exactly_with_its_batchnorm_folded(how: str, bn: bool) -> None:
    """A weight_norm/spectral_norm conv before a BatchNorm: folding scaled the parametrization's
    recomputed ``weight`` in place, so the scale was lost and the bias folded (0.06 off from frame 0); the
    older forms are forward pre-hooks. The weight is made plain first (what the model computes in eval)."""
    torch.manual_seed(0)
    model = _reparametrized(how, bn)
    for backend in ("reference", "sparse"):
        net = convert(model, thresholds=0.0, backend=backend)
        assert not any(isinstance(op, ChannelAffineOp) for op in net.ops)  # the BN was folded
        with torch.no_grad():
            for x in diagonal_clip(torch.rand(1, 3, 8, 8), 3):
                torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-4)
