"""Where a study's runs live: an Optuna study in an RDB storage with heartbeats.

Each run is one trial of the Optuna study named like the study file (``[study] name``): enqueued with the
run's key, factors, seed and unit in its user attributes, executed by whichever worker pops it, and told
COMPLETE with its observations in user attributes (the trial's value is the run's wall-clock seconds). So
the storage gives resume after a crash, several workers, several machines (a PostgreSQL URL), and
optuna-dashboard, for free.

Heartbeats: every running trial's worker writes a heartbeat every ``heartbeat`` seconds; a trial whose
heartbeat is older than ``3 x heartbeat`` belongs to a dead worker and is failed by Optuna's
``fail_stale_trials``, and its run enqueued again. That needs an RDB storage (Optuna's journal files have
no heartbeats): the default is ``sqlite:///<results dir>/<study>.db``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltatune.ablation.results import AblationResults, MetricSpec
from deltatune.ablation.spec import StudySpec
from deltatune.errors import ConfigError
from deltatune.search.storage import (
    check_can_write,
    check_stored,
    heartbeat_options,
    holds_tables,
    only_study,
    open_rdb,
    quiet_experimental,
    shown_url,
    sqlite_file,
    url_scheme,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "META_KEY",
    "default_storage",
    "open_ablation",
    "load_results",
    "find_study",
    "design_change",
    "stored_design",
]

log = logging.getLogger(__name__)

META_KEY = "deltatune-ablation"
DEFAULT_HEARTBEAT = 10.0
#: the key of a run's ``provenance`` that holds the fingerprint of the weights it ran
#: (:func:`~deltatune.delta.fingerprint.weights_fingerprint`)
WEIGHTS_KEY = "weights_fingerprint"
#: the key of a search run's ``provenance`` that holds the settings of its fixed fine-tune, learning rate
#: resolved (``None``: the original weights; absent: a run stored before it was recorded)
FINETUNE_KEY = "finetune"
#: the key of a ``train = on`` run's ``provenance`` that holds the learning rates its search sampled
#: (``None``: no such search; absent: a run stored before they were recorded)
TRAIN_LR_KEY = "train_lr"
#: the learning rates every ``train = on`` run sampled before they followed the model's own rate
TRAIN_LR_BEFORE = (1e-5, 3e-5, 1e-4)
#: the rate of every model's fixed fine-tune where the study file set no ``lr``, before it was the model's
#: own: what a stored run that recorded no fine-tune (:data:`FINETUNE_KEY`) ran
STUDY_LR_BEFORE = 1e-4


def default_storage(spec_name: str) -> str:
    """``sqlite:///<results dir>/<name>.db`` (absolute, so workers agree whatever their directory)."""
    from deltatune.search.storage import results_dir

    return f"sqlite:///{(results_dir() / f'{spec_name}.db').resolve()}"


def check_url(url: str) -> None:
    """One clear error for a storage URL ablate cannot use (checked before any work)."""
    if "://" not in url:
        raise ConfigError(
            f"--storage {shown_url(url)}: ablate needs an RDB URL (sqlite:///file.db or postgresql://...); "
            "journal files have no heartbeats to detect a killed worker"
        )
    scheme = url_scheme(url)
    if scheme not in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
        raise ConfigError(
            f"--storage {shown_url(url)}: unknown scheme {scheme!r}; use sqlite:///file.db or postgresql://..."
        )
    if scheme == "sqlite":
        check_can_write(f"--storage {shown_url(url)}", sqlite_file(url))


def _storage(url: str, heartbeat: float | None) -> optuna.storages.BaseStorage:

    check_url(url)
    if url_scheme(url) == "sqlite":  # its folder, made only now
        folder = Path(url.split(":///", 1)[1]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = f"cannot create {folder} ({exc.strerror})"
            raise ConfigError(f"--storage {shown_url(url)}: {why}") from None
    quiet_experimental()
    kw: dict[str, Any] = {}
    if heartbeat is not None:
        kw = heartbeat_options(heartbeat)
    return open_rdb(url, **kw)


def stored_design(study: optuna.Study, spec: StudySpec, url: str) -> StudySpec | None:
    """The design ``study`` was stored with when ``spec`` extends it (more levels, seeds or segments, see
    :meth:`StudySpec.extends`); ``None`` when it is the same design or a new study. Any other change is a
    :class:`ConfigError`: finished runs measured something else."""
    meta = study.user_attrs.get(META_KEY)
    _check_scoring(study, spec, url)
    _check_weights(study, spec, url)
    _check_finetune_rate(study, spec, url)
    if not meta or meta.get("fingerprint") == spec.fingerprint():
        return None
    stored = StudySpec.from_dict(meta["spec"])
    if spec.extends(stored):
        return stored
    changed = "; ".join(spec.differences(stored)) or "model, data, fixed settings, or runs taken away"
    raise ConfigError(
        f"study {spec.name!r} in {shown_url(url)} was run with a different design: {changed}; use a new "
        "name, or another --storage (adding levels, seeds or segments keeps the finished runs)"
    )


#: What an evaluate run records of how it scored its thresholds (its ``config``), besides the thresholds,
#: and the value a record leaves out (ThresholdFile.to_attrs omits key frames that are off).
_SCORED_AS = {"mode": "max", "input_dilation": 1, "keyframe_interval": 0, "keyframe_change": None}


def _check_scoring(study: optuna.Study, spec: StudySpec, url: str) -> None:
    """Refuse to add runs to an evaluate study whose finished runs scored a thresholds file otherwise than
    this version would (before, a file's own mode, input dilation and key frames were not applied): the
    same cell would hold runs of two settings. A :class:`ConfigError` naming the first such run."""
    if spec.kind != "evaluate":
        return
    from optuna.trial import TrialState

    from deltatune.ablation.execute import evaluate_setting

    points = {r.key: r.point for r in spec.runs()}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        config, point = t.user_attrs.get("config") or {}, points.get(str(t.user_attrs.get("run_key")))
        if point is None or "thresholds" not in config:
            continue
        if not isinstance(spec.setting(point, "thresholds"), str):  # one number: nothing read from a file
            continue
        attrs = evaluate_setting(spec, point, list(config["thresholds"])).to_attrs()
        moved = _changed_values(config["thresholds"], attrs["thresholds"])
        if moved:
            raise ConfigError(
                f"study {spec.name!r} in {shown_url(url)}: its finished run {t.user_attrs.get('run_key')} "
                f"scored thresholds file {spec.setting(point, 'thresholds')} with other values ({moved}): "
                "the file changed since; restore it, or use a new name or another --storage, so that no cell "
                "mixes runs of two settings"
            )
        now = {k: attrs.get(k, v) for k, v in _SCORED_AS.items()}
        was = {k: config.get(k, v) for k, v in _SCORED_AS.items()}
        if now != was:
            diff = ", ".join(f"{k} {was[k]!r} (now {now[k]!r})" for k in _SCORED_AS if was[k] != now[k])
            raise ConfigError(
                f"study {spec.name!r} in {shown_url(url)}: its finished run {t.user_attrs.get('run_key')} "
                f"scored thresholds file {spec.setting(point, 'thresholds')} at {diff}, which this version "
                "takes from the file: use a new name, or another --storage, so that no cell mixes the two"
            )


def _check_weights(study: optuna.Study, spec: StudySpec, url: str) -> None:
    """Refuse to add runs to a study whose finished runs ran other weights than its weights file holds now
    (re-distilled or re-trained under the same name): its design names the file, not its contents, so the
    same cells would hold runs of two networks. Each run records the fingerprint of the weights it ran; a
    :class:`ConfigError` names the first that differs. Default and random weights are not a file of the
    study's, and runs stored before the fingerprint was recorded are not compared."""
    if spec.kind == "detection" or spec.weights in (None, "default"):
        return
    from optuna.trial import TrialState

    recorded = {}  # run key -> the fingerprint it recorded
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        fp = (t.user_attrs.get("provenance") or {}).get(WEIGHTS_KEY)
        if fp:
            recorded[str(t.user_attrs.get("run_key"))] = str(fp)
    if not recorded:
        return
    now = _weights_fingerprint(spec)
    for key, was in recorded.items():
        if was != now:
            raise ConfigError(
                f"study {spec.name!r} in {shown_url(url)}: its finished run {key} ran weights file "
                f"{spec.weights} with other weights (fingerprint {was}, now {now}): the file changed "
                "since; restore it, or use a new name or another --storage, so that no cell mixes runs of "
                "two weights"
            )


def _check_finetune_rate(study: optuna.Study, spec: StudySpec, url: str) -> None:
    """Refuse to add runs to a search study whose finished runs fine-tuned at another learning rate than
    its runs would now: an unset ``lr`` meant :data:`STUDY_LR_BEFORE` for every
    model before it meant the model's own rate (blazepose: 1e-6), and a ``train = on`` run's search
    sampled :data:`TRAIN_LR_BEFORE` before it sampled the model's own levels; the study file, its
    fingerprint and its runs' keys read the same either way, so the same cells would hold runs of two
    rates. A run records the rate it ran (:data:`FINETUNE_KEY`) and the rates its search sampled
    (:data:`TRAIN_LR_KEY`); one stored before that ran the old ones. A :class:`ConfigError` names the
    first such run."""
    if spec.kind != "search":
        return
    from optuna.trial import TrialState

    points = {r.key: r.point for r in spec.runs()}
    done = [(t, points[str(t.user_attrs.get("run_key"))])
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if str(t.user_attrs.get("run_key")) in points]
    done = [(t, p) for t, p in done if spec.setting(p, "train") or int(spec.setting(p, "finetune_steps"))]
    if not done:  # no finished run fine-tuned: nothing to compare (and no model code to import)
        return
    from deltatune.ablation.execute import study_train_lrs
    from deltatune.train.finetune import default_lr

    own = default_lr(spec.model, "none" if spec.weights is None else str(spec.weights))
    levels = study_train_lrs(spec)
    for t, point in done:
        if spec.setting(point, "train"):
            sampled = (t.user_attrs.get("provenance") or {}).get(TRAIN_LR_KEY, TRAIN_LR_BEFORE)
            if [float(v) for v in sampled] != list(levels):
                then, now_at = (", ".join(f"{v:g}" for v in vs) for vs in (sampled, levels))
                key = t.user_attrs.get("run_key")
                raise ConfigError(
                    f"study {spec.name!r} in {shown_url(url)}: its finished run {key} searched fine-tunes at "
                    f"lr {then}, its runs would now at {now_at} ({spec.model}'s own scale): use a new name, "
                    "or another --storage, so that no cell mixes runs of two learning rates"
                )
        if int(spec.setting(point, "finetune_steps")) == 0:
            continue
        set_to = spec.setting(point, "lr")
        now = own if set_to is None else float(set_to)
        prov = t.user_attrs.get("provenance") or {}
        if FINETUNE_KEY in prov:
            was = float((prov[FINETUNE_KEY] or {}).get("lr", now))
        else:  # stored before runs recorded their fine-tune
            was = STUDY_LR_BEFORE if set_to is None else now
        if not math.isclose(was, now, rel_tol=1e-9):
            why = "" if set_to is not None else (
                f" (an unset lr is {spec.model}'s own rate now, {STUDY_LR_BEFORE:g} before)")
            raise ConfigError(
                f"study {spec.name!r} in {shown_url(url)}: its finished run {t.user_attrs.get('run_key')} "
                f"fine-tuned at lr {was:g}, its runs would now at {now:g}{why}: use a new name, or another "
                "--storage, so that no cell mixes runs of two learning rates"
            )


#: weights fingerprints computed in this process, by model and the weights file's path, size and mtime
_FINGERPRINTS: dict[tuple[str, str], str] = {}


def _weights_fingerprint(spec: StudySpec) -> str:
    """The fingerprint of the weights ``spec``'s runs would run now (its model built from its weights
    file), computed once per file state in a process (``ablate`` checks before its progress bar and again
    as it opens the study)."""
    from deltatune.ablation.execute import WorkerState
    from deltatune.delta.fingerprint import weights_fingerprint
    from deltatune.search.study_workload import load_model

    wl = WorkerState(spec, None).workload()
    key = (spec.model, wl.weights_identity())
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = weights_fingerprint(load_model(wl)[0])
    return _FINGERPRINTS[key]


def _changed_values(was: dict[str, Any], now: dict[str, Any]) -> str:
    """The truncation points whose threshold differs between a finished run's record and the file read
    now, as ``"input 0.0846 then, 0.254 now; 2 more"`` (``""``: none)."""

    def same(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)

    names = [n for n in dict.fromkeys([*was, *now]) if not same(was.get(n), now.get(n))]
    if not names:
        return ""
    first = names[0]
    more = f"; {len(names) - 1} more" if len(names) > 1 else ""
    def shown(v: Any) -> str:
        return "none" if v is None else f"{float(v):.4g}"

    return f"{first} {shown(was.get(first))} then, {shown(now.get(first))} now{more}"


def design_change(url: str, spec: StudySpec) -> str | None:
    """Before any run: what a stored study of ``spec``'s name says about its design, as a line to print
    (``None``: a new study, or the same design). A design that changed in any other way than by adding
    runs is a :class:`ConfigError`, raised here before any progress bar is drawn."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name=spec.name, storage=_storage(url, None))
    except KeyError:
        return None
    stored = stored_design(study, spec, url)
    if stored is None:
        return None
    before, after = len(stored.runs()), len(spec.runs())
    if before == after:  # the same runs, listed in another order
        return f"{spec.name}: the study file lists the stored design's levels in another order; runs are kept"
    return (
        f"{spec.name}: the study file adds runs to the stored design ({before} -> {after} runs); finished "
        "runs are kept"
    )


def stored_runs(url: str, name: str) -> dict[str, str] | None:
    """What study ``name`` holds of each run key: ``"finished"`` or ``"running"`` (a worker has it, or had
    it and died: a real run retries it once its heartbeat is stale); ``None`` when the storage or the study
    does not exist yet (nothing is created)."""
    import optuna
    from optuna.trial import TrialState

    if not holds_tables(url):
        return None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name=name, storage=_storage(url, None))
    except KeyError:
        return None
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    out = {str(t.user_attrs["run_key"]): "running" for t in running if t.user_attrs.get("run_key")}
    return {**out, **dict.fromkeys(complete_run_keys(study), "finished")}


def complete_run_keys(study: optuna.Study) -> set[str]:
    """The run keys of ``study``'s COMPLETE trials (its finished runs)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {str(t.user_attrs["run_key"]) for t in done if t.user_attrs.get("run_key")}


def open_ablation(url: str, spec: StudySpec, *, heartbeat: float | None = DEFAULT_HEARTBEAT) -> optuna.Study:
    """Create or load the study's Optuna study; refuse one stored from a different design, and store an
    extended design (:func:`stored_design`) in place of the old one."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        study_name=spec.name, storage=_storage(url, heartbeat), direction="minimize", load_if_exists=True
    )
    if study.metric_names is None:  # what plain Optuna and optuna-dashboard show as each run's value
        _name_the_value(study)
    meta = study.user_attrs.get(META_KEY)
    stored_design(study, spec, url)
    if meta != {"fingerprint": spec.fingerprint(), "spec": spec.to_dict()}:
        study.set_user_attr(META_KEY, {"fingerprint": spec.fingerprint(), "spec": spec.to_dict()})
    return study


#: The name of an ablation trial's value: the run's wall-clock seconds, a cost, not a result (the results
#: are its ``observations`` user attribute), so that no tool takes the "best trial" for the best run.
VALUE_NAME = "run_wall_s"


def _name_the_value(study: optuna.Study) -> None:
    import warnings

    with warnings.catch_warnings():  # set_metric_names is marked experimental
        warnings.simplefilter("ignore")
        study.set_metric_names([VALUE_NAME])


def find_study(url: str, name: str | None = None) -> tuple[optuna.Study, StudySpec]:
    """Load a stored ablation study (the only one in the storage when ``name`` is None)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    check_stored(url, shown_url(url))  # reading: never create a database or its tables
    storage = _storage(url, None)
    if name is None:
        from deltatune.search.pareto import META_KEY as SEARCH_KEY

        search = ("search", SEARCH_KEY, "deltatune pareto --storage", "shows a search")
        name = only_study(storage, url, kind="ablation", attr=META_KEY, other=search)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise ConfigError(f"--study {name}: no such study in {shown_url(url)}") from None
    meta = study.user_attrs.get(META_KEY)
    if not meta:
        raise ConfigError(f"--study {name}: not an ablation study (no {META_KEY} attribute)")
    return study, StudySpec.from_dict(meta["spec"])


def load_results(study: optuna.Study, spec: StudySpec) -> AblationResults:
    """The study's finished runs as :class:`AblationResults` (one COMPLETE trial per run key)."""
    import pandas as pd
    from optuna.trial import TrialState

    factors = {k: [_text(v) for v in vs] for k, vs in spec.factors.items()}
    obs_factors = spec.observation_factors()
    fcols = list(factors) + list(obs_factors)
    obs_rows, speed_rows, front_rows, prov_rows = [], [], [], []
    seen: set[str] = set()
    random_runs = 0  # runs whose model had no default weights here and ran seeded random ones
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number):
        a = t.user_attrs
        key = a.get("run_key")
        if not key or key in seen or "observations" not in a:
            continue
        seen.add(key)
        base = {"run": key, "seed": int(a["seed"]), "unit": str(a["unit"]), **dict(a["factors"])}
        for i, o in enumerate(a["observations"]):
            row = {**base, **{k: "" for k in obs_factors}, **o.get("extra", {})}
            for m, v in o["metrics"].items():
                obs_rows.append({**row, "metric": m, "value": float("nan") if v is None else float(v)})
            for r, (d, s) in enumerate(o.get("speed") or []):
                speed_rows.append(
                    {
                        **row,
                        "observation": i,
                        "repeat": r,
                        "dense_ms": d,
                        "delta_ms": s,
                        "ratio": d / max(s, 1e-9),
                    }
                )
        for loss, speed in a.get("front") or []:
            front_rows.append({**base, "accuracy_loss": loss, "speedup": speed})
        p = a.get("provenance") or {}
        random_runs += bool(p.get("random_weights"))
        prov_rows.append(
            {
                "run": key,
                "git_revision": p.get("git_revision", "unknown"),
                "versions": json.dumps(p.get("versions", {}), sort_keys=True),
                "wall_s": t.values[0] if t.values else float("nan"),
                "host": p.get("host", ""),
                "attempt": int(a.get("attempt", 1)),
            }
        )
    fell_back = bool(random_runs) and spec.weights == "default"  # not a study that asked for random ones
    base_cols = ["run", "seed", "unit", *fcols]
    available = spec.available_metrics()
    metrics = [
        MetricSpec(m, available[m][0], available[m][1], spec.equivalence.get(m))
        for m in spec.metric_names()
        if m in available  # a stored study's measured_speedup at speed_repeats = 0: no run was timed
    ]
    observations = pd.DataFrame(obs_rows, columns=[*base_cols, "metric", "value"])
    observations = observations[observations["metric"].isin([m.name for m in metrics])].reset_index(drop=True)
    return AblationResults(
        name=spec.name,
        description=spec.description,
        model=spec.model,
        factors={**factors, **obs_factors},
        pairing=spec.pairing,
        unit_name=spec.unit_name,
        metrics=metrics,
        primary=spec.primary,
        observations=observations,
        speed_repeats=pd.DataFrame(
            speed_rows, columns=[*base_cols, "observation", "repeat", "dense_ms", "delta_ms", "ratio"]
        ),
        fronts=pd.DataFrame(front_rows, columns=[*base_cols[: 3 + len(factors)], "accuracy_loss", "speedup"]),
        provenance=pd.DataFrame(
            prov_rows, columns=["run", "git_revision", "versions", "wall_s", "host", "attempt"]
        ),
        expected_runs=len(spec.runs()),
        timed=spec.speed_repeats > 0 or spec.kind == "detection",  # a detection run is always timed
        setup=[(k, f"{v} (none here: {random_runs} of {len(seen)} runs ran seeded random weights)")
               if k == "weights" and fell_back else (k, v) for k, v in spec.setup_rows()],
        notes=([f"{random_runs} of {len(seen)} runs ran seeded random weights ({spec.model} has no default "
                "weights here): their losses and settings describe no trained model"] if fell_back else [])
        + spec.startup_notes(),
    )


def _text(v: Any) -> str:
    from deltatune.ablation.spec import level_text

    return level_text(v)
