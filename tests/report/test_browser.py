"""The HTML report in a real browser (headless Chromium): no console errors, plots visible.

Skipped when Chromium is missing, except with ``CI=true`` where it fails (see :mod:`tests.report.browser`).
The checks are first shown able to fail, on a deliberately broken page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deltatune.report.render import render_html
from tests.report import browser
from tests.report.browser import check_page, chromium_or_skip, coloured_pixels

#: Coloured pixels a screenshot of the report must show: its plots give ~10 000 in the top 3000 px; the
#: same page without its images, or a page of text, gives (almost) none.
MIN_COLOURED = 5_000

_BAD = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>bad</title></head>
<body><h1>A broken page</h1><p>text only</p>
<img src="missing-figure.png" alt="missing file">
<img src="data:image/png;base64,iVBORw0KGgoAAAAAAAA=" alt="truncated PNG">
<script>console.error("deliberate console error");</script>
</body></html>
"""


def test_check_catches_a_broken_page(tmp_path: Path) -> None:
    chromium_or_skip()
    bad = tmp_path / "bad.html"
    bad.write_text(_BAD, encoding="utf-8")
    result = check_page(bad, tmp_path)
    assert result.images == 2  # the probe ran and saw both images
    assert "deliberate console error" in result.errors
    assert sum(e.startswith("broken image") for e in result.errors) == 2
    assert coloured_pixels(result.screenshot) < MIN_COLOURED


@pytest.mark.slow  # the three_by_two report fixture takes ~20 s on 2 cores, plus Chromium
def test_report_renders_without_errors_and_shows_its_plots(three_by_two, tmp_path: Path) -> None:
    chromium_or_skip()
    results, analysis = three_by_two
    page = tmp_path / "report.html"
    page.write_text(render_html(results, analysis), encoding="utf-8")
    result = check_page(page, tmp_path, window=(1400, 3000))
    assert result.errors == [], result.errors
    assert result.images is not None and result.images >= 4
    assert coloured_pixels(result.screenshot) >= MIN_COLOURED
    # the same page without its images falls below the bar: the count measures the plots
    text_only = tmp_path / "text-only.html"
    text_only.write_text(re.sub(r"<img [^>]*>", "", page.read_text(encoding="utf-8")), encoding="utf-8")
    bare = check_page(text_only, tmp_path, window=(1400, 3000))
    assert bare.errors == [] and bare.images == 0
    assert coloured_pixels(bare.screenshot) < MIN_COLOURED / 10


def test_missing_chromium_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser, "CANDIDATES", ())
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chromium_or_skip()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        chromium_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        chromium_or_skip()
