"""Training: distil pose CNNs from a pretrained teacher on real video (the default HRNet weights), and
fine-tune a pretrained model to change less between frames (:mod:`.finetune`).

Modules: :mod:`.teacher` (BlazePose keypoints on crops, COCO-17 mapping, cache), :mod:`.samples`
(augmented crops and Gaussian heatmap targets), :mod:`.distill` (the training loop, checkpoints, export),
:mod:`.evaluate` (held-out PCK against the teacher), :mod:`.geometry` (boxes and coordinate conventions).
Person detection: :mod:`.detection` (train Faster R-CNN's head on pseudo-label boxes, on dense or delta
backbone features), :mod:`.detection_data` (frames, boxes, cached features), :mod:`.detection_eval`
(average IoU, mAP@0.5 and FPS with a dense or delta backbone).
"""

from __future__ import annotations

from .detection import DetectionTrainConfig, DetectionTrainResult, train_detector
from .detection_eval import DetectionEvalResult, evaluate_checkpoint, evaluate_detector
from .distill import (
    DEFAULT_HELDOUT_FRAMES,
    DEFAULT_TRAIN_FRAMES,
    TEACHERS,
    DistillConfig,
    DistillResult,
    build_student,
    distill,
    distill_loss,
    evaluate_student,
    export_weights,
)
from .evaluate import FidelityResult, evaluate_fidelity
from .finetune import FinetuneConfig, FinetuneResult, finetune
from .geometry import Box, crop_resize, frame_to_crop, square_box
from .samples import AugmentConfig, gaussian_heatmaps, make_sample
from .teacher import FrameRange, TeacherTargets, load_frames, parse_frame_ranges, teacher_targets

__all__ = [
    "DetectionTrainConfig",
    "DetectionTrainResult",
    "train_detector",
    "DetectionEvalResult",
    "evaluate_checkpoint",
    "evaluate_detector",
    "DEFAULT_HELDOUT_FRAMES",
    "DEFAULT_TRAIN_FRAMES",
    "TEACHERS",
    "AugmentConfig",
    "Box",
    "DistillConfig",
    "DistillResult",
    "FidelityResult",
    "FinetuneConfig",
    "FinetuneResult",
    "FrameRange",
    "TeacherTargets",
    "build_student",
    "crop_resize",
    "distill",
    "distill_loss",
    "evaluate_fidelity",
    "evaluate_student",
    "export_weights",
    "finetune",
    "frame_to_crop",
    "gaussian_heatmaps",
    "load_frames",
    "make_sample",
    "parse_frame_ranges",
    "square_box",
    "teacher_targets",
]
