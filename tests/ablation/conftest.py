"""Small real studies: the shipped hrnet weights, real vtest frames, real Optuna storages."""

from __future__ import annotations

from pathlib import Path

import pytest

#: 2 modes x 2 segments of 5 vtest frames (one stream) at the documented hrnet thresholds' scale.
EVAL_STUDY = """\
[study]
name = "{name}"
kind = "evaluate"
model = "hrnet"
frames = 5
streams = 1
units = ["vtest@0", "vtest@300"]
speed_repeats = 1

[fixed]
thresholds = 0.05

[factors]
mode = ["max", "rms"]
"""


#: The first lines of a search study on the tiny random-weights HRNet, 6-frame clips (tests add the rest).
TINY_SEARCH = """\
[study]
name = "{name}"
kind = "search"
model = "hrnet_tiny"
weights = "none"
frames = 6
"""


def write_study(folder: Path, text: str, name: str) -> Path:
    p = folder / f"{name}.toml"
    p.write_text(text.format(name=name))
    return p


@pytest.fixture()
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "results"
    monkeypatch.setenv("DELTATUNE_RESULTS", str(d))
    monkeypatch.setenv("DELTATUNE_FINETUNE_CACHE", str(tmp_path / "finetuned"))  # fine-tunes run afresh
    return d
