"""Finding the processes a test started, through an environment marker their children inherit."""

from __future__ import annotations

from pathlib import Path

__all__ = ["marked_pids"]


def marked_pids(mark: str) -> list[int]:
    """PIDs of live processes whose environment contains ``mark`` (a test sets it on the command it
    starts; every worker process that command spawns inherits it)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if mark.encode() in (d / "environ").read_bytes():
                pids.append(int(d.name))
        except OSError:
            continue
    return pids
