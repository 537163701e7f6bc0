"""kill -9 of a `search --jobs 2`: no worker outlives it, and `--finish` completes the study to N trials
with none lost, none left RUNNING (real processes, a real journal, the real tiny HRNet)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from deltatune.search.runner import fail_interrupted_trials, fail_orphaned_trials
from deltatune.search.storage import StorageSpec
from tests.services.processes import marked_pids


def _states(journal: Path, study: str, *, trials: bool = False) -> list[Any]:
    """The states of the study's trials (the trials themselves with ``trials``)."""
    s = optuna.load_study(study_name=study, storage=StorageSpec("journal", str(journal)).open())
    return s.get_trials(deepcopy=False) if trials else [t.state for t in s.get_trials(deepcopy=False)]


def _wait_for(journal: Path, study: str, proc: subprocess.Popen, ready: Callable[[list[TrialState]], bool],
              *, timeout: float, every: float, why: str) -> list[TrialState]:
    """Poll the journal until ``ready(states)`` holds (returns those states) while ``proc`` runs; fail the
    test with ``proc``'s stderr if it exits first, or with ``why`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(every)
        try:
            states = _states(journal, study) if journal.is_file() else []
        except Exception:  # a read racing the writer: try again
            continue
        if ready(states):
            return states
        assert proc.poll() is None, proc.communicate()[1]
    pytest.fail(why)


@pytest.mark.slow
def test_kill_9_leaves_no_worker_and_finish_reaches_n(tmp_path: Path) -> None:
    results = tmp_path / "results"
    mark = uuid.uuid4().hex
    env = {
        **os.environ,
        "DELTATUNE_RESULTS": str(results),
        "OMP_NUM_THREADS": "1",
        "DELTATUNE_TEST_MARK": mark,
    }
    n = 40
    cmd = [
        sys.executable,
        "-m",
        "deltatune",
        "search",
        "--model",
        "hrnet_tiny",
        "--weights",
        "none",
        "--frames",
        "6",
        "--streams",
        "1",
        "--strategy",
        "random",
        "--study",
        "k",
        "--jobs",
        "2",
        "--trials",
        str(n),
        "--no-progress",
    ]
    journal = results / "k.journal"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(journal, "k", proc,
                  lambda states: states.count(TrialState.COMPLETE) >= 4 and TrialState.RUNNING in states,
                  timeout=180, every=0.3, why="the search never had finished and running trials at once")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        gone = time.time() + 15
        while marked_pids(mark) and time.time() < gone:
            time.sleep(0.3)
        assert marked_pids(mark) == [], "search workers outlived their killed parent"
        done = _states(journal, "k").count(TrialState.COMPLETE)
        assert done < n
    finally:
        if proc.poll() is None:
            proc.kill()
    rerun = subprocess.run([*cmd, "--finish"], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    states = _states(journal, "k")
    assert states.count(TrialState.COMPLETE) == n  # finished to N: nothing lost, no overshoot
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    # each worker process (two per run; the killed run's second may not have started) named itself
    study = optuna.load_study(study_name="k", storage=StorageSpec("journal", str(journal)).open())
    assert len([k for k in study.user_attrs if k.startswith("worker:")]) >= 3


def test_fail_orphaned_trials_only_touches_dead_local_workers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = StorageSpec("journal", str(tmp_path / "o.journal")).open()
    study = optuna.create_study(study_name="o", storage=storage)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import platform

    cases = {
        "dead": (dead.pid, platform.node()),
        "alive": (os.getpid(), platform.node()),
        "elsewhere": (dead.pid, "another-host"),
    }
    numbers = {}
    for name, (pid, host) in cases.items():
        t = study.ask()
        t.set_user_attr("pid", pid)
        t.set_user_attr("host", host)
        numbers[name] = t.number
    assert fail_orphaned_trials(study) == [numbers["dead"]]
    # named by its study: an ablation's runs are inner studies, whose trial numbers alone said nothing
    assert f"study o: marked 1 trial(s) of dead workers FAIL and queued them again: [{numbers['dead']}]" in (
        caplog.text)
    by_number = {t.number: t.state for t in study.get_trials()}
    assert by_number[numbers["dead"]] == TrialState.FAIL
    assert by_number[numbers["alive"]] == by_number[numbers["elsewhere"]] == TrialState.RUNNING
    retries = study.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs.get("failed_trial") for t in retries] == [numbers["dead"]]
    # the retry does not name the dead worker: a live worker taking it up looked dead until it wrote its pid
    assert "pid" not in retries[0].user_attrs and "host" not in retries[0].user_attrs


def test_an_interrupt_fails_this_process_trials_and_unnamed_ones_when_no_other_worker_lives(
    tmp_path: Path,
) -> None:
    """A SIGTERM landing between Optuna's ``ask`` and the objective left that trial RUNNING after the search
    had ended (the SIGTERM case of the test below failed so in CI): the trials naming this process are
    failed, and the unnamed one too while no other worker of the study lives; neither is queued again
    (a dead sibling's trial is, as at a start)."""
    import platform

    host, me, other = platform.node(), os.getpid(), os.getppid()  # the parent: alive, not this process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    storage = StorageSpec("journal", str(tmp_path / "i.journal")).open()
    alone = optuna.create_study(study_name="alone", storage=storage)
    alone.set_user_attr(f"worker:{host}:{me}", 0.0)
    mine, bare, theirs, sibling = alone.ask(), alone.ask(), alone.ask(), alone.ask()
    for t, pid in ((mine, me), (theirs, other), (sibling, dead.pid)):
        t.set_user_attr("pid", pid)
        t.set_user_attr("host", host)
    assert fail_interrupted_trials(alone) == [mine.number, bare.number]
    states = [t.state for t in alone.get_trials()]
    assert states[:4] == [TrialState.FAIL, TrialState.FAIL, TrialState.RUNNING, TrialState.FAIL]
    # a dead sibling's trial is failed and queued again, as the next start would; this process's are not
    retries = alone.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs.get("failed_trial") for t in retries] == [sibling.number]
    shared = optuna.create_study(study_name="shared", storage=storage)
    shared.set_user_attr(f"worker:{host}:{me}", 0.0)
    shared.set_user_attr(f"worker:{host}:{other}", 0.0)  # a live worker: the unnamed trial may be its
    mine, bare = shared.ask(), shared.ask()
    mine.set_user_attr("pid", me)
    mine.set_user_attr("host", host)
    assert fail_interrupted_trials(shared) == [mine.number]
    assert [t.state for t in shared.get_trials()] == [TrialState.FAIL, TrialState.RUNNING]


def test_a_trial_killed_before_it_names_its_worker_is_failed_once_every_worker_is_gone(tmp_path) -> None:
    """A worker killed between Optuna's ``ask`` and recording its pid leaves a RUNNING trial without
    ``pid``/``host``: failed (and retried) when every worker the study names ran here and is dead; left
    alone while one is alive here, or one ran on another host."""
    import platform

    storage = StorageSpec("journal", str(tmp_path / "u.journal")).open()
    study = optuna.create_study(study_name="u", storage=storage)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = platform.node()
    half = study.ask()
    half.set_user_attr("pid", dead.pid)  # killed before "host" was written
    bare = study.ask()  # killed before anything was written
    assert fail_orphaned_trials(study) == []  # the study names no worker: nothing can be said
    study.set_user_attr(f"worker:{host}:{dead.pid}", 0.0)
    study.set_user_attr(f"worker:{host}:{os.getpid()}", 0.0)
    assert fail_orphaned_trials(study) == []  # a worker that opened the study is alive here
    other = optuna.create_study(study_name="v", storage=storage)
    other.set_user_attr(f"worker:{host}:{dead.pid}", 0.0)
    other.set_user_attr(f"worker:another-host:{dead.pid}", 0.0)
    other.ask()
    assert fail_orphaned_trials(other) == []  # a worker of another host cannot be checked from here
    gone = optuna.create_study(study_name="w", storage=storage)
    gone.set_user_attr(f"worker:{host}:{dead.pid}", 0.0)
    t1, t2 = gone.ask(), gone.ask()
    t1.set_user_attr("pid", dead.pid)
    assert fail_orphaned_trials(gone) == [t1.number, t2.number]
    retries = gone.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.system_attrs.get("failed_trial") for t in retries) == [t1.number, t2.number]
    assert {half.number, bare.number} <= {t.number for t in study.get_trials(states=(TrialState.RUNNING,))}


@pytest.mark.slow
def test_finish_completes_a_study_whose_killed_worker_left_a_trial_without_its_name(tmp_path: Path) -> None:
    """The kill -9 race made deterministic: a trial created (``ask``) by a worker that died before
    writing its pid stays RUNNING in the journal. ``--finish`` must fail it, retry it, and reach N
    finished trials (it used to count the orphan as taken and stop one short)."""
    env = {**os.environ, "DELTATUNE_RESULTS": str(tmp_path / "results"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "deltatune", "search", "--model", "hrnet_tiny", "--weights", "none",
           "--frames", "6", "--streams", "1", "--strategy", "random", "--study", "z", "--no-progress",
           "--retime", "0"]
    first = subprocess.run([*cmd, "--trials", "3"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    journal = tmp_path / "results" / "z.journal"
    study = optuna.load_study(study_name="z", storage=StorageSpec("journal", str(journal)).open())
    orphan = study.ask().number  # the worker that asked it is gone (the first run's process has exited)
    rerun = subprocess.run([*cmd, "--trials", "6", "--finish"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    trials = optuna.load_study(study_name="z", storage=StorageSpec("journal", str(journal)).open()).trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 6
    assert trials[orphan].state == TrialState.FAIL
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.slow
def test_finish_runs_the_trial_of_a_sibling_killed_while_it_runs(tmp_path: Path) -> None:
    """Two ``search`` processes on one study, one killed mid-trial while the other runs ``--finish``:
    the killed one's trial (RUNNING, naming a dead pid on this host) appears while the survivor runs.
    The survivor must fail it, run it again and reach N finished trials; it used to count the dead
    trial as taken and stop one short."""
    import platform

    env = {**os.environ, "DELTATUNE_RESULTS": str(tmp_path / "results"), "OMP_NUM_THREADS": "1"}
    n = 12
    cmd = [sys.executable, "-m", "deltatune", "search", "--model", "hrnet_tiny", "--weights", "none",
           "--frames", "6", "--streams", "1", "--strategy", "random", "--study", "s", "--no-progress",
           "--retime", "0", "--trials", str(n), "--finish"]
    journal = tmp_path / "results" / "s.journal"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    survivor = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        states = _wait_for(journal, "s", survivor, lambda states: TrialState.COMPLETE in states,
                           timeout=240, every=0.05, why="the survivor never finished a trial")
        study = optuna.load_study(study_name="s", storage=StorageSpec("journal", str(journal)).open())
        orphan = study.ask()  # the killed sibling's trial, as it left it
        orphan.set_user_attr("pid", dead.pid)
        orphan.set_user_attr("host", platform.node())
        # read after the orphan is in: two trials still to finish, so a check between trials comes after it
        # (the count read before could be passed by the time the orphan landed)
        states = _states(journal, "s")
        assert states.count(TrialState.COMPLETE) < n - 1, "the survivor ran too fast for this check"
        _, err = survivor.communicate(timeout=300)
    finally:
        if survivor.poll() is None:
            survivor.kill()
    assert survivor.returncode == 0, err
    trials = optuna.load_study(study_name="s", storage=StorageSpec("journal", str(journal)).open()).trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == n
    assert trials[orphan.number].state == TrialState.FAIL
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_says_what_was_kept_without_a_traceback(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGINT in the middle of a trial: exit 130, one line saying the finished trials are kept and how to
    finish, and none of the stack and lines Optuna logs for the interrupted trial (kept under --debug).
    SIGTERM (``kill``, a scheduler's limit) alike: it ended the search silently, its trial left RUNNING."""
    results = tmp_path / "results"
    env = {**os.environ, "DELTATUNE_RESULTS": str(results), "OMP_NUM_THREADS": "1"}
    # the default hrnet's trials take about a second, so the signal lands inside one, as a user's does
    cmd = [sys.executable, "-m", "deltatune", "search", "--model", "hrnet", "--frames", "12", "--streams",
           "1", "--strategy", "random", "--speed", "macs", "--study", "c", "--trials", "400", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(results / "c.journal", "c", proc,
                  lambda states: states.count(TrialState.COMPLETE) >= 2 and states[-1] == TrialState.RUNNING,
                  timeout=180, every=0.05, why="the search never ran a third trial")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "deltatune search: interrupted; finished trials are kept in study c" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) == 1, err  # Optuna's "Trial N failed with value None." dropped too
    states = [t.state for t in optuna.load_study(
        study_name="c", storage=StorageSpec("journal", str(results / "c.journal")).open()).trials]
    assert TrialState.RUNNING not in states  # the interrupted trial is marked, not left running


@pytest.mark.slow
def test_a_signal_before_the_trial_names_its_worker_leaves_no_trial_running(tmp_path: Path) -> None:
    """SIGTERM landing after Optuna created a trial and before the objective wrote its ``pid`` into it:
    Optuna's own interrupt handling never saw that trial, and it stayed RUNNING after the search ended
    (3 of 6 rounds before the fix). Three rounds, each signalled as soon as such a trial shows."""
    cmd = [sys.executable, "-m", "deltatune", "search", "--model", "hrnet", "--frames", "12", "--streams",
           "1", "--strategy", "random", "--speed", "macs", "--study", "c", "--trials", "400", "--no-progress"]
    for round_ in range(3):
        results = tmp_path / f"results{round_}"
        journal = results / "c.journal"
        env = {**os.environ, "DELTATUNE_RESULTS": str(results), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 90
        try:
            while time.time() < deadline:
                time.sleep(0.01)  # a breath for the search on 2 cores (a read of the journal takes longer)
                assert proc.poll() is None, proc.communicate()[1]
                try:
                    trials = _states(journal, "c", trials=True) if journal.is_file() else []
                except Exception:  # a read racing the writer: again
                    continue
                if (sum(t.state == TrialState.COMPLETE for t in trials) >= 2
                        and trials[-1].state == TrialState.RUNNING and "pid" not in trials[-1].user_attrs):
                    break
            # (a round whose polls all missed that moment, a slow machine's, signals wherever the search is)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        study = optuna.load_study(study_name="c", storage=StorageSpec("journal", str(journal)).open())
        running = [t.number for t in study.get_trials(states=(TrialState.RUNNING,))]
        assert running == [], f"round {round_}: trials {running} left RUNNING"


KILLER = '''
import multiprocessing
import os
import signal

from torch import nn

from deltatune_models import ModelCard, register_model

MODEL_CARDS = {"worker_killer": ModelCard(family="mine", task="pose", input_size=(64, 48),
                                          outputs="heatmaps [N,17,16,12]", num_joints=17,
                                          present_confidence=0.2)}


class Killer(nn.Module):
    """A pose net whose forward, in a worker process, dies as the out-of-memory killer would end it."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 17, 3, 2, 1))

    def forward(self, x):
        if multiprocessing.current_process().name != "MainProcess":
            os.kill(os.getpid(), signal.SIGKILL)
        return self.body(x)


@register_model
def worker_killer():
    return Killer()
'''


@pytest.mark.slow
def test_a_worker_killed_from_outside_is_one_line_with_how_to_finish(tmp_path: Path) -> None:
    """SIGKILL of one ``--jobs`` worker (the out-of-memory killer) ended ``search`` in joblib's
    TerminatedWorkerError traceback ("could be caused by a segmentation fault"), with no word on what was
    kept; it now says what happened and the command that finishes the study."""
    (tmp_path / "killer_nets.py").write_text(KILLER)
    env = {**os.environ, "DELTATUNE_RESULTS": str(tmp_path / "results"), "OMP_NUM_THREADS": "1",
           "DELTATUNE_MODELS": str(tmp_path / "killer_nets.py")}
    cmd = [sys.executable, "-m", "deltatune", "search", "--model", "worker_killer", "--weights", "none",
           "--frames", "6", "--streams", "1", "--speed", "macs", "--retime", "0", "--study", "kk",
           "--jobs", "2", "--trials", "8", "--no-progress"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("deltatune search: a worker process died (SIGKILL(-9): killed from outside, most "
                           "often by the out-of-memory killer; fewer --jobs need less memory)"), run.stderr
    assert last.endswith("run the same command with --study kk --trials 8 --finish")
    assert "Traceback" not in run.stderr
    # an ablation's workers: the same, with how to resume it
    (tmp_path / "kab.toml").write_text('[study]\nname = "kab"\nkind = "search"\nmodel = "worker_killer"\n'
                                       'weights = "none"\nframes = 6\nstreams = 1\nrepeats = 2\n[fixed]\n'
                                       'trials = 2\n[factors]\nstrategy = ["tpe", "random"]\n')
    ablate = [sys.executable, "-m", "deltatune", "ablate", "kab.toml", "--jobs", "2", "--no-progress"]
    run = subprocess.run(ablate, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "deltatune ablate: a worker process died (SIGKILL(-9): killed from outside, most often by the "
        "out-of-memory killer; fewer --jobs need less memory); finished runs are kept and the runs left "
        "running are run again. Resume with: deltatune ablate kab.toml")


@pytest.mark.slow
def test_an_interrupted_ablate_says_how_many_runs_are_kept(tmp_path: Path) -> None:
    """Ctrl-C said "interrupted; finished runs are kept" with no count, and the progress bar still read
    0/6 after a run had finished: the line now counts the finished runs the study keeps."""
    env = {**os.environ, "DELTATUNE_RESULTS": str(tmp_path / "results"), "OMP_NUM_THREADS": "1"}
    (tmp_path / "ki.toml").write_text('[study]\nname = "ki"\nkind = "evaluate"\nmodel = "hrnet_tiny"\n'
                                      'weights = "none"\nframes = 300\nstreams = 1\nspeed_repeats = 0\n'
                                      'units = ["vtest@0", "vtest@400"]\n[fixed]\nthresholds = 0.05\n'
                                      '[factors]\naccumulate = ["on", "off"]\n')
    cmd = [sys.executable, "-m", "deltatune", "ablate", "ki.toml", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    db = tmp_path / "results" / "ki.db"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if db.is_file():
            try:
                study = optuna.load_study(study_name="ki", storage=f"sqlite:///{db}")
            except KeyError:
                continue
            if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                break
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    done = len(optuna.load_study(study_name="ki", storage=f"sqlite:///{db}").get_trials(
        states=(TrialState.COMPLETE,)))
    assert done >= 1 and err.strip().splitlines()[-1] == (
        f"deltatune ablate: interrupted; {done} of 4 runs finished and are kept. Resume with: deltatune "
        "ablate ki.toml")
