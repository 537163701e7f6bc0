"""``deltatune pareto``: the Pareto front of a search study, its hypervolume, a CSV and a plot.

deltatune pareto [--study NAME ...] [--storage URL] [--csv F] [--plot F.png] [--heldout] [--json]
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from typing import Any

from deltatune.cli._common import json_text

NAME = "pareto"
HELP = "show the accuracy/speedup Pareto front of a search study (table, CSV, plot)"
DESCRIPTION = (
    "Print the Pareto front of feasible trials (minimise accuracy loss, maximise speedup) of a `deltatune"
    " search` study and its hypervolume: the area in PCK points x speedup that the front dominates up to "
    "the reference point (loss = the study's budget, speedup = 1), then the front points the search "
    "re-timed (measured speedup with its CI) and the recommendation (the fastest measured within the "
    "budget). --csv writes every trial (long-form), --plot draws all trials with the front, the re-timed "
    "points, infeasible trials and the budget line, above a per-layer threshold heatmap of the front. "
    "--heldout re-scores front trials on the held-out frames where that was not done yet. With several "
    "--study, the studies side by side (e.g. two strategies on one workload): one row each with its "
    "hypervolume up to the smallest of their budgets, the fastest front point within it and the "
    "recommended re-timed trial; --plot overlays their fronts, --csv holds every trial with its study. "
    "Studies in other accuracy units or speed kinds are refused; other differences (workload, budget, "
    "weights) are noted."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune pareto --study hrnet-tpe-group --plot front.png",
    "deltatune pareto --study hrnet-tpe-group --heldout --csv front.csv",
    "deltatune pareto --study hrnet-tpe-group --study hrnet-nsga2-group --plot fronts.png",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deltatune pareto``."""
    parser.add_argument("--study", default=None, action="append",
                        help="study name (may be left out when --storage holds one search study); give "
                             "--study again with other names to compare studies (a name given twice is one)")
    parser.add_argument(
        "--storage", default=None,
        help="storage URL/path (default ./deltatune-results/<study>.journal; $DELTATUNE_RESULTS sets "
        "the folder)",
    )
    parser.add_argument("--csv", default=None, metavar="F",
                        help="write all trials to this CSV file (the re-timed ones with their measured "
                        "speedup, its CI and the host)")
    parser.add_argument(
        "--plot", default=None, metavar="F.png", help="write the trade-off plot + threshold heatmap"
    )
    parser.add_argument("--heldout", action="store_true", help="re-score the front on the held-out frames")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def open_named_study(study: str | None, storage: str | None) -> tuple[Any, Any, str]:
    """``(storage spec, study, its name)`` of ``--study`` / ``--storage``. Without ``--study``, a
    ``--storage`` that holds one search study opens that one; otherwise the error lists the studies
    (or, without ``--storage``, the journals of the results folder) to choose from."""
    from pathlib import Path

    from deltatune.errors import ConfigError
    from deltatune.search import open_study, resolve_storage
    from deltatune.search.pareto import META_KEY
    from deltatune.search.storage import check_stored, only_study, results_dir, shown_url

    if study is None and storage is None:
        found = sorted(p.stem for p in results_dir().glob("*.journal"))
        where = (f"studies in {results_dir()}: {', '.join(found)}" if found
                 else f"no study journal in {results_dir()}; --storage names where one lives")
        raise ConfigError(f"--study: name the search study ({where})")
    spec = resolve_storage(storage, study or "study")  # with --storage, the URL alone says where
    if spec.kind == "journal" and not Path(spec.url).is_file():
        raise ConfigError(f"--storage {shown_url(str(storage))}: no such journal file" if study is None else
                          f"--study {study}: no journal at {spec.url} (pass --storage where the study lives)")
    if spec.kind == "rdb":
        check_stored(spec.url, f"--storage {shown_url(spec.url)}")
    if study is None:
        from deltatune.ablation.store import META_KEY as ABLATION_KEY

        ablation = ("ablation", ABLATION_KEY, "deltatune report", "reports one")
        study = only_study(spec.open(), spec.url, kind="search", attr=META_KEY, other=ablation)
    return spec, open_study(spec, study, create=False), study


def _running_note(study: Any) -> str | None:
    """Trials of the study still RUNNING: a search is at work on it (its front, held-out scores and
    re-timings are not final), or a worker died and the next search run retries them. Silent before,
    a study mid-search read as finished."""
    from optuna.trial import TrialState

    n = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    if not n:
        return None
    return (f"note: {n} trial{'s' * (n != 1)} still running: a search is at work on this study (the front, "
            "held-out scores and re-timings shown are those so far), or its worker died (the next search "
            "run retries them)")


def run(args: argparse.Namespace) -> int:
    """Print the front; write the CSV / plot when asked."""
    from deltatune.cli._common import PLOT_SUFFIXES, check_output_path
    from deltatune.cli.search import front_table, retimed_table
    from deltatune.search import hypervolume
    from deltatune.search.retime import unfinished_retiming
    from deltatune.search.storage import shown_url

    if args.csv:
        check_output_path(args.csv, "--csv", suffixes=(".csv",))
    if args.plot:
        check_output_path(args.plot, "--plot", suffixes=PLOT_SUFFIXES)
    names = list(dict.fromkeys(args.study or []))  # a name given twice is one study
    if len(names) > 1:
        return _compare(args, names)
    spec, study, args.study = open_named_study(names[0] if names else None, args.storage)
    view = _with_heldout(study, StudyView.read(study)) if args.heldout else StudyView.read(study)
    budget, unit, df, front = view.budget, view.unit, view.df, view.front
    retimed, best = view.retimed, view.recommended
    hv = hypervolume(front, ref_loss=budget)
    cut = unfinished_retiming(study)
    if args.csv:
        from deltatune._atomic import atomic_write

        table = _with_settings(_with_measured(df, retimed), study)
        atomic_write(args.csv, lambda p: table.to_csv(p, index=False))
    if args.plot:
        save_study_plot(study, view, args.study, args.plot)
    if args.json:
        rows = front.to_dict(orient="records")
        print(
            json_text(
                {
                    "study": args.study,
                    "storage": shown_url(spec.url),
                    "n_trials": len(df),
                    "budget": budget,
                    "hypervolume": hv,
                    "hypervolume_reference": [budget, 1.0],
                    "pareto": rows,
                    "retimed": retimed,
                    # the trials the last re-timing planned but did not time (killed part-way), else null
                    "retime_unfinished": None if cut is None else {"host": cut[0], "missing": cut[1],
                                                                   "planned": cut[2]},
                    "recommended": best,
                    "csv": args.csv,
                    "plot": args.plot,
                },
                default=str,
            )
        )
        return 0
    n_feas = int(df["feasible"].sum()) if not df.empty else 0
    print(
        f"study {args.study}: {len(df)} complete trials ({n_feas} feasible at budget {budget} {unit}), "
        f"storage {shown_url(spec.url)}"
    )
    running = _running_note(study)
    if running:
        print(running)
    segments = _segments_line(view.meta)
    if segments:
        print(segments)
    if front.empty:
        print("no feasible trial")
    else:
        print(front_table(front, unit))
        print(f"hypervolume {hv:.4f} ({unit} x speedup; reference point loss={budget}, speedup=1)")
    if retimed:
        hosts = sorted({str(r["host"]) for r in retimed})
        print(f"\nre-timed by the search on {', '.join(hosts)} (interleaved dense/delta rounds, tuning "
              "frames; the median and the order-statistic CI of the median):")
        print(retimed_table(retimed))
    if cut is not None:
        host, missing, planned = cut
        print(f"note: the search's re-timing on {host} stopped after {planned - len(missing)} of {planned} "
              f"front points (not re-timed: trial{'' if len(missing) == 1 else 's'} "
              f"{', '.join(map(str, missing))}): a recommendation rests on those it timed only; the same "
              f"search command with --study {shlex.quote(args.study)} --finish re-times the rest")
    if best is not None:
        print(f"\nrecommended: trial {best['trial']}: measured speedup {best['measured']:.2f}x "
              f"[{best['ci_low']:.2f}, {best['ci_high']:.2f}] at {best['accuracy_loss']:.3f} {unit} lost "
              "(the fastest re-timed trial within the budget)")
        if best["ci_high"] < 1.0:  # as search says it: the whole interval is below dense
            print(f"note: slower than the dense model: the whole interval is below 1x (up to "
                  f"{best['ci_high']:.2f}x); run the dense model, or `deltatune bench` on your frames")
        elif best["ci_low"] <= 1.0:  # the interval does not rule out running slower
            print(f"note: not measurably faster than the dense model: the interval reaches "
                  f"{best['ci_low']:.2f}x; `deltatune bench` on your frames says whether to run it dense")
        storage = f" --storage {shlex.quote(shown_url(args.storage))}" if args.storage else ""
        print(f"export it:   deltatune export --study {shlex.quote(args.study)}{storage} "
              f"--trial {best['trial']} -o thresholds.json")
    for what, path in (("csv", args.csv), ("plot", args.plot)):
        if path:
            print(f"{what}: {path}")
    return 0


def _compare(args: argparse.Namespace, names: list[str]) -> int:
    """``pareto --study A --study B ...``: the studies side by side (see :mod:`deltatune.search.compare`)."""
    import pandas as pd

    from deltatune.search.compare import (
        StudyFront,
        check_comparable,
        fronts_frame,
        reference_loss,
        summary_frame,
    )
    from deltatune.search.storage import shown_url

    opened = [open_named_study(name, args.storage) for name in names]  # every name checked before work
    fronts = []
    for _, study, name in opened:
        view = _with_heldout(study, StudyView.read(study)) if args.heldout else StudyView.read(study)
        trials = _with_measured(view.df, view.retimed)
        fronts.append(StudyFront(name, view.meta, view.unit, trials, view.front, view.recommended))
    notes = check_comparable(fronts)
    ref, unit = reference_loss(fronts), fronts[0].unit
    table = summary_frame(fronts)
    if args.csv:
        from deltatune._atomic import atomic_write

        every = pd.concat([_with_settings(f.trials, study).assign(study=f.name)
                           for f, (_, study, _) in zip(fronts, opened, strict=True)], ignore_index=True)
        every = every[["study", *[c for c in every.columns if c != "study"]]]
        atomic_write(args.csv, lambda p: every.to_csv(p, index=False))
    if args.plot:
        from deltatune.report.pareto_plot import save_fronts_figure

        speed = speed_label(fronts[0].meta)
        cols = ["accuracy_loss", "measured", "ci_low", "ci_high"]
        measured = pd.DataFrame([{"study": f.name, **{c: f.recommended[c] for c in cols}}
                                 for f in fronts if f.recommended is not None], columns=["study", *cols])
        save_fronts_figure(fronts_frame(fronts), args.plot, order=names, budget=ref,
                           title=f"Pareto fronts of {len(names)} studies",
                           loss_label=f"accuracy loss ({unit} vs dense)", speed_label=speed,
                           measured=measured)
    storages = sorted({shown_url(spec.url) for spec, _, _ in opened})
    if args.json:
        print(json_text({"studies": table.to_dict(orient="records"), "reference_loss": ref, "unit": unit,
                         "storage": storages, "notes": notes, "csv": args.csv, "plot": args.plot},
                        default=str))
        return 0
    print(f"{len(names)} studies side by side; hypervolume and the fastest front point up to the smallest "
          f"budget, {ref:g} {unit} (reference point loss={ref:g}, speedup=1)")
    print(_summary_text(table, unit))
    for note in notes:
        print(f"note: {note}")
    for what, path in (("csv", args.csv), ("plot", args.plot)):
        if path:
            print(f"{what}: {path}")
    return 0


def _segments_line(meta: dict[str, Any]) -> str | None:
    """What a search on several segments (``--also-on``, ``--spread``) scored each trial on, as ``search``
    says it; ``None`` for a one-clip study."""
    from deltatune.search.segments import scored_on_words
    from deltatune.search.study_workload import StudyWorkload

    also = meta.get("also_on") or []
    if not also:
        return None
    workloads = [StudyWorkload.from_dict(d) for d in (meta["workload"], *also)]
    return f"{scored_on_words(workloads, meta.get('aggregate') or 'worst')} (each segment's own: --csv)"


def _with_settings(trials: Any, study: Any) -> Any:
    """``trials`` (one row per trial) with what each trial ran: mode, input dilation, key frames,
    fine-tune and every threshold (:func:`~deltatune.search.pareto.settings_frame`), for ``--csv``; the
    pruned trials of a ``--train`` search after them (``state`` PRUNED, their fine-tune and the reason,
    no objective values), so that the fine-tunes the search gave up on can be read too."""
    import pandas as pd

    from deltatune.search.pareto import settings_frame

    ran = settings_frame(study)
    table = (trials if ran.empty else trials.merge(ran, on="trial", how="left")).assign(state="COMPLETE")
    gone = settings_frame(study, pruned=True)
    if gone.empty:
        return table
    # whole numbers stay whole where the pruned rows leave cells empty (worker 0, not 0.0)
    every = pd.concat([table, gone.assign(state="PRUNED")], ignore_index=True)
    for c in every.columns:
        whole = [f[c] for f in (table, gone) if c in f.columns and len(f)]
        if whole and all(pd.api.types.is_integer_dtype(v) for v in whole):
            every[c] = every[c].astype("Int64")
    return every


def _summary_text(table: Any, unit: str) -> str:
    """The side-by-side table as text: one line per study (``-`` where a study has no such point)."""
    rows = table.to_dict(orient="records")
    wide = max(5, *(len(str(r["study"])) for r in rows))  # a long study name keeps the columns aligned
    head = f"{'study':<{wide}} {'trials':>6} {'feasible':>8} {'front':>5} {'hypervolume':>11}  "
    lines = [head + f"{'fastest within (' + unit + ')':<30} measured (recommended)"]
    for r in rows:
        best = ("-" if r["best_trial"] is None else
                f"trial {r['best_trial']}: {r['best_speedup']:.2f}x at {r['best_loss']:.3f}")
        measured = "-" if r["measured"] is None else f"trial {r['measured_trial']}: {r['measured']:.2f}x"
        lines.append(f"{r['study']:<{wide}} {r['trials']:>6} {r['feasible']:>8} {r['front']:>5} "
                     f"{r['hypervolume']:>11.4f}  {best:<30} {measured}")
    return "\n".join(lines)


def _with_heldout(study: Any, view: StudyView) -> StudyView:
    """``view`` after re-scoring its front on the held-out frames where that was not done yet, with the
    evaluator the search's own re-score uses (:func:`~deltatune.search.runner.study_evaluator`)."""
    from deltatune.search import rescore_heldout
    from deltatune.search.runner import study_evaluator

    if view.front.empty or not view.front["heldout_accuracy_loss"].isna().any():
        return view
    # as the search scored them: an --also-on study's held-out values aggregate every segment's
    rescore_heldout(study, study_evaluator(view.meta), [int(t) for t in view.front["trial"]])
    return StudyView.read(study)


@dataclass(frozen=True)
class StudyView:
    """What ``pareto`` shows of a search study, read once: its metadata, budget and loss unit, every
    trial, the front, the stored re-timings (rows with each trial's loss) and the recommendation."""

    meta: dict[str, Any]
    budget: float
    unit: str
    df: Any
    front: Any
    retimed: list[dict[str, Any]]
    recommended: dict[str, Any] | None

    @classmethod
    def read(cls, study: Any) -> StudyView:
        from deltatune.search import pareto_frame, study_meta, trials_frame
        from deltatune.search.objective import model_loss_unit
        from deltatune.search.retime import stored_retimings

        meta = study_meta(study)
        budget = float(meta.get("budget", 1.0))
        df = trials_frame(study)
        retimed = _retimed_rows(stored_retimings(study), df)
        return cls(meta, budget, model_loss_unit(str(meta.get("model"))), df, pareto_frame(df), retimed,
                   _recommended(retimed, budget))


def save_study_plot(study: Any, view: StudyView, name: str, path: str) -> None:
    """Draw a search study (``name``, read as ``view``): every trial with the front, the re-timed points
    with their CIs and the recommendation, the budget line, above the threshold heatmap of the front
    (``pareto --plot`` and ``search --plot``)."""
    from deltatune.report.pareto_plot import save_pareto_figure
    from deltatune.search import thresholds_frame

    th = thresholds_frame(study, [int(t) for t in view.front["trial"]])
    speed = speed_label(view.meta)
    if view.retimed:
        speed += "; orange: measured"
    best = view.recommended
    save_pareto_figure(view.df, view.front, th, path, budget=view.budget,
                       title=f"{name} ({len(view.df)} trial{'' if len(view.df) == 1 else 's'})",
                       loss_label=f"accuracy loss ({view.unit} vs dense)", speed_label=speed,
                       retimed=_retimed_frame(view.retimed),
                       recommended=None if best is None else int(best["trial"]))


def _retimed_rows(timed: list[Any], df: Any) -> list[dict[str, Any]]:
    """The stored re-timings as rows, each with its trial's accuracy loss (from the trials table)."""
    loss = dict(zip(df["trial"], df["accuracy_loss"], strict=True)) if not df.empty else {}
    rows = []
    for r in timed:
        if r.trial in loss:  # a re-timing of a trial this study no longer lists as complete is left out
            rows.append({**r.to_dict(), "measured": r.measured, "accuracy_loss": float(loss[r.trial])})
    return rows


def _recommended(rows: list[dict[str, Any]], budget: float) -> dict[str, Any] | None:
    """What ``search`` recommends: the first re-timed trial within the budget (``rows`` come fastest
    first, :func:`~deltatune.search.retime.fastest_first`)."""
    return next((r for r in rows if r["accuracy_loss"] <= budget), None)


def _with_measured(df: Any, rows: list[dict[str, Any]]) -> Any:
    """Every trial with the measured speedup, CI and host of its re-timing (empty where it has none; the
    fastest host's where several re-timed it): the CSV holds what the table and plot show."""
    import pandas as pd

    cols = {"measured": "measured_speedup", "ci_low": "measured_ci_low", "ci_high": "measured_ci_high",
            "host": "measured_host"}
    timed = pd.DataFrame([{"trial": r["trial"], **{new: r[old] for old, new in cols.items()}} for r in rows],
                         columns=["trial", *cols.values()])
    return df.merge(timed.drop_duplicates("trial"), on="trial", how="left")


def _retimed_frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    cols = ["trial", "accuracy_loss", "measured", "ci_low", "ci_high"]
    return pd.DataFrame([{k: r[k] for k in cols} for r in rows], columns=cols)


def speed_label(meta: dict[str, Any]) -> str:
    """The speed axis's label for a study's metadata, e.g. "MAC speedup (x)"."""
    from deltatune.search.objective import SPEED_NAMES

    name = SPEED_NAMES.get(str(meta.get("speed")))
    return "speedup (x)" if name is None else f"{name} speedup (x)"
