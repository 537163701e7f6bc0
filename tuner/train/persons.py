"""Person proposals for the teacher on a static camera: background subtraction, then one square per blob.

BlazePose wants a tight, roughly centred person crop (MediaPipe feeds it a detector ROI); on vtest's
240×320 windows the pedestrians are too small and its pose flag stays near 0. Without a person
detector, the static camera does the job: the per-pixel median of the training frames is the
background, pixels whose largest channel difference exceeds ``threshold`` are foreground, and each
connected foreground blob of plausible size becomes a square box (side ``margin`` × its longer side)
that the teacher runs on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .geometry import Box

__all__ = ["background_model", "foreground_blobs", "person_boxes"]


def background_model(frames: Tensor, *, max_frames: int = 100) -> Tensor:
    """Per-pixel median (uint8 ``[3, H, W]``) of up to ``max_frames`` evenly spaced frames of ``frames``."""
    step = max(1, frames.shape[0] // max_frames)
    return frames[::step].median(dim=0).values


def foreground_blobs(
    frame: Tensor, background: Tensor, *, threshold: int = 30, cell: int = 4
) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(x0, y0, x1, y1)`` (pixel edges, inside the frame) of the connected foreground
    blobs of ``frame`` (uint8 ``[3, H, W]``) against ``background``, in label order (top to bottom).

    A pixel is foreground when its largest channel difference exceeds ``threshold``; the mask is computed
    on ``cell``×``cell`` cells (max over the cell) and cleaned by a binary opening (2×2) and closing
    (3×3), so box edges are multiples of ``cell`` (clipped at the frame's border).
    """
    from scipy import ndimage

    diff = (frame.to(torch.int16) - background.to(torch.int16)).abs().amax(dim=0)
    h, w = diff.shape
    coarse = torch.nn.functional.max_pool2d(diff[None, None].float(), cell, ceil_mode=True)[0, 0]
    mask = (coarse > threshold).numpy()
    mask = ndimage.binary_opening(mask, structure=np.ones((2, 2)))
    mask = ndimage.binary_closing(mask, structure=np.ones((3, 3)))
    labels, _ = ndimage.label(mask)
    blobs = []
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        y0, y1 = sl[0].start * cell, min(h, sl[0].stop * cell)
        x0, x1 = sl[1].start * cell, min(w, sl[1].stop * cell)
        blobs.append((x0, y0, x1, y1))
    return blobs


def person_boxes(
    frame: Tensor,
    background: Tensor,
    *,
    threshold: int = 30,
    cell: int = 4,
    min_height: int = 40,
    margin: float = 1.3,
    min_side: int = 96,
) -> list[Box]:
    """Square boxes around foreground blobs of ``frame`` (uint8 ``[3, H, W]``) against ``background``.

    The blobs are :func:`foreground_blobs`'; blobs shorter than ``min_height`` pixels are dropped.
    """
    boxes = []
    for x0, y0, x1, y1 in foreground_blobs(frame, background, threshold=threshold, cell=cell):
        if y1 - y0 < min_height:
            continue
        side = max(min_side, int(round(margin * max(y1 - y0, x1 - x0))))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        boxes.append(Box(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side))
    return boxes
