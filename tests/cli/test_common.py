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
