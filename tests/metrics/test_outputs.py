"""The one rule every command reads a model's output by (a tensor, a tuple's first item, a dict's entry)."""

from __future__ import annotations

import torch

from deltatune.metrics.outputs import described, output_tensor


def test_a_tensor_a_tuples_first_item_or_the_tasks_entry_of_a_dict() -> None:
    t = torch.ones(2, 3)
    assert output_tensor(t, "logits") is t and output_tensor((t, "aux"), "logits") is t
    assert output_tensor([t], "heatmaps") is t and output_tensor({"logits": t, "feat": 0}, "logits") is t
    assert output_tensor({"scores": t}, "logits") is None and output_tensor((), "logits") is None
    assert output_tensor(("no", t), "logits") is None and output_tensor(3.0, "logits") is None
    assert described({"scores": t, "feat": t}) == "dict (keys scores, feat)" and described([]) == "list"
