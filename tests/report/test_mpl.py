"""Drawing with names from the user's data (``deltatune.report._mpl``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from deltatune.ablation.table import read_results_table
from deltatune.report.render import write_report


def test_dollar_signs_in_names_draw_as_written(tmp_path: Path) -> None:
    """A metric "price $5-$10" and a level "$x^$": mathtext read the text between the dollars as TeX and the
    report failed with a ParseSyntaxException. The caller's own mathtext setting is left as it was."""
    table = tmp_path / "runs.csv"
    rows = [f"{lvl},{s},{0.5 + 0.01 * s + (0.1 if lvl == 'plain' else 0)}"
            for s in range(3) for lvl in ("$x^$", "plain", "$\\frac$")]
    table.write_text("opt,seed,price $5-$10\n" + "\n".join(rows) + "\n")
    before = matplotlib.rcParams["text.parse_math"]
    html = tmp_path / "r.html"
    write_report(read_results_table(table, factors=["opt"]), html=html, markdown=None, aso_iterations=20)
    assert html.read_text(encoding="utf-8").count("data:image/png") >= 2
    assert matplotlib.rcParams["text.parse_math"] == before
