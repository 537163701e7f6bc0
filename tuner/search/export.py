"""Export a trial's thresholds as a file that ``inspect``/``bench``/``DeltaNetwork.load_thresholds`` load.

The thresholds come from the trial's ``thresholds`` user attribute (every strategy writes it), so the file
reproduces the trial exactly: loading it into the same model and re-running the study's workload gives the
same MAC speedup and accuracy loss. ``deltacnn`` writes DeltaCNN's ``{"0": t0, ...}`` in execution order
(see :func:`deltatune.delta.thresholds.to_deltacnn`; DeltaCNN's fused-activation keys are not inserted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deltatune._atomic import atomic_write_text
from deltatune.delta.thresholds import weights_beside
from deltatune.errors import ConfigError

if TYPE_CHECKING:
    import optuna

__all__ = ["FORMATS", "ExportResult", "select_trial", "export_trial", "finetuned_model", "exported_weights"]

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
    if not best_under >= 0:  # also NaN
        raise ConfigError(f"--best-under {best_under}: must be >= 0 (accuracy points)")
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
    """Write the chosen trial's thresholds to ``path`` (default ``<study>-trial<N>.json``)."""
    from dataclasses import replace

    from deltatune.delta.thresholds import ThresholdFile, save_thresholds, to_deltacnn
    from deltatune.search.pareto import WEIGHTS_ATTR, study_meta
    from deltatune.search.retime import RETIMED_ATTR

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r} is unknown; choose one of {', '.join(FORMATS)}")
    t = select_trial(study, trial=trial, best_under=best_under)
    attrs = t.user_attrs
    if "thresholds" not in attrs:
        raise ConfigError(
            f"trial {t.number} of {study.study_name} has no thresholds (not a deltatune study?)"
        )
    meta = study_meta(study)
    out = Path(path) if path is not None else Path(f"{study.study_name}-trial{t.number}.json")
    tf = ThresholdFile.from_attrs(attrs, model=meta.get("model"))  # the trial's setting, as a file holds it
    if format == "deltatune":
        info = {
            "study": study.study_name,
            "trial": t.number,
            "strategy": attrs.get("strategy"),
            "accuracy_loss": t.values[0],
            "speedup": t.values[1],
            "budget": meta.get("budget"),
            "speed": meta.get("speed"),
            "workload": meta.get("workload"),
            "random_weights": meta.get("random_weights"),
            "finetune": attrs.get("finetune"),
            "retimed": (study.user_attrs.get(RETIMED_ATTR) or {}).get(str(t.number)),
        }
        fingerprint = attrs.get(WEIGHTS_ATTR) or meta.get(WEIGHTS_ATTR)  # a --train trial ran its own weights
        save_thresholds(out, replace(tf, meta=info, weights=fingerprint))
    else:
        if tf.keyframe_interval:
            raise ConfigError(
                f"trial {t.number} runs a key frame every {tf.keyframe_interval} frames, which "
                "DeltaCNN's format cannot hold; export it --format deltatune"
            )
        if tf.keyframe_change is not None:
            raise ConfigError(
                f"trial {t.number} runs key frames on change (at {tf.keyframe_change} of the input), "
                "which DeltaCNN's format cannot hold; export it --format deltatune"
            )
        if tf.input_dilation != 1:  # the file would load with dilation 1: another setting
            raise ConfigError(
                f"trial {t.number} dilates the input mask by {tf.input_dilation}, which DeltaCNN's "
                "format cannot hold; export it --format deltatune"
            )
        if tf.mode != "max":  # it would load as mode max, DeltaCNN's
            raise ConfigError(
                f"trial {t.number} truncates in mode {tf.mode}, which DeltaCNN's format cannot hold "
                "(it reads as max); export it --format deltatune"
            )
        names = list(meta.get("threshold_names") or tf.thresholds)
        atomic_write_text(out, json.dumps(to_deltacnn(names, tf.thresholds), indent=2) + "\n")
    weights = _export_weights(t, out)
    return ExportResult(out, t.number, float(t.values[0]), float(t.values[1]), format, weights)


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


def _export_weights(t: optuna.trial.FrozenTrial, out: Path) -> Path | None:
    """A ``--train`` trial ran fine-tuned weights: copy them next to the thresholds as
    ``<out stem>.weights.pt`` (the thresholds only hold for those weights)."""
    import shutil

    if t.user_attrs.get("finetune") is None:
        return None
    src = Path(str(t.user_attrs.get("finetune_weights", "")))
    if not src.is_file():
        raise ConfigError(
            f"trial {t.number} ran fine-tuned weights that are no longer cached ({src}); re-create them "
            f"with deltatune finetune and the trial's settings: {json.dumps(t.user_attrs['finetune'])}"
        )
    dst = exported_weights(out)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
    return dst
