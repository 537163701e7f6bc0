"""``deltatune export``: write a search trial's thresholds as a thresholds file.

deltatune export [--study NAME] (--trial N | --best-under X) [-o FILE] [--format deltatune|deltacnn]
                 [--storage URL]
"""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a search trial's thresholds (deltatune or DeltaCNN format)"
DESCRIPTION = (
    "Write the thresholds of one trial of a `deltatune search` study: --trial N, or --best-under X for the "
    "fastest trial losing at most X accuracy points (PCK or top-1). The deltatune format (default) stores "
    "names, mode and input dilation and loads with DeltaNetwork.load_thresholds / inspect / bench; the "
    'deltacnn format is DeltaCNN\'s {"0": t0, ...} in execution order.'
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune export --study hrnet-tpe-group --best-under 1.0 -o thresholds.json",
    "deltatune export --study hrnet-tpe-group --trial 12 --format deltacnn -o deltacnn.json",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deltatune export``."""
    parser.add_argument("--study", default=None,
                        help="study name (may be left out when --storage holds one search study)")
    parser.add_argument(
        "--storage", default=None,
        help="storage URL/path (default ./deltatune-results/<study>.journal; $DELTATUNE_RESULTS sets "
        "the folder)",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="trial number")
    which.add_argument("--best-under", type=float, metavar="X", help="fastest trial with accuracy loss <= X")
    parser.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="output file (default <study>-trial<N>.json)"
    )
    parser.add_argument("--format", default="deltatune", help="deltatune (default) or deltacnn")


def run(args: argparse.Namespace) -> int:
    """Export and say what was written."""
    from deltatune.cli._common import check_output_path
    from deltatune.cli.pareto import open_named_study
    from deltatune.errors import ConfigError, non_negative

    if args.best_under is not None:  # before the study is read and torch imported (select_trial's rule)
        _, ok, must = non_negative(args.best_under)
        if not ok:
            raise ConfigError(f"--best-under {args.best_under}: must be {must} (accuracy points)")
    from deltatune.search import export_trial

    if args.output:
        check_output_path(args.output, "-o", suffixes=(".json",))
    _, study, args.study = open_named_study(args.study, args.storage)
    from deltatune.search.export import default_export_path, select_trial

    chosen = select_trial(study, trial=args.trial, best_under=args.best_under)  # once: export gets its number
    out = args.output
    if not out:  # the default name needs the trial: checked as -o would be, before anything is written
        out = check_output_path(default_export_path(study, chosen.number), "the default output (no -o)")
    res = export_trial(study, out, trial=chosen.number, format=args.format)
    from deltatune.search.objective import MAC_SPEEDUP_CAP, SPEED_NAMES, model_loss_unit
    from deltatune.search.pareto import study_meta
    from deltatune.search.retime import stored_retimings

    meta = study_meta(study)
    unit = model_loss_unit(str(meta.get("model")))
    kind = SPEED_NAMES.get(str(meta.get("speed")), "")
    timed = [r for r in stored_retimings(study) if r.trial == res.trial]
    measured = "" if not timed else (
        f" (re-timed: measured {timed[0].measured:.2f}x [{timed[0].ci_low:.2f}, {timed[0].ci_high:.2f}])")
    print(
        f"trial {res.trial}: {kind + ' ' if kind else ''}speedup {res.speedup:.3f}x{measured}, accuracy loss "
        f"{res.accuracy_loss:.4f} {unit} -> {res.path} ({res.format})"
    )
    if meta.get("speed") == "macs" and res.speedup == MAC_SPEEDUP_CAP:
        print(f"note: {MAC_SPEEDUP_CAP:g}x is the cap of a MAC speedup: on its tuning frames trial "
              f"{res.trial} did (almost) no multiply-adds, so its speed there says little about other video")
    budget = meta.get("budget")
    if isinstance(budget, (int, float)) and res.accuracy_loss > budget:
        print(f"note: trial {res.trial} loses more than the search's budget of {budget:g} {unit}: it is not "
              "one of the settings the search offers (`--best-under X` exports the fastest within X)")
    if res.weights is not None:
        from deltatune.search.export import finetuned_model

        arch = finetuned_model(str(meta.get("model")), (meta.get("workload") or {}).get("weights"))
        print(f"the trial ran fine-tuned weights, copied to {res.weights}: run them with --model {arch} "
              f"--weights {res.weights}")
    return 0
