"""The delta ops with state: input sparsify, truncation at non-linearities, non-pointwise islands, densify.

DeltaCNN's rule itself is defined in :mod:`deltatune.delta.rule`; the ops here keep its per-stream
buffers (the input reference, ``a`` and ``r`` per non-linearity, ``acc``/``out`` per island, the dense
output) and apply it: on whole tensors, on the gathered updated pixels, or through the compiled kernels
that the tests hold to the rule (see that module's doc for which body is which). Frame 0 runs dense and
initialises every buffer from the dense values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from deltatune.delta._base import DeltaOp, TruncationOp
from deltatune.delta._gather import GATHER_MAX_FRACTION, gather_columns, gathered_pixels, scatter_columns
from deltatune.delta.native import native_for
from deltatune.delta.rule import input_step, island_step, pixel_score, refresh_due, truncation_step
from deltatune.delta.stats import LayerRecord
from deltatune.delta.values import (
    DeltaMasked,
    DeltaTensor,
    DeltaValue,
    ZeroCache,
    count_true,
    expand_mask,
    full_mask,
    mask_shape,
)
from deltatune.errors import StreamError, UnsupportedOpError

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
        lo, hi = (
            (base.min_val, base.max_val)
            if isinstance(base, nn.Hardtanh)
            else (arg(0, "min_val", -1.0), arg(1, "max_val", 1.0))
        )
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


def _record_truncation(
    op: TruncationOp, t: Tensor | torch.Size, updated: Tensor | None, fire: Tensor | None
) -> None:
    """Record how many pixels reached a truncation point (``updated``) and how many fired."""
    rec = op.ctx.recorder
    if rec is None or not rec.enabled:
        return
    total = count_true(None, t)
    if updated is None:
        rec.add(LayerRecord(op.ctx.frame, op.name, op.kind, 0, 0, total, total, total, total))
    else:
        rec.add(
            LayerRecord(
                op.ctx.frame,
                op.name,
                op.kind,
                0,
                0,
                total,
                count_true(updated, t),
                total,
                count_true(fire, t),
            )
        )


def _zero_like(cache: ZeroCache, x: DeltaValue) -> DeltaValue:
    """An all-zero delta (no updated pixel) shaped like ``x``, shared across frames via ``cache``."""
    key = (tuple(x.shape), x.dtype, x.device, x.channels_last)
    hit = cache.get(key)
    if hit is None:
        fmt = _CL if x.channels_last else torch.contiguous_format
        mask = torch.zeros(mask_shape(x), dtype=torch.bool, device=x.device)
        data = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=fmt).zero_()
        hit = cache.put(key, DeltaTensor(data, mask, False, 0))
    return hit  # type: ignore[return-value]


class _Compared(NamedTuple):
    """One input's comparison of a frame against ``ref`` (``ref`` already updated): the compiled step's
    ``delta`` (or ``None``), else the torch step's ``diff`` and ``score``; the active pixels and their
    number."""

    x: Tensor
    delta: Tensor | None
    diff: Tensor | None
    score: Tensor | None
    active: Tensor
    changed: int


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
        #: Whether the compiled step writes the zeros of its deltas (set at conversion from the readers)
        self.zero_fill = True
        #: this frame's comparison, made ahead of the graph by a network with several inputs (see
        #: :meth:`compare_ahead`); :meth:`forward` takes it
        self._pending: _Compared | None = None

    def reset(self) -> None:
        self.ref = None
        self._pending = None

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
        diff, score, active, self.ref = input_step(
            x, self.ref, self.threshold, self.ctx.mode, accumulate=self.ctx.accumulate, dilation=self.dilation
        )
        return diff, score, active, int(active.sum())

    def _compare_compiled(self, x: Tensor) -> tuple[Tensor, Tensor, int] | None:
        """:meth:`_compare` in one compiled pass: ``(delta, active, count)``, with ``ref`` updated the
        same way. The delta holds ``x - ref`` at the active pixels and zeros elsewhere, or, when no reader
        needs the zeros (``zero_fill`` off), anything elsewhere (a :class:`DeltaMasked` buffer).
        ``None`` when the kernel does not apply (no compiler, another device or dtype, the ``explain``
        log, which records ``diff`` and ``score``). An input dilation takes :meth:`_compare_dilated`."""
        if (
            self.ctx.log is not None or x.dim() != 4 or self.ref is None or not self.ctx.backend.channels_last
        ):  # the reference backend stays plain torch
            return None
        nk = native_for(x, self.ref)
        if nk is None:
            return None
        if self.dilation != 1:
            return self._compare_dilated(x, nk)
        threshold = -1.0 if self.threshold is None else float(self.threshold)
        delta, active, count, self.ref = nk.input_sparsify(
            x, self.ref, threshold, _MODE_CODES[self.ctx.mode], self.ctx.accumulate, self.zero_fill
        )
        return delta, active, count

    def _compare_dilated(self, x: Tensor, nk: Any) -> tuple[Tensor, Tensor, int]:
        """:meth:`_compare` with an input dilation, without max-pooling the scores: a pixel's window
        maximum is above the threshold exactly when some pixel of the window is, so the active mask is
        the undilated one grown by the window (the compiled mask kernel's box dilation, which ignores
        pixels outside the frame as the pooling's padding does). ``max_pool2d`` over a ``[N, 1, H, W]``
        score map took 4.5 ms for a 2 x 256 x 192 batch on 2 threads, a few times the rest of the step."""
        assert self.ref is not None
        diff = x - self.ref
        if self.threshold is None:
            active = full_mask(x)
        else:
            k, h, w = self.dilation, x.shape[-2], x.shape[-1]
            seed = pixel_score(diff, self.ctx.mode) > self.threshold
            active = nk.conv_out_mask(seed, k, k, 1, 1, k // 2, k // 2, 1, 1, h, w)[0]
        self.ref = torch.where(active, x, self.ref) if self.ctx.accumulate else x.detach().clone()
        return diff * active, active, int(active.sum())

    def _refresh_due(self, active: Tensor, count: int) -> bool:
        """Whether this frame runs densely: an exact dense refresh on ``ref``, or a key frame on change.
        A network with several inputs decides it once for all of them (``ctx.frame_dense``)."""
        ctx = self.ctx
        if ctx.frame_dense is not None:
            return ctx.frame_dense
        return refresh_due(count, active.numel(), ctx.dense_fraction)

    def _dense_frame(self, x: Tensor) -> Tensor:
        """The input a dense frame runs on: ``ref`` for the exact dense refresh; the frame itself for a
        key frame on change, which becomes the new reference (the stream restarts here). The frame is
        counted here when this input decided it alone (a network with several inputs counts it once)."""
        if not self.ctx.refresh_allowed:
            self.ref = x.detach().clone()
        if self.ctx.frame_dense is None:
            self.ctx.refreshed += 1
        return self.ref  # type: ignore[return-value]

    def _compared(self, x: Tensor) -> _Compared:
        """Compare frame ``x`` (prepared) against ``ref``, updating ``ref``."""
        fast = self._compare_compiled(x)
        if fast is not None:
            return _Compared(x, fast[0], None, None, fast[1], fast[2])
        diff, score, active, count = self._compare(x)
        return _Compared(x, None, diff, score, active, count)

    def compare_ahead(self, x: Tensor) -> tuple[int, int]:
        """For a network with several inputs, before its graph runs: compare frame ``x`` (prepared, with
        a running stream) now and keep the result for :meth:`forward`; returns ``(count, total)`` of the
        changed pixels, from which the network decides the frame's dense refresh or key frame for every
        input at once (:func:`~deltatune.delta.rule.frame_refresh_due`)."""
        c = self._compared(x)
        self._pending = c
        return c.changed, c.active.numel()

    def dense_refresh_input(self, x: Tensor) -> Tensor | None:
        """For :class:`~deltatune.delta.network.DeltaNetwork`'s lazy refresh: when frame ``x`` is a
        dense-refresh frame (see :meth:`forward`), update ``ref``, count the frame and return ``ref``
        (the network then runs the dense model on it and skips the delta graph); otherwise return
        ``None`` and change nothing."""
        if not isinstance(x, Tensor) or self.ref is None or x.shape != self.ref.shape:
            return None
        x = self._prepare(x)
        ref = self.ref
        c = self._compared(x)
        active, count = c.active, c.changed
        if not self._refresh_due(active, count):
            self.ref = ref
            return None
        return self._dense_frame(x)

    def forward(self, x: Tensor) -> DeltaValue:
        c, self._pending = self._pending, None
        if c is None:
            x = self._prepare(x)
            if self.ref is None:
                self.ref = x.detach().clone()
                self._record(x, None, first=True)
                self.log(first=True, value=x)
                return DeltaTensor(x, None, True)
            c = self._compared(x)
        # no explain log on the compiled path (``delta`` set): diff and score are not materialised
        x, delta, diff, score, active, count = c
        self._record(x, active, first=False)
        if self._refresh_due(active, count):
            # Network-wide dense fallback. With every later threshold 0 and accumulation on, the delta
            # network's output is exactly the dense model applied to ``ref`` (a pixel that does not fire
            # at threshold 0 has f(a + r) == f(a), so its state is interchangeable with a = a + r,
            # r = 0). Running this frame as a first frame on ``ref`` computes that densely and resets
            # every downstream buffer to the same state; only float rounding differs. A key frame on
            # change (thresholds above 0) runs as a first frame on x itself: the stream restarts here.
            dense = self._dense_frame(x)
            self.log(first=False, diff=diff, score=score, mask=active, refresh=True, ref=self.ref)
            return DeltaTensor(dense, None, True)
        if delta is not None:
            return (
                DeltaTensor(delta, active, False, count)
                if self.zero_fill
                else DeltaMasked(delta, active, count)
            )
        assert diff is not None
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

    def __init__(
        self,
        name: str,
        fn: Callable[[Tensor], Tensor],
        kind: str,
        threshold: float | None = 0.0,
        *,
        piecewise: Piecewise | None = None,
    ):
        super().__init__(name, threshold)
        self.fn = fn
        self.kind = kind
        #: ``fn`` as a :class:`Piecewise` (enables the compiled step), or ``None``
        self.piecewise = piecewise
        self.a: Tensor | None = None  # last propagated input
        self._r: Tensor | None = None  # pending residual (accumulation buffer); None = all zero
        self._zeros = ZeroCache()
        self._shared = False  # ``a`` still aliases a frame-0 activation: copy before writing into it
        #: Whether the compiled step writes the zeros of its output (set at conversion from the readers)
        self.zero_fill = True

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

    def forward(self, x: DeltaValue) -> DeltaValue:
        if x.first:
            # no copy yet: nothing writes into a dense activation, and a dense refresh frame
            # (see InputSparsify) followed by another one never needs one (copy-on-write, _own)
            self.a, self._r, self._shared = x.data.detach(), None, True
            out = self.fn(x.data)
            self._record(x.data, None, None)
            self.log(first=True, value=out)
            return DeltaTensor(out, None, True)
        if x.empty:  # no updated pixel: no state changes, nothing fires
            self._record(x.shape, x.mask, x.mask)
            return _zero_like(self._zeros, x)
        self._own()
        assert self.a is not None and self.r is not None
        if self.piecewise is not None and self.ctx.log is None and len(x.shape) == 4:
            compiled = self._forward_compiled(x)
            if compiled is not None:
                return compiled
        if x.mask is not None and self.ctx.log is None and len(x.shape) >= 3:
            gathered = self._forward_gathered(x)
            if gathered is not None:
                return gathered
        updated = expand_mask(x.mask, x.data)
        step = truncation_step(
            self.a, self.r, x.data, updated, self.fn, self.threshold, self.ctx.mode, self.ctx.accumulate
        )
        self.a, self.r = step.a, step.r
        self._record(x.data, updated, step.fire)
        self.log(
            first=False,
            delta_in=x.data,
            updated=updated,
            s=step.s,
            d=step.d,
            score=step.score,
            fire=step.fire,
            emitted=step.emitted,
            a=self.a,
            r=self.r,
        )
        return DeltaTensor(step.emitted, step.fire, False)

    def _own(self) -> None:
        """Make ``a`` a private buffer (channels-last when the backend wants it) and ``r`` concrete."""
        assert self.a is not None
        if self._shared:
            cl = self.a.dim() == 4 and self.ctx.backend.channels_last
            self.a = self.a.clone(memory_format=_CL if cl else torch.contiguous_format)
            self._shared = False
        if self._r is None:
            self._r = torch.zeros_like(self.a)

    def _forward_compiled(self, x: DeltaValue) -> DeltaValue | None:
        """The step of :meth:`forward` in one compiled call over the updated pixels (channels-last
        buffers, float32, CPU; :class:`Piecewise` ``fn``). ``None`` when that kernel does not apply."""
        self._own()
        assert self.a is not None and self._r is not None and self.piecewise is not None
        if x.dtype is not self.a.dtype or x.device != self.a.device:
            return None
        nk = native_for(self.a)
        if nk is None or not (
            self.a.is_contiguous(memory_format=_CL) and self._r.is_contiguous(memory_format=_CL)
        ):
            return None
        pw = self.piecewise
        slopes = None if pw.slopes is None else pw.slopes.detach()
        # the value as terms the kernel sums itself: a lazy residual sum as its addends (their masks
        # united), a lazy nearest upsampling as its coarse source and factor (read in place)
        parts = x.kernel_parts()
        masks = [p.mask for p, _ in parts]
        if any(m is None for m in masks):  # every pixel updated: the kernel reads every part everywhere
            tensors, masks = [p.data for p, _ in parts], []
        else:  # each part is read inside its own mask only: a masked buffer needs no zeroing
            tensors = [p.buffer for p, _ in parts]
        emitted, fire, fired = nk.truncate_pointwise(
            tensors,
            [f for _, f in parts],
            masks,
            self.a,
            self._r,
            -1.0 if self.threshold is None else float(self.threshold),
            _MODE_CODES[self.ctx.mode],
            self.ctx.accumulate,
            pw.slope,
            pw.lo,
            pw.hi,
            slopes,
            self.zero_fill,
        )
        rec = self.ctx.recorder
        if rec is not None and rec.enabled:  # counts only: ``emitted`` has x's shape, x.data is not read
            self._record(emitted, expand_mask(x.mask, emitted), fire)
        return (
            DeltaTensor(emitted, fire, False, fired) if self.zero_fill else DeltaMasked(emitted, fire, fired)
        )

    def _forward_gathered(self, x: DeltaValue) -> DeltaValue | None:
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
        # the gathered pixels as [1, C, P]: channels on dim 1 (per-channel functions such as PReLU see
        # them there), every gathered pixel updated
        a = gather_columns(a_all, b, pos).unsqueeze(0)
        r = gather_columns(r_all, b, pos).unsqueeze(0)
        d_in = gather_columns(data.reshape(n, c, -1), b, pos).unsqueeze(0)
        updated = torch.ones(1, 1, pos.shape[0], dtype=torch.bool, device=pos.device)
        step = truncation_step(
            a, r, d_in, updated, self.fn, self.threshold, self.ctx.mode, self.ctx.accumulate
        )
        scatter_columns(a_all, b, pos, step.a.squeeze(0))
        scatter_columns(r_all, b, pos, step.r.squeeze(0))
        emitted = data.new_zeros(data.shape)  # contiguous NCHW whatever the layout of ``data``
        scatter_columns(emitted.view(n, c, -1), b, pos, step.emitted.squeeze(0))
        fire_p = step.fire.reshape(-1)
        fire = torch.zeros(n, 1, *data.shape[2:], dtype=torch.bool, device=data.device)
        fire.view(-1)[flat] = fire_p
        rec = self.ctx.recorder
        if rec is not None and rec.enabled:
            total = count_true(None, data)
            rec.add(
                LayerRecord(
                    self.ctx.frame,
                    self.name,
                    self.kind,
                    0,
                    0,
                    total,
                    int(flat.numel()),
                    total,
                    int(fire_p.sum()),
                )
            )
        return DeltaTensor(emitted, fire, False)

    def _record(self, t: Tensor | torch.Size, updated: Tensor | None, fire: Tensor | None) -> None:
        _record_truncation(self, t, updated, fire)


class DenseIsland(TruncationOp):
    """A non-pointwise non-linear op (max pooling, or the dense fallback) with input/output buffers.

    ``fn`` maps the accumulated dense inputs to the dense output. ``out_mask`` maps the input masks to
    the output pixels that may have changed (``None`` = all). With ``n_delta`` set, only the first
    ``n_delta`` inputs are deltas; the rest are values the graph computes each frame (a functional
    layer's weights, amounts read from shapes: the same at every frame of a stream), which ``fn`` takes
    as ``consts=``.
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
        self.n_delta: int | None = None

    def reset(self) -> None:
        self.acc = None
        self.out = None

    def forward(self, *inputs: Any) -> DeltaValue:
        fn = self.fn
        if self.n_delta is not None:
            inputs, consts = inputs[: self.n_delta], inputs[self.n_delta :]
            fn = functools.partial(self.fn, consts=consts)
        if inputs[0].first:
            self.acc = [i.data.detach() for i in inputs]  # never written into: later frames add
            self.out = fn(*self.acc)
            if not (isinstance(self.out, Tensor) and self.out.is_floating_point()):
                got = f"a {self.out.dtype} map" if isinstance(self.out, Tensor) else type(self.out).__name__
                raise UnsupportedOpError(
                    f"{self.name}: the op returned {got}, where a delta value is one floating-point map; "
                    "wrap the code that uses it in a module passed in leaf_types, which the fallback runs "
                    "whole"
                )
            self._record(self.out, None, None)
            self.log(first=True, value=self.out)
            return DeltaTensor(self.out, None, True)
        assert self.acc is not None and self.out is not None
        masks = [i.mask for i in inputs]
        emitted, fire, self.acc, self.out, d, updated = island_step(
            self.acc,
            [i.data for i in inputs],
            self.out,
            fn,
            lambda y: expand_mask(self.out_mask(masks, y), y),
            self.threshold,
            self.ctx.mode,
            self.ctx.accumulate,
        )
        self._record(emitted, updated, fire)
        self.log(first=False, updated=updated, d=d, fire=fire, emitted=emitted)
        return DeltaTensor(emitted, fire, False)

    def _record(self, t: Tensor | torch.Size, updated: Tensor | None, fire: Tensor | None) -> None:
        _record_truncation(self, t, updated, fire)


class Densify(DeltaOp):
    """Accumulates the deltas reaching an output into the dense output value."""

    kind = "output"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.y: Tensor | None = None

    def reset(self) -> None:
        self.y = None

    def forward(self, x: DeltaValue) -> Tensor:
        if x.first:
            self.y = x.data.detach()  # never written into (later frames add); callers get a copy
        else:
            assert self.y is not None
            self.y = self.y + x.data
        self.log(first=x.first, value=self.y)
        return self.y.clone(memory_format=torch.contiguous_format)
