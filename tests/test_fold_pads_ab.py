"""``benchmarks/fold_pads_ab.py`` compares what it says: BlazePose with its five zero pads folded into the
convs (no pad op left) against the same network with them kept as ops, on real vtest crops."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_two_networks_differ_exactly_by_the_pad_ops() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fold_pads_ab.py"), "--model", "blazepose",
                        "--frames", "3", "--rounds", "2", "--threads", "1"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    folded = r"^pads folded\s+0 pad op\(s\)\s+median\s+[\d.]+ ms/frame  rounds( [\d.]+){2}$"
    assert re.search(folded, r.stdout, re.M), r.stdout
    assert re.search(r"^pads kept\s+5 pad op\(s\)\s+median\s+[\d.]+ ms/frame", r.stdout, re.M), r.stdout
    assert re.search(r"^folded is \d+\.\d{3}x as fast$", r.stdout, re.M)
