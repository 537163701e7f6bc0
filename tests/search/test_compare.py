"""Study files: parsing, validation, and a real (tiny) comparison through the CLI."""

from __future__ import annotations

import json

import pytest

from deltatune.cli import main
from deltatune.errors import ConfigError
from deltatune.search.compare import load_comparison

TINY = """
[comparison]
name = "tiny"
model = "hrnet_tiny"
weights = "none"
frames = 6
streams = 1
budget = 10.0
trials = 3
strategies = ["tpe", "sweep"]
joints = "all"  # random weights: no dense keypoint is reliably present
"""


def test_shipped_study_file_parses() -> None:
    comp = load_comparison("studies/hrnet_strategies.toml")
    assert comp.model == "hrnet" and {"tpe", "nsga2", "deltacnn-greedy", "sweep"} <= set(comp.strategies)


def test_bad_study_files(tmp_path) -> None:
    p = tmp_path / "s.toml"
    p.write_text("[comparison]\nname='x'\nmodel='hrnet'\nstrategies=['tpe']\ncolour='red'\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_comparison(p)
    p.write_text("[comparison]\nname='x'\nmodel='hrnet'\n")
    with pytest.raises(ConfigError, match="strategies"):
        load_comparison(p)
    p.write_text("not = [toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_comparison(p)


def test_tiny_comparison_runs_every_strategy(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    assert main(["compare", str(p), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = {r["strategy"]: r for r in d["rows"]}
    assert set(rows) == {"tpe", "sweep"}
    assert all(r["trials"] == 3 for r in rows.values())
    assert all(r["feasible"] >= 1 for r in rows.values())  # the all-zero (exact) trial is always feasible
    # resuming adds trials to the same studies
    assert main(["compare", str(p), "--trials", "4", "--json"]) == 0
    d2 = json.loads(capsys.readouterr().out)
    assert all(r["trials"] == 7 for r in d2["rows"])
