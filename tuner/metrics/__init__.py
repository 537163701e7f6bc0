"""Accuracy metrics: heatmap decoding (official HRNet/SimpleBaselines rules) and PCK / PCKh.

Decoding lives in :mod:`deltatune.metrics.decode`, the PCK family in :mod:`deltatune.metrics.pck`,
fidelity against the dense model (present joints only) in :mod:`deltatune.metrics.fidelity`, and a
classifier's top-1 fidelity in :mod:`deltatune.metrics.classification`.
"""

from __future__ import annotations

from deltatune.metrics.classification import TopOneScore, logits_of, top1_classes, top1_fidelity
from deltatune.metrics.decode import (
    COCO_FLIP_PAIRS,
    MPII_FLIP_PAIRS,
    decode_heatmaps,
    flip_back,
    flip_test_average,
    heatmap_to_input_coords,
)
from deltatune.metrics.fidelity import FidelityScore, fidelity, present_joints
from deltatune.metrics.pck import (
    PCKResult,
    accuracy_loss_points,
    box_sizes,
    pck,
    pckh,
    pose_frame_table,
    summarize,
)
from deltatune.metrics.video import PoseEvaluation, evaluate_pose, heatmaps_of, predict_keypoints

__all__ = [
    "TopOneScore",
    "logits_of",
    "top1_classes",
    "top1_fidelity",
    "FidelityScore",
    "fidelity",
    "present_joints",
    "PoseEvaluation",
    "evaluate_pose",
    "heatmaps_of",
    "predict_keypoints",
    "COCO_FLIP_PAIRS",
    "MPII_FLIP_PAIRS",
    "PCKResult",
    "accuracy_loss_points",
    "box_sizes",
    "decode_heatmaps",
    "flip_back",
    "flip_test_average",
    "heatmap_to_input_coords",
    "pck",
    "pckh",
    "pose_frame_table",
    "summarize",
]
