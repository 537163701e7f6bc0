"""The multi-machine recipe on a real PostgreSQL server: several `deltatune search` processes on one study,
one killed with SIGKILL mid-trial; the asked total is reached, nothing is duplicated, the killed trial is
retried (the README's recipe: the same command on every machine, then once more to finish)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.services.postgres import postgres_server

N = 30


def _cmd(url: str, trials: int = N) -> list[str]:
    return [
        sys.executable,
        "-m",
        "deltatune",
        "search",
        "--model",
        "hrnet_tiny",
        "--weights",
        "none",
        "--frames",
        "40",
        "--streams",
        "1",
        "--strategy",
        "random",
        "--study",
        "pg",
        "--storage",
        url,
        "--trials",
        str(trials),
        "--finish",
        "--heartbeat",
        "2",
        "--no-progress",
    ]


@pytest.mark.slow
def test_three_processes_one_killed(tmp_path: Path) -> None:
    with postgres_server() as url:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "DELTATUNE_RESULTS": str(tmp_path / "r")}
        # the study must exist before three processes race to create it
        first = subprocess.run(_cmd(url, 1), env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        procs = [
            subprocess.Popen(_cmd(url), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        victim = None
        try:
            deadline = time.time() + 240
            while time.time() < deadline and victim is None:
                time.sleep(0.2)
                study = optuna.load_study(study_name="pg", storage=url)
                running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                pids = {p.pid: p for p in procs}
                for t in running:
                    if len(complete) >= 4 and t.user_attrs.get("pid") in pids:
                        victim = (pids[t.user_attrs["pid"]], t.number)
                        break
            assert victim is not None, "no trial was running in a search process"
            os.kill(victim[0].pid, signal.SIGKILL)
            victim[0].wait(timeout=30)
            # the trial it was running when killed (the one seen above may have finished just before)
            study = optuna.load_study(study_name="pg", storage=url)
            cut_off = [
                t.number
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if t.user_attrs.get("pid") == victim[0].pid
            ]
            assert len(cut_off) == 1, [
                (t.number, t.state.name, t.user_attrs.get("pid")) for t in study.get_trials(deepcopy=False)
            ][-8:] + [victim[0].pid]
            for p in procs:
                assert p.wait(timeout=600) in (0, -signal.SIGKILL), p.stderr.read() if p.stderr else ""
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        killed = cut_off[0]
        time.sleep(6.5)  # longer than the grace period (3 x --heartbeat): the trial is now stale
        finish = subprocess.run(_cmd(url), env=env, capture_output=True, text=True, timeout=300)
        assert finish.returncode == 0, finish.stderr
        study = optuna.load_study(study_name="pg", storage=url)
        trials = study.get_trials()
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        # live processes may each finish one more at the line, and a retry of a trial that lost its
        # heartbeat on an overloaded machine is run even when N is reached
        retries = sum(1 for t in trials if t.system_attrs.get("failed_trial") is not None)
        assert N <= len(complete) <= N + 2 + retries
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        assert {t.number: t.state for t in trials}[killed] == TrialState.FAIL
        retried = [t for t in complete if t.system_attrs.get("failed_trial") == killed]
        assert len(retried) == 1, "the killed trial was not retried exactly once"
        assert retried[0].params == {t.number: t for t in trials}[killed].params
        assert len({t.number for t in complete}) == len(complete)
