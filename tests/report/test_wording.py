"""Number formats of the report's sentences and tables, and how they name a factor's levels."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from deltatune.cli import main
from deltatune.report.wording import fmt_p, fmt_percent, fmt_prob, level_name


@pytest.mark.parametrize(("p", "text"), [
    (1.0, "> 0.999"), (0.99996, "> 0.999"), (0.999, "0.999"), (0.5, "0.500"), (0.0004, "< 0.001"),
    (0.0, "< 0.001"), (math.nan, "–"),
])
def test_posterior_probabilities_read_like_the_p_values_beside_them(p: float, text: str) -> None:
    """The Bayesian probabilities printed "1.00" and "0" beside p-values of "< 0.001": one format, the
    ends bounded as the p-values' are."""
    assert fmt_prob(p) == text
    if p < 0.001:
        assert fmt_prob(p) == fmt_p(p)


@pytest.mark.parametrize(("level", "name"), [
    ("2", "keyframe_interval=2"), ("0.001", "keyframe_interval=0.001"), ("1e-3", "keyframe_interval=1e-3"),
    ("-1", "keyframe_interval=-1"), ("1/2", "keyframe_interval=1/2"), ("inf", "keyframe_interval=inf"),
    ("tpe", "tpe"), ("2x", "2x"), ("v1.2", "v1.2"), ("none", "none"),
])
def test_a_level_that_reads_as_a_number_is_named_with_its_factor(level: str, name: str) -> None:
    assert level_name("keyframe_interval", level) == name


def _report(db: Path, tmp_path: Path, *extra: str) -> str:
    """The Markdown report of the study in ``db`` (``deltatune report``), with ``extra`` options."""
    md = tmp_path / "report.md"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", str(db), "-o", str(md), "--aso-iterations", "50", *extra]) == 0
    return md.read_text(encoding="utf-8")


@pytest.mark.slow  # the session's small real study (about 30 s, once) and its report
def test_numeric_levels_are_named_with_their_factor_in_the_reports_text(
    numeric_levels_db: Path, tmp_path: Path
) -> None:
    """A study of key frames every 0 / 2 / 4 frames printed "mean ranks (1 = best): 4 1.67, 0 2.17" and
    "2 vs 0: +0 accuracy loss": its levels read as more numbers. Where a sentence, a comparison or a
    matrix names such a level it is "keyframe_interval=2"; the per-level tables, whose factor column
    names the factor, keep it bare, and so do the statistics' JSON and the observations' CSV."""
    md = _report(numeric_levels_db, tmp_path, "--json", str(tmp_path / "s.json"), "--csv",
                 str(tmp_path / "o.csv"))
    ranks = re.findall(r"mean ranks \(1 = best\): (.*?)\. Why:", md)
    level = r"keyframe_interval=[024] \(\d\.\d+\)"
    assert ranks and all(re.fullmatch(f"{level}, {level}, {level}", r) for r in ranks), ranks
    for pair in ("keyframe_interval=2 vs keyframe_interval=0", "keyframe_interval=4 vs keyframe_interval=0"):
        assert f"\n- {pair}: " in md and f"\n| {pair} | " in md, pair
        assert f"\n- {pair}: power: " in md, pair
    assert not re.search(r"\n[-|] [024] vs [024]", md)
    assert "| post-hoc p | keyframe_interval=0 | keyframe_interval=2 | keyframe_interval=4 |" in md
    assert re.search(r"\n\| keyframe_interval=2 \| \d\.\d{3} \|", md)  # and its rows
    assert "| keyframe_interval | 2 | 3 |" in md  # the per-level table: its factor column names it
    stats = json.loads((tmp_path / "s.json").read_text())
    pairs = [p for m in stats["metrics"] for c in m["comparisons"] for p in c["pairwise"]]
    assert {(p["level"], p["baseline"]) for p in pairs} == {("2", "0"), ("4", "0")}
    assert set(pd.read_csv(tmp_path / "o.csv")["keyframe_interval"]) == {0, 2, 4}


@pytest.mark.slow  # the session's small real study (about 30 s, once) and its figures
def test_the_critical_difference_diagram_names_numeric_levels_with_their_factor(
    numeric_levels_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The diagram's labels are "level (mean rank)" beside a rank axis 1..3: "2 (1.67)" was two numbers."""
    from deltatune.ablation.store import find_study, load_results
    from deltatune.report import plots
    from deltatune.report.analysis import analyse
    from deltatune.report.document import build_document

    drawn: list[list[str]] = []
    cd_diagram = plots.cd_diagram

    def spy(mean_ranks: pd.Series, posthoc: pd.DataFrame, **kw: object) -> object:
        drawn.append([*map(str, mean_ranks.index), *map(str, posthoc.index), *map(str, posthoc.columns)])
        return cd_diagram(mean_ranks, posthoc, **kw)

    monkeypatch.setattr(plots, "cd_diagram", spy)
    results = load_results(*find_study(f"sqlite:///{numeric_levels_db}", None))
    build_document(results, analyse(results, aso_iterations=20))
    assert drawn, "no critical-difference diagram was drawn"
    for labels in drawn:
        assert set(labels) == {"keyframe_interval=0", "keyframe_interval=2", "keyframe_interval=4"}, labels


def test_numeric_levels_in_the_notes_are_named_with_their_factor(tmp_path: Path) -> None:
    """A table of runs with key frames every 1, 2 or 4 frames: "Paired on 5 seed(s) with every level but 2"
    named a level as a count, and "1, 4: the same value in every run" read as numbers."""
    from deltatune.ablation.table import read_results_table
    from deltatune.report.analysis import analyse
    from deltatune.report.render import render_markdown

    rows = [f"{s},{k},{0.5 + 0.1 * s if k == 2 else 0.5 + 0.05 * k},{'' if k == 2 else 1.0 + 0.1 * s * k}"
            for s in range(5) for k in (1, 2, 4)]
    path = tmp_path / "runs.csv"
    path.write_text("seed,keyframe,score,loss\n" + "\n".join(rows) + "\n")
    res = read_results_table(path, factors=["keyframe"], higher_is_better=["score"])
    md = render_markdown(res, analyse(res, aso_iterations=20), image_dir=tmp_path / "img", link_prefix="img")
    assert "Paired on 5 seed(s) with every level but keyframe=2;" in md
    assert "no loss observed on keyframe=2: left out of the tests" in md
    assert "keyframe=1, keyframe=4: the same value in every run." in md


@pytest.mark.parametrize(("x", "digits", "text"), [
    (0.75, 3, "75 %"), (0.875, 3, "87.5 %"), (1 - 0.05 / 6, 4, "99.17 %"), (0.95, 3, "95 %"),
    (math.nan, 3, "–"),
])
def test_percentages_are_written_with_a_space_as_the_readme_does(x: float, digits: int, text: str) -> None:
    assert fmt_percent(x, digits) == text


@pytest.mark.slow  # the session's small real study (about 30 s, once) and its report
def test_the_report_writes_every_percentage_one_way(numeric_levels_db: Path, tmp_path: Path) -> None:
    """The report wrote "95 % CI" and "80 % power" but "75.0%" for a run's CI level, and the ASO
    confidence level as a fraction (0.9917) beside "95 %" and "90 %" CIs: every percentage is now "N %",
    as the README writes them."""
    md = _report(numeric_levels_db, tmp_path)
    assert not re.findall(r".{20}\d%.{0,20}", md)
    runs = [line for line in md.splitlines() if re.match(r"\| [0-9a-f]{12} \| keyframe_interval=", line)]
    assert len(runs) == 9 and all(line.endswith(" | 75 % |") for line in runs), runs  # 3 rounds: [min, max]
    assert "confidence level 99.17 %, 1 - alpha / m over the study's m comparisons (Bonferroni)" in md
    assert not re.search(r"confidence level 0\.\d", md)
