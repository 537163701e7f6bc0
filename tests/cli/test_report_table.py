"""``deltatune report runs.csv`` through the CLI: which files it writes for which ``-o``."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltatune.cli import main
from tests.ablation.test_table import _sweep


def test_report_o_md_writes_markdown_with_its_plots_and_no_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = _sweep(tmp_path / "sweep.csv")
    out = tmp_path / "out" / "sweep.md"
    assert main(["report", str(sweep), "--factors", "lr,weight_decay", "-o", str(out),
                 "--aso-iterations", "20"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Ablation study: sweep") and "| lr | 0.01 | 10 |" in text
    plots = list((tmp_path / "out" / "sweep_files").iterdir())
    assert plots and all(p.suffix == ".png" for p in plots)
    assert not list(tmp_path.rglob("*.html"))
    # a table records no timing repeats or provenance: no empty sections for them
    assert "## Measured speed" not in text and "## Provenance" not in text and "Measured speed**" not in text
    assert f"report {out}" in capsys.readouterr().out


def test_report_o_html_with_md_writes_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _sweep(tmp_path / "sweep.csv")
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    assert main(["report", str(sweep), "--factors", "lr,weight_decay", "-o", str(html), "--md", str(md),
                 "--aso-iterations", "20"]) == 0
    assert html.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert md.is_file()
    assert f"report {html} and {md}" in capsys.readouterr().out
