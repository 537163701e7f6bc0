"""``deltatune ablate STUDY.toml``: run a study's full design x repeats, resumably, with a progress bar."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Any

from deltatune.cli._common import add_no_progress

NAME = "ablate"
HELP = "run an ablation study file (every factor combination x repeats), resumably"
DESCRIPTION = (
    "Runs every design point of a study file (studies/*.toml) on every repeat (seed or segment). Each run "
    "is a trial of an Optuna study in an RDB storage (default sqlite:///deltatune-results/NAME.db, or "
    "--storage postgresql://... shared by several machines): re-running skips finished runs (also after "
    "the file gained levels, seeds or segments), and a run whose worker died (no heartbeat for 3 x "
    "--heartbeat seconds) is retried. Then `deltatune report "
    "STUDY.toml` tests which differences are real."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune ablate studies/keyframes.toml --dry-run   # check the file, list the runs",
    "deltatune ablate studies/truncation_ablation.toml --jobs 2 --threads 1",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="study file, e.g. studies/truncation_ablation.toml")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes on this machine; each gets cores/jobs torch threads (default 1)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per worker (default: cores / jobs); 1 keeps timings sane on a busy machine",
    )
    p.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="RDB storage URL (default sqlite:///deltatune-results/NAME.db)",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="worker heartbeat; a run without one for 3x this long is retried (default 10)",
    )
    p.add_argument("--dry-run", action="store_true", help="validate the file and list the runs; run nothing")
    add_no_progress(p)


def _runs_without_values(storage: str, name: str) -> int:
    """How many finished runs of the study recorded not one finite value."""
    import numpy as np

    from deltatune.ablation.store import find_study, load_results

    obs = load_results(*find_study(storage, name)).observations
    finite = obs.assign(ok=np.isfinite(obs["value"].astype(float))).groupby("run")["ok"].any()
    return int((~finite).sum())


def _scores_from_before(storage: str, name: str, since: float) -> int:
    """How many detection runs finished after ``since`` (this call) took their detector's scores and
    timings from the cache, measured before it: by an earlier call, of this study or another with the
    same detector, frames and settings, on this host."""
    from optuna.trial import TrialState

    from deltatune.ablation.store import find_study

    study, _ = find_study(storage, name)
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        done = t.datetime_complete.timestamp() if t.datetime_complete is not None else 0.0
        at = (t.user_attrs.get("config") or {}).get("scores_measured_at")
        n += done >= since and (at is None or at < since)
    return n


def _finished_runs(args: argparse.Namespace, spec: Any) -> str:
    """``"3 of 8"``: the study's finished runs after an interrupt, as far as its storage says (``"the"``
    when it cannot be read: the interrupt may have landed while it was opened)."""
    from deltatune.ablation.store import default_storage, stored_runs

    try:
        held = stored_runs(args.storage or default_storage(spec.name), spec.name) or {}
    except Exception:  # noqa: BLE001 - a count is a courtesy; the resume line matters
        return "the"
    done = sum(v == "finished" for v in held.values() if v)
    return f"{done} of {len(spec.runs())}"


def run(args: argparse.Namespace) -> int:
    from deltatune._workers import WorkerDied, died_words
    from deltatune.ablation.runner import check_inputs, run_ablation
    from deltatune.ablation.spec import load_study
    from deltatune.ablation.store import check_url, default_storage, design_change
    from deltatune.errors import ConfigError
    from deltatune.search.storage import check_heartbeat, shown_url

    quote = shlex.quote  # the printed commands run as pasted (spaces, ? and & in paths and URLs)
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: need at least 1 worker")
    if args.threads is not None and args.threads < 1:  # before any storage is opened (or created)
        raise ConfigError(f"--threads {args.threads}: need at least 1")
    check_heartbeat(args.heartbeat)
    spec = load_study(args.file)
    runs = spec.runs()
    check_url(args.storage or default_storage(spec.name))
    check_inputs(spec)  # before the progress bar: bad input is one line, nothing half-drawn
    for warning in spec.startup_notes():  # a design that compares random search with itself
        print(f"deltatune ablate: warning: {warning}", file=sys.stderr)
    if args.dry_run:  # what a real run would do: refuse a changed design, run only what is not finished
        from deltatune.ablation.store import stored_runs
        from deltatune.search.storage import holds_tables

        url = args.storage or default_storage(spec.name)
        change = design_change(url, spec) if holds_tables(url) else None
        stored = stored_runs(url, spec.name)
        status = ""
        if stored is not None:
            states = [stored.get(r.key) for r in runs]
            finished, running = states.count("finished"), states.count("running")
            held = f", {running} running (or left by a worker that died: retried)" if running else ""
            left = len(runs) - finished - running
            status = f"; in {shown_url(url)}: {finished} finished{held}, {left} to run"
        print(
            f"{spec.name}: {spec.kind} study of {spec.model}, {len(spec.points())} design point(s) x "
            f"{len(runs) // max(1, len(spec.points()))} {spec.unit_name}(s) = {len(runs)} runs{status}"
        )
        if spec.kind == "detection":  # the runs that differ only in backbone share one trained detector
            from deltatune.ablation.detection import detection_config, detector_cache, detector_path

            configs = {c.to_json(): c for c in (detection_config(spec, r.point, r.seed) for r in runs)}
            cached = sum(detector_path(c).is_file() for c in configs.values())
            have = f" ({cached} of them already trained, in {detector_cache()})" if cached else ""
            print(f"{len(configs)} detectors{have}: the classic and delta runs of one setting and seed share "
                  "one detector (and one scoring, which times both backbones)")
        if change:
            print(change)
        for r in runs:
            levels = ", ".join(f"{k}={v}" for k, v in r.factors.items()) or "(no factors)"
            state = f"  ({stored[r.key]})" if stored and r.key in stored else ""
            print(f"  {r.key}  {levels}  {spec.unit_name}={r.unit}{state}")
        return 0
    change = design_change(args.storage or default_storage(spec.name), spec)  # refused before the bar
    if change:
        print(change)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), desc=spec.name, unit="run", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None and done > bar.n:
            bar.update(done - bar.n)

    def waiting(running: int, grace: int) -> None:
        if bar is not None:
            bar.set_postfix_str(
                f"waiting for {running} run(s) of other workers (retried after {grace}s without a heartbeat)"
            )

    started = time.time()
    try:
        summary = run_ablation(
            spec,
            storage=args.storage,
            jobs=args.jobs,
            heartbeat=args.heartbeat,
            threads=args.threads,
            on_progress=progress,
            on_wait=waiting,
        )
    except (KeyboardInterrupt, WorkerDied) as exc:  # a worker died: the out-of-memory killer, say
        if bar is not None:
            bar.close()
        interrupted = isinstance(exc, KeyboardInterrupt)
        what = f"interrupted; {_finished_runs(args, spec)} runs finished and are kept" if interrupted else (
            f"a worker process died ({died_words(exc.codes)}); finished runs are kept and the runs left "
            "running are run again")
        storage = f" --storage {quote(shown_url(args.storage))}" if args.storage else ""
        print(f"deltatune ablate: {what}. Resume with: deltatune ablate {quote(args.file)}{storage}",
              file=sys.stderr)
        return 130 if interrupted else 1
    finally:
        if bar is not None:
            bar.close()
    print(
        f"{summary.study}: {summary.complete} of {summary.expected} runs finished ({summary.new} in this "
        f"call, {summary.wall_s:.0f} s); storage {shown_url(summary.storage)}"
    )
    for key, err in summary.failed.items():
        print(f"  run {key} failed 3 times; last error: {err}")
    empty = _runs_without_values(summary.storage, spec.name) if summary.complete else 0
    if empty:
        why = {
            "search": "a search that found no setting within its budget in its trials: more trials or a "
            "larger budget",
            "evaluate": "the dense model found nothing to score on those segments",
        }.get(spec.kind, "see the report")
        print(f"note: {empty} of {summary.complete} finished runs recorded no value at all ({why})")
    reused = _scores_from_before(summary.storage, spec.name, started) if spec.kind == "detection" else 0
    if reused:
        from deltatune.ablation.detection import detector_cache

        print(f"note: {reused} of the {summary.new} runs of this call took their detector and its scores and "
              f"timings from {detector_cache()}, measured before this call (same training, frames and "
              "settings, on this host); to measure them again, point $DELTATUNE_DETECTOR_CACHE at an empty "
              "folder")
    if summary.complete:  # nothing to report before a run has finished
        storage = f" --storage {quote(shown_url(args.storage))}" if args.storage else ""
        print(f"report: deltatune report {quote(args.file)}{storage}")
    return 0 if not summary.failed else 1
