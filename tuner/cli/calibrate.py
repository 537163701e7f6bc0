"""``deltatune calibrate``: measure this machine's layer costs for a model and write the calibration table."""

from __future__ import annotations

import argparse
import sys

from deltatune.cli._common import add_model_clip_arguments, add_no_progress, json_text

NAME = "calibrate"
HELP = "measure this machine's dense and sparse conv costs for a model (the sparse backend's table)"
DESCRIPTION = (
    "Converts a registered model with the sparse backend, finds the input shape of every conv layer on "
    "real frames (default: the vtest sample, the model's crop windows as a batch of --batch streams), "
    "times the dense conv and the sparse kernel at several updated fractions for each shape, and writes "
    "the costs to this machine's calibration table (one file per torch version, thread count, device and "
    "processor, under the data dir). The sparse backend then picks sparse or dense per call from "
    "these costs. Shapes already in the table are kept unless --force. `bench`, `search --speed "
    "measured|latency` and `ablate` calibrate the shapes they lack by themselves; plain inference never "
    "times anything. Use the same --threads as the runs it is for."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune calibrate --model hrnet",
    "deltatune calibrate --model mobilenet_v2 --threads 1 --force",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_clip_arguments(p, frames=2, frames_help="frames decoded (only their shape matters)")
    p.add_argument("--batch", type=int, default=1, help="streams (crop windows) per batch (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per layer shape (default 5)")
    p.add_argument("--force", "--recalibrate", dest="force", action="store_true",
                   help="measure shapes already in the table again (as `bench --recalibrate` does)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from deltatune.delta import convert
    from deltatune.delta.calibration import calibrate
    from deltatune.delta.sparse import SparseBackend
    from deltatune.errors import ConfigError
    from deltatune.workload import crop_windows, plan_workload, refuse_detector

    refuse_detector(args.model, "`deltatune calibrate`")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {args.batch}")
    if args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {args.repeats}")
    plan = plan_workload(args.model, weights=None if args.weights == "none" else args.weights,
                         video=args.video, frames=args.frames)
    if args.batch > plan.n_streams:  # known from the windows: said before any frame is decoded
        raise ConfigError(
            f"--batch {args.batch} exceeds the {crop_windows(plan.n_streams)} of this video"
        )
    wl = plan.decode()
    backend = SparseBackend()
    net = convert(wl.model, backend=backend, record_stats=False)
    stored = set() if args.force else set(backend.calibration.layers)
    table = calibrate(net, wl.frames[0, : args.batch].contiguous(), force=args.force, repeats=args.repeats,
                      progress=not (args.json or args.no_progress))
    path = backend.calibration.path
    from deltatune._workers import oversubscribed
    from deltatune.bench import BREAK_EVEN_NOTE

    if crowded := oversubscribed(args.threads):  # the table would price every later run at this contention
        print(f"warning: {crowded}", file=sys.stderr)
    if args.json:
        print(json_text({"table": str(path), "threads": torch.get_num_threads(),
                         "layers": [c.to_dict() for c in table.values()]}))
        return 0
    reused = sum(sig in stored for sig in table)
    print(f"{len(table)} conv layer shapes of {args.model} (batch {args.batch}, {torch.get_num_threads()} "
          f"threads) in {path}: {len(table) - reused} measured now"
          + (f", {reused} as the table held them (--force measures them again)" if reused else ""))
    print(f"{'layer shape':<64} {'dense ms':>9} {'sparse ms at f':>16} {'break-even':>10}")
    for c in table.values():
        line = ("dense only" if c.sparse_fixed_ms == float("inf")
                else f"{c.sparse_fixed_ms:.3f}+{c.sparse_slope_ms:.3f}f")
        print(f"{c.signature:<64} {c.dense_ms:>9.3f} {line:>16} {c.break_even:>10.2f}")
    print(f"sparse ms at f: the sparse kernel's cost a + b f at an updated fraction f of the output pixels; "
          f"{BREAK_EVEN_NOTE}")
    return 0
