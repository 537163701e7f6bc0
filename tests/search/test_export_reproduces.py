"""An exported thresholds file reproduces its trial on a freshly built network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltatune.delta.thresholds import from_deltacnn
from deltatune.errors import ConfigError
from deltatune.search import Evaluator, export_trial, open_study, resolve_storage, run_search

from .conftest import TINY, settings


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory, tiny_evaluator) -> Path:  # type: ignore[no-untyped-def]
    """A real 5-trial search study ``exp`` of the tiny hrnet, in a journal file."""
    path = tmp_path_factory.mktemp("export") / "exp.journal"
    run_search(settings(trials=5, study="exp", storage=str(path), space="layer"), evaluator=tiny_evaluator,
               heldout=False)
    return path


@pytest.fixture(scope="module")
def study(journal: Path):  # type: ignore[no-untyped-def]
    return open_study(resolve_storage(str(journal), "exp"), "exp", create=False)


def test_exported_file_reproduces_speedup_exactly_and_loss_within_1e6(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fresh = Evaluator(TINY, use_disk_cache=False)  # a new network, a recomputed reference
    for t in study.trials:
        res = export_trial(study, tmp_path / f"t{t.number}.json", trial=t.number)
        tf = fresh.net.load_thresholds(res.path)
        ev = fresh.evaluate(tf)  # the file's setting is the search's configuration type
        assert ev.speedup == t.values[1]
        assert abs(ev.accuracy_loss - t.values[0]) <= 1e-6
        assert tf.model == "hrnet_tiny" and tf.meta["trial"] == t.number
        assert tf.weights == fresh.net.weights_fingerprint  # the weights it was scored on


def test_best_under_picks_the_fastest_trial_within_the_loss(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = [t for t in study.trials if t.values[0] <= 10.0]
    res = export_trial(study, tmp_path / "b.json", best_under=10.0)
    assert res.speedup == max(t.values[1] for t in done)
    lowest = min(t.values[0] for t in study.trials)
    if lowest > 0:  # nothing loses less than half the lowest loss
        with pytest.raises(ConfigError, match="no trial"):
            export_trial(study, tmp_path / "n.json", best_under=lowest / 2)


def test_deltacnn_format_lists_thresholds_in_execution_order(study, tmp_path: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    t = study.trials[0]
    res = export_trial(study, tmp_path / "d.json", trial=t.number, format="deltacnn")
    data = json.loads(res.path.read_text())
    assert list(data) == [str(i) for i in range(len(tiny_evaluator.threshold_names))]
    back = from_deltacnn(res.path, tiny_evaluator.threshold_names)
    assert back == {k: (0.0 if v is None else v) for k, v in t.user_attrs["thresholds"].items()}


@pytest.mark.parametrize(("attrs", "said"), [
    ({"input_dilation": 3}, "dilates the input mask by 3, which DeltaCNN's format cannot hold"),
    ({"mode": "norm"}, "truncates in mode norm, which DeltaCNN's format cannot hold (it reads as max)"),
])
def test_a_setting_deltacnns_format_cannot_hold_is_refused(  # type: ignore[no-untyped-def]
    study, tmp_path: Path, attrs: dict, said: str
) -> None:
    """The file holds thresholds only and loads as dilation 1, mode max: a trial with another dilation
    (searched by default) or mode was exported as a different setting without a word."""
    import optuna

    copy = optuna.create_study(directions=["minimize", "maximize"])
    for key, value in study.user_attrs.items():  # its metadata: model, names, weights
        copy.set_user_attr(key, value)
    base = study.trials[0]
    copy.add_trial(optuna.trial.create_trial(values=list(base.values),
                                             user_attrs={**base.user_attrs, **attrs}))
    with pytest.raises(ConfigError, match=None) as info:
        export_trial(copy, tmp_path / "d.json", trial=0, format="deltacnn")
    assert said in str(info.value) and not (tmp_path / "d.json").exists()
    assert export_trial(copy, tmp_path / "t.json", trial=0).path.is_file()  # ours holds it


def test_bad_export_requests_are_config_errors(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="--trial 99"):
        export_trial(study, tmp_path / "x.json", trial=99)
    with pytest.raises(ConfigError, match="exactly one"):
        export_trial(study, tmp_path / "x.json")
    with pytest.raises(ConfigError, match="--format 'onnx'"):
        export_trial(study, tmp_path / "x.json", trial=0, format="onnx")
    with pytest.raises(ConfigError, match="--best-under -1"):
        export_trial(study, tmp_path / "x.json", best_under=-1)
    for v in ("nan", "inf"):  # no number at all; within it every trial, whatever it loses
        with pytest.raises(ConfigError, match=rf"--best-under {v}: must be a finite number >= 0"):
            export_trial(study, tmp_path / "x.json", best_under=float(v))
    assert not (tmp_path / "x.json").exists()


def _copy_with(study, **attrs):  # type: ignore[no-untyped-def]
    """A study holding the first trial of ``study`` with ``attrs`` added (values too, via ``values=``)."""
    import optuna

    copy = optuna.create_study(study_name="copy", directions=["minimize", "maximize"])
    for key, value in study.user_attrs.items():  # its metadata: model, names, weights
        copy.set_user_attr(key, value)
    base = study.trials[0]
    values = attrs.pop("values", list(base.values))
    copy.add_trial(optuna.trial.create_trial(values=values, user_attrs={**base.user_attrs, **attrs}))
    return copy


def test_a_failed_export_writes_nothing(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A --train trial whose fine-tuned weights left the cache was refused only after its thresholds file
    was written (thresholds for weights that were never copied), replacing an earlier file of that name."""
    gone = _copy_with(study, finetune={"steps": 3}, finetune_weights=str(tmp_path / "gone.pt"))
    out = tmp_path / "t.json"
    out.write_text("an earlier export\n")
    with pytest.raises(ConfigError, match="no longer cached"):
        export_trial(gone, out, trial=0)
    assert out.read_text() == "an earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]
    # cached: both files, the weights byte for byte
    (tmp_path / "w.pt").write_bytes(b"weights")
    kept = _copy_with(study, finetune={"steps": 3}, finetune_weights=str(tmp_path / "w.pt"))
    res = export_trial(kept, out, trial=0)
    assert res.weights == tmp_path / "t.weights.pt" and res.weights.read_bytes() == b"weights"
    assert json.loads(out.read_text())["meta"]["finetune"] == {"steps": 3}


def test_an_infinite_speedup_is_written_as_standard_json(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A clip where nothing changed gives an infinite MAC speedup; Python wrote it as ``Infinity``, which
    is not JSON (jq and browsers reject it)."""
    still = _copy_with(study, values=[0.0, float("inf")])
    res = export_trial(still, tmp_path / "t.json", trial=0)
    text = res.path.read_text()
    assert "Infinity" not in text and json.loads(text)["meta"]["speedup"] is None
    assert res.speedup == float("inf")


def test_the_default_output_is_checked_as_o_is(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without -o the file is <study>-trial<N>.json here; where that was a folder, the write raised
    IsADirectoryError: a traceback, where -o of a folder got one line."""
    from deltatune.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp-trial0.json").mkdir()
    assert main(["export", "--storage", str(journal), "--study", "exp", "--trial", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("deltatune export: error: the default output (no -o) exp-trial0.json: is a folder; give a "
                   "file name"), err
    assert main(["export", "--storage", str(journal), "--study", "exp", "--trial", "1"]) == 0
    assert json.loads((tmp_path / "exp-trial1.json").read_text())["meta"]["trial"] == 1
