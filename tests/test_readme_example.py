"""The README's Python examples run as printed, in a fresh interpreter, on the real sample video and
weights: the conversion example writes the thresholds file it says it writes, the model-family file
registers its model for the CLI, and the notebook example searches its own model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_the_readme_has_its_three_python_examples() -> None:
    blocks = _blocks()
    assert len(blocks) == 3, "the conversion example, a model-family file and a notebook search"
    assert blocks[1].startswith("# my_nets.py\n")


def test_the_readme_conversion_example_runs_as_printed(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_blocks()[0])
    r = _run([sys.executable, str(script)], tmp_path)
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "mnv2.json").read_text())
    assert saved["format"] == "deltatune-thresholds/1" and saved["thresholds"]["input"] == 0.02
    assert set(saved["thresholds"].values()) == {0.02, 0.05}


def test_the_readme_model_family_file_registers_its_model(tmp_path: Path) -> None:
    (tmp_path / "my_nets.py").write_text(_blocks()[1])
    env = {"DELTATUNE_MODELS": "my_nets.py"}
    r = _run([sys.executable, "-m", "deltatune", "models", "--json"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    row = next(m for m in json.loads(r.stdout) if m["name"] == "my_pose_net")
    assert row["task"] == "pose" and row["input_size"] == [256, 192] and row["macs"] > 0


def test_the_readme_notebook_search_runs_as_printed(tmp_path: Path) -> None:
    script = tmp_path / "notebook.py"
    script.write_text(_blocks()[2])
    r = _run([sys.executable, str(script)], tmp_path)
    assert r.returncode == 0, r.stderr
    best = eval(r.stdout.strip().splitlines()[-1], {"__builtins__": {}, "nan": float("nan")})  # printed dict
    assert best["feasible"] is True and best["speedup"] >= 1.0 and 0 <= best["trial"] < 10
    assert (tmp_path / "my_classifier.journal").is_file()
