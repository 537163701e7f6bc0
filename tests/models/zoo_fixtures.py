"""Helpers for the model-zoo tests: the official key/shape fixtures in fixtures/official_keys/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

#: Key lists of the official checkpoints (see README.txt beside them).
FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "official_keys"

#: fixture file stem -> registered model name
FIXTURE_MODELS: dict[str, str] = {
    "hrnet_w32_coco_256x192": "hrnet",
    "hrnet_w48_coco_256x192": "hrnet_w48",
    "hrnet_w32_mpii_256x256": "hrnet_w32_mpii",
    "pose_resnet50_coco_256x192": "pose_resnet50",
    "pose_resnet101_coco_256x192": "pose_resnet101",
    "pose_resnet152_coco_256x192": "pose_resnet152",
}


def load_fixture(stem: str) -> dict[str, Any]:
    return json.loads((FIXTURE_DIR / f"{stem}.json").read_text())


def zero_state_dict(fixture: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A state_dict holding zeros with exactly the fixture's keys, shapes and dtypes, in its order.

    Every tensor is a stride-0 view of one shared zero per dtype, so the saved file stays a few KB even
    for the 63 M-parameter HRNet-W48 (torch.save keeps storage sharing and strides).
    """
    zeros = {"float32": torch.zeros((), dtype=torch.float32), "int64": torch.zeros((), dtype=torch.int64)}
    return {e["key"]: zeros[e["dtype"]].expand(e["shape"]) for e in fixture["keys"]}
