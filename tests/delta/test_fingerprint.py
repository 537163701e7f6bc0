"""The weights fingerprint that threshold files record: stable where the weights are, changed where not."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from deltatune.delta import convert
from deltatune.delta.fingerprint import PREFIX, weights_fingerprint
from deltatune.delta.thresholds import load_thresholds
from deltatune.workload import load_workload
from tests.delta.nets import AllOps, randomize_bn


def test_same_weights_in_another_layout_dtype_or_copy_keep_the_fingerprint() -> None:
    model = randomize_bn(AllOps()).eval()
    fp = weights_fingerprint(model)
    assert fp.startswith(PREFIX) and len(fp) == len(PREFIX) + 16
    assert weights_fingerprint(copy.deepcopy(model)) == fp
    assert weights_fingerprint(copy.deepcopy(model).to(memory_format=torch.channels_last)) == fp
    assert weights_fingerprint(copy.deepcopy(model).double()) == fp  # float64 exactness checks
    net = convert(model)
    assert net.weights_fingerprint == fp  # the dense copy the network keeps (channels-last or not)


def test_any_weight_or_buffer_change_changes_the_fingerprint() -> None:
    model = randomize_bn(AllOps()).eval()
    fp = weights_fingerprint(model)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bumped = copy.deepcopy(model)
    with torch.no_grad():
        dict(bumped.named_modules())[_name(model, conv)].weight.view(-1)[0] += 1e-6
    assert weights_fingerprint(bumped) != fp
    stats = copy.deepcopy(model)
    dict(stats.named_modules())[_name(model, bn)].running_var.mul_(1.5)  # a buffer, not a parameter
    assert weights_fingerprint(stats) != fp
    assert weights_fingerprint(copy.deepcopy(model).bfloat16()) != fp  # rounding changes the weights
    net = convert(model)
    with torch.no_grad():  # computed on each call: follows weights changed in place
        next(net.dense_model.parameters()).view(-1)[0] += 1.0
    assert net.weights_fingerprint != fp


def _name(model: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(n for n, m in model.named_modules() if m is module)


SETTINGS = Path(__file__).resolve().parents[2] / "studies" / "thresholds"


@pytest.mark.parametrize("model", ["hrnet", "mobilenet_v2", "blazepose"])
def test_documented_settings_name_the_default_weights_they_were_tuned_on(model: str) -> None:
    """The committed settings hold for the models' default weights, and say so; a change of those weights
    (a new distillation, another conversion) fails here until the setting is tuned again."""
    tf = load_thresholds(SETTINGS / f"{model}.json")
    assert tf.weights == weights_fingerprint(load_workload(model, weights="default", frames=2).model)
