"""``run_ablation`` on real runs: every run once, resume skips finished runs, kill -9 loses nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from deltatune.ablation import find_study, load_results, load_study, run_ablation
from deltatune.ablation.store import default_storage
from tests.ablation.conftest import EVAL_STUDY, write_study
from tests.services.processes import marked_pids

#: Slow (minutes on 2 cores): each test runs a real ablation study in worker subprocesses.
pytestmark = pytest.mark.slow


def _complete_keys(url: str, name: str) -> list[str]:
    study = optuna.load_study(study_name=name, storage=url)
    return [
        t.user_attrs["run_key"]
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if "run_key" in t.user_attrs
    ]


def _run_once(tmp_path: Path, text: str, name: str, runs: int) -> tuple[Any, Any, Any]:
    """Write study ``text`` as ``name``, run it, check that all ``runs`` completed and none failed, and
    return ``(spec, stored Optuna study, results)``."""
    spec = load_study(write_study(tmp_path, text, name))
    summary = run_ablation(spec, heartbeat=2)
    assert (summary.complete, summary.failed) == (runs, {})
    study, stored = find_study(default_storage(spec.name))
    return spec, study, load_results(study, stored)


def test_a_call_counts_only_the_runs_it_ran_not_another_callers(tmp_path: Path, results: Path) -> None:
    """Two ``ablate`` processes on one study each said "6 of 6 runs finished (6 in this call)" having run
    3 each: "in this call" counted every run finished since the call began. Here another call, started
    from this one's first progress report, runs every run: this call ran none of them."""
    spec = load_study(write_study(tmp_path, EVAL_STUDY, "abl-two-callers"))
    other: list[Any] = []

    def progress(_done: int, _expected: int) -> None:
        if not other:
            other.append(run_ablation(spec, heartbeat=2))

    first = run_ablation(spec, heartbeat=2, on_progress=progress)
    assert (other[0].complete, other[0].new) == (4, 4)
    assert (first.complete, first.new) == (4, 0)


def _mac_and_loss(obs: Any, factor: str) -> tuple[Any, Any]:
    """The MAC speedup and accuracy loss observations of a one-factor evaluate study, by factor level."""
    return tuple(obs[obs.metric == m].set_index(factor)["value"] for m in ("mac_speedup", "accuracy_loss"))


def test_every_run_once_then_resume_skips(tmp_path: Path, results: Path) -> None:
    spec = load_study(write_study(tmp_path, EVAL_STUDY, "abl-resume"))
    first = run_ablation(spec, heartbeat=2)
    assert (first.expected, first.complete, first.new, first.failed) == (4, 4, 4, {})
    again = run_ablation(spec, heartbeat=2)
    assert (again.complete, again.new) == (4, 0)
    keys = _complete_keys(default_storage(spec.name), spec.name)
    assert sorted(keys) == sorted(r.key for r in spec.runs())
    study, stored = find_study(default_storage(spec.name))
    res = load_results(study, stored)
    obs = res.observations
    assert set(obs["metric"]) == {"accuracy_loss", "mac_speedup", "measured_speedup"}
    assert len(obs) == 4 * 3
    # rms reduces over channels less than max does: more pixels fire and more MACs are spent
    mac = obs[obs.metric == "mac_speedup"].groupby("mode")["value"].mean()
    assert mac["max"] != mac["rms"]
    assert (res.speed_repeats["ratio"] > 0).all() and len(res.speed_repeats) == 4
    prov = res.provenance
    assert prov["git_revision"].str.len().min() >= 7
    assert '"torch": "2.13.0' in prov["versions"].iloc[0]


def test_a_dry_run_says_what_a_run_would_do(
    tmp_path: Path, results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run listed every run of the file whatever the storage held, and exited 0 for a design the
    real run refuses. It now marks the finished runs and refuses what ablate refuses."""
    from deltatune.cli import main

    spec = load_study(write_study(tmp_path, EVAL_STUDY, "abl-dry"))
    assert main(["ablate", str(tmp_path / "abl-dry.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "= 4 runs\n" in out and "(finished)" not in out and not results.exists()  # nothing created
    run_ablation(spec, heartbeat=2)
    grown = write_study(tmp_path, EVAL_STUDY.replace('"vtest@300"]', '"vtest@300", "vtest@600"]'), "abl-dry")
    assert main(["ablate", str(grown), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "= 6 runs; in " in out and ": 4 finished, 2 to run\n" in out, out
    assert "adds runs to the stored design (4 -> 6 runs)" in out and out.count("(finished)") == 4
    changed = write_study(tmp_path, EVAL_STUDY.replace("frames = 5", "frames = 6"), "abl-dry")
    assert main(["ablate", str(changed), "--dry-run"]) == 2
    assert "was run with a different design: frames 5 (now 6); " in capsys.readouterr().err


def test_a_detection_studys_dry_run_counts_its_trainings(
    tmp_path: Path, results: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The students' study listed 80 runs and nothing said that only 40 detectors would be trained (the
    first run took 104 s, its twin 3 s), nor that some were in the cache already."""
    from deltatune.ablation.detection import detection_config, detector_path
    from deltatune.cli import main

    monkeypatch.setenv("DELTATUNE_DETECTOR_CACHE", str(tmp_path / "detectors"))
    study = Path(__file__).resolve().parents[2] / "studies" / "seed_table2.toml"
    assert main(["ablate", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "= 80 runs" in out and "40 detectors: the classic and delta runs" in out
    run = load_study(study).runs()[0]
    cached = detector_path(detection_config(load_study(study), run.point, run.seed))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")  # only its presence counts here
    assert main(["ablate", str(study), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"40 detectors (1 of them already trained, in {tmp_path / 'detectors'}):" in said


def test_kill_9_mid_run_leaves_no_process_and_rerun_completes(tmp_path: Path, results: Path) -> None:
    path = write_study(
        tmp_path,
        EVAL_STUDY.replace('["vtest@0", "vtest@300"]', '["vtest@0", "vtest@300", "vtest@500"]'),
        "abl-kill",
    )
    spec = load_study(path)
    url = default_storage(spec.name)
    mark = f"DELTATUNE_TEST_MARK={uuid.uuid4().hex}"
    env = {**os.environ, "DELTATUNE_TEST_MARK": mark.split("=", 1)[1], "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "deltatune",
        "ablate",
        str(path),
        "--jobs",
        "2",
        "--heartbeat",
        "1",
        "--no-progress",
    ]
    log = (tmp_path / "ablate.log").open("wb")  # a file, not a pipe: a full pipe would block the process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # kill once one run is done and another is running
            time.sleep(0.5)
            assert proc.poll() is None, (tmp_path / "ablate.log").read_text()
            if not Path(url[len("sqlite:///") :]).is_file():
                continue
            # freeze the command and its workers, then look: a run seen running stays running until the
            # kill (read first, a run could finish in between, and with it the last one left)
            frozen = marked_pids(mark)
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):  # a child (git) that ended meanwhile
                    os.kill(pid, signal.SIGSTOP)
            try:
                study = optuna.load_study(study_name=spec.name, storage=url)
                states = [t.state for t in study.get_trials(deepcopy=False)]
            except Exception:  # frozen in the middle of a write: thaw and look again
                states = []
            if TrialState.COMPLETE in states and TrialState.RUNNING in states:
                break
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        else:
            pytest.fail("ablate never had a finished and a running run")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for pid in frozen:  # the workers, thawed, must notice that their command is gone and end
            if pid != proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        gone = time.time() + 15
        while marked_pids(mark) and time.time() < gone:
            time.sleep(0.5)
        assert marked_pids(mark) == [], "worker processes outlived the killed ablate"
        study = optuna.load_study(study_name=spec.name, storage=url)
        assert any(t.state == TrialState.RUNNING for t in study.get_trials()), "no run was cut off"
        assert len(_complete_keys(url, spec.name)) < len(spec.runs())
        # the dry run says what the storage holds, the run cut off included (it said nothing at all while
        # no run had finished yet)
        dry = subprocess.run([*cmd[:5], "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
        assert dry.returncode == 0, dry.stderr
        assert "running (or left by a worker that died: retried)" in dry.stdout, dry.stdout
        assert dry.stdout.count("  (running)") >= 1 and dry.stdout.count("  (finished)") >= 1
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in marked_pids(mark):  # none left frozen, whatever failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    keys = _complete_keys(url, spec.name)
    assert sorted(keys) == sorted(r.key for r in spec.runs())  # none missing, none twice
    study = optuna.load_study(study_name=spec.name, storage=url)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    retried = [t for t in study.get_trials(states=(TrialState.FAIL,))]
    assert retried, "the killed run should have been failed (stale heartbeat) and retried"
    assert f"{len(spec.runs())} of {len(spec.runs())} runs finished" in rerun.stdout


def test_search_scored_on_other_clips(tmp_path: Path, results: Path) -> None:
    """A generalisation run: the chosen setting scored on its tuning and held-out frames and on another
    clip with fewer crop windows (carphone has one) than the study's streams. The dense hrnet finds no
    keypoint on carphone (a head and shoulders filling the frame), so its accuracy loss is NaN there, not
    a 0 that any setting would get; its speed is measured."""
    text = (
        '[study]\nname = "{name}"\nkind = "search"\nmodel = "hrnet"\nframes = 6\nstreams = 2\nrepeats = 1\n'
        'speed_repeats = 1\nscore_on = ["carphone@10"]\n'
        '[fixed]\nstrategy = "sweep"\ntrials = 2\nbudget = 5.0\n'
    )
    obs = _run_once(tmp_path, text, "abl-gen", 1)[2].observations
    assert set(obs["scored_on"]) == {"tuning", "held-out", "carphone@10"}
    assert set(obs["metric"]) == {"accuracy_loss", "mac_speedup", "measured_speedup"}
    unscorable = (obs["scored_on"] == "carphone@10") & (obs["metric"] == "accuracy_loss")
    assert obs.loc[unscorable, "value"].isna().all() and unscorable.sum() == 1
    assert obs.loc[~unscorable, "value"].notna().all()


def test_training_hyperparameters_as_factors(tmp_path: Path, results: Path) -> None:
    """Weight decay x a fixed fine-tune (seeded by the run's seed) before each threshold search, and a run
    whose inner search samples the fine-tune itself (train = on, on a wall-clock budget); the chosen
    setting of each is scored on another segment only (``observe = []``) with the weights it ran."""
    text = (
        '[study]\nname = "{name}"\nkind = "search"\nmodel = "hrnet_tiny"\nweights = "none"\nframes = 6\n'
        'streams = 1\nrepeats = 1\nspeed_repeats = 1\nscore_on = ["vtest@300"]\nobserve = []\n'
        '[fixed]\nstrategy = "random"\ntrials = 3\nbudget = 100.0\ntrain_frames = "6:12"\n'
        'sparsity_penalty = 1.0\nlr = 0.003\n'
        '[factors]\nweight_decay = [0.0, 1.0]\nfinetune_steps = [2]\n'
    )
    _, stored, res = _run_once(tmp_path, text, "abl-train", 2)
    # each run records its fine-tune's settings (a resumed study compares their rate, see test_store)
    done = stored.get_trials(states=(TrialState.COMPLETE,))
    recorded = sorted((f["lr"], f["weight_decay"], f["steps"])
                      for f in (t.user_attrs["provenance"]["finetune"] for t in done))
    assert recorded == [(0.003, 0.0, 2), (0.003, 1.0, 2)]
    assert set(res.observations["scored_on"]) == {"vtest@300"}
    assert res.observations["value"].notna().all()
    # the two weight decays gave two fine-tunes: different networks, so different scores of the same seed
    by_wd = res.observations.pivot_table(index="metric", columns="weight_decay", values="value")
    assert (by_wd["0.0"] != by_wd["1.0"]).any()

    joint = text.replace('[factors]\nweight_decay = [0.0, 1.0]\nfinetune_steps = [2]\n',
                         '[factors]\ntrain = ["on"]\n').replace("trials = 3", "trials = 3\ntimeout = 600")
    spec, study, _ = _run_once(tmp_path, joint.replace("{name}", "abl-joint"), "abl-joint", 1)
    runs = [t for t in study.get_trials(states=(TrialState.COMPLETE,)) if "run_key" in t.user_attrs]
    inner = optuna.load_study(study_name=f"{spec.name}.{spec.runs()[0].key}",
                              storage=default_storage(spec.name))
    assert all("train.steps" in t.params for t in inner.trials)
    assert len(runs) == 1 and runs[0].user_attrs["provenance"]["finetune"] is None  # no fixed fine-tune


def test_key_frames_on_change_as_a_factor(tmp_path: Path, results: Path) -> None:
    """An evaluate study with key frames on change off and at 0.1 % of the input: with the low fraction
    every frame of the vtest crop is a key frame (dense and exact: no loss, MAC speedup 1), without it the
    thresholds truncate (work saved)."""
    text = (
        '[study]\nname = "{name}"\nkind = "evaluate"\nmodel = "hrnet"\nframes = 5\nstreams = 1\n'
        'units = ["vtest@0"]\nspeed_repeats = 1\n[fixed]\nthresholds = 0.05\n'
        '[factors]\nkeyframe_change = ["none", 0.001]\n'
    )
    mac, loss = _mac_and_loss(_run_once(tmp_path, text, "abl-kc", 2)[2].observations, "keyframe_change")
    assert mac["0.001"] == pytest.approx(1.0) and loss["0.001"] == 0.0
    assert mac["none"] > 1.2


def test_an_evaluate_study_on_a_classifier(tmp_path: Path, results: Path) -> None:
    """MobileNetV2 (ImageNet weights) scored by top-1 agreement with its dense model: thresholds 0 lose
    nothing and save nothing; 0.05 saves MACs and its loss is a whole number of changed samples."""
    text = (
        '[study]\nname = "{name}"\nkind = "evaluate"\nmodel = "mobilenet_v2"\nframes = 5\nstreams = 2\n'
        'units = ["vtest@0"]\nspeed_repeats = 1\n'
        "[factors]\nthresholds = [0, 0.05]\n"
    )
    mac, loss = _mac_and_loss(_run_once(tmp_path, text, "abl-cls", 2)[2].observations, "thresholds")
    assert mac["0"] == pytest.approx(1.0, abs=0.02) and loss["0"] == 0.0
    assert mac["0.05"] > 1.5
    samples = 4 * 2  # the whole 5-frame clip, frame 0 dense and not scored, 2 streams
    assert loss["0.05"] * samples / 100 == pytest.approx(round(loss["0.05"] * samples / 100))


def test_a_run_whose_worker_died_before_its_first_heartbeat_is_retried(tmp_path: Path, results: Path) -> None:
    """A worker killed between popping a run (Optuna's ``ask``: RUNNING) and its first heartbeat leaves a
    trial Optuna never calls stale; ``ablate`` used to wait for it forever. Once every worker the study
    names is gone, it is failed and its run done again."""
    import platform

    from deltatune.ablation.store import open_ablation

    path = write_study(tmp_path, EVAL_STUDY, "abl-orphan")
    spec = load_study(path)
    url = default_storage(spec.name)
    study = open_ablation(url, spec, heartbeat=1)
    run = spec.runs()[0]
    study.enqueue_trial({}, user_attrs={"run_key": run.key, "factors": run.factors, "seed": run.seed,
                                        "unit": run.unit, "attempt": 1})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study.set_user_attr(f"worker:{platform.node()}:{dead.pid}", 0.0)  # the worker that popped it, gone
    with pytest.warns(UserWarning, match="Heartbeat of storage"):  # Optuna's: ask() outside optimize()
        popped = study.ask()
    assert popped.user_attrs["run_key"] == run.key
    done = subprocess.run([sys.executable, "-m", "deltatune", "ablate", str(path), "--heartbeat", "1",
                           "--no-progress"], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(_complete_keys(url, spec.name)) == sorted(r.key for r in spec.runs())
    trials = optuna.load_study(study_name=spec.name, storage=url).trials
    assert trials[popped.number].state == TrialState.FAIL
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_study_on_a_real_postgresql_server(tmp_path: Path, results: Path) -> None:
    """The multi-machine storage the README documents, ``--storage postgresql://...`` as written there
    (no driver named): every run once in worker processes, then read back for the report."""
    import sqlalchemy

    from deltatune.search.storage import engine_url
    from tests.services.postgres import postgres_server

    path = write_study(tmp_path, EVAL_STUDY, "abl-pg")
    spec = load_study(path)

    def cli(*args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "deltatune", *args], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == rc, done.stderr
        return done

    def dry_run() -> str:
        return cli("ablate", str(path), "--dry-run", "--storage", url).stdout.splitlines()[0]

    def tables() -> list[str]:
        engine = sqlalchemy.create_engine(engine_url(url))
        try:
            return sqlalchemy.inspect(engine).get_table_names()
        finally:
            engine.dispose()

    with postgres_server() as url:
        assert url.startswith("postgresql://")
        assert dry_run().endswith("= 4 runs") and tables() == []  # a dry run creates nothing
        for read in (["report", url], ["pareto", "--storage", url]):  # nor do commands that only read
            err = cli(*read, rc=2).stderr.strip()
            assert err.endswith("holds no studies (the database has no Optuna tables)"), err
            assert len(err.splitlines()) == 1, err
        assert tables() == []
        summary = run_ablation(spec, storage=url, jobs=2, threads=1, heartbeat=2)
        assert (summary.expected, summary.complete, summary.failed) == (4, 4, {})
        assert run_ablation(spec, storage=url, heartbeat=2).new == 0  # resumed: nothing left to run
        study, stored = find_study(url)
        res = load_results(study, stored)
        assert stored.name == spec.name and len(res.observations) == 4 * 3
        assert dry_run().endswith(": 4 finished, 0 to run")


def test_an_interrupted_ablate_fails_the_runs_only_it_was_running(tmp_path: Path) -> None:
    """An interrupt between Optuna's creating a run's trial and running it left the trial RUNNING; the
    interrupted process counts itself gone (``leaving``) and fails it, unless another worker still lives."""
    import platform

    from deltatune.ablation.runner import fail_orphans

    host, me = platform.node(), os.getpid()
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/o.db")
    study = optuna.create_study(study_name="o", storage=storage)
    study.set_user_attr(f"worker:{host}:{me}", 0.0)
    t = study.ask()
    assert fail_orphans(study) == []  # this process still runs
    assert fail_orphans(study, leaving=me) == [t.number]
    shared = optuna.create_study(study_name="p", storage=storage)
    shared.set_user_attr(f"worker:{host}:{me}", 0.0)
    shared.set_user_attr(f"worker:{host}:{os.getppid()}", 0.0)  # a live worker: the trial may be its
    shared.ask()
    assert fail_orphans(shared, leaving=me) == []


def test_an_evaluate_study_scores_a_thresholds_file_at_its_own_settings(
    tmp_path: Path, results: Path
) -> None:
    """A thresholds file exported at mode rms, input dilation 3 and a key frame every 2 frames was scored at
    max, 1 and none (the study's defaults); a setting the study gives itself still wins."""
    import json

    shipped = json.loads((Path(__file__).parents[2] / "studies/thresholds/hrnet.json").read_text())
    (tmp_path / "t.json").write_text(json.dumps({**shipped, "mode": "rms", "input_dilation": 3,
                                                 "keyframe_interval": 2}))
    text = (
        '[study]\nname = "{name}"\nkind = "evaluate"\nmodel = "hrnet"\nframes = 5\nstreams = 1\n'
        'units = ["vtest@0"]\nspeed_repeats = 0\n[fixed]\nthresholds = "t.json"\ninput_dilation = 1\n'
        "[factors]\nscale = [1.0, 0.5]\n"
    )
    _, study, _ = _run_once(tmp_path, text, "abl-file", 2)
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        config = t.user_attrs["config"]
        assert (config["mode"], config["keyframe_interval"], config["input_dilation"]) == ("rms", 2, 1)


def _rms(shipped: dict) -> dict:
    return {**shipped, "mode": "rms"}


def _tripled(shipped: dict) -> dict:
    return {**shipped, "thresholds": {k: (v * 3 if isinstance(v, float) else v)
                                      for k, v in shipped["thresholds"].items()}}


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        # the mode changed to rms (or runs made before this version took a file's own mode)
        (_rms, r"scored thresholds file t.json at mode 'max' \(now 'rms'\)"),
        # every threshold tripled: the new runs went into the same cells, and the report counted them
        (_tripled, r"file t.json with other values \(input .* then, .* now; \d+ more\).*changed since"),
    ],
    ids=["mode", "values"],
)
def test_runs_that_scored_a_thresholds_file_otherwise_are_not_mixed_with_new_ones(
    tmp_path: Path, results: Path, edit: Any, said: str
) -> None:
    """A thresholds file edited after the first runs: adding a segment would have put runs of the new
    setting beside the old ones in the same cells."""
    import json

    from deltatune.errors import ConfigError

    shipped = json.loads((Path(__file__).parents[2] / "studies/thresholds/hrnet.json").read_text())
    (tmp_path / "t.json").write_text(json.dumps(shipped))
    text = (
        '[study]\nname = "{name}"\nkind = "evaluate"\nmodel = "hrnet"\nframes = 4\nstreams = 1\n'
        'units = ["vtest@0"]\nspeed_repeats = 0\n[fixed]\nthresholds = "t.json"\n'
    )
    _run_once(tmp_path, text, "abl-mixed", 1)
    (tmp_path / "t.json").write_text(json.dumps(edit(shipped)))
    grown = load_study(write_study(tmp_path, text.replace('["vtest@0"]', '["vtest@0", "vtest@100"]'),
                                   "abl-mixed"))
    with pytest.raises(ConfigError, match=said):
        run_ablation(grown, heartbeat=2)


def test_runs_failed_by_an_interrupt_do_not_use_up_their_attempts(tmp_path: Path) -> None:
    """Each Ctrl-C failed the run it stopped, and three on one run gave it up for good ("failed 3 times;
    worker died (no heartbeat)"): a long study interrupted now and then lost runs that never failed.
    Runs failed by an interrupt are retried however often; real failures still count."""
    import platform
    from types import SimpleNamespace

    from deltatune.ablation.runner import _plan, fail_orphans

    host, me = platform.node(), os.getpid()
    study = optuna.create_study(study_name="i", storage=f"sqlite:///{tmp_path}/i.db")
    study.set_user_attr(f"worker:{host}:{me}", 0.0)
    runs = [SimpleNamespace(key="stopped"), SimpleNamespace(key="broken")]
    for _ in range(3):
        study.ask().set_user_attr("run_key", "stopped")
        assert len(fail_orphans(study, leaving=me, interrupted=True)) == 1
        broken = study.ask()
        broken.set_user_attr("run_key", "broken")
        study.tell(broken, state=optuna.trial.TrialState.FAIL)
    missing, complete, running, given_up = _plan(study, runs, 3)  # type: ignore[arg-type]
    assert [r.key for r in missing] == ["stopped"] and list(given_up) == ["broken"]
    assert (complete, running) == (0, 0)


def test_runs_of_a_weights_file_that_changed_since_are_not_mixed_with_new_ones(
    tmp_path: Path, results: Path
) -> None:
    """A study names its weights file, not its contents: re-trained under the same name, the file's new
    weights ran the added runs beside the finished ones in the same cells, and the report counted them as
    one network. Each run records the weights' fingerprint; a resume on other weights is refused, by the
    check before the progress bar (``design_change``) and by the run itself."""
    import torch

    from deltatune.ablation.store import design_change
    from deltatune.delta.fingerprint import weights_fingerprint
    from deltatune.errors import ConfigError
    from deltatune_models import create_model

    torch.manual_seed(0)
    model = create_model("hrnet_tiny", weights=None)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    text = (
        '[study]\nname = "{name}"\nkind = "evaluate"\nmodel = "hrnet_tiny"\nweights = "w.pt"\nframes = 4\n'
        'streams = 1\nunits = ["vtest@0"]\nspeed_repeats = 0\n[fixed]\nthresholds = 0.05\n'
    )
    _, study, _ = _run_once(tmp_path, text, "abl-weights", 1)
    [run] = study.get_trials(states=(TrialState.COMPLETE,))
    grown = load_study(write_study(tmp_path, text.replace('["vtest@0"]', '["vtest@0", "vtest@100"]'),
                                   "abl-weights"))
    assert design_change(default_storage(grown.name), grown)  # same weights: the runs are added
    state = model.state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 0.01  # same file, other contents (re-trained)
    torch.save(state, tmp_path / "w.pt")
    key = run.user_attrs["run_key"]
    said = (rf"study 'abl-weights' in .*: its finished run {key} ran weights file w\.pt "
            r"with other weights \(fingerprint sha256:\w+, now sha256:\w+\): the file changed since")
    with pytest.raises(ConfigError, match=said):
        design_change(default_storage(grown.name), grown)
    with pytest.raises(ConfigError, match=said):
        run_ablation(grown, heartbeat=2)
    assert len(_complete_keys(default_storage(grown.name), grown.name)) == 1  # nothing ran
    assert run.user_attrs["provenance"]["weights_fingerprint"] == weights_fingerprint(model)


def test_a_study_that_times_no_run_reports_no_measured_speedup(tmp_path: Path, results: Path) -> None:
    """``speed_repeats = 0`` times no run, yet the report had a "measured speedup" section of dashes
    (n = 0 at every level, a test of 0 blocks) counted in the report's comparisons: now the study has no
    such metric, and its "Measured speed" section says in one line that nothing was timed."""
    from deltatune.report.analysis import analyse
    from deltatune.report.render import render_markdown

    text = (
        '[study]\nname = "{name}"\nkind = "evaluate"\nmodel = "hrnet_tiny"\nweights = "none"\nframes = 4\n'
        'streams = 1\nunits = ["vtest@0", "vtest@100"]\nspeed_repeats = 0\n[fixed]\nthresholds = 0.05\n'
        '[factors]\naccumulate = ["on", "off"]\n'
    )
    _, _, res = _run_once(tmp_path, text, "abl-untimed", 4)
    assert [m.name for m in res.metrics] == ["accuracy_loss", "mac_speedup"]
    md = render_markdown(res, analyse(res, aso_iterations=200), image_dir=tmp_path / "img", link_prefix="img")
    assert "measured_speedup" not in md
    speed = md.split("## Measured speed\n", 1)[1].split("\n## ", 1)[0]
    assert speed.strip() == "_Not timed: the study's speed_repeats is 0._"
