"""The zoo models and their documented settings as the backend checks use them (CPU and CUDA alike):
the sparse backend against the reference backend on the same model and frames."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from deltatune.delta import convert
from deltatune.delta.sparse import SparseBackend
from deltatune.inspection import max_relative_error

SETTINGS = Path(__file__).resolve().parents[2] / "studies" / "thresholds"
#: Every model of the zoo with the weights it is checked with (the detector has its own tests).
ZOO: list[tuple[str, str | None]] = [
    ("hrnet", "default"),  # distilled W18-small-v2, real weights
    ("hrnet", None),  # the W32 architecture (official checkpoints load into it; none offline)
    ("hrnet_w18_small_v2", "default"),
    ("hrnet_w32_mpii", None),
    ("hrnet_w48", None),
    ("pose_resnet50", None),
    ("pose_resnet101", None),
    ("pose_resnet152", None),
    ("mobilenet_v2", "default"),
    ("blazepose", "default"),
]


def documented(name: str, weights: str | None) -> Path | float:
    """``studies/thresholds/<model>.json`` where one holds for these weights, else a global 0.01 (what
    ``pose_resnet50.json`` holds, for random weights)."""
    path = SETTINGS / f"{name}.json"
    return path if path.is_file() and (weights == "default" or name == "pose_resnet50") else 0.01


def worst_against_reference(
    model: nn.Module, frames: Iterable[torch.Tensor], setting: Path | float, backend: SparseBackend
) -> float:
    """Largest relative error, frame by frame, of ``model`` converted with ``backend`` against the
    reference backend, both at ``setting`` (a thresholds file or one threshold), dense refresh off."""
    nets = [
        convert(model, thresholds=0.0, backend=b, record_stats=False, dense_refresh=None)
        for b in ("reference", backend)
    ]
    for net in nets:
        if isinstance(setting, Path):
            net.load_thresholds(setting)
        else:
            net.set_thresholds(setting)
    worst = 0.0
    with torch.no_grad():
        for x in frames:
            worst = max(worst, max_relative_error(nets[1](x), nets[0](x)))
    return worst
