"""Arguments shared by the subcommands that run a registered model on a clip (inspect, bench, search)."""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deltatune.errors import ConfigError

__all__ = ["add_model_clip_arguments", "add_window_argument", "parse_windows", "add_threshold_arguments",
           "check_threshold", "add_no_progress", "check_output_path", "PLOT_SUFFIXES", "WEIGHTS_SUFFIXES",
           "json_text"]


def add_model_clip_arguments(p: argparse.ArgumentParser, *, frames: int | None, frames_help: str) -> None:
    """``--model``, ``--weights``, ``--video``, ``--frames`` (``frames=None``: default to the end)."""
    p.add_argument(
        "--model", required=True, help="registered model name (see `deltatune models`); your own: "
        "DELTATUNE_MODELS=my_nets.py (README, Your own model)",
    )
    p.add_argument("--weights", default="default",
                   help="'default', 'none' (random init) or a checkpoint file (default: default)")
    p.add_argument("--video", default=None, help="video file, image folder, or sample name (default: vtest)")
    default = "to the end of the video" if frames is None else frames
    p.add_argument("--frames", type=int, default=frames, help=f"{frames_help} (default {default})")


def add_start_argument(p: argparse.ArgumentParser) -> None:
    """``--start N``: the clip's first frame in the video (a late start seeks; it does not decode the
    frames before it)."""
    p.add_argument("--start", type=int, default=0, metavar="N",
                   help="first frame of the clip in the video (default 0), e.g. a segment a search never saw")


def add_window_argument(p: argparse.ArgumentParser) -> None:
    """``--window X,Y,W,H`` (repeatable): the crops of the video that are the model's input streams."""
    p.add_argument("--window", action="append", default=None, metavar="X,Y,W,H",
                   help="a crop window of the video in pixels (of the upright frame), one stream each; "
                        "repeat it for more streams (default: the sample's windows; the whole frame of other "
                        "video)")


def parse_windows(values: list[str] | None) -> list[Any] | None:
    """``--window`` values as :class:`~deltatune.data.video.CropWindow` s (``None`` when not given); a
    malformed one is a one-line :class:`~deltatune.errors.VideoError`."""
    from deltatune.data.video import parse_window

    return None if values is None else [parse_window(w) for w in values]


def add_threshold_arguments(p: argparse.ArgumentParser) -> None:
    """``--threshold T`` or ``--thresholds FILE`` (mutually exclusive)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="one threshold for every truncation point (default 0)")
    g.add_argument("--thresholds", default=None, metavar="FILE",
                   help="a thresholds file (deltatune's, from `deltatune export`, or DeltaCNN's format)")


def add_no_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress``, the same on every command that shows a progress bar (on stderr)."""
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def check_threshold(value: float | None, flag: str = "--threshold") -> None:
    """One clear error, naming the option ``flag``, for a negative or non-finite threshold."""
    if value is not None and (value < 0 or not math.isfinite(value)):
        raise ConfigError(f"{flag} must be a finite number >= 0, got {value}")


def check_threshold_arguments(args: argparse.Namespace) -> None:
    """:func:`add_threshold_arguments`' options checked before a model is built: ``--threshold``'s
    value, and that ``--thresholds FILE`` is a thresholds file any network could load."""
    check_threshold(args.threshold)
    if args.thresholds is not None:
        from deltatune.delta.thresholds import check_thresholds_file

        check_thresholds_file(args.thresholds)


#: File suffixes of the weights files the training commands write (``--out``): torch's.
WEIGHTS_SUFFIXES = (".pt", ".pth")

#: File suffixes matplotlib writes (``--plot``).
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps", ".ps")


def check_output_path(path: str | Path, option: str, *, suffixes: tuple[str, ...] | None = None) -> Path:
    """One clear error, before any work, for an output file that cannot be written: a folder, a folder
    that cannot be created or written, or (with ``suffixes``) a file type we do not write. Nothing is
    created: a missing folder is made when the output is written (:mod:`deltatune._atomic`), so a command
    refused after this check leaves no empty folder behind."""
    from deltatune._atomic import existing_ancestor

    p = Path(path)
    if p.is_dir():  # first: a folder is the problem whatever its name ends with
        raise ConfigError(f"{option} {path}: is a folder; give a file name")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} {path}: unsupported file type {p.suffix or '(none)'!r}; use one of "
                          f"{', '.join(suffixes)}")
    parent = p.parent if str(p.parent) else Path(".")
    above = existing_ancestor(parent)
    if not above.is_dir():
        raise ConfigError(f"{option} {path}: cannot create {parent} ({above} is a file)")
    try:  # the one sure test: create (and remove) a file in the folder the output will go into or under
        fd, probe = tempfile.mkstemp(dir=above, prefix=f".{p.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write there ({exc.strerror})") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{option} {path}: not writable")
    return p


def refuse_writing_the_input(
    video: str | None, outputs: dict[str, str | Path | None], *, given: str | None = None
) -> None:
    """An output (``{option: path}``) in place of the input video (``--video``, given as a path, a link,
    or a sample's name) would destroy it when the run ends: one line instead, before any work. So would
    an image (a ``--plot F.png``) written into an input image folder (or its single image): it would
    replace one of its frames, or add one, so that the folder no longer holds the video it held. ``given``:
    how the command line named the video, when not ``--video VIDEO`` (``--frames vtest:0-99``)."""
    from deltatune.data.video import IMAGE_SUFFIXES
    from deltatune.errors import DeltatuneError
    from deltatune.workload import resolve_video

    try:
        source = resolve_video(video)[0]
    except DeltatuneError:  # a sample not fetched yet, say: the command says so itself, and nothing is there
        return
    said = given or f"--video {video or 'vtest'}"
    if source.is_dir():  # its images are the frames (a MOT sequence's root holds none: img1/ does)
        folder = source.resolve()
        if not any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir()):
            return
        for option, out in outputs.items():
            if out and Path(out).suffix.lower() in IMAGE_SUFFIXES and Path(out).resolve().parent == folder:
                what = "one of the frames" if Path(out).exists() else "a new frame"
                raise ConfigError(f"{option} {out}: would be {what} of the input image folder ({said}); "
                                  "write it outside that folder")
        return
    if not source.is_file():
        return
    for option, out in outputs.items():
        if out and Path(out).resolve() == source.resolve():
            raise ConfigError(f"{option} {out}: is the input video ({said}); give another file name")


def _finite(v: object) -> object:
    """``v`` with every non-finite float (an infinite MAC speedup of a clip where nothing changed, a NaN
    statistic) replaced by ``None``, recursively."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def json_text(obj: object, *, default: Callable[[Any], Any] = float) -> str:
    """``obj`` as standard JSON for ``--json``: non-finite numbers become ``null`` (Python's ``Infinity``
    and ``NaN`` tokens are not JSON; jq and browsers reject them); values JSON lacks (numpy numbers) go
    through ``default``."""
    return json.dumps(_finite(json.loads(json.dumps(obj, default=default))), indent=2, allow_nan=False)
