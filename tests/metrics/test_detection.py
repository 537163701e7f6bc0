"""Average IoU and AP@0.5 (VOC all-point) on hand-worked examples."""

from __future__ import annotations

import math

import pytest
import torch

from deltatune.errors import ConfigError
from deltatune.metrics.detection import average_iou, average_precision, pairwise_iou

G1, G2, G3 = [0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [0.0, 0.0, 4.0, 4.0]
P1 = [0.0, 0.0, 10.0, 5.0]  # IoU with G1: 50 / 100 = 0.5 exactly
P2 = [20.0, 0.0, 30.0, 10.0]  # equals G2
FAR = [50.0, 50.0, 60.0, 60.0]  # overlaps nothing
GTS = [torch.tensor([G1, G2]), torch.tensor([G3])]  # frame 1's G3 is never detected


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def test_pairwise_iou_by_hand():
    assert pairwise_iou(_t([P1, FAR]), _t([G1, G2])).tolist() == [[0.5, 0.0], [0.0, 0.0]]


def test_average_iou_is_the_mean_best_overlap_per_ground_truth_box():
    preds = [_t([P1, P2]), _t([])]
    assert average_iou(preds, GTS) == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def test_ap_counts_iou_of_exactly_one_half_as_a_hit():
    preds, scores = [_t([P1, P2]), _t([])], [torch.tensor([0.9, 0.8]), torch.tensor([])]
    # P1 TP, P2 TP: recall 1/3, 2/3 at precision 1
    assert average_precision(preds, scores, GTS) == pytest.approx(2 / 3)
    # at 0.51, P1 (first by score) misses: FP then TP, precision 1/2 at recall 1/3
    assert average_precision(preds, scores, GTS, iou_threshold=0.51) == pytest.approx(1 / 6)


def test_a_confident_false_positive_lowers_ap_but_not_average_iou():
    preds = [_t([P1, P2, FAR]), _t([])]
    scores = [torch.tensor([0.9, 0.8, 0.95]), torch.tensor([])]
    assert average_iou(preds, GTS) == pytest.approx(0.5)
    # FAR FP, P1 TP, P2 TP: precision 0, 1/2, 2/3 at recall 0, 1/3, 2/3; envelope 2/3 on both steps
    assert average_precision(preds, scores, GTS) == pytest.approx(1 / 3 * 2 / 3 + 1 / 3 * 2 / 3)


def test_each_ground_truth_box_is_matched_once_greedily_by_score():
    dup = [_t([P1, P2, G1]), _t([])]
    # the exact duplicate of G1 comes first and takes G1; P1's best box is G1, taken: FP (no fallback)
    first = [torch.tensor([0.9, 0.8, 0.95]), torch.tensor([])]
    # TP, FP, TP: recall 1/3, 1/3, 2/3, precision 1, 1/2, 2/3 -> 1/3 * 1 + 1/3 * 2/3
    assert average_precision(dup, first, GTS) == pytest.approx(1 / 3 + 2 / 9)
    last = [torch.tensor([0.9, 0.8, 0.5]), torch.tensor([])]
    assert average_precision(dup, last, GTS) == pytest.approx(2 / 3)  # a FP after the last TP costs nothing
    perfect = [_t([G1, G2]), _t([G3])]
    assert average_precision(perfect, [torch.ones(2), torch.ones(1)], GTS) == 1.0
    assert average_iou(perfect, GTS) == 1.0


def test_no_ground_truth_is_nan_and_mismatched_frames_are_refused():
    assert math.isnan(average_iou([_t([P1])], [_t([])]))
    assert math.isnan(average_precision([_t([P1])], [torch.ones(1)], [_t([])]))
    with pytest.raises(ConfigError, match="2 frames of predictions but 1 frames"):
        average_iou([_t([]), _t([])], [_t([G1])])
    with pytest.raises(ConfigError, match="frame 0 has 1 boxes but 2 scores"):
        average_precision([_t([P1])], [torch.ones(2)], [_t([G1])])
