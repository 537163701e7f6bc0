"""The search journals kept in studies/ still read: trial settings, exports and group parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from deltatune.delta.thresholds import ThresholdFile, load_thresholds
from deltatune.search import export_trial, open_study, resolve_storage, study_meta
from deltatune.search.spaces import make_space
from deltatune_models import model_info

THRESHOLDS = Path(__file__).resolve().parents[2] / "studies" / "thresholds"
#: (journal, study name, the thresholds file exported from it, the exported trial)
JOURNALS = [
    (
        THRESHOLDS / "journals" / "hrnet-present-tpe-group.journal",
        "hrnet-present-tpe-group",
        "hrnet.json",
        44,
    ),
    (THRESHOLDS / "w32-distilled" / "w32-present-sweep.journal", "w32-present-sweep", None, None),
]


def _open(journal: Path, name: str, tmp_path: Path) -> optuna.Study:
    copy = shutil.copy(journal, tmp_path)  # journals are appended to when opened: never touch the kept one
    return open_study(resolve_storage(str(copy), name), name, create=False)


@pytest.mark.parametrize(("journal", "name", "exported", "trial"), JOURNALS)
def test_stored_trial_attributes_read_as_threshold_settings(
    journal: Path, name: str, exported: str | None, trial: int | None, tmp_path: Path
) -> None:
    study = _open(journal, name, tmp_path)
    names = study_meta(study)["threshold_names"]
    for t in study.trials:
        tf = ThresholdFile.from_attrs(t.user_attrs)
        assert list(tf.thresholds) == names
        assert tf.to_attrs() == {k: t.user_attrs[k] for k in ("thresholds", "input_dilation", "mode")}
    if exported is not None:
        assert trial is not None
        res = export_trial(study, tmp_path / "out.json", trial=trial)
        again, kept = load_thresholds(res.path), load_thresholds(THRESHOLDS / exported)
        assert (again.thresholds, again.mode, again.input_dilation, again.model) == (
            kept.thresholds,
            kept.mode,
            kept.input_dilation,
            kept.model,
        )


def test_group_space_of_the_card_has_the_stored_studys_parameters(tmp_path: Path) -> None:
    """Resuming the kept group-space study draws the same parameters: the HRNet card's groups are the
    groups it was searched with."""
    journal, name = JOURNALS[0][:2]
    study = _open(journal, name, tmp_path)
    meta = study_meta(study)
    space = make_space(
        "group", meta["threshold_names"], group_patterns=model_info(meta["model"]).threshold_groups
    )
    for t in study.trials:
        assert t.user_attrs["space"] == "group"
        assert {k for k in t.params if k.startswith("thr.")} == set(space.param_keys())
