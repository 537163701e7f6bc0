"""``benchmarks/dense_tail_ab.py`` compares what it says: BlazePose's delta network against the same
network with its tail (a cut node and everything after it) run as one dense island, which the script
first checks equals the dense model at thresholds 0."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    script = str(ROOT / "benchmarks" / "dense_tail_ab.py")
    return subprocess.run([sys.executable, script, "--model", "blazepose", "--frames", "3", "--rounds", "2",
                           "--threads", "1", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.slow  # ~8 s: BlazePose converted twice and timed
def test_the_plain_and_the_dense_tail_network_are_timed_side_by_side() -> None:
    r = _run("--cuts", "none,conv2d_7_conv")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^dense\s+median\s+[\d.]+ ms/frame$", r.stdout, re.M), r.stdout
    assert re.search(r"^none\s+median\s+[\d.]+ ms/frame  \d+\.\d\dx dense  \(no tail; rounds( [\d.]+){2}\)$",
                     r.stdout, re.M), r.stdout
    tail = re.search(r"^conv2d_7_conv\s+median\s+[\d.]+ ms/frame  \d+\.\d\dx dense  \(tail of (\d+) nodes, "
                     r"(\d+) input\(s\)", r.stdout, re.M)
    assert tail and int(tail[1]) > 50 and int(tail[2]) >= 1, r.stdout


def test_a_cut_at_no_node_of_the_graph_is_refused_by_name() -> None:
    r = _run("--cuts", "none,no_such_node")
    assert r.returncode != 0 and "--cuts: no node 'no_such_node' in the traced graph (see --list)" in r.stderr
