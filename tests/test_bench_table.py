"""``benchmarks/bench_table.py`` without measuring: the README's saved run printed and drawn again.

Measuring the table takes half an hour (it lives in benchmarks/); what is tested here is that the saved
run (``docs/benchmark_table.json``) reproduces the README's table and that bad input is one line, exit 2.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests._scripts import run_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_table.py"
SAVED = ROOT / "docs" / "benchmark_table.json"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark(SCRIPT.name, *args)


def test_saved_run_prints_the_readme_table_and_draws_it(tmp_path: Path) -> None:
    png = tmp_path / "table.png"
    r = _run("--from", str(SAVED), "--plot", str(png))
    assert r.returncode == 0, r.stderr
    table = [ln for ln in r.stdout.splitlines() if ln.startswith("|")]
    rows = table[2:]
    saved = json.loads(SAVED.read_text())["rows"]
    assert table[0].startswith("| model |") and len(rows) == len(saved) >= 17
    assert "\n".join(table) in (ROOT / "README.md").read_text()  # the README quotes this run, whole
    for line, row in zip(rows, saved, strict=True):
        rounds = [d / s for d, s in zip(row["dense_runs_ms"], row["delta_runs_ms"], strict=True)]
        # the speedup is the ratio of the medians; beside it the slowest and fastest round
        assert f"{row['dense_ms'] / row['delta_ms']:.2f}x ({min(rounds):.2f}-{max(rounds):.2f})" in line
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_bad_inputs_are_one_line_and_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"rows": []}')
    for args, needle in (
        (["--from", str(tmp_path / "missing.json")], "missing.json: not a file written by --save"),
        (["--from", str(broken)], "broken.json: not a file written by --save"),
        (["--from", str(SAVED), "--plot", str(tmp_path / "no" / "x.png")], "does not exist"),
        (["--w32-only"], "--w32-only: give the weights with --w32-weights FILE"),
        (["--w32-weights", str(tmp_path / "w32.pt"), "--w32-only"], "w32.pt: no such file"),
        (["--w32-thresholds", str(SAVED)], "needs --w32-weights and an existing file"),
        (["--w32-weights", str(SAVED), "--w32-thresholds", str(tmp_path / "t.json")],
         "t.json: needs --w32-weights and an existing file"),
    ):
        r = _run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr
