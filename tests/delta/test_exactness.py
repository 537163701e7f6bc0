"""With every threshold 0 the delta network reproduces the dense network on every frame."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deltatune.delta import convert
from deltatune.errors import ConfigError
from tests.delta.nets import AllOps, diagonal_clip, moving_square_clip, randomize_bn


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def test_every_supported_op_is_exact_at_threshold_zero() -> None:
    torch.manual_seed(0)
    model = randomize_bn(AllOps())
    net = convert(model, thresholds=0.0)
    kinds = {op.kind for op in net.ops}
    for k in [
        "conv",
        "deconv",
        "linear",
        "batchnorm",
        "relu",
        "relu6",
        "leaky_relu",
        "hardswish",
        "silu",
        "sigmoid",
        "maxpool",
        "add",
        "cat",
        "pad",
        "input",
        "output",
    ]:
        assert k in kinds, k
    clip = moving_square_clip(40, noise=0.0)
    # two independent streams in one batch: the second is the first clip shifted in time
    frames = [torch.cat([clip[t], clip[(t + 7) % len(clip)]]) for t in range(len(clip))]
    with torch.no_grad():
        for x in frames:
            out = net(x)
            ref = model(x)
            for o, r in zip(out, ref, strict=True):
                assert rel_err(o, r) < 1e-4
    # it really skipped work: the moving square leaves most pixels unchanged
    assert net.mac_speedup() > 1.2


def test_reused_module_gets_two_truncation_points() -> None:
    net = convert(randomize_bn(AllOps()))
    names = net.threshold_names
    assert names[0] == "input"
    assert "block.relu" in names and "block.relu#1" in names
    assert ":relu" in names  # top-level functional call site
    assert len(names) == len(set(names))


def test_batch_entries_are_independent_streams() -> None:
    torch.manual_seed(1)
    model = randomize_bn(AllOps())
    clip = moving_square_clip(6, seed=3)
    other = moving_square_clip(6, seed=4)
    both = convert(model, thresholds=0.05)
    alone = convert(model, thresholds=0.05)
    with torch.no_grad():
        for a, b in zip(clip, other, strict=True):
            y2 = both(torch.cat([a, b]))[0][0]
            y1 = alone(a)[0][0]
            torch.testing.assert_close(y2, y1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "norm", "rms"])
def test_modes_exact_at_zero_and_truncate_above(mode: str) -> None:
    model = randomize_bn(AllOps())
    clip = moving_square_clip(8)
    net = convert(model, thresholds=0.0, mode=mode)
    with torch.no_grad():
        for x in clip:
            assert rel_err(net(x)[1], model(x)[1]) < 1e-4
        s0 = net.mac_speedup()
        net.set_thresholds(0.2)
        net.reset()
        net.stats.clear()
        for x in clip:
            net(x)
    assert net.mac_speedup() > s0


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_per_channel_activation_is_exact(backend: str) -> None:
    """PReLU has one slope per channel: the gathered fast path must keep channels on dim 1."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.PReLU(4), torch.nn.Conv2d(4, 2, 1)
    ).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.1, -0.5, 0.9, 0.3]))
    net = convert(model, thresholds=0.0, backend=backend)
    with torch.no_grad():
        for x in diagonal_clip(torch.rand(1, 3, 16, 16), 4, step=1.0):
            assert rel_err(net(x), model(x)) < 1e-4


class _Shuffles(nn.Module):
    """ShuffleNet's channel split and shuffle (written as its reference code does, with chunk and a view
    that splits the channels, and as torch.channel_shuffle) and a super-resolution network's pixel
    shuffle."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 3, padding=1)
        self.c = nn.Conv2d(16, 16, 1)
        self.up = nn.PixelShuffle(2)
        self.d = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.a(x))
        n, c, h, w = y.size()
        y = y.view(n, 4, c // 4, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        keep, branch = y.chunk(2, dim=1)  # ShuffleNetV2's split: chunk(2) of a one-channel mask is one piece
        y = F.relu(self.b(torch.cat((keep, F.relu(branch)), dim=1)))
        y = F.relu(self.c(torch.channel_shuffle(y, 2)))
        return self.d(F.pixel_unshuffle(self.up(y), 2)[:, :4] + F.pixel_shuffle(y, 2)[:, :, ::2, ::2])


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_channel_and_pixel_shuffles_are_exact_and_stay_sparse(backend: str) -> None:
    """The shuffles move values between channels and pixels. Run on the one-channel mask, they fail (or, for
    the view, give a shape that is no pixel mask), and every pixel of the sample counted as changed (MAC
    speedup about 1x); run on the mask repeated over the channels, they keep the moving square's pixels
    (9x on this clip). PixelShuffle and channel_shuffle were refused before."""
    model = _Shuffles().eval()
    net = convert(model, thresholds=0.0, backend=backend)
    with torch.no_grad():
        for x in moving_square_clip(5, noise=0.0):
            torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-5)
    assert net.mac_speedup() > 5


class _Scaled(nn.Module):
    """An optional argument of ``forward`` that is not a tensor: an option, not a second frame input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor, scale: float = 0.5, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = F.relu(self.conv(x)) * scale
        if mask is not None:
            y = y * mask
        return y


class _UNetUp(nn.Module):
    """A U-Net decoder step: the upsampled map padded to its skip's size, amounts computed from shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.head = nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.skip(x))
        b = self.up(F.relu(self.down(x[..., :-1, :-1])))  # odd size: the upsampled map is one short
        dy, dx = a.size(2) - b.size(2), a.size(3) - b.size(3)
        b = F.pad(b, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.head(F.relu(torch.cat([a, b], dim=1)))


class _CoordConv(nn.Module):
    """CoordConv: coordinate maps (constants computed from the frame's shape) concatenated to the frame."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(5, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        yy = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(n, 1, h, w)
        xx = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(n, 1, h, w)
        return self.head(F.relu(self.conv(torch.cat([x, yy, xx], dim=1))))


class _Broadcast(nn.Module):
    """A constant and a pooled context broadcast to a map's shape with ``expand_as`` / ``expand``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bias = nn.Parameter(torch.randn(1, 8, 1, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x) + self.bias.expand_as(x[:, :1].repeat(1, 8, 1, 1)))
        n, c, h, w = y.shape
        context = F.relu(self.pool(y).expand_as(y)) + F.relu(self.pool(y).expand(-1, -1, h, w))
        return self.head(F.relu(y + context))


@pytest.mark.parametrize("backend", ["reference", "sparse"])
@pytest.mark.parametrize("model", [_Scaled, _UNetUp, _CoordConv, _Broadcast])
def test_common_model_idioms_convert_exactly_and_stay_sparse(model: type[nn.Module], backend: str) -> None:
    """Optional non-tensor arguments, shape-computed padding, constants concatenated to a frame and
    broadcasts by ``expand_as`` were refused (taken for a second input, "pad is not supported", "cat of
    a frame-dependent and a constant tensor", "expand_as is not supported"), even with the fallback for
    the first three. A key frame every 5 frames re-counts the constants, as frame 0 does."""
    torch.manual_seed(0)
    dense = model().eval()
    net = convert(dense, thresholds=0.0, backend=backend)
    net.keyframe_interval = 5
    with torch.no_grad():
        for x in moving_square_clip(12, noise=0.0):
            assert rel_err(net(x), dense(x)) < 1e-4
    assert net.mac_speedup() > 1.2  # the constants add no updated pixel on a delta frame


def test_an_optional_argument_is_fixed_at_its_default() -> None:
    """The delta network follows the default it was converted with: another value is refused before
    the frame touches any state (the graph's own check fired part-way through the frame, after the
    input step had taken it in: the next frame was 0.21 off), the same value passes."""
    dense = _Scaled().eval()
    net = convert(dense)
    assert net.fixed_arguments == {"scale": 0.5, "mask": None}
    x = moving_square_clip(3)
    with torch.no_grad():
        net(x[0])
        with pytest.raises(ConfigError, match=r"argument scale=0.7: .* converted with scale=0.5"):
            net(x[1], 0.7)
        with pytest.raises(ConfigError, match=r"argument mask=tensor"):
            net(x[1], 0.5, torch.ones(1))
        torch.testing.assert_close(net(x[1], 0.5), dense(x[1]))
        torch.testing.assert_close(net(x[2], 0.5, None), dense(x[2]))


class _FunctionalConv(nn.Module):
    """Convolutions called as functions on the model's own weights (dilated, grouped)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.3)
        self.bias = nn.Parameter(torch.randn(8))
        self.weight2 = nn.Parameter(torch.randn(8, 4, 3, 3) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.conv2d(x, self.weight, self.bias, padding=2, dilation=2))
        return F.conv2d(y, self.weight2, None, 1, 1, 1, 2)


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_a_functional_conv_on_the_models_weights_is_a_sparse_conv(backend: str) -> None:
    """``F.conv2d(x, self.weight, ...)`` was refused ("operation 'conv2d' is not supported"), and even
    the fallback could not take its weights; it is the layer it describes."""
    torch.manual_seed(0)
    dense = _FunctionalConv().eval()
    net = convert(dense, thresholds=0.0, backend=backend)
    assert [op.kind for op in net.ops].count("conv") == 2
    with torch.no_grad():
        for x in moving_square_clip(8, noise=0.0):
            assert rel_err(net(x), dense(x)) < 1e-4
    assert net.mac_speedup() > 1.2


class _ModeInDictDefault(nn.Module):
    """The interpolation mode read from a dict default of ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x: torch.Tensor, cfg: dict = {"mode": "nearest"}) -> torch.Tensor:  # noqa: B006
        return self.head(F.interpolate(F.relu(self.conv(x)), scale_factor=2, mode=cfg["mode"]))


class _ModeInNestedDefault(nn.Module):
    """The mode and the factor read from a nested container default (a dict of tuples)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x: torch.Tensor, cfg: dict = {"up": ("bilinear", 2)}) -> torch.Tensor:  # noqa: B006
        mode, factor = cfg["up"][0], cfg["up"][1]
        y = F.interpolate(F.relu(self.conv(x)), scale_factor=factor, mode=mode, align_corners=False)
        return self.head(y)


class _ModeInAttribute(nn.Module):
    """The mode read from a dict the module holds."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 3, padding=1)
        self.cfg = {"mode": "bilinear"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(F.relu(self.conv(x)), scale_factor=2, mode=self.cfg["mode"], align_corners=False)
        return self.head(y)


@pytest.mark.parametrize("backend", ["reference", "sparse"])
@pytest.mark.parametrize("model", [_ModeInDictDefault, _ModeInNestedDefault, _ModeInAttribute])
def test_an_interpolation_mode_read_from_a_constant_container_converts_exactly(
    model: type[nn.Module], backend: str
) -> None:
    """An item of a container default reached ``interpolate`` as a graph value and was refused as its
    mode ("interpolation mode getitem is not linear-monotone"); it is the constant the default holds."""
    torch.manual_seed(0)
    dense = model().eval()
    net = convert(dense, thresholds=0.0, backend=backend)
    assert "upsample" in {op.kind for op in net.ops}
    with torch.no_grad():
        for x in moving_square_clip(8, noise=0.0):
            assert rel_err(net(x), dense(x)) < 1e-4
    assert net.mac_speedup() > 1.2


class _Sized(nn.Module):
    """A container default (fx's concrete_args flattened it into code that does not compile) and a
    ``*args, **kwargs`` tail (taken for frame inputs: "expected a tensor, got tuple")."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(
        self, x: torch.Tensor, size: tuple[int, int] = (16, 16), *rest: object, **options: object
    ) -> torch.Tensor:
        return F.interpolate(F.relu(self.conv(x)), size=size, mode="bilinear", align_corners=False)


def test_container_defaults_and_star_arguments_are_not_frame_inputs() -> None:
    dense = _Sized().eval()
    net = convert(dense, thresholds=0.0)
    assert net.fixed_arguments == {"size": (16, 16)}
    assert [n for n in net.threshold_names if n.startswith("input")] == ["input"]  # one frame input
    with torch.no_grad():
        for x in moving_square_clip(4, noise=0.0):
            assert rel_err(net(x), dense(x)) < 1e-4
        with pytest.raises(ConfigError, match=r"argument size=\(8, 8\)"):
            net(x, (8, 8))
