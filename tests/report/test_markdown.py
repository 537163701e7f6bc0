"""The Markdown report parses as its author meant it: read with a CommonMark parser, every figure is an image
whose link reaches its PNG, whatever the report's file name holds."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from markdown_it import MarkdownIt

from deltatune.ablation.table import read_results_table
from deltatune.report.render import write_report


def _images(md: str) -> list[tuple[str, str]]:
    """``(src, alt)`` of every image CommonMark finds in ``md``."""
    found = []
    for token in MarkdownIt("commonmark").parse(md):
        for child in token.children or []:
            if child.type == "image":  # its alt text, as rendered: the text of its children
                found.append((str(child.attrGet("src")), "".join(c.content for c in child.children or [])))
    return found


def test_every_figure_is_an_image_whose_link_reaches_its_png(tmp_path: Path) -> None:
    """A report saved as "my report.md" linked `(my report_files/box.png)`: the space ends a CommonMark link,
    so no figure showed. Brackets in a metric's name ("acc [%]") stay in the image's text."""
    table = tmp_path / "runs.csv"
    rows = [f"{s},{lr},{o},{50 + s + (2 if lr == '0.01' else 0) + (o == 'adam')}"
            for s in range(4) for lr in ("0.1", "0.01", "0.001") for o in ("sgd", "adam")]
    table.write_text("seed,lr,opt,acc [%]\n" + "\n".join(rows) + "\n")
    out = tmp_path / "my reports"
    out.mkdir()
    md = out / "my report.md"
    write_report(read_results_table(table, factors=["lr", "opt"]), html=None, markdown=md, aso_iterations=20)
    text = md.read_text(encoding="utf-8")
    images = _images(text)
    assert len(images) == text.count("![") >= 3
    for src, alt in images:
        assert (out / urllib.parse.unquote(src)).is_file(), src
        assert alt and not alt.endswith("\\")
    assert any(alt.startswith("acc [%] per lr") for _, alt in images)
    assert any(alt.startswith("acc [%] per opt") for _, alt in images)  # each varied factor has its box


def test_names_from_the_data_read_as_written(tmp_path: Path) -> None:
    """A factor, level or metric name is plain text: "opt<b>" opened a bold tag in the Markdown report, a
    level "<i>x</i>" was dropped as HTML, "*" and a lone "_" opened emphasis. Read by CommonMark, the report
    shows them as the HTML report does, with no tag or emphasis of theirs."""
    table = tmp_path / "runs.csv"
    rows = [f"{lvl},{s},{0.5 + 0.01 * s + (0.1 if lvl == 'plain' else 0)}"
            for s in range(3) for lvl in ("<i>x</i>", "plain")]
    table.write_text("opt<b>,seed,lr*2 _raw_\n" + "\n".join(rows) + "\n")
    md = tmp_path / "r.md"
    write_report(read_results_table(table, factors=["opt<b>"]), html=None, markdown=md, aso_iterations=20)
    text = md.read_text(encoding="utf-8")
    html = MarkdownIt("commonmark").enable("table").render(text)
    for tag in ("<b>", "<i>", "<em>x", "<em>raw", "<strong>2"):
        assert tag not in html, tag
    for name in ("opt&lt;b&gt;", "&lt;i&gt;x&lt;/i&gt;", "lr*2 _raw_"):
        assert name in html, name
    assert "[0." in text and "\\[" not in text.replace("![", "")  # intervals stay readable in the file


def test_metrics_whose_names_share_a_slug_get_a_figure_each(tmp_path: Path) -> None:
    """Figure files are named after slugs of the metric and factor names; "精度" and "损失" (accuracy, loss)
    both slug to "x", and "mAP" and "map" to "map". Each section links a file of its own, holding its own
    plot: the same file linked from two sections held the last metric's plot in both."""
    table = tmp_path / "runs.csv"
    rows = [f"{s},{lr},{50 + s + 3 * (lr == '0.01')},{1 - 0.1 * s},{20 + 4 * s},{-s + 2 * (lr == '0.1')}"
            for s in range(4) for lr in ("0.1", "0.01", "0.001")]
    table.write_text("seed,学习率,精度,损失,mAP,map\n" + "\n".join(rows) + "\n", encoding="utf-8")
    md = tmp_path / "r.md"
    write_report(read_results_table(table, factors=["学习率"]), html=None, markdown=md, aso_iterations=20)
    images = _images(md.read_text(encoding="utf-8"))
    srcs = [urllib.parse.unquote(src) for src, _ in images]
    assert len(images) >= 4 and len(set(srcs)) == len(srcs), srcs
    for metric in ("精度", "损失", "mAP", "map"):  # each metric's box plot is a file of its own
        (box,) = [s for s, (_, a) in zip(srcs, images, strict=True) if a.startswith(f"{metric} per 学习率")]
        assert (tmp_path / box).is_file()
    pngs = [(tmp_path / s).read_bytes() for s in srcs]
    assert len(set(pngs)) == len(pngs)  # four different plots, none written over another
