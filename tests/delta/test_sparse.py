"""The sparse backend equals the reference backend, and its per-layer dense/sparse switch works both ways."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deltatune.delta import convert, native
from deltatune.delta._sparse_kernels import active_pixels, geometry, sparse_conv2d, zero_pixels
from deltatune.delta.backends import get_backend
from deltatune.delta.calibration import Calibration, LayerCalibration, blob_mask, measure_conv, signature
from deltatune.delta.linear import ConvOp
from deltatune.delta.sparse import SparseBackend
from deltatune.delta.values import DeltaMasked, DeltaTensor
from deltatune.inspection import max_relative_error
from tests.delta.nets import AllOps, moving_square_clip, randomize_bn


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "dil", "n", "h", "w"),
    [
        (8, 16, 3, 1, 1, 1, 1, 17, 13),
        (8, 16, 3, 2, 1, 1, 2, 17, 13),
        (4, 6, (3, 1), 1, (1, 0), 1, 1, 9, 9),
        (6, 6, 2, 1, 0, 1, 3, 9, 8),
        (6, 5, 5, 2, 2, 1, 1, 16, 16),
        (3, 4, 3, 1, 2, 2, 2, 12, 10),
        (8, 8, 1, 1, 0, 1, 2, 7, 7),
        (8, 8, 7, 2, 3, 1, 1, 32, 24),
    ],
)
def test_sparse_kernel_matches_conv(cin, cout, k, stride, pad, dil, n, h, w) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride, pad, dil, bias=False)
    in_mask = torch.rand(n, 1, h, w) < 0.2
    x = torch.randn(n, cin, h, w) * in_mask
    y = conv(x)
    out_mask = torch.rand(n, 1, *y.shape[2:]) < 0.3
    w2 = conv.weight.reshape(cout, -1).contiguous()
    for zero_pos in (None, zero_pixels(in_mask)):
        ys = sparse_conv2d(x, w2, geometry(conv), tuple(y.shape[2:]), active_pixels(out_mask), zero_pos)
        torch.testing.assert_close(ys, y * out_mask, rtol=1e-5, atol=1e-5)
    assert zero_pixels(torch.ones(n, 1, h, w, dtype=torch.bool)) is None


def _run_pair(model, frames, threshold, backend):
    ref = convert(model, thresholds=threshold)
    sp = convert(model, thresholds=threshold, backend=backend, dense_refresh=None)
    worst = 0.0
    with torch.no_grad():
        for x in frames:
            worst = max(worst, max_relative_error(sp(x), ref(x)))
    return worst, sp


@pytest.mark.parametrize("threshold", [0.0, 0.05])
@pytest.mark.parametrize("break_even", [None, 0.0, 1.0])
def test_sparse_equals_reference_on_all_ops(threshold, break_even) -> None:
    torch.manual_seed(0)
    model = randomize_bn(AllOps())
    clip = moving_square_clip(12)
    frames = [torch.cat([clip[t], clip[(t + 5) % len(clip)]]) for t in range(len(clip))]
    backend = SparseBackend(break_even=break_even, calibration=Calibration(None))
    worst, net = _run_pair(model, frames, threshold, backend)
    assert worst <= 1e-4
    use = backend.usage
    assert use and sum(u.calls for u in use.values()) > 0
    if break_even == 1.0:
        assert sum(u.sparse for u in use.values()) > 0
    if break_even == 0.0:
        assert sum(u.sparse for u in use.values()) == 0 and sum(u.dense for u in use.values()) > 0


@pytest.mark.parametrize("break_even", [None, 0.0, 1.0])
def test_undefined_pixels_of_masked_deltas_are_never_read(break_even) -> None:
    """Every delta the compiled kernels leave undefined outside its mask (DeltaMasked) is filled with a
    huge value as it is produced: no consumer (sparse or dense conv, truncation, pooling, output) may
    read them without zeroing them first, so the result still equals the reference backend. (Not NaN: a
    NaN change never fires a truncation, so it could hide in a residual.)"""
    poisoned = []

    def poison(module, inputs, out) -> None:
        if isinstance(out, DeltaMasked) and not out.buffer_clean:
            out.buffer.masked_fill_(~out.mask, 1e6)
            poisoned.append(module.name)

    torch.manual_seed(0)
    model = randomize_bn(AllOps())
    clip = moving_square_clip(10)
    frames = [torch.cat([clip[t], clip[(t + 5) % len(clip)]]) for t in range(len(clip))]
    backend = SparseBackend(break_even=break_even, calibration=Calibration(None))
    sp = convert(model, thresholds=0.05, backend=backend)
    ref = convert(model, thresholds=0.05)
    for op in sp.ops:
        op.register_forward_hook(poison)
    with torch.no_grad():
        for x in frames:
            assert max_relative_error(sp(x), ref(x)) <= 1e-4
    if native.available():
        assert poisoned  # the kernels did leave pixels undefined


def test_per_layer_override_switches_both_ways() -> None:
    torch.manual_seed(0)
    model = randomize_bn(AllOps())
    clip = moving_square_clip(6)
    backend = SparseBackend(break_even=1.0, overrides={"fuse": 0.0}, calibration=Calibration(None))
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=None)
    with torch.no_grad():
        for x in clip:
            net(x)
    assert backend.usage["fuse"].sparse == 0 and backend.usage["fuse"].dense > 0
    assert backend.usage["stem"].sparse > 0 and backend.usage["stem"].dense == 0
    backend.overrides = {"stem": 0.0, "fuse": 1.0}
    backend.reset_usage()
    with torch.no_grad():
        for x in clip:
            net(x)
    assert backend.usage["fuse"].sparse > 0 and backend.usage["fuse"].dense == 0
    assert backend.usage["stem"].sparse == 0 and backend.usage["stem"].dense > 0
    # the depthwise conv runs its own sparse kernel under the same rule
    assert backend.usage["block.conv2"].sparse > 0


def test_two_tables_on_one_file_keep_each_others_entries(tmp_path) -> None:
    """Processes sharing a calibration file (an ablation's --jobs workers) each wrote the whole copy they
    had read at their start, so one's measurements overwrote the other's; a save now adds to the file."""
    first, second = Calibration(tmp_path / "cal.json"), Calibration(tmp_path / "cal.json")  # both see none
    a, b = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.Conv2d(8, 16, 1, bias=False)
    ca = first.measure(a, (1, 8, 16, 16), repeats=1)
    cb = second.measure(b, (1, 8, 16, 16), repeats=1)
    table = Calibration(tmp_path / "cal.json")
    assert table.get(ca.signature) == ca and table.get(cb.signature) == cb
    again = first.measure(a, (1, 8, 16, 16), repeats=1, force=True)  # measured again: its own entry wins
    assert Calibration(tmp_path / "cal.json").get(ca.signature) == again
    assert Calibration(tmp_path / "cal.json").get(cb.signature) == cb
    # a shape two processes measure at once: the one saved second answers with the first's entry, so
    # both price with the same costs
    late, c = Calibration(tmp_path / "cal.json"), nn.Conv2d(16, 8, 1, bias=False)
    early = Calibration(tmp_path / "cal.json").measure(c, (1, 16, 8, 8), repeats=1)
    assert late.measure(c, (1, 16, 8, 8), repeats=1) == early  # `late` had read the file before
    # another process's --force of shape a is not undone when `first` (which measured a before) saves a
    # shape it measures later
    forced = Calibration(tmp_path / "cal.json").measure(a, (1, 8, 16, 16), repeats=1, force=True)
    first.measure(nn.Conv2d(8, 8, 3, padding=1, groups=8), (1, 8, 16, 16), repeats=1)
    assert Calibration(tmp_path / "cal.json").get(ca.signature) == forced


def test_sparse_backend_by_name_and_calibration_cache(tmp_path) -> None:
    assert get_backend("sparse").name == "sparse"
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    cal = Calibration(tmp_path / "cal.json")
    c = cal.measure(conv, (1, 8, 16, 16), repeats=1)
    assert 0.0 <= c.break_even <= 1.0 and c.dense_ms > 0
    again = Calibration(tmp_path / "cal.json")
    assert again.get(signature(conv, (1, 8, 16, 16))) == c
    dw = measure_conv(nn.Conv2d(8, 8, 3, padding=1, groups=8), (1, 8, 16, 16), repeats=1)
    assert math.isfinite(dw.sparse_fixed_ms) and 0.0 <= dw.break_even <= 1.0  # depthwise: measured
    grouped = measure_conv(nn.Conv2d(8, 8, 3, padding=1, groups=2), (1, 8, 16, 16), repeats=1)
    assert grouped.break_even == 0.0 and grouped.sparse_fixed_ms == math.inf  # other groups: always dense
    m = blob_mask((2, 1, 32, 24), 0.1)
    assert 0.08 <= float(m.float().mean()) <= 0.2


def test_the_calibration_table_is_kept_per_processor(tmp_path, monkeypatch) -> None:
    """A data directory shared by machines of different kinds (a cluster's home directory, a cache
    carried from one machine to the next) gave them all one table, and calibration only fills in the
    shapes a table lacks: costs measured on one CPU priced the layers on another. The file name carries
    the processor now: the CPU's model and instruction-set flags, as /proc/cpuinfo gives them."""
    import hashlib
    import platform
    from pathlib import Path

    from deltatune.delta.calibration import default_path, processor_tag

    monkeypatch.setenv("DELTATUNE_DATA", str(tmp_path))
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = platform.machine() + "".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    tag = hashlib.sha256(cpu.encode()).hexdigest()[:10]
    path = default_path()
    assert processor_tag("cpu") == tag and path.parent == tmp_path / "calibration"
    assert f"_cpu-{tag}_" in path.name and f"threads-{torch.get_num_threads()}" in path.name


def test_input_centric_layers_are_calibrated_and_priced_by_their_updated_input(tmp_path) -> None:
    """Under the compiled kernel a stride-1 k x k conv runs input-centrically (one GEMM row per updated
    input pixel), so its sparse line is fitted, stored and priced in the updated *input* fraction; 1x1
    and strided convs keep the output fraction. Priced by the output fraction, such layers ran about
    twice their calibrated cost when their input was as dense as their output (after a truncation at
    threshold 0), and a latency model built on that priced those settings 16-21 % too fast."""
    shape = (1, 16, 24, 24)
    cal = Calibration(tmp_path / "cal.json")
    c3 = cal.measure(nn.Conv2d(16, 16, 3, padding=1, bias=False), shape, repeats=1)
    assert c3.by_input == native.available()
    assert Calibration(tmp_path / "cal.json").get(c3.signature) == c3  # stored with its unit
    assert not measure_conv(nn.Conv2d(16, 16, 1, bias=False), shape, repeats=1).by_input
    assert not measure_conv(nn.Conv2d(16, 16, 3, 2, 1, bias=False), shape, repeats=1).by_input
    # a hand-set line (dense 1 ms, sparse 2 ms x f): which fraction it is in decides the choice
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    torch.manual_seed(0)
    mask = torch.rand(1, 1, 20, 20) < 0.3  # scattered: the 3x3 dilation sets almost every output pixel
    out_mask = ConvOp("c", conv).out_mask(mask)
    f_in, f_out = float(mask.float().mean()), float(out_mask.float().mean())
    assert f_in < 0.4 and f_out > 0.8
    sig = signature(conv, (1, 4, 20, 20))
    for by_input, want in ((True, "sparse"), (False, "dense")):
        table = Calibration(None)
        table.layers[sig] = LayerCalibration(sig, 1.0, 0.0, 2.0, 0.5, by_input)
        backend = SparseBackend(calibration=table)
        x = DeltaTensor(torch.randn(1, 4, 20, 20) * mask, mask, False, int(mask.sum()))
        with torch.no_grad():
            y = backend.conv2d(x, conv, out_mask, name="c")
        want_y = F.conv2d(x.data, conv.weight, None, 1, 1) * out_mask
        torch.testing.assert_close(y, want_y, rtol=1e-5, atol=1e-5)
        use = backend.usage["c"]
        assert use.choice == want
        assert use.sparse_frac_sum == (pytest.approx(f_in) if by_input else 0.0)
        assert use.mean_frac == pytest.approx(f_out)  # reports keep the updated output fraction


def test_inference_never_calibrates_and_calibrate_writes_the_table(tmp_path) -> None:
    """Running a network times nothing and writes no file: unseen layer shapes use the default
    break-even and are listed. ``calibrate`` measures every such conv shape of the network once, writes
    the table, and from then on the backend decides by it; ``auto_calibrate=True`` measures on use."""
    from deltatune.delta.calibration import calibrate

    model = randomize_bn(AllOps())
    clip = moving_square_clip(3)
    path = tmp_path / "table.json"
    backend = SparseBackend(calibration=path)
    net = convert(model, thresholds=0.0, backend=backend, dense_refresh=None)
    with torch.no_grad():
        net.run_stream(clip)
    assert not path.exists() and not backend.calibration.layers
    missing = set(backend.uncalibrated)
    assert missing
    table = calibrate(net, clip[0], repeats=1)
    assert path.is_file() and set(table) == missing == set(backend.calibration.layers)
    backend.reset_usage()
    with torch.no_grad():
        net.run_stream(clip)
    assert not backend.uncalibrated
    again = calibrate(net, [clip[0], clip[1]], repeats=1)  # in the table: nothing measured again
    assert again == table
    auto = SparseBackend(auto_calibrate=True, calibration=Calibration(tmp_path / "auto.json"))
    with torch.no_grad():
        convert(model, thresholds=0.0, backend=auto, dense_refresh=None).run_stream(clip)
    assert (tmp_path / "auto.json").is_file() and not auto.uncalibrated


def test_calibrate_refuses_the_reference_backend() -> None:
    from deltatune.delta.calibration import calibrate
    from deltatune.errors import ConfigError

    net = convert(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    with pytest.raises(ConfigError, match="reference"):
        calibrate(net, torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("threshold", [0.0, 0.1])
def test_sparse_equals_reference_on_zoo_model(threshold, vtest_path) -> None:
    from deltatune.workload import load_workload

    torch.manual_seed(0)
    wl = load_workload("hrnet_tiny", weights=None, frames=6)
    backend = SparseBackend(break_even=1.0, calibration=Calibration(None))
    worst, _ = _run_pair(wl.model, list(wl.frames), threshold, backend)
    assert worst <= 1e-4
    assert sum(u.sparse for u in backend.usage.values()) > 0


def test_sparse_backend_runs_functional_padding_modes() -> None:
    # reflect padding is not handled by the sparse kernel: it must fall back to dense, exactly
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU())
    backend = SparseBackend(break_even=1.0, calibration=Calibration(None))
    clip = moving_square_clip(4)
    worst, _ = _run_pair(model, clip, 0.0, backend)
    assert worst <= 1e-4
    assert F is not None


def test_producers_write_zeros_only_for_readers_that_need_them() -> None:
    """Conversion decides per op whether its output's zeros are written: not where every reader is a
    mask-aware kernel (and then no reader zeroes them, also while statistics are recorded); yes for the
    last conv, read whole by the network output, and for an op read by a grouped conv (always dense;
    depthwise convs have a mask-aware kernel, so their producers leave zeros unwritten).
    Running and resetting the network never changes the decision."""
    from deltatune.delta.linear import ConvOp
    from deltatune.delta.truncation import PointwiseTruncation

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
    ).eval()
    if not native.available():
        pytest.skip("compiled kernels could not be built here")
    backend = SparseBackend(break_even=1.0, calibration=Calibration(None))
    net = convert(model, thresholds=0.01, backend=backend)
    convs = [op for op in net.ops if isinstance(op, ConvOp)]
    relus = [op for op in net.ops if isinstance(op, PointwiseTruncation)]
    plan = [op.zero_fill for op in convs], [op.zero_fill for op in relus]
    assert plan == ([False, False, False, True], [False, True, False])
    outputs: list[tuple[str, DeltaMasked]] = []

    def keep(module: nn.Module, args: object, out: object) -> None:
        if isinstance(out, DeltaMasked):
            outputs.append((module.name, out))

    for op in convs + relus:
        op.register_forward_hook(keep)
    with torch.no_grad():
        net.run_stream(moving_square_clip(5))
    assert net.stats.enabled and net.stats.records
    unwritten = {name for name, o in outputs}
    assert unwritten == {"0", "2", "4", "1", "5"}  # every op whose readers read inside masks only
    assert not any(o.buffer_clean for _, o in outputs)  # no reader zeroed them (recording neither)
    net.reset()
    assert ([op.zero_fill for op in convs], [op.zero_fill for op in relus]) == plan
