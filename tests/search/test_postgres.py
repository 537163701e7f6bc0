"""The multi-machine recipe on a real PostgreSQL server: several `deltatune search` processes on one study,
one killed with SIGKILL mid-trial; the asked total is reached, nothing is duplicated, the killed trial is
retried (the README's recipe: the same command on every machine, then once more to finish)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from deltatune.search.storage import engine_url, open_rdb, shown_url
from tests.search.test_storage import opened_at_once
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


def _logs(what: str, procs: list[subprocess.Popen[bytes]], logs: list[Any]) -> str:
    """``what``, then each search process's exit status and the end of its log (the failure's evidence)."""
    parts = [what]
    for p, log in zip(procs, logs, strict=True):
        log.flush()
        tail = Path(log.name).read_text(errors="replace")[-1500:]
        parts.append(f"--- pid {p.pid}, exit {p.poll()}:\n{tail}")
    return "\n".join(parts)


@pytest.mark.slow
def test_three_processes_one_killed(tmp_path: Path) -> None:
    with postgres_server() as url:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "DELTATUNE_RESULTS": str(tmp_path / "r")}
        # no first run: three processes on a new database create its tables and the study at once
        logs = [(tmp_path / f"search{i}.log").open("wb") for i in range(3)]  # files: pipes can fill up
        procs = [subprocess.Popen(_cmd(url), env=env, stdout=subprocess.DEVNULL, stderr=log) for log in logs]
        victim = None
        # one storage (one connection pool) for every poll: a study loaded from the URL each time opened a
        # pool per poll, and the connections piled up until the garbage collector ran; opened a few seconds
        # in, so that the three processes are the ones that create the tables
        polls: optuna.storages.RDBStorage | None = None
        started = time.time()
        try:
            deadline = time.time() + 240
            pids = {p.pid: p for p in procs}
            while time.time() < deadline and victim is None:
                time.sleep(0.2)
                ended = [p for p in procs if p.poll() is not None]
                assert not ended, _logs("a search process ended before one was killed", procs, logs)
                if polls is None:
                    if time.time() < started + 5:
                        continue
                    polls = open_rdb(url)
                try:
                    study = optuna.load_study(study_name="pg", storage=polls)
                except KeyError:  # not created yet
                    continue
                if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 4:
                    continue
                # freeze all three, then look: a trial running now stays running until the kill (one
                # process frozen after the read could finish its trial in between, or be between trials)
                for p in procs:
                    os.kill(p.pid, signal.SIGSTOP)
                running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                           if t.user_attrs.get("pid") in pids]
                if running:
                    victim = (pids[running[0].user_attrs["pid"]], running[0].number)
                    os.kill(victim[0].pid, signal.SIGKILL)
                for p in procs:
                    if victim is None or p is not victim[0]:
                        os.kill(p.pid, signal.SIGCONT)
            assert victim is not None, _logs("no trial was running in a search process", procs, logs)
            victim[0].wait(timeout=30)
            for p in procs:
                status = p.wait(timeout=600)
                assert status in (0, -signal.SIGKILL), _logs("a search process failed", procs, logs)
        finally:
            if polls is not None:
                polls.engine.dispose()
            for p in procs:
                if p.poll() is None:
                    p.kill()
        time.sleep(6.5)  # longer than the grace period (3 x --heartbeat): the trial is now stale
        finish = subprocess.run(_cmd(url), env=env, capture_output=True, text=True, timeout=300)
        assert finish.returncode == 0, finish.stderr
        study = optuna.load_study(study_name="pg", storage=engine_url(url))
        trials = study.get_trials()
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        # live processes may each finish one more at the line, and a retry of a trial that lost its
        # heartbeat on an overloaded machine is run even when N is reached
        retries = sum(1 for t in trials if t.system_attrs.get("failed_trial") is not None)
        assert N <= len(complete) <= N + 2 + retries
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        # the trial the kill cut off (and any other that lost its heartbeat) is FAIL, and was retried
        # with its parameters until a retry completed (Optuna's retry_history lists the chain)
        cut_off = [t for t in trials if t.state == TrialState.FAIL]
        assert cut_off, "no trial was cut off by the kill"
        for f in cut_off:
            done = [t for t in complete if f.number in t.system_attrs.get("retry_history", [])]
            assert len(done) == 1, (f.number, [(t.number, t.state, t.system_attrs) for t in trials][-6:])
            # the same parameters; a trial cut off while its strategy was still suggesting them holds
            # only the first ones, and its retry suggests the rest afresh
            assert f.params.items() <= done[0].params.items()
        assert len({t.number for t in complete}) == len(complete)
        # whoever took the dead worker's trial over said so (a --finish survivor did it without a word);
        # on this one host its dead PID tells first, on another machine the missing heartbeat would
        said = finish.stderr + "".join((tmp_path / f"search{i}.log").read_text() for i in range(3))
        assert ("trial(s) of dead workers FAIL and queued them again" in said
                or "(its worker died): marked FAIL and queued again" in said), said


def test_a_password_in_the_storage_url_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the summary line, the printed ``export``/``pareto`` commands, ``--json`` and every storage
    error repeated ``postgresql://user:PASSWORD@host/db`` as given: into terminals, CI logs and issue
    reports. Now it reads ``user:***@`` everywhere (the server here trusts any password), and the printed
    commands quote it for the shell."""
    from deltatune.cli import main

    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "r"))
    monkeypatch.chdir(tmp_path)
    with postgres_server() as plain:
        url = plain.replace("postgres@", "postgres:s3cret-pw@", 1)
        search = ["search", "--model", "hrnet_tiny", "--weights", "none", "--frames", "6", "--trials", "2",
                  "--study", "pw", "--storage", url, "--no-progress"]
        assert main(search) == 0
        assert main(["pareto", "--study", "pw", "--storage", url, "--json"]) == 0
        assert main([*search[:-1], "--json", "--no-progress"]) == 0
        assert main(["report", url, "--study", "nope"]) == 2
        assert main([*search, "--storage", url.replace("/deltatune?", "/no_such_db?")]) == 2
        out = capsys.readouterr()
    said = out.out + out.err
    assert "s3cret-pw" not in said
    # the printed pareto command, quoted: the URL's ? and & would otherwise end it at the shell
    inspect = next(ln for ln in out.out.splitlines() if ln.startswith("inspect:"))
    assert f" --storage '{shown_url(url)}' " in inspect and shlex.quote(shown_url(url)) != shown_url(url)
    assert said.count("postgres:***@") >= 5, said[-3000:]
    assert "cannot open" in out.err and "no_such_db" in out.err


def test_processes_opening_a_new_database_at_once_all_succeed() -> None:
    """The multi-machine recipe starts the same command everywhere; on a new database each process creates
    Optuna's tables at once, and all but one collided (a duplicate type or relation)."""
    with postgres_server() as url:
        got = opened_at_once(url)
        assert got == ["ok"] * 4, got


@pytest.mark.slow
def test_a_storage_lost_mid_search_is_one_line_and_the_next_run_finishes(tmp_path: Path) -> None:
    """The database stops taking connections while a search runs (a server restarted, a network gone):
    a 320-line traceback ended in Optuna's "invalid data ... exceeding max length" and an
    UnboundLocalError from its clean-up. Now one line saying the storage was lost and what to do, exit
    1; once the database is back, the same command fails the trial left running and finishes."""
    import sqlalchemy

    with postgres_server() as url:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "DELTATUNE_RESULTS": str(tmp_path / "r")}
        log = (tmp_path / "search.log").open("wb")
        proc = subprocess.Popen(_cmd(url, 200), env=env, stdout=subprocess.DEVNULL, stderr=log)
        polls = None
        admin = sqlalchemy.create_engine(engine_url(url).replace("/deltatune?", "/postgres?"),
                                         isolation_level="AUTOCOMMIT")
        try:
            deadline = time.time() + 240
            while time.time() < deadline:
                time.sleep(0.3)
                assert proc.poll() is None, _logs("the search ended early", [proc], [log])
                polls = polls or open_rdb(url)
                try:
                    study = optuna.load_study(study_name="pg", storage=polls)
                except KeyError:  # not created yet
                    continue
                if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 3:
                    break
            polls.engine.dispose()
            with admin.connect() as c:  # no new connections, and the open ones dropped
                c.execute(sqlalchemy.text("ALTER DATABASE deltatune ALLOW_CONNECTIONS false"))
                c.execute(sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'deltatune'"))
            assert proc.wait(timeout=120) == 1, _logs("the search did not fail", [proc], [log])
            log.flush()
            said = [line for line in (tmp_path / "search.log").read_text().splitlines()
                    if not line.startswith(("WARNING", "warning: "))]  # the search's notices (random weights)
            assert len(said) == 1 and said[0].startswith(
                "deltatune search: error: the study's database failed mid-command ("), said
            # the driver's own first line: a query on a connection the server dropped, or a new connection
            # refused, whichever the search met first (a race between its heartbeat and its trial)
            assert any(why in said[0] for why in ("is not currently accepting connections",
                                                  "server closed the connection unexpectedly")), said[0]
            assert "run the same command again" in said[0] and "Traceback" not in said[0]
            with admin.connect() as c:
                c.execute(sqlalchemy.text("ALTER DATABASE deltatune ALLOW_CONNECTIONS true"))
        finally:
            admin.dispose()
            if proc.poll() is None:
                proc.kill()
        time.sleep(6.5)  # longer than the grace period (3 x --heartbeat): a trial left running is stale
        before = len(optuna.load_study(study_name="pg", storage=engine_url(url)).get_trials(
            states=(TrialState.COMPLETE,)))
        finish = subprocess.run(_cmd(url, before + 1), env=env, capture_output=True, text=True, timeout=300)
        assert finish.returncode == 0, finish.stderr
        trials = optuna.load_study(study_name="pg", storage=engine_url(url)).get_trials()
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
