"""Per-machine timing of dense vs sparse convolution: the calibration table the sparse backend decides by.

This is where the table comes from. :func:`calibrate` (``deltatune calibrate`` on the command line) is the
explicit step, as in FX quantization's prepare -> calibrate -> convert: it finds the conv layer shapes of
a converted network on example frames, times each one on this machine and writes the table. Inference
itself never times anything or writes files (unless a backend is built with ``auto_calibrate=True``).

The sparse kernel (:mod:`deltatune.delta._sparse_kernels`) costs roughly ``fixed + slope * f`` for an
updated-output fraction ``f``; the dense conv costs a constant. :func:`measure_conv` times both on this
machine (deltas with clustered updated input pixels like real video, the output mask their dilation,
interleaved runs, medians) and fits that line; the
break-even fraction is where the line meets the dense time. Results are cached as JSON under
``deltatune.data.assets.data_dir() / "calibration"``, one file per torch version, thread count and device
type, keyed by the layer signature (shapes, kernel, stride, padding, dilation, groups).

Example:
    >>> from torch import nn
    >>> c = measure_conv(nn.Conv2d(8, 8, 3, padding=1, bias=False), (1, 8, 16, 16), repeats=1)
    >>> 0.0 <= c.break_even <= 1.0
    True
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from deltatune._atomic import atomic_write_text
from deltatune.delta import native
from deltatune.delta._sparse_kernels import SparseConv, geometry, sparse_supported
from deltatune.delta.linear import ConvOp
from deltatune.delta.native import native_for
from deltatune.errors import ConfigError

if TYPE_CHECKING:
    from deltatune.delta.network import DeltaNetwork

__all__ = [
    "LayerCalibration",
    "Calibration",
    "signature",
    "measure_conv",
    "blob_mask",
    "default_path",
    "processor_tag",
    "calibrate",
    "conv_shapes",
    "synchronizer",
]

log = logging.getLogger(__name__)

#: Updated-input fractions the sparse kernel is timed at (the fit uses the resulting output fractions,
#: or these input fractions for input-centric layers: :attr:`LayerCalibration.by_input`).
FRACTIONS: tuple[float, ...] = (0.02, 0.1, 0.25, 0.5)


@dataclass(frozen=True)
class LayerCalibration:
    """Measured costs of one conv shape on this machine (milliseconds per call)."""

    signature: str
    dense_ms: float
    sparse_fixed_ms: float = float("inf")
    sparse_slope_ms: float = 0.0
    break_even: float = 0.0  # sparse is used below this updated fraction (of the pixels ``by_input`` says)
    #: the sparse line's fraction is of the updated *input* pixels (input-centric layers: stride-1 k x k
    #: convs under the compiled kernel, whose GEMM has one row per updated input pixel), else of the
    #: updated output pixels. Why: for those layers the same output fraction costs up to twice as much
    #: when the input is as dense as the output (after a truncation at threshold 0) as on the clustered
    #: calibration masks, whose input is the output shrunk by the kernel.
    by_input: bool = False

    def sparse_ms(self, frac: float) -> float:
        """Predicted sparse-kernel time at updated fraction ``frac`` (of input pixels if ``by_input``)."""
        return self.sparse_fixed_ms + self.sparse_slope_ms * frac

    def predict_ms(self, frac: float, *, break_even: float | None = None) -> float:
        """Time of the choice the backend makes at ``frac`` (0 when nothing is updated; the fraction of
        the pixels ``by_input`` says)."""
        if frac <= 0.0:
            return 0.0
        be = self.break_even if break_even is None else break_even
        return self.sparse_ms(frac) if frac < be or be >= 1.0 else self.dense_ms

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def signature(conv: nn.Conv2d, shape: Sequence[int]) -> str:
    """A stable key for a conv layer applied to an input of ``shape`` (``[N, C, H, W]``)."""
    g = geometry(conv)
    n, c, h, w = (int(s) for s in shape)
    return (
        f"conv{g.c_in}x{g.c_out}_k{g.kh}x{g.kw}_s{g.sh}x{g.sw}_p{g.ph}x{g.pw}_d{g.dh}x{g.dw}"
        f"_g{conv.groups}_{conv.padding_mode}_in{n}x{h}x{w}"
    )


def blob_mask(
    shape: Sequence[int], frac: float, *, seed: int = 0, device: torch.device | str = "cpu"
) -> Tensor:
    """A ``[N, 1, H, W]`` bool mask with about ``frac`` of its pixels set, in square blobs (like moving
    people in a static-camera video, whose masks are clustered rather than random)."""
    n, _, h, w = (int(s) for s in shape)
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(n, 1, h, w, dtype=torch.bool)
    target = max(1, round(frac * h * w))
    r = max(1, min(h, w) // 12)
    for b in range(n):
        while int(m[b].sum()) < target:
            cy = int(torch.randint(0, h, (1,), generator=g))
            cx = int(torch.randint(0, w, (1,), generator=g))
            m[b, 0, max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1] = True
    return m.to(device)


def synchronizer(device: torch.device | None) -> Callable[[], None]:
    """What a wall clock must call before it starts and before it stops on ``device``:
    ``torch.cuda.synchronize`` of that device on CUDA (kernels run asynchronously, so an unsynchronised
    clock times their launches, not their work), nothing elsewhere."""
    if device is None or device.type != "cuda":
        return _no_sync
    return lambda: torch.cuda.synchronize(device)


def _no_sync() -> None:
    return None


def _median_ms(
    fns: dict[str, Callable[[], object]], repeats: int, inner: int, device: torch.device | None = None
) -> dict[str, float]:
    """Interleaved timing: every round runs each function ``inner`` times; returns medians in ms.
    On CUDA the device is synchronised around each timing (:func:`synchronizer`)."""
    sync = synchronizer(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():  # warm-up
        f()
    for _ in range(repeats):
        for k, f in fns.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            sync()
            times[k].append((time.perf_counter() - t0) * 1e3 / inner)
    return {k: statistics.median(v) for k, v in times.items()}


def measure_conv(
    conv: nn.Conv2d, shape: Sequence[int], *, repeats: int = 5, fractions: Sequence[float] = FRACTIONS
) -> LayerCalibration:
    """Time dense vs sparse execution of ``conv`` on inputs of ``shape`` and fit the sparse cost line."""
    weight = conv.weight.detach()
    device = weight.device
    x = torch.randn(*shape, device=device, dtype=weight.dtype)
    cl = native_for(x) is not None  # the layout the sparse backend runs in (channels-last activations)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    sig = signature(conv, shape)
    with torch.no_grad():
        y = conv._conv_forward(x, weight, None)
        out_hw = (int(y.shape[2]), int(y.shape[3]))
        out_pixels = y.shape[0] * out_hw[0] * out_hw[1]
        # more inner iterations for small layers keep the timer resolution out of the result
        inner = max(1, min(20, int(2e6 // max(1, y.numel() * conv.in_channels))))
        fns: dict[str, Callable[[], object]] = {"dense": lambda: conv._conv_forward(x, weight, None)}
        if not sparse_supported(conv):
            return LayerCalibration(sig, _median_ms(fns, repeats, inner, device)["dense"])
        kernel = SparseConv(conv)
        op = ConvOp("calibration", conv)
        real: dict[str, float] = {}
        by_input = cl and kernel.input_centric
        for i, f in enumerate(fractions):
            # a delta like the network's: clustered updated input pixels, zero elsewhere; the updated
            # output pixels are their receptive-field dilation (what the conv op hands the kernel)
            im = blob_mask(shape, f, seed=i, device=device)
            xi = (x * im).contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
            om = op.out_mask(im)
            real[f"s{i}"] = float(im.float().mean()) if by_input else float(om.sum()) / out_pixels
            fns[f"s{i}"] = partial(kernel, xi, om, in_mask=im)
        ms = _median_ms(fns, repeats, inner, device)
    xs = [real[f"s{i}"] for i in range(len(fractions))]
    ys = [ms[f"s{i}"] for i in range(len(fractions))]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((a - mx) ** 2 for a in xs)
    slope = max(0.0, sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / var) if var else 0.0
    fixed = max(0.0, my - slope * mx)
    dense = ms["dense"]
    if fixed >= dense:
        be = 0.0
    elif slope <= 0.0:
        be = 1.0
    else:
        be = min(1.0, (dense - fixed) / slope)
    return LayerCalibration(sig, dense, fixed, slope, be, by_input)


#: Bumped whenever the sparse kernels change what they cost, so that stale cached costs are not reused
#: (9: 1x1 stride-1 convs multiplied in place, run by run of updated pixels; 10: a GEMM panel's last <= 16
#: columns in half the FMAs, short-K GEMMs on the packed kernel up to a result of 1 M floats).
KERNELS_VERSION = 10


def processor_tag(device: torch.device | str = "cpu") -> str:
    """A short hash that tells processors apart: on the CPU its model and instruction-set flags (the
    compiled kernels' own key), on a GPU its name."""
    import hashlib

    dev = torch.device(device)
    if dev.type == "cpu":
        return native._cpu_tag()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" and torch.cuda.is_available() else dev.type
    return hashlib.sha256(name.encode()).hexdigest()[:10]


def default_path(device: torch.device | str = "cpu") -> Path:
    """The calibration file of this machine: keyed by torch version, thread count, device type, the
    processor (:func:`processor_tag`) and the kernels' version. Without the processor, a data directory
    shared by machines of different kinds (a home directory on a cluster, a cache carried between
    sessions) priced one machine's layers with another's costs: calibration fills in only the shapes
    the table lacks."""
    from deltatune.data.assets import data_dir

    dev = torch.device(device).type
    kernel = "native" if dev == "cpu" and native.available() else "torch"
    threads = torch.get_num_threads()
    name = (
        f"torch-{torch.__version__}_threads-{threads}_{dev}-{processor_tag(device)}_{kernel}"
        f"-v{KERNELS_VERSION}.json"
    )
    name = name.replace("+", "_")
    return data_dir() / "calibration" / name


class Calibration:
    """A cache of :class:`LayerCalibration` by signature, loaded from / saved to one JSON file.

    ``path=None`` keeps it in memory only (nothing is read or written).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.layers: dict[str, LayerCalibration] = self._read(warn=True)
        #: signatures measured since the last save -> whether on request (``force``): what :meth:`save`
        #: adds to the file
        self._unsaved: dict[str, bool] = {}

    def _read(self, *, warn: bool = False) -> dict[str, LayerCalibration]:
        """The layers of the file (none when there is no file, or it cannot be read)."""
        if self.path is None or not self.path.is_file():
            return {}
        try:
            raw = json.loads(self.path.read_text())
            return {k: LayerCalibration(**v) for k, v in raw.get("layers", {}).items()}
        except (OSError, ValueError, TypeError) as exc:
            if warn:
                log.warning(
                    "ignoring unreadable calibration file %s (%s); it will be rewritten", self.path, exc
                )
            return {}

    def get(self, sig: str) -> LayerCalibration | None:
        return self.layers.get(sig)

    def measure(
        self, conv: nn.Conv2d, shape: Sequence[int], *, force: bool = False, repeats: int = 5
    ) -> LayerCalibration:
        """The calibration of ``conv`` at ``shape``: cached, or measured now (and saved). A shape another
        process measured meanwhile (and saved first) is answered with that process's entry, so that the
        processes sharing a table price with one set of costs (a latency fit records the costs it was
        made on)."""
        sig = signature(conv, shape)
        if not force and sig in self.layers:
            return self.layers[sig]
        log.info("calibrating %s", sig)
        self.layers[sig] = measure_conv(conv, shape, repeats=repeats)
        self._unsaved[sig] = force
        self.save()
        return self.layers[sig]

    def save(self) -> None:
        """Write the cache atomically (no-op for an in-memory calibration), under a lock: the file's
        entries as they are now, plus the shapes measured since the last save; one measured on request
        (``force``) replaces the file's entry, one measured because it was missing does not replace an
        entry another process wrote meanwhile. This object then holds at least what the file holds.

        Several processes share one table (an ablation's ``--jobs`` workers, searches at once); each
        wrote its whole copy, read when it started, so the entries another process had measured since
        were lost (and measured again later, maybe while the machine was busy), or a ``--force``
        measurement undone."""
        if self.path is None:
            self._unsaved.clear()
            return
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            merged = self._read()
            for sig, forced in self._unsaved.items():
                if forced or sig not in merged:
                    merged[sig] = self.layers[sig]
            self.layers = {**self.layers, **merged}
            payload = {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "layers": {k: v.to_dict() for k, v in sorted(merged.items())},
            }
            atomic_write_text(self.path, json.dumps(payload, indent=1))
        self._unsaved.clear()


def conv_shapes(
    net: DeltaNetwork, frames: torch.Tensor | Iterable[torch.Tensor]
) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Every distinct ``(conv, input shape)`` of ``net``'s conv ops that the sparse kernel supports (the
    layers the backend chooses sparse or dense for; the others always run dense) on ``frames`` (one
    ``[N, C, H, W]`` frame or several), in execution order. Runs each distinct frame shape once, densely
    (a first frame), then resets the network."""
    from deltatune.delta.linear import ConvOp

    batch = [frames] if isinstance(frames, torch.Tensor) and frames.dim() == 4 else list(frames)
    if not batch:
        raise ConfigError("calibrate: no frames given")
    seen: dict[str, tuple[nn.Conv2d, tuple[int, ...]]] = {}
    convs = [op for op in net.ops if isinstance(op, ConvOp) and sparse_supported(op.conv)]

    def note(op: Any, args: tuple[Any, ...]) -> None:
        shape = tuple(int(v) for v in args[0].shape)
        seen.setdefault(signature(op.conv, shape), (op.conv, shape))

    hooks = [op.register_forward_pre_hook(note) for op in convs]
    try:
        shapes_run: set[tuple[int, ...]] = set()
        with torch.no_grad(), net.stats.paused():
            for x in batch:
                if tuple(x.shape) in shapes_run:
                    continue
                shapes_run.add(tuple(x.shape))
                net.reset()
                net(x)
    finally:
        for h in hooks:
            h.remove()
        net.reset()
    return list(seen.values())


def calibrate(
    net: DeltaNetwork,
    frames: torch.Tensor | Iterable[torch.Tensor],
    *,
    force: bool = False,
    repeats: int = 5,
    progress: bool = False,
) -> dict[str, LayerCalibration]:
    """Measure this machine's costs of every conv layer shape of ``net`` (sparse backend) on ``frames``
    and write them to its calibration table; returns ``{signature: costs}`` for the network's shapes.

    Shapes already in the table are kept unless ``force``. The network's streams are reset. Example::

        net = convert(model, backend="sparse")
        calibrate(net, first_frame)      # once per model, machine, thread count and torch version
        net.run_stream(frames)           # decides sparse / dense by the measured costs
    """
    from deltatune.delta.sparse import SparseBackend  # here: the sparse backend imports this module

    be = net.backend_object
    if not isinstance(be, SparseBackend):
        raise ConfigError(f"calibrate: the {be.name!r} backend has no calibration (use the sparse backend)")
    shapes = conv_shapes(net, frames)
    todo: Iterable[tuple[nn.Conv2d, tuple[int, ...]]] = shapes
    if progress:
        import sys

        from tqdm.auto import tqdm

        # disable=None: a passing bar (leave=False) only on a terminal, as bench's and inspect's; in a log
        # it would only leave carriage returns in front of the table
        todo = tqdm(shapes, desc="calibrate", unit="layer shape", leave=False, disable=None, file=sys.stderr)
    out: dict[str, LayerCalibration] = {}
    for conv, shape in todo:
        store = be.calibration_for(conv.weight.device)
        cal = store.measure(conv, shape, force=force, repeats=repeats)
        out[cal.signature] = cal
    be.forget_plans()
    return out
