"""RoIAlign (He et al., Mask R-CNN) in plain torch, with the semantics of torchvision's CPU kernel.

For RoI ``k`` on image ``b`` with box ``(x1, y1, x2, y2)`` (input pixels) and ``offset = 0.5`` if
``aligned`` else 0:

    start = (x1, y1) * spatial_scale - offset,   size = (x2 - x1, y2 - y1) * spatial_scale
    (size is raised to at least 1 when not ``aligned``)
    bin = size / output_size;  grid = sampling_ratio if > 0 else ceil(size / output_size)
    sample (iy, ix) of bin (ph, pw):  y = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h  (x alike)
    out[k, :, ph, pw] = sum of bilinear(features[b], y, x) over the grid_h * grid_w samples
                        / max(grid_h * grid_w, 1)

Bilinear sampling as in the kernel: a sample with ``y < -1`` or ``y > H`` (or ``x`` alike) is 0; otherwise
``y`` is clamped up to 0, and a sample at or beyond row ``H - 1`` reads row ``H - 1`` only.

Why this shape: the sample weights factor into a row part and a column part (the out-of-range test is a
per-coordinate test too), so every bin is ``Ay[k, ph, :] @ features[b] @ Ax[k, pw, :]^T`` with small
``[K, P, H]`` and ``[K, Q, W]`` weight matrices. That is exact, vectorised, and differentiable with
respect to the features (not the boxes, as in torchvision).
"""

from __future__ import annotations

import torch

__all__ = ["roi_align"]


def _axis_weights(
    start: torch.Tensor, size: torch.Tensor, grid: torch.Tensor, bins: int, length: int
) -> torch.Tensor:
    """Summed bilinear weights ``[K, bins, length]`` along one axis (rows or columns) of every RoI."""
    k = start.shape[0]
    g_max = max(int(grid.max()), 1) if k else 1
    bin_size = size / bins
    pos = torch.arange(bins, dtype=start.dtype, device=start.device)
    sub = torch.arange(g_max, dtype=start.dtype, device=start.device) + 0.5
    grid_f = grid.to(start.dtype).clamp(min=1)[:, None, None]
    coord = (
        start[:, None, None]
        + pos[None, :, None] * bin_size[:, None, None]
        + sub[None, None, :] * bin_size[:, None, None] / grid_f
    )  # [K, bins, g_max]
    used = torch.arange(g_max, device=start.device)[None, None, :] < grid[:, None, None]
    inside = (coord >= -1.0) & (coord <= length)
    coord = coord.clamp(min=0)
    low = coord.floor().to(torch.int64)  # the kernel's (int) cast: coord >= 0 here
    at_edge = low >= length - 1
    low = torch.where(at_edge, torch.full_like(low, length - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(coord), coord - low.to(coord.dtype))
    keep = (used & inside).to(coord.dtype)
    weights = torch.zeros(k, bins, length, dtype=start.dtype, device=start.device)
    weights.scatter_add_(2, low, (1 - frac) * keep)
    weights.scatter_add_(2, high, frac * keep)
    return weights


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = True,
) -> torch.Tensor:
    """Pool every RoI of ``rois [K, 5]`` (``batch_idx, x1, y1, x2, y2``) from ``features [N, C, H, W]``
    into ``[K, C, out_h, out_w]`` (formulas in the module docstring; torchvision's semantics)."""
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    n, c, height, width = features.shape
    k = rois.shape[0]
    if k == 0:
        return features.new_zeros(0, c, out_h, out_w)
    rois = rois.to(features.dtype)
    offset = 0.5 if aligned else 0.0
    x1, y1 = rois[:, 1] * spatial_scale - offset, rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = torch.full((k,), sampling_ratio, dtype=torch.int64, device=rois.device)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / out_h).to(torch.int64).clamp(min=0)
        grid_w = torch.ceil(roi_w / out_w).to(torch.int64).clamp(min=0)
    count = (grid_h * grid_w).clamp(min=1).to(features.dtype)
    ay = _axis_weights(y1, roi_h, grid_h, out_h, height)  # [K, out_h, H]
    ax = _axis_weights(x1, roi_w, grid_w, out_w, width)  # [K, out_w, W]
    batch = rois[:, 0].to(torch.int64)
    if bool(((batch < 0) | (batch >= n)).any()):
        raise ValueError(f"roi_align: RoI batch indices must lie in [0, {n}), got {batch.tolist()}")
    out = features.new_zeros(k, c, out_h, out_w)
    for b in range(n):  # per image: [K_b, out_h, H] x [C, H, W] x [K_b, out_w, W]
        sel = torch.where(batch == b)[0]
        if sel.numel():
            rows = torch.einsum("kph,chw->kcpw", ay[sel], features[b])
            out[sel] = torch.einsum("kcpw,kqw->kcpq", rows, ax[sel])
    return out / count[:, None, None, None]
