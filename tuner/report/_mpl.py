"""matplotlib as every drawing of deltatune uses it: the Agg backend (no display), and labels drawn as
plain text.

Labels carry names from the user's data (a metric "price $5-$10", a level "$x^$"); with mathtext on,
matplotlib reads text between dollar signs as TeX and fails on it. :func:`plain_text` turns mathtext off
for the figures a function draws, without touching the caller's own settings. Names in a script the plot
font lacks (Chinese factor names, with only DejaVu Sans installed) draw as empty boxes, and matplotlib
warned once per character and figure, dozens of lines for one report: :func:`plain_text` says it once
per character and process instead, with what to do.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["pyplot", "plain_text"]

log = logging.getLogger(__name__)

#: matplotlib's warning for a character its fonts lack:
#: ``Glyph 31934 (...) missing from font(s) DejaVu Sans.``
_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from (?:current )?font(?:\(s\))? ?(.*?)\.?$")
#: characters already said to be missing, in this process
_SAID_MISSING: set[str] = set()

F = TypeVar("F", bound=Callable[..., Any])


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (unless a backend was chosen already)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plain_text(fn: F) -> F:
    """Run ``fn`` with matplotlib's mathtext off (``text.parse_math``), so that every text it draws shows
    as written, dollar signs included."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                with matplotlib.rc_context({"text.parse_math": False}):
                    return fn(*args, **kwargs)
        finally:  # outside the recording: the other warnings go where they would have gone
            _say_missing_glyphs(caught)

    return wrapper  # type: ignore[return-value]


def _say_missing_glyphs(caught: list[warnings.WarningMessage]) -> None:
    """Say once which characters the plot font lacks (new ones only), and pass every other warning on."""
    missing: dict[str, str] = {}
    for w in caught:
        m = _MISSING_GLYPH.match(str(w.message))
        if m is None:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
            continue
        char = chr(int(m.group(1)))
        if char not in _SAID_MISSING:
            missing.setdefault(char, m.group(2) or "the plot font")
    if missing:
        _SAID_MISSING.update(missing)
        fonts = ", ".join(dict.fromkeys(missing.values()))
        log.warning(
            "plots: %s (matplotlib's font) has no glyph for %s, drawn as empty boxes; to see them, set "
            "matplotlib's font.sans-serif (matplotlibrc) to a font that has them, such as Noto Sans CJK",
            fonts, " ".join(missing),
        )
