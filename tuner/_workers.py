"""Worker processes that never outlive the command that started them, and the trials they leave behind.

joblib's loky workers are separate processes: when their parent is killed (SIGKILL included, which no
handler can catch) they are re-parented and would go on popping trials. :func:`exit_with_parent` starts a
daemon thread in the worker that polls its parent PID and ends the worker as soon as it changes.

A worker killed between Optuna creating its trial (``ask``, RUNNING) and the trial recording who runs it
(a heartbeat, a ``pid`` attribute) leaves a trial that nothing can prove dead: Optuna never calls a trial
without a heartbeat stale. Every worker therefore names itself in the study first
(:func:`register_worker`); when every worker a study names ran on this machine and is gone
(:func:`all_workers_gone`), no RUNNING trial of it can still be running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "exit_with_parent",
    "deltatune_env",
    "adopt_env",
    "busy_machine",
    "oversubscribed",
    "optimize_resilient",
    "register_worker",
    "all_workers_gone",
    "alive",
    "caused_by_interrupt",
    "on_interrupt",
    "fail_trials",
    "unowned",
    "POLL_S",
    "WORKER_ATTR",
    "WorkerDied",
    "died_words",
    "worker_deaths",
]

log = logging.getLogger(__name__)

#: How often a worker checks that its parent is alive (seconds): a killed command's workers are gone
#: within about this long.
POLL_S = 0.5

_started: set[int] = set()

#: prefix of the study user attributes ``worker:<host>:<pid>`` (value: start time) of :func:`register_worker`
WORKER_ATTR = "worker:"


class WorkerDied(RuntimeError):
    """A ``--jobs`` worker process ended without a word (SIGKILL, as the out-of-memory killer sends, or a
    crash in native code): joblib then stops the other workers too. ``codes`` is how they ended, as
    joblib reports it (e.g. ``SIGKILL(-9)``); the command says what was kept and how to go on."""

    def __init__(self, codes: str) -> None:
        super().__init__(f"a worker process died ({codes})")
        self.codes = codes


@contextlib.contextmanager
def worker_deaths() -> Iterator[None]:
    """Turn joblib's ``TerminatedWorkerError`` (a traceback through the executor, "could be caused by a
    segmentation fault ...") into :class:`WorkerDied`."""
    import re
    from concurrent.futures.process import BrokenProcessPool

    try:
        yield
    except BrokenProcessPool as exc:
        m = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
        # each way they ended once: two workers killed alike read "SIGKILL(-9), SIGKILL(-9)"
        codes = ", ".join(dict.fromkeys(c.strip() for c in m.group(1).split(","))) if m else None
        raise WorkerDied(codes or "it ended without a word") from None


def died_words(codes: str) -> str:
    """What a dead worker's exit codes say to a user."""
    if "SIGKILL" in codes:
        return (f"{codes}: killed from outside, most often by the out-of-memory killer; fewer --jobs "
                "need less memory")
    if "SIGSEGV" in codes or "SIGABRT" in codes or "SIGBUS" in codes:
        return f"{codes}: a crash in native code (torch, a kernel, a decoder)"
    return codes


def deltatune_env() -> dict[str, str]:
    """This process's ``DELTATUNE_*`` environment (results and data folders ...), for its workers to
    adopt with :func:`adopt_env`. joblib reuses loky workers from one call to the next in a process, and a
    reused worker keeps the environment it was started with: a second search in the same process with
    another results folder had its workers write their trials into the first one's."""
    return {k: v for k, v in os.environ.items() if k.startswith("DELTATUNE_")}


def adopt_env(env: dict[str, str]) -> None:
    """Make this worker's ``DELTATUNE_*`` environment exactly ``env`` (see :func:`deltatune_env`)."""
    for k in [k for k in os.environ if k.startswith("DELTATUNE_") and k not in env]:
        del os.environ[k]
    os.environ.update(env)


def register_worker(study: Any) -> None:
    """Name this process in ``study`` (a study user attribute), before it asks for any trial."""
    import platform

    study.set_user_attr(f"{WORKER_ATTR}{platform.node()}:{os.getpid()}", time.time())


def all_workers_gone(study: Any, *, leaving: int | None = None) -> bool:
    """Whether ``study`` names at least one worker, and every worker it names ran on this host and is no
    longer alive (a worker of another host cannot be checked from here, so then the answer is no).
    ``leaving``: a process of this host counted as gone although it still runs (this one, as it stops)."""
    import platform

    host = platform.node()
    workers = [k[len(WORKER_ATTR) :].rpartition(":") for k in study.user_attrs if k.startswith(WORKER_ATTR)]
    return bool(workers) and all(
        h == host and p.isdigit() and (int(p) == leaving or not alive(int(p))) for h, _, p in workers
    )


def unowned(trial: Any) -> Any:
    """A copy of the Optuna ``trial`` without the ``pid`` and ``host`` of the worker that ran it, for a
    retry callback to queue again. Optuna's retry copies the user attributes, so the retry named the dead
    worker: when a live worker took it up, another process's orphan check saw a RUNNING trial of a dead
    process and failed it again before the live worker had written its own pid."""
    import copy

    out = copy.copy(trial)
    out.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in ("pid", "host")}
    return out


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM as the CLI turns it into one), or was
    raised while handling one. Optuna turns an interrupt that lands while it records a trial's result into
    ``UnboundLocalError`` (its clean-up reads a name the interrupted line never set), and its journal lock
    one that lands while it waits for the lock into ``RuntimeError``: both are still an interrupt."""
    from deltatune.errors import causes

    return any(isinstance(e, KeyboardInterrupt) for e in causes(exc))


@contextlib.contextmanager
def on_interrupt(clean_up: Callable[[], object]) -> Iterator[None]:
    """Run the block; when an interrupt ends it (:func:`caused_by_interrupt`: Optuna's own error for one
    included), call ``clean_up`` and raise ``KeyboardInterrupt``, which the CLI turns into its one line and
    exit 130. Any other error passes through untouched."""
    try:
        yield
    except BaseException as exc:
        if not caused_by_interrupt(exc):
            raise
        clean_up()
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise KeyboardInterrupt from exc


def quiet_storage_threads() -> None:
    """Keep a lost database's traceback out of a background thread's exit: Optuna's heartbeat thread
    raises when the storage goes away, and Python printed its 95-line traceback beside the command's one
    line about the outage (whichever of the two threads met it first). A storage failure in a thread
    (:func:`deltatune.search.storage.storage_failure`) is logged at debug level (``--debug`` shows it); the
    command itself meets the same outage at its next write and says so once. Any other error in a thread
    goes to the hook installed before. Idempotent, and imports nothing heavy until a thread fails (the
    CLI installs it for every command, light ones included)."""
    previous = threading.excepthook
    if getattr(previous, "_deltatune_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        from deltatune.search.storage import storage_failure

        lost = storage_failure(args.exc_value) if args.exc_value is not None else None
        if lost is not None:
            thread = args.thread.name if args.thread is not None else "a thread"
            logging.getLogger(__name__).debug(
                "%s lost the study's database: %s", thread, lost,
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
            )
            return
        previous(args)

    hook._deltatune_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def taken_by(study: Any, attr: str, key: object, number: int) -> int | None:
    """The number of another trial of ``study`` whose user attribute ``attr`` is ``key`` and that finished,
    or is running and is numbered below ``number``; None if there is none.

    Trial ``number`` runs a queued piece of work named ``key`` (an ablation's run, a search's anchor). Two
    processes can queue the same piece at the same moment (look-then-queue is not atomic); the copy that
    finds another one finished, or running with a lower number, is a duplicate and should not run. Of two
    copies running at once the lower-numbered one always runs."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.number != number and t.user_attrs.get(attr) == key:
            if t.state == TrialState.COMPLETE or t.number < number:
                return int(t.number)
    return None


#: User attribute of a trial failed because the user interrupted the command that ran it (not a failure
#: of the run: it does not count against a run's attempts).
INTERRUPTED_ATTR = "interrupted"


def fail_trials(study: Any, numbers: list[int], *, interrupted: bool = False) -> list[int]:
    """Tell each trial of ``numbers`` FAIL; returns the ones told (a trial another process told first
    is left out). ``interrupted``: mark them :data:`INTERRUPTED_ATTR` first (a Ctrl-C, not a failure)."""
    from optuna.trial import TrialState

    failed = []
    ids = {t.number: t._trial_id for t in study.get_trials(deepcopy=False)} if interrupted else {}
    for n in numbers:
        try:
            if n in ids:
                study._storage.set_trial_user_attr(ids[n], INTERRUPTED_ATTR, True)
            study.tell(n, state=TrialState.FAIL)
        except Exception:  # noqa: BLE001 - another process got there first
            continue
        failed.append(n)
    return failed


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_with_parent(parent: int) -> None:
    """End this process (``os._exit(1)``) as soon as its parent ``parent`` is gone; idempotent per process."""
    if os.getpid() in _started:
        return
    _started.add(os.getpid())

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(POLL_S)

    threading.Thread(target=watch, daemon=True, name="deltatune-parent-watch").start()


def busy_machine(threshold: float = 0.75) -> str | None:
    """A sentence when other work keeps this machine busy (1-minute load average >= ``threshold`` x cores),
    else None: timings taken now would measure the contention as much as the code."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None
    cores = os.cpu_count() or 1
    if load >= threshold * cores:
        return (f"load average {load:.1f} on {cores} cores: other work is running, so timings will be "
                "unreliable (ratios from one interleaved run are least affected)")
    return None


def oversubscribed(threads: int | None) -> str | None:
    """A sentence when ``threads`` (``--threads``) exceeds the cores this process may run on, else None:
    the threads beyond them take turns, so every timing is slower and noisier than with one per core."""
    if threads is None:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads <= cores:
        return None
    return (f"--threads {threads} on {cores} cores: the threads beyond the cores take turns, so the "
            f"timings are slower and noisier than with --threads {cores}")


def optimize_resilient(study: Any, objective: Any, *, n_trials: int | None, callbacks: list[Any],
                       catch: tuple[type[Exception], ...] = (), timeout: float | None = None) -> int:
    """``study.optimize`` that survives losing a trial to a heartbeat timeout: returns objective calls.

    With heartbeats, a worker that could not write one for the grace period (a machine overloaded for
    seconds) has its running trial failed and retried by another worker; Optuna then refuses this
    worker's result ("Cannot tell a FAIL trial"). That trial's work is already being redone elsewhere, so
    the worker logs it and goes on with the trials it has left instead of dying.
    """
    calls = {"n": 0}
    deadline = None if timeout is None else time.monotonic() + timeout

    def counted(trial: Any) -> Any:
        calls["n"] += 1
        return objective(trial)

    while n_trials is None or calls["n"] < n_trials:
        left = None if n_trials is None else n_trials - calls["n"]
        before = calls["n"]
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return calls["n"]
        try:
            study.optimize(counted, n_trials=left, callbacks=callbacks, catch=catch, gc_after_trial=False,
                           timeout=remaining)
            return calls["n"]
        except ValueError as exc:
            if "Cannot tell a" not in str(exc) or calls["n"] == before:
                raise
            log.warning("a trial of this worker was failed by another one (no heartbeat in time) and is "
                        "retried there; going on")
    return calls["n"]
