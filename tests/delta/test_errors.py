"""Bad input is one clear line: unsupported ops, wrong-sized frames, bad options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deltatune.delta import convert
from deltatune.errors import ConfigError, StreamError, UnsupportedOpError
from tests.delta.nets import diagonal_clip


class Softmaxed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Softmax(dim=1)

    def forward(self, x):
        return self.head(self.body(x))


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(y)


def test_unsupported_module_names_op_and_path() -> None:
    with pytest.raises(UnsupportedOpError) as exc:
        convert(Softmaxed())
    msg = str(exc.value)
    assert "head" in msg and "Softmax" in msg and "\n" not in msg


def test_unsupported_function_names_owner() -> None:
    # says why, not only that 'mul' is unsupported: a product by a constant converts; and which product,
    # by the values it takes (a forward with two products said "(mul)" for either)
    with pytest.raises(
        UnsupportedOpError, match=r"\(mul of conv, sigmoid\): a product of two changing maps is not linear"
    ):
        convert(Gated())

    class Normalised(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x / (torch.relu(x) + 1)

    with pytest.raises(UnsupportedOpError, match=r"a quotient by a changing map is not linear"):
        convert(Normalised())


def test_dense_fallback_is_exact_at_zero() -> None:
    torch.manual_seed(0)
    for model in (Softmaxed().eval(), Gated().eval()):
        net = convert(model, fallback=True, thresholds=0.0)
        assert any(op.kind == "fallback" for op in net.ops)
        with torch.no_grad():
            for x in diagonal_clip(torch.rand(1, 3, 8, 8), 4):
                torch.testing.assert_close(net(x), model(x), rtol=1e-5, atol=1e-6)


def test_resolution_or_batch_change_mid_stream() -> None:
    net = convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()))
    with torch.no_grad():
        net(torch.rand(1, 3, 8, 8))
        with pytest.raises(StreamError, match=r"\(1, 3, 8, 8\)"):
            net(torch.rand(1, 3, 16, 8))
        with pytest.raises(StreamError, match="batch size or resolution"):
            net(torch.rand(2, 3, 8, 8))
        net.auto_reset = True
        y = net(torch.rand(2, 3, 8, 8))
    assert y.shape == (2, 4, 8, 8)


def test_wrong_channel_count_is_caught_at_conversion() -> None:
    with pytest.raises(RuntimeError):
        convert(nn.Sequential(nn.Conv2d(3, 4, 3)), example_input=torch.rand(1, 5, 8, 8))


def test_bad_options() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ConfigError, match="mode"):
        convert(m, mode="mean")
    with pytest.raises(ConfigError, match="odd"):
        convert(m, input_dilation=2)
    with pytest.raises(ConfigError, match="backend"):
        convert(m, backend="cuda-magic")


def test_untraceable_model() -> None:
    class Branchy(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(UnsupportedOpError, match="torch.fx cannot trace"):
        convert(Branchy())


def test_fallback_call_site_keeps_its_module_name() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=2, mode="bicubic"), nn.ReLU()
    )
    net = convert(model, fallback=True)
    assert net.threshold_names == ["input", "1", "2"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_frame_is_refused_before_it_touches_state(bad: float) -> None:
    torch.manual_seed(0)
    net = convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), thresholds=0.01)
    x = torch.rand(1, 3, 8, 8)
    first = net(x)
    poisoned = x.clone()
    poisoned[0, 1, 2, 3] = bad
    with pytest.raises(StreamError, match=r"frame 1, input 0: contains NaN or Inf"):
        net(poisoned)
    # the stream goes on as if the bad frame never came
    assert torch.equal(net(x), first)


def test_finite_frames_whose_sum_overflows_are_accepted() -> None:
    """The finiteness check sums the frame first: finite values that overflow the float32 sum are still
    a valid frame (the elementwise check decides), and the stream runs on."""
    net = convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), thresholds=0.01)
    x = torch.full((1, 3, 8, 8), 3e38)  # each value finite, the sum is not
    assert not torch.isfinite(x.sum())
    net(x)
    net(x)


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_an_unbatched_frame_is_refused_and_leaves_no_stream_behind(backend: str) -> None:
    """torch's conv takes an unbatched ``[C, H, W]``; the delta rule would read H as the channels. The first
    frame is refused with the shape, and the next, batched, frame starts the stream as if nothing ran."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)).eval()
    net = convert(model, thresholds=0.0, backend=backend)
    x = torch.rand(3, 8, 8)
    with torch.no_grad():
        with pytest.raises(StreamError, match=r"input of shape \(3, 8, 8\).*\[N, C, H, W\].*x\[None\]"):
            net(x)
        for frame in diagonal_clip(x[None], 3):
            torch.testing.assert_close(net(frame), model(frame), rtol=1e-5, atol=1e-6)


def test_batchnorm_without_running_statistics_runs_with_the_fallback() -> None:
    """It normalises by each batch, so no delta rule applies; it was refused even with fallback=True (the
    op's constructor raised before the builder could run it densely)."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8, track_running_stats=False),
        nn.ReLU(),
        nn.Conv2d(8, 2, 1),
    ).eval()
    with pytest.raises(UnsupportedOpError, match=r"BatchNorm without running statistics.*fallback=True"):
        convert(model)
    for backend in ("reference", "sparse"):
        net = convert(model, thresholds=0.0, fallback=True, backend=backend)
        with torch.no_grad():
            for x in diagonal_clip(torch.rand(2, 3, 8, 8), 3):
                torch.testing.assert_close(net(x), model(x), rtol=1e-5, atol=1e-5)


class _Mutated(nn.Module):
    """A conv's output changed in place and read again through the old name: ``how`` picks the form."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.how == "add_":
            y.add_(1.0)
        elif self.how == "relu_":
            y.relu_()
        elif self.how == "functional":
            F.relu(y, inplace=True)
        else:
            self.act(y)
        return self.head(torch.sigmoid(y))


@pytest.mark.parametrize("how", ["add_", "relu_", "functional", "module"])
def test_an_in_place_change_read_through_the_old_name_is_refused(how: str) -> None:
    """``y.add_(1); head(y)``: torch.fx records the add as a node nothing reads, the head reads the conv;
    the model's forward sees the change by aliasing, the converted network did not (0.29 off at
    thresholds 0, silently)."""
    with pytest.raises(
        UnsupportedOpError,
        match=r": changes conv in place, and sigmoid read\(s\) it after "
        r"that; torch.fx does not record such a change",
    ):
        convert(_Mutated(how).eval())


def test_in_place_forms_whose_result_is_used_convert_exactly() -> None:
    """``conv(x).relu_()``, ``y += x`` and ``F.relu(y, inplace=True)`` assigned: the result carries the
    change, so the converted network computes what the model does (``relu_`` was refused before)."""

    class Chain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
            self.c = nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.a(x).relu_()
            z = self.b(y)
            z += y
            z = F.relu(z, inplace=True)
            return self.c(z.clamp_(max=2.0))

    torch.manual_seed(0)
    model = Chain().eval()
    net = convert(model, thresholds=0.0)
    frames = torch.rand(3, 1, 3, 8, 8)
    for f in frames:
        out = net(f)
    assert torch.allclose(out, model(frames[-1]), atol=1e-5)


class _InPlaceFallback(nn.Module):
    """An op the engine runs densely (``--fallback``), called in place on a conv's output."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv, self.head = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = F.relu_(y) if self.how == "F.relu_" else torch.abs_(y) if self.how == "torch.abs_" else y.abs_()
        return self.head(y)


@pytest.mark.parametrize("how", ["F.relu_", "torch.abs_", "abs_"])
def test_the_dense_fallback_runs_an_in_place_op_out_of_place(how: str) -> None:
    """``--fallback`` ran ``y.abs_()`` as written on its own dense buffer, changing it under itself: 0.18-0.48
    off from frame 1 on, at thresholds 0. It runs the plain form."""
    torch.manual_seed(0)
    model = _InPlaceFallback(how).eval()
    net = convert(model, thresholds=0.0, fallback=True)
    for f in torch.rand(4, 1, 3, 8, 8):
        assert torch.allclose(net(f), model(f), atol=1e-5)


def test_an_in_place_function_read_through_the_old_name_is_refused() -> None:
    """``F.relu_(y)`` as a statement, then ``head(y)``: a function call ending in ``_`` changes its input as
    a method call does, and was let through."""

    class Statement(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            F.relu_(y)
            return self.head(y)

    with pytest.raises(UnsupportedOpError, match=r"changes conv in place, and head read\(s\) it after that"):
        convert(Statement().eval(), fallback=True)


def test_an_in_place_op_whose_input_is_read_again_only_for_its_shape_converts() -> None:
    """``z = relu_(y)`` then ``z.reshape(y.size(0), -1)``: reading the shape sees no change, and was
    refused."""

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            z = y.relu_()
            return self.fc(z.reshape(y.size(0), -1))

    torch.manual_seed(0)
    model = Flat().eval()
    net = convert(model, thresholds=0.0)
    for f in torch.rand(3, 1, 3, 8, 8):
        assert torch.allclose(net(f), model(f), atol=1e-5)


class _ViewMutated(nn.Module):
    """An in-place op on a slice or view of a conv's output, which is then read whole: ``how`` picks
    the form."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if self.how == "slice_method":
            y[:, :2].relu_()
        elif self.how == "slice_module":
            self.act(y[:, 1:])
        elif self.how == "input_slice":
            x2 = x[:, :1]
            x2 += 0.5
            y = self.a(x)
        elif self.how == "view_of_view":
            v = y.view(y.size(0), 2, 2, y.size(2), y.size(3))
            v[:, 0].sigmoid_()
        else:  # chunk: the items of split/chunk are views too
            lo, _ = y.chunk(2, dim=1)
            lo.mul_(2.0)
        return self.b(y)


@pytest.mark.parametrize("how", ["slice_method", "slice_module", "input_slice", "view_of_view", "chunk"])
def test_an_in_place_change_through_a_view_is_refused(how: str) -> None:
    """``y[:, :2].relu_(); b(y)``: the change reaches ``y`` through the view's shared storage; only the
    op's own input was checked, so it converted and was 0.28 off at thresholds 0, from frame 0 on."""
    with pytest.raises(
        UnsupportedOpError,
        match=r"shares its storage\) read\(s\) it after that; torch.fx "
        r"does not record such a change.*compute it out of place",
    ):
        convert(_ViewMutated(how).eval())


def test_an_in_place_op_on_a_view_whose_base_is_not_read_again_converts() -> None:
    """``z = y.flatten(1).relu_()`` (the view changed and used, ``y`` never read again) and
    ``y = conv(x); y += 1; y[:, :2]`` (a slice taken of the changed result) stay exact."""

    class Viewed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 2, 1)
            self.fc = nn.Linear(4 * 8 * 8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.a(x)
            y += 1.0
            h = self.b(y[:, :4])
            z = y.flatten(1).relu_()
            return torch.cat([self.fc(z), h.flatten(1)], 1)

    torch.manual_seed(0)
    model = Viewed().eval()
    net = convert(model, thresholds=0.0)
    for f in torch.rand(3, 1, 3, 8, 8):
        assert torch.allclose(net(f), model(f), atol=1e-5)


def _hooked(where: str) -> nn.Module:
    """A conv + BN + pad net with a hook that changes a layer's output or input, on the layer ``where``."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.ZeroPad2d(1), nn.Conv2d(4, 2, 3)
    )
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    layer = {"conv": model[0], "bn": model[1], "relu": model[2], "pad": model[3], "head": model[4]}[where]
    if where in ("bn", "pad"):
        layer.register_forward_pre_hook(lambda mod, inp: (inp[0] * 1.5,))
    else:
        layer.register_forward_hook(lambda mod, inp, out: out * 0.5)
    return model.eval()


@pytest.mark.parametrize("where", ["conv", "bn", "relu", "pad", "head"])
def test_a_layer_with_forward_hooks_is_refused_and_runs_exactly_with_the_fallback(where: str) -> None:
    """A hook that changes a layer's output (or a pre-hook its input) ran on frame 0 only: the delta ops
    call the layer's maths (``conv._conv_forward``), not the module; a hooked BN or pad was folded away.
    Refused, naming the layer; ``fallback=True`` runs the layer densely through its ``__call__``."""
    torch.manual_seed(0)
    model = _hooked(where)
    index = {"conv": 0, "bn": 1, "relu": 2, "pad": 3, "head": 4}[where]
    with pytest.raises(UnsupportedOpError, match=rf"^module '{index}': \w+ carries forward hooks or pre-hoo"):
        convert(model)
    for backend in ("reference", "sparse"):
        net = convert(model, thresholds=0.0, fallback=True, backend=backend)
        with torch.no_grad():
            for x in diagonal_clip(torch.rand(1, 3, 8, 8), 3):
                torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-4)


def test_hooks_no_op_would_run_are_refused() -> None:
    """The model's own hooks (fx traces ``forward``, not ``__call__``) and global ones: refused even with
    the fallback, which cannot run them."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    model.register_forward_hook(lambda mod, inp, out: out * 0.5)
    with pytest.raises(UnsupportedOpError, match=r"^Sequential: the model itself carries forward hooks"):
        convert(model, fallback=True)
    handle = nn.modules.module.register_module_forward_hook(lambda mod, inp, out: out)
    try:
        with pytest.raises(UnsupportedOpError, match=r"^global forward hooks or pre-hooks are registered"):
            convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)).eval())
    finally:
        handle.remove()
    bare = nn.Conv2d(3, 4, 3, padding=1).eval()  # a bare layer is wrapped: its hooks are a leaf's
    bare.register_forward_hook(lambda mod, inp, out: out * 0.5)
    net = convert(bare, thresholds=0.0, fallback=True)
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(net(x), bare(x))


class _Rounded(nn.Module):
    def __init__(self, rounding: str) -> None:
        super().__init__()
        self.rounding = rounding
        self.a = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.div(self.a(x), 0.3, rounding_mode=self.rounding))


@pytest.mark.parametrize("rounding", ["floor", "trunc"])
def test_a_division_that_rounds_is_refused_and_exact_with_the_fallback(rounding: str) -> None:
    """``torch.div(y, 0.3, rounding_mode="floor")`` was converted as a scaling by 1/0.3: a step function
    of ``y`` is not linear in its changes (silently wrong). Refused; the fallback runs it densely."""
    torch.manual_seed(0)
    model = _Rounded(rounding).eval()
    with pytest.raises(UnsupportedOpError, match=rf"\(div of a\): a division with rounding_mode='{rounding}"):
        convert(model)
    net = convert(model, thresholds=0.0, fallback=True)
    with torch.no_grad():
        for x in diagonal_clip(torch.rand(1, 3, 8, 8), 4):
            torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-4)


class _KeywordProduct(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.a = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        s = torch.sigmoid(y) + 0.5
        if self.how == "mul_other":
            return torch.mul(y, other=s)
        if self.how == "mul_input_other":
            return torch.mul(input=y, other=s)
        if self.how == "method_mul_other":
            return y.mul(other=s)
        if self.how == "div_other":
            return torch.div(y, other=s)
        if self.how == "scale_other":  # by a constant, named: a scaling, converted
            return torch.mul(y, other=2.0) + torch.div(y, other=4.0)
        return y.div(other=s)


@pytest.mark.parametrize(
    "how", ["mul_other", "mul_input_other", "method_mul_other", "div_other", "method_div"]
)
def test_a_product_or_quotient_of_changing_maps_by_keyword_is_refused(how: str) -> None:
    """``torch.mul(y, other=sigmoid(y))``: only positional operands were counted, so it was taken for a
    scaling by a constant (silently wrong); keyword operands count too."""
    with pytest.raises(UnsupportedOpError, match=r"(product of two changing maps|quotient by a changing)"):
        convert(_KeywordProduct(how).eval())


def test_a_scaling_by_a_named_constant_still_converts() -> None:
    torch.manual_seed(0)
    model = _KeywordProduct("scale_other").eval()
    net = convert(model, thresholds=0.0)
    with torch.no_grad():
        for x in diagonal_clip(torch.rand(1, 3, 8, 8), 3):
            torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-4)


class _BoolGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return torch.where(y > 0, y, 0.1 * y)


class _Unpooled(nn.Module):
    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.functional = functional
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 2, 3, padding=1)
        self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))
        y, idx = F.max_pool2d(h, 2, return_indices=True) if self.functional else self.pool(h)
        return self.b(self.unpool(y, idx))


@pytest.mark.parametrize("model", ["tuple_module", "tuple_function"])
def test_a_fallback_op_whose_result_is_not_one_real_map_is_refused_at_conversion(model: str) -> None:
    """``--fallback`` took ``MaxPool2d(return_indices=True)`` (a tuple used whole): conversion passed,
    then frame 0 died with an AttributeError. One line at conversion instead."""
    net = {"tuple_module": _Unpooled(False), "tuple_function": _Unpooled(True)}[model]
    with pytest.raises(UnsupportedOpError, match=r"(returns a tuple|a tuple).*leaf_types"):
        convert(net.eval(), fallback=True)


class _BoolMasked(nn.Module):
    """A bool map turned into a float mask that gates the map it came from."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        keep = (y > 0.1).float()
        return self.b(y * keep)


class _BoolOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) > 0


@pytest.mark.parametrize("backend", ["reference", "sparse"])
@pytest.mark.parametrize("model", [_BoolGate, _BoolMasked])
def test_a_bool_map_is_computed_inside_the_fallback_ops_that_read_it(
    model: type[nn.Module], backend: str
) -> None:
    """``torch.where(y > 0, y, 0.1 * y)`` and ``y * (y > t).float()`` were refused even with the fallback
    (a bool map is not a delta value, and the message pointed at leaf_types, which the CLI cannot pass);
    each op reading the bool map now computes it from its dense inputs, exactly."""
    torch.manual_seed(0)
    dense = model().eval()
    with pytest.raises(UnsupportedOpError, match="gt"):
        convert(dense)
    net = convert(dense, thresholds=0.0, backend=backend, fallback=True)
    with torch.no_grad():
        for x in diagonal_clip(torch.rand(1, 3, 12, 12), 6):
            torch.testing.assert_close(net(x), dense(x), rtol=1e-4, atol=1e-5)


def test_a_model_that_returns_a_bool_map_is_refused_at_conversion() -> None:
    with pytest.raises(UnsupportedOpError, match=r"returns a bool map.*\.float\(\)"):
        convert(_BoolOut().eval(), fallback=True)


class _FallbackIdioms(nn.Module):
    """Ops the engine runs only through the fallback, called the way models call them: a functional
    norm on the model's own weights, CBAM's ``torch.max(y, 1)[0]``, a ``torch.stack`` of two maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.ln_weight = nn.Parameter(torch.rand(8) + 0.5)
        self.ln_bias = nn.Parameter(torch.randn(8))
        self.head = nn.Conv2d(9, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).permute(0, 2, 3, 1)
        y = F.relu(F.layer_norm(y, (8,), self.ln_weight, self.ln_bias).permute(0, 3, 1, 2))
        peak = torch.max(y, dim=1, keepdim=True)[0]
        pair = torch.stack([y, 2 * y], dim=1).amax(dim=1)
        return self.head(torch.cat([pair, peak], dim=1))


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_the_fallback_takes_weights_tuple_items_and_maps_anywhere_in_a_call(backend: str) -> None:
    """The fallback took only calls whose changing maps came first and whose other arguments were
    literals: ``F.layer_norm(y, s, self.weight, self.bias)``, ``torch.max(y, 1)[0]`` (a tuple) and
    ``torch.stack([a, b])`` (maps inside a list) were refused even with ``fallback=True``. Each is
    exact now, and the converted network still pickles (worker processes get it that way)."""
    import pickle

    torch.manual_seed(0)
    dense = _FallbackIdioms().eval()
    with pytest.raises(UnsupportedOpError, match="layer_norm"):
        convert(dense)
    net = convert(dense, thresholds=0.0, backend=backend, fallback=True)
    clip = diagonal_clip(torch.rand(1, 3, 16, 16), 6)
    with torch.no_grad():
        for i, x in enumerate(clip):
            if i == 3:
                net = pickle.loads(pickle.dumps(net))
            torch.testing.assert_close(net(x), dense(x), rtol=1e-4, atol=1e-5)
    assert {"fallback"} <= {op.kind for op in net.ops}


class _ModeFromShape(nn.Module):
    """An interpolation mode picked from a container default by an index computed from the frame."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor, modes: tuple[str, str] = ("nearest", "bilinear")) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=2, mode=modes[x.dim() - 4])


def test_an_interpolation_mode_computed_by_the_graph_is_refused() -> None:
    with pytest.raises(UnsupportedOpError) as exc:
        convert(_ModeFromShape())
    msg = str(exc.value)
    assert "interpolation mode getitem is not linear-monotone" in msg and "\n" not in msg
