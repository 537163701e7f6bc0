"""Running a ``benchmarks/`` script the way its docstring says to, for the tests of those scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: the repository root (the scripts run from there)
ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/<script> args...`` from the repository root, output captured as text."""
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)
