"""The registry: names, errors for unknown names / missing weights, ModelInfo and dense MAC counts."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from deltatune.errors import ModelNotFoundError, WeightsError
from deltatune_models import (
    ModelCard,
    _registry,
    count_dense_macs,
    create_model,
    list_models,
    model_info,
    register_model,
)
from deltatune_models.hrnet import COCO_KEYPOINTS, FLIP_PAIRS_COCO, FLIP_PAIRS_MPII, MPII_KEYPOINTS

EXPECTED_ZOO = {"mobilenet_v2", "hrnet", "hrnet_w48", "hrnet_w32_mpii", "pose_resnet50", "pose_resnet101",
                "pose_resnet152"}  # fmt: skip
TINY = {"hrnet_tiny", "pose_resnet_tiny"}


def test_listing_hides_tiny_variants_by_default():
    default = set(list_models())
    assert EXPECTED_ZOO <= default
    assert not (TINY & default)
    assert TINY <= set(list_models(include_tiny=True))
    assert set(list_models(task="classification")) >= {"mobilenet_v2"}
    assert "hrnet" not in list_models(task="classification")


def test_listing_sorts_depths_numerically():
    names = [n for n in list_models() if n.startswith("pose_resnet")]
    assert names == ["pose_resnet50", "pose_resnet101", "pose_resnet152"]


def test_unknown_name_suggests_close_names():
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'hrnet_w23'; did you mean .*hrnet_w32_mpii"):
        create_model("hrnet_w23", weights=None)
    with pytest.raises(ModelNotFoundError, match="pose_resnet50"):
        model_info("pose_resnet_50")


def test_an_unknown_name_without_user_models_says_how_to_add_them(monkeypatch: pytest.MonkeyPatch):
    """A new shell without ``export DELTATUNE_MODELS=...`` is the likely slip behind a model of one's own
    being unknown; "did you mean blazepose?" alone pointed elsewhere."""
    monkeypatch.delenv("DELTATUNE_MODELS", raising=False)
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'unet_pose'.*a model of your own is found "
                                                 r"through DELTATUNE_MODELS \(not set here\)"):
        model_info("unet_pose")
    monkeypatch.setenv("DELTATUNE_MODELS", "")  # set but empty: no models of one's own either
    with pytest.raises(ModelNotFoundError, match="not set here"):
        model_info("unet_pose")


def test_default_weights_absent_is_a_weights_error_with_a_hint():
    # the command line's spellings first (this is what every command prints), then Python's
    with pytest.raises(WeightsError, match=r"model 'hrnet_w48' has no default weights.*--weights FILE.*, or "
                                           r"--weights none for random ones \(weights=None in Python\)"):
        create_model("hrnet_w48")


def test_entry_point_kwargs_reach_the_architecture():
    model = create_model("hrnet_tiny", weights=None, num_joints=5)
    assert model.final_layer.out_channels == 5
    with pytest.raises(TypeError, match="unknown argument 'depth'"):
        create_model("pose_resnet_tiny", weights=None, depth=7)


def test_created_model_is_eval_and_knows_its_name():
    model = create_model("pose_resnet_tiny", weights=None)
    assert not model.training
    assert model.model_name == "pose_resnet_tiny"
    assert model.model_card == _registry._REGISTRY["pose_resnet_tiny"].card


class _Toy(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.fc = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


@pytest.fixture()
def toy_family(monkeypatch):
    """A throw-away family module, registered the way blazepose.py registers itself."""
    module = types.ModuleType("toy_family")
    module.MODEL_CARDS = {
        "toy_net": ModelCard(
            family="toy",
            task="classification",
            input_size=(8, 8),
            outputs="logits [N,2]",
            num_classes=2,
            provenance="test",
        )  # fmt: skip
    }
    monkeypatch.setitem(sys.modules, "toy_family", module)
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    return module


def test_register_model_reads_the_modules_cards(toy_family):
    def toy_net(**kwargs):
        """Toy network."""
        return _Toy(**kwargs)

    toy_net.__module__ = "toy_family"
    assert register_model(toy_net) is toy_net
    assert "toy_net" in list_models()
    info = model_info("toy_net")
    assert info.description == "Toy network."
    # conv: 8*8 outputs * 4 channels * 3 in * 3*3; linear: 4*2
    assert info.macs == 8 * 8 * 4 * 3 * 9 + 4 * 2
    assert info.weights == "none"
    assert create_model("toy_net", weights=None, width=6).conv.out_channels == 6


def test_reregistering_a_name_warns(toy_family):
    def toy_net(**kwargs):
        return _Toy()

    toy_net.__module__ = "toy_family"
    register_model(toy_net)

    def toy_net(**kwargs):  # noqa: F811 - a second definition under the same name is the point
        return _Toy(width=3)

    toy_net.__module__ = "toy_family"
    with pytest.warns(UserWarning, match="'toy_net' is already registered; overwriting"):
        register_model(toy_net)
    assert create_model("toy_net", weights=None).conv.out_channels == 3


def test_a_family_cannot_replace_a_zoo_model(toy_family):
    """The shipped studies and threshold files name zoo models; a user's family that registered 'hrnet'
    would change what they run without a word."""
    zoo = create_model("hrnet_tiny", weights=None)

    def hrnet_tiny(**kwargs):
        return _Toy()

    hrnet_tiny.__module__ = "toy_family"
    with pytest.raises(TypeError, match="'hrnet_tiny' is a zoo model; give yours another name"):
        register_model(hrnet_tiny, card=toy_family.MODEL_CARDS["toy_net"])
    assert type(create_model("hrnet_tiny", weights=None)) is type(zoo)


def test_register_without_card_is_refused(toy_family):
    def nameless(**kwargs):
        return _Toy()

    nameless.__module__ = "toy_family"
    with pytest.raises(TypeError, match="no ModelCard for 'nameless'"):
        register_model(nameless)
    explicit = ModelCard(family="toy", task="classification", input_size=(4, 4), outputs="logits")
    assert register_model(card=explicit)(nameless) is nameless
    assert model_info("nameless").input_size == (4, 4)


def test_transposed_conv_macs_count_each_input_pixel_once():
    deconv = nn.ConvTranspose2d(6, 5, 4, stride=2, padding=1, bias=False)
    # every one of the 3*4 input pixels scatters 6 channels into a 4x4x5 window
    assert count_dense_macs(deconv, (1, 6, 3, 4)) == 3 * 4 * 6 * 5 * 16
    grouped = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
    assert count_dense_macs(grouped, (2, 8, 10, 10)) == 2 * 5 * 5 * 8 * 1 * 9


def test_mobilenet_macs_match_torchvisions_published_figure():
    # torchvision documents MobileNet_V2_Weights.IMAGENET1K_V1 with 0.301 GFLOPS (multiply-adds) at 224.
    assert round(model_info("mobilenet_v2").gmacs, 3) == 0.301


def test_pose_resnet50_macs_are_backbone_plus_head():
    # Backbone: torchvision documents ResNet-50 at 224x224 with 4.09 G multiply-adds (fc: 2 M). Every
    # feature map of a 256x192 input has 256*192/224**2 times the pixels of the 224x224 one.
    backbone = (4.09e9 - 2048 * 1000) * (256 * 192) / 224**2
    deconvs = sum(h * w * c_in * 256 * 16 for h, w, c_in in [(8, 6, 2048), (16, 12, 256), (32, 24, 256)])
    final = 64 * 48 * 256 * 17
    assert model_info("pose_resnet50").macs == pytest.approx(backbone + deconvs + final, rel=2e-3)


@pytest.mark.parametrize("name", sorted(TINY))
def test_meta_device_macs_equal_a_cpu_count(name):
    info = model_info(name)
    cpu = count_dense_macs(create_model(name, weights=None), (1, 3, *info.input_size))
    assert info.macs == cpu > 0


def test_pose_preprocessing_facts():
    assert model_info("hrnet").color_order == "RGB"
    assert model_info("pose_resnet50").color_order == "BGR"
    assert model_info("hrnet_w32_mpii").flip_pairs == FLIP_PAIRS_MPII
    assert model_info("hrnet").flip_pairs == FLIP_PAIRS_COCO
    d = model_info("hrnet").to_dict()
    assert d["input_size"] == [256, 192] and d["flip_pairs"][0] == [1, 2]


@pytest.mark.parametrize(("pairs", "names", "left", "right"), [
    (FLIP_PAIRS_COCO, COCO_KEYPOINTS, "left_", "right_"),
    (FLIP_PAIRS_MPII, MPII_KEYPOINTS, "l_", "r_"),
])  # fmt: skip
def test_flip_pairs_swap_left_and_right_of_the_same_joint(pairs, names, left, right):
    sided = {i for i, n in enumerate(names) if n.startswith((left, right))}
    assert {i for p in pairs for i in p} == sided
    for a, b in pairs:
        assert {names[a], names[b]} == {left + names[a].split("_", 1)[1], right + names[a].split("_", 1)[1]}
