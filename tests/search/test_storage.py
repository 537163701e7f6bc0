"""``deltatune.search.storage``: journals that a full disk or another tool left behind, and storage that
cannot be written, on real Optuna journals."""

from __future__ import annotations

import logging
import multiprocessing
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from deltatune.cli import main
from deltatune.errors import ConfigError
from deltatune.search.storage import StorageSpec, open_rdb
from tests.cli.test_search_cli import TINY_ARGS

TINY = ["search", *TINY_ARGS, "--trials", "1"]  # the tiny search of the CLI tests


def _journal(path: Path, trials: int = 3) -> None:
    """A real journal holding ``trials`` finished trials of study ``s``."""
    storage = StorageSpec("journal", str(path)).open(write=True)
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=trials)


def _complete(path: Path) -> int:
    study = optuna.load_study(study_name="s", storage=StorageSpec("journal", str(path)).open())
    return len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


def test_a_torn_last_record_is_dropped_before_anything_is_appended(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk left half a record at the end; the next search appended its records straight onto it,
    and from then on no command could read the study (all its finished trials lost). Opening to write now
    drops the torn bytes (kept aside) under the journal's lock, and the study goes on."""
    path = tmp_path / "s.journal"
    _journal(path)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 4, "worker_id": "w", "trial_id": 3, "sta')  # a record cut short
    assert _complete(path) == 3  # reading skips it
    with caplog.at_level(logging.WARNING, logger="deltatune.search.storage"):
        storage = StorageSpec("journal", str(path)).open(write=True)
    assert path.read_bytes() == whole
    assert (tmp_path / "s.journal.torn").read_bytes().startswith(b'{"op_code": 4')
    assert "its last record was cut off" in caplog.text and "every record before it is intact" in caplog.text
    study = optuna.load_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert _complete(path) == 5


def test_zero_bytes_after_the_last_record_are_a_torn_record_too(tmp_path: Path) -> None:
    path = tmp_path / "s.journal"
    _journal(path, trials=2)
    path.write_bytes(path.read_bytes() + b"\x00" * 300)  # what some file systems leave after a crash
    StorageSpec("journal", str(path)).open(write=True)
    assert _complete(path) == 2 and not path.read_bytes().endswith(b"\x00")


def test_a_damaged_middle_line_is_named_by_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "s.journal"
    _journal(path)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:20]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(
        ConfigError,
        match=r"corrupt, cannot be read \(line 3 is not a journal record; the "
        r"records before it are readable without it",
    ):
        StorageSpec("journal", str(path)).open()


def test_a_file_that_is_not_a_journal_is_refused_before_anything_writes_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A text file given as --storage: search appended its records to it (and then failed with a
    traceback); pareto said "no such study" instead of "not a journal"."""
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "notes.journal"
    text.write_text("hello I am a text file\n")
    assert main([*TINY, "--study", "k", "--storage", "notes.journal"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "deltatune search: error: --storage notes.journal: not an Optuna journal (its "
        "first line is not a "
        "journal record); name a new file, or a .journal that search wrote"
    )
    assert text.read_text() == "hello I am a text file\n"
    assert main(["pareto", "--storage", "notes.journal"]) == 2
    assert "not an Optuna journal" in capsys.readouterr().err


@pytest.mark.parametrize("storage", ["afile/x.journal", "sqlite:///afile/x.db"])
def test_storage_under_a_file_is_refused_before_any_model_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], storage: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file, not a folder")
    assert main([*TINY, "--study", "k", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert f"--storage {storage}: cannot create afile (" in err and err.count("\n") == 1


def test_a_new_sqlite_file_gets_its_folder_as_a_journal_does(tmp_path: Path) -> None:
    """``--storage sqlite:///new/dir/s.db``: a journal's folders were made, SQLite said "unable to open
    database file" without naming the missing folder."""
    url = f"sqlite:///{tmp_path}/new/dir/s.db"
    study = optuna.create_study(study_name="s", storage=StorageSpec("rdb", url).open(write=True))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert (tmp_path / "new" / "dir" / "s.db").is_file()


def test_a_journal_in_a_place_no_file_can_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--storage /proc/x.journal``: the folder exists and passes the write check, but no file can be made
    in it; Optuna's journal backend raised FileNotFoundError out of the search as a traceback (exit 1)."""
    monkeypatch.chdir(tmp_path)
    assert main([*TINY, "--study", "k", "--storage", "/proc/x.journal"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deltatune search: error: --storage /proc/x.journal: "), err
    assert err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def _open_at(url: str, start: float, out: Any) -> None:
    """Open ``url`` once the clock reaches ``start`` (a forked process of :func:`opened_at_once`)."""
    while time.time() < start:
        pass
    try:
        open_rdb(url)
        out.put("ok")
    except Exception as exc:  # the message is the evidence
        out.put(f"{type(exc).__name__}: {exc}")


def opened_at_once(url: str, processes: int = 4) -> list[str]:
    """``processes`` processes opening the RDB storage ``url`` at the same instant: each one's outcome."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 0.5
    procs = [ctx.Process(target=_open_at, args=(url, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return got


def test_processes_opening_a_new_sqlite_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Optuna creates its tables on first open; two processes doing it at once collided ("table studies
    already exists", or a UNIQUE constraint on alembic_version), and `deltatune ablate` died of it when
    something read its new database while it was being made. Several databases, since one collision is
    a matter of timing (before the fix: 6 of 10 databases had a failed open)."""
    for i in range(6):
        got = opened_at_once(f"sqlite:///{tmp_path}/race{i}.db")
        assert got == ["ok"] * 4, got


def test_a_database_that_cannot_be_used_is_told_from_an_sql_error_or_a_bug(tmp_path: Path) -> None:
    """A read-only (or locked, full, unreachable) database mid-command is one line with what to do; an
    SQL error ("no such table"), or an error of deltatune's raised while handling one, is not an outage:
    calling it one told the user to wait and run again, and hid a bug's traceback."""
    import sqlite3

    import optuna
    import sqlalchemy

    from deltatune.search.storage import storage_failure

    db = tmp_path / "s.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x INTEGER)").connection.commit()
    readonly = sqlalchemy.create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")

    def raised(run):  # the exception ``run`` raises
        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            return exc
        raise AssertionError("nothing raised")

    def write() -> None:
        with readonly.begin() as c:
            c.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))

    def select_missing() -> None:
        with readonly.connect() as c:
            c.execute(sqlalchemy.text("SELECT * FROM missing"))

    def wrapped() -> None:  # as Optuna's RDB storage does on a failed commit
        try:
            write()
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from e

    def our_bug() -> None:
        try:
            write()
        except sqlalchemy.exc.OperationalError:
            return {}["typo"]

    assert storage_failure(raised(write)) == "attempt to write a readonly database"
    assert storage_failure(raised(wrapped)) == "attempt to write a readonly database"
    assert storage_failure(raised(select_missing)) is None  # no such table: an SQL error
    assert storage_failure(raised(our_bug)) is None  # a KeyError of ours: shown as a bug
    assert storage_failure(ValueError("x")) is None
    readonly.dispose()


@pytest.mark.parametrize(
    ("module", "attrs", "args", "unusable"),
    [
        (
            "psycopg.errors",
            {"sqlstate": "57P01"},
            ("terminating connection due to administrator command",),
            True,
        ),
        ("psycopg.errors", {"sqlstate": "40P01"}, ("deadlock detected",), False),
        ("psycopg.errors", {"sqlstate": "28P01"}, ("password authentication failed",), False),
        ("psycopg.errors", {"sqlstate": None}, ("connection refused",), True),
        ("pymysql.err", {}, (2003, "Can't connect to MySQL server"), True),
        ("pymysql.err", {}, (2006, "MySQL server has gone away"), True),
        ("pymysql.err", {}, (1213, "Deadlock found"), False),
    ],
)
def test_other_drivers_database_errors_are_told_apart_by_their_codes(
    module: str, attrs: dict, args: tuple, unusable: bool
) -> None:
    """psycopg 3 keeps its SQLSTATE in ``sqlstate`` (psycopg2: ``pgcode``), so a deadlock or a wrong password
    read as an outage; MySQL's client errors 2000-2999 (no server, gone away) were not recognised. The
    driver errors are built as the drivers shape them (their classes are not installed here)."""
    import sqlalchemy

    from deltatune.search.storage import storage_failure

    driver_error = type("OperationalError", (Exception,), {"__module__": module, **attrs})
    exc = sqlalchemy.exc.OperationalError("SELECT 1", {}, driver_error(*args))
    said = storage_failure(exc)
    assert (said is not None) == unusable, said


def test_a_lost_database_in_a_background_thread_is_not_a_traceback() -> None:
    """Optuna's heartbeat thread raises when the storage goes away, and Python printed that thread's
    95-line traceback beside the command's one line about the outage (a race: whichever thread met the
    outage first). A storage failure in a thread is quiet now; any other error in a thread still goes to
    the hook that reports it (Python's default prints it)."""
    import threading

    from sqlalchemy.exc import OperationalError

    from deltatune._workers import quiet_storage_threads

    def lost() -> None:
        raise OperationalError(
            "UPDATE trial_heartbeats",
            {},
            Exception("server closed the connection unexpectedly"),
            connection_invalidated=True,
        )

    def bug() -> None:
        raise ValueError("a bug of ours")

    reported: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: reported.append(f"{args.thread.name}: {args.exc_value}")  # type: ignore[union-attr]
    try:
        quiet_storage_threads()
        quiet_storage_threads()  # idempotent: one hook, not two
        for target in (lost, bug):
            t = threading.Thread(target=target, name=target.__name__)
            t.start()
            t.join()
    finally:
        threading.excepthook = previous
    assert reported == ["bug: a bug of ours"], reported
