"""``deltatune compare``: run a shipped strategy comparison (``studies/*.toml``) and tabulate it."""

from __future__ import annotations

import argparse
import json
import math

NAME = "compare"
HELP = "run every strategy of a study file at equal trial budgets and compare their fronts"
DESCRIPTION = (
    "Reads a study file (TOML, see studies/), runs each listed strategy as its own resumable Optuna study "
    "on the same workload with the same number of trials, and prints per strategy the best speedup within "
    "the accuracy budget (tuning and held-out frames) and the hypervolume of its front."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="study file, e.g. studies/hrnet_strategies.toml")
    p.add_argument("--trials", type=int, default=None, help="override the trials per strategy")
    p.add_argument("--storage-dir", default=None, help="folder for the journal files (default: results dir)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def run(args: argparse.Namespace) -> int:
    import sys

    from deltatune.errors import ConfigError
    from deltatune.search.compare import load_comparison, run_comparison

    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: need at least 1")
    comp = load_comparison(args.file)
    bar = None
    if not args.no_progress and not args.json:
        from tqdm import tqdm

        total = (args.trials or comp.trials) * len(comp.strategies)
        bar = tqdm(total=total, desc=comp.name, unit="trial", file=sys.stderr)
    try:
        res = run_comparison(comp, trials=args.trials, storage_dir=args.storage_dir,
                             on_progress=(lambda s, k: bar.update(1)) if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(res.to_dict(), indent=2, default=float))
        return 0
    for n in res.notices:
        print(f"note: {n}")
    print(f"{comp.name}: {comp.model} on {comp.video}, budget {comp.budget} PCK points, "
          f"{args.trials or comp.trials} trials per strategy")
    print(f"{'strategy':<16} {'trials':>6} {'feasible':>8} {'speedup@budget':>14} {'loss':>6} "
          f"{'held-out speedup':>16} {'held-out loss':>13} {'hypervolume':>11}")
    for r in res.table.itertuples():
        print(f"{r.strategy:<16} {r.trials:>6} {r.feasible:>8} {_fmt(r.best_speedup, '.2f'):>14} "
              f"{_fmt(r.best_loss, '.2f'):>6} {_fmt(r.heldout_speedup, '.2f'):>16} "
              f"{_fmt(r.heldout_loss, '.2f'):>13} {_fmt(r.hypervolume, '.3f'):>11}")
    return 0
