"""Training samples for distillation: jittered crops of real frames and Gaussian heatmap targets.

A sample is a crop window of one frame, jittered in scale and position, optionally mirrored (COCO flip
pairs swapped) and colour-jittered, resized to the student's input size with the same antialiased
bilinear resize the search uses. Its target is one Gaussian per joint (σ = 2 heatmap pixels at stride 4,
as the official HRNet targets) centred on the keypoint of the crop's reference person
(:meth:`TeacherTargets.primary`) mapped into the crop, and a per-joint weight: the teacher's presence
(0 for joints outside the heatmap, and for every joint of a crop without a reference person).

A crop is either a default window or the top-down box around one teacher person
(:func:`deltatune.train.geometry.person_box`); see :func:`deltatune.train.distill.training_samples`.

Every random draw comes from a ``torch.Generator`` the caller seeds, so a sample is a pure function of
(frame, teacher keypoints, seed): epochs are reproducible and resumable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .geometry import Box, crop_resize, frame_to_crop
from .teacher import TeacherTargets

__all__ = ["AugmentConfig", "gaussian_heatmaps", "make_sample", "flip_permutation", "jitter_box"]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths. ``scale``: box size × U[1-scale, 1+scale]; ``shift``: centre moves by
    U[-shift, shift] × box size; ``flip``: mirror probability; ``color``: brightness, contrast and
    saturation factors in U[1-color, 1+color]; ``plain``: probability of the exact window (no jitter)."""

    scale: float = 0.2
    shift: float = 0.1
    flip: float = 0.5
    color: float = 0.2
    plain: float = 0.3

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all (evaluation and tests)."""
        return cls(scale=0.0, shift=0.0, flip=0.0, color=0.0, plain=1.0)


def flip_permutation(flip_pairs: Sequence[tuple[int, int]], num_joints: int) -> list[int]:
    """Joint order after a horizontal mirror: each pair swapped, others in place."""
    perm = list(range(num_joints))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def jitter_box(box: Box, aug: AugmentConfig, gen: torch.Generator) -> Box:
    """A randomly scaled and shifted copy of ``box`` (same aspect ratio), or ``box`` itself."""
    if float(torch.rand((), generator=gen)) < aug.plain:
        return box
    s = _uniform(gen, 1 - aug.scale, 1 + aug.scale)
    w, h = max(8, round(box.w * s)), max(8, round(box.h * s))
    cx = box.center[0] + _uniform(gen, -aug.shift, aug.shift) * box.w
    cy = box.center[1] + _uniform(gen, -aug.shift, aug.shift) * box.h
    return Box(int(round(cx - w / 2)), int(round(cy - h / 2)), w, h)


def _color_jitter(x: Tensor, strength: float, gen: torch.Generator) -> Tensor:
    if strength <= 0:
        return x
    b, c, s = (_uniform(gen, 1 - strength, 1 + strength) for _ in range(3))
    x = x * b
    mean = x.mean()
    x = (x - mean) * c + mean
    gray = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    x = (x - gray) * s + gray
    return x.clamp_(0.0, 1.0)


def gaussian_heatmaps(centers: Tensor, size: tuple[int, int], *, sigma: float = 2.0) -> tuple[Tensor, Tensor]:
    """Unnormalised Gaussians (peak 1) at ``centers`` ``[K, 2]`` (x, y heatmap index coordinates).

    Returns ``(heatmaps [K, h, w], inside [K] bool)``; ``inside`` is false for centres off the heatmap.

    >>> hm, inside = gaussian_heatmaps(torch.tensor([[3.0, 2.0]]), (8, 6))
    >>> float(hm[0, 2, 3]), bool(inside[0])
    (1.0, True)
    """
    h, w = size
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    cx, cy = centers[:, 0].view(-1, 1, 1), centers[:, 1].view(-1, 1, 1)
    hm = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    inside = (centers[:, 0] >= 0) & (centers[:, 0] <= w - 1) & (centers[:, 1] >= 0) & (centers[:, 1] <= h - 1)
    return hm, inside


def make_sample(
    frame: Tensor,
    window: Box,
    targets: TeacherTargets,
    range_index: int,
    frame_index: int,
    *,
    size: tuple[int, int],
    gen: torch.Generator,
    aug: AugmentConfig,
    flip_pairs: Sequence[tuple[int, int]],
    stride: int = 4,
    sigma: float = 2.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """One training sample: ``(image [3, H, W] in [0, 1], target [K, H/s, W/s], weight [K])``.

    ``window`` is jittered, then the crop's reference person is :meth:`TeacherTargets.primary` of the
    jittered box; without one the target is empty and every weight 0 (nothing to learn from).
    """
    crop_box = jitter_box(window, aug, gen)
    image = crop_resize(frame, crop_box, size)
    person = targets.primary(range_index, frame_index, crop_box)
    k = targets.keypoints.shape[1]
    if person is None:
        keypoints, weight = torch.full((k, 2), -1e4), torch.zeros(k)
    else:
        keypoints, weight = targets.keypoints[person], targets.presence[person].clone().float()
    points = frame_to_crop(keypoints, crop_box, size)
    if float(torch.rand((), generator=gen)) < aug.flip:
        image = image.flip(-1)
        points = torch.stack([size[1] - 1 - points[:, 0], points[:, 1]], dim=-1)
        perm = flip_permutation(flip_pairs, k)
        points, weight = points[perm], weight[perm]
    image = _color_jitter(image, aug.color, gen)
    hm_size = (size[0] // stride, size[1] // stride)
    target, inside = gaussian_heatmaps(points / stride, hm_size, sigma=sigma)
    if person is None:
        target = torch.zeros_like(target)
    return image, target, weight * inside
