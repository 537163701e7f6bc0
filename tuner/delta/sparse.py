"""The ``sparse`` backend: per-pixel sparse convolution where it is measured to beat dense.

For every conv call on a non-first frame the backend looks at the updated-output fraction ``f`` (from
the output mask the conv op computes) and picks:

* nothing at all when no output pixel is updated (a zero delta; exact for any bias-free conv);
* the sparse gather -> GEMM -> scatter kernel when ``f`` is below the layer's break-even point;
* the dense conv (exactly the reference backend) otherwise, and always for grouped/depthwise convs.

Break-even points come from a per-machine :class:`~deltatune.delta.calibration.Calibration` (measured
the first time a layer shape is seen, then cached as JSON), unless forced with ``break_even=`` (one
value for every layer) or ``overrides={layer name: value}`` — ``0`` keeps a layer dense, ``1`` makes it
always sparse. The result equals the reference backend to float rounding either way.

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

from torch import Tensor, nn

from deltatune.delta._sparse_kernels import (
    ConvGeometry,
    active_pixels,
    geometry,
    sparse_conv2d,
    sparse_supported,
    zero_pixels,
)
from deltatune.delta._tensor import expand_mask
from deltatune.delta.backends import ReferenceBackend
from deltatune.delta.calibration import Calibration, LayerCalibration, default_path, signature

__all__ = ["SparseBackend", "LayerUse", "DEFAULT_BREAK_EVEN"]

#: Break-even used for a supported layer when calibration is off and nothing is cached (DESIGN §4: the
#: sparse kernel lost above ~35 % on a 3x3 64->64 layer; smaller layers lose earlier).
DEFAULT_BREAK_EVEN = 0.2


@dataclass
class LayerUse:
    """What the backend did for one conv call site over the frames it ran (frame 0 excluded)."""

    calls: int = 0
    sparse: int = 0
    dense: int = 0
    skipped: int = 0  # nothing updated: no work
    frac_sum: float = 0.0  # sum of updated-output fractions (mean = frac_sum / calls)
    seconds: float = 0.0  # wall time in the kernel (only when ``profile`` is on)
    signature: str = ""
    break_even: float = 0.0

    @property
    def mean_frac(self) -> float:
        return self.frac_sum / self.calls if self.calls else 0.0

    @property
    def choice(self) -> str:
        """``sparse``, ``dense``, ``skip`` or ``mixed`` (different choices on different frames)."""
        kinds = [k for k, v in (("sparse", self.sparse), ("dense", self.dense), ("skip", self.skipped)) if v]
        return kinds[0] if len(kinds) == 1 else ("mixed" if kinds else "-")


class _Plan:
    """Per-conv cached data: geometry, the GEMM weight, signature and break-even."""

    def __init__(self, conv: nn.Conv2d, shape: tuple[int, ...], break_even: float, sig: str) -> None:
        self.geometry: ConvGeometry | None = geometry(conv) if sparse_supported(conv) else None
        w = conv.weight.detach()
        self.weight2d = w.reshape(w.shape[0], -1).contiguous() if self.geometry is not None else None
        self.weight_version = w._version
        self.weight_ptr = w.data_ptr()
        self.shape = shape
        self.break_even = break_even
        self.signature = sig


class SparseBackend(ReferenceBackend):
    """Dense/sparse per layer and per frame from measured break-even points (see the module doc).

    Args:
        break_even: one forced break-even for every layer (``None``: calibrated per layer shape).
        overrides: forced break-even by layer call-site name (wins over everything).
        calibration: a :class:`Calibration`, a JSON path, or ``None`` for this machine's default cache.
        auto_calibrate: measure unseen layer shapes on first use (else use :data:`DEFAULT_BREAK_EVEN`).
        profile: time every conv call (for per-layer time shares; adds a little overhead).
    """

    name = "sparse"

    def __init__(self, *, break_even: float | None = None, overrides: dict[str, float] | None = None,
                 calibration: Calibration | str | Path | None = None, auto_calibrate: bool = True,
                 profile: bool = False) -> None:
        self.break_even = break_even
        self.overrides: dict[str, float] = dict(overrides or {})
        self._calibration = calibration
        self.auto_calibrate = auto_calibrate
        self.profile = profile
        self.usage: dict[str, LayerUse] = {}
        self._plans: dict[tuple[int, str], _Plan] = {}

    # -- calibration -----------------------------------------------------------------------------
    @property
    def calibration(self) -> Calibration:
        """The calibration cache in use (loaded on first access)."""
        if not isinstance(self._calibration, Calibration):
            path = self._calibration if self._calibration is not None else default_path()
            self._calibration = Calibration(path)
        return self._calibration

    def layer_calibration(self, conv: nn.Conv2d, shape: tuple[int, ...], *,
                          measure: bool | None = None) -> LayerCalibration | None:
        """The cached (or, with ``measure``, freshly measured if missing) calibration of ``conv``."""
        cal = self.calibration.get(signature(conv, shape))
        if cal is None and (self.auto_calibrate if measure is None else measure):
            cal = self.calibration.measure(conv, shape)
        return cal

    def recalibrate(self) -> None:
        """Forget cached break-even points: every layer shape is measured again on its next call."""
        self.calibration.layers.clear()
        self.calibration.save()
        self._plans.clear()

    def _resolve_break_even(self, conv: nn.Conv2d, shape: tuple[int, ...], name: str) -> float:
        if not sparse_supported(conv):
            return 0.0
        if self.break_even is not None:
            return float(self.break_even)
        cal = self.layer_calibration(conv, shape)
        return DEFAULT_BREAK_EVEN if cal is None else cal.break_even

    def _plan(self, conv: nn.Conv2d, shape: tuple[int, ...], name: str) -> _Plan:
        key = (id(conv), name)
        plan = self._plans.get(key)
        w = conv.weight
        if plan is None or plan.shape != shape or plan.weight_version != w._version or (
                plan.weight_ptr != w.data_ptr()):
            be = self._resolve_break_even(conv, shape, name)
            plan = _Plan(conv, shape, be, signature(conv, shape))
            self._plans[key] = plan
        return plan

    def reset_usage(self) -> None:
        """Clear the per-layer usage counters."""
        self.usage.clear()

    # -- kernels ---------------------------------------------------------------------------------
    def conv2d(self, delta: Tensor, mask: Tensor | None, conv: nn.Conv2d, out_mask: Tensor | None = None, *,
               name: str = "") -> Tensor:
        if out_mask is None:
            t0 = time.perf_counter() if self.profile else 0.0
            y = super().conv2d(delta, mask, conv)
            self._count(name, conv, tuple(delta.shape), 1.0, "dense", t0)
            return y
        shape = tuple(delta.shape)
        plan = self._plan(conv, shape, name)  # may calibrate: not part of the kernel's time
        t0 = time.perf_counter() if self.profile else 0.0
        be = float(self.overrides.get(name, plan.break_even))
        idx = active_pixels(out_mask)
        total = out_mask.numel()
        frac = idx.numel() / total if total else 0.0
        ho, wo = int(out_mask.shape[-2]), int(out_mask.shape[-1])
        if idx.numel() == 0:
            y = delta.new_zeros(delta.shape[0], conv.out_channels, ho, wo)
            kind = "skip"
        elif plan.geometry is not None and (frac < be or be >= 1.0):
            assert plan.weight2d is not None
            zero_pos = None if mask is None else zero_pixels(expand_mask(mask, delta))
            y = sparse_conv2d(delta, plan.weight2d, plan.geometry, (ho, wo), idx, zero_pos)
            kind = "sparse"
        else:
            y = super().conv2d(delta, mask, conv)
            kind = "dense"
        self._count(name, conv, shape, frac, kind, t0, be)
        return y

    def _count(self, name: str, conv: nn.Conv2d, shape: tuple[int, ...], frac: float, kind: str, t0: float,
               break_even: float | None = None) -> None:
        use = self.usage.get(name)
        if use is None:
            use = self.usage[name] = LayerUse(signature=signature(conv, shape))
        use.calls += 1
        use.frac_sum += frac
        if kind == "sparse":
            use.sparse += 1
        elif kind == "dense":
            use.dense += 1
        else:
            use.skipped += 1
        if break_even is not None:
            use.break_even = break_even
        if self.profile:
            use.seconds += time.perf_counter() - t0
