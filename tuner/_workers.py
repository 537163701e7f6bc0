"""Worker processes that never outlive the command that started them.

joblib's loky workers are separate processes: when their parent is killed (SIGKILL included, which no
handler can catch) they are re-parented and would go on popping trials. :func:`exit_with_parent` starts a
daemon thread in the worker that polls its parent PID and ends the worker as soon as it changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

__all__ = ["exit_with_parent", "busy_machine", "optimize_resilient", "POLL_S"]

log = logging.getLogger(__name__)

#: How often a worker checks that its parent is alive (seconds): a killed command's workers are gone
#: within about this long.
POLL_S = 0.5

_started: set[int] = set()


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
