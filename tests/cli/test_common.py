"""Helpers shared by the subcommands (``deltatune.cli._common``)."""

from __future__ import annotations

import json
import math

import numpy as np

from deltatune.cli._common import json_text


def test_json_text_writes_standard_json() -> None:
    """Non-finite numbers, nested anywhere, become null: ``json.dumps`` would write ``Infinity`` and
    ``NaN``, which jq and browsers reject. Finite values and numpy numbers pass through unchanged."""
    obj = {"a": math.inf, "b": [1.5, -math.inf, {"c": math.nan}], "d": (np.float32(0.25), np.int64(3)),
           "e": "inf", "f": None, "g": True}
    text = json_text(obj)
    for token in ("Infinity", "NaN"):
        assert token not in text

    def reject(token: str) -> None:
        raise AssertionError(token)

    assert json.loads(text, parse_constant=reject) == {
        "a": None, "b": [1.5, None, {"c": None}], "d": [0.25, 3.0], "e": "inf", "f": None, "g": True,
    }


def test_json_text_default_handles_other_types() -> None:
    from pathlib import Path

    assert json.loads(json_text({"p": Path("x/y")}, default=str)) == {"p": "x/y"}


def test_every_command_with_a_progress_bar_takes_no_progress() -> None:
    """One spelling everywhere: a script that passes --no-progress to search must not be refused by
    finetune, bench or calibrate."""
    import pytest

    from deltatune.cli import build_parser

    parser = build_parser()
    for argv in (["search", "--model", "m"], ["ablate", "s.toml"], ["predict", "--model", "m", "-o", "p.csv"],
                 ["bench", "--model", "m"], ["inspect", "--model", "m"], ["calibrate", "--model", "m"],
                 ["finetune", "-o", "w.pt"], ["distill", "--out", "w.pt"], ["detect", "train", "-o", "w.pt"],
                 ["data", "fetch"]):
        assert parser.parse_args([*argv, "--no-progress"]).no_progress is True, argv
    with pytest.raises(SystemExit):  # detect eval draws no bar: the option would do nothing there
        parser.parse_args(["detect", "eval", "--checkpoint", "c.pt", "--no-progress"])


def test_finetune_no_progress_writes_no_bar(tmp_path, capsys, vtest_path) -> None:
    from deltatune.cli import main

    argv = ["finetune", "--model", "hrnet_tiny", "--weights", "none", "--frames", "0:4", "--steps", "2",
            "--batch-size", "1", "--sparsity-penalty", "0.1", "-o", str(tmp_path / "w.pt"), "--threads", "1"]
    assert main(argv) == 0
    assert "step/s" in capsys.readouterr().err  # the bar, on stderr, as a log would keep it
    assert main([*argv, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "step/s" not in err and "fine-tuned hrnet_tiny for 2 steps" in out
