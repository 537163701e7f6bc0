"""The compiled CPU kernels equal their plain-torch twins, and the network-wide dense fallback is exact."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deltatune.delta import convert, native
from deltatune.delta._sparse_kernels import SparseConv
from deltatune.delta.calibration import Calibration
from deltatune.delta.linear import ConvOp
from deltatune.delta.sparse import SparseBackend
from deltatune.delta.truncation import PointwiseTruncation, piecewise_of
from deltatune.inspection import max_relative_error
from tests.delta.nets import moving_square_clip

needs_native = pytest.mark.skipif(not native.available(), reason="compiled kernels could not be built here")
CL = torch.channels_last


@needs_native
@pytest.mark.parametrize(
    ("k", "stride", "pad", "dil", "n", "h", "w"),
    [
        (3, 1, 1, 1, 1, 17, 13),
        (3, 2, 1, 1, 2, 17, 13),
        (1, 1, 0, 1, 2, 9, 7),
        (5, 2, 2, 1, 1, 16, 16),
        (3, 1, 2, 2, 2, 12, 10),
        ((3, 1), 1, (1, 0), 1, 1, 9, 9),
        (7, 2, 3, 1, 1, 32, 24),
        (2, 1, 0, 1, 3, 9, 8),
        (3, 1, 0, 1, 2, 11, 9),
        (5, 1, 2, 1, 3, 14, 10),
        ((1, 3), 1, (0, 2), 2, 2, 8, 9),
    ],
)
def test_compiled_conv_and_mask_match_torch(k, stride, pad, dil, n, h, w) -> None:
    """Output-centric (no input mask) and input-centric (input mask given: stride-1 k x k layers scatter
    each updated input pixel's products) both equal the dense conv at the updated output pixels."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, k, stride, pad, dil, bias=False)
    op = ConvOp("c", conv)
    in_mask = torch.rand(n, 1, h, w) < 0.15
    mout, count = op.out_mask_count(in_mask)
    torch.testing.assert_close(mout, op._torch_out_mask(in_mask), rtol=0, atol=0)
    assert count == int(mout.sum())
    x = torch.randn(n, 8, h, w) * in_mask
    dense = F.conv2d(x, conv.weight, None, stride, pad, dil)
    for layout in (torch.contiguous_format, CL):
        for given in (None, in_mask):
            y, got = SparseConv(conv)(x.contiguous(memory_format=layout), mout, in_mask=given)
            assert got == count and y is not None and y.is_contiguous(memory_format=CL)
            torch.testing.assert_close(y, dense * mout, rtol=1e-5, atol=1e-5)
    if n > 1:  # one mask shared by every batch entry ([1, 1, H, W], as the network passes broadcast masks)
        shared = in_mask[:1]
        xs = torch.randn(n, 8, h, w) * shared
        ms = op.out_mask(shared.expand(n, 1, h, w))
        y, _ = SparseConv(conv)(xs, ms, in_mask=shared)
        torch.testing.assert_close(
            y, F.conv2d(xs, conv.weight, None, stride, pad, dil) * ms, rtol=1e-5, atol=1e-5
        )
        y, _ = SparseConv(conv)(xs, ms[:1], in_mask=shared)  # the output mask shared the same way
        torch.testing.assert_close(
            y, F.conv2d(xs, conv.weight, None, stride, pad, dil) * ms, rtol=1e-5, atol=1e-5
        )
    # above max_fraction nothing is computed: the caller runs the dense conv
    assert SparseConv(conv)(x, mout, max_fraction=1e-9)[0] is None


@needs_native
@pytest.mark.parametrize("c_out", [16, 18, 24, 32, 36, 48, 50])
@pytest.mark.parametrize("zero_fill", [True, False])
def test_input_centric_scatter_at_the_output_channel_counts_compiled_apart(c_out, zero_fill) -> None:
    """The input-centric scatter has bodies compiled for 16, 18, 24, 32, 36 and 48 output channels beside
    the generic one (50 here): each equals the dense conv at the updated output pixels (3x3 and 5x5)."""
    gen = torch.Generator().manual_seed(c_out)
    for k in (3, 5):
        conv = nn.Conv2d(c_out, c_out, k, 1, k // 2, bias=False)
        in_mask = torch.rand(3, 1, 13, 11, generator=gen) < 0.25
        out_mask = ConvOp("c", conv).out_mask(in_mask)
        x = (torch.randn(3, c_out, 13, 11, generator=gen) * in_mask).contiguous(memory_format=CL)
        y, _ = SparseConv(conv)(x, out_mask, in_mask=in_mask, zero_fill=zero_fill)
        want = F.conv2d(x, conv.weight, None, 1, k // 2) * out_mask
        inside = out_mask.expand_as(want)
        torch.testing.assert_close(y[inside], want[inside], rtol=1e-5, atol=1e-5)
        if zero_fill:
            assert not y[~inside].any()


@needs_native
@pytest.mark.parametrize(("k", "stride", "pad"), [(3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 1, 2)])
def test_compiled_conv_reads_only_inside_the_input_mask_and_may_skip_zeros(k, stride, pad) -> None:
    """A delta buffer may hold anything outside its mask (DeltaMasked): both kernel forms read it only
    inside ``in_mask``; ``zero_fill=False`` computes the same values inside the output mask."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, k, stride, pad, bias=False)
    in_mask = torch.rand(2, 1, 14, 11) < 0.2
    out_mask = ConvOp("c", conv).out_mask(in_mask)
    x = torch.randn(2, 16, 14, 11) * in_mask
    poisoned = x.masked_fill(~in_mask, float("nan")).contiguous(memory_format=CL)
    want = F.conv2d(x, conv.weight, None, stride, pad) * out_mask
    filled, _ = SparseConv(conv)(poisoned, out_mask, in_mask=in_mask)
    torch.testing.assert_close(filled, want, rtol=1e-5, atol=1e-5)  # zeros written outside out_mask
    lazy, _ = SparseConv(conv)(poisoned, out_mask, in_mask=in_mask, zero_fill=False)
    inside = out_mask.expand_as(want)
    torch.testing.assert_close(lazy[inside], want[inside], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("k", "stride", "pad", "dil"), [(3, 1, 1, 1), (3, 2, 1, 1), (5, 1, 2, 1), (5, 2, 2, 1), (3, 1, 2, 2)]
)
@pytest.mark.parametrize("compiled", [True, False])
def test_sparse_depthwise_equals_the_dense_depthwise_conv(k, stride, pad, dil, compiled, monkeypatch) -> None:
    """Depthwise convs (groups = channels; 3x3 and 5x5, stride 1 and 2) computed only at the updated output
    pixels: the compiled per-pixel kernel and the torch gather both equal the dense grouped conv there; the
    compiled one reads the delta only inside its mask (NaN outside changes nothing) and may leave the
    output's zeros unwritten."""
    if compiled and not native.available():
        pytest.skip("compiled kernels could not be built here")
    if not compiled:
        monkeypatch.setattr("deltatune.delta._sparse_kernels.native_for", lambda *a, **k: None)
    torch.manual_seed(1)
    conv = nn.Conv2d(24, 24, k, stride, pad, dil, groups=24, bias=False)
    op = ConvOp("dw", conv)
    in_mask = torch.rand(2, 1, 19, 15) < 0.1
    out_mask = op.out_mask(in_mask)
    x = torch.randn(2, 24, 19, 15) * in_mask
    want = F.conv2d(x, conv.weight, None, stride, pad, dil, groups=24) * out_mask
    kernel = SparseConv(conv)
    assert kernel.depthwise and kernel.compiled(x, out_mask, in_mask) == compiled
    for layout in (torch.contiguous_format, CL):
        y, count = kernel(x.contiguous(memory_format=layout), out_mask, in_mask=in_mask)
        assert count == int(out_mask.sum()) and y is not None
        torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    if compiled:
        poisoned = x.masked_fill(~in_mask, float("nan")).contiguous(memory_format=CL)
        y, _ = kernel(poisoned, out_mask, in_mask=in_mask)
        torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
        lazy, _ = kernel(poisoned, out_mask, in_mask=in_mask, zero_fill=False)
        inside = out_mask.expand_as(want)
        torch.testing.assert_close(lazy[inside], want[inside], rtol=1e-5, atol=1e-5)
    assert kernel(x, out_mask, max_fraction=1e-9)[0] is None


@needs_native
@pytest.mark.parametrize(
    ("c_in", "c_out", "frac"), [(40, 18, 0.3), (64, 40, 0.05), (3, 64, 0.6), (96, 7, 0.9)]
)
@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_gemm_blocking_matches_torch(c_in, c_out, frac, threads) -> None:
    """The compiled GEMM's edge cases, through both conv forms: deep products split into 128- or 256-deep
    slices (9 * 40 and 9 * 96 input rows), output widths that are not a multiple of its 32-column panels
    (7, 18, 40), row counts below one 6- or 12-row micro-tile and above one 96-row block, one or two
    threads."""
    torch.manual_seed(1)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        op = ConvOp("c", conv)
        in_mask = torch.rand(2, 1, 20, 16) < frac
        in_mask[1] = False
        in_mask[1, 0, 5, 7] = True  # a single pixel in the second entry
        mout = op.out_mask(in_mask)
        x = torch.randn(2, c_in, 20, 16) * in_mask
        dense = F.conv2d(x, conv.weight, None, 1, 1)
        for given in (None, in_mask):
            y, _ = SparseConv(conv)(x.contiguous(memory_format=CL), mout, in_mask=given)
            torch.testing.assert_close(y, dense * mout, rtol=1e-4, atol=1e-4)
    finally:
        torch.set_num_threads(old)


@needs_native
@pytest.mark.parametrize(("c_in", "c_out"), [(16, 96), (144, 24), (300, 40), (7, 18)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("zero_fill", [True, False])
def test_compiled_1x1_conv_runs_in_place_equal_to_the_gathered_product(c_in, c_out, threads, zero_fill):
    """A 1x1 stride-1 conv multiplies each run of consecutive updated pixels where it lies in the input
    and output (no gathered rows): the values equal, bitwise, the same GEMM on the gathered rows, at runs
    that cross image rows and batch entries, shares split inside runs, products deeper than one 128- or
    256-deep slice (300) and widths off the 32-column panels. Pixels of the output mask outside the input
    mask are zero, and the input there (NaN here) is never read."""
    nk = native.kernels()
    if not nk.packed_gemm:
        pytest.skip("this build has no packed GEMM (no AVX2+FMA or AVX-512)")
    gen = torch.Generator().manual_seed(c_in)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        n, h, w = 3, 11, 9
        in_mask = torch.rand(n, 1, h, w, generator=gen) < 0.5
        in_mask[0, 0, 4:7, :] = True  # runs across image rows, and from one entry into the next
        in_mask[0, 0, -1, -3:] = True
        in_mask[1, 0, :2, :] = True
        in_mask[2] = False  # an entry with nothing updated
        out_mask = in_mask.clone()
        out_mask[1, 0, 5, :] = True  # set in the output mask only: zero there, input not read
        x = torch.randn(n, c_in, h, w, generator=gen)
        poisoned = x.masked_fill(~in_mask, float("nan")).contiguous(memory_format=CL)
        y, count = SparseConv(conv)(poisoned, out_mask, in_mask=in_mask, zero_fill=zero_fill)
        assert count == int(out_mask.sum()) and y is not None
        # the same GEMM on the gathered rows of the updated pixels
        rows = x.permute(0, 2, 3, 1).reshape(-1, c_in)[in_mask.reshape(-1)]
        weight = conv.weight.detach().reshape(c_out, c_in).t().contiguous()
        want = torch.zeros(n * h * w, c_out)
        want[in_mask.reshape(-1)] = nk.packed_matmul(rows, nk.pack_weight(weight), c_out)
        got = y.permute(0, 2, 3, 1).reshape(-1, c_out)
        keep = out_mask.reshape(-1) if not zero_fill else torch.ones(n * h * w, dtype=torch.bool)
        assert torch.equal(got[keep], want[keep])
        torch.testing.assert_close(
            want.reshape(n, h, w, c_out).permute(0, 3, 1, 2),
            F.conv2d(x * in_mask, conv.weight),
            rtol=1e-4,
            atol=1e-4,
        )
    finally:
        torch.set_num_threads(old)


@needs_native
def test_the_packed_gemm_is_built_wherever_the_cpu_has_avx2_and_fma() -> None:
    """The sparse convs' own GEMM is compiled for AVX-512 or AVX2+FMA (``-march=native``): a machine with
    either must not silently fall back to at::mm / oneDNN (on AVX2 the packed GEMM ran 1.0-1.5x at::mm)."""
    flags = native.cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo here")
    assert native.kernels().packed_gemm == ("avx512f" in flags or {"avx2", "fma"} <= flags)


@needs_native
@pytest.mark.parametrize("k", [1, 5, 127, 128, 129, 300])
@pytest.mark.parametrize("threads", [1, 2])
def test_packed_matmul_equals_torch_at_every_edge(k, threads) -> None:
    """Every row count around the micro-tiles (1-13, 97), every column count around the 8-, 16- and
    32-column groups, k around the 128/256-deep slices: the packed GEMM equals ``a @ w``."""
    nk = native.kernels()
    if not nk.packed_gemm:
        pytest.skip("this build has no packed GEMM (no AVX2+FMA or AVX-512)")
    torch.manual_seed(k)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for n in (1, 7, 8, 9, 15, 16, 17, 18, 24, 31, 32, 33, 50, 69):
            w = torch.randn(k, n)
            packed = nk.pack_weight(w)
            for p in (*range(1, 14), 97):
                a = torch.randn(p, k)
                torch.testing.assert_close(nk.packed_matmul(a, packed, n), a @ w, rtol=1e-4, atol=1e-4)
        with pytest.raises(RuntimeError, match="pack_weight of a"):
            nk.packed_matmul(torch.randn(3, k), nk.pack_weight(torch.randn(k, 40)), 70)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize(
    ("fn", "kind", "want"),
    [
        (nn.ReLU(), "relu", (0.0, -math.inf, math.inf)),
        (nn.ReLU6(), "relu6", (0.0, -math.inf, 6.0)),
        (nn.LeakyReLU(0.2), "leaky_relu", (0.2, -math.inf, math.inf)),
        (nn.Hardtanh(-2, 3), "hardtanh", (1, -2, 3)),
        (F.relu, "relu", (0.0, -math.inf, math.inf)),
        (nn.Sigmoid(), "sigmoid", None),
        (nn.GELU(), "gelu", None),
        (nn.Hardswish(), "hardswish", None),
    ],
)
def test_piecewise_forms_are_recognised_and_checked(fn, kind, want) -> None:
    spec = piecewise_of(kind, fn)
    if want is None:
        assert spec is None
    else:
        assert spec is not None and (spec.slope, spec.lo, spec.hi) == want
    # a wrong claim is caught by the probe: sigmoid is not a ReLU
    assert piecewise_of("relu", nn.Sigmoid()) is None


def _step(op: PointwiseTruncation, d: torch.Tensor, mask: torch.Tensor | None, compiled: bool):
    from deltatune.delta.values import DeltaTensor

    if compiled:
        out = op._forward_compiled(DeltaTensor(d, mask, False))
        assert out is not None
        return out
    saved, op.piecewise = op.piecewise, None
    try:
        return op(DeltaTensor(d, mask, False))
    finally:
        op.piecewise = saved


@needs_native
@pytest.mark.parametrize("mode", ["max", "norm", "rms"])
@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("threshold", [None, 0.0, 0.3])
@pytest.mark.parametrize(
    "fn,kind",
    [
        (nn.ReLU(), "relu"),
        (nn.ReLU6(), "relu6"),
        (nn.LeakyReLU(0.1), "leaky_relu"),
        (nn.PReLU(6, 0.25), "prelu"),
        (nn.Hardtanh(-0.5, 0.7), "hardtanh"),
    ],
)
def test_compiled_truncation_equals_the_torch_step(mode, accumulate, threshold, fn, kind) -> None:
    from deltatune.delta._context import RunContext
    from deltatune.delta.values import DeltaTensor

    torch.manual_seed(0)
    if isinstance(fn, nn.PReLU):
        with torch.no_grad():
            fn.weight.copy_(torch.linspace(-0.3, 0.5, 6))
    ops = []
    for _ in range(2):
        op = PointwiseTruncation("t", fn, kind, threshold, piecewise=piecewise_of(kind, fn))
        assert op.piecewise is not None
        op.attach(
            RunContext(backend=SparseBackend(calibration=Calibration(None)), mode=mode, accumulate=accumulate)
        )
        op(DeltaTensor(torch.randn(2, 6, 9, 7).contiguous(memory_format=CL) * 0 + 0.1, None, True))
        ops.append(op)
    gen = torch.Generator().manual_seed(1)
    for step in range(6):
        mask = None if step == 2 else torch.rand(2, 1, 9, 7, generator=gen) < 0.4
        d = torch.randn(2, 6, 9, 7, generator=gen) * 0.4
        if mask is not None:
            d = d * mask
        d = d.contiguous(memory_format=CL)
        a = _step(ops[0], d, mask, compiled=True)
        b = _step(ops[1], d, mask, compiled=False)
        torch.testing.assert_close(a.data, b.data, rtol=1e-6, atol=1e-6)
        assert torch.equal(a.mask, b.mask.expand_as(a.mask))
        torch.testing.assert_close(ops[0].a, ops[1].a, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ops[0].r, ops[1].r, rtol=1e-6, atol=1e-6)


@needs_native
@pytest.mark.parametrize("channels", [16, 18, 24, 32, 36, 48, 50])
@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("fn,kind", [(nn.ReLU6(), "relu6"), (nn.PReLU(1), "prelu")])
def test_compiled_truncation_at_the_channel_counts_compiled_apart(channels, accumulate, fn, kind) -> None:
    """The max-mode step has bodies compiled for 16, 18, 24, 32, 36 and 48 channels (whole vectors, no
    remainder loop) beside the generic one (50 here): each equals the torch step, per-channel PReLU slopes
    included, over frames with scattered masks, an all-updated frame and a residual sum of two addends."""
    from deltatune.delta._context import RunContext
    from deltatune.delta.linear import AddSubOp
    from deltatune.delta.values import DeltaTensor

    if kind == "prelu":
        fn = nn.PReLU(channels)
        with torch.no_grad():
            fn.weight.copy_(torch.linspace(-0.3, 0.5, channels))
    ops = []
    for _ in range(2):
        op = PointwiseTruncation("t", fn, kind, 0.2, piecewise=piecewise_of(kind, fn))
        assert op.piecewise is not None
        op.attach(
            RunContext(
                backend=SparseBackend(calibration=Calibration(None)), mode="max", accumulate=accumulate
            )
        )
        op(DeltaTensor(torch.full((3, channels, 6, 5), 0.1).contiguous(memory_format=CL), None, True))
        ops.append(op)
    add = AddSubOp("add", torch.add, plain=True)
    gen = torch.Generator().manual_seed(channels)
    for step in range(5):
        parts = []
        for _ in range(1 if step < 3 else 2):
            mask = None if step == 2 else torch.rand(3, 1, 6, 5, generator=gen) < 0.4
            d = torch.randn(3, channels, 6, 5, generator=gen) * 0.4 * (1.0 if mask is None else mask)
            parts.append(DeltaTensor(d.contiguous(memory_format=CL), mask, False))
        got = ops[0](parts[0] if len(parts) == 1 else add(parts[0], parts[1]))
        if len(parts) == 1:
            want = _step(ops[1], parts[0].data, parts[0].mask, compiled=False)
        else:
            summed = (parts[0].data + parts[1].data).contiguous(memory_format=CL)
            want = _step(ops[1], summed, parts[0].mask | parts[1].mask, compiled=False)
        fired = got.mask.expand_as(got.data)
        assert torch.equal(got.mask, want.mask.expand_as(got.mask))
        torch.testing.assert_close(got.data[fired], want.data[fired], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ops[0].a, ops[1].a, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ops[0].r, ops[1].r, rtol=1e-6, atol=1e-6)


def _relu_pair(
    shape: tuple[int, ...], threshold: float | None, mode: str = "max"
) -> list[PointwiseTruncation]:
    """Two ReLU truncation steps (sparse backend) in the same state after one dense frame of ``shape``."""
    from deltatune.delta._context import RunContext
    from deltatune.delta.values import DeltaTensor

    ops = []
    for _ in range(2):
        op = PointwiseTruncation("t", nn.ReLU(), "relu", threshold, piecewise=piecewise_of("relu", nn.ReLU()))
        op.attach(RunContext(backend=SparseBackend(calibration=Calibration(None)), mode=mode))
        op(DeltaTensor(torch.full(shape, 0.1).contiguous(memory_format=CL), None, True))
        ops.append(op)
    return ops


@needs_native
@pytest.mark.parametrize("mode", ["max", "rms"])
@pytest.mark.parametrize("threshold", [None, 0.3])
def test_compiled_truncation_reads_a_lazy_sum_like_the_summed_delta(mode, threshold) -> None:
    """A residual sum fused into the step (the kernel adds the addends and unites their masks) gives
    bitwise the state and output of the step on the computed sum."""
    from deltatune.delta.linear import AddSubOp
    from deltatune.delta.values import DeltaSum, DeltaTensor

    ops = _relu_pair((2, 5, 6, 7), threshold, mode)
    add = AddSubOp("add", torch.add, plain=True)
    gen = torch.Generator().manual_seed(3)
    for step in range(5):
        parts = []
        for i in range(3):
            mask = None if (step, i) == (3, 1) else torch.rand(2, 1, 6, 7, generator=gen) < 0.3
            d = torch.randn(2, 5, 6, 7, generator=gen) * (1.0 if mask is None else mask)
            parts.append(DeltaTensor(d.contiguous(memory_format=CL), mask, False))
        lazy = add(add(parts[0], parts[1]), parts[2])
        assert isinstance(lazy, DeltaSum) and len(lazy.parts) == 3 and not lazy.computed
        eager = DeltaTensor(
            (parts[0].data + parts[1].data) + parts[2].data,
            None if step == 3 else (parts[0].mask | parts[1].mask | parts[2].mask),
            False,
        )
        got, want = ops[0](lazy), ops[1](eager)
        assert not lazy.computed  # the kernel read the addends
        assert torch.equal(got.data, want.data) and torch.equal(got.mask, want.mask)
        assert torch.equal(ops[0].a, ops[1].a) and torch.equal(ops[0].r, ops[1].r)
        assert got.count == int(want.mask.sum())


@needs_native
@pytest.mark.parametrize("factor", [2, 4])
def test_compiled_truncation_reads_a_lazy_upsampling_like_the_upsampled_delta(factor) -> None:
    """HRNet's fusion path (coarse branch, nearest upsampling, add, ReLU) with the upsampling read in place
    by the kernel gives bitwise the state and output of the step on the upsampled, summed delta."""
    from deltatune.delta.linear import AddSubOp, StructuralOp
    from deltatune.delta.values import DeltaSum, DeltaTensor, DeltaUpsampled

    n, c, h, w = 2, 5, 8, 12
    up = StructuralOp("up", nn.Upsample(scale_factor=factor, mode="nearest"), "upsample")
    assert up.nearest_factor == factor
    add = AddSubOp("add", torch.add, plain=True)
    ops = _relu_pair((n, c, h, w), 0.2)
    gen = torch.Generator().manual_seed(5)
    for step in range(5):
        fm = None if step == 2 else torch.rand(n, 1, h, w, generator=gen) < 0.3
        cm = torch.rand(n, 1, h // factor, w // factor, generator=gen) < 0.4
        fine = DeltaTensor(
            (torch.randn(n, c, h, w, generator=gen) * (1.0 if fm is None else fm)).contiguous(
                memory_format=CL
            ),
            fm,
            False,
        )
        coarse = DeltaTensor(
            (torch.randn(n, c, h // factor, w // factor, generator=gen) * cm).contiguous(memory_format=CL),
            cm,
            False,
        )
        lifted = up(coarse)
        assert isinstance(lifted, DeltaUpsampled) and lifted.shape == fine.shape
        lazy = add(fine, lifted) if step % 2 else lifted  # alone or as an addend
        big = F.interpolate(coarse.data, scale_factor=factor, mode="nearest")
        big_mask = F.interpolate(cm.float(), scale_factor=factor, mode="nearest") > 0
        if step % 2:
            assert isinstance(lazy, DeltaSum)
            eager = DeltaTensor(fine.data + big, None if fm is None else fm | big_mask, False)
        else:
            eager = DeltaTensor(big, big_mask, False)
        got, want = ops[0](lazy), ops[1](eager)
        assert not lifted.computed  # the kernel read the coarse values in place
        assert torch.equal(got.data, want.data) and torch.equal(got.mask, want.mask)
        assert torch.equal(ops[0].a, ops[1].a) and torch.equal(ops[0].r, ops[1].r)
        assert torch.equal(lifted.data, big) and torch.equal(lifted.mask, big_mask)  # read when asked


def test_only_power_of_two_nearest_upsampling_stays_lazy() -> None:
    from deltatune.delta.linear import StructuralOp

    def factor(m: nn.Module) -> int | None:
        return StructuralOp("up", m, "upsample").nearest_factor

    assert factor(nn.Upsample(scale_factor=2.0, mode="nearest")) == 2
    assert factor(nn.Upsample(scale_factor=(8, 8), mode="nearest")) == 8
    assert factor(nn.Upsample(scale_factor=3, mode="nearest")) is None
    assert factor(nn.Upsample(scale_factor=(2, 4), mode="nearest")) is None
    assert factor(nn.Upsample(scale_factor=2, mode="bilinear")) is None
    assert factor(nn.Upsample(size=(8, 8), mode="nearest")) is None
    assert factor(nn.MaxPool2d(2)) is None


@needs_native
def test_compiled_truncation_reads_each_addend_only_inside_its_mask() -> None:
    """Addends that hold anything outside their masks (DeltaMasked buffers, also under a lazy upsampling)
    give the step of the clean sum; with ``zero_fill`` off (every reader reads inside masks) the step's own
    output leaves its non-firing pixels undefined and reads as the clean delta."""
    from deltatune.delta.linear import AddSubOp, StructuralOp
    from deltatune.delta.values import DeltaMasked, DeltaTensor

    n, c, h, w = 2, 6, 8, 10
    add = AddSubOp("add", torch.add, plain=True)
    up = StructuralOp("up", nn.Upsample(scale_factor=2, mode="nearest"), "upsample")
    ops = _relu_pair((n, c, h, w), 0.2)
    gen = torch.Generator().manual_seed(6)

    def delta(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.rand(shape[0], 1, *shape[2:], generator=gen) < 0.3
        return (torch.randn(shape, generator=gen) * mask).contiguous(memory_format=CL), mask

    for step in range(4):
        (d0, m0), (d1, m1), (d2, m2) = delta((n, c, h, w)), delta((n, c, h, w)), delta((n, c, h // 2, w // 2))
        dirty = [DeltaMasked(d.masked_fill(~m, float("nan")), m) for d, m in ((d0, m0), (d1, m1), (d2, m2))]
        lazy = add(add(dirty[0], dirty[1]), up(dirty[2]))
        big = F.interpolate(d2, scale_factor=2, mode="nearest")
        eager = DeltaTensor((d0 + d1) + big, m0 | m1 | (F.interpolate(m2.float(), scale_factor=2) > 0), False)
        ops[0].zero_fill = step % 2 == 1  # as conversion decides it from the readers: both settings
        got, want = ops[0](lazy), ops[1](eager)
        assert isinstance(got, DeltaMasked) == (step % 2 == 0) and got.buffer_clean == (step % 2 == 1)
        assert not any(d.buffer_clean for d in dirty)  # read in place, inside the masks only
        assert torch.equal(ops[0].a, ops[1].a) and torch.equal(ops[0].r, ops[1].r)
        assert torch.equal(got.mask, want.mask) and torch.equal(got.data, want.data)


def test_masked_delta_reads_as_the_zero_filled_delta_once() -> None:
    from deltatune.delta.values import DeltaMasked

    mask = torch.rand(2, 1, 4, 5) < 0.5
    raw = torch.randn(2, 3, 4, 5)
    want = raw * mask
    d = DeltaMasked(raw.clone(), mask, int(mask.sum()))
    assert not d.buffer_clean and d.shape == raw.shape and d.dtype == raw.dtype and not d.channels_last
    assert torch.equal(d.data, want) and d.buffer_clean and d.data is d.buffer  # zeroed in place, once


@needs_native
@pytest.mark.parametrize(
    ("n", "c", "h", "w", "frac"),
    [(2, 3, 4, 5, 0.5), (3, 96, 28, 28, 0.9), (1, 8, 7, 9, 1.0), (2, 16, 6, 6, 0.0)],
)
def test_channels_last_masked_delta_is_zeroed_by_the_compiled_kernel(n, c, h, w, frac) -> None:
    from deltatune.delta.values import DeltaMasked

    mask = torch.rand(n, 1, h, w) < frac
    raw = torch.randn(n, c, h, w).contiguous(memory_format=CL)
    d = DeltaMasked(raw.clone(memory_format=CL), mask, int(mask.sum()))
    assert d.channels_last
    assert torch.equal(d.data, raw * mask) and d.data is d.buffer and d.data.is_contiguous(memory_format=CL)
    with pytest.raises(RuntimeError, match="channels-last"):
        native.kernels().zero_outside(torch.randn(n, c, h, w + 1), mask)  # NCHW with C > 1 is refused
    shared = mask[:1]  # one mask broadcast over the batch: the torch path
    d = DeltaMasked(raw.clone(memory_format=CL), shared, int(shared.sum()) * n)
    assert torch.equal(d.data, raw * shared)


@needs_native
@pytest.mark.parametrize("pad", [(0, 1, 0, 1), (1, 1, 1, 1), (2, 0, 3, 1), (0, 0, 0, 0)])
def test_compiled_zero_padding_equals_f_pad(pad) -> None:
    from deltatune.delta.linear import PadOp
    from deltatune.delta.values import DeltaTensor

    x = torch.randn(2, 24, 13, 10).contiguous(memory_format=CL)
    got = native.kernels().pad_zeros(x, *pad)
    assert torch.equal(got, F.pad(x, pad)) and got.is_contiguous(memory_format=CL)
    mask = torch.rand(2, 1, 13, 10) < 0.3
    out = PadOp("pad", pad)(DeltaTensor(x * mask, mask, False))  # a delta frame takes the compiled path
    assert torch.equal(out.data, F.pad(x * mask, pad)) and torch.equal(out.mask, F.pad(mask, pad))


def test_lazy_sum_computes_left_to_right_and_refuses_what_it_cannot_fuse() -> None:
    from deltatune.delta.values import DeltaSum, DeltaTensor

    gen = torch.Generator().manual_seed(4)
    ds = [
        DeltaTensor(
            torch.randn(1, 3, 4, 4, generator=gen) * 1e4**i,
            torch.rand(1, 1, 4, 4, generator=gen) < 0.5,
            False,
        )
        for i in range(3)
    ]
    s = DeltaSum.plus(DeltaSum.plus(ds[0], ds[1]), ds[2])
    assert s is not None and len(s.parts) == 3
    assert torch.equal(s.data, (ds[0].data + ds[1].data) + ds[2].data)
    assert torch.equal(s.mask, ds[0].mask | ds[1].mask | ds[2].mask)
    assert s.computed and DeltaSum.plus(s, ds[0]).parts[0] is s  # a computed sum is one addend
    assert DeltaSum.plus(ds[0], DeltaSum.plus(ds[1], ds[2])) is None  # a + (b + c) rounds differently
    assert DeltaSum.plus(ds[0], DeltaTensor(torch.zeros(1, 3, 4, 5), None, False)) is None
    mixed = DeltaSum.plus(ds[0], DeltaTensor(ds[1].data.contiguous(memory_format=CL), None, False))
    assert mixed is not None and torch.equal(mixed.data, ds[0].data + ds[1].data)  # layouts may differ
    assert DeltaSum.plus(DeltaTensor(ds[0].data, None, True), ds[1]) is None


@needs_native
@pytest.mark.parametrize("mode", ["max", "norm", "rms"])
@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("threshold", [None, 0.0, 0.4])
@pytest.mark.parametrize("dilation", [1, 3, 5])
def test_compiled_input_sparsify_equals_the_torch_step(
    mode, accumulate, threshold, dilation, monkeypatch
) -> None:
    """Also with an input dilation, where the fast path grows the active mask instead of max-pooling the
    scores as the rule does."""
    from deltatune.delta._context import RunContext
    from deltatune.delta.truncation import InputSparsify

    ops = []
    for _ in range(2):
        op = InputSparsify("input", threshold, dilation=dilation)
        op.attach(
            RunContext(backend=SparseBackend(calibration=Calibration(None)), mode=mode, accumulate=accumulate)
        )
        ops.append(op)
    gen = torch.Generator().manual_seed(7)
    frame = torch.rand(2, 3, 12, 9, generator=gen)
    rate = 0.3 if dilation == 1 else 0.02  # dilated: few changes, so that the grown masks stay partial
    partial = 0
    for step in range(5):
        if step:
            frame = frame + (torch.rand(2, 1, 12, 9, generator=gen) < rate) * torch.randn(
                2, 3, 12, 9, generator=gen
            )
        got = ops[0](frame)
        with monkeypatch.context() as m:
            m.setattr(ops[1], "_compare_compiled", lambda x: None)
            want = ops[1](frame)
        assert got.first == want.first == (step == 0)
        assert torch.equal(got.data, want.data) and torch.equal(ops[0].ref, ops[1].ref)
        assert got.data.is_contiguous(memory_format=CL) and ops[0].ref.is_contiguous(memory_format=CL)
        if step:
            assert torch.equal(got.mask, want.mask) and got.count == want.count == int(want.mask.sum())
            partial += bool(want.mask.any() and not want.mask.all())
    assert threshold is None or partial  # the masks compared were neither empty nor full


def _clip_with_cut(n: int = 10) -> list[torch.Tensor]:
    """A moving square, then a frame where everything changes (a scene cut), then motion again."""
    clip = list(moving_square_clip(n))
    clip[n // 2] = torch.rand_like(clip[0])
    return clip


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU6(),
        nn.Conv2d(8, 4, 1),
    ).eval()


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_dense_refresh_is_exact_and_used_only_when_exact(backend) -> None:
    model, clip = _model(), _clip_with_cut()
    plain = convert(model, thresholds=0.0, dense_refresh=None)
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=0.25)
    with torch.no_grad():
        for x in clip:
            assert max_relative_error(net(x), plain(x)) <= 1e-4
            assert max_relative_error(net(x.clone()), plain(x.clone())) <= 1e-4  # a still frame after
    assert net.refreshed_frames >= 1  # at least the cut (and the random first motion frames)
    # with a threshold above zero, or without accumulation, the dense path is not the delta result: off
    for setting in ({"thresholds": 0.05}, {"thresholds": 0.0, "accumulate": False}):
        other = convert(model, backend=backend, dense_refresh=0.0, **setting)
        with torch.no_grad():
            for x in clip:
                other(x)
        assert other.refreshed_frames == 0


def _cuts_clip() -> list[torch.Tensor]:
    """Motion (noise-free: only the square changes), a run of scene cuts, motion, more cuts, motion."""
    clip = list(moving_square_clip(16, noise=0.0))
    g = torch.Generator().manual_seed(1)
    for i in (3, 4, 5, 6, 10, 11, 12):
        clip[i] = torch.rand(clip[0].shape, generator=g)
    return clip


@pytest.mark.parametrize("backend", ["reference", "sparse"])
def test_lazy_dense_refresh_runs_the_dense_model_and_rebuilds_state_exactly(backend) -> None:
    """Refresh frames after a refresh frame skip the delta graph (statistics off); the buffers are rebuilt
    before the next delta frame, so outputs equal the eager network's, even when thresholds change while
    the buffers are stale."""
    model, clip = _model(), _cuts_clip()
    eager = convert(model, thresholds=0.0, backend=backend, dense_refresh=0.25)
    eager.lazy_refresh = False
    lazy = convert(model, thresholds=0.0, backend=backend, dense_refresh=0.25)
    lazy.stats.enabled = False
    graph_calls = []
    lazy.graph_module.register_forward_hook(lambda *_: graph_calls.append(1))
    with torch.no_grad():
        for i, x in enumerate(clip):
            if i == 12:  # leave the stale run with a threshold > 0: the rebuilt state must be exact
                for net in (eager, lazy):
                    net.set_thresholds(0.05)
            torch.testing.assert_close(lazy(x), eager(x), rtol=1e-5, atol=1e-5)
    # refresh frames: the cuts 3-6 and 10-11, and 7 (all of it differs from cut 6); 12 has a threshold
    assert lazy.refreshed_frames == eager.refreshed_frames == 7
    # 4-7 and 11 ran the dense model only (each follows a refresh frame); 8 and 12 rebuilt the buffers
    # first (one more graph pass each)
    assert len(graph_calls) == len(clip) - 5 + 2
    # with statistics on every frame runs through the delta graph (per-op numbers stay complete)
    lazy.reset()
    lazy.set_thresholds(0.0)
    lazy.stats.enabled = True
    graph_calls.clear()
    with torch.no_grad():
        for x in clip:
            lazy(x)
    assert len(graph_calls) == len(clip)


def test_dense_refresh_defaults_follow_the_backend() -> None:
    model = _model()
    assert convert(model).dense_refresh is None
    assert convert(model, backend=SparseBackend(calibration=Calibration(None))).dense_refresh == 0.25
    with pytest.raises(Exception, match="dense_refresh"):
        convert(model).dense_refresh = 1.5


@needs_native
def test_sparse_network_runs_channels_last_and_returns_standard_layout() -> None:
    model, clip = _model(), list(moving_square_clip(5))
    backend = SparseBackend(break_even=1.0, calibration=Calibration(None))
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=None)
    ref = convert(model, thresholds=0.0)
    with torch.no_grad():
        for x in clip:
            y = net(x)
            assert y.is_contiguous()
            assert max_relative_error(y, ref(x)) <= 1e-4
    relu = next(op for op in net.ops if op.kind == "relu")
    assert relu.a.is_contiguous(memory_format=CL)
    assert sum(u.sparse for u in backend.usage.values()) > 0


def test_plain_torch_paths_equal_reference() -> None:
    """Without the compiled kernels (no compiler, or CUDA tensors, which always take these paths) the
    sparse backend runs plain torch: sparse_conv2d, the gathered truncation step and the torch masks.
    ``use_kernels(None)`` switches them off for the block only, and restores the build after it, also
    when the block raises."""
    built = native.kernels()
    with native.use_kernels(None):
        assert not native.available()
        model, clip = _model(), list(moving_square_clip(6))
        for threshold in (0.0, 0.05):
            backend = SparseBackend(break_even=1.0, calibration=Calibration(None))
            net = convert(model, thresholds=threshold, backend=backend, dense_refresh=None)
            ref = convert(model, thresholds=threshold)
            with torch.no_grad():
                for x in clip:
                    assert max_relative_error(net(x), ref(x)) <= 1e-4
            assert sum(u.sparse for u in backend.usage.values()) > 0
            relu = next(op for op in net.ops if op.kind == "relu")
            assert relu.a.is_contiguous()  # no channels-last layout without the kernels
    assert native.kernels() is built
    with pytest.raises(KeyError), native.use_kernels(None):
        raise KeyError("inside")
    assert native.kernels() is built


def test_running_the_engine_changes_no_process_wide_setting() -> None:
    """Converting and running a sparse network leaves glibc's allocator alone (it is opt-in:
    ``keep_freed_memory``, which the ``deltatune`` command calls), in a fresh process."""
    import subprocess
    import sys

    code = (
        "import torch; from torch import nn; from deltatune import _malloc\n"
        "from deltatune.delta import convert\n"
        "net = convert(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()), backend='sparse')\n"
        "x = torch.rand(1, 3, 16, 16); net(x); x[..., :4, :4] += 1; net(x)\n"
        "print(_malloc._state.get('malloc'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "None"


def test_a_build_lock_left_by_a_killed_build_is_removed(tmp_path) -> None:
    """torch waits forever on the build lock of a killed build; a lock older than any build is removed,
    a fresh one (a build running now) is kept."""
    import os
    import time

    lock = tmp_path / "lock"
    lock.touch()
    assert not native.clear_stale_lock(tmp_path) and lock.exists()
    old = time.time() - native.STALE_LOCK_S - 5
    os.utime(lock, (old, old))
    assert native.clear_stale_lock(tmp_path) and not lock.exists()
    assert not native.clear_stale_lock(tmp_path)  # nothing to remove


def test_a_lock_left_by_a_process_killed_while_loading_blocks_no_later_process() -> None:
    """Every deltatune process loads the kernels at start. When loading went through torch's build lock, a
    process killed at that moment (``kill -9`` of a search and its workers) left a fresh lock on which
    every later process waited forever. A stamped build is now imported without the lock."""
    import subprocess
    import sys

    if native.kernels() is None:
        pytest.skip("compiled kernels unavailable here")
    lock = native.build_dir() / "lock"
    assert (native.build_dir() / "deltatune_cpu.stamp").is_file()
    lock.touch()  # as a loader killed a moment ago leaves it
    try:
        code = "from deltatune.delta import native; assert native.kernels() is not None; print('ok')"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    finally:
        lock.unlink(missing_ok=True)


def test_waiting_for_a_build_lock_ends_when_the_build_does_or_the_lock_is_stale(tmp_path) -> None:
    import os
    import threading
    import time

    lock = tmp_path / "lock"
    lock.touch()  # a build running now: wait until it removes its lock
    threading.Timer(0.5, lock.unlink).start()
    t0 = time.perf_counter()
    native.wait_for_build_lock(tmp_path, poll_s=0.05)
    assert not lock.exists() and 0.4 < time.perf_counter() - t0 < 10
    lock.touch()
    old = time.time() - native.STALE_LOCK_S - 5
    os.utime(lock, (old, old))  # a killed build's: removed at once
    native.wait_for_build_lock(tmp_path, poll_s=0.05)
    assert not lock.exists()
