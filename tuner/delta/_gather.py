"""Pixel gather/scatter helpers: run per-pixel work on the updated pixels of an NCHW tensor only.

A "pixel" is all channels at one spatial position of one sample. :func:`gathered_pixels` lists the
updated pixels of a mask; :func:`gather_columns` / :func:`scatter_columns` move their channel vectors
between an ``[N, C, S]`` view and a compact ``[C, P]`` matrix. Elementwise maths on the compact matrix
gives the same values as on the whole tensor, with work proportional to the updated pixels.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["GATHER_MAX_FRACTION", "gathered_pixels", "gather_columns", "scatter_columns"]

#: Above this updated fraction a dense elementwise pass is cheaper than gather + scatter.
GATHER_MAX_FRACTION = 0.4


def gathered_pixels(mask: Tensor, like: Tensor, max_fraction: float) -> tuple[Tensor, Tensor, Tensor] | None:
    """``(sample, position, flat)`` indices of the updated pixels of ``mask`` (broadcast to ``like``'s
    pixel grid), or ``None`` when more than ``max_fraction`` of the pixels are updated."""
    n = like.shape[0]
    m = mask.expand(n, 1, *like.shape[2:]).reshape(-1)
    flat = m.nonzero().squeeze(1)
    if flat.numel() > max_fraction * m.numel():
        return None
    s = m.numel() // n
    b = flat // s
    return b, flat - b * s, flat


def gather_columns(t: Tensor, b: Tensor, pos: Tensor) -> Tensor:
    """``[C, P]``: the channel vectors of ``t [N, C, S]`` at pixels ``(b, pos)``."""
    if t.shape[0] == 1:
        return t[0].index_select(1, pos)
    return t.permute(1, 0, 2)[:, b, pos]


def scatter_columns(t: Tensor, b: Tensor, pos: Tensor, values: Tensor) -> None:
    """Write ``values [C, P]`` into ``t [N, C, S]`` at pixels ``(b, pos)`` (in place)."""
    if t.shape[0] == 1:
        t[0].index_copy_(1, pos, values)
    else:
        t.permute(1, 0, 2)[:, b, pos] = values
