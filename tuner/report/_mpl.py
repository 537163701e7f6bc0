"""matplotlib as every drawing of deltatune uses it: the Agg backend (no display), and labels drawn as
plain text.

Labels carry names from the user's data (a metric "price $5-$10", a level "$x^$"); with mathtext on,
matplotlib reads text between dollar signs as TeX and fails on it. :func:`plain_text` turns mathtext off
for the figures a function draws, without touching the caller's own settings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["pyplot", "plain_text"]

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

        with matplotlib.rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
