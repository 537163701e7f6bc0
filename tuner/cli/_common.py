"""Arguments shared by the subcommands that run a registered model on a clip (inspect, bench)."""

from __future__ import annotations

import argparse
import math

from deltatune.errors import ConfigError

__all__ = ["add_model_clip_arguments", "add_threshold_arguments", "check_threshold"]


def add_model_clip_arguments(p: argparse.ArgumentParser, *, frames: int, frames_help: str) -> None:
    """``--model``, ``--weights``, ``--video``, ``--frames``."""
    p.add_argument("--model", required=True, help="registered model name (see `deltatune models`)")
    p.add_argument("--weights", default="default",
                   help="'default', 'none' (random init) or a checkpoint file (default: default)")
    p.add_argument("--video", default=None, help="video file, image folder, or sample name (default: vtest)")
    p.add_argument("--frames", type=int, default=frames, help=f"{frames_help} (default {frames})")


def add_threshold_arguments(p: argparse.ArgumentParser) -> None:
    """``--threshold T`` or ``--thresholds FILE`` (mutually exclusive)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="one threshold for every truncation point (default 0)")
    g.add_argument("--thresholds", default=None, metavar="FILE", help="a deltatune thresholds file")


def check_threshold(value: float | None) -> None:
    """One clear error for a negative or non-finite ``--threshold``."""
    if value is not None and (value < 0 or not math.isfinite(value)):
        raise ConfigError(f"--threshold must be a finite number >= 0, got {value}")
