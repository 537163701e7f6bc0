"""``benchmarks/threshold_settings.py``: a documented setting verified on its workload says whether the
weights it runs on are the ones the file was tuned on (real hrnet, real vtest frames, a short clip)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "threshold_settings.py"
SETTINGS = ROOT / "studies" / "thresholds"


def _run(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--dir", str(folder), "--models", "hrnet",
                           "--frames", "4", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_a_setting_names_whether_it_runs_on_its_own_weights(tmp_path: Path) -> None:
    r = _run(SETTINGS)
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert row["model"] == "hrnet" and row["weights_match"] is True
    data = json.loads((SETTINGS / "hrnet.json").read_text())
    data["weights"] = "sha256:0000000000000000"  # as if tuned on other weights
    (tmp_path / "hrnet.json").write_text(json.dumps(data))
    other = _run(tmp_path)
    [row] = json.loads(other.stdout)
    assert row["weights_match"] is False and "made with other weights" in other.stderr
    del data["weights"]  # a file from before fingerprints: nothing to compare
    (tmp_path / "hrnet.json").write_text(json.dumps(data))
    [row] = json.loads(_run(tmp_path).stdout)
    assert row["weights_match"] is None
