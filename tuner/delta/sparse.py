"""The ``sparse`` backend: per-pixel sparse convolution where it is measured to beat dense.

For every conv call on a non-first frame the backend looks at the updated-output fraction ``f`` (from
the output mask the conv op computes) and picks:

* nothing at all when no output pixel is updated (a zero delta; exact for any bias-free conv);
* the sparse kernel (compiled, channels-last; see ``csrc/delta_cpu.cpp``): for stride-1 k x k convs
  input-centric (one GEMM row per updated *input* pixel, its k*k tap results added into the output
  pixels they reach), else gather -> GEMM -> scatter over the updated output pixels;
* the dense conv over the whole map (exactly the reference backend); always for grouped convs that are
  not depthwise (depthwise convs have their own sparse kernel: per-pixel tap sums, no GEMM).

There is no third path over the updated pixels' bounding box: a dense conv over the box had to write the
whole output map (zeros outside the box) besides cropping and padding its input, and on 8 layer shapes
(MobileNetV2, HRNet, ResNet-like; 2026-12-05) it cost more over a quarter of the map than the dense conv
over all of it; on a clip with one compact moving object the backend's box calls made mobilenet_v2,
hrnet and BlazePose frames 1.14x, 1.05x and 1.32x slower than without them.

The choice uses the layer's measured costs from this machine's calibration table
(:class:`~deltatune.delta.calibration.Calibration`, written by
:func:`~deltatune.delta.calibration.calibrate` or ``deltatune calibrate``): the sparse cost line at ``f``
against the dense time. A layer shape the table does not hold uses
:data:`DEFAULT_BREAK_EVEN` (and is listed in :attr:`SparseBackend.uncalibrated`); inference never times
layers or writes the table unless built with ``auto_calibrate=True``. ``break_even=`` (one value for
every layer) or ``overrides={layer name: value}`` force a plain rule instead: sparse below the value,
dense above it (``0`` keeps a layer on the plain dense conv, ``1`` makes it always sparse). The result
equals the reference backend to float rounding either way.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from deltatune.delta import convert
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    >>> net = convert(model, backend=SparseBackend(break_even=1.0))
    >>> x = torch.rand(1, 3, 16, 16)
    >>> _ = net(x); x[..., :4, :4] += 1
    >>> bool(torch.allclose(net(x), net.source(x), atol=1e-5))
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from deltatune.delta._sparse_kernels import SparseConv, sparse_supported
from deltatune.delta.backends import ReferenceBackend
from deltatune.delta.calibration import Calibration, LayerCalibration, default_path, signature
from deltatune.delta.native import available as native_available
from deltatune.delta.values import DeltaValue, count_true, zeros_in_layout

__all__ = ["SparseBackend", "LayerUse", "DEFAULT_BREAK_EVEN"]

#: Break-even used for a supported layer the calibration table does not hold (docs/design.md#speed-on-cpu:
#: the sparse kernel lost above ~35 % on a 3x3 64->64 layer; smaller layers lose earlier).
DEFAULT_BREAK_EVEN = 0.2


@dataclass
class LayerUse:
    """What the backend did for one conv call site over the frames it ran (frame 0 excluded)."""

    calls: int = 0
    sparse: int = 0
    dense: int = 0
    skipped: int = 0  # nothing updated: no work
    frac_sum: float = 0.0  # sum of updated-output fractions (mean = frac_sum / calls)
    #: over the sparse calls only, the fraction the calibrated sparse line is in (output pixels, or input
    #: pixels for an input-centric layer: ``LayerCalibration.by_input``); prices that line
    sparse_frac_sum: float = 0.0
    seconds: float = 0.0  # wall time in the kernel (only when ``profile`` is on)
    signature: str = ""
    break_even: float = 0.0

    @property
    def mean_frac(self) -> float:
        return self.frac_sum / self.calls if self.calls else 0.0

    @property
    def choice(self) -> str:
        """``sparse``, ``dense``, ``skip`` or ``mixed`` (different choices on different frames)."""
        kinds = [
            k
            for k, v in (
                ("sparse", self.sparse),
                ("dense", self.dense),
                ("skip", self.skipped),
            )
            if v
        ]
        return kinds[0] if len(kinds) == 1 else ("mixed" if kinds else "-")


class _Plan:
    """Per-conv cached data: the prepared sparse kernel (``None``: unsupported), signature, break-even."""

    def __init__(
        self,
        conv: nn.Conv2d,
        shape: tuple[int, ...],
        break_even: float,
        sig: str,
        calibration: LayerCalibration | None,
    ) -> None:
        self.kernel: SparseConv | None = SparseConv(conv) if sparse_supported(conv) else None
        w = conv.weight
        self.weight_version = w._version
        self.weight_ptr = w.data_ptr()
        self.shape = shape
        self.break_even = break_even
        self.signature = sig
        self.calibration = calibration  # measured costs (None: calibration off / forced break-even)


class SparseBackend(ReferenceBackend):
    """Dense/sparse per layer and per frame from measured break-even points (see the module doc).

    Args:
        break_even: one forced break-even for every layer (``None``: calibrated per layer shape).
        overrides: forced break-even by layer call-site name (wins over everything).
        calibration: a :class:`Calibration`, a JSON path, or ``None`` for this machine's default table.
        auto_calibrate: measure unseen layer shapes on first use and write them to the table (off by
            default: run :func:`~deltatune.delta.calibration.calibrate` first; unseen shapes then use
            :data:`DEFAULT_BREAK_EVEN`).
        profile: time every conv call (for per-layer time shares; adds a little overhead).

    The sparse kernels allocate and free many megabyte-sized temporaries per frame; glibc's default
    settings make that slow (see :func:`deltatune.delta.native.keep_freed_memory`, which the ``deltatune``
    command applies and a library user may call once).
    """

    name = "sparse"
    #: A frame whose input changed at >= a quarter of its pixels runs densely when that is exact (t = 0).
    dense_refresh = 0.25

    @property
    def channels_last(self) -> bool:  # type: ignore[override]
        """Channels-last activations when the compiled kernels are available (they gather whole pixels)."""
        return native_available()

    def __init__(
        self,
        *,
        break_even: float | None = None,
        overrides: dict[str, float] | None = None,
        calibration: Calibration | str | Path | None = None,
        auto_calibrate: bool = False,
        profile: bool = False,
    ) -> None:
        self.break_even = break_even
        self.overrides: dict[str, float] = dict(overrides or {})
        self._calibration = calibration
        self.auto_calibrate = auto_calibrate
        self.profile = profile
        self.usage: dict[str, LayerUse] = {}
        self._plans: dict[tuple[int, str], _Plan] = {}
        self._device_calibrations: dict[str, Calibration] = {}
        #: signatures of the layer shapes run without a calibration (they used :data:`DEFAULT_BREAK_EVEN`)
        self.uncalibrated: set[str] = set()

    # -- calibration -----------------------------------------------------------------------------
    @property
    def calibration(self) -> Calibration:
        """The CPU calibration cache in use (loaded on first access)."""
        if not isinstance(self._calibration, Calibration):
            path = self._calibration if self._calibration is not None else default_path()
            self._calibration = Calibration(path)
        return self._calibration

    def calibration_for(self, device: torch.device) -> Calibration:
        """The calibration of a device type: CPU is :attr:`calibration`; another device (CUDA) gets its
        own machine cache file, or an in-memory one when this backend was given an explicit calibration."""
        if device.type == "cpu":
            return self.calibration
        cal = self._device_calibrations.get(device.type)
        if cal is None:
            cal = Calibration(default_path(device) if self._calibration is None else None)
            self._device_calibrations[device.type] = cal
        return cal

    def layer_calibration(
        self, conv: nn.Conv2d, shape: tuple[int, ...], *, measure: bool | None = None
    ) -> LayerCalibration | None:
        """The cached (or, with ``measure``, freshly measured if missing) calibration of ``conv``."""
        store = self.calibration_for(conv.weight.device)
        cal = store.get(signature(conv, shape))
        if cal is None and (self.auto_calibrate if measure is None else measure):
            cal = store.measure(conv, shape)
        return cal

    def forget_plans(self) -> None:
        """Drop the per-layer plans, so that the next call of each layer reads the table again (after
        :func:`~deltatune.delta.calibration.calibrate` changed it)."""
        self._plans.clear()
        self.uncalibrated.clear()

    def _plan(self, conv: nn.Conv2d, shape: tuple[int, ...], name: str) -> _Plan:
        key = (id(conv), name)
        plan = self._plans.get(key)
        w = conv.weight
        if (
            plan is None
            or plan.shape != shape
            or plan.weight_version != w._version
            or (plan.weight_ptr != w.data_ptr())
        ):
            cal = None
            if not sparse_supported(conv):
                be = 0.0
            elif self.break_even is not None:
                be = float(self.break_even)
            else:  # one lookup (measuring an unseen shape when auto-calibrating) gives costs and break-even
                cal = self.layer_calibration(conv, shape)
                be = DEFAULT_BREAK_EVEN if cal is None else cal.break_even
                if cal is None:
                    self.uncalibrated.add(signature(conv, shape))
            plan = _Plan(conv, shape, be, signature(conv, shape), cal)
            self._plans[key] = plan
        return plan

    def reset_usage(self) -> None:
        """Clear the per-layer usage counters."""
        self.usage.clear()

    # -- kernels ---------------------------------------------------------------------------------
    #: the compiled kernel reads deltas only inside their masks (``x.buffer``) and can leave the zeros of
    #: its result unwritten (``zero_fill=False``)
    masked_io = True

    def reads_masked(self, conv: nn.Conv2d) -> bool:
        """Whether calls on ``conv`` read ``x.buffer`` inside the mask (the compiled sparse kernel, for the
        conv shapes it supports); a call that runs the dense conv reads ``x.data``."""
        return native_available() and sparse_supported(conv)

    def conv2d(
        self,
        x: DeltaValue,
        conv: nn.Conv2d,
        out_mask: Tensor | None = None,
        *,
        name: str = "",
        count: int | None = None,
        zero_fill: bool = True,
    ) -> Tensor:
        """See :meth:`Backend.conv2d`. The compiled sparse kernel reads ``x.buffer`` inside ``x.mask``;
        the dense conv, which reads every pixel, reads ``x.data``."""
        mask = x.mask
        dirty = not x.buffer_clean and out_mask is not None and mask is not None
        delta = x.buffer if dirty else x.data
        if out_mask is None:
            t0 = time.perf_counter() if self.profile else 0.0
            dense = conv._conv_forward(delta, conv.weight, None)
            self._count(name, conv, tuple(delta.shape), 1.0, "dense", t0)
            return dense
        shape = tuple(delta.shape)
        plan = self._plan(conv, shape, name)  # may calibrate (auto_calibrate): not part of the kernel's time
        t0 = time.perf_counter() if self.profile else 0.0
        forced = self.overrides.get(name, self.break_even)
        be = float(plan.break_even if forced is None else forced)
        ho, wo = int(out_mask.shape[-2]), int(out_mask.shape[-1])
        total = out_mask.numel()
        if count is None:  # not given by the conv op
            count = count_true(out_mask, out_mask)
        frac = count / total if total else 0.0
        price = self._price_fraction(plan, x, frac)
        kind = self._choose(plan, frac, price, be, forced is not None)
        y: Tensor | None = None
        if dirty and not (
            kind == "sparse" and plan.kernel is not None and plan.kernel.compiled(delta, out_mask, mask)
        ):
            delta, dirty = x.data, False  # every other path reads every pixel
        if kind == "skip":
            y = zeros_in_layout(delta, delta.shape[0], conv.out_channels, ho, wo)  # the others' layout
        elif kind == "sparse":
            assert plan.kernel is not None
            y = plan.kernel(delta, out_mask, in_mask=mask, zero_fill=zero_fill)[0]
        if y is None:
            y, kind = conv._conv_forward(delta, conv.weight, None), "dense"
        self._count(name, conv, shape, frac, kind, t0, be, price)
        return y

    @staticmethod
    def _price_fraction(plan: _Plan, x: DeltaValue, frac: float) -> float:
        """The updated fraction the layer's calibrated sparse line is in: ``frac`` (of the output
        pixels), or of the input pixels for an input-centric layer (``LayerCalibration.by_input``)."""
        cal = plan.calibration
        if cal is None or not cal.by_input:
            return frac
        mask = x.mask
        if mask is None:
            return 1.0
        if not mask.numel():
            return 0.0
        # the producer's count holds for the whole batch; a broadcast mask ([1, 1, H, W]) is counted as is
        count = x.count if x.count is not None and mask.shape[0] == x.shape[0] else count_true(mask, x)
        return count / mask.numel()

    def _choose(self, plan: _Plan, frac: float, price: float, be: float, forced: bool) -> str:
        """``skip``, ``sparse`` or ``dense``.

        A forced break-even (``break_even=`` / ``overrides``) decides by ``frac`` alone. Otherwise the
        calibrated costs decide: the sparse line at ``price`` (``frac``, or the updated input fraction for
        an input-centric layer) against the dense time."""
        if frac <= 0.0:
            return "skip"
        if plan.kernel is not None and (forced or plan.calibration is None):
            return "sparse" if be >= 1.0 or frac < be else "dense"
        cal = plan.calibration
        if plan.kernel is None or cal is None:
            return "dense"
        return "sparse" if cal.sparse_ms(price) <= cal.dense_ms else "dense"

    def _count(
        self,
        name: str,
        conv: nn.Conv2d,
        shape: tuple[int, ...],
        frac: float,
        kind: str,
        t0: float,
        break_even: float | None = None,
        price: float | None = None,
    ) -> None:
        use = self.usage.get(name)
        if use is None:
            use = self.usage[name] = LayerUse(signature=signature(conv, shape))
        use.calls += 1
        use.frac_sum += frac
        if kind == "sparse":
            use.sparse += 1
            use.sparse_frac_sum += frac if price is None else price
        elif kind == "dense":
            use.dense += 1
        else:
            use.skipped += 1
        if break_even is not None:
            use.break_even = break_even
        if self.profile:
            use.seconds += time.perf_counter() - t0
