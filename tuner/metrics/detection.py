"""Detection accuracy for one class (person): average best IoU per ground-truth box, and AP at IoU 0.5.

Inputs are per frame: predicted boxes ``[P_f, 4]`` with scores ``[P_f]``, and ground-truth boxes
``[G_f, 4]``, all ``(x1, y1, x2, y2)`` in the same pixel coordinates; IoU is continuous (no "+1").

**Average IoU** (the seed's definition). Over all ground-truth boxes ``g`` of all frames,

    avg_iou = (1 / G) * sum_g max_{p in preds(frame(g))} IoU(g, p)      (max over no boxes = 0)

with ``G`` the total number of ground-truth boxes. Scores are ignored, so a false positive that
overlaps no ground truth leaves it unchanged. NaN when there is no ground truth at all.

**mAP@0.5** (PASCAL VOC, all-point interpolation; one class, so mAP = AP). Sort all predictions of all
frames by decreasing score (stable: ties keep frame order, then in-frame order). Each prediction takes
the ground truth of its frame with the highest IoU; it is a true positive iff that IoU ``>= 0.5`` and
that ground truth is not yet taken (which it then is), else a false positive (VOC's rule: no fallback
to the second-best ground truth). With ``TP_i``/``FP_i`` the cumulative counts after the ``i``-th
prediction, ``recall_i = TP_i / G`` and ``precision_i = TP_i / (TP_i + FP_i)``; the precision envelope
``p(r) = max_{i: recall_i >= r} precision_i`` and

    AP = sum_i (recall_i - recall_{i-1}) * p(recall_i),     recall_0 = 0

which is the area under the envelope. NaN when there is no ground truth at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from deltatune.errors import ConfigError

__all__ = ["average_iou", "average_precision", "pairwise_iou"]


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """IoU ``[N, M]`` (float64 numpy) of boxes ``a [N, 4]`` and ``b [M, 4]``; 0 where a union is empty."""
    x = torch.as_tensor(a, dtype=torch.float64).reshape(-1, 4).numpy()
    y = torch.as_tensor(b, dtype=torch.float64).reshape(-1, 4).numpy()
    lt = np.maximum(x[:, None, :2], y[None, :, :2])
    rb = np.minimum(x[:, None, 2:], y[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_x = (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    area_y = (y[:, 2] - y[:, 0]) * (y[:, 3] - y[:, 1])
    union = area_x[:, None] + area_y[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _check_frames(name: str, n: int, gt_boxes: Sequence[torch.Tensor]) -> None:
    if n != len(gt_boxes):
        raise ConfigError(f"{name}: {n} frames of predictions but {len(gt_boxes)} frames of ground truth")


def average_iou(pred_boxes: Sequence[torch.Tensor], gt_boxes: Sequence[torch.Tensor]) -> float:
    """Mean over all ground-truth boxes of the best IoU with a prediction of the same frame (0 if none)."""
    _check_frames("average_iou", len(pred_boxes), gt_boxes)
    best: list[np.ndarray] = []
    for preds, gts in zip(pred_boxes, gt_boxes, strict=True):
        iou = pairwise_iou(gts, preds)
        best.append(iou.max(axis=1) if iou.shape[1] else np.zeros(iou.shape[0]))
    total = np.concatenate(best) if best else np.zeros(0)
    return float(total.mean()) if total.size else float("nan")


def average_precision(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    *,
    iou_threshold: float = 0.5,
) -> float:
    """VOC all-point interpolated AP at ``iou_threshold`` (mAP@0.5 for one class; module docstring)."""
    _check_frames("average_precision", len(pred_boxes), gt_boxes)
    _check_frames("average_precision (scores)", len(pred_scores), gt_boxes)
    n_gt = sum(int(g.reshape(-1, 4).shape[0]) for g in gt_boxes)
    if n_gt == 0:
        return float("nan")
    frame_of, score_of, best_gt, best_iou = [], [], [], []
    for f, (preds, scores, gts) in enumerate(zip(pred_boxes, pred_scores, gt_boxes, strict=True)):
        scores_np = torch.as_tensor(scores, dtype=torch.float64).reshape(-1).numpy()
        iou = pairwise_iou(preds, gts)  # [P, G]
        if iou.shape[0] != scores_np.shape[0]:
            raise ConfigError(
                f"average_precision: frame {f} has {iou.shape[0]} boxes but {scores_np.size} scores"
            )
        frame_of += [f] * iou.shape[0]
        score_of.append(scores_np)
        best_gt.append(iou.argmax(axis=1) if iou.shape[1] else np.full(iou.shape[0], -1))
        best_iou.append(iou.max(axis=1) if iou.shape[1] else np.zeros(iou.shape[0]))
    scores_all = np.concatenate(score_of) if score_of else np.zeros(0)
    gt_all, iou_all = np.concatenate(best_gt).astype(int), np.concatenate(best_iou)
    order = np.argsort(-scores_all, kind="stable")
    taken: set[tuple[int, int]] = set()
    tp = np.zeros(order.size)
    for rank, i in enumerate(order):
        key = (frame_of[i], int(gt_all[i]))
        if iou_all[i] >= iou_threshold and key not in taken:
            taken.add(key)
            tp[rank] = 1.0
    ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = np.concatenate([[0.0], ctp / n_gt, [1.0]])
    precision = np.concatenate([[0.0], ctp / np.maximum(ctp + cfp, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    changes = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))
