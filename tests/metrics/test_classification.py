"""Top-1 fidelity of a classifier against the dense model (deltatune.metrics.classification)."""

from __future__ import annotations

import pytest
import torch

from deltatune.metrics import top1_classes, top1_fidelity


def test_top1_classes_flatten_everything_after_the_batch_axis() -> None:
    logits = torch.zeros(2, 3, 2)
    logits[0, 2, 1] = 1.0  # flat index 5
    logits[1, 0, 1] = 1.0  # flat index 1
    assert top1_classes(logits).tolist() == [5, 1]


def test_loss_is_the_share_of_changed_classes_in_points() -> None:
    ref = torch.tensor([[3, 1], [2, 0], [7, 7]])
    pred = ref.clone()
    assert top1_fidelity(pred, ref).loss == 0.0
    pred[1, 1] = 9
    s = top1_fidelity(pred, ref)
    assert s.samples == 6 and s.agreement == pytest.approx(5 / 6) and s.loss == pytest.approx(100 / 6)


def test_no_samples_agree_and_mismatched_shapes_are_refused() -> None:
    empty = torch.zeros(0, 2, dtype=torch.long)
    assert top1_fidelity(empty, empty).loss == 0.0
    with pytest.raises(ValueError, match="shape"):
        top1_fidelity(torch.zeros(3, dtype=torch.long), torch.zeros(2, dtype=torch.long))
