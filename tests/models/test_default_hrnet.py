"""The shipped default HRNet weights (distilled from BlazePose): load safely, are small, and are faithful.

The PCK floor below is checked on every 12th held-out vtest frame (650–794) so the test stays fast; the
full held-out number is in ``models/weights/PROVENANCE.md``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import deltatune_models
from deltatune.errors import WeightsError
from deltatune_models import create_model, model_info
from deltatune_models._registry import WEIGHTS_AVAILABLE, WEIGHTS_MISSING, _asset_status

NAME = "hrnet_w18_small_v2"
WEIGHTS = Path(deltatune_models.__file__).parent / "weights" / "hrnet_w18_small_v2_blazepose.pt"
#: Every 12th held-out vtest frame (13 frames): fast, and never seen in training.
HELDOUT_SUBSET = "vtest:650-794:12"
#: Stated floors for PCK@0.2 vs BlazePose on HELDOUT_SUBSET (the full held-out set measured 0.748 on
#: person boxes and 0.632 on the default windows: weights/PROVENANCE.md).
PCK_FLOOR_PERSONS = 0.65
PCK_FLOOR_WINDOWS = 0.5
MAX_MB = 8.0


def test_weights_file_is_small_fp16_and_weights_only() -> None:
    assert WEIGHTS.is_file(), f"{WEIGHTS} is missing"
    assert WEIGHTS.stat().st_size / 2**20 < MAX_MB
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


@pytest.mark.slow  # ~6 s: builds HRNet-W32 and the distilled W18
def test_registry_serves_the_default() -> None:
    info = model_info(NAME)
    assert info.weights == WEIGHTS_AVAILABLE
    assert info.input_size == (256, 192) and info.num_joints == 17
    assert "BlazePose" in info.provenance
    model = create_model(NAME, weights="default")
    assert not model.training
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 256, 192))
    assert out.shape == (1, 17, 64, 48) and torch.isfinite(out).all()
    # `hrnet` stays HRNet-W32 for official checkpoints; its default weights are served by the distilled
    # W18-Small-v2 (a different, smaller architecture), and model_info says so.
    served = create_model("hrnet", weights="default")
    assert served.model_name == NAME
    torch.testing.assert_close(served.state_dict(), model.state_dict())
    assert model_info("hrnet").weights == f"{WEIGHTS_AVAILABLE} (as {NAME})"
    w32 = create_model("hrnet", weights=None)
    assert sum(p.numel() for p in w32.parameters()) == 28_536_113  # the official W32 COCO count
    with pytest.raises(WeightsError, match="no default weights"):
        create_model("hrnet_w48", weights="default")


def test_missing_package_weights_are_reported() -> None:
    assert _asset_status("package:weights/does-not-exist.pt") == (WEIGHTS_MISSING, None)


@pytest.mark.slow  # ~15-30 s each: BlazePose and the student on 13 frames
@pytest.mark.parametrize(("crops", "floor"), [("persons", PCK_FLOOR_PERSONS), ("windows", PCK_FLOOR_WINDOWS)])
def test_default_weights_are_faithful_to_blazepose(
    crops: str, floor: float, teacher_cache: Path, vtest_path: Path
) -> None:
    from deltatune.train import DistillConfig, evaluate_student

    cfg = replace(DistillConfig(), heldout_frames=HELDOUT_SUBSET)
    model = create_model(NAME, weights="default")
    result = evaluate_student(model, cfg, crops=crops, cache_dir=teacher_cache)
    assert result.n_keypoints >= 100
    assert result.pck >= floor, result


@pytest.fixture(scope="module")
def teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh teacher-target cache for this module (the teacher runs once on the subset)."""
    return tmp_path_factory.mktemp("teacher")
