"""glibc's allocator settings for the delta engine (:func:`keep_freed_memory`), without importing torch:
the ``deltatune`` command applies them before any command runs, ``--help`` and ``report`` included."""

from __future__ import annotations

import os

__all__ = ["MALLOPT_ENV", "keep_freed_memory"]

#: Set to ``0`` to leave glibc's allocator settings alone (see :func:`keep_freed_memory`).
MALLOPT_ENV = "DELTATUNE_MALLOPT"

#: ``"malloc"``: whether :func:`keep_freed_memory` applied the settings (decided once per process)
_state: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS (process-wide).

    A delta frame allocates and frees many megabyte-sized temporaries (gathered columns, zero deltas,
    truncation outputs). With glibc's defaults much of that goes through ``mmap``/``munmap`` or heap
    trimming, so almost every allocation lands on fresh pages and pays a page fault per 4 KiB on first
    touch: a 3x3 conv call measured 0.20 ms instead of 0.03 ms that way. Raising the mmap and trim
    thresholds (``mallopt``) makes freed memory reusable; the price is that the process keeps its peak
    memory. It also speeds up dense PyTorch in the same process, so benchmarks stay fair. Opt-in, as a
    process-wide setting should be: the ``deltatune`` command and the benchmark scripts call it once at
    start (``DELTATUNE_MALLOPT=0`` makes it a no-op); importing or running the engine never does. A library
    user who wants the sparse backend's measured speed calls it once. Returns whether it was applied.
    """
    if _state.get("malloc") is not None:
        return bool(_state["malloc"])
    applied = False
    if os.environ.get(MALLOPT_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}:
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            m_trim_threshold, m_mmap_threshold = -1, -3
            applied = bool(
                libc.mallopt(m_mmap_threshold, 1 << 30) or libc.mallopt(m_mmap_threshold, 32 << 20)
            )
            applied = bool(libc.mallopt(m_trim_threshold, 2**31 - 1)) and applied
        except (OSError, AttributeError):  # not glibc: nothing to tune
            applied = False
    _state["malloc"] = applied
    return applied
