"""The README's Python example runs as printed, in a fresh interpreter, on the real sample video and
weights, and writes the thresholds file it says it writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_python_example_runs_as_printed(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "one Python example in the README; this test runs it"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "mnv2.json").read_text())
    assert saved["format"] == "deltatune-thresholds/1" and saved["thresholds"]["input"] == 0.02
    assert set(saved["thresholds"].values()) == {0.02, 0.05}
