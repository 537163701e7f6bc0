"""``deltatune ablate``: run a study's full design x repeats, resumably, on N worker processes.

The loop (:func:`run_ablation`):

1. fail the trials of dead workers (Optuna's ``fail_stale_trials``: no heartbeat for ``3 x heartbeat``
   seconds; and every RUNNING trial when every worker that ever opened the study ran on this machine and
   is gone, which also catches a worker killed before its trial's first heartbeat, a trial Optuna never
   calls stale: see :mod:`deltatune._workers`);
2. enqueue every run that has no COMPLETE, WAITING or RUNNING trial (so a re-run skips finished runs and
   retries failed or killed ones, up to ``max_attempts`` tries);
3. let ``jobs`` worker processes (joblib) pop the queue with ``study.optimize`` until it is empty;
4. while trials of other workers (another machine, or a killed one not yet stale) are RUNNING, wait and
   go back to 1.

A worker that pops a run whose key already has a COMPLETE trial, or a RUNNING one with a lower number,
skips it (two processes that enqueued the same missing run at once): no run is ever stored twice.
Workers exit when their parent dies (SIGKILL included), so a killed ``ablate`` leaves no process behind;
their runs are retried by the next ``ablate``.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltatune._workers import (
    INTERRUPTED_ATTR,
    adopt_env,
    all_workers_gone,
    deltatune_env,
    exit_with_parent,
    fail_trials,
    on_interrupt,
    optimize_resilient,
    register_worker,
    taken_by,
    worker_deaths,
)
from deltatune.ablation.spec import FACTORS, Run, Segment, StudySpec, field_location
from deltatune.ablation.store import (
    DEFAULT_HEARTBEAT,
    FINETUNE_KEY,
    TRAIN_LR_KEY,
    WEIGHTS_KEY,
    complete_run_keys,
    default_storage,
    open_ablation,
)
from deltatune.errors import ConfigError, DeltatuneError
from deltatune.search.storage import check_heartbeat, grace_period

if TYPE_CHECKING:
    import optuna

__all__ = ["AblationSummary", "run_ablation", "check_inputs", "provenance", "fail_orphans"]

log = logging.getLogger(__name__)


@dataclass
class AblationSummary:
    """What :func:`run_ablation` did: runs finished in total and in this call, and what failed."""

    study: str
    storage: str
    expected: int
    complete: int
    new: int
    failed: dict[str, str] = field(default_factory=dict)  # run key -> last error, for runs given up
    wall_s: float = 0.0


def provenance() -> dict[str, Any]:
    """Package versions, the git revision of the installed source, and the host: stored with every run."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for pkg in ("deltatune", "torch", "optuna", "numpy", "scipy", "pandas"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    src = Path(__file__).resolve().parents[2]
    rev = "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if out.returncode == 0:
            rev = out.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if dirty.stdout.strip():
                rev += "-dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"git_revision": rev, "versions": versions, "host": platform.node()}


def check_inputs(spec: StudySpec) -> None:
    """Cheap checks before any model work: the model, the weights, every video and its frame count."""
    from deltatune.ablation.execute import WorkerState
    from deltatune.search.study_workload import StudyWorkload, sample_windows

    if spec.kind == "detection":
        from deltatune.ablation.detection import check_detection_inputs

        check_detection_inputs(spec)
        return
    try:  # pose and classification models (StudyWorkload.check_task)
        StudyWorkload(spec.model).check_task()
    except DeltatuneError as exc:  # not registered, or not a pose / classification model
        raise ConfigError(f"{field_location(spec, 'study', 'model')}: {exc}") from None
    state = WorkerState(spec, None)
    _checked(spec, "weights", None, state.workload().resolve_weights)
    segments = _clips(spec)
    for table, clip_field, seg in segments:  # each step names the study field it checks
        wl = state.workload(seg)
        info = _checked(spec, clip_field or "video", seg, wl.check_video, table=table)
        _checked(spec, clip_field or "frames", seg, partial(wl.check_frames, info), table=table)
        _checked(spec, "windows", seg, partial(wl.check_windows, info))
    _check_threshold_files(spec, state.workload(segments[0][2]))
    video = spec.local_path(spec.video)
    if spec.kind == "search" and not spec.windows and spec.streams not in (1, StudySpec.streams) and (
        not sample_windows(video)
    ):  # the default (2) reads as "up to 2 crops", the whole frame where the video has none
        raise ConfigError(f"{field_location(spec, 'study', 'streams')}: {spec.streams} streams of "
                          f"{spec.video}, a video of one's own, which is one stream (its whole frame); "
                          "windows = [...] gives crops, one stream each")
    if spec.kind == "search":  # fine-tuning frames: disjoint from the search's, inside the video
        from deltatune.ablation.execute import train_space

        wl = state.workload()
        for point in spec.points():
            if spec.setting(point, "train") or spec.setting(point, "finetune_steps"):
                table, name = _train_frames_field(spec, point)
                _checked(spec, name, None, lambda p=point: train_space(spec, p, wl, 0).check(wl), table=table)


def _clips(spec: StudySpec) -> list[tuple[str, str | None, Segment | None]]:
    """Every clip the study's runs read, as ``(table, field, segment)``: an evaluate study's units; a
    search's own clip (``None``: study.video and study.frames), its ``score_on`` segments and every
    ``also_on`` segment of any design point, each once, with the study file's field that names it."""
    if spec.kind == "evaluate":
        return [("study", "units", u) for u in spec.units]
    out: list[tuple[str, str | None, Segment | None]] = [("study", None, None)]
    out += [("study", "score_on", s) for s in spec.score_on]
    table = spec.table_of("also_on") or "fixed"
    also_on = [s for p in spec.points() for s in spec.also_on(p)]
    return out + [(table, "also_on", s) for s in dict.fromkeys(also_on)]


def _train_frames_field(spec: StudySpec, point: Any) -> tuple[str, str]:
    """``(table, field)`` of the study file that sets the fine-tuning frames of ``point``: ``train_frames``
    where the file sets it, else the setting that turned the fine-tune on (its frames are the default)."""
    for name in ("train_frames", "train", "finetune_steps"):
        table = spec.table_of(name)
        if table is not None and (name == "train_frames" or spec.setting(point, name)):
            return table, name
    return "fixed", "train_frames"  # pragma: no cover - a fine-tune is on only when the file says so


_STUDY_WORDS = {
    "--frames ": "frames = ", "--weights ": "weights = ", "an earlier --start": "an earlier first frame",
    "from --start ": "from frame ", "--train-frames ": "fine-tuning frames ",
}
"""Command-line options in the workload's messages -> how the study file says them."""


def _checked(spec: StudySpec, field: str, seg: Any, step: Callable[[], Any], *, table: str = "study") -> Any:
    """Run one input check of the study's workload; its error becomes one line naming the study file's
    line and ``table.field`` (and the segment), in the file's words rather than the command line's."""
    try:
        return step()
    except DeltatuneError as exc:  # a missing video or weights, a window outside the frame, too few frames
        said = str(exc)
        for cli, words in _STUDY_WORDS.items():
            said = said.replace(cli, words)
        where = field_location(spec, table, field)
        raise ConfigError(f"{where}: {f'segment {seg.label}: ' if seg else ''}{said}") from None


def _check_threshold_files(spec: StudySpec, wl: Any) -> None:
    """Every thresholds file the study names must fit its model's truncation points (a deltatune file by
    name, a DeltaCNN one by count): a file made for another model is one line before any run, not a
    failure of every run that uses it. The network is built once, on a blank frame."""
    import torch

    from deltatune.ablation.execute import study_thresholds_file
    from deltatune.delta import convert
    from deltatune.errors import ThresholdError
    from deltatune.search.study_workload import load_model
    from deltatune_models import model_info

    if "thresholds" not in FACTORS[spec.kind]:  # searches choose their own
        return
    files = sorted({v for p in spec.points() if isinstance(v := spec.setting(p, "thresholds"), str)})
    if not files:
        return
    model, _ = load_model(wl)
    info = model_info(spec.model)
    example = torch.zeros(1, info.in_channels, *info.input_size)
    names = convert(model, example, fallback=wl.fallback).threshold_names
    for v in files:
        try:
            study_thresholds_file(spec, v, names)
        except ThresholdError as exc:  # located where the file is named: [fixed] or [factors]
            where = field_location(spec, spec.table_of("thresholds") or "factors", "thresholds")
            raise ConfigError(f"{where}: {exc} (model {spec.model})") from None


def _work(
    spec_d: dict[str, Any],
    url: str,
    heartbeat: float,
    threads: int,
    prov: dict[str, Any],
    parent: int | None,
    env: dict[str, str] | None = None,
) -> int:
    """A worker: pop queued runs until none is left; returns how many it finished. ``env``: the
    parent's ``DELTATUNE_*`` environment (a reused loky worker still has an earlier call's)."""
    import optuna
    import torch

    from deltatune.ablation.execute import WorkerState, execute_run

    if parent is not None:
        exit_with_parent(parent)
        logging.getLogger("deltatune").setLevel(logging.WARNING)
    if env is not None:
        adopt_env(env)
    torch.set_num_threads(max(1, threads))
    from deltatune._workers import quiet_storage_threads

    quiet_storage_threads()
    spec = StudySpec.from_dict(spec_d)
    runs = {r.key: r for r in spec.runs()}
    study = open_ablation(url, spec, heartbeat=heartbeat)
    register_worker(study)  # before any trial: see fail_orphans
    state = WorkerState(spec, url)
    done = {"n": 0}

    def objective(trial: optuna.Trial) -> float:
        key = trial.user_attrs.get("run_key")
        if key not in runs:
            trial.set_user_attr("idle", True)  # the queue ran dry between our check and ask()
            trial.study.stop()
            raise optuna.TrialPruned("no queued run")
        if taken_by(trial.study, "run_key", key, trial.number) is not None:
            trial.set_user_attr("duplicate", True)
            raise optuna.TrialPruned("run already done or running elsewhere")
        try:
            out = execute_run(state, runs[key])
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        trial.set_user_attr("observations", [o.to_dict() for o in out.observations])
        trial.set_user_attr("config", out.config)
        trial.set_user_attr("front", [list(p) for p in out.front])
        trial.set_user_attr("provenance", {**prov, "pid": os.getpid(), "random_weights": out.random_weights,
                                           WEIGHTS_KEY: out.weights, FINETUNE_KEY: out.finetune,
                                           TRAIN_LR_KEY: out.train_lr})
        done["n"] += 1
        return out.wall_s

    def stop_when_drained(study: optuna.Study, _t: Any) -> None:
        if not _waiting(study):
            study.stop()

    if _waiting(study):
        optimize_resilient(study, objective, n_trials=None, callbacks=[stop_when_drained], catch=(Exception,))
    return done["n"]


def fail_orphans(study: optuna.Study, *, leaving: int | None = None, interrupted: bool = False) -> list[int]:
    """Mark FAIL every RUNNING trial when every worker that ever opened ``study`` ran on this machine and
    is gone (:func:`deltatune._workers.all_workers_gone`; ``leaving``: a process counted as gone, this one
    as an interrupt stops it); returns their numbers. Then nothing can still be running them, heartbeat or
    not; the loop enqueues their runs again."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running or not all_workers_gone(study, leaving=leaving):
        return []
    return fail_trials(study, [t.number for t in running], interrupted=interrupted)


def _waiting(study: optuna.Study) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _plan(
    study: optuna.Study, runs: list[Run], max_attempts: int
) -> tuple[list[Run], int, int, dict[str, str]]:
    """``(runs to enqueue, complete, running, given up {key: error})``."""
    from optuna.trial import TrialState

    by_key: dict[str, list[Any]] = {}
    for t in study.get_trials(deepcopy=False):
        k = t.user_attrs.get("run_key")
        if k:
            by_key.setdefault(k, []).append(t)
    missing, complete, running, given_up = [], 0, 0, {}
    for r in runs:
        ts = by_key.get(r.key, [])
        states = {t.state for t in ts}
        if TrialState.COMPLETE in states:
            complete += 1
        elif states & {TrialState.WAITING, TrialState.RUNNING}:
            running += TrialState.RUNNING in states
        else:
            failed = [t for t in ts if _counts_as_failed(t)]
            if len(failed) >= max_attempts:
                given_up[r.key] = failed[-1].user_attrs.get("error", "worker died (no heartbeat)")
            else:
                missing.append(r)
    return missing, complete, running, given_up


def _counts_as_failed(t: Any) -> bool:
    """A failed attempt at a run: FAIL, unless the user interrupted the command that ran it (Ctrl-C a
    few times on a long study gave its runs up for good: "failed 3 times; worker died")."""
    return t.state.name == "FAIL" and not t.user_attrs.get(INTERRUPTED_ATTR)


def _attempts(study: optuna.Study, key: str) -> int:
    trials = study.get_trials(deepcopy=False)
    return 1 + sum(1 for t in trials if t.user_attrs.get("run_key") == key and _counts_as_failed(t))


def run_ablation(
    spec: StudySpec,
    *,
    storage: str | None = None,
    jobs: int = 1,
    heartbeat: float = DEFAULT_HEARTBEAT,
    max_attempts: int = 3,
    threads: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_wait: Callable[[int, int], None] | None = None,
) -> AblationSummary:
    """Run (or resume) every run of ``spec``; returns when each has finished or failed ``max_attempts`` times.

    ``threads``: torch threads per worker (default: this machine's cores / ``jobs``).
    ``on_progress(complete, expected)`` is called as runs finish; ``on_wait(running, grace_s)`` while
    only other workers' runs are left.
    """
    import optuna
    from optuna.trial import TrialState

    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: need at least 1 worker")
    if threads is not None and threads < 1:  # before the storage is opened: a refused call leaves no study
        raise ConfigError(f"--threads {threads}: need at least 1")
    check_heartbeat(heartbeat)
    t0 = time.perf_counter()
    url = storage or default_storage(spec.name)
    check_inputs(spec)
    study = open_ablation(url, spec, heartbeat=heartbeat)
    runs = spec.runs()
    # this call's mark on the runs it finishes: another process on the same study (the README's "start
    # the same command on several machines") finishes runs too, and counting every run finished since
    # this call began said "6 in this call" in both of two processes that ran 3 each
    prov = {**provenance(), "call": uuid.uuid4().hex}
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    # an interrupt between Optuna's creating a trial and running it left the trial RUNNING
    with on_interrupt(lambda: fail_orphans(study, leaving=os.getpid(), interrupted=True)):
        while True:
            optuna.storages.fail_stale_trials(study)
            fail_orphans(study)
            missing, complete, running, given_up = _plan(study, runs, max_attempts)
            if on_progress is not None:
                on_progress(complete, len(runs))
            for r in missing:
                study.enqueue_trial(
                    {},
                    user_attrs={
                        "run_key": r.key,
                        "factors": r.factors,
                        "seed": r.seed,
                        "unit": r.unit,
                        "attempt": _attempts(study, r.key),
                    },
                )
            if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                _launch(spec, url, heartbeat, jobs, threads, prov, study, len(runs), on_progress)
                continue
            if running:
                if on_wait is not None:
                    on_wait(running, grace_period(heartbeat))
                time.sleep(max(1.0, heartbeat))
                continue
            break
    return AblationSummary(
        study=spec.name,
        storage=url,
        expected=len(runs),
        complete=complete,
        new=_finished_by(study, prov["call"]),
        failed=given_up,
        wall_s=time.perf_counter() - t0,
    )


def _finished_by(study: optuna.Study, call: str) -> int:
    """How many of ``study``'s finished runs the call marked ``call`` ran (in this process or its
    workers)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sum((t.user_attrs.get("provenance") or {}).get("call") == call for t in done)


def _launch(
    spec: StudySpec,
    url: str,
    heartbeat: float,
    jobs: int,
    threads: int,
    prov: dict[str, Any],
    study: optuna.Study,
    expected: int,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Run the queue dry: in this process (``jobs == 1``) or in ``jobs`` joblib worker processes."""
    stop = threading.Event()

    def poll() -> None:
        last = -1
        while not stop.wait(1.0):
            try:
                n = len(complete_run_keys(study))
            except Exception:  # a read racing a writer: next tick
                continue
            if n != last and on_progress is not None:
                on_progress(min(n, expected), expected)
                last = n

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        if jobs == 1:
            _work(spec.to_dict(), url, heartbeat, threads, prov, None)
        else:
            from joblib import Parallel, delayed

            with worker_deaths():
                Parallel(n_jobs=jobs, backend="loky")(
                    delayed(_work)(
                        spec.to_dict(), url, heartbeat, threads, prov, os.getpid(), deltatune_env()
                    )
                    for _ in range(jobs)
                )
    finally:
        stop.set()
        thread.join()
