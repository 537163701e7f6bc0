"""Searching a classifier: real MobileNetV2 (ImageNet weights), real vtest crops, real Optuna studies.

A classifier is scored by top-1 agreement with the dense model on the same frames, in top-1 points."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deltatune.delta import ThresholdFile
from deltatune.errors import ConfigError
from deltatune.search import Evaluator, SearchSettings, StudyWorkload, run_search
from deltatune.search.spaces import group_of
from deltatune_models import model_info

#: 6 frames of 2 streams: 4 tuning frames (3 scored: frame 0 is dense) and 2 held out
MOBILENET = StudyWorkload("mobilenet_v2", video="vtest", frames=6, streams=2)


@pytest.fixture(scope="module")
def mobilenet() -> Evaluator:
    return Evaluator(MOBILENET, use_disk_cache=False)


def test_reference_is_the_dense_models_top1_class(mobilenet: Evaluator) -> None:
    ref = mobilenet.reference["tune"]
    frames = mobilenet.frames["tune"]
    assert ref.shape == frames.shape[:2] and ref.dtype == torch.int64
    with torch.no_grad():
        dense = mobilenet.model(frames[-1]).argmax(1)
    assert torch.equal(ref[-1], dense)
    assert mobilenet.metric == "top-1"


def test_thresholds_zero_lose_nothing_and_large_ones_lose_top1_points(mobilenet: Evaluator) -> None:
    names = mobilenet.threshold_names
    exact = mobilenet.evaluate(ThresholdFile(dict.fromkeys(names, 0.0)))
    assert exact.accuracy_loss == 0.0 and exact.pck == 1.0
    assert exact.speedup == pytest.approx(1.0, abs=0.05)
    assert exact.frames == mobilenet.frames["tune"].shape[0] - 1 and exact.streams == 2
    coarse = mobilenet.evaluate(ThresholdFile(dict.fromkeys(names, 2.0)))
    samples = exact.frames * exact.streams
    # the loss counts changed samples: a multiple of one sample's share, and above 0 at this setting
    assert coarse.accuracy_loss > 0 and coarse.speedup > 2
    flipped = coarse.accuracy_loss * samples / 100
    assert flipped == pytest.approx(round(flipped)) and coarse.pck == pytest.approx(1 - flipped / samples)


def test_every_truncation_point_has_a_declared_group(mobilenet: Evaluator) -> None:
    patterns = model_info("mobilenet_v2").threshold_groups
    groups = {n: group_of(n, patterns) for n in mobilenet.threshold_names}
    assert groups.pop("input") == "input"
    assert set(groups.values()) == {"s112", "head"} | {
        f"{s}.{p}" for s in ("s56", "s28", "s14", "s7") for p in ("expand", "dw")
    }
    assert groups["features.4.conv.1.2"] == "s28.dw" and groups["features.13.conv.0.2"] == "s14.expand"


@pytest.mark.slow  # ~20 s: a real 4-trial study on MobileNetV2
def test_a_classifier_search_has_a_front_in_top1_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         mobilenet: Evaluator) -> None:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path))
    res = run_search(SearchSettings(workload=MOBILENET, trials=4, study="m", budget=1.0, speed="macs"),
                     evaluator=mobilenet)
    assert res.n_trials == 4 and not res.front.empty  # the all-zero anchor is always feasible
    assert (res.front["accuracy_loss"] <= 1.0).all()
    # 6 scored tuning samples: one changed class is 16.7 points, above the budget: the search says so
    assert any("steps of 16.67 points (6 tuning samples)" in n for n in res.notices)


def test_pose_only_options_are_refused_for_a_classifier() -> None:
    with pytest.raises(ConfigError, match="--all-joints: applies to pose models"):
        StudyWorkload("mobilenet_v2", joints="all").check_task()
    with pytest.raises(ConfigError, match="score pose and classification models"):
        Evaluator(StudyWorkload("fasterrcnn_mobilenet_v2", frames=4, streams=1))


def test_loss_units_follow_the_models_task() -> None:
    from deltatune.search.objective import model_loss_unit

    assert model_loss_unit("hrnet") == "PCK points" and model_loss_unit("mobilenet_v2") == "top-1 points"
    assert model_loss_unit("not-registered-here") == "points"  # a study from another installation opens


@pytest.mark.slow  # ~15 s: one real fine-tune of MobileNetV2, stopped at its first check
def test_a_hopeless_classifier_fine_tune_is_pruned_in_top1_points(
    mobilenet: Evaluator, results: Path
) -> None:
    """The pruning reason said "PCK points" for a classifier, whose loss is in top-1 points."""
    from deltatune.search.training import HopelessFinetune, Trainer, TrainSpace

    space = TrainSpace.after(MOBILENET, frames=6, steps=(2,), lr=(0.5,), weight_decay=(0.0,),
                             sparsity_penalty=(1.0,), truncation_aware=(False,), batch_size=1, seed=3)
    cfg = space.config(MOBILENET, lr=0.5, weight_decay=0.0, steps=2, sparsity_penalty=1.0,
                       truncation_aware=False)
    trainer = Trainer(mobilenet, budget=0.0, use_disk_cache=False)
    try:
        with pytest.raises(HopelessFinetune, match=r"already loses [\d.]+ top-1 points \(budget 0.0\)"):
            trainer.weights(cfg)
    finally:
        mobilenet.use_weights(None)
