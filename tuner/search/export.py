"""Export a trial's thresholds as a file that ``inspect``/``bench``/``DeltaNetwork.load_thresholds`` load.

The thresholds come from the trial's ``thresholds`` user attribute (every strategy writes it), so the file
reproduces the trial exactly: loading it into the same model and re-running the study's workload gives the
same MAC speedup and accuracy loss. ``deltacnn`` writes DeltaCNN's ``{"0": t0, ...}`` in execution order
(see :func:`deltatune.delta.thresholds.to_deltacnn`; DeltaCNN's fused-activation keys are not inserted).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deltatune._atomic import atomic_write_all
from deltatune.delta.thresholds import ThresholdFile, weights_beside
from deltatune.errors import ConfigError, non_negative

if TYPE_CHECKING:
    import optuna

__all__ = [
    "FORMATS",
    "ExportResult",
    "select_trial",
    "export_trial",
    "default_export_path",
    "finetuned_model",
    "exported_weights",
]

FORMATS = ("deltatune", "deltacnn")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    trial: int
    accuracy_loss: float
    speedup: float
    format: str
    #: the fine-tuned weights the thresholds belong to (``--train`` trials), copied next to them
    weights: Path | None = None


def select_trial(
    study: optuna.Study, *, trial: int | None = None, best_under: float | None = None
) -> optuna.trial.FrozenTrial:
    """Trial number ``trial``, or the fastest complete trial with accuracy loss ≤ ``best_under``."""
    from optuna.trial import TrialState

    from deltatune.search.pareto import best_under as _best_under
    from deltatune.search.pareto import trials_frame

    if (trial is None) == (best_under is None):
        raise ConfigError("give exactly one of --trial N or --best-under X")
    if trial is not None:
        found = [t for t in study.get_trials(deepcopy=False) if t.number == trial]
        if not found:
            raise ConfigError(f"--trial {trial}: study {study.study_name} has no such trial")
        if found[0].state != TrialState.COMPLETE:
            raise ConfigError(f"--trial {trial}: trial is {found[0].state.name}, not COMPLETE")
        return found[0]
    assert best_under is not None
    _, ok, must = non_negative(best_under)  # NaN is no loss, and within infinity is every trial
    if not ok:
        raise ConfigError(f"--best-under {best_under}: must be {must} (accuracy points)")
    row = _best_under(trials_frame(study), best_under)
    if row is None:
        raise ConfigError(
            f"--best-under {best_under}: no trial of {study.study_name} loses that little accuracy"
        )
    return [t for t in study.get_trials(deepcopy=False) if t.number == int(row["trial"])][0]


def export_trial(
    study: optuna.Study,
    path: str | Path | None = None,
    *,
    trial: int | None = None,
    best_under: float | None = None,
    format: str = "deltatune",
) -> ExportResult:
    """Write the chosen trial's thresholds to ``path`` (default ``<study>-trial<N>.json``), and for a
    ``--train`` trial its fine-tuned weights beside them: both files or neither (every input is checked
    first, and a failed write leaves no file)."""
    from dataclasses import replace

    from deltatune.delta.thresholds import thresholds_text, to_deltacnn
    from deltatune.search.pareto import WEIGHTS_ATTR, study_meta
    from deltatune.search.retime import RETIMED_ATTR
    from deltatune.search.segments import SEGMENTS_ATTR

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r} is unknown; choose one of {', '.join(FORMATS)}")
    t = select_trial(study, trial=trial, best_under=best_under)
    attrs = t.user_attrs
    if "thresholds" not in attrs:
        raise ConfigError(
            f"trial {t.number} of {study.study_name} has no thresholds (not a deltatune study?)"
        )
    meta = study_meta(study)
    out = Path(path) if path is not None else default_export_path(study, t.number)
    weights_src = _finetuned_weights(t)  # checked before anything is written
    tf = ThresholdFile.from_attrs(attrs, model=meta.get("model"))  # the trial's setting, as a file holds it
    if format == "deltatune":
        info = {
            "study": study.study_name,
            "trial": t.number,
            "strategy": attrs.get("strategy"),
            "accuracy_loss": _finite(t.values[0]),
            "speedup": _finite(t.values[1]),  # inf where nothing changed on the clip: JSON has no inf
            "budget": meta.get("budget"),
            "speed": meta.get("speed"),
            "workload": meta.get("workload"),
            "random_weights": meta.get("random_weights"),
            "finetune": attrs.get("finetune"),
            "retimed": (study.user_attrs.get(RETIMED_ATTR) or {}).get(str(t.number)),
        }
        if attrs.get(SEGMENTS_ATTR):  # scored on several segments: the values above are their aggregate
            info |= {"segments": attrs[SEGMENTS_ATTR], "aggregate": meta.get("aggregate") or "worst"}
        fingerprint = attrs.get(WEIGHTS_ATTR) or meta.get(WEIGHTS_ATTR)  # a --train trial ran its own weights
        text = thresholds_text(replace(tf, meta=info, weights=fingerprint))
    else:
        _check_deltacnn(t.number, tf)
        names = list(meta.get("threshold_names") or tf.thresholds)
        text = json.dumps(to_deltacnn(names, tf.thresholds), indent=2) + "\n"
    dst = exported_weights(out) if weights_src is not None else None
    if dst is not None and dst.is_dir():
        raise ConfigError(f"{dst}: is a folder, where the trial's fine-tuned weights go; give another -o")

    def write(tmp: list[Path | None]) -> None:
        import shutil

        assert tmp[0] is not None
        tmp[0].write_text(text, encoding="utf-8")
        if tmp[1] is not None and weights_src is not None:
            shutil.copyfile(weights_src, tmp[1])

    atomic_write_all([out, dst], write)  # both files, or neither
    return ExportResult(out, t.number, float(t.values[0]), float(t.values[1]), format, dst)


def default_export_path(study: optuna.Study, trial: int) -> Path:
    """Where :func:`export_trial` writes without a path: ``<study>-trial<N>.json`` here."""
    return Path(f"{study.study_name}-trial{trial}.json")


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _check_deltacnn(number: int, tf: ThresholdFile) -> None:
    """Refuse a setting DeltaCNN's format cannot hold (it would load as another setting)."""
    if tf.keyframe_interval:
        raise ConfigError(
            f"trial {number} runs a key frame every {tf.keyframe_interval} frames, which "
            "DeltaCNN's format cannot hold; export it --format deltatune"
        )
    if tf.keyframe_change is not None:
        raise ConfigError(
            f"trial {number} runs key frames on change (at {tf.keyframe_change} of the input), "
            "which DeltaCNN's format cannot hold; export it --format deltatune"
        )
    if tf.input_dilation != 1:  # the file would load with dilation 1: another setting
        raise ConfigError(
            f"trial {number} dilates the input mask by {tf.input_dilation}, which DeltaCNN's "
            "format cannot hold; export it --format deltatune"
        )
    if tf.mode != "max":  # it would load as mode max, DeltaCNN's
        raise ConfigError(
            f"trial {number} truncates in mode {tf.mode}, which DeltaCNN's format cannot hold "
            "(it reads as max); export it --format deltatune"
        )


def finetuned_model(model: str, weights: str | None) -> str:
    """The registered model that loads a fine-tune of ``model`` started from ``weights``: the model
    itself, or, from hrnet's default weights (another variant's), that variant."""
    if weights != "default":
        return model
    from deltatune_models import model_info

    return model_info(model).default_variant or model


def exported_weights(out: str | Path) -> Path:
    """Where :func:`export_trial` copies a ``--train`` trial's fine-tuned weights: ``<out stem>.weights.pt``
    beside the thresholds file ``out`` (:func:`~deltatune.delta.thresholds.weights_beside`)."""
    return weights_beside(out)


def _finetuned_weights(t: optuna.trial.FrozenTrial) -> Path | None:
    """A ``--train`` trial ran fine-tuned weights: where they are cached (export copies them next to the
    thresholds as ``<out stem>.weights.pt``, the thresholds only hold for them), or a one-line error when
    they are gone; ``None`` for a trial on the study's own weights."""
    if t.user_attrs.get("finetune") is None:
        return None
    src = Path(str(t.user_attrs.get("finetune_weights", "")))
    if not src.is_file():
        raise ConfigError(
            f"trial {t.number} ran fine-tuned weights that are no longer cached ({src}); re-create them "
            f"with deltatune finetune and the trial's settings: {json.dumps(t.user_attrs['finetune'])}"
        )
    return src
