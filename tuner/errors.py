"""Exception types of deltatune.

Library code never prints or exits; it raises one of these with a one-line message that names the
input and what is wrong. The CLI turns any :class:`DeltatuneError` into that single line on stderr and
a non-zero exit code (a traceback only with ``--debug``).
"""

from __future__ import annotations

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
