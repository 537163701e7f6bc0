"""Study reports as files: one self-contained HTML page, and Markdown with PNGs for version control.

Both formats render the same blocks (:func:`deltatune.report.document.build_document`). The HTML page has
its figures embedded as base64 PNG data URIs and its CSS inline: no external resource and no JavaScript,
so it opens anywhere and can be mailed or archived as one file. The Markdown report links PNG files written
next to it (``<stem>_files/``), which diff and review well in a repository.
"""

from __future__ import annotations

import base64
import html
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from deltatune._atomic import atomic_write_bytes, atomic_write_text
from deltatune.report.analysis import Analysis, analyse
from deltatune.report.document import Block, Bullets, Figure, Heading, Para, Table, Terms, build_document
from deltatune.report.levels import with_short_levels

if TYPE_CHECKING:
    from deltatune.ablation.results import AblationResults

__all__ = ["render_html", "render_markdown", "write_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1200px; padding: 1.5rem 2rem; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
h3 { margin-top: 1.6rem; color: #333; }
nav ul { columns: 2; font-size: .9rem; }
nav a { color: #222; }
table { border-collapse: collapse; margin: .8rem 0 1.2rem; font-size: .88rem; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .2rem 0; color: #444; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .55rem; vertical-align: top; }
th { background: #f2f4f8; text-align: left; }
td { font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
p.note { color: #555; font-size: .9rem; }
p.key { font-weight: 600; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
dl dt { font-weight: 600; margin-top: .6rem; }
dl dd { margin-left: 1.2rem; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_block(b: Block, anchor: str | None = None) -> str:
    if isinstance(b, Heading):
        at = f' id="{anchor}"' if anchor else ""
        return f"<h{b.level}{at}>{_e(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f'<p class="{b.kind}">{_e(b.text)}</p>' if b.text else ""
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        head = "".join(f"<th>{_e(h)}</th>" for h in b.headers)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
        cap = f"<caption>{_e(b.caption)}</caption>" if b.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(b, Figure):
        data = base64.b64encode(b.png).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(b.caption)}">'
            f"<figcaption>{_e(b.caption)}</figcaption></figure>"
        )
    if isinstance(b, Terms):
        return "<dl>" + "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in b.items) + "</dl>"
    raise TypeError(f"unknown block {type(b).__name__}")


def _anchors(blocks: Sequence[Block]) -> dict[int, str]:
    """A unique ``id`` per heading (by block position): its words, lower case, joined by hyphens."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for i, b in enumerate(blocks):
        if isinstance(b, Heading):
            base = "-".join(re.findall(r"[0-9a-z]+", b.text.lower())) or "section"
            slug, k = base, 2
            while slug in used:
                slug, k = f"{base}-{k}", k + 1
            used.add(slug)
            out[i] = slug
    return out


def _contents(blocks: Sequence[Block], anchors: dict[int, str]) -> str:
    """A list of links to the report's sections (its level-2 headings), for a long page."""
    items = "".join(f'<li><a href="#{anchors[i]}">{_e(b.text)}</a></li>'
                    for i, b in enumerate(blocks) if isinstance(b, Heading) and b.level == 2)  # fmt: skip
    return f'<nav><p class="note">Contents</p><ul>{items}</ul></nav>' if items else ""


def _html(blocks: Sequence[Block], title: str) -> str:
    anchors = _anchors(blocks)
    parts = [_html_block(b, anchors.get(i)) for i, b in enumerate(blocks)]
    first_h1 = next((i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.level == 1), None)
    if first_h1 is not None:  # the contents under the title, before the study's description
        parts.insert(first_h1 + 1, _contents(blocks, anchors))
    body = "\n".join(s for s in parts if s)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="deltatune report">\n'  # what `report` may replace unasked
        '<link rel="icon" href="data:,">\n'  # no favicon request: the page loads nothing from outside
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


#: Markdown syntax in plain text (a factor, level or metric name from the user's data): backslash-escaped,
#: so that "opt<b>" or "lr*2" reads as written instead of opening a tag or an emphasis. Only what would
#: act is escaped, so the file stays readable: ``<`` that could open a tag, ``&`` that could be an entity,
#: an underscore unless between two letters or digits ("weight_decay" is literal in CommonMark).
_MD_SYNTAX = re.compile(r"[\\`*]|<(?=[A-Za-z/!?])|&(?=#?[0-9A-Za-z]+;)|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def _md_text(text: str) -> str:
    """``text``, plain (as the HTML report shows it), in Markdown."""
    return _MD_SYNTAX.sub(lambda m: "\\" + m.group(0), text)


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ") or " "


def _md_block(b: Block, link_prefix: str) -> str:
    if isinstance(b, Heading):
        return f"{'#' * b.level} {_md_text(b.text)}"
    if isinstance(b, Para):
        if not b.text:
            return ""
        text = _md_text(b.text)
        return f"**{text}**" if b.kind == "key" else (f"_{text}_" if b.kind == "note" else text)
    if isinstance(b, Bullets):
        return "\n".join(f"- {_md_text(i)}" for i in b.items)
    if isinstance(b, Table):
        lines = [f"**{_md_text(b.caption)}**", ""] if b.caption else []
        lines.append("| " + " | ".join(map(_md_cell, b.headers)) + " |")
        lines.append("|" + "---|" * len(b.headers))
        lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in b.rows]
        return "\n".join(lines)
    if isinstance(b, Figure):
        link = f"{link_prefix.rstrip('/')}/{b.name}" if link_prefix else b.name
        # a space (a report named "my report.md") or a bracket ends a Markdown link or its text early
        alt = _md_text(b.caption).replace("[", "\\[").replace("]", "\\]")
        return f"![{alt}]({urllib.parse.quote(link)})"
    if isinstance(b, Terms):
        return "\n".join(f"- **{_md_text(t)}**: {_md_text(d)}" for t, d in b.items)
    raise TypeError(f"unknown block {type(b).__name__}")


def _markdown(blocks: Sequence[Block], image_dir: Path, link_prefix: str, *, prune: bool) -> str:
    """Markdown of ``blocks``; writes each figure to ``image_dir``. ``prune``: also remove the other PNGs
    there (figures of an older report, which would otherwise linger next to the new ones)."""
    image_dir.mkdir(parents=True, exist_ok=True)
    names = set()
    for b in blocks:
        if isinstance(b, Figure):
            atomic_write_bytes(image_dir / b.name, b.png)
            names.add(b.name)
    for old in image_dir.glob("*.png") if prune else ():
        if old.name not in names:
            old.unlink()
    return "\n\n".join(s for s in (_md_block(b, link_prefix) for b in blocks) if s) + "\n"


def render_html(results: AblationResults, analysis: Analysis) -> str:
    """The report of ``results`` as one self-contained HTML page (figures inline, no scripts)."""
    return _html(build_document(results, analysis), f"Ablation study: {results.name}")


def render_markdown(
    results: AblationResults, analysis: Analysis, *, image_dir: Path, link_prefix: str
) -> str:
    """The report as Markdown; its PNG figures are written into ``image_dir`` and linked as
    ``<link_prefix>/<name>.png`` (``link_prefix``: the folder as seen from the Markdown file)."""
    return _markdown(build_document(results, analysis), Path(image_dir), link_prefix, prune=False)


def write_report(
    results: AblationResults,
    *,
    html: Path | None,
    markdown: Path | None,
    alpha: float = 0.05,
    seed: int = 0,
    aso_iterations: int = 1000,
) -> Analysis:
    """Analyse ``results`` and write the HTML and/or Markdown report (each atomically); returns the analysis.

    The Markdown report's figures go to ``<markdown stem>_files/`` next to it; that folder belongs to the
    report, so PNGs of an earlier version of it are removed. The figures are drawn once
    and shared by both formats. ``aso_iterations`` is passed to :func:`~deltatune.report.analysis.analyse`.
    """
    results = with_short_levels(results)  # readable names for levels that are file paths
    analysis = analyse(results, alpha=alpha, seed=seed, aso_iterations=aso_iterations)
    if html is None and markdown is None:
        return analysis
    blocks = build_document(results, analysis)
    if html is not None:
        atomic_write_text(html, _html(blocks, f"Ablation study: {results.name}"))
    if markdown is not None:
        md = Path(markdown)
        image_dir = md.with_name(f"{md.stem}_files")
        atomic_write_text(md, _markdown(blocks, image_dir, image_dir.name, prune=True))
    return analysis
