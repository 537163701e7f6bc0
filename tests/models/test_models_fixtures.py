"""Our HRNet / Pose-ResNet definitions load the official checkpoints' state_dicts strictly.

The fixtures in tests/models/fixtures/official_keys list every key, shape and dtype of the official models,
generated from the upstream repos (see the README.txt beside them). A checkpoint built from them must load
through our public loader with no missing or unexpected key, also without the ``num_batches_tracked``
buffers that old files lack.
"""

from __future__ import annotations

import pytest
import torch
from zoo_fixtures import FIXTURE_MODELS, load_fixture, zero_state_dict

from deltatune_models import create_model, load_checkpoint, model_info


@pytest.fixture(scope="module", params=sorted(FIXTURE_MODELS))
def case(request):
    stem = request.param
    fixture = load_fixture(stem)
    return stem, fixture, create_model(FIXTURE_MODELS[stem], weights=None)


def test_keys_shapes_dtypes_and_order_match(case):
    _, fixture, model = case
    expected = [(e["key"], tuple(e["shape"]), e["dtype"]) for e in fixture["keys"]]
    ours = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert ours == expected
    assert sum(p.numel() for p in model.parameters()) == fixture["param_count"]


def test_strict_load_of_fixture_checkpoint(case, tmp_path):
    _, fixture, model = case
    path = tmp_path / "official.pth"
    torch.save(zero_state_dict(fixture), path)
    load_checkpoint(model, path)
    first = fixture["keys"][0]["key"]
    assert torch.count_nonzero(model.state_dict()[first]) == 0  # the file's zeros really were copied in


def test_strict_load_without_num_batches_tracked(case, tmp_path):
    _, fixture, model = case
    state = {k: v for k, v in zero_state_dict(fixture).items() if not k.endswith("num_batches_tracked")}
    assert len(state) < len(fixture["keys"])
    path = tmp_path / "old_torch04.pth.tar"
    torch.save(state, path)
    load_checkpoint(model, path)


@pytest.mark.parametrize("stem", ["hrnet_w32_coco_256x192", "pose_resnet50_coco_256x192"])
def test_dataparallel_wrapped_checkpoint_loads(stem, tmp_path):
    # model_best.pth.tar of SimpleBaselines: a DataParallel state_dict ('module.' prefix), here also
    # wrapped in {'state_dict': ...} as many training scripts save it.
    fixture = load_fixture(stem)
    model = create_model(FIXTURE_MODELS[stem], weights=None)
    state = {f"module.{k}": v for k, v in zero_state_dict(fixture).items()}
    path = tmp_path / "model_best.pth.tar"
    torch.save({"state_dict": state, "epoch": 140}, path)
    load_checkpoint(model, path)


@pytest.mark.parametrize("stem", ["hrnet_w32_coco_256x192", "pose_resnet50_coco_256x192"])
def test_forward_on_cpu_gives_fixture_output_shape(stem):
    fixture = load_fixture(stem)
    model = create_model(FIXTURE_MODELS[stem], weights=None)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, *fixture["input_size"]))
    assert list(out.shape) == fixture["output_shape"]
    assert torch.isfinite(out).all()


@pytest.mark.slow  # full-size forward passes: ~4-6 s per HRNet
@pytest.mark.parametrize("stem", sorted(FIXTURE_MODELS))
def test_forward_shape_and_info_match_fixture(stem):
    # The big variants are checked on the meta device: same module code, shapes only, no arithmetic.
    fixture = load_fixture(stem)
    with torch.device("meta"):
        model = create_model(FIXTURE_MODELS[stem], weights=None)
        out = model(torch.zeros(1, 3, *fixture["input_size"]))
    assert list(out.shape) == fixture["output_shape"]
    info = model_info(FIXTURE_MODELS[stem])
    assert list(info.input_size) == fixture["input_size"]
    assert info.num_joints == fixture["num_joints"]
