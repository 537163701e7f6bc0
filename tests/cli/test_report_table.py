"""``deltatune report runs.csv`` through the CLI: which files it writes for which ``-o``."""

from __future__ import annotations

import json
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
    assert text.startswith("# Ablation study: sweep") and "| lr | 0.01 | 5 |" in text  # one per seed
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


def test_report_json_writes_every_statistic_and_dash_prints_only_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = _sweep(tmp_path / "sweep.csv")
    stats = tmp_path / "stats.json"
    args = ["report", str(sweep), "--factors", "lr,weight_decay", "--baseline", "lr=0.001",
            "-o", str(tmp_path / "r.html"), "--aso-iterations", "20"]
    assert main([*args, "--json", str(stats)]) == 0
    assert f"; statistics {stats}" in capsys.readouterr().out
    written = json.loads(stats.read_text(encoding="utf-8"), parse_constant=_no_constant)
    by_level = {(p["metric"], p["factor"], p["level"]): p
                for m in written["metrics"] for c in m["comparisons"] for p in c["pairwise"]}
    better, worse = by_level[("mAP", "lr", "0.01")], by_level[("mAP", "lr", "0.1")]
    # the sweep makes lr 0.01 2 mAP better and 0.1 3 worse than 0.001, each seed shifting its runs alike
    assert better["better"] is True and better["significant"] and 1.5 < better["diff"] < 2.5
    assert worse["better"] is False and worse["significant"] and -3.5 < worse["diff"] < -2.5
    assert better["test"]["paired"] and better["diff_ci_low"] < better["diff"] < better["diff_ci_high"]
    assert {e["name"] for e in better["test"]["effect_sizes"]} >= {"hedges_g"}
    assert written["family_size"] == len(by_level) and written["runs"]["completed"] == 30

    assert main([*args, "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out, parse_constant=_no_constant) == written  # stdout holds the JSON and nothing else
    assert "note:" in err and "loss" in err  # how the table was read goes to stderr instead


def test_report_json_refuses_another_suffix_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = _sweep(tmp_path / "sweep.csv")
    assert main(["report", str(sweep), "--factors", "lr,weight_decay", "--json", "stats.txt",
                 "-o", str(tmp_path / "r.html")]) == 2
    assert "--json stats.txt: unsupported file type '.txt'" in capsys.readouterr().err
    assert not list(tmp_path.glob("r.*"))


def _no_constant(token: str) -> None:
    raise AssertionError(f"not standard JSON: {token}")


def test_the_help_and_the_readme_list_the_lower_is_better_words_the_code_reads() -> None:
    """``report --help`` said "loss, error or time" while the code (and the README) also read memory as
    lower-is-better: the help and the README now list the same kinds, each of which the code reads so."""
    import argparse
    import re

    from deltatune.ablation.table import lower_is_better_by_name
    from deltatune.cli.report import LOWER_KINDS, add_arguments, lower_kinds_text

    assert all(lower_is_better_by_name(f"peak_{kind}") for kind in LOWER_KINDS)
    p = argparse.ArgumentParser()
    add_arguments(p)
    helps = " ".join(a.help or "" for a in p._actions if "--lower-is-better" in a.option_strings)
    assert f"whose name says {lower_kinds_text()}: lower" in helps
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    said = re.search(r"higher-is-better unless its name says ([a-z, ]+?) \(", readme)
    assert said is not None and said.group(1) == lower_kinds_text()


def test_report_without_o_writes_beside_the_table_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report runs/sweep.csv`` run from another folder wrote ./deltatune-results/sweep.html there: the
    report goes beside the table, named after it, and the command prints where. A file there that is
    not a report of ours is left alone."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    sweep = _sweep(tmp_path / "runs" / "sweep.csv")
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv("DELTATUNE_RESULTS", raising=False)
    args = ["report", str(sweep), "--factors", "lr,weight_decay", "--aso-iterations", "20"]
    assert main(args) == 0
    html = tmp_path / "runs" / "sweep.html"
    assert f"; report {html}\n" in capsys.readouterr().out
    assert '<meta name="generator" content="deltatune report">' in html.read_text(encoding="utf-8")
    assert not list((tmp_path / "elsewhere").iterdir())
    html.write_text("<html><body>my own page</body></html>\n")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{html} (the report's default path, beside its runs): exists and is not a "
                        "deltatune report; name the report with -o FILE"), err
    assert html.read_text() == "<html><body>my own page</body></html>\n"


def test_an_effect_size_from_two_pairs_says_why_it_is_undefined(tmp_path: Path) -> None:
    """With 2 pairs Hedges' g_z has no unbiased estimate (J(1) = 0), and the report said "no spread to
    scale the difference by, or too few pairs" beside a t statistic of -9.7, which needs a spread."""
    table = tmp_path / "two.csv"
    table.write_text("seed,variant,loss\n0,a,1.0\n0,b,2.0\n1,a,1.5\n1,b,2.7\n")
    out = tmp_path / "two.md"
    assert main(["report", str(table), "--factors", "variant", "--unit", "seed", "--lower-is-better", "loss",
                 "-o", str(out), "--aso-iterations", "20"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Hedges' g_z undefined (only 2 pairs: too few to estimate it)" in text, text
    assert "no spread to scale the difference by" not in text
