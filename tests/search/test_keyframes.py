"""Key-frame intervals as a searched parameter: drawn per trial, scored, stored, exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltatune.delta.thresholds import load_thresholds
from deltatune.errors import ConfigError
from deltatune.search import export_trial, open_study, resolve_storage, run_search

from .conftest import settings


def test_searched_key_frames_are_drawn_scored_and_exported(results: Path, tiny_evaluator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = run_search(settings(trials=8, study="kf", keyframes=(0, 2)), evaluator=tiny_evaluator,
                     heldout=False)
    study = open_study(resolve_storage(None, "kf"), "kf", create=False)
    drawn = {int(t.params["keyframe_interval"]) for t in study.trials}
    assert drawn == {0, 2}  # 8 trials draw both levels (anchors take the first)
    stored = {t.number: int(t.user_attrs.get("keyframe_interval", 0)) for t in study.trials}
    assert stored == {t.number: int(t.params["keyframe_interval"]) for t in study.trials}
    assert res.n_trials == 8
    keyed = next(n for n, k in stored.items() if k == 2)
    out = export_trial(study, tmp_path / "t.json", trial=keyed)
    assert load_thresholds(out.path).keyframe_interval == 2
    assert json.loads(out.path.read_text())["keyframe_interval"] == 2
    with pytest.raises(ConfigError, match="DeltaCNN's format cannot hold"):
        export_trial(study, tmp_path / "d.json", trial=keyed, format="deltacnn")
    # the evaluator scores what it is given: a key frame every 2 frames of 3 scored ones is dense there
    from deltatune.delta.thresholds import ThresholdFile

    base = ThresholdFile.from_attrs(study.trials[keyed].user_attrs)
    from dataclasses import replace

    with_kf = tiny_evaluator.evaluate(base)
    without = tiny_evaluator.evaluate(replace(base, keyframe_interval=0))
    assert with_kf.accuracy_loss <= without.accuracy_loss
    assert with_kf.speedup < without.speedup or without.speedup == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [(), (-1,), (0, 2.5)])
def test_bad_keyframes_are_config_errors(bad: tuple) -> None:
    with pytest.raises(ConfigError, match="--keyframes"):
        settings(keyframes=bad)


def test_searched_key_frames_on_change_are_drawn_stored_and_exported(  # type: ignore[no-untyped-def]
    results: Path, tiny_evaluator, tmp_path
) -> None:
    run_search(settings(trials=8, study="kc", keyframe_changes=(None, 0.3)), evaluator=tiny_evaluator,
               heldout=False)
    study = open_study(resolve_storage(None, "kc"), "kc", create=False)
    drawn = [t.params["keyframe_change"] for t in study.trials]
    assert set(drawn) == {None, 0.3} and drawn[0] is None  # anchors take the first (off)
    stored = [t.user_attrs.get("keyframe_change") for t in study.trials]
    assert stored == drawn
    keyed = drawn.index(0.3)
    out = export_trial(study, tmp_path / "t.json", trial=keyed)
    assert load_thresholds(out.path).keyframe_change == 0.3
    with pytest.raises(ConfigError, match="DeltaCNN's format cannot hold"):
        export_trial(study, tmp_path / "d.json", trial=keyed, format="deltacnn")


@pytest.mark.parametrize("bad", [(), (0.0,), (None, 1.5)])
def test_bad_key_frame_change_fractions_are_config_errors(bad: tuple) -> None:
    with pytest.raises(ConfigError, match="--keyframe-change"):
        settings(keyframe_changes=bad)
