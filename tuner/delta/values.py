"""Delta values: what flows between the ops of a delta network, and the pixel-mask helpers they share.

Every value implements one interface, :class:`DeltaValue`. For one node of the network and one frame:

* ``first=True`` (frame 0 of a stream, or a dense-refresh frame): :attr:`~DeltaValue.data` is the *dense*
  value and :attr:`~DeltaValue.mask` is ``None``.
* ``first=False``: :attr:`~DeltaValue.data` is the *delta* (the change since the last propagated value;
  exactly zero outside the mask) and :attr:`~DeltaValue.mask` marks the *updated* pixels, shape
  ``[N, 1, *spatial]`` (a pixel is all channels at one spatial position; a 2-D ``[N, C]`` tensor is one
  pixel per batch entry; a ``[N]`` or scalar value has no channels: each element is a pixel and the
  mask has its shape). ``mask=None`` means "every pixel may have changed". :attr:`~DeltaValue.count`
  is the number of updated pixels when the producing op knows it for free (``None``: unknown);
  ``count == 0`` lets consumers skip all work.

What a reader may ask of any value, whatever its kind:

========================  =========================================================================
``data``                  the delta itself, zero outside ``mask`` (computed on first read for lazy kinds)
``mask``, ``count``       updated pixels, and their number when known
``shape``, ``dtype``,     metadata of ``data``, right for every kind without computing anything
``device``,
``channels_last``
``buffer``,               what a mask-aware kernel reads: a tensor that holds the delta *inside*
``buffer_clean``          ``mask`` (and zeros elsewhere only when ``buffer_clean``)
``kernel_parts()``        the value as a sum of ``(leaf, factor)`` terms: ``leaf.buffer`` upsampled
                          (nearest) by the integer ``factor``; what the compiled truncation step reads
``addends()``             the value as a left-to-right list of addends (for building lazy sums)
========================  =========================================================================

The kinds: :class:`DeltaTensor` (a plain tensor), :class:`DeltaMasked` (a buffer left undefined outside its
mask by a kernel that did not write the zeros), :class:`DeltaSum` (a residual sum kept as its addends) and
:class:`DeltaUpsampled` (a nearest upsampling kept at the coarse resolution). Reading a value never changes
anything outside it: a :class:`DeltaMasked` zeroes its own buffer outside the mask the first time
``data`` is read (which every mask-aware reader would see the same way), and a lazy value caches what it
computed. Whether a producer writes its zeros is decided once, when the network is converted and the
readers of each op are known (:func:`deltatune.delta.convert.plan_zero_fill`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from deltatune.delta.native import native_for

__all__ = [
    "DeltaValue",
    "DeltaTensor",
    "DeltaMasked",
    "DeltaSum",
    "DeltaUpsampled",
    "KernelPart",
    "mask_shape",
    "full_mask",
    "zeros_in_layout",
    "union",
    "count_true",
    "expand_mask",
    "any_per_sample",
    "ZeroCache",
]

#: One term of :meth:`DeltaValue.kernel_parts`: a leaf value and the nearest-upsampling factor applied to it.
KernelPart = tuple["DeltaValue", int]


class DeltaValue:
    """The interface of every value flowing between delta ops (see the module doc)."""

    __slots__ = ("first", "count")

    first: bool  #: a first (dense) frame
    count: int | None  #: number of updated pixels when known for free

    @property
    def data(self) -> Tensor:
        """The value: dense on a first frame; else the delta, exactly zero outside :attr:`mask`."""
        raise NotImplementedError

    @property
    def mask(self) -> Tensor | None:
        """Updated pixels ``[N, 1, *spatial]`` (``None``: every pixel, or a first frame)."""
        raise NotImplementedError

    @property
    def shape(self) -> torch.Size:
        """Shape of :attr:`data`."""
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    @property
    def channels_last(self) -> bool:
        """Whether :attr:`data` is (or will be) a 4-D channels-last tensor."""
        raise NotImplementedError

    @property
    def buffer(self) -> Tensor:
        """The tensor a mask-aware kernel reads: equal to :attr:`data` inside :attr:`mask`."""
        return self.data

    @property
    def buffer_clean(self) -> bool:
        """Whether :attr:`buffer` is also zero outside :attr:`mask` (it is then :attr:`data` itself)."""
        return True

    def kernel_parts(self) -> list[KernelPart]:
        """The value as ``sum(upsample(leaf.buffer, factor))`` over the returned terms (one term, ``(self,
        1)``, unless the value is a lazy sum or upsampling that was not computed yet)."""
        return [(self, 1)]

    def addends(self) -> list[DeltaValue]:
        """The value as addends summed left to right (one, ``self``, unless it is an uncomputed sum)."""
        return [self]

    @property
    def empty(self) -> bool:
        """Known to carry no change at all (a later frame with no updated pixel)."""
        return self.count == 0 and not self.first


class DeltaTensor(DeltaValue):
    """A plain value: a dense tensor (first frame) or a delta that is zero outside its mask."""

    __slots__ = ("data", "mask")

    def __init__(self, data: Tensor, mask: Tensor | None, first: bool, count: int | None = None) -> None:  # noqa: D107
        self.data = data  # type: ignore[misc]  # a plain attribute here: the interface's property
        self.mask = mask  # type: ignore[misc]
        self.first = first
        self.count = count

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def channels_last(self) -> bool:
        d = self.data
        return d.dim() == 4 and d.is_contiguous(memory_format=torch.channels_last)

    def __repr__(self) -> str:
        return f"DeltaTensor(shape={tuple(self.data.shape)}, first={self.first}, count={self.count})"


class DeltaMasked(DeltaValue):
    """A delta whose buffer holds the change at the pixels of :attr:`mask` and *anything* elsewhere.

    Most of a delta frame's pixels carry no change, and writing their zeros was a third of the memory
    traffic of a sparse HRNet frame: the compiled conv and truncation kernels leave them unwritten when
    every reader of their output reads only inside masks (decided at conversion). Mask-aware kernels
    read :attr:`buffer`; any other reader gets :attr:`data`, for which the buffer is zeroed outside the
    mask once, in place (a mask-aware reader sees the same values before and after).
    """

    __slots__ = ("_raw", "_clean", "_mask")

    def __init__(self, raw: Tensor, mask: Tensor, count: int | None = None) -> None:  # noqa: D107
        self._raw = raw
        self._clean = False
        self._mask = mask
        self.first = False
        self.count = count

    @property
    def mask(self) -> Tensor:
        return self._mask

    @property
    def buffer(self) -> Tensor:
        """The buffer as it is (undefined outside :attr:`mask` until :attr:`data` was read)."""
        return self._raw

    @property
    def buffer_clean(self) -> bool:
        """Whether the buffer is zero outside the mask (``data`` was read)."""
        return self._clean

    @property
    def data(self) -> Tensor:
        if not self._clean:
            raw = self._raw
            m = self._mask
            k = native_for(raw, m) if raw.dim() == 4 and m.numel() * raw.shape[1] == raw.numel() else None
            if k is not None and raw.is_contiguous(memory_format=torch.channels_last):
                k.zero_outside(raw, m)  # writes only the unset pixels
            else:
                raw.masked_fill_(~m.expand(mask_shape(raw)), 0.0)
            self._clean = True
        return self._raw

    @property
    def shape(self) -> torch.Size:
        return self._raw.shape

    @property
    def dtype(self) -> torch.dtype:
        return self._raw.dtype

    @property
    def device(self) -> torch.device:
        return self._raw.device

    @property
    def channels_last(self) -> bool:
        d = self._raw
        return d.dim() == 4 and d.is_contiguous(memory_format=torch.channels_last)

    def __repr__(self) -> str:
        return f"DeltaMasked(shape={tuple(self._raw.shape)}, clean={self._clean})"


class _LazyDelta(DeltaValue):
    """A later frame's delta computed from other deltas only when something reads :attr:`data` or
    :attr:`mask` (subclasses say how: :meth:`_compute_data`, :meth:`_compute_mask`); until then the
    compiled truncation step reads its inputs directly (:meth:`kernel_parts`)."""

    __slots__ = ("_data", "_mask", "_mask_known")

    def __init__(self, count: int | None) -> None:  # noqa: D107
        self._data: Tensor | None = None
        self._mask: Tensor | None = None
        self._mask_known = False
        self.first = False
        self.count = count

    def _compute_data(self) -> Tensor:
        raise NotImplementedError

    def _compute_mask(self) -> Tensor | None:
        raise NotImplementedError

    @property
    def data(self) -> Tensor:
        if self._data is None:
            self._data = self._compute_data()
        return self._data

    @property
    def mask(self) -> Tensor | None:
        if not self._mask_known:
            self._mask, self._mask_known = self._compute_mask(), True
        return self._mask

    @property
    def computed(self) -> bool:
        """Whether the value has been computed (something read :attr:`data`)."""
        return self._data is not None


class DeltaSum(_LazyDelta):
    """The sum of two or more deltas of one shape, kept as its addends until something reads it.

    Residual and branch-fusion adds feed a non-linearity almost always (HRNet sums up to four branches
    before each ReLU). Reading :attr:`data` or :attr:`mask` computes the sum (left to right, exactly what
    the chain of ``+`` computes) and the union of the masks once; the compiled truncation step instead
    reads the addends directly (:meth:`kernel_parts`), so the sum is never written to memory. A later
    frame's value only: ``first`` is always ``False``.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: list[DeltaValue]) -> None:  # noqa: D107 - see the class doc
        if len(parts) < 2:
            raise ValueError("a DeltaSum needs at least two addends")
        super().__init__(None)
        #: the addends, in summation order (chains are flattened by :meth:`plus`; a sum that was already
        #: computed enters as one addend)
        self.parts = parts

    @staticmethod
    def plus(a: DeltaValue, b: DeltaValue) -> DeltaSum | None:
        """``a + b`` as a :class:`DeltaSum` (``a``'s addends extended by ``b``, which keeps the left-to-right
        order), or ``None`` when the two cannot be summed lazily (different shape, dtype or device, a
        first frame, or ``b`` itself a sum: ``a + (b0 + b1)`` rounds differently)."""
        if a.first or b.first or len(b.addends()) > 1:
            return None
        head = a.addends()
        if head[0].shape != b.shape or a.dtype != b.dtype or a.device != b.device:
            return None
        return DeltaSum([*head, b])

    def addends(self) -> list[DeltaValue]:
        return [self] if self.computed else list(self.parts)

    def kernel_parts(self) -> list[KernelPart]:
        if self.computed:
            return [(self, 1)]
        out: list[KernelPart] = []
        for p in self.parts:
            terms = p.kernel_parts()
            out.extend(terms if len(terms) == 1 else [(p, 1)])
        return out

    def _compute_data(self) -> Tensor:
        out = self.parts[0].data + self.parts[1].data
        for p in self.parts[2:]:
            out = out + p.data
        return out

    def _compute_mask(self) -> Tensor | None:
        return union([p.mask for p in self.parts])

    @property
    def shape(self) -> torch.Size:
        return self.parts[0].shape

    @property
    def dtype(self) -> torch.dtype:
        return self.parts[0].dtype

    @property
    def device(self) -> torch.device:
        return self.parts[0].device

    @property
    def channels_last(self) -> bool:
        return (
            self.parts[0].channels_last
            if self._data is None
            else (self._data.dim() == 4 and self._data.is_contiguous(memory_format=torch.channels_last))
        )

    def __repr__(self) -> str:
        return f"DeltaSum({len(self.parts)} parts, shape={tuple(self.shape)})"


class DeltaUpsampled(_LazyDelta):
    """A nearest-neighbour upsampling of a delta by an integer factor (HRNet's fusion path: a 1x1 conv on
    a coarse branch, upsampled, added to a fine one), kept as its coarse :attr:`source` until read.

    Reading :attr:`data` or :attr:`mask` runs the upsampling op itself (``upsample`` on the delta and on
    the 0/1 mask, as :class:`~deltatune.delta.linear.StructuralOp` does); the compiled truncation step
    instead reads the coarse values in place (pixel ``(y, x)`` is ``(y // f, x // f)``), so the fine map
    is never written. Only for factors at which ``y // f`` is exactly the op's nearest source index.
    """

    __slots__ = ("source", "factor", "_upsample")

    def __init__(self, source: DeltaValue, factor: int, upsample: Callable[[Tensor], Tensor]) -> None:  # noqa: D107
        super().__init__(None if source.count is None else source.count * factor * factor)
        self.source = source
        self.factor = factor
        self._upsample = upsample

    def kernel_parts(self) -> list[KernelPart]:
        if self.computed:
            return [(self, 1)]
        terms = self.source.kernel_parts()
        if len(terms) == 1:  # nearest upsamplings compose: (y // f1) // f2 == y // (f1 * f2)
            leaf, f = terms[0]
            return [(leaf, f * self.factor)]
        return [(self.source, self.factor)]

    def _compute_data(self) -> Tensor:
        return self._upsample(self.source.data)

    def _compute_mask(self) -> Tensor | None:
        m = self.source.mask
        return None if m is None else self._upsample(m.to(self.source.dtype)) != 0

    @property
    def shape(self) -> torch.Size:
        s = self.source.shape
        return torch.Size((*s[:-2], s[-2] * self.factor, s[-1] * self.factor))

    @property
    def dtype(self) -> torch.dtype:
        return self.source.dtype

    @property
    def device(self) -> torch.device:
        return self.source.device

    @property
    def channels_last(self) -> bool:
        return (
            self.source.channels_last
            if self._data is None
            else (self._data.dim() == 4 and self._data.is_contiguous(memory_format=torch.channels_last))
        )

    def __repr__(self) -> str:
        return f"DeltaUpsampled(x{self.factor}, source shape={tuple(self.source.shape)})"


def mask_shape(t: Tensor | torch.Size | DeltaValue) -> tuple[int, ...]:
    """Shape of the pixel mask of ``t`` (a tensor, a shape or a value): ``[N, 1, *spatial]``. A value
    with fewer than two dims (a reduction to one value per sample ``[N]``, or to a scalar) has no
    channels: each element is a pixel of its own, and the mask has the value's shape."""
    s = t if isinstance(t, torch.Size) else t.shape
    if len(s) < 2:
        return tuple(s)
    return (s[0], 1, *s[2:])


def full_mask(t: Tensor) -> Tensor:
    """A mask marking every pixel of ``t`` as updated."""
    return torch.ones(mask_shape(t), dtype=torch.bool, device=t.device)


def zeros_in_layout(like: Tensor, *shape: int) -> Tensor:
    """Zeros of ``shape`` with ``like``'s dtype, device and memory layout (channels-last or standard),
    allocated in that layout and zeroed in place: ``zeros(...).contiguous(memory_format=...)`` writes the
    tensor twice, the second time through a transposing copy (11 ms against 1 ms for
    ``[3, 64, 128, 96]``)."""
    cl = like.dim() == 4 and len(shape) == 4 and like.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt).zero_()


def expand_mask(mask: Tensor | None, t: Tensor) -> Tensor:
    """``mask`` as a concrete bool tensor of ``t``'s mask shape (``None`` -> all updated)."""
    if mask is None:
        return full_mask(t)
    return mask.expand(mask_shape(t))


def union(masks: list[Tensor | None]) -> Tensor | None:
    """Pixel-wise OR of masks of equal shape; ``None`` (all updated) absorbs everything."""
    out: Tensor | None = None
    for m in masks:
        if m is None:
            return None
        out = m if out is None else (out | m)
    return out


def any_per_sample(mask: Tensor | None, ndim: int, batch: int, device: torch.device) -> Tensor | None:
    """Collapse a mask to one flag per batch entry, shaped for a tensor with ``ndim`` dims."""
    if mask is None:
        return None
    flags = mask.reshape(mask.shape[0], -1).any(dim=1)
    return flags.reshape(batch, *([1] * (ndim - 1)))


def count_true(mask: Tensor | None, t: Tensor | torch.Size | DeltaValue) -> int:
    """Number of updated pixels of ``t`` (a tensor, a shape or a value), summed over the batch; a
    ``None`` mask counts every pixel."""
    if mask is None:
        n = 1
        for d in mask_shape(t):
            n *= d
        return int(n)
    return int(mask.sum().item())


class ZeroCache:
    """One op's all-zero outputs by input shape: an op whose input carries no change returns the same
    zero delta every frame instead of allocating and clearing a new one. Nothing ever writes into a
    delta it received, so sharing these tensors is safe."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: object = None

    def get(self, key: tuple) -> object:
        return self._value if key == self._key else None

    def put(self, key: tuple, value: object) -> object:
        self._key, self._value = key, value
        return value
