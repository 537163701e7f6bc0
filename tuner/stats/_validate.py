"""Input checks shared by the statistics functions: each raises :class:`ConfigError` with a one-line message.

The statistics are only as good as their input, so bad input (empty, non-numeric, NaN or infinite values,
unequal lengths where pairs are expected, levels outside (0, 1)) is refused up front instead of surfacing
later as a NaN or a scipy traceback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deltatune.errors import ConfigError

__all__ = ["as_sample", "as_pair", "check_fraction", "check_positive_int", "check_margin", "check_names"]


def as_sample(values: Any, name: str, *, min_n: int = 1) -> np.ndarray:
    """``values`` as a 1-D float64 array of at least ``min_n`` finite numbers."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a sequence of numbers") from None
    if arr.ndim != 1:
        raise ConfigError(f"{name}: expected a 1-D sequence of numbers, got shape {arr.shape}")
    if arr.size < min_n:
        raise ConfigError(f"{name}: needs at least {min_n} value(s), got {arr.size}")
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name}: contains NaN or infinite values")
    return arr


def as_pair(a: Any, b: Any, *, paired: bool, min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Both samples checked by :func:`as_sample`; paired samples must also have the same length."""
    x = as_sample(a, "a", min_n=min_n)
    y = as_sample(b, "b", min_n=min_n)
    if paired and x.size != y.size:
        raise ConfigError(f"paired samples need equal lengths, got {x.size} and {y.size}")
    return x, y


def check_fraction(value: float, name: str) -> float:
    """``value`` as a float strictly between 0 and 1 (a confidence level, alpha or power)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise ConfigError(f"{name}: expected a number in (0, 1), got {value!r}")
    return v


def check_positive_int(value: int, name: str) -> int:
    """``value`` as a positive int."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_margin(value: float, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}: expected a finite number {bound}, got {value!r}")
    return v


def check_names(names: Sequence[str]) -> None:
    """Level names must be distinct once turned into text (they index the post-hoc matrix)."""
    texts = [str(n) for n in names]
    if len(set(texts)) != len(texts):
        raise ConfigError(f"groups: level names must be distinct as text, got {texts}")
