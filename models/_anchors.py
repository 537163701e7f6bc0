"""Anchors for one feature map, with torchvision's ``AnchorGenerator`` convention.

Base anchors (one per ``aspect ratio x size``, ratio-major): for ratio ``r = h / w`` and size ``s``,
``w = s / sqrt(r)``, ``h = s * sqrt(r)``, and the anchor is ``round((-w/2, -h/2, w/2, h/2))`` (centred at
0, rounded half to even as ``torch.round``). The anchors of the map are the base anchors shifted by
``(j * stride_w, i * stride_h)`` for every cell ``(i, j)``, location-major: anchor ``a`` of cell
``(i, j)`` is row ``(i * W + j) * A + a``, the order in which the RPN head's outputs are flattened.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["base_anchors", "grid_anchors", "feature_stride"]


def base_anchors(
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Zero-centred, rounded anchors ``[len(ratios) * len(sizes), 4]`` (ratio-major, then size)."""
    scales = torch.as_tensor(sizes, dtype=dtype, device=device)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack((-ws, -hs, ws, hs), dim=1) / 2).round()


def feature_stride(image_size: tuple[int, int], grid_size: tuple[int, int]) -> tuple[int, int]:
    """Stride ``(image_h // grid_h, image_w // grid_w)`` of a feature map, as torchvision derives it."""
    return image_size[0] // grid_size[0], image_size[1] // grid_size[1]


def grid_anchors(base: torch.Tensor, grid_size: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """All anchors ``[H * W * A, 4]`` of an ``H x W`` grid: ``base [A, 4]`` shifted to every cell."""
    grid_h, grid_w = grid_size
    shifts_x = torch.arange(0, grid_w, dtype=torch.int64, device=base.device) * stride[1]
    shifts_y = torch.arange(0, grid_h, dtype=torch.int64, device=base.device) * stride[0]
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1).to(base.dtype)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)
