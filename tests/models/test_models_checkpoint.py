"""load_checkpoint: strict, one-line errors that name what does not fit; tolerant only of known wrappings."""

from __future__ import annotations

import pytest
import torch

from deltatune.errors import WeightsError
from deltatune_models import create_model, load_checkpoint


@pytest.fixture()
def tiny_state():
    torch.manual_seed(0)
    return create_model("pose_resnet_tiny", weights=None).state_dict()


def test_loaded_values_reproduce_the_source_model(tmp_path):
    torch.manual_seed(1)
    src = create_model("hrnet_tiny", weights=None)
    # Make BN statistics non-trivial so that a skipped buffer would show in the output.
    for m in src.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "w.pth"
    torch.save(src.state_dict(), path)
    torch.manual_seed(2)
    dst = create_model("hrnet_tiny", weights=None)
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        assert not torch.allclose(src(x), dst(x))
        load_checkpoint(dst, path)
        assert torch.equal(src(x), dst(x))


def test_create_model_with_weights_path_loads(tmp_path, tiny_state):
    path = tmp_path / "w.pth"
    torch.save({"model": tiny_state}, path)
    model = create_model("pose_resnet_tiny", weights=path)
    assert torch.equal(model.state_dict()["final_layer.weight"], tiny_state["final_layer.weight"])
    assert not model.training


def test_renamed_key_and_changed_shape_are_named(tmp_path, tiny_state):
    state = dict(tiny_state)
    state["final_layer.kernel"] = state.pop("final_layer.weight")
    state["deconv_layers.1.weight"] = torch.zeros(7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as err:
        load_checkpoint(create_model("pose_resnet_tiny", weights=None), path)
    msg = str(err.value)
    assert "\n" not in msg
    assert "1 missing keys [final_layer.weight]" in msg
    assert "1 unexpected keys [final_layer.kernel]" in msg
    assert "deconv_layers.1.weight: file [7] vs model [32]" in msg
    assert str(path) in msg


def test_many_missing_keys_are_counted_not_all_listed(tmp_path, tiny_state):
    state = {k: v for k, v in tiny_state.items() if not k.startswith("layer4.")}
    n_missing = sum(
        1 for k in tiny_state if k.startswith("layer4.") and not k.endswith("num_batches_tracked")
    )
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(
        WeightsError,
        match=rf"{n_missing} missing keys \[layer4\.0\.conv1\.weight, .*\(\+{n_missing - 3} more\)",
    ):
        load_checkpoint(create_model("pose_resnet_tiny", weights=None), path)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match=r"nope\.pth: no such file"):
        load_checkpoint(create_model("hrnet_tiny", weights=None), path)


def test_not_a_checkpoint_is_named(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint\n")
    with pytest.raises(WeightsError, match=r"notes\.pth: not a loadable PyTorch checkpoint"):
        load_checkpoint(create_model("hrnet_tiny", weights=None), path)


def test_a_pickled_whole_model_is_refused_with_what_to_do(tmp_path):
    """torch's refusal is a paragraph advising ``weights_only=False`` (unsafe); the error keeps its cause and
    says to re-save the state dict instead. Random bytes are refused the same way, with their cause."""
    whole = tmp_path / "whole.pth"
    torch.save(torch.nn.Conv2d(3, 3, 1), whole)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(bytes(range(219, 256)) * 3)
    for path, cause in ((whole, "Unsupported global: GLOBAL torch.nn.modules.conv.Conv2d"),
                        (junk, "Unsupported operand")):
        with pytest.raises(WeightsError) as info:
            load_checkpoint(create_model("hrnet_tiny", weights=None), path)
        text = str(info.value)
        assert text.startswith(f"checkpoint {path}: not a file of tensors that loads safely "
                               f"(torch.load with weights_only=True: {cause}")
        assert text.endswith("re-save its state_dict, torch.save(model.state_dict(), path)")
        assert "\n" not in text and "weights_only` set to `False`" not in text


def test_checkpoint_without_tensors_is_rejected(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "lr": 0.001}, path)
    with pytest.raises(WeightsError, match=r"meta\.pth: 2 entries are not tensors"):
        load_checkpoint(create_model("hrnet_tiny", weights=None), path)


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    path = tmp_path / "hr.pth"
    torch.save(create_model("hrnet_tiny", weights=None).state_dict(), path)
    with pytest.raises(WeightsError, match=r"does not fit model pose_resnet_tiny: \d+ missing keys"):
        create_model("pose_resnet_tiny", weights=path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_checkpoint_with_non_finite_weights_is_rejected(tmp_path, tiny_state, bad):
    state = {k: v.clone() for k, v in tiny_state.items()}
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key].view(-1)[0] = bad
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"damaged.pth: 1 tensor\(s\) hold NaN or Inf values"):
        create_model("pose_resnet_tiny", weights=str(path))
