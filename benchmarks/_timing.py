"""Interleaved timing shared by the microbenchmarks: every function once per round, medians over rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(fns: dict[str, Callable[[], object]], *, rounds: int, inner: int) -> dict[str, float]:
    """Median ms per call of each function: 3 untimed warm-up calls each, then ``rounds`` rounds that
    time every function in turn (``inner`` calls each), so a slow phase of the machine hits all alike."""
    for f in fns.values():
        for _ in range(3):
            f()
    times: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(rounds):
        for n, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            times[n].append((time.perf_counter() - t0) * 1e3 / inner)
    return {n: statistics.median(v) for n, v in times.items()}
