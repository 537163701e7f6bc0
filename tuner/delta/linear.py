"""Linear delta operations: they act on deltas directly and carry no per-stream state.

A linear op ``g(x) = L(x) + b`` is applied densely on frame 0 and as ``L(delta)`` afterwards (bias and
BatchNorm offsets only on frame 0). Its updated output pixels are those whose receptive field touches
an updated input pixel; for structural ops (pooling, upsampling, padding, reshapes, slicing) they are
found by applying the op itself to the 0/1 input mask: every such op has non-negative weights, so an
output pixel is non-zero exactly when its support touches an updated pixel.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten, tree_map

from deltatune.delta._base import DeltaOp
from deltatune.delta.native import native_for
from deltatune.delta.stats import LayerRecord
from deltatune.delta.values import (
    DeltaMasked,
    DeltaSum,
    DeltaTensor,
    DeltaUpsampled,
    DeltaValue,
    ZeroCache,
    any_per_sample,
    count_true,
    mask_shape,
    union,
)
from deltatune.errors import StreamError, UnsupportedOpError

__all__ = [
    "Invoker",
    "ConvOp",
    "ConvTransposeOp",
    "LinearLayerOp",
    "ChannelAffineOp",
    "StructuralOp",
    "AddSubOp",
    "CatOp",
    "PadOp",
    "MetaOp",
    "delta_leaves",
]

Invoker = Callable[..., Any]


def _is_dt(v: Any) -> bool:
    return isinstance(v, DeltaValue)


def delta_leaves(args: Any) -> list[DeltaValue]:
    """All :class:`DeltaValue` values inside a (nested) argument structure."""
    leaves, _ = tree_flatten(args)
    return [v for v in leaves if _is_dt(v)]


def _data(args: Any) -> Any:
    return tree_map(lambda v: v.data if _is_dt(v) else v, args)


def _mask_as_float(v: DeltaValue) -> Tensor:
    assert v.mask is not None
    return v.mask.to(v.dtype).expand(mask_shape(v))


def _wrap(out: Any, masks: Any, first: bool) -> Any:
    if isinstance(out, Tensor):
        return DeltaTensor(out, masks, first)
    if isinstance(out, (tuple, list)):
        ms = masks if isinstance(masks, (tuple, list)) else [masks] * len(out)
        return type(out)(_wrap(o, m, first) for o, m in zip(out, ms, strict=True))
    return out


def _mark_empty(out: Any) -> Any:
    """Mark every delta in a (nested) result as carrying no change."""
    if isinstance(out, DeltaValue):
        out.count = 0
    elif isinstance(out, (tuple, list)):
        for o in out:
            _mark_empty(o)
    return out


def _masks_like(out: Any, mout: Any, *, coarse: bool = True) -> Any:
    """Turn the op's output on 0/1 masks into bool masks of each output's mask shape. An output whose
    ``mout`` fits neither its mask shape nor its own shape gets one flag per sample when ``coarse``, else
    ``None``."""
    if isinstance(out, Tensor):
        if isinstance(mout, Tensor) and tuple(mout.shape) == mask_shape(out):
            return mout != 0
        if isinstance(mout, Tensor) and out.dim() >= 3 and mout.shape == out.shape:
            return mout.ne(0).any(dim=1, keepdim=True)  # the op ran on the mask of every channel
        if isinstance(mout, Tensor) and coarse:
            # the op mixed channels and pixels (flatten to a vector ...): per-sample granularity
            flags = mout.reshape(mout.shape[0], -1).ne(0).any(dim=1) if mout.dim() else mout.ne(0)
            return flags.reshape(out.shape[0], *([1] * (out.dim() - 1))).expand(mask_shape(out))
        return None
    if isinstance(out, (tuple, list)):
        ms = mout if isinstance(mout, (tuple, list)) else [mout] * len(out)
        if len(ms) != len(out):  # chunk(2) of a one-channel mask gives one piece, not two
            return None
        return [_masks_like(o, m, coarse=coarse) for o, m in zip(out, ms, strict=True)]
    return None


def _float_mask(v: Any, *, every_channel: bool) -> Any:
    """A delta's mask as 0/1 values of its dtype (other arguments as they are): one channel, or repeated
    over every channel (contiguous, so that a ``view`` of it works)."""
    if not _is_dt(v):
        return v
    m = _mask_as_float(v)
    return m.expand(v.shape).contiguous() if every_channel else m


def _all_found(masks: Any) -> bool:
    """Whether every output got a mask (:func:`_masks_like`, ``coarse=False``, gives ``None`` where not)."""
    if isinstance(masks, list):
        return all(map(_all_found, masks))
    return masks is not None


def structural_mask(invoke: Invoker, args: tuple, kwargs: dict, out: Any) -> Any:
    """Updated-pixel masks of ``invoke``'s outputs, found by running it on the 0/1 input masks: first on
    the masks as they are (one channel), then, for an op that needs its channels (a pixel or channel
    shuffle, a view that splits the channels), on the masks repeated over every channel. An op that mixes
    channels and pixels (a flatten) gets one flag per sample."""
    dts = delta_leaves((args, kwargs))
    if any(d.mask is None for d in dts):
        return None
    first_out = None
    for every_channel in (False, True):
        margs, mkwargs = tree_map(functools.partial(_float_mask, every_channel=every_channel), (args, kwargs))
        try:
            mout = invoke(*margs, **mkwargs)
        except (RuntimeError, ValueError, IndexError, TypeError):
            continue
        masks = _masks_like(out, mout, coarse=False)
        if _all_found(masks):
            return masks
        first_out = mout if first_out is None else first_out
    if first_out is not None and _all_found(coarse_masks := _masks_like(out, first_out)):
        return coarse_masks
    flags = torch.stack(
        [
            d.mask.reshape(d.mask.shape[0], -1).any(dim=1)  # type: ignore[union-attr]
            for d in dts
        ]
    ).any(dim=0)
    return _masks_like(out, flags.to(torch.float32))


def _record(
    op: DeltaOp,
    dense: int | Callable[[], int],
    delta: int | Callable[[], int],
    x: Tensor | torch.Size,
    min_: Tensor | None,
    y: Tensor,
    mout: Tensor | None,
    first: bool,
) -> None:
    """Record one call's MACs and pixel counts; ``dense``/``delta`` may be thunks, evaluated only when
    the recorder is on (counting pixels costs tensor ops that timed runs must not pay)."""
    rec = op.ctx.recorder
    if rec is None or not rec.enabled:
        return
    n_dense = dense() if callable(dense) else dense
    n_delta = delta() if callable(delta) else delta
    pin, pout = count_true(None, x), count_true(None, y)
    if first:
        rec.add(LayerRecord(op.ctx.frame, op.name, op.kind, n_dense, n_dense, pin, pin, pout, pout))
    else:
        rec.add(
            LayerRecord(
                op.ctx.frame,
                op.name,
                op.kind,
                n_dense,
                n_delta,
                pin,
                count_true(min_, x),
                pout,
                count_true(mout, y),
            )
        )


def _same_frame(op: DeltaOp, values: list[DeltaValue]) -> bool:
    """Whether ``values`` (the delta operands of a merge) are all first (dense) values; raises when some
    are and others are deltas, which has no meaning (a dense value plus a change is neither). The
    network decides a dense frame for all its inputs at once, so this only guards that promise."""
    first = values[0].first
    if any(v.first != first for v in values[1:]):
        raise RuntimeError(
            f"{op.name}: a dense (first-frame) value meets a delta; every input of a frame must run "
            "dense or every input as deltas (an engine bug: please report it)"
        )
    return first


def _masks_of(out: Tensor, masks: list[Tensor | None]) -> Tensor | None:
    """The updated pixels of ``out``, a broadcasting merge of deltas with ``masks``: their union, each
    broadcast to ``out``'s mask shape as its delta is to ``out`` (a ``[N, 1, 1, 1]`` mask of a
    ``[N, C, 1, 1]`` delta marks every pixel of its sample). A mask that cannot be placed so (its delta
    has fewer dims than ``out``) gives ``None``: every pixel may have changed."""
    ms: list[Tensor | None] = []
    for m in masks:
        if m is None or m.dim() != out.dim():
            return None
        want = mask_shape(out)
        ms.append(m if tuple(m.shape) == want else m.expand(want).contiguous())
    return union(ms)


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class ConvOp(DeltaOp):
    """``nn.Conv2d`` (BatchNorm already folded in): bias on frame 0, receptive-field masks, MACs."""

    kind = "conv"

    def __init__(self, name: str, conv: nn.Conv2d) -> None:
        super().__init__(name)
        self.conv = conv
        self._zeros = ZeroCache()
        kh, kw = conv.kernel_size
        self.macs_per_pixel = conv.out_channels * (conv.in_channels // conv.groups) * kh * kw
        if isinstance(conv.padding, str):
            pads = []
            for k, d in zip(conv.kernel_size, conv.dilation, strict=True):
                total = 0 if conv.padding == "valid" else d * (k - 1)
                pads.append((total // 2, total - total // 2))
            self._mask_pad = (pads[1][0], pads[1][1], pads[0][0], pads[0][1])
        else:
            ph, pw = conv.padding
            self._mask_pad = (pw, pw, ph, ph)
        (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
        #: the compiled mask kernel's arguments: kernel, stride, top/left padding, dilation
        self._mask_geometry = (kh, kw, sh, sw, self._mask_pad[2], self._mask_pad[0], dh, dw)
        self._native_mask = conv.padding_mode == "zeros"
        self._out_hw: dict[tuple[int, int], tuple[int, int]] = {}
        #: Whether the output's zeros are written (set at conversion from who reads the output: ``False``
        #: only when every reader reads inside masks, see ``deltatune.delta.convert.plan_zero_fill``)
        self.zero_fill = True

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output spatial size for an ``h x w`` input."""
        hit = self._out_hw.get((h, w))
        if hit is None:
            c = self.conv
            (kh, kw), (sh, sw), (dh, dw) = c.kernel_size, c.stride, c.dilation
            pl, pr, pt, pb = self._mask_pad
            hit = self._out_hw[(h, w)] = (
                (h + pt + pb - dh * (kh - 1) - 1) // sh + 1,
                (w + pl + pr - dw * (kw - 1) - 1) // sw + 1,
            )
        return hit

    def out_mask_count(self, mask: Tensor) -> tuple[Tensor, int | None]:
        """:meth:`out_mask` and, when it comes for free (compiled kernel), its number of set pixels."""
        if (
            self._native_mask
            and mask.dim() == 4
            and mask.dtype == torch.bool
            and ((nk := native_for(mask)) is not None)
        ):
            ho, wo = self.out_hw(mask.shape[-2], mask.shape[-1])
            return nk.conv_out_mask(mask, *self._mask_geometry, ho, wo)
        return self._torch_out_mask(mask), None

    def out_mask(self, mask: Tensor) -> Tensor:
        """Output pixels whose receptive field touches an updated input pixel."""
        return self.out_mask_count(mask)[0]

    def _torch_out_mask(self, mask: Tensor) -> Tensor:
        m = mask.to(torch.float32)
        if any(self._mask_pad):
            mode = "constant" if self.conv.padding_mode == "zeros" else self.conv.padding_mode
            m = F.pad(m, self._mask_pad, mode=mode)
        return F.max_pool2d(m, self.conv.kernel_size, self.conv.stride, 0, self.conv.dilation) > 0

    def forward(self, x: DeltaValue) -> DeltaValue:
        if x.first:
            if x.data.dim() != 4:  # torch's conv takes an unbatched [C, H, W]; the rule reads dim 1 as C
                raise StreamError(
                    f"conv {self.name!r}: input of shape {tuple(x.data.shape)}; a delta network takes "
                    "batched frames [N, C, H, W], one stream per batch entry (add the batch dimension: "
                    "x[None])"
                )
            y = self.conv(x.data)
            dense = self.macs_per_pixel * count_true(None, y)
            _record(self, dense, dense, x.data, None, y, None, True)
            return DeltaTensor(y, None, True)
        mout, count = (None, None) if x.mask is None or x.empty else self.out_mask_count(x.mask)
        if x.empty or count == 0:  # nothing updated: a (shared) zero delta, no kernel call
            zero = self._zero_out(x)
            _record(
                self,
                lambda: self.macs_per_pixel * count_true(None, zero.data),
                0,
                x.shape,
                x.mask,
                zero.data,
                zero.mask,
                False,
            )
            self.log(updated_in=x.mask, updated_out=zero.mask, delta_out=zero.data)
            return zero
        be = self.ctx.backend
        # a backend with masked I/O may leave the result's zeros outside ``mout`` unwritten when nothing
        # downstream reads them (decided at conversion); the explain log reads every value
        masked_out = be.masked_io and not self.zero_fill and mout is not None and self.ctx.log is None
        y = be.conv2d(x, self.conv, mout, name=self.name, count=count, zero_fill=not masked_out)
        out: DeltaValue = DeltaTensor(y, mout, False, count)
        if masked_out and mout is not None:
            out = DeltaMasked(y, mout, count)
        _record(
            self,
            lambda: self.macs_per_pixel * count_true(None, y),
            lambda: self.macs_per_pixel * count_true(mout, y),
            x.shape,
            x.mask,
            y,
            mout,
            False,
        )
        self.log(updated_in=x.mask, updated_out=mout, delta_out=y)
        return out

    def _zero_out(self, x: DeltaValue) -> DeltaValue:
        n, _, h, w = x.shape
        ho, wo = self.out_hw(int(h), int(w))
        cl = x.channels_last
        key = (int(n), ho, wo, x.dtype, x.device, cl)
        hit = self._zeros.get(key)
        if hit is None:
            fmt = torch.channels_last if cl else torch.contiguous_format
            y = torch.empty(
                int(n), self.conv.out_channels, ho, wo, dtype=x.dtype, device=x.device, memory_format=fmt
            ).zero_()
            mask = torch.zeros(int(n), 1, ho, wo, dtype=torch.bool, device=x.device)
            hit = self._zeros.put(key, DeltaTensor(y, mask, False, 0))
        return hit  # type: ignore[return-value]


class ConvTransposeOp(DeltaOp):
    """``nn.ConvTranspose2d``: counted per updated *input* pixel (each scatters a k x k patch)."""

    kind = "deconv"
    _ones: Tensor

    def __init__(self, name: str, conv: nn.ConvTranspose2d) -> None:
        super().__init__(name)
        self.conv = conv
        kh, kw = conv.kernel_size
        self.macs_per_pixel = conv.in_channels * (conv.out_channels // conv.groups) * kh * kw
        self.register_buffer("_ones", torch.ones(1, 1, kh, kw), persistent=False)

    def forward(self, x: DeltaValue) -> DeltaValue:
        if x.first:
            y = self.conv(x.data)
            dense = self.macs_per_pixel * count_true(None, x.data)
            _record(self, dense, dense, x.data, None, y, None, True)
            return DeltaTensor(y, None, True)
        y = self.ctx.backend.conv_transpose2d(x, self.conv)
        mout = None
        if x.mask is not None:
            c = self.conv
            pad = c.padding  # a tuple: ConvTranspose2d takes no string padding
            mout = (
                F.conv_transpose2d(
                    x.mask.to(self._ones.dtype),
                    self._ones,
                    None,
                    c.stride,
                    pad,  # type: ignore[arg-type]
                    c.output_padding,
                    1,
                    c.dilation,
                )
                > 0
            )
        _record(
            self,
            lambda: self.macs_per_pixel * count_true(None, x.data),
            lambda: self.macs_per_pixel * count_true(x.mask, x.data),
            x.data,
            x.mask,
            y,
            mout,
            False,
        )
        return DeltaTensor(y, mout, False)


class LinearLayerOp(DeltaOp):
    """``nn.Linear``: a sample whose input changed at all costs its dense MACs."""

    kind = "linear"

    def __init__(self, name: str, lin: nn.Linear) -> None:
        super().__init__(name)
        self.lin = lin

    def forward(self, x: DeltaValue) -> DeltaValue:
        rows_per_sample = math.prod(x.data.shape[1:-1]) if x.data.dim() > 2 else 1
        per_sample = rows_per_sample * self.lin.in_features * self.lin.out_features
        n = x.data.shape[0]
        if x.first:
            y = self.lin(x.data)
            _record(self, per_sample * n, per_sample * n, x.data, None, y, None, True)
            return DeltaTensor(y, None, True)
        y = self.ctx.backend.linear(x, self.lin)
        flags = any_per_sample(x.mask, y.dim(), n, y.device)
        mout = None if flags is None else flags.expand(mask_shape(y))
        active = n if flags is None else int(flags.sum().item())
        _record(self, per_sample * n, per_sample * active, x.data, x.mask, y, mout, False)
        return DeltaTensor(y, mout, False)


class ChannelAffineOp(DeltaOp):
    """A BatchNorm that could not be folded into a conv: scale every frame, shift on frame 0."""

    kind = "batchnorm"
    scale: Tensor
    shift: Tensor

    def __init__(self, name: str, bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__(name)
        if bn.running_var is None or bn.running_mean is None:
            raise UnsupportedOpError(f"{name}: BatchNorm without running statistics cannot be converted")
        w = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        b = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_var)
        scale = w.detach() / torch.sqrt(bn.running_var + bn.eps)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", b.detach() - bn.running_mean * scale)

    def forward(self, x: DeltaValue) -> DeltaValue:
        shape = (1, -1) + (1,) * (x.data.dim() - 2)
        y = x.data * self.scale.reshape(shape)
        if x.first:
            return DeltaTensor(y + self.shift.reshape(shape), None, True)
        return DeltaTensor(y, x.mask, False)


def _nearest_factor(invoke: Invoker) -> int | None:
    """``f`` when ``invoke`` is ``nn.Upsample(scale_factor=f, mode="nearest")`` with one power-of-two
    factor ``f`` for both spatial dims (the factors at which PyTorch's source index ``floor(y / f)`` is
    exact integer division), else ``None``."""
    if not (isinstance(invoke, nn.Upsample) and invoke.mode == "nearest" and invoke.size is None):
        return None
    sf = invoke.scale_factor
    factors = {float(v) for v in (sf if isinstance(sf, (tuple, list)) else (sf, sf)) if v is not None}
    if len(factors) != 1:
        return None
    f = factors.pop()
    if not f.is_integer() or f < 2 or int(f) & (int(f) - 1):
        return None
    return int(f)


class StructuralOp(DeltaOp):
    """Any linear op without a constant term: reshapes, pooling, upsampling, zero padding, slicing,
    channel chunks, means, scaling by a constant. Applied to deltas as is; masks by :func:`structural_mask`.
    """

    kind = "linear-op"

    def __init__(self, name: str, invoke: Invoker, kind: str = "linear-op") -> None:
        super().__init__(name)
        self.invoke = invoke
        self.kind = kind
        self._zeros = ZeroCache()
        #: the integer factor of a nearest-neighbour ``nn.Upsample`` (deltas then stay coarse until read,
        #: see :class:`DeltaUpsampled`), else ``None``
        self.nearest_factor = _nearest_factor(invoke)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and _is_dt(args[0]) and not args[0].empty:
            x = args[0]
            if self.nearest_factor is not None and not x.first and len(x.shape) == 4:
                return DeltaUpsampled(x, self.nearest_factor, self.invoke)
            return self._unary(x)
        leaves = delta_leaves((args, kwargs))
        first = leaves[0].first
        if not first and all(v.empty for v in leaves):  # zero in, zero out: reuse the last result
            key = tuple((tuple(v.data.shape), v.data.dtype, v.data.device) for v in leaves)
            hit = self._zeros.get(key)
            if hit is None:
                hit = self._zeros.put(key, _mark_empty(self._delta_forward(args, kwargs)))
            return hit
        if first:
            dargs, dkwargs = _data((args, kwargs))
            return _wrap(self.invoke(*dargs, **dkwargs), None, True)
        return self._delta_forward(args, kwargs)

    def _unary(self, x: DeltaValue) -> Any:
        """The common case (upsampling, pooling, reshapes of one tensor) without argument-tree walks."""
        out = self.invoke(x.data)
        if x.first:
            return _wrap(out, None, True)
        if x.mask is None:
            return _wrap(out, None, False)
        try:
            masks = _masks_like(out, self.invoke(_mask_as_float(x)), coarse=False)
        except (RuntimeError, ValueError, IndexError, TypeError):
            masks = None
        if not _all_found(masks):  # the op needs the mask on its channels, or mixes them with the pixels
            masks = structural_mask(self.invoke, (x,), {}, out)
        return _wrap(out, masks, False)

    def _delta_forward(self, args: tuple, kwargs: dict) -> Any:
        dargs, dkwargs = _data((args, kwargs))
        out = self.invoke(*dargs, **dkwargs)
        return _wrap(out, structural_mask(self.invoke, args, kwargs, out), False)


class AddSubOp(DeltaOp):
    """``a + b`` / ``a - b``: deltas add, masks unite; a constant operand only counts on frame 0."""

    kind = "add"

    def __init__(self, name: str, invoke: Invoker, *, subtract: bool = False, plain: bool = False) -> None:
        super().__init__(name)
        self.invoke = invoke
        self.subtract = subtract
        self.kind = "sub" if subtract else "add"
        #: ``invoke(a, b)`` is exactly ``a + b`` (no alpha, no out=): two deltas may stay a lazy DeltaSum
        self.plain = plain and not subtract

    def forward(self, a: Any, b: Any, *rest: Any, **kwargs: Any) -> DeltaValue:
        if (
            not rest
            and not kwargs
            and _is_dt(a)
            and _is_dt(b)
            and not a.first
            and not b.first
            and a.shape == b.shape
        ):
            # the common case: two deltas; an operand known to be empty contributes nothing
            if b.empty:
                return a
            if a.empty and not self.subtract:
                return b
            if self.plain and (lazy := DeltaSum.plus(a, b)) is not None:
                return lazy  # summed by whoever reads it (the compiled truncation step reads the parts)
            return DeltaTensor(self.invoke(a.data, b.data), union([a.mask, b.mask]), False)
        dts = [v for v in (a, b) if _is_dt(v)]
        first = _same_frame(self, dts)
        if first or len(dts) == 2:
            out = self.invoke(*_data((a, b)), *rest, **kwargs)
            if first:
                return DeltaTensor(out, None, True)
            return DeltaTensor(out, _masks_of(out, [a.mask, b.mask]), False)
        # one operand is a constant: it does not change between frames, but may broadcast the delta to
        # a larger shape (a one-channel map plus a [1, C, H, W] positional map): the change then
        # reaches every element the operand's element reaches in the result
        v, const = (a, b) if _is_dt(a) else (b, a)
        shape = torch.broadcast_shapes(v.shape, const.shape if isinstance(const, Tensor) else ())
        if v is a:
            if shape == v.shape:
                return DeltaTensor(a.data, a.mask, False)
            return self._expanded(a.data, a.mask, shape)
        alpha = kwargs.get("alpha", 1)
        sign = -alpha if self.subtract else alpha
        if shape == v.shape:
            return DeltaTensor(b.data * sign, b.mask, False)
        return self._expanded(b.data * sign, b.mask, shape)

    def _expanded(self, d: Tensor, mask: Tensor | None, shape: torch.Size) -> DeltaValue:
        """The delta ``d`` broadcast to the result's ``shape`` (in the backend's layout), with its mask."""
        cl = len(shape) == 4 and self.ctx.backend.channels_last
        out = d.expand(shape).contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
        return DeltaTensor(out, _masks_of(out, [mask]), False)


class CatOp(DeltaOp):
    """``torch.cat``: deltas concatenate; along channels the pixel masks unite. A constant part (CoordConv's
    coordinate maps, computed from shapes) counts on a frame that runs dense (frame 0, a refresh) and
    is a zero change with no updated pixel on every other frame, like a constant operand of ``+``. That
    zero change is made once per shape and layout and reused (:class:`ZeroCache`): made anew, every delta
    frame would allocate and clear a full-size tensor per constant part."""

    kind = "cat"

    def __init__(self, name: str, invoke: Invoker) -> None:
        super().__init__(name)
        self.invoke = invoke
        self._zeros = ZeroCache()

    def forward(self, tensors: Any, *args: Any, **kwargs: Any) -> DeltaValue:
        dim = kwargs.get("dim", args[0] if args else 0)
        first = _same_frame(self, delta_leaves(tensors))
        deltas = tensors
        if not all(_is_dt(t) for t in tensors):
            if first:
                return DeltaTensor(self.invoke(_data(list(tensors)), *args, **kwargs), None, True)
            deltas = [t for t in tensors if _is_dt(t)]
            tensors = self._constant_zeros(tensors)
        out = self.invoke([t.data for t in tensors], *args, **kwargs)
        if first:
            return DeltaTensor(out, None, True)
        ndim = out.dim()
        if dim % ndim == 1 or ndim <= 1:  # a constant part's mask is all false: it adds nothing
            return DeltaTensor(out, union([t.mask for t in deltas]), False)
        if any(t.mask is None for t in tensors):
            return DeltaTensor(out, None, False)
        return DeltaTensor(out, torch.cat([t.mask for t in tensors], dim=dim), False)

    def _constant_zeros(self, tensors: Sequence[Any]) -> list[DeltaValue]:
        """``tensors`` with each constant part replaced by its change on a delta frame (zeros, no updated
        pixel), the same zero values every frame while the constants keep their shapes and layouts."""
        key = tuple(
            None if _is_dt(t) else (tuple(t.shape), tuple(t.stride()), t.dtype, t.device) for t in tensors
        )
        zeros = self._zeros.get(key)
        if zeros is None:
            made: dict[tuple, DeltaValue] = {}  # equal constants (CoordConv's two maps) share one zero
            for k, t in zip(key, tensors, strict=True):
                if k is not None and k not in made:
                    made[k] = _no_change(t)
            zeros = self._zeros.put(key, [None if k is None else made[k] for k in key])
        assert isinstance(zeros, list)
        return [t if z is None else z for t, z in zip(tensors, zeros, strict=True)]


def _no_change(t: Tensor) -> DeltaValue:
    """A constant's change on a delta frame: zeros (laid out as ``t``), no updated pixel."""
    return DeltaTensor(
        torch.zeros_like(t), torch.zeros(mask_shape(t), dtype=torch.bool, device=t.device), False, 0
    )


class PadOp(DeltaOp):
    """``F.pad`` / ``nn.ConstantPadNd`` etc.: a non-zero constant fill only counts on frame 0.

    ``pad`` is ``None`` when the amounts are computed from shapes at run time (a U-Net padding an
    upsampled map to its skip's size): each call then passes them after the delta. Shapes are the same
    at every frame of a stream, so the amounts are too."""

    kind = "pad"

    def __init__(
        self, name: str, pad: tuple[int, ...] | None, mode: str = "constant", value: float = 0.0
    ) -> None:
        super().__init__(name)
        self.pad = None if pad is None else tuple(pad)
        self.mode, self.value = mode, float(value)

    def _pad(self, t: Tensor, pad: tuple[int, ...], value: float) -> Tensor:
        if self.mode == "constant":
            if (
                value == 0.0
                and len(pad) == 4
                and min(pad) >= 0
                and t.dim() == 4
                and t.is_contiguous(memory_format=torch.channels_last)
                and (nk := native_for(t)) is not None
            ):
                return nk.pad_zeros(t, *pad)  # each output byte written once (see csrc)
            return F.pad(t, pad, mode="constant", value=value)
        return F.pad(t, pad, mode=self.mode)

    def forward(self, x: DeltaValue, pad: Sequence[int] | None = None) -> DeltaValue:
        amounts = self.pad if pad is None else tuple(int(p) for p in pad)
        assert amounts is not None, f"{self.name}: padding amounts computed at run time were not passed"
        if x.first:
            return DeltaTensor(self._pad(x.data, amounts, self.value), None, True)
        y = self._pad(x.data, amounts, 0.0)
        if x.mask is None:
            return DeltaTensor(y, None, False)
        spatial = amounts[: 2 * (x.data.dim() - 2)]
        m = x.mask.to(torch.float32)
        m = (
            F.pad(m, spatial, mode="constant", value=0.0)
            if self.mode == "constant"
            else F.pad(m, spatial, mode=self.mode)
        )
        return DeltaTensor(y, m.expand(mask_shape(y)) > 0, False)


class MetaOp(DeltaOp):
    """Shape queries (``size``, ``dim``, ``.shape``): answered from the delta, which has the same shape."""

    kind = "meta"

    def __init__(self, name: str, invoke: Invoker) -> None:
        super().__init__(name)
        self.invoke = invoke

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        dargs, dkwargs = _data((args, kwargs))
        return self.invoke(*dargs, **dkwargs)
