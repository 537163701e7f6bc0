"""Factor levels that are file paths get short names in a report; the data keeps them as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltatune.ablation.table import read_results_table
from deltatune.report.levels import short_level_names, with_short_levels
from deltatune.report.render import write_report


@pytest.mark.parametrize(("levels", "expected"), [
    (["/runs/a/hrnet_x.json", "/runs/b/hrnet_y.json"], {"/runs/a/hrnet_x.json": "hrnet_x.json",
                                                        "/runs/b/hrnet_y.json": "hrnet_y.json"}),
    # the same file name in two folders: the folder tells them apart
    (["/runs/a/t.json", "/runs/b/t.json"], {"/runs/a/t.json": "a/t.json", "/runs/b/t.json": "b/t.json"}),
    # a path beside a plain number; a short name may not take another level's name
    (["0.05", "studies/t.json"], {"studies/t.json": "t.json"}),
    (["t.json", "other/t.json"], {}),
    (["C:\\runs\\a\\t.json", "C:\\runs\\b\\t.json"], {"C:\\runs\\a\\t.json": "a/t.json",
                                                      "C:\\runs\\b\\t.json": "b/t.json"}),
    (["max", "rms"], {}),
    (["1/2", "1/4", "0.5/1.0"], {}),  # ratios, not files
    (["runs/a", "/abs/runs/b"], {"/abs/runs/b": "b"}),
])
def test_path_levels_are_named_by_the_fewest_trailing_parts_that_keep_them_apart(
    levels: list[str], expected: dict[str, str]
) -> None:
    assert short_level_names(levels) == expected


def test_a_report_names_path_levels_short_and_lists_them_in_full(tmp_path: Path) -> None:
    """Whole paths ran into each other on the box plot's axis and filled every table row; the report now
    uses the short names throughout and gives the full paths once, in the setup table."""
    long = "/home/someone/experiments/2026/settings"
    table = tmp_path / "runs.csv"
    rows = [f"{seed},{long}/{name}.json,{50 + seed + (2 if name == 'b' else 0)}"
            for seed in range(4) for name in ("a", "b")]
    table.write_text("seed,thresholds,acc\n" + "\n".join(rows) + "\n")
    res = read_results_table(table, factors=["thresholds"])
    short = with_short_levels(res)
    assert short.factors == {"thresholds": ["a.json", "b.json"]}
    assert set(short.observations["thresholds"]) == {"a.json", "b.json"}
    assert set(res.observations["thresholds"]) == {f"{long}/a.json", f"{long}/b.json"}  # left as read
    assert ("thresholds (levels in full)", f"a.json = {long}/a.json; b.json = {long}/b.json") in short.setup
    md = tmp_path / "r.md"
    write_report(res, html=None, markdown=md, aso_iterations=20)
    text = md.read_text(encoding="utf-8")
    assert "b.json vs a.json" in text and text.count(long) == 2  # the setup row's two full paths only
    assert with_short_levels(short) is short  # nothing left to shorten
