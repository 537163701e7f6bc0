"""Box utilities for detection, in plain torch, with torchvision's semantics (no torchvision needed).

Boxes are float tensors ``[..., 4]`` of ``(x1, y1, x2, y2)`` in continuous pixel coordinates: a box of
width ``x2 - x1``. Box deltas are Faster R-CNN's ``(dx, dy, dw, dh)`` (Girshick et al.):

    dx = wx * (gx - ax) / aw        dy = wy * (gy - ay) / ah
    dw = ww * log(gw / aw)          dh = wh * log(gh / ah)

with ``(ax, ay, aw, ah)`` the centre and size of the reference box (anchor or proposal), ``(gx, gy, gw,
gh)`` those of the target box and ``(wx, wy, ww, wh)`` the weights: ``(1, 1, 1, 1)`` in the RPN and
``(10, 10, 5, 5)`` in the box head. Decoding clamps ``dw``/``dh`` (after dividing by the weights) at
``log(1000 / 16)`` so that ``exp`` cannot overflow, as torchvision's ``BoxCoder`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "BBOX_XFORM_CLIP",
    "box_area",
    "box_iou",
    "encode_boxes",
    "decode_boxes",
    "clip_boxes",
    "remove_small_boxes",
    "nms",
    "batched_nms",
]

#: Upper clamp of decoded ``dw``/``dh``: a box grows at most 1000/16 times its reference (torchvision).
BBOX_XFORM_CLIP: float = math.log(1000.0 / 16)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area ``(x2 - x1) * (y2 - y1)`` of every box ``[..., 4]`` (negative if inverted, as torchvision)."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection over union ``[N, M]`` of ``boxes1 [N, 4]`` and ``boxes2 [M, 4]``.

    ``IoU = inter / (area1 + area2 - inter)``; two zero-area boxes give NaN (0/0), as in torchvision.
    """
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def encode_boxes(
    targets: torch.Tensor, references: torch.Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)
) -> torch.Tensor:
    """Deltas ``[..., 4]`` that turn ``references`` (anchors/proposals) into ``targets`` (see module doc)."""
    wx, wy, ww, wh = weights
    gx, gy, gw, gh = _centre_size(targets)
    ax, ay, aw, ah = _centre_size(references)
    return torch.stack(
        (wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw), wh * torch.log(gh / ah)), dim=-1
    )


def decode_boxes(
    deltas: torch.Tensor,
    references: torch.Tensor,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    clamp: float = BBOX_XFORM_CLIP,
) -> torch.Tensor:
    """Boxes ``[..., 4]`` obtained by applying ``deltas`` to ``references`` (broadcast, e.g. ``[K, C, 4]``
    deltas against ``[K, 1, 4]`` proposals); ``dw``/``dh`` are clamped at ``clamp`` after unweighting."""
    wx, wy, ww, wh = weights
    ax, ay, aw, ah = _centre_size(references.to(deltas.dtype))
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw = (deltas[..., 2] / ww).clamp(max=clamp)
    dh = (deltas[..., 3] / wh).clamp(max=clamp)
    cx, cy = dx * aw + ax, dy * ah + ay
    half_w, half_h = 0.5 * torch.exp(dw) * aw, 0.5 * torch.exp(dh) * ah
    return torch.stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=-1)


def clip_boxes(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clamp boxes ``[..., 4]`` into an image of ``size = (height, width)``: x into [0, W], y into [0, H]."""
    height, width = size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices (ascending) of the boxes ``[N, 4]`` whose width and height are both ``>= min_size``."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return torch.where((w >= min_size) & (h >= min_size))[0]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices (int64) of the kept boxes, by decreasing score.

    Exactly torchvision's ``ops.nms``: visit boxes by decreasing score; keep a box unless an already kept
    box overlaps it with ``IoU > iou_threshold`` (strict). Ties in score keep the input order (a stable
    sort; torchvision leaves their order unspecified). NaN IoUs (zero-area pairs) never suppress.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    ordered = boxes[order]
    over = (box_iou(ordered, ordered) > iou_threshold).cpu().numpy()
    removed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    for i in range(n):  # greedy over precomputed IoU rows, as torchvision's CPU kernel does
        if removed[i]:
            continue
        keep.append(i)
        removed |= over[i]  # marks only boxes after i that matter: earlier ones are already decided
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS within each label only: indices of kept boxes by decreasing score (torchvision's ``batched_nms``).

    The coordinate-offset trick: every label's boxes are shifted by ``label * (max coordinate + 1)``, so
    boxes of different labels never overlap, and one :func:`nms` does all labels at once.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    offsets = labels.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
