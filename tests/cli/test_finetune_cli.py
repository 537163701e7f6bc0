"""``deltatune finetune``'s summary line: the steps it counts, and those of this run after a resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deltatune.cli import main


def test_the_summary_counts_steps_and_says_which_ran_now(
    tmp_path: Path, carphone_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "for 1 steps", and after a resume "for 3 steps in 1 s" when one step ran."""
    out = tmp_path / "w.pt"
    base = ["finetune", "--model", "hrnet_tiny", "--weights", "none", "--video", "carphone",
            "--frames", "0:4", "--batch-size", "1", "--weight-decay", "1e-4", "--threads", "1",
            "--no-progress", "-o", str(out)]
    assert main([*base, "--steps", "1"]) == 0
    said = capsys.readouterr().out.splitlines()[0]
    assert re.match(r"fine-tuned hrnet_tiny for 1 step in \d+ s; ", said), said
    assert main([*base, "--steps", "3", "--resume"]) == 0
    said = capsys.readouterr().out.splitlines()[0]
    assert re.match(r"fine-tuned hrnet_tiny for 3 steps \(2 this run\) in \d+ s; ", said), said
