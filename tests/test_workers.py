"""``deltatune._workers``: the load check that qualifies timings (bench, a search's re-timed front)."""

from __future__ import annotations

import os

from deltatune._workers import busy_machine


def test_busy_machine_compares_the_load_average_with_the_cores() -> None:
    cores = os.cpu_count() or 1
    said = busy_machine(threshold=0.0)  # any load is at least 0 x cores
    assert said is not None and said.startswith("load average ")
    assert f" on {cores} cores: other work is running, so timings will be unreliable" in said
    assert busy_machine(threshold=1e9) is None
