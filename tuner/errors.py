"""Exception types of deltatune.

Library code never prints or exits; it raises one of these with a one-line message that names the
input and what is wrong. The CLI turns any :class:`DeltatuneError` into that single line on stderr and
a non-zero exit code (a traceback only with ``--debug``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

__all__ = [
    "DeltatuneError",
    "UnsupportedOpError",
    "ThresholdError",
    "StreamError",
    "VideoError",
    "DataFetchError",
    "WeightsError",
    "ModelNotFoundError",
    "LabelError",
    "ConfigError",
    "missing_file",
    "causes",
    "Rule",
    "positive",
    "non_negative",
    "at_least",
    "check_ranges",
]


class DeltatuneError(Exception):
    """Base class: an error caused by the user's input or environment, reported in one line."""


class UnsupportedOpError(DeltatuneError):
    """The model contains an operation the delta engine cannot convert."""


class ThresholdError(DeltatuneError):
    """A threshold mapping or file does not fit the model (missing/extra names, bad values)."""


class StreamError(DeltatuneError):
    """A frame does not fit the running stream (batch size or resolution changed)."""


class VideoError(DeltatuneError):
    """A video file or image folder is missing, unreadable or corrupt."""


class DataFetchError(DeltatuneError):
    """Sample data or weights could not be fetched (offline, package missing, checksum mismatch)."""


class WeightsError(DeltatuneError):
    """A checkpoint does not load into the model (missing/unexpected keys, wrong shapes)."""


class ModelNotFoundError(DeltatuneError):
    """No model is registered under the requested name."""


class LabelError(DeltatuneError):
    """A label file (COCO keypoints JSON, CSV) is malformed."""


class ConfigError(DeltatuneError):
    """An option has an invalid value (unknown mode, backend, strategy, negative budget ...)."""


def missing_file(path: object) -> str:
    """Why ``path`` is not a readable file, for an error message: a folder given where a file belongs is
    said to be one (``no such file`` would send the user looking for something that exists)."""
    from pathlib import Path

    return "a folder, not a file" if Path(str(path)).is_dir() else "no such file"


#: a setting's value, whether it is allowed, and what it must be (for the error message)
Rule = tuple[object, bool, str]


def positive(value: float) -> Rule:
    """A finite number > 0 (a learning rate): NaN and infinity fail (``value > 0`` alone lets infinity
    through)."""
    return value, math.isfinite(value) and value > 0, "a finite number > 0"


def non_negative(value: float) -> Rule:
    """A finite number >= 0 (a weight decay, a penalty weight, a threshold)."""
    return value, math.isfinite(value) and value >= 0, "a finite number >= 0"


def at_least(value: int, bound: int) -> Rule:
    """A count of at least ``bound``."""
    return value, value >= bound, f"at least {bound}"


def check_ranges(what: str, rules: Mapping[str, Rule]) -> None:
    """Raise one :class:`ConfigError` naming every setting of ``what`` that breaks its rule, with its value
    and what it must be (``invalid fine-tuning settings: --lr -1.0 (must be a finite number > 0)``), before
    any model work; an infinite weight decay would otherwise train to NaN weights without a word."""
    bad = [f"{name} {value} (must be {must})" for name, (value, ok, must) in rules.items() if not ok]
    if bad:
        raise ConfigError(f"invalid {what}: {'; '.join(bad)}")


def causes(exc: BaseException, *, past_from_none: bool = False) -> Iterator[BaseException]:
    """``exc``, then the exception it was raised from (``raise ... from``) or while handling, and so on,
    each once. A ``raise ... from None`` ends the chain there unless ``past_from_none``: a handler that
    cut it said the earlier error is not the cause (the check for a full disk looks past it all the same:
    whatever a library made of it, a full disk is what the user has to mend)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or (None if e.__suppress_context__ and not past_from_none else e.__context__)
