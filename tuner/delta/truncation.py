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

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from deltatune.delta._base import DeltaOp, TruncationOp
from deltatune.delta._context import pixel_score
from deltatune.delta._gather import GATHER_MAX_FRACTION, gather_columns, gathered_pixels, scatter_columns
from deltatune.delta._tensor import DeltaTensor, count_true, expand_mask
from deltatune.delta.stats import LayerRecord
from deltatune.errors import StreamError

__all__ = ["InputSparsify", "PointwiseTruncation", "DenseIsland", "Densify"]


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

    def reset(self) -> None:
        self.ref = None

    def forward(self, x: Tensor) -> DeltaTensor:
        if not isinstance(x, Tensor):
            raise StreamError(f"input {self.name!r}: expected a tensor, got {type(x).__name__}")
        if self.ref is not None and x.shape != self.ref.shape:
            if not self.auto_reset:
                raise StreamError(
                    f"input {self.name!r}: frame shape {tuple(x.shape)} differs from the running stream's "
                    f"{tuple(self.ref.shape)} (batch size or resolution changed); call reset() first"
                )
            self.ref = None
        if self.ref is None:
            self.ref = x.detach().clone()
            self._record(x, None, first=True)
            self.log(first=True, value=x)
            return DeltaTensor(x, None, True)
        diff = x - self.ref
        score = pixel_score(diff, self.ctx.mode) if x.dim() >= 2 else diff.abs()
        if self.dilation > 1 and score.dim() == 4:
            score = F.max_pool2d(score, self.dilation, stride=1, padding=self.dilation // 2)
        active = _fire(score, torch.ones_like(score, dtype=torch.bool), self.threshold)
        delta = diff * active
        if self.ctx.accumulate:
            self.ref = torch.where(active, x, self.ref)
        else:
            self.ref = x.detach().clone()
        self._record(x, active, first=False)
        self.log(first=False, diff=diff, score=score, mask=active, delta=delta, ref=self.ref)
        return DeltaTensor(delta, active, False)

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

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor], kind: str, threshold: float | None = 0.0):
        super().__init__(name, threshold)
        self.fn = fn
        self.kind = kind
        self.a: Tensor | None = None  # last propagated input
        self.r: Tensor | None = None  # pending residual (accumulation buffer)

    def reset(self) -> None:
        self.a = None
        self.r = None

    def forward(self, x: DeltaTensor) -> DeltaTensor:
        if x.first:
            self.a = x.data.detach().clone()
            self.r = torch.zeros_like(self.a)
            out = self.fn(x.data)
            self._record(x.data, None, None)
            self.log(first=True, value=out)
            return DeltaTensor(out, None, True)
        assert self.a is not None and self.r is not None
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
            self.acc = [i.data.detach().clone() for i in inputs]
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
            self.y = x.data.detach().clone()
        else:
            assert self.y is not None
            self.y = self.y + x.data
        self.log(first=x.first, value=self.y)
        return self.y.clone()
