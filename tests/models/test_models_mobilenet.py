"""MobileNetV2 with torchvision's real ImageNet weights (the ``mobilenet_v2_imagenet`` asset).

Skipped, with the reason, when the asset cannot be fetched (offline machine without a cache).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltatune.errors import DataFetchError
from deltatune_models import IMAGENET_MEAN, IMAGENET_STD, create_model, load_checkpoint, model_info

# ImageNet-1k indices of what the carphone clip shows: a man in a suit and tie, belted in a car seat.
SUIT, WINDSOR_TIE, BOW_TIE, SEAT_BELT = 834, 906, 457, 785


def _asset(name: str):
    from deltatune.data.assets import asset_path

    try:
        return asset_path(name, fetch=True)
    except DataFetchError as exc:
        pytest.skip(f"asset {name!r} unavailable: {exc}")


@pytest.fixture(scope="module")
def weights():
    return _asset("mobilenet_v2_imagenet")


@pytest.fixture(scope="module")
def pretrained(weights):
    return create_model("mobilenet_v2", weights=weights)


def _normalise(frames: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(
        x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False
    )
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def test_real_weights_load_strictly_and_change_the_output(weights, pretrained):
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    assert list(pretrained.state_dict()) == list(sd)  # torchvision's key names and order
    random = create_model("mobilenet_v2", weights=None)
    load_checkpoint(random, weights)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = pretrained(x)
        assert torch.equal(out, random(x))
        assert not torch.allclose(out, create_model("mobilenet_v2", weights=None)(x), atol=1e-3)
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_default_weights_resolve_to_the_asset(weights):
    assert model_info("mobilenet_v2").weights == "available"
    model = create_model("mobilenet_v2")  # weights="default"
    assert torch.equal(
        model.classifier[1].weight, torch.load(weights, weights_only=True)["classifier.1.weight"]
    )


def test_carphone_frames_are_classified_as_what_they_show(pretrained):
    from deltatune.data.video import read_frames

    frames = np.stack(list(read_frames(_asset("carphone"), start=0, count=6, step=20)))
    with torch.no_grad():
        probs = pretrained(_normalise(frames)).softmax(1)
    scene = {SUIT, WINDSOR_TIE, BOW_TIE, SEAT_BELT}
    top5 = probs.topk(5).indices.tolist()
    assert all(scene & set(t) for t in top5), top5
    # the scene classes carry most of the probability on average, not just a lucky rank
    assert probs[:, sorted(scene)].sum(1).mean() > 0.5
