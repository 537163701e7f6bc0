"""Worker processes that never outlive the command that started them.

joblib's loky workers are separate processes: when their parent is killed (SIGKILL included, which no
handler can catch) they are re-parented and would go on popping trials. :func:`exit_with_parent` starts a
daemon thread in the worker that polls its parent PID and ends the worker as soon as it changes.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["exit_with_parent", "busy_machine", "POLL_S"]

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
