"""Crop boxes, crop-and-resize, and keypoint coordinate conventions used by distillation.

Conventions (one place, so teacher targets and student evaluation agree):

- A :class:`Box` is an axis-aligned rectangle in frame pixels, ``x0, y0`` its top-left *edge* and ``w, h``
  its size (integers, so a crop is exact). It may reach outside the frame; outside pixels are zeros.
- :func:`crop_resize` cuts a box and resizes it with bilinear interpolation and antialiasing, exactly like
  :class:`deltatune.data.video.FrameStreams` does for a window, so a model sees identical pixels in
  training and in the search.
- *Edge* coordinates put pixel ``i``'s centre at ``i + 0.5`` (BlazePose's landmarks are edge coordinates
  of its 256×256 input). *Index* coordinates put it at ``i`` (the official HRNet convention: heatmap pixel
  ``i`` is input pixel ``4·i``, :func:`deltatune.metrics.heatmap_to_input_coords`). Frame keypoints are
  stored in edge coordinates; :func:`frame_to_crop` returns crop *index* coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Box", "crop_resize", "frame_to_crop", "person_box", "square_box"]


@dataclass(frozen=True)
class Box:
    """A crop rectangle in frame pixels: left edge ``x0``, top edge ``y0``, width ``w``, height ``h``."""

    x0: int
    y0: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        """Centre ``(x, y)`` in edge coordinates."""
        return self.x0 + self.w / 2, self.y0 + self.h / 2


def square_box(box: Box) -> Box:
    """The square of side ``max(w, h)`` with the same centre (the teacher's crop around a window)."""
    side = max(box.w, box.h)
    cx, cy = box.center
    return Box(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side)


def person_box(points: Tensor, *, scale: float = 1.25, aspect: float = 0.75) -> Box:
    """The top-down crop around a person, as the official HRNet ``_xywh2cs``: the tight box of ``points``
    ``[K, 2]`` widened to ``aspect`` = w/h (3:4 for 256×192 inputs) and enlarged by ``scale`` (1.25)."""
    x0, y0 = float(points[:, 0].min()), float(points[:, 1].min())
    x1, y1 = float(points[:, 0].max()), float(points[:, 1].max())
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    w, h = w * scale, h * scale
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return Box(int(round(cx - w / 2)), int(round(cy - h / 2)), max(8, int(round(w))), max(8, int(round(h))))


def crop_resize(frame: Tensor, box: Box, size: tuple[int, int]) -> Tensor:
    """Cut ``box`` out of an RGB ``uint8`` frame ``[3, H, W]`` and resize it to ``size`` (H, W).

    Returns float32 ``[3, *size]`` in [0, 1]. Parts of the box outside the frame are black. Inside the
    frame the result equals :class:`~deltatune.data.video.FrameStreams`' crop of the same window.

    >>> frame = torch.zeros(3, 40, 30, dtype=torch.uint8)
    >>> crop_resize(frame, Box(-5, 0, 30, 40), (16, 12)).shape
    torch.Size([3, 16, 12])
    """
    _, fh, fw = frame.shape
    x1, y1 = box.x0 + box.w, box.y0 + box.h
    sx0, sy0, sx1, sy1 = max(box.x0, 0), max(box.y0, 0), min(x1, fw), min(y1, fh)
    if sx0 == box.x0 and sy0 == box.y0 and sx1 == x1 and sy1 == y1:
        crop = frame[:, sy0:sy1, sx0:sx1]
    else:
        crop = torch.zeros((3, box.h, box.w), dtype=frame.dtype)
        if sx1 > sx0 and sy1 > sy0:
            crop[:, sy0 - box.y0 : sy1 - box.y0, sx0 - box.x0 : sx1 - box.x0] = frame[:, sy0:sy1, sx0:sx1]
    t = crop.unsqueeze(0).to(torch.float32).div_(255.0)
    if tuple(t.shape[-2:]) != tuple(size):
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
    return t[0]


def frame_to_crop(points: Tensor, box: Box, size: tuple[int, int]) -> Tensor:
    """Map ``[..., 2]`` frame *edge* coordinates into *index* coordinates of ``box`` resized to ``size``."""
    h, w = size
    scale = torch.tensor([w / box.w, h / box.h], dtype=points.dtype)
    origin = torch.tensor([box.x0, box.y0], dtype=points.dtype)
    return (points - origin) * scale - 0.5
