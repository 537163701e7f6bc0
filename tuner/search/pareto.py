"""Pareto fronts of a search study: tidy tables, the front, its hypervolume, the trial to recommend.

One long-form schema, one row per finished trial (:func:`trials_frame`):

``trial, strategy, space, accuracy_loss, speedup, pck, constraint, feasible, worker, seed,
heldout_accuracy_loss, heldout_speedup``

``accuracy_loss`` is in PCK points (minimise), ``speedup`` is the MAC speedup (maximise), ``constraint`` is
``accuracy_loss − budget`` as stored by ``trial.set_constraint`` (feasible iff ≤ 0). Per-layer thresholds
are a second long-form table (:func:`thresholds_frame`): ``trial, layer, index, threshold``.

**Hypervolume** (:func:`hypervolume`) is the area, in PCK points × speedup, that the front dominates inside
the box bounded by the *reference point* ``(accuracy_loss = budget, speedup = 1)``: "how much speedup beyond
dense, over the whole accuracy budget". Points at or beyond the reference contribute nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import optuna

__all__ = [
    "TRIAL_COLUMNS",
    "trials_frame",
    "thresholds_frame",
    "settings_frame",
    "pareto_frame",
    "hypervolume",
    "best_under",
    "study_meta",
]

TRIAL_COLUMNS = (
    "trial",
    "strategy",
    "space",
    "accuracy_loss",
    "speedup",
    "pck",
    "constraint",
    "feasible",
    "worker",
    "seed",
    "heldout_accuracy_loss",
    "heldout_speedup",
)
META_KEY = "deltatune"
#: the weights' fingerprint (:func:`~deltatune.delta.fingerprint.weights_fingerprint`): in the study's meta
#: (the weights every trial starts from) and on a ``--train`` trial (the fine-tuned weights it ran)
WEIGHTS_ATTR = "weights_fingerprint"
#: the tuning frames' fingerprint (:meth:`~deltatune.search.objective.Evaluator.frames_fingerprint`), in
#: the study's meta: a study resumed on a video that changed under the same name is refused
FRAMES_ATTR = "frames_fingerprint"


def study_meta(study: optuna.Study) -> dict[str, Any]:
    """The deltatune metadata stored in the study's user attributes (workload, budget, names ...)."""
    return dict(study.user_attrs.get(META_KEY) or {})


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per COMPLETE trial in :data:`TRIAL_COLUMNS` order (held-out columns NaN when not scored)."""
    from optuna.trial import TrialState

    heldout = study.user_attrs.get("heldout") or {}
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cons = list(t.constraints.values())
        c = max(cons) if cons else math.nan
        h = heldout.get(str(t.number), {})
        rows.append(
            {
                "trial": t.number,
                "strategy": t.user_attrs.get("strategy"),
                "space": t.user_attrs.get("space"),
                "accuracy_loss": t.values[0],
                "speedup": t.values[1],
                "pck": t.user_attrs.get("pck", math.nan),
                "constraint": c,
                "feasible": bool(c <= 0) if cons else True,
                "worker": t.user_attrs.get("worker"),
                "seed": t.user_attrs.get("seed"),
                "heldout_accuracy_loss": h.get("accuracy_loss", math.nan),
                "heldout_speedup": h.get("speedup", math.nan),
            }
        )
    return pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))


def thresholds_frame(study: optuna.Study, trials: list[int] | None = None) -> pd.DataFrame:
    """Long-form per-layer thresholds (``None``/never-truncate as NaN) of the given (default: all) trials."""
    from optuna.trial import TrialState

    wanted = None if trials is None else set(trials)
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if wanted is not None and t.number not in wanted:
            continue
        for i, (layer, v) in enumerate((t.user_attrs.get("thresholds") or {}).items()):
            rows.append(
                {"trial": t.number, "layer": layer, "index": i, "threshold": math.nan if v is None else v}
            )
    return pd.DataFrame(rows, columns=["trial", "layer", "index", "threshold"])


#: Trial user attribute of an anchor trial pruned unrun, because another worker ran or is running the same
#: anchor: the number of that trial. Such a trial is left out of the pruned trials a search reports.
DUPLICATE_ATTR = "duplicate_of"


def settings_frame(study: optuna.Study, *, pruned: bool = False) -> pd.DataFrame:
    """One row per COMPLETE trial: what it ran, to sit beside :func:`trials_frame` in a CSV. The mode,
    input dilation and key frames; a ``--train`` trial's fine-tune (``finetune.<field>``, empty for the
    original weights); a search on several segments, each one's scores (``segment.<video@start>.<objective>``;
    the trial's own are their aggregate); every truncation point's threshold (``threshold.<name>``, empty:
    never truncate).
    ``pruned``: the PRUNED trials instead (a ``--train`` fine-tune stopped over the budget or by the
    timeout: its fine-tune, and the reason in ``pruned``; no thresholds were drawn)."""
    from optuna.trial import TrialState

    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.search.segments import SEGMENTS_ATTR

    rows = []
    state = TrialState.PRUNED if pruned else TrialState.COMPLETE
    for t in study.get_trials(deepcopy=False, states=(state,)):
        a = t.user_attrs
        if DUPLICATE_ATTR in a:  # a second copy of an anchor trial, pruned unrun: no fine-tune to show
            continue
        row: dict[str, Any] = {"trial": t.number}
        tf = None
        if not pruned:  # a pruned trial stopped before it drew a mode, key frames or thresholds
            tf = ThresholdFile.from_attrs({"thresholds": {}, **a})  # the attributes read as export reads them
            row.update(mode=tf.mode, input_dilation=tf.input_dilation, keyframe_interval=tf.keyframe_interval,
                       keyframe_change=tf.keyframe_change)
        if "finetune" in a:  # a --train study: None is a trial on the original weights
            row.update({f"finetune.{k}": v for k, v in (a["finetune"] or {}).items()
                        if not isinstance(v, (dict, list))})
            row["finetune.original_weights"] = a["finetune"] is None
        for seg in a.get(SEGMENTS_ATTR) or []:  # scored on several segments: each one's own scores
            row[f"segment.{seg['segment']}.accuracy_loss"] = seg["accuracy_loss"]
            row[f"segment.{seg['segment']}.speedup"] = seg["speedup"]
        if tf is not None:
            row.update({f"threshold.{k}": v for k, v in tf.thresholds.items()})
        if pruned:
            row["pruned"] = a.get("pruned")
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_frame(
    df: pd.DataFrame,
    *,
    loss: str = "accuracy_loss",
    speed: str = "speedup",
    feasible: str | None = "feasible",
) -> pd.DataFrame:
    """The non-dominated rows of ``df`` (min ``loss``, max ``speed``), sorted by ``speed``.

    With ``feasible`` (a bool column), only feasible rows compete, as in Optuna's constrained
    ``best_trials``. Rows with equal objective values are all kept.

    >>> df = pd.DataFrame({"accuracy_loss": [0.0, 0.5, 0.4, 2.0], "speedup": [1.5, 2.0, 3.0, 9.0],
    ...                    "feasible": [True, True, True, False]})
    >>> pareto_frame(df).index.tolist()
    [0, 2]
    """
    d = df
    if feasible is not None and feasible in d.columns:
        d = d[d[feasible].astype(bool)]
    d = d[np.isfinite(d[loss].astype(float)) & np.isfinite(d[speed].astype(float))]
    if d.empty:
        return d.copy()
    order = d.sort_values([speed, loss], ascending=[False, True])
    keep = []
    best_loss = math.inf
    best_speed = math.inf
    for idx, row in order.iterrows():
        lv, sv = float(row[loss]), float(row[speed])
        if lv < best_loss or (lv == best_loss and sv == best_speed):
            keep.append(idx)
            if lv < best_loss:
                best_loss, best_speed = lv, sv
    return d.loc[keep].sort_values([speed, loss])


def hypervolume(
    df: pd.DataFrame,
    *,
    ref_loss: float,
    ref_speed: float = 1.0,
    loss: str = "accuracy_loss",
    speed: str = "speedup",
) -> float:
    """Area dominated by the rows of ``df`` inside the box up to the reference point
    ``(ref_loss, ref_speed)``.

    >>> df = pd.DataFrame({"accuracy_loss": [0.0, 0.5], "speedup": [2.0, 3.0]})
    >>> hypervolume(df, ref_loss=1.0)  # 0.5 * (2 - 1) + 0.5 * (3 - 1)
    1.5
    """
    pts = sorted(
        (float(a), float(b))
        for a, b in zip(df[loss], df[speed], strict=True)
        if math.isfinite(a) and math.isfinite(b) and a < ref_loss and b > ref_speed
    )
    area = 0.0
    height = ref_speed
    for i, (lv, sv) in enumerate(pts):
        height = max(height, sv)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_loss
        area += (nxt - lv) * (height - ref_speed)
    return area


def best_under(
    df: pd.DataFrame,
    max_loss: float | None = None,
    *,
    loss: str = "accuracy_loss",
    speed: str = "speedup",
    feasible: str = "feasible",
) -> pd.Series | None:
    """The fastest row with ``loss ≤ max_loss`` (default: the feasible rows).

    Ties go to the lower loss, then the earlier trial.

    >>> df = pd.DataFrame({"trial": [0, 1, 2], "accuracy_loss": [0.2, 0.9, 3.0], "speedup": [2.0, 4.0, 8.0],
    ...                    "feasible": [True, True, False]})
    >>> int(best_under(df)["trial"]), int(best_under(df, 0.5)["trial"])
    (1, 0)
    """
    d = df[df[feasible].astype(bool)] if max_loss is None else df[df[loss] <= max_loss]
    d = d[np.isfinite(d[speed].astype(float))]
    if d.empty:
        return None
    by = [speed, loss] + (["trial"] if "trial" in d.columns else [])
    asc = [False, True] + ([True] if "trial" in d.columns else [])
    return d.sort_values(by, ascending=asc).iloc[0]
