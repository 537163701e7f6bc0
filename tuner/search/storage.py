"""Where studies live: an Optuna journal file by default, any Optuna RDB URL on request.

Default: ``./deltatune-results/<study>.journal`` (relative to the working directory, like a build folder;
``$DELTATUNE_RESULTS`` overrides the folder). A journal file is append-only, so a killed run loses no
finished trial and re-running with the same ``--study`` resumes it; several worker processes on one machine
share it safely through the journal's file lock.

``--storage`` accepts:

- a path ending in ``.journal`` (or ``journal:///path``): that journal file;
- ``sqlite:///file.db``: fine for one worker; several workers warn (SQLite locks the whole file);
- ``postgresql://user:pw@host/db`` or ``mysql+pymysql://...``: the multi-machine path — start
  ``deltatune search --study S --storage URL`` on every machine and they share one study. A PostgreSQL
  URL without a driver (``postgresql://``, ``postgres://``) is opened with the installed one
  (:func:`engine_url`).

Every storage opens in optuna-dashboard: ``optuna-dashboard ./deltatune-results/S.journal`` or
``optuna-dashboard postgresql://...``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltatune.errors import ConfigError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "StorageSpec",
    "resolve_storage",
    "removed_if_left_empty",
    "results_dir",
    "quiet_experimental",
    "RESULTS_ENV",
    "HEARTBEAT_S",
    "check_heartbeat",
    "check_stored",
    "holds_tables",
    "sqlite_file",
    "only_study",
    "grace_period",
    "heartbeat_options",
    "engine_url",
    "open_rdb",
    "shown_url",
    "url_scheme",
]

log = logging.getLogger(__name__)

RESULTS_ENV = "DELTATUNE_RESULTS"
#: Seconds after which a journal lock file left by a killed process is broken. A journal write takes
#: milliseconds, so this only delays the run after a crash; but a live writer whose write stalls longer
#: (a disk flush on a loaded machine, a process paused) has its lock broken under it and dies of it, so
#: the wait is not cut to the bone (5 s before; Optuna's default is 30 s).
LOCK_GRACE_S = 15
#: Default heartbeat of running trials in an RDB storage (seconds).
HEARTBEAT_S = 10.0
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")


#: PostgreSQL drivers SQLAlchemy knows, in the order tried for a URL that names none: psycopg2 is what
#: the ``postgres`` extra installs; SQLAlchemy 2.1 made psycopg (3) the default for ``postgresql://``,
#: so a plain URL failed with "database driver missing" although a driver was installed.
_PG_DRIVERS = ("psycopg2", "psycopg")
#: Modules of the MySQL drivers SQLAlchemy uses (``mysql+pymysql://`` and friends).
_MYSQL_DRIVERS = ("pymysql", "MySQLdb", "mysql.connector")


def engine_url(url: str) -> str:
    """``url`` as SQLAlchemy should open it: a PostgreSQL URL without a driver (``postgresql://``, or
    ``postgres://`` as many hosting services write it) gets the installed one; anything else is
    unchanged. The user's URL stays the one shown and stored."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres"):
        return url
    for driver in _PG_DRIVERS:
        if importlib.util.find_spec(driver) is not None:
            return f"postgresql+{driver}://{rest}"
    return f"postgresql://{rest}"


def holds_tables(url: str) -> bool:
    """Whether the RDB storage at ``url`` may hold studies, asked without creating anything (opening an
    RDB storage creates its database file or Optuna's tables: a dry run or a reader would leave an empty
    one behind): a sqlite file that exists, or a server database with Optuna's tables. True when the
    server cannot be asked: opening it then says why, in one line (:func:`open_rdb`)."""
    if url_scheme(url) == "sqlite":
        return sqlite_file(url).is_file()
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(engine_url(url))
        try:
            return bool(sqlalchemy.inspect(engine).has_table("studies"))
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - a driver or connection error is reported by open_rdb
        return True


def check_stored(url: str, label: str) -> None:
    """Before a command reads studies from the RDB storage at ``url``: one error, headed ``label``, when
    there is nothing to read (:func:`holds_tables`). Opening it would create an empty database or schema,
    and the error would then be 'holds 0 studies'."""
    if not holds_tables(url):
        raise ConfigError(f"{label}: no such database file" if url_scheme(url) == "sqlite" else
                          f"{label}: holds no studies (the database has no Optuna tables)")


def url_scheme(url: str) -> str:
    """The database kind of an RDB URL, lower-case and without its driver: ``postgresql+psycopg2://...``
    -> ``postgresql``."""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def sqlite_file(url: str) -> Path:
    """The database file of a ``sqlite:///`` URL, or one clear error: ``sqlite:///`` alone would open a
    database in memory that nothing keeps, and a folder is no database."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path:
        raise ConfigError(f"--storage {shown_url(url)}: sqlite URL needs a file (sqlite:///path/study.db)")
    if Path(path).is_dir():
        raise ConfigError(f"--storage {shown_url(url)}: {path} is a folder, not a database file")
    return Path(path)


_PASSWORD = re.compile(r"^([A-Za-z][\w+.-]*://[^:/@]*):(.*)@")


def shown_url(url: str) -> str:
    """``url`` as every message, summary and printed command shows it: a password in it
    (``postgresql://user:pw@host/db``) becomes ``***``, the rest is left as written. Terminal output and
    CI logs are read by others; a server's password belongs in ``PGPASSWORD`` or ``~/.pgpass``, which the
    driver reads for a URL without one."""
    return _PASSWORD.sub(r"\1:***@", url)


def check_heartbeat(seconds: float) -> None:
    """One error for a ``--heartbeat`` Optuna cannot use, before any work: a finite number of seconds > 0
    (``inf`` would reach the storage as an interval it cannot round)."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"--heartbeat {seconds}: must be a finite number of seconds > 0")


def grace_period(heartbeat: float) -> int:
    """Seconds without a heartbeat after which a running trial counts as dead (three missed beats)."""
    return max(2, int(round(3 * heartbeat)))


def heartbeat_options(heartbeat: float) -> dict[str, int]:
    """``RDBStorage``'s heartbeat keywords for a ``--heartbeat`` of ``heartbeat`` seconds (whole seconds,
    at least 1)."""
    check_heartbeat(heartbeat)
    return {"heartbeat_interval": max(1, int(round(heartbeat))), "grace_period": grace_period(heartbeat)}


def open_rdb(url: str, **kwargs: Any) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url`` (opened through :func:`engine_url`; ``kwargs`` go to
    ``RDBStorage``), or a one-line :class:`ConfigError` naming the URL: the driver is missing, or the
    database cannot be opened."""
    try:
        return _rdb_storage(engine_url(url), kwargs)
    except ImportError as exc:
        scheme = url.partition("://")[0].lower()
        hint = " (install deltatune's postgres extra: pip install 'deltatune[postgres]')" if (
            scheme.startswith("postgres")) else ""
        raise ConfigError(f"--storage {shown_url(url)}: database driver missing{hint}: {exc}") from None
    except Exception as exc:  # sqlalchemy raises ArgumentError / OperationalError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for raw in (engine_url(url), url):  # a message that quotes the URL quotes it without the password
            first = first.replace(raw, shown_url(raw))
        hint = ""
        if "no password supplied" in first or "password authentication failed" in first:
            hint = ("; the driver reads a password from PGPASSWORD or ~/.pgpass (or the URL: "
                    "user:password@host, shown as ***)")
        raise ConfigError(f"--storage {shown_url(url)}: cannot open ({first}){hint}") from None


#: Tries at opening an RDB storage whose tables another process is creating at the same moment.
SCHEMA_RACE_TRIES = 8


def _rdb_storage(url: str, kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
    """``RDBStorage(url, **kwargs)``, tried again when another process was creating Optuna's tables in the
    same new database at the same moment.

    Optuna creates its tables and writes its schema version on first open, and two processes doing that
    at once collide: one fails with "table studies already exists" or a UNIQUE constraint on
    ``alembic_version`` (SQLite), or "relation ... already exists" / a duplicate key (PostgreSQL). That
    is what starting the same ``deltatune search --storage URL`` on several machines (or an ablate
    while something reads its new database) does. Once the other process is done, opening again finds
    the tables and succeeds."""
    import random

    import optuna
    from sqlalchemy.exc import DBAPIError

    for attempt in range(1, SCHEMA_RACE_TRIES + 1):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except DBAPIError as exc:
            text = str(exc).lower()
            raced = any(s in text for s in ("already exists", "unique constraint", "duplicate key"))
            if not raced or attempt == SCHEMA_RACE_TRIES:
                raise
            log.debug("opening %s raced another process creating its tables (%s); again", shown_url(url),
                      str(exc).splitlines()[0])
            time.sleep(random.uniform(0.05, 0.2) * attempt)
    raise AssertionError("unreachable")


#: SQLite's result codes of a database it cannot use at the moment (busy past its wait, locked, read-only,
#: full, not openable, an I/O error), as ``sqlite3.Error.sqlite_errorname`` names them.
_SQLITE_UNUSABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY", "SQLITE_FULL", "SQLITE_CANTOPEN",
                    "SQLITE_IOERR")
#: PostgreSQL SQLSTATE classes of a server that is gone or refusing: 08 connection exception, 57
#: operator intervention (shutdown, "cannot connect now"), 53 insufficient resources (disk full).
_PG_UNUSABLE = ("08", "57", "53")


def storage_failure(exc: BaseException) -> str | None:
    """The first line of the database error behind ``exc`` when the study's database became unusable
    mid-command (the server went away, refused or dropped a connection; SQLite busy past its wait,
    read-only, full), else ``None``. Optuna turns such an error into a ``StorageInternalError`` about
    "invalid data ... exceeding max length" and then fails in its own clean-up (``UnboundLocalError``):
    neither says what happened.

    Only a chain of database errors and those two wrappers counts: an error of deltatune's own raised
    while handling a database error is a bug to show, not an outage; nor is an SQL error ("no such
    table", a syntax error), which running again would not mend."""
    import optuna
    from sqlalchemy.exc import DBAPIError

    from deltatune.errors import causes

    for e in causes(exc, past_from_none=True):
        if isinstance(e, DBAPIError):
            if not _unusable(e):
                return None
            text = str(e.orig if e.orig is not None else e).strip()
            first = text.splitlines()[0] if text else type(e).__name__
            return shown_url(first.rstrip("."))
        if not isinstance(e, (optuna.exceptions.StorageInternalError, UnboundLocalError)):
            return None
    return None


def _unusable(e: Any) -> bool:
    """Whether the SQLAlchemy database error ``e`` says the database cannot be used now (see
    :func:`storage_failure`), as opposed to an error in the SQL sent to it."""
    if e.connection_invalidated:  # the dialect recognised a dropped connection
        return True
    orig = e.orig
    name = getattr(orig, "sqlite_errorname", None)
    if name is not None:
        return str(name).startswith(_SQLITE_UNUSABLE)
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)  # psycopg2, psycopg 3
    if code is not None:
        return str(code)[:2] in _PG_UNUSABLE
    from sqlalchemy.exc import InterfaceError, OperationalError

    if not isinstance(e, (OperationalError, InterfaceError)):
        return False
    module = type(orig).__module__
    if module.startswith(_MYSQL_DRIVERS):  # client errors 2000-2999: no server, lost, gone away
        first = orig.args[0] if getattr(orig, "args", None) else None
        return isinstance(first, int) and 2000 <= first < 3000
    # a PostgreSQL connection that failed before the server said anything carries no code (refused, no
    # socket)
    return module.startswith(_PG_DRIVERS)



def marked_studies(storage: Any, attr: str) -> list[str]:
    """The names of the studies in an open Optuna ``storage`` that carry the user attribute ``attr``, in
    creation order: how a search's studies (``search.pareto.META_KEY``) and an ablation's
    (``ablation.store.META_KEY``) are told from the other studies of a shared storage."""
    import optuna

    return [
        s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if attr in (s.user_attrs or {})
    ]


def only_study(
    storage: Any, url: str, *, kind: str, attr: str, other: tuple[str, str, str, str]
) -> str:
    """The name of the one ``kind`` study (marked ``attr``) in an open ``storage`` at ``url``, for a command
    given a storage without --study; else one error. ``other`` is the other kind's ``(kind, attr, command,
    what it does)``: when the storage holds only studies of that kind, naming one would not help, so the
    error names them and the command that reads them (``deltatune report URL`` for ablations)."""
    names = marked_studies(storage, attr)
    if not names:
        other_kind, other_attr, command, does = other
        others = marked_studies(storage, other_attr)
        if others:
            raise ConfigError(
                f"{shown_url(url)}: holds no {kind} study, only {other_kind} studies ({', '.join(others)}); "
                f"`{command} {shlex.quote(shown_url(url))}` {does}"
            )
    if len(names) != 1:
        listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise ConfigError(
            f"{shown_url(url)}: holds {len(names)} {kind} studies ({listed or 'none'}); name one with --study"
        )
    return names[0]


def results_dir() -> Path:
    """``$DELTATUNE_RESULTS`` or ``./deltatune-results`` (an existing file there is an error)."""
    d = Path(os.environ.get(RESULTS_ENV) or "deltatune-results")
    if d.exists() and not d.is_dir():
        raise ConfigError(f"${RESULTS_ENV} {d}: is a file, not a folder for results")
    return d


def check_can_write(shown: str, path: Path) -> None:
    """Refuse a storage file deltatune cannot write, before any work: the nearest existing folder above
    ``path`` must be a writable folder, and ``path`` itself, when it exists, writable (a read-only file
    system included, which ``os.access`` reports even to root). ``shown`` names the option in the error.
    Nothing is created here."""
    from deltatune._atomic import existing_ancestor

    folder = path.parent
    above = existing_ancestor(folder)
    if not above.is_dir():
        raise ConfigError(f"{shown}: cannot create {folder} ({above} is a file)")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"{shown}: cannot write in {above} (read-only or not writable)")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{shown}: {path} is read-only (commands that only read it, pareto and export, "
                          "can still open it)")


def _journal_record(line: bytes) -> bool:
    """Whether ``line`` is one record of an Optuna journal (a JSON object with an ``op_code``)."""
    import json

    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record


def check_journal(path: Path, *, repair: bool) -> None:
    """Refuse a file that is not an Optuna journal (its first line is not a journal record: a text file,
    another tool's log), before anything writes to it; and, with ``repair``, drop a last record cut off
    midway (a full disk, a write killed halfway): Optuna appends the next record straight onto it, which
    turned a readable journal into one no command could open. The torn bytes are kept in ``<path>.torn``.
    Done under the journal's lock, so a record another process is writing is never taken for torn."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as f:
        first = f.readline()
    whole_line = first.endswith(b"\n")  # else the file's only record, perhaps torn: judged by its start
    if not first.lstrip().startswith(b"{") or (whole_line and not _journal_record(first)):
        raise ConfigError(f"--storage {path}: not an Optuna journal (its first line is not a journal "
                          "record); name a new file, or a .journal that search wrote")
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        complete = f.read(1) == b"\n"
    if complete or not repair:
        return
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path), grace_period=LOCK_GRACE_S)
    try:
        lock.acquire()
    except OSError:  # a read-only place: nothing will be appended there either
        return
    try:
        data = path.read_bytes()
        if data.endswith(b"\n"):  # another process finished its record meanwhile
            return
        cut = data.rfind(b"\n") + 1
        torn = path.with_name(path.name + ".torn")
        torn.write_bytes(data[cut:])
        with path.open("r+b") as f:
            f.truncate(cut)
    finally:
        lock.release()
    log.warning("journal %s: its last record was cut off (a full disk, or a write killed midway); dropped "
                "it (%d bytes, kept in %s); every record before it is intact", path, len(data) - cut, torn)


def _first_bad_line(path: Path) -> int | None:
    """The number of the first line of ``path`` that is not a journal record (a torn last line counts
    only when later lines follow it), or ``None``."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip() and not _journal_record(line):
                return n
    return None


@dataclass(frozen=True)
class StorageSpec:
    """A resolved storage: ``kind`` is ``journal`` or ``rdb``; ``url`` the user-facing location."""

    kind: str
    url: str
    #: RDB only: seconds between a running trial's heartbeats; a trial silent for 3x this long belongs to
    #: a dead worker, and the next live worker fails it and enqueues it again (at most 3 times).
    heartbeat: float = HEARTBEAT_S

    def open(self, *, write: bool = False) -> optuna.storages.BaseStorage:
        """Open the storage (creates the journal file's folder). ``write``: the caller will write to it
        (a search): a journal or SQLite file that cannot be written is refused, and a journal's torn last
        record dropped (:func:`check_journal`)."""
        from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

        if self.kind == "journal":
            path = Path(self.url)
            if path.is_dir():
                raise ConfigError(f"--storage {path}: is a folder, not a journal file")
            if write:
                check_can_write(f"--storage {path}", path)
            check_journal(path, repair=write)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"--storage {path}: cannot create {path.parent} ({exc.strerror})") from None
            try:
                # a lock left by a killed writer is broken after LOCK_GRACE_S (Optuna's default waits 30 s)
                lock = JournalFileSymlinkLock(str(path), grace_period=LOCK_GRACE_S)
                return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
            except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:  # incl. JSONDecodeError
                bad = _first_bad_line(path)
                where = (f"line {bad} is not a journal record; the records before it are readable without it "
                         "(back the file up, then delete that line)" if bad is not None else
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")
                raise ConfigError(f"journal {path}: corrupt, cannot be read ({where})") from None
            except OSError as exc:  # a place no file can be made in (/proc/x.journal: ENOENT), or read
                raise ConfigError(f"--storage {path}: cannot open ({exc.strerror or exc})") from None
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        if write and url_scheme(self.url) == "sqlite":  # its folder made, as a journal's is
            check_can_write(f"--storage {shown_url(self.url)}", sqlite_file(self.url))
            sqlite_file(self.url).parent.mkdir(parents=True, exist_ok=True)

        quiet_experimental()
        return open_rdb(
            self.url,
            **heartbeat_options(self.heartbeat),
            heartbeat_stale_trial_callback=_SaidRetry(RetryHeartbeatStaleTrialCallback(max_retry=3),
                                                      grace_period(self.heartbeat)),
        )


class _SaidRetry:
    """Optuna's retry of a stale trial (a worker that stopped writing heartbeats: killed, machine gone),
    saying that it happened, as the journal's orphan check does: a database run took over a dead
    worker's trial without a word."""

    def __init__(self, inner: Any, grace: int) -> None:
        self.inner, self.grace = inner, grace

    def __call__(self, study: optuna.Study, trial: Any) -> None:
        log.warning("trial %d had no heartbeat for %d s (its worker died): marked FAIL and queued again",
                    trial.number, self.grace)
        from deltatune._workers import unowned

        self.inner(study, unowned(trial))


@contextmanager
def removed_if_left_empty(spec: StorageSpec) -> Iterator[None]:
    """Undo what opening a journal or SQLite storage created when the command then fails before writing
    a study to it.

    Opening a storage (:meth:`StorageSpec.open`, done early so a bad ``--storage`` fails before any model
    work) creates a journal's empty file, or a SQLite file with Optuna's tables, and their folders. A
    command that then stops on bad input or an interrupt would leave them behind; this removes the file if
    it is new and still holds no study, and the folders it created if they are empty. A database server's
    storage is left as it is (its schema belongs to the database).
    """
    if spec.kind == "journal":
        path: Path | None = Path(spec.url)
    elif url_scheme(spec.url) == "sqlite":
        path = sqlite_file(spec.url)
    else:
        path = None
    from deltatune._atomic import missing_folders, remove_empty_folders

    existed = path is not None and path.exists()
    new_dirs = [] if path is None else missing_folders(path)
    try:
        yield
    except BaseException:
        if path is not None and not existed:
            try:
                if path.is_file() and _holds_no_study(spec, path):
                    path.unlink()
            except OSError:  # gone, or not ours to remove: leave it
                pass
            remove_empty_folders(new_dirs)  # not empty (another process wrote there): left
        raise


def _holds_no_study(spec: StorageSpec, path: Path) -> bool:
    """Whether the storage file at ``path`` is empty (a journal) or has Optuna's tables but no study
    (SQLite, read with the standard library: no Optuna storage opened on the way out of an error)."""
    if spec.kind == "journal":
        return path.stat().st_size == 0
    import sqlite3

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 0
    except sqlite3.Error:  # not Optuna's tables (someone else's file): leave it
        return False


def quiet_experimental() -> None:
    """Heartbeats and their retry callback are experimental in Optuna; we use them knowingly, so no
    warning per call."""
    import warnings

    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)


#: The longest study name a storage takes (``--study``; an ablation's inner search studies too).
MAX_STUDY_NAME = 100


def resolve_storage(
    url: str | None, study: str, *, jobs: int = 1, heartbeat: float = HEARTBEAT_S
) -> StorageSpec:
    """Turn ``--storage`` (or its absence) into a :class:`StorageSpec`; unknown schemes are errors."""
    if not study or any(c in study for c in "/\\") or study.startswith(".") or len(study) > MAX_STUDY_NAME:
        shown = f"{study[:40]!r}{'...' if len(study) > 40 else ''}"
        raise ConfigError(
            f"--study {shown}: use a plain name of 1-{MAX_STUDY_NAME} characters (letters, digits, - _ .), "
            "no path separators"
        )
    if url is None or url == "":
        return StorageSpec("journal", str(results_dir() / f"{study}.journal"))
    if url.startswith("journal://"):
        path = url[len("journal://") :]
        if not path:
            raise ConfigError(f"--storage {shown_url(url)}: journal URL needs a path (journal:///path/study.journal)")
        return StorageSpec("journal", path)
    if "://" in url:
        scheme = url_scheme(url)
        if scheme not in _RDB_SCHEMES:
            raise ConfigError(
                f"--storage {shown_url(url)}: unknown scheme {scheme!r}; use a .journal path, "
                "sqlite:///file.db, postgresql://... or mysql://..."
            )
        if scheme == "sqlite":
            sqlite_file(url)
        if scheme == "sqlite" and jobs > 1:
            log.warning(
                "--storage %s with %d workers: SQLite locks the whole file; prefer a .journal "
                "file (one machine) or PostgreSQL (several machines)",
                shown_url(url),
                jobs,
            )
        return StorageSpec("rdb", url, heartbeat)
    if url.endswith(".journal") or url.endswith(".log"):
        return StorageSpec("journal", url)
    raise ConfigError(
        f"--storage {shown_url(url)}: not a storage URL; use a .journal path, sqlite:///file.db or postgresql://..."
    )
