"""DeltaCNN's non-linear semantics: input sparsify, truncation with accumulation buffers, densify.

This module is the one place where DeltaCNN's state handling lives (DESIGN §3):

* **Input sparsify** keeps a reference frame ``ref``. Per pixel ``c = reduce_channels |x - ref|``
  (optionally max-pooled over a ``k x k`` window); the pixel is active iff ``c > t_in``. The delta is
  ``x - ref`` at active pixels, 0 elsewhere, and ``ref`` is overwritten at active pixels only.
* **Pointwise non-linearities** keep, per element, the last propagated input ``a`` and a residual ``r``.
  At updated pixels: ``r += d_in; s = a + r; d = f(s) - f(a)``; the pixel fires iff
  ``reduce_channels |d| > t``; firing emits ``d`` and sets ``a = s, r = 0``; otherwise it emits 0 and
  keeps ``r``.
* **Non-pointwise non-linear ops** (max pooling, and any op run through the opt-in dense fallback)
  keep the accumulated dense input ``acc`` and the last propagated output ``out``. Per frame:
  ``acc += d_in; y = f(acc); d = y - out`` at the updated output pixels; firing pixels emit ``d`` and set
  ``out = y``. For a pointwise ``f`` this is the same rule as above (``acc = a + r``, ``out = f(a)``).
* **Densify** keeps the dense output ``y`` and adds every delta to it.

Frame 0 runs dense and initialises every buffer from the dense values. With ``accumulate=False``
(an ablation, not DeltaCNN) a change that does not fire is *dropped* instead of kept: the residual is
zeroed, the island's ``out`` silently absorbs it, and the input reference is overwritten everywhere —
errors then drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deltatune.delta._base import DeltaOp, TruncationOp
from deltatune.delta._context import pixel_score
from deltatune.delta._gather import GATHER_MAX_FRACTION, gather_columns, gathered_pixels, scatter_columns
from deltatune.delta._tensor import (
    DeltaMasked,
    DeltaSum,
    DeltaTensor,
    DeltaUpsampled,
    ZeroCache,
    ZeroedFlag,
    count_true,
    expand_mask,
    mask_shape,
)
from deltatune.delta.native import native_for
from deltatune.delta.stats import LayerRecord
from deltatune.errors import StreamError

__all__ = ["InputSparsify", "PointwiseTruncation", "DenseIsland", "Densify", "Piecewise", "piecewise_of"]

_CL = torch.channels_last
#: Truncation modes as the compiled kernel numbers them.
_MODE_CODES = {"max": 0, "norm": 1, "rms": 2}


@dataclass(frozen=True)
class Piecewise:
    """``f(v) = clamp(v if v >= 0 else slope * v, lo, hi)``: ReLU, ReLU6, Hardtanh, LeakyReLU, PReLU and
    clamp, the non-linearities the compiled truncation kernel evaluates itself. ``slopes`` (PReLU's
    per-channel weight) overrides ``slope``."""

    slope: float = 0.0
    lo: float = -math.inf
    hi: float = math.inf
    slopes: Tensor | None = None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def piecewise_of(kind: str, fn: Any) -> Piecewise | None:
    """The :class:`Piecewise` form of a pointwise non-linearity ``fn`` of ``kind``, or ``None`` when it
    has none (sigmoid, GELU ...). ``fn`` is a module, a function, or a wrapper with bound constant
    ``fn``/``args``/``kwargs`` (from conversion). The result is checked against ``fn`` on probe values,
    so a wrong guess can only make the engine take its (slower) generic torch path."""
    base, args, kwargs = fn, (), {}
    if all(hasattr(fn, a) for a in ("fn", "args", "kwargs")):
        base, args, kwargs = fn.fn, tuple(fn.args), dict(fn.kwargs)

    def arg(i: int, key: str, default: float | None) -> float | None:
        v = args[i] if len(args) > i else kwargs.get(key, default)
        return None if v is None else _number(v)

    spec: Piecewise | None = None
    if kind == "relu":
        spec = Piecewise()
    elif kind == "relu6":
        spec = Piecewise(hi=6.0)
    elif kind == "leaky_relu":
        slope = base.negative_slope if isinstance(base, nn.LeakyReLU) else arg(0, "negative_slope", 0.01)
        spec = None if slope is None else Piecewise(slope=float(slope))
    elif kind == "hardtanh":
        lo, hi = ((base.min_val, base.max_val) if isinstance(base, nn.Hardtanh)
                  else (arg(0, "min_val", -1.0), arg(1, "max_val", 1.0)))
        spec = None if lo is None or hi is None else Piecewise(1.0, float(lo), float(hi))
    elif kind == "prelu" and isinstance(base, nn.PReLU):
        spec = Piecewise(slopes=base.weight)
    elif kind == "clamp":
        lo_v = args[0] if args else kwargs.get("min")
        hi_v = args[1] if len(args) > 1 else kwargs.get("max")
        lo = _number(lo_v) if lo_v is not None else -math.inf
        hi = _number(hi_v) if hi_v is not None else math.inf
        spec = None if lo is None or hi is None else Piecewise(1.0, lo, hi)
    return spec if spec is not None and _matches(spec, fn) else None


def _matches(spec: Piecewise, fn: Any) -> bool:
    """Whether ``fn`` equals ``spec`` on probe values around 0, the clamp bounds and far out."""
    c = 1 if spec.slopes is None else int(spec.slopes.numel())
    base = [-1e4, -6.5, -6.0, -1.5, -1.0, -0.25, -1e-3, 0.0, 1e-3, 0.25, 1.0, 1.5, 5.9, 6.0, 6.5, 1e4]
    extra = [b for b in (spec.lo, spec.hi) if math.isfinite(b)]
    vals = torch.tensor(base + [e + d for e in extra for d in (-1e-3, 0.0, 1e-3)], dtype=torch.float32)
    with torch.no_grad():
        dev = spec.slopes.device if spec.slopes is not None else torch.device("cpu")
        v = vals.to(dev).reshape(1, 1, -1, 1).expand(1, c, -1, 1).contiguous()
        try:
            got = fn(v)
        except Exception:  # noqa: BLE001 - a function that rejects the probe is simply not piecewise
            return False
        slope = spec.slope if spec.slopes is None else spec.slopes.detach().reshape(1, c, 1, 1)
        want = torch.where(v < 0, v * slope, v).clamp(spec.lo, spec.hi)
        return isinstance(got, Tensor) and got.shape == want.shape and bool(torch.equal(got, want))


def _record_truncation(op: TruncationOp, t: Tensor, updated: Tensor | None, fire: Tensor | None) -> None:
    """Record how many pixels reached a truncation point (``updated``) and how many fired."""
    rec = op.ctx.recorder
    if rec is None or not rec.enabled:
        return
    total = count_true(None, t)
    if updated is None:
        rec.add(LayerRecord(op.ctx.frame, op.name, op.kind, 0, 0, total, total, total, total))
    else:
        rec.add(LayerRecord(op.ctx.frame, op.name, op.kind, 0, 0, total, count_true(updated, t), total,
                            count_true(fire, t)))


def _zero_like(cache: ZeroCache, x: DeltaTensor) -> DeltaTensor:
    """An all-zero delta (no updated pixel) shaped like ``x`` (an empty delta: a plain or masked buffer,
    whose ``probe`` is the buffer), shared across frames via ``cache``."""
    d = x.probe
    key = (tuple(d.shape), d.dtype, d.device, d.is_contiguous(memory_format=_CL) and d.dim() == 4)
    hit = cache.get(key)
    if hit is None:
        fmt = _CL if key[3] else torch.contiguous_format
        mask = torch.zeros(mask_shape(d), dtype=torch.bool, device=d.device)
        hit = cache.put(key, DeltaTensor(torch.zeros_like(d, memory_format=fmt), mask, False, 0))
    return hit  # type: ignore[return-value]


def _fire(score: Tensor, updated: Tensor, threshold: float | None) -> Tensor:
    """Pixels that propagate: updated and (no threshold, or score above it)."""
    if threshold is None:
        return updated
    return updated & (score > threshold)


class InputSparsify(TruncationOp):
    """Turns dense frames into deltas against a per-pixel reference (threshold name ``input``)."""

    kind = "input"

    def __init__(self, name: str = "input", threshold: float | None = 0.0, *, dilation: int = 1) -> None:
        super().__init__(name, threshold)
        if dilation < 1 or dilation % 2 == 0:
            raise ValueError(f"input dilation must be a positive odd integer, got {dilation}")
        self.dilation = dilation
        self.auto_reset = False
        self.ref: Tensor | None = None
        self._zeroed = ZeroedFlag()  # a reader zeroed a delta: the kernel writes the zeros itself

    def reset(self) -> None:
        self.ref = None
        self._zeroed.set = False  # learned again per stream (an explain run reads everything)

    def _prepare(self, x: Tensor) -> Tensor:
        """``x`` in the backend's layout, checked against the running stream (restarting it when the
        shape changed and ``auto_reset`` is on)."""
        if not isinstance(x, Tensor):
            raise StreamError(f"input {self.name!r}: expected a tensor, got {type(x).__name__}")
        if x.dim() == 4 and self.ctx.backend.channels_last:
            x = x.contiguous(memory_format=_CL)  # every activation downstream keeps this layout
        if self.ref is not None and x.shape != self.ref.shape:
            if not self.auto_reset:
                raise StreamError(
                    f"input {self.name!r}: frame shape {tuple(x.shape)} differs from the running stream's "
                    f"{tuple(self.ref.shape)} (batch size or resolution changed); call reset() first"
                )
            self.ref = None
        return x

    def _compare(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
        """``(diff, score, active, count)`` of frame ``x`` against ``ref``, and update ``ref``."""
        assert self.ref is not None
        diff = x - self.ref
        score = pixel_score(diff, self.ctx.mode) if x.dim() >= 2 else diff.abs()
        if self.dilation > 1 and score.dim() == 4:
            score = F.max_pool2d(score, self.dilation, stride=1, padding=self.dilation // 2)
        active = _fire(score, torch.ones_like(score, dtype=torch.bool), self.threshold)
        if self.ctx.accumulate:
            self.ref = torch.where(active, x, self.ref)
        else:
            self.ref = x.detach().clone()
        return diff, score, active, int(active.sum())

    def _compare_compiled(self, x: Tensor) -> tuple[Tensor, Tensor, int] | None:
        """:meth:`_compare` in one compiled pass: ``(delta, active, count)``, with ``ref`` updated the
        same way. The delta holds ``x - ref`` at the active pixels and zeros elsewhere, or, until a
        reader needed the zeros (``_zeroed``), anything elsewhere (a :class:`DeltaMasked` buffer).
        ``None`` when the kernel does not apply (no compiler, another device or dtype, an input
        dilation, the ``explain`` log, which records ``diff`` and ``score``)."""
        if (self.ctx.log is not None or self.dilation != 1 or x.dim() != 4 or self.ref is None
                or not self.ctx.backend.channels_last):  # the reference backend stays plain torch
            return None
        nk = native_for(x, self.ref)
        if nk is None:
            return None
        threshold = -1.0 if self.threshold is None else float(self.threshold)
        delta, active, count, self.ref = nk.input_sparsify(
            x, self.ref, threshold, _MODE_CODES[self.ctx.mode], self.ctx.accumulate, self._zeroed.set)
        return delta, active, count

    def _refresh_due(self, active: Tensor, count: int) -> bool:
        ctx = self.ctx
        return ctx.refresh_allowed and ctx.refresh_fraction is not None and (
            count >= ctx.refresh_fraction * active.numel())

    def dense_refresh_input(self, x: Tensor) -> Tensor | None:
        """For :class:`~deltatune.delta.network.DeltaNetwork`'s lazy refresh: when frame ``x`` is a
        dense-refresh frame (see :meth:`forward`), update ``ref``, count the frame and return ``ref``
        (the network then runs the dense model on it and skips the delta graph); otherwise return
        ``None`` and change nothing."""
        if not isinstance(x, Tensor) or self.ref is None or x.shape != self.ref.shape:
            return None
        x = self._prepare(x)
        ref = self.ref
        fast = self._compare_compiled(x)
        active, count = (fast[1], fast[2]) if fast is not None else self._compare(x)[2:]
        if not self._refresh_due(active, count):
            self.ref = ref
            return None
        self.ctx.refreshed += 1
        return self.ref

    def forward(self, x: Tensor) -> DeltaTensor:
        x = self._prepare(x)
        if self.ref is None:
            self.ref = x.detach().clone()
            self._record(x, None, first=True)
            self.log(first=True, value=x)
            return DeltaTensor(x, None, True)
        fast = self._compare_compiled(x)
        if fast is not None:  # no explain log here: diff and score are not materialised
            delta, active, count = fast
            diff = score = None
        else:
            diff, score, active, count = self._compare(x)
        self._record(x, active, first=False)
        if self._refresh_due(active, count):
            # Network-wide dense fallback. With every later threshold 0 and accumulation on, the delta
            # network's output is exactly the dense model applied to ``ref`` (a pixel that does not fire
            # at threshold 0 has f(a + r) == f(a), so its state is interchangeable with a = a + r,
            # r = 0). Running this frame as a first frame on ``ref`` computes that densely and resets
            # every downstream buffer to the same state; only float rounding differs.
            self.ctx.refreshed += 1
            self.log(first=False, diff=diff, score=score, mask=active, refresh=True, ref=self.ref)
            return DeltaTensor(self.ref, None, True)
        if fast is not None:
            return self._zeroed.output(delta, active, count)
        delta = diff * active
        self.log(first=False, diff=diff, score=score, mask=active, delta=delta, ref=self.ref)
        return DeltaTensor(delta, active, False, count if active.dim() == 4 else None)

    def _record(self, x: Tensor, active: Tensor | None, *, first: bool) -> None:
        rec = self.ctx.recorder
        if rec is None or not rec.enabled:
            return
        total = count_true(None, x)
        n = total if first else count_true(active, x)
        rec.add(LayerRecord(self.ctx.frame, self.name, self.kind, 0, 0, total, total, total, n))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, threshold={self.threshold}, dilation={self.dilation}"


class PointwiseTruncation(TruncationOp):
    """A pointwise non-linearity ``f`` applied to deltas, with DeltaCNN's accumulation buffers."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor], kind: str, threshold: float | None = 0.0,
                 *, piecewise: Piecewise | None = None):
        super().__init__(name, threshold)
        self.fn = fn
        self.kind = kind
        #: ``fn`` as a :class:`Piecewise` (enables the compiled step), or ``None``
        self.piecewise = piecewise
        self.a: Tensor | None = None  # last propagated input
        self._r: Tensor | None = None  # pending residual (accumulation buffer); None = all zero
        self._zeros = ZeroCache()
        self._shared = False  # ``a`` still aliases a frame-0 activation: copy before writing into it
        self._zeroed = ZeroedFlag()  # a reader zeroed an output: the kernel writes the zeros itself

    @property
    def r(self) -> Tensor | None:
        """The residual (accumulation buffer): changes received but not yet propagated."""
        if self._r is None and self.a is not None:
            return torch.zeros_like(self.a)
        return self._r

    @r.setter
    def r(self, value: Tensor | None) -> None:
        self._r = value

    def reset(self) -> None:
        self.a = None
        self._r = None
        self._shared = False
        self._zeroed.set = False  # learned again per stream (an explain run reads everything)

    def forward(self, x: DeltaTensor) -> DeltaTensor:
        if x.first:
            # no copy yet: nothing writes into a dense activation, and a dense refresh frame
            # (see InputSparsify) followed by another one never needs one (copy-on-write, _own)
            self.a, self._r, self._shared = x.data.detach(), None, True
            out = self.fn(x.data)
            self._record(x.data, None, None)
            self.log(first=True, value=out)
            return DeltaTensor(out, None, True)
        if x.empty:  # no updated pixel: no state changes, nothing fires
            self._record(x.probe, x.mask, x.mask)
            return _zero_like(self._zeros, x)
        self._own()
        assert self.a is not None and self.r is not None
        if self.piecewise is not None and self.ctx.log is None and x.probe.dim() == 4:
            compiled = self._forward_compiled(x)
            if compiled is not None:
                return compiled
        if x.mask is not None and self.ctx.log is None and x.data.dim() >= 3:
            gathered = self._forward_gathered(x)
            if gathered is not None:
                return gathered
        updated = expand_mask(x.mask, x.data)
        r = self.r + x.data
        s = self.a + r
        d = self.fn(s) - self.fn(self.a)
        score = pixel_score(d, self.ctx.mode)
        fire = _fire(score, updated, self.threshold)
        emitted = d * fire
        self.a = torch.where(fire, s, self.a)
        if self.ctx.accumulate:
            self.r = torch.where(fire, torch.zeros_like(r), r)
        else:
            self.r = torch.where(updated, torch.zeros_like(r), r)
        self._record(x.data, updated, fire)
        self.log(first=False, delta_in=x.data, updated=updated, s=s, d=d, score=score, fire=fire,
                 emitted=emitted, a=self.a, r=self.r)
        return DeltaTensor(emitted, fire, False)

    def _own(self) -> None:
        """Make ``a`` a private buffer (channels-last when the backend wants it) and ``r`` concrete."""
        assert self.a is not None
        if self._shared:
            cl = self.a.dim() == 4 and self.ctx.backend.channels_last
            self.a = self.a.clone(memory_format=_CL if cl else torch.contiguous_format)
            self._shared = False
        if self._r is None:
            self._r = torch.zeros_like(self.a)

    def _forward_compiled(self, x: DeltaTensor) -> DeltaTensor | None:
        """The step of :meth:`forward` in one compiled call over the updated pixels (channels-last
        buffers, float32, CPU; :class:`Piecewise` ``fn``). ``None`` when that kernel does not apply."""
        self._own()
        assert self.a is not None and self._r is not None and self.piecewise is not None
        nk = native_for(x.probe, self.a)
        if nk is None or not (self.a.is_contiguous(memory_format=_CL)
                              and self._r.is_contiguous(memory_format=_CL)):
            return None
        pw = self.piecewise
        slopes = None if pw.slopes is None else pw.slopes.detach()
        # a lazy residual sum goes in as its addends (the kernel sums them and unites their masks), a lazy
        # nearest upsampling as its coarse source and factor (the kernel reads it in place)
        parts = x.parts if isinstance(x, DeltaSum) and not x.computed else [x]
        parts = [(p.source, p.factor) if isinstance(p, DeltaUpsampled) and not p.computed else (p, 1)
                 for p in parts]
        masks = [p.mask for p, _ in parts]
        if any(m is None for m in masks):  # every pixel updated: the kernel reads every part everywhere
            tensors, masks = [p.data for p, _ in parts], []
        else:  # each part is read inside its own mask only: no need to zero a DeltaMasked buffer
            tensors = [p.raw if isinstance(p, DeltaMasked) else p.data for p, _ in parts]
        emitted, fire, fired = nk.truncate_pointwise(
            tensors, [f for _, f in parts], masks,
            self.a, self._r, -1.0 if self.threshold is None else float(self.threshold),
            _MODE_CODES[self.ctx.mode], self.ctx.accumulate, pw.slope, pw.lo, pw.hi, slopes, self._zeroed.set)
        rec = self.ctx.recorder
        if rec is not None and rec.enabled:  # counts only: ``emitted`` has x's shape, x.data is not read
            self._record(emitted, expand_mask(x.mask, emitted), fire)
        return self._zeroed.output(emitted, fire, fired)

    def _forward_gathered(self, x: DeltaTensor) -> DeltaTensor | None:
        """The step of :meth:`forward` computed on the updated pixels only (gather -> step -> scatter,
        buffers updated in place): the same values with work proportional to the updated pixels.
        Returns ``None`` (take the whole-tensor step) when too many pixels are updated for this to pay."""
        assert x.mask is not None and self.a is not None and self.r is not None
        px = gathered_pixels(x.mask, x.data, GATHER_MAX_FRACTION)
        if px is None:
            return None
        b, pos, flat = px
        data = x.data
        n, c = data.shape[0], data.shape[1]
        # our own buffers: the views below write into them
        self.a, self.r = self.a.contiguous(), self.r.contiguous()
        a_all, r_all = self.a.view(n, c, -1), self.r.view(n, c, -1)
        a = gather_columns(a_all, b, pos)
        r = gather_columns(r_all, b, pos) + gather_columns(data.reshape(n, c, -1), b, pos)
        s = a + r
        # [C, P] -> [1, C, P] so that per-channel functions (PReLU) see channels on dim 1
        d = (self.fn(s.unsqueeze(0)) - self.fn(a.unsqueeze(0))).squeeze(0)
        if self.threshold is None:
            fire_p = torch.ones(pos.shape, dtype=torch.bool, device=pos.device)
        else:  # pixel_score over channels: the channel dim of [C, P] is dim 0, so score [1, C, P]
            fire_p = pixel_score(d.unsqueeze(0), self.ctx.mode).reshape(-1) > self.threshold
        f = fire_p.unsqueeze(0)
        scatter_columns(a_all, b, pos, torch.where(f, s, a))
        keep = torch.where(f, torch.zeros_like(r), r) if self.ctx.accumulate else torch.zeros_like(r)
        scatter_columns(r_all, b, pos, keep)
        emitted = data.new_zeros(data.shape)  # contiguous NCHW whatever the layout of ``data``
        scatter_columns(emitted.view(n, c, -1), b, pos, d * f)
        fire = torch.zeros(n, 1, *data.shape[2:], dtype=torch.bool, device=data.device)
        fire.view(-1)[flat] = fire_p
        rec = self.ctx.recorder
        if rec is not None and rec.enabled:
            total = count_true(None, data)
            rec.add(LayerRecord(self.ctx.frame, self.name, self.kind, 0, 0, total, int(flat.numel()), total,
                                int(fire_p.sum())))
        return DeltaTensor(emitted, fire, False)

    def _record(self, t: Tensor, updated: Tensor | None, fire: Tensor | None) -> None:
        _record_truncation(self, t, updated, fire)


class DenseIsland(TruncationOp):
    """A non-pointwise non-linear op (max pooling, or the dense fallback) with input/output buffers.

    ``fn`` maps the accumulated dense inputs to the dense output. ``out_mask`` maps the input masks to
    the output pixels that may have changed (``None`` = all).
    """

    def __init__(
        self,
        name: str,
        fn: Callable[..., Tensor],
        kind: str,
        out_mask: Callable[[list[Tensor | None], Tensor], Tensor | None],
        threshold: float | None = 0.0,
    ) -> None:
        super().__init__(name, threshold)
        self.fn = fn
        self.kind = kind
        self.out_mask = out_mask
        self.acc: list[Tensor] | None = None
        self.out: Tensor | None = None

    def reset(self) -> None:
        self.acc = None
        self.out = None

    def forward(self, *inputs: DeltaTensor) -> DeltaTensor:
        if inputs[0].first:
            self.acc = [i.data.detach() for i in inputs]  # never written into: later frames add
            self.out = self.fn(*self.acc)
            self._record(self.out, None, None)
            self.log(first=True, value=self.out)
            return DeltaTensor(self.out, None, True)
        assert self.acc is not None and self.out is not None
        self.acc = [a + i.data for a, i in zip(self.acc, inputs, strict=True)]
        y = self.fn(*self.acc)
        d = y - self.out
        upd = self.out_mask([i.mask for i in inputs], y)
        updated = expand_mask(upd, y)
        score = pixel_score(d, self.ctx.mode) if y.dim() >= 2 else d.abs()
        fire = _fire(score, updated, self.threshold)
        emitted = d * fire
        if self.ctx.accumulate:
            self.out = torch.where(fire, y, self.out)
        else:
            self.out = torch.where(updated, y, self.out)
        self._record(y, updated, fire)
        self.log(first=False, updated=updated, d=d, score=score, fire=fire, emitted=emitted)
        return DeltaTensor(emitted, fire, False)

    def _record(self, t: Tensor, updated: Tensor | None, fire: Tensor | None) -> None:
        _record_truncation(self, t, updated, fire)


class Densify(DeltaOp):
    """Accumulates the deltas reaching an output into the dense output value."""

    kind = "output"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.y: Tensor | None = None

    def reset(self) -> None:
        self.y = None

    def forward(self, x: DeltaTensor) -> Tensor:
        if x.first:
            self.y = x.data.detach()  # never written into (later frames add); callers get a copy
        else:
            assert self.y is not None
            self.y = self.y + x.data
        self.log(first=x.first, value=self.y)
        return self.y.clone(memory_format=torch.contiguous_format)
