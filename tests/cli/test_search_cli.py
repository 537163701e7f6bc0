"""``deltatune search`` / ``pareto`` / ``export`` through the CLI runner (real tiny HRNet, real vtest)."""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from deltatune.cli import COMMANDS, main
from deltatune.errors import DeltatuneError

TINY_ARGS = [
    "--model",
    "hrnet_tiny",
    "--weights",
    "none",
    "--frames",
    "6",
    "--streams",
    "1",
    "--thr-range",
    "0.0001",
    "0.05",
    "--budget",
    "10",
    "--no-progress",
]


def cli(name: str, argv: list[str]) -> int:
    """Run a subcommand as ``deltatune.cli.main`` does (through it once the command is registered)."""
    if f"deltatune.cli.{name}" in COMMANDS:
        return main([name, *argv])
    mod = importlib.import_module(f"deltatune.cli.{name}")
    parser = argparse.ArgumentParser(prog=f"deltatune {name}")
    mod.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(mod.run(args) or 0)
    except DeltatuneError as exc:
        print(f"deltatune {name}: error: {exc}", file=__import__("sys").stderr)
        return 2


@pytest.fixture()
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "results"


def test_strategy_list_in_help_matches_the_registry() -> None:
    from deltatune.cli.search import _STRATEGIES
    from deltatune.search import STRATEGIES

    assert set(_STRATEGIES) == set(STRATEGIES)


@pytest.mark.slow  # ~8 s: a real search, then pareto and export
def test_search_json_then_pareto_then_export(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("search", [*TINY_ARGS, "--trials", "5", "--study", "c", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["study"] == "c" and out["n_trials"] == 5
    assert out["storage"].endswith("c.journal") and Path(out["storage"]).is_file()
    for row in out["pareto"]:
        assert {"trial", "accuracy_loss", "speedup", "feasible"} <= set(row) and row["feasible"]
    assert out["best_feasible"] is None or out["best_feasible"]["trial"] in [
        r["trial"] for r in out["pareto"]
    ]

    assert cli("pareto", ["--study", "c", "--csv", "all.csv", "--plot", "front.png"]) == 0
    text = capsys.readouterr().out
    assert "5 complete trials" in text and Path("front.png").stat().st_size > 1000
    assert Path("all.csv").read_text().startswith("trial,strategy,space,accuracy_loss,speedup")
    # the re-timed trials carry their measured speedup and CI, as the table shows them; the others none
    table = pd.read_csv("all.csv")
    assert len(table) == 5 and {"measured_speedup", "measured_ci_low", "measured_ci_high"} <= set(table)
    cli("pareto", ["--study", "c", "--json"])
    timed = {r["trial"]: r for r in json.loads(capsys.readouterr().out)["retimed"]}
    assert timed and set(table.loc[table["measured_speedup"].notna(), "trial"]) == set(timed)
    for t, r in timed.items():
        row = table[table["trial"] == t].iloc[0]
        assert (row["measured_speedup"], row["measured_ci_low"], row["measured_ci_high"]) == pytest.approx(
            (r["measured"], r["ci_low"], r["ci_high"]))

    # export says which speedup it quotes, the measured one of a re-timed trial, and a loss over budget
    for t in range(5):
        capsys.readouterr()
        assert cli("export", ["--study", "c", "--trial", str(t), "-o", f"t{t}.json"]) == 0
        lines = capsys.readouterr().out.splitlines()
        speed = {"latency": "predicted wall-clock", "macs": "MAC"}[out["speed"]]
        assert lines[0].startswith(f"trial {t}: {speed} speedup "), lines
        assert ("(re-timed: measured " in lines[0]) == (t in timed), lines
        loss = float(table.loc[table["trial"] == t, "accuracy_loss"].iloc[0])
        over = [ln for ln in lines if ln.startswith(f"note: trial {t} loses more than the search's budget")]
        assert len(over) == (loss > out["budget"]), (lines, loss)
    assert (table["accuracy_loss"] > out["budget"]).any() and (table["accuracy_loss"] <= out["budget"]).any()
    assert json.loads(Path("t0.json").read_text())["format"] == "deltatune-thresholds/1"
    # what each trial ran is in the CSV too (it held only the objectives): the exported file's setting
    exported = json.loads(Path("t0.json").read_text())
    row = table[table["trial"] == 0].iloc[0]
    assert (row["mode"], row["input_dilation"]) == (exported["mode"], exported["input_dilation"])
    for name, value in exported["thresholds"].items():
        assert row[f"threshold.{name}"] == pytest.approx(value) if value is not None else pd.isna(
            row[f"threshold.{name}"])
    # a storage holding one search study needs no --study; a wrong name is told what the storage holds
    journal = str(results / "c.journal")
    capsys.readouterr()
    assert cli("pareto", ["--storage", journal]) == 0
    assert capsys.readouterr().out.startswith("study c: 5 complete trials")
    assert cli("export", ["--storage", journal, "--trial", "1", "-o", "t1.json"]) == 0
    assert json.loads(Path("t1.json").read_text())["format"] == "deltatune-thresholds/1"
    assert cli("pareto", ["--study", "C", "--storage", journal]) == 2
    err = capsys.readouterr().err
    assert "--study C: no such study in " in err and "(search studies there: c)" in err
    assert cli("pareto", []) == 2
    assert f"--study: name the search study (studies in {results}: c)" in capsys.readouterr().err


def test_search_text_output_names_front_recommendation_and_storage(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("search", [*TINY_ARGS, "--trials", "3", "--study", "txt", "--strategy", "sweep",
                          "--plot", "searched.png"]) == 0
    out = capsys.readouterr().out
    assert "study txt: 3 trials (3 new), storage" in out and "plot:        searched.png" in out
    assert Path("searched.png").stat().st_size > 1000
    assert "vs dense, present keypoints" in out
    # latency is the default objective; the fastest feasible points are re-timed and recommended on that
    assert "and latency speedup (max)" in out and "re-timed on this machine (5 interleaved" in out
    rec = re.search(r"recommended: trial (\d+) \(sweep\): measured speedup (\d+\.\d\dx \[[^]]+\])", out)
    assert rec is not None
    # and how to use it: the predict line for the searched model, weights and video
    assert ("use it:      deltatune predict --model hrnet_tiny --weights none --video vtest "
            "--thresholds thresholds.json -o predictions.csv") in out
    # opened again later, the study shows what the search measured and recommended, and draws it
    assert cli("pareto", ["--study", "txt", "--plot", "txt.png"]) == 0
    again = capsys.readouterr().out
    assert "re-timed by the search on" in again and Path("txt.png").stat().st_size > 1000
    assert f"recommended: trial {rec.group(1)}: measured speedup {rec.group(2)}" in again
    assert f"export it:   deltatune export --study txt --trial {rec.group(1)} -o thresholds.json" in again
    assert cli("pareto", ["--study", "txt", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["recommended"]["trial"] == int(rec.group(1)) and shown["retimed"]
    # as search says it, pareto says when the measured interval does not rule out running slower ...
    slow = "note: not measurably faster than the dense model"
    rec_ci = shown["recommended"]
    assert (slow in again) == (rec_ci["ci_low"] <= 1 <= rec_ci["ci_high"]), rec_ci
    # ... and that it is slower where every re-timing was: the study's re-timings, each round 0.6-0.8x
    from deltatune.search import open_study, resolve_storage
    from deltatune.search.retime import RETIMED_ATTR

    study = open_study(resolve_storage(None, "txt"), "txt", create=False)
    slower = {k: {**v, "ratios": [0.6, 0.65, 0.7, 0.75, 0.8], "ci_low": 0.6, "ci_high": 0.8}
              for k, v in study.user_attrs[RETIMED_ATTR].items()}
    study.set_user_attr(RETIMED_ATTR, slower)
    assert cli("pareto", ["--study", "txt"]) == 0
    said = capsys.readouterr().out
    assert "note: slower than the dense model: the whole interval is below 1x (up to 0.80x)" in said
    assert slow not in said and "still running" not in said
    study.ask()  # a worker at work on the study: its trial is RUNNING
    assert cli("pareto", ["--study", "txt"]) == 0
    assert "note: 1 trial still running: a search is at work on this study" in capsys.readouterr().out
    assert cli("search", [*TINY_ARGS, "--trials", "1", "--study", "all", "--all-joints"]) == 0
    assert "vs dense, every keypoint" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "nope"], "unknown model 'nope'"),
        ([*TINY_ARGS, "--strategy", "annealing"], "--strategy 'annealing' is unknown"),
        ([*TINY_ARGS, "--storage", "mongodb://x/y"], "unknown scheme 'mongodb'"),
        ([*TINY_ARGS, "--budget", "-1"], "--budget -1.0: must be a finite number >= 0"),
        ([*TINY_ARGS, "--thr-range", "0.5", "0.1"], "--thr-range 0.5 0.1: need finite numbers 0 < LO < HI"),
        ([*TINY_ARGS, "--thr-range", "0", "0.1"], "--thr-range 0 0.1: need finite numbers 0 < LO < HI"),
        # an infinite HI failed every trial with numpy's OverflowError, traceback and journal left behind
        ([*TINY_ARGS, "--thr-range", "0.001", "inf"], "--thr-range 0.001 inf: need finite numbers 0 < LO"),
        ([*TINY_ARGS, "--timeout", "inf"], "--timeout inf: must be a finite number of seconds > 0"),
        ([*TINY_ARGS, "--space", "blocks"], "--space 'blocks' is unknown"),
        ([*TINY_ARGS, "--keyframe-change", "half"], "--keyframe-change 'half': expected comma-separated"),
        ([*TINY_ARGS, "--keyframe-change", "none,2"], "--keyframe-change none,2.0: need fractions in (0, 1]"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    results: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli("search", argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("deltatune search: error:")


def test_pareto_and_export_of_a_missing_study_are_errors(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("pareto", ["--study", "ghost"]) == 2
    assert "no journal" in capsys.readouterr().err
    assert cli("pareto", []) == 2
    assert "--study: name the search study (no study journal in " in capsys.readouterr().err
    assert cli("export", ["--study", "ghost", "--trial", "0"]) == 2


def test_pareto_heldout_rescores_the_front(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deltatune.search import SearchSettings, StudyWorkload, run_search
    from deltatune.search.spaces import Ranges

    # random weights: no dense keypoint is reliably present, so score all of them
    w = StudyWorkload("hrnet_tiny", weights=None, frames=6, streams=1, joints="all")
    s = SearchSettings(workload=w, trials=3, study="h", budget=10.0, ranges=Ranges(lo=1e-4, hi=0.05))
    res = run_search(s, heldout=False)
    assert res.front["heldout_accuracy_loss"].isna().all()
    assert cli("pareto", ["--study", "h", "--heldout", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pareto"] and all(r["heldout_speedup"] is not None for r in out["pareto"])
    assert out["hypervolume_reference"] == [10.0, 1.0]


def test_streams_default_to_what_the_video_has(still_clip: Path) -> None:
    """``--video carphone`` (one crop window) works without ``--streams``; asking for more windows than
    the video has is still a one-line error, named, before any model work."""
    from deltatune.cli.search import add_arguments, build_settings
    from deltatune.errors import ConfigError

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--model", "hrnet_tiny", "--weights", "none"]
    assert build_settings(parser.parse_args(base)).workload.streams == 2  # vtest has more
    carphone = build_settings(parser.parse_args([*base, "--video", "carphone"])).workload
    assert carphone.streams == 1 and len(carphone.crop_windows()) == 1
    asked = build_settings(parser.parse_args([*base, "--video", "carphone", "--streams", "2"])).workload
    with pytest.raises(ConfigError, match="--streams 2: carphone has only 1 default windows"):
        asked.check()
    # a video of one's own is its whole frame, one stream: more streams are refused, not ignored
    own = str(still_clip)
    assert build_settings(parser.parse_args([*base, "--video", own])).workload.streams == 1
    with pytest.raises(ConfigError, match=r"--streams 3: .* has one stream \(its whole frame\); --window"):
        build_settings(parser.parse_args([*base, "--video", own, "--streams", "3"]))


def test_windows_are_the_streams_a_search_tunes_on(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--window`` (repeatable) picks the crops of any video; the study records them, and resuming it
    with other windows is refused (its trials were scored on those crops)."""
    import optuna

    from deltatune.search.pareto import study_meta
    from deltatune.search.storage import resolve_storage

    args = [a for a in TINY_ARGS if a not in ("--streams", "1")]
    wins = ["--window", "100,50,240,320", "--window", "450,100,240,320"]
    assert cli("search", [*args, *wins, "--trials", "2", "--study", "w", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_trials"] == 2
    study = optuna.load_study(study_name="w", storage=resolve_storage(None, "w").open())
    workload = study_meta(study)["workload"]
    assert workload["windows"] == ["100,50,240,320", "450,100,240,320"] and workload["streams"] == 2
    assert cli("search", [*args, "--window", "0,0,240,320", "--trials", "1", "--study", "w"]) == 2
    err = capsys.readouterr().err
    assert "it was created with a different workload: streams 2 (now 1), windows ['100,50,240,320', " in err


def test_a_video_of_ones_own_is_one_stream(results: Path, rotated_phone_clip: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A video without crop windows is tuned on its whole frame, one stream: the output and --json say
    1 stream, not the 2 a sample's default asks for."""
    args = [a for a in TINY_ARGS if a not in ("--streams", "1")]
    run = [*args, "--video", str(rotated_phone_clip), "--trials", "1", "--retime", "0", "--study", "own"]
    assert cli("search", run) == 0
    assert "frames 0..5, 1 stream; the first 4 tune" in capsys.readouterr().out
    assert cli("search", [*run, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["streams"] == 1


def test_start_tunes_on_a_later_segment(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--start N`` tunes on frames N.. of the video: the output names them, the study records them,
    and its frames are the later ones (their fingerprint differs from frame 0's)."""
    import optuna

    from deltatune.search.pareto import FRAMES_ATTR, study_meta
    from deltatune.search.storage import resolve_storage

    def meta(name: str) -> dict:
        return study_meta(optuna.load_study(study_name=name, storage=resolve_storage(None, name).open()))

    late = [*TINY_ARGS, "--start", "650", "--trials", "1", "--study", "late", "--retime", "0"]
    assert cli("search", late) == 0
    out = capsys.readouterr().out
    assert "clip: vtest frames 650..655, 1 stream; the first 4 tune, the last 2 are held out" in out
    assert cli("search", [*TINY_ARGS, "--trials", "1", "--study", "early", "--retime", "0"]) == 0
    assert "clip: vtest frames 0..5," in capsys.readouterr().out
    assert meta("late")["workload"]["start"] == 650 and meta("early")["workload"]["start"] == 0
    assert meta("late")[FRAMES_ATTR] != meta("early")[FRAMES_ATTR]
    assert cli("search", [*TINY_ARGS, "--start", "-1", "--trials", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith("--start -1: must be >= 0")


def test_spread_scores_every_trial_on_stretches_across_the_video(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--spread 3 on vtest (795 frames) with 6-frame clips: the clip at 0 and two more, evenly spaced up
    to the last first frame that leaves 6 frames (789); each trial records its scores on all three."""
    from deltatune.search import open_study, resolve_storage

    assert cli("search", [*TINY_ARGS, "--trials", "2", "--speed", "macs", "--retime", "0", "--spread", "3",
                          "--study", "spread"]) == 0
    assert "each trial scored on 3 segments (vtest@0, vtest@394, vtest@789)" in capsys.readouterr().out
    study = open_study(resolve_storage(None, "spread"), "spread")
    assert len(study.trials) == 2
    for t in study.trials:
        assert [s["segment"] for s in t.user_attrs["segments"]] == ["vtest@0", "vtest@394", "vtest@789"]


def test_the_use_it_line_of_a_fine_tuned_trial_runs_the_exported_weights_on_their_architecture() -> None:
    """A ``--train`` search's recommendation holds for its fine-tuned weights only: ``export`` copies them
    beside the thresholds, and hrnet's default weights are another variant's, so the line names that one."""
    import argparse

    from deltatune.cli.search import _predict_command
    from deltatune.search.export import exported_weights

    args = argparse.Namespace(model="hrnet", weights="default", video=None, window=None, fallback=False)
    assert _predict_command(args) == ("deltatune predict --model hrnet --thresholds thresholds.json "
                                      "-o predictions.csv")
    assert exported_weights("thresholds.json") == Path("thresholds.weights.pt")
    assert _predict_command(args, finetuned=True) == (
        "deltatune predict --model hrnet_w18_small_v2 --weights thresholds.weights.pt "
        "--thresholds thresholds.json -o predictions.csv")
    own = argparse.Namespace(model="hrnet_tiny", weights="mine.pt", video="clip.mp4", window=["0,0,30,40"],
                             fallback=False)
    assert _predict_command(own, finetuned=True) == (
        "deltatune predict --model hrnet_tiny --weights thresholds.weights.pt --video clip.mp4 "
        "--window 0,0,30,40 --thresholds thresholds.json -o predictions.csv")


def test_a_refused_resume_draws_no_progress_bar(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bar showed before the stored study's settings were compared: a refused resume left a '0/2
    trials' line above its error. It now starts once run_search has checked them."""
    with_bar = [a for a in TINY_ARGS if a != "--no-progress"]
    argv = [*with_bar, "--trials", "2", "--study", "bar", "--speed", "macs", "--retime", "0"]
    assert cli("search", argv) == 0
    assert "search bar" in capsys.readouterr().err  # the bar (stderr is no terminal here; it draws anyway)
    assert cli("search", [*argv, "--budget", "5"]) == 2
    err = capsys.readouterr().err
    assert "it was created with" in err and "search bar" not in err, err


@pytest.mark.slow  # ~3 s: two trials priced by the latency model, one re-timed
def test_the_trials_bar_closes_before_the_re_time_bar_opens(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both bars were open at once: tqdm drew the second one a line below with cursor moves, which a log
    file or a pipe shows as ``ESC[A`` garbage and repeated lines."""
    with_bar = [a for a in TINY_ARGS if a != "--no-progress"]
    assert cli("search", [*with_bar, "--trials", "2", "--strategy", "sweep", "--study", "bars",
                          "--retime", "1"]) == 0
    err = capsys.readouterr().err
    assert "search bars" in err and "re-time front" in err, err
    assert "\x1b[A" not in err, repr(err)


def test_the_training_options_defaults_are_the_train_spaces() -> None:
    """--help quotes the --train-* defaults as text (the parser is built without importing torch); they
    must be TrainSpace's own, or the help would describe another space than the one searched (hrnet's
    learning rates are the general ones; a model with its own fine-tuning rate scales them)."""
    from dataclasses import fields

    from deltatune.cli import build_parser
    from deltatune.cli.search import train_space
    from deltatune.search.training import TrainSpace

    args = build_parser().parse_args(["search", "--model", "hrnet", "--train", "--train-frames", "100:140"])
    space = train_space(args, workload=None)
    default = TrainSpace(start=100, frames=40)
    for f in fields(TrainSpace):
        assert getattr(space, f.name) == getattr(default, f.name), f.name


def test_an_interrupt_advises_the_command_that_reaches_the_trials_it_aimed_at(results: Path) -> None:
    """``--trials 20`` on a study holding 3 finished trials aims at 23: the interrupt's advice once said
    ``--finish`` alone, which counts ``--trials 20`` as the total and stops short (at 20). It now names
    ``--trials 23 --finish``; with ``--finish`` given, the target is ``--trials`` itself."""
    import optuna

    from deltatune.cli.search import add_arguments, build_settings, interrupted_advice
    from deltatune.search.runner import finish_target

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = [*TINY_ARGS, "--study", "S", "--trials", "20"]
    settings = build_settings(parser.parse_args(argv))
    assert finish_target(settings) == 20  # a new study: 20 in all
    study = optuna.create_study(study_name="S", storage=settings.storage_spec().open(),
                                directions=["minimize", "maximize"])
    for _ in range(3):
        study.add_trial(optuna.trial.create_trial(values=[0.0, 1.0]))
    assert finish_target(settings) == 23
    advice = interrupted_advice(settings.study_name, finish_target(settings))
    assert advice.endswith("To finish to 23 trials, run the same command with --study S --trials 23 --finish")
    assert finish_target(build_settings(parser.parse_args([*argv, "--finish"]))) == 20


def test_the_suggested_commands_quote_a_study_name_with_a_space(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--study "my study"` was suggested back as `--study my study`, which the shell splits in two."""
    import shlex

    assert cli("search", [*TINY_ARGS, "--budget", "100", "--trials", "3", "--study", "my study"]) == 0
    out = capsys.readouterr().out
    assert cli("pareto", ["--study", "my study"]) == 0
    out += capsys.readouterr().out
    suggested = [ln.split(":", 1)[1].strip() for ln in out.splitlines()
                 if ln.startswith(("export it:", "inspect:"))]  # fmt: skip
    assert len(suggested) >= 2
    for line in suggested:
        argv = shlex.split(line)
        assert argv[argv.index("--study") + 1] == "my study", line


def test_overlapping_spread_stretches_and_an_also_on_video_without_the_windows_are_said(
    results: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--spread 4 on a 40-frame video with 16-frame clips tuned on stretches at 0, 8, 16 and 24 (one's
    held-out frames another's tuning frames), and --also-on of another video scored its whole frame though
    --window was given; neither said a word."""
    from deltatune.cli.search import add_arguments, build_settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--model", "hrnet_tiny", "--weights", "none", "--frames", "6", "--study", "o"]
    with caplog.at_level("WARNING"):
        build_settings(parser.parse_args([*base, "--spread", "200"]))
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "--spread 200: stretches of --frames 6 start as little as 3 frames apart" in said
    assert "some stretches' held-out frames are other stretches' tuning frames" in said
    caplog.clear()
    with caplog.at_level("WARNING"):
        build_settings(parser.parse_args([*base, "--spread", "3"]))
        build_settings(parser.parse_args([*base, "--window", "0,0,240,320", "--also-on", "vtest@300"]))
    assert not [r for r in caplog.records if "--spread" in r.getMessage() or "--also-on" in r.getMessage()]
    with caplog.at_level("WARNING"):
        build_settings(parser.parse_args([*base, "--window", "0,0,240,320", "--also-on", "carphone@0"]))
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "--also-on carphone@0: another video than the clip's" in said


def test_pareto_of_a_multi_segment_study_says_so_and_its_csv_has_each_segments_scores(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pareto showed the worst-over-segments values as if from one clip, and its CSV had no segment."""
    assert cli("search", [*TINY_ARGS, "--trials", "2", "--speed", "macs", "--retime", "0", "--also-on",
                          "vtest@300", "--study", "two"]) == 0
    capsys.readouterr()
    csv = tmp_path / "two.csv"
    assert cli("pareto", ["--study", "two", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "each trial scored on 2 segments (vtest@0, vtest@300); objectives: the worst over them" in out
    table = pd.read_csv(csv)
    for seg in ("vtest@0", "vtest@300"):
        assert {f"segment.{seg}.accuracy_loss", f"segment.{seg}.speedup"} <= set(table.columns)
    worst = table[["segment.vtest@0.speedup", "segment.vtest@300.speedup"]].min(axis=1)
    assert (table["speedup"] == worst).all()


def test_a_study_resumes_with_its_weights_file_named_from_another_folder(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--weights w.pt`` from its folder, then ``--weights /abs/w.pt`` from elsewhere (or a copy) is one
    set of weights: resuming was refused as "a different workload: weights 'w.pt' (now '/abs/w.pt')",
    whose advice, a new --study, threw the trials away. Other contents are still refused, by fingerprint."""
    import torch

    from deltatune_models import create_model

    folder = tmp_path / "weights"
    folder.mkdir()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        torch.save(create_model("hrnet_tiny", weights=None).state_dict(), folder / "w.pt")
    args = [a for a in TINY_ARGS if a != "none"]
    at = args.index("--weights") + 1
    monkeypatch.chdir(folder)
    assert cli("search", [*args[:at], "w.pt", *args[at:], "--trials", "1", "--study", "wf", "--speed",
                          "macs", "--retime", "0"]) == 0
    monkeypatch.chdir(tmp_path)
    again = [*args[:at], str(folder / "w.pt"), *args[at:], "--trials", "2", "--study", "wf", "--speed",
             "macs", "--retime", "0", "--finish"]
    assert cli("search", again) == 0, capsys.readouterr().err
    assert "study wf: 2 trials (1 new)" in capsys.readouterr().out
    with torch.random.fork_rng():
        torch.manual_seed(2)
        torch.save(create_model("hrnet_tiny", weights=None).state_dict(), tmp_path / "other.pt")
    again[at] = str(tmp_path / "other.pt")
    assert cli("search", again) == 2
    assert "it was created with other weights (fingerprint" in capsys.readouterr().err


def test_a_notice_said_as_the_search_begins_is_not_said_again_at_the_end(tmp_path: Path) -> None:
    """The random-start and random-weights sentences came twice: as a `WARNING deltatune.search.runner:`
    log line when found and as a `note:` after the results. Now once each, when found, before the time is
    spent."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "deltatune", "search", *TINY_ARGS, "--trials", "3", "--speed", "macs"],
        cwd=tmp_path, env={**os.environ, "DELTATUNE_RESULTS": str(tmp_path / "res")}, capture_output=True,
        text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    both = done.stdout + done.stderr
    for sentence in ("strategy tpe with 3 trial(s): its first 4 trials are random draws",
                     "model 'hrnet_tiny' has no default weights: using random weights"):
        assert both.count(sentence) == 1, both
        assert f"warning: {sentence}" in done.stderr
