"""``deltatune inspect``: truncation points, per-layer sparsity, MAC speedup and error vs dense."""

from __future__ import annotations

import argparse
import json
import math

NAME = "inspect"
HELP = "convert a model and report its truncation points, sparsity, MAC speedup and error on a clip"
DESCRIPTION = (
    "Converts a registered model to a delta network, runs it on real frames (default: the vtest sample, "
    "the model's default crop windows as streams) and reports every truncation point (name, op, the dense "
    "MACs of the layers it feeds), per-layer sparsity, the MAC speedup over frames 1..N-1 and the maximum "
    "relative error of the delta output against the dense output."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="registered model name (see `deltatune models`)")
    p.add_argument("--weights", default="default",
                   help="'default', 'none' (random init) or a checkpoint file (default: default)")
    p.add_argument("--video", default=None, help="video file, image folder, or sample name (default: vtest)")
    p.add_argument("--frames", type=int, default=30, help="frames to process (default 30)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="one threshold for every truncation point (default 0)")
    g.add_argument("--thresholds", default=None, metavar="FILE", help="a deltatune thresholds file")
    p.add_argument("--mode", choices=["max", "norm", "rms"], default=None, help="truncation mode (default max)")
    p.add_argument("--fallback", action="store_true", help="run unsupported ops densely instead of failing")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def run(args: argparse.Namespace) -> int:
    from deltatune.errors import ConfigError
    from deltatune.inspection import inspect_model

    if args.threshold is not None and (args.threshold < 0 or not math.isfinite(args.threshold)):
        raise ConfigError(f"--threshold must be a finite number >= 0, got {args.threshold}")
    report = inspect_model(
        args.model,
        weights=None if args.weights == "none" else args.weights,
        video=args.video,
        frames=args.frames,
        threshold=args.threshold,
        thresholds_file=args.thresholds,
        mode=args.mode,
        fallback=args.fallback,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(report.render())
    return 0
