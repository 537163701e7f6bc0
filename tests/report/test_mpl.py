"""Drawing with names from the user's data (``deltatune.report._mpl``)."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import matplotlib
import pytest

from deltatune.ablation.table import read_results_table
from deltatune.report._mpl import plain_text, pyplot
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


def test_characters_the_plot_font_lacks_are_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """Chinese names with only DejaVu Sans installed: matplotlib warned once per character and figure (a
    report of two such factors printed dozens of lines); now one logged line names the characters, and a
    second figure with the same characters adds none."""

    @plain_text
    def draw(text: str) -> bytes:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(2, 1))
        try:
            ax.set_title(text)
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        finally:
            plt.close(fig)
        return buf.getvalue()

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        assert draw("龟鸟 loss").startswith(b"\x89PNG")
        assert draw("鸟龟 loss").startswith(b"\x89PNG")
    assert not [w for w in caught if "missing from" in str(w.message)], [str(w.message) for w in caught]
    said = [r.getMessage() for r in caplog.records if "no glyph" in r.getMessage()]
    assert len(said) == 1 and "龟 鸟" in said[0] and "DejaVu Sans" in said[0], said
