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

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DeltaTensor", "mask_shape", "full_mask", "union", "count_true", "expand_mask", "any_per_sample",
           "ZeroCache"]


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

    def with_data(self, data: Tensor, mask: Tensor | None = None) -> DeltaTensor:
        """Same frame kind, new data (and mask)."""
        return DeltaTensor(data, mask, self.first)


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
