"""The value that flows between delta operations, and the pixel-mask helpers every op shares.

A :class:`DeltaTensor` carries, for one node of the network and one frame:

* ``first=True`` (frame 0 of a stream): ``data`` is the *dense* value and ``mask`` is ``None``.
* ``first=False``: ``data`` is the *delta* (the change since the last propagated value; exactly zero
  outside ``mask``) and ``mask`` marks the *updated* pixels, shape ``[N, 1, *spatial]`` (a pixel is all
  channels at one spatial position; a 2-D ``[N, C]`` tensor is one pixel per batch entry). ``mask=None``
  means "every pixel may have changed". ``count`` is the number of updated pixels when the producing
  op knows it for free (``None``: unknown); ``count == 0`` lets consumers skip all work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DeltaTensor", "DeltaMasked", "ZeroedFlag", "DeltaSum", "DeltaUpsampled", "mask_shape",
           "full_mask", "union", "count_true", "expand_mask", "any_per_sample", "ZeroCache"]


@dataclass
class DeltaTensor:
    """A dense value (frame 0) or a masked delta (later frames) flowing through a delta network."""

    data: Tensor
    mask: Tensor | None
    first: bool
    count: int | None = None

    @property
    def empty(self) -> bool:
        """Known to carry no change at all (a later frame with no updated pixel)."""
        return self.count == 0 and not self.first

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def probe(self) -> Tensor:
        """A tensor with this value's shape, dtype, device and layout, for checks that must not compute
        a lazy :class:`DeltaSum` (its first addend); otherwise :attr:`data` itself."""
        return self.data

    @property
    def clean(self) -> bool:
        """Whether :attr:`data` is ready to read as it is (only a :class:`DeltaMasked` buffer is not)."""
        return True

    def with_data(self, data: Tensor, mask: Tensor | None = None) -> DeltaTensor:
        """Same frame kind, new data (and mask)."""
        return DeltaTensor(data, mask, self.first)


class ZeroedFlag:
    """Set when a reader had to zero a producer's :class:`DeltaMasked` output. The producing op keeps one
    and writes its zeros itself from then on (a kernel writes them cheaper than a zeroing pass after it):
    the readers of an op's output do not change between frames. Cleared when the op is reset, so each
    stream learns it anew (a run with the ``explain`` log reads every value)."""

    __slots__ = ("set",)

    def __init__(self) -> None:
        self.set = False

    def output(self, data: Tensor, mask: Tensor, count: int | None) -> DeltaTensor:
        """The producer's delta for a buffer its kernel filled with ``zero_fill=self.set``: a plain delta
        once readers need the zeros (the kernel wrote them), else a :class:`DeltaMasked` tied to this flag."""
        if self.set:
            return DeltaTensor(data, mask, False, count)
        return DeltaMasked(data, mask, count, zeroed=self)


class DeltaMasked(DeltaTensor):
    """A delta whose buffer holds the change at the pixels of :attr:`mask` and *anything* elsewhere.

    Most of a delta frame's pixels carry no change, and writing their zeros was a third of the memory
    traffic of a sparse HRNet frame: the compiled conv and truncation kernels therefore leave them
    unwritten and read their inputs only inside the masks. Whoever reads :attr:`data` gets the proper
    delta (the buffer is zeroed outside the mask once, in place, on first read, and ``zeroed`` is set
    so that the producer writes its zeros itself next time); the mask-aware kernels read :attr:`raw`.
    """

    def __init__(self, raw: Tensor, mask: Tensor, count: int | None = None, *,
                 zeroed: ZeroedFlag | None = None) -> None:  # noqa: D107
        self._raw = raw
        self._clean = False
        self.mask = mask
        self.first = False
        self.count = count
        self._zeroed = zeroed

    @property
    def raw(self) -> Tensor:
        """The buffer as it is (undefined outside :attr:`mask` until :attr:`data` was read)."""
        return self._raw

    @property
    def clean(self) -> bool:
        """Whether the buffer is zero outside the mask (``data`` was read)."""
        return self._clean

    @property  # type: ignore[override]
    def data(self) -> Tensor:
        if not self._clean:
            self._raw.masked_fill_(~self.mask.expand(mask_shape(self._raw)), 0.0)
            self._clean = True
            if self._zeroed is not None:
                self._zeroed.set = True
        return self._raw

    @data.setter
    def data(self, value: Tensor) -> None:
        self._raw, self._clean = value, True

    @property
    def probe(self) -> Tensor:
        return self._raw

    @property
    def shape(self) -> torch.Size:
        return self._raw.shape

    def __repr__(self) -> str:
        return f"DeltaMasked(shape={tuple(self._raw.shape)}, clean={self._clean})"


class _LazyDelta(DeltaTensor):
    """A later frame's delta computed from other deltas only when something reads :attr:`data` or
    :attr:`mask` (subclasses say how: :meth:`_compute_data`, :meth:`_compute_mask`); until then the
    compiled truncation step can read its inputs directly."""

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

    @property  # type: ignore[override]
    def data(self) -> Tensor:
        if self._data is None:
            self._data = self._compute_data()
        return self._data

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value

    @property  # type: ignore[override]
    def mask(self) -> Tensor | None:
        if not self._mask_known:
            self._mask, self._mask_known = self._compute_mask(), True
        return self._mask

    @mask.setter
    def mask(self, value: Tensor | None) -> None:
        self._mask, self._mask_known = value, True

    @property
    def computed(self) -> bool:
        """Whether the value has been computed (something read :attr:`data`)."""
        return self._data is not None


class DeltaSum(_LazyDelta):
    """The sum of two or more deltas of one shape, kept as its addends until something reads it.

    Residual and branch-fusion adds feed a non-linearity almost always (HRNet sums up to four branches
    before each ReLU). Reading :attr:`data` or :attr:`mask` computes the sum (left to right, exactly what
    the chain of ``+`` computes) and the union of the masks once; the compiled truncation step instead
    reads the addends directly (:attr:`parts`), so the sum is never written to memory. A later frame's
    value only: ``first`` is always ``False``.
    """

    def __init__(self, parts: list[DeltaTensor]) -> None:  # noqa: D107 - see the class doc
        if len(parts) < 2:
            raise ValueError("a DeltaSum needs at least two addends")
        super().__init__(None)
        #: the addends, in summation order (chains are flattened by :meth:`plus`; a sum that was already
        #: computed enters as one addend)
        self.parts = parts

    @staticmethod
    def plus(a: DeltaTensor, b: DeltaTensor) -> DeltaSum | None:
        """``a + b`` as a :class:`DeltaSum` (``a``'s addends extended by ``b``, which keeps the left-to-right
        order), or ``None`` when the two cannot be summed lazily (different shape, dtype or device, a
        first frame, or ``b`` itself a sum: ``a + (b0 + b1)`` rounds differently)."""
        if a.first or b.first or isinstance(b, DeltaSum):
            return None
        head = a.parts if isinstance(a, DeltaSum) and not a.computed else [a]
        x, y = head[0].probe, b.probe
        if head[0].shape != b.shape or x.dtype != y.dtype or x.device != y.device:
            return None
        return DeltaSum([*head, b])

    def _compute_data(self) -> Tensor:
        out = self.parts[0].data + self.parts[1].data
        for p in self.parts[2:]:
            out = out + p.data
        return out

    def _compute_mask(self) -> Tensor | None:
        return union([p.mask for p in self.parts])

    @property
    def probe(self) -> Tensor:
        return self.parts[0].probe if self._data is None else self._data

    @property
    def shape(self) -> torch.Size:
        return self.parts[0].shape

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

    def __init__(self, source: DeltaTensor, factor: int, upsample: Callable[[Tensor], Tensor]) -> None:  # noqa: D107
        super().__init__(None if source.count is None else source.count * factor * factor)
        self.source = source
        self.factor = factor
        self._upsample = upsample

    def _compute_data(self) -> Tensor:
        return self._upsample(self.source.data)

    def _compute_mask(self) -> Tensor | None:
        m = self.source.mask
        return None if m is None else self._upsample(m.to(self.source.probe.dtype)) != 0

    @property
    def probe(self) -> Tensor:
        return self.source.probe if self._data is None else self._data

    @property
    def shape(self) -> torch.Size:
        s = self.source.shape
        return torch.Size((*s[:-2], s[-2] * self.factor, s[-1] * self.factor))

    def __repr__(self) -> str:
        return f"DeltaUpsampled(x{self.factor}, source shape={tuple(self.source.shape)})"


def mask_shape(t: Tensor) -> tuple[int, ...]:
    """Shape of the pixel mask of ``t``: ``[N, 1, *spatial]``."""
    return (t.shape[0], 1, *t.shape[2:])


def full_mask(t: Tensor) -> Tensor:
    """A mask marking every pixel of ``t`` as updated."""
    return torch.ones(mask_shape(t), dtype=torch.bool, device=t.device)


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


def count_true(mask: Tensor | None, t: Tensor) -> int:
    """Number of updated pixels (summed over the batch); ``None`` counts every pixel."""
    if mask is None:
        n = t.shape[0]
        for s in t.shape[2:]:
            n *= s
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
