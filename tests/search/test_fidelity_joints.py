"""Search fidelity counts the dense keypoints that are present; studies from before load as all-joints."""

from __future__ import annotations

import pytest
import torch

from deltatune.delta import ThresholdFile
from deltatune.errors import ConfigError
from deltatune.metrics import decode_heatmaps, heatmaps_of, pck
from deltatune.search.objective import Evaluator
from deltatune.search.study_workload import StudyWorkload


def test_workload_joints_default_and_legacy_studies() -> None:
    w = StudyWorkload("hrnet")
    assert w.joints == "present"
    legacy = w.to_dict()
    del legacy["joints"]  # a study stored before the field existed was scored over every keypoint
    assert StudyWorkload.from_dict(legacy).joints == "all"
    assert StudyWorkload.from_dict(w.to_dict()) == w
    with pytest.raises(ConfigError, match="joints"):
        StudyWorkload("hrnet", joints="visible")


@pytest.mark.slow  # ~17 s: two HRNet evaluators on 6 frames x 3 streams
def test_evaluator_scores_present_dense_keypoints(vtest_path) -> None:
    present = Evaluator(StudyWorkload("hrnet", frames=6, streams=3), use_disk_cache=False)
    every = Evaluator(StudyWorkload("hrnet", frames=6, streams=3, joints="all"), use_disk_cache=False)
    cfg = ThresholdFile({n: 0.05 for n in present.threshold_names})
    got, got_all = present.evaluate(cfg), every.evaluate(cfg)
    # the same predictions, scored by hand
    present.net.reset()
    with torch.no_grad():
        preds = torch.stack([decode_heatmaps(heatmaps_of(present.net(f)))[0] for f in present.frames["tune"]])
    ref = present.reference["tune"][1:]
    vis = (ref[..., 2] > present.info.present_confidence).numpy()
    assert 0.0 < vis.mean() < 1.0
    want = 100.0 * (1.0 - pck(preds[1:], ref[..., :2], visible=vis).value)
    want_all = 100.0 * (1.0 - pck(preds[1:], ref[..., :2]).value)
    assert got.accuracy_loss == pytest.approx(want) and got_all.accuracy_loss == pytest.approx(want_all)
    assert got.accuracy_loss != pytest.approx(got_all.accuracy_loss)


def test_legacy_studies_resume_only_under_their_own_rule() -> None:
    """A study stored before ``joints`` existed was scored over every keypoint: resuming it with
    ``joints="all"`` is allowed, with the new default ``present`` it is refused (another objective)."""
    import optuna

    from deltatune.search.pareto import META_KEY
    from deltatune.search.runner import _check_meta

    def meta(workload: dict) -> dict:
        return {"workload": workload, "budget": 1.0, "threshold_names": ["input", "relu"]}

    legacy = StudyWorkload("hrnet").to_dict()
    del legacy["joints"]
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.set_user_attr(META_KEY, meta(legacy))
    _check_meta(study, meta(StudyWorkload("hrnet", joints="all").to_dict()))  # same objective: fine
    with pytest.raises(ConfigError, match="joints"):
        _check_meta(study, meta(StudyWorkload("hrnet").to_dict()))
