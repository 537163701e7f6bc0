"""Fidelity: PCK of a delta network's keypoints against the dense model's own, on present joints only.

Without labels, the reference of every accuracy number is the dense model's decoded keypoints on the same
frames, and only *visible/present* reference keypoints count (docs/design.md#metrics). For a dense-model
reference, a keypoint is **present** when the dense heatmap's peak exceeds the model's presence threshold
(``ModelCard.present_confidence``): 0.2 for the heatmap models trained on unit-peak Gaussian targets (HRNet,
SimpleBaselines and the students distilled here), the official HRNet evaluation's ``TEST.IN_VIS_THRE``, below
which its COCO evaluation treats a joint as invisible. Why it matters: a crop with nobody in it, or an
occluded limb, gives near-flat heatmaps whose argmax jumps under perturbations far smaller than any
truncation (on vtest crops about half the dense HRNet joints peak below 0.2); counting them scores noise,
not the delta network's error. Models whose heatmaps are not on a 0..1 scale (BlazePose's are unnormalised)
have no threshold and count every keypoint, as ``--all-joints`` does for any model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deltatune.metrics.pck import pck

__all__ = ["FidelityScore", "fidelity", "present_joints"]


def present_joints(confidence: Any, min_confidence: float | None) -> np.ndarray | None:
    """Which reference keypoints count: ``confidence > min_confidence`` (heatmap peaks, ``[..., K]``), or
    ``None`` (every keypoint) when ``min_confidence`` is ``None``."""
    if min_confidence is None:
        return None
    c = confidence.detach().cpu().numpy() if isinstance(confidence, torch.Tensor) else np.asarray(confidence)
    return c > float(min_confidence)


@dataclass(frozen=True)
class FidelityScore:
    """Accuracy loss against the dense model, in PCK percentage points (1.0 = one point).

    Attributes:
        loss: ``100 · (1 − PCK@α)`` over the present reference keypoints (0 when none is present).
        loss_all_joints: the same over every reference keypoint, reported beside it for transparency.
        present_fraction: share of reference keypoints that are present (1.0 without a threshold).
        min_confidence: the presence threshold used (``None``: every keypoint counted).
    """

    loss: float
    loss_all_joints: float
    present_fraction: float
    min_confidence: float | None


def _loss(value: float) -> float:
    return 0.0 if math.isnan(value) else 100.0 * (1.0 - value)


def fidelity(pred: Any, ref: Any, ref_confidence: Any, *, min_confidence: float | None,
             alpha: float = 0.2) -> FidelityScore:
    """Score keypoints ``pred`` against the dense keypoints ``ref`` (both ``[..., K, 2]``) whose heatmap
    peaks are ``ref_confidence`` (``[..., K]``); see the module docstring for what counts.

    Example:
        >>> ref = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [5.0, 5.0]]])
        >>> conf = np.array([[0.9, 0.8, 0.7, 0.05]])  # the last joint is not present
        >>> pred = ref + np.array([[[0.5, 0.0], [0.0, 0.5], [0.5, 0.0], [9.0, 0.0]]])
        >>> s = fidelity(pred, ref, conf, min_confidence=0.2)
        >>> s.loss, s.loss_all_joints, s.present_fraction
        (0.0, 25.0, 0.75)
    """
    visible = present_joints(ref_confidence, min_confidence)
    every = pck(pred, ref, alpha=alpha)
    counted = every if visible is None else pck(pred, ref, visible=visible, alpha=alpha)
    return FidelityScore(
        loss=_loss(counted.value),
        loss_all_joints=_loss(every.value),
        present_fraction=1.0 if visible is None else float(visible.mean()) if visible.size else 0.0,
        min_confidence=min_confidence,
    )
