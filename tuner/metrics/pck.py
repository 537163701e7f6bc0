"""PCK and PCKh: the fraction of reference keypoints that a prediction hits within a size-relative radius.

Definitions (docs/design.md#metrics):

- **PCK@α**: keypoint ``j`` of person ``i`` is correct iff ``‖pred[i, j] − ref[i, j]‖₂ < α · size[i]``
  (strict), where ``size[i] = max(w, h)`` of the person's reference box — the box given through
  ``box_size``, or else the tight box around that person's *counted* reference keypoints.
- **PCKh@α** (MPII): the same with ``size[i] = 0.6 · ‖(x2 − x1, y2 − y1)‖₂``, the head size from the head
  box; ``α = 0.5`` by convention. The official MPII evaluation uses ``<=``; with real-valued distances the
  two differ only on a set of measure zero, and this package uses ``<`` everywhere.
- A keypoint is **counted** iff it is visible/present (``visible``) and its reference coordinates are finite.
  Only counted keypoints enter any number.
- A person whose threshold is not positive and finite — no box given and fewer than two distinct counted
  keypoints (a tight box of size 0), a zero-size box, or a NaN box — is **skipped**: none of their keypoints
  is counted, and persons with at least one counted keypoint that were skipped this way are reported in
  ``n_skipped``. (Counting them would only add keypoints that can never be correct, because ``d < 0`` is
  impossible.)
- A non-finite prediction is simply wrong (its distance is NaN and ``NaN < t`` is false).

Inputs are ``[N, K, 2]`` arrays of ``(x, y)``; any leading shape ``[..., K, 2]`` works (e.g. ``[F, S, K, 2]``
for frames × streams), and per-person outputs then keep that leading shape. Torch tensors and numpy arrays
are both accepted; the compute is in float64 numpy.

The reference is the labels when a clip has them, else the dense model's own predictions ("fidelity"); the
accuracy cost of a delta network is reported with :func:`accuracy_loss_points`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from deltatune.errors import DeltatuneError

if TYPE_CHECKING:  # pandas is imported lazily: only the table helpers need it
    import pandas as pd

__all__ = [
    "PCKResult",
    "pck",
    "pckh",
    "box_sizes",
    "accuracy_loss_points",
    "pose_frame_table",
    "summarize",
]

#: MPII's head-size factor: head size = 0.6 × head-box diagonal.
HEAD_SIZE_FACTOR = 0.6

_TABLE_COLUMNS = ("frame", "stream", "joint", "distance", "threshold", "correct", "visible")


# --------------------------------------------------------------------------------------------- result


def _nan_to_none(values: np.ndarray) -> Any:
    if values.ndim == 0:
        v = float(values)
        return None if math.isnan(v) else v
    return [_nan_to_none(v) for v in values]


@dataclass(frozen=True, eq=False)
class PCKResult:
    """Result of :func:`pck` / :func:`pckh`.

    Attributes:
        value: fraction of counted keypoints that are correct, in [0, 1]; NaN if nothing was counted.
        per_joint: ``[K]`` fraction correct per joint over all persons; NaN for a joint never counted.
        per_frame: fraction correct per person (leading shape of the input, e.g. ``[N]``); NaN for persons
            with no counted keypoint (incl. skipped ones).
        thresholds: distance threshold per person (same shape as ``per_frame``); 0 or NaN where skipped.
        n_keypoints: number of counted keypoints (the denominator of ``value``).
        n_correct: number of correct keypoints (the numerator of ``value``).
        n_skipped: persons with at least one visible reference keypoint that were left out because their
            threshold was not positive (no usable box; see the module docstring).
        alpha: the α used.
    """

    value: float
    per_joint: np.ndarray
    per_frame: np.ndarray
    thresholds: np.ndarray
    n_keypoints: int
    n_correct: int
    n_skipped: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; NaN becomes ``None``."""
        return {
            "value": _nan_to_none(np.asarray(self.value)),
            "per_joint": _nan_to_none(self.per_joint),
            "per_frame": _nan_to_none(self.per_frame),
            "thresholds": _nan_to_none(self.thresholds),
            "n_keypoints": self.n_keypoints,
            "n_correct": self.n_correct,
            "n_skipped": self.n_skipped,
            "alpha": self.alpha,
        }


# --------------------------------------------------------------------------------------------- validation


def _as_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DeltatuneError(f"{name}: cannot convert to an array ({exc})") from None


def _as_float(x: Any, name: str) -> np.ndarray:
    arr = _as_array(x, name)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise DeltatuneError(f"{name}: expected numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _check_points(pred: Any, ref: Any, visible: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return float pred/ref ``[..., K, 2]`` and the counted mask ``[..., K]`` (visible and finite ref)."""
    p = _as_float(pred, "pred")
    r = _as_float(ref, "ref")
    if r.ndim < 3 or r.shape[-1] != 2:
        raise DeltatuneError(f"ref: expected shape [N, K, 2] (or [..., K, 2]), got {list(r.shape)}")
    if r.shape[-2] == 0:
        raise DeltatuneError(f"ref: expected at least one joint, got shape {list(r.shape)}")
    if p.shape != r.shape:
        raise DeltatuneError(f"pred: shape {list(p.shape)} does not match ref's shape {list(r.shape)}")
    if visible is None:
        vis = np.ones(r.shape[:-1], dtype=bool)
    else:
        v = _as_array(visible, "visible")
        if v.dtype != bool and not np.issubdtype(v.dtype, np.integer):
            raise DeltatuneError(f"visible: expected a bool (or integer 0/1) array, got dtype {v.dtype}")
        if v.shape != r.shape[:-1]:
            raise DeltatuneError(f"visible: expected shape {list(r.shape[:-1])}, got {list(v.shape)}")
        vis = v != 0
    return p, r, vis & np.isfinite(r).all(axis=-1)


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not (math.isfinite(a) and a > 0):
        raise DeltatuneError(f"alpha: expected a positive finite number, got {alpha!r}")
    return a


def _check_box_size(box_size: Any, leading: tuple[int, ...]) -> np.ndarray:
    b = _as_float(box_size, "box_size")
    if b.shape != leading:
        raise DeltatuneError(f"box_size: expected shape {list(leading)}, got {list(b.shape)}")
    if (b < 0).any() or np.isinf(b).any():
        raise DeltatuneError("box_size: sizes must be >= 0 and not infinite (NaN marks a missing box)")
    return b


def _check_boxes(boxes: Any, leading: tuple[int, ...], name: str) -> np.ndarray:
    b = _as_float(boxes, name)
    if b.shape != (*leading, 4):
        raise DeltatuneError(f"{name}: expected shape {[*leading, 4]} (x1, y1, x2, y2), got {list(b.shape)}")
    return b


# --------------------------------------------------------------------------------------------- compute


def _tight_box_sizes(ref: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """max(w, h) of the box around each person's counted reference keypoints; 0 without any."""
    any_counted = counted.any(axis=-1)
    x = ref[..., 0]
    y = ref[..., 1]
    w = np.where(counted, x, -np.inf).max(axis=-1) - np.where(counted, x, np.inf).min(axis=-1)
    h = np.where(counted, y, -np.inf).max(axis=-1) - np.where(counted, y, np.inf).min(axis=-1)
    return np.where(any_counted, np.maximum(w, h), 0.0)


def _evaluate(
    pred: np.ndarray, ref: np.ndarray, counted: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances ``[..., K]``, the counted mask after skipping persons, and the correct mask."""
    distance = np.linalg.norm(pred - ref, axis=-1)
    usable = np.isfinite(thresholds) & (thresholds > 0)
    counted = counted & usable[..., None]
    with np.errstate(invalid="ignore"):
        correct = counted & (distance < thresholds[..., None])
    return distance, counted, correct


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def _result(
    pred: np.ndarray, ref: np.ndarray, present: np.ndarray, thresholds: np.ndarray, alpha: float
) -> PCKResult:
    _, counted, correct = _evaluate(pred, ref, present, thresholds)
    k = ref.shape[-2]
    n_keypoints = int(counted.sum())
    n_correct = int(correct.sum())
    skipped = present.any(axis=-1) & ~counted.any(axis=-1)
    per_joint = _ratio(correct.reshape(-1, k).sum(axis=0), counted.reshape(-1, k).sum(axis=0))
    per_frame = _ratio(correct.sum(axis=-1), counted.sum(axis=-1))
    for arr in (per_joint, per_frame, thresholds):
        arr.setflags(write=False)
    return PCKResult(
        value=n_correct / n_keypoints if n_keypoints else math.nan,
        per_joint=per_joint,
        per_frame=per_frame,
        thresholds=thresholds,
        n_keypoints=n_keypoints,
        n_correct=n_correct,
        n_skipped=int(skipped.sum()),
        alpha=alpha,
    )


def _pck_thresholds(ref: np.ndarray, present: np.ndarray, alpha: float, box_size: Any) -> np.ndarray:
    if box_size is None:
        sizes = _tight_box_sizes(ref, present)
    else:
        sizes = _check_box_size(box_size, ref.shape[:-2])
    return alpha * sizes


def pck(
    pred: Any,
    ref: Any,
    *,
    visible: Any = None,
    alpha: float = 0.2,
    box_size: Any = None,
) -> PCKResult:
    """PCK@α: fraction of counted reference keypoints predicted within ``α · max(w, h)`` of the person box.

    ``pred`` and ``ref`` are ``[N, K, 2]`` (or ``[..., K, 2]``) tensors/arrays of ``(x, y)``; ``visible``
    (``[N, K]`` bool, default all) says which reference keypoints exist. ``box_size`` (``[N]``) is
    ``max(w, h)`` of a given person box (see :func:`box_sizes`); without it the tight box around the
    person's counted reference keypoints is used, and persons with fewer than two distinct counted
    keypoints are skipped (``n_skipped``). Correct means distance strictly below the threshold.

    Example:
        >>> ref = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 5.0]]])  # tight box 10 x 5 -> size 10
        >>> pred = ref + np.array([[[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]])  # distances 1, 2, 3; t = 0.2*10 = 2
        >>> r = pck(pred, ref)
        >>> r.value, r.n_correct, r.n_keypoints  # only distance 1 is < 2
        (0.3333333333333333, 1, 3)
    """
    a = _check_alpha(alpha)
    p, r, present = _check_points(pred, ref, visible)
    return _result(p, r, present, _pck_thresholds(r, present, a, box_size), a)


def pckh(pred: Any, ref: Any, *, visible: Any = None, head_boxes: Any, alpha: float = 0.5) -> PCKResult:
    """PCKh@α (MPII): threshold ``α · 0.6 · ‖(x2 − x1, y2 − y1)‖₂`` from each person's head box.

    ``head_boxes`` is ``[N, 4]`` as ``(x1, y1, x2, y2)``; a person with a zero-size or NaN head box is
    skipped. Otherwise as :func:`pck`.

    Example:
        >>> ref = np.zeros((1, 2, 2))
        >>> pred = np.array([[[2.9, 0.0], [0.0, 3.0]]])
        >>> head = np.array([[0.0, 0.0, 6.0, 8.0]])  # diagonal 10 -> head size 6 -> t = 0.5*6 = 3
        >>> pckh(pred, ref, head_boxes=head).value  # 2.9 < 3 correct, 3.0 < 3 not
        0.5
    """
    a = _check_alpha(alpha)
    p, r, present = _check_points(pred, ref, visible)
    boxes = _check_boxes(head_boxes, r.shape[:-2], "head_boxes")
    head_size = HEAD_SIZE_FACTOR * np.hypot(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
    return _result(p, r, present, a * head_size, a)


def box_sizes(boxes: Any) -> np.ndarray:
    """``max(w, h)`` of ``[..., 4]`` boxes given as ``(x1, y1, x2, y2)``, for :func:`pck`'s ``box_size``.

    Example:
        >>> box_sizes(np.array([[0.0, 0.0, 30.0, 80.0], [5.0, 5.0, 15.0, 9.0]])).tolist()
        [80.0, 10.0]
    """
    b = _as_float(boxes, "boxes")
    if b.ndim < 1 or b.shape[-1] != 4:
        raise DeltatuneError(f"boxes: expected shape [..., 4] (x1, y1, x2, y2), got {list(b.shape)}")
    return np.maximum(np.abs(b[..., 2] - b[..., 0]), np.abs(b[..., 3] - b[..., 1]))


def accuracy_loss_points(pck_reference: float, pck_candidate: float) -> float:
    """Accuracy loss in PCK percentage points: ``100 · (reference − candidate)``.

    Both arguments are PCK fractions in [0, 1] (e.g. dense model vs delta model against the same labels).
    A result of 1.0 means the candidate lost one PCK point; negative means it scored higher.

    Example:
        >>> round(accuracy_loss_points(0.90, 0.885), 6)
        1.5
    """
    for name, v in (("pck_reference", pck_reference), ("pck_candidate", pck_candidate)):
        if not (isinstance(v, int | float | np.floating | np.integer) and 0.0 <= float(v) <= 1.0):
            raise DeltatuneError(f"{name}: expected a PCK fraction in [0, 1], got {v!r}")
    return 100.0 * (float(pck_reference) - float(pck_candidate))


# --------------------------------------------------------------------------------------------- tables


def _index_grid(index: Any, leading: tuple[int, ...], default: np.ndarray, name: str) -> np.ndarray:
    if index is None:
        return np.broadcast_to(default, leading)
    arr = _as_array(index, name)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DeltatuneError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.shape != leading:
        raise DeltatuneError(f"{name}: expected shape {list(leading)}, got {list(arr.shape)}")
    return arr


def pose_frame_table(
    pred: Any,
    ref: Any,
    *,
    visible: Any = None,
    alpha: float = 0.2,
    box_size: Any = None,
    frame_index: Any = None,
    stream_index: Any = None,
) -> pd.DataFrame:
    """Long-form PCK table, one row per (frame, stream, joint), for per-frame plots and aggregation.

    Columns: ``frame``, ``stream``, ``joint`` (int), ``distance`` (px), ``threshold`` (the person's PCK
    threshold; 0 or NaN where the person is skipped), ``correct`` (bool, false where not counted),
    ``visible`` (bool: visible and finite reference). A row is counted iff ``visible`` and
    ``threshold > 0``; :func:`summarize` aggregates on that rule and reproduces :func:`pck`.

    ``pred``/``ref`` are ``[N, K, 2]`` (frame = row index, stream 0) or ``[F, S, K, 2]`` (frame, stream =
    grid position). ``frame_index``/``stream_index`` (integer arrays of the leading shape) relabel them.

    Example:
        >>> ref = np.array([[[0.0, 0.0], [10.0, 0.0]]])
        >>> df = pose_frame_table(ref + 1.0, ref)  # distance sqrt(2) ~ 1.41 < 0.2 * 10 = 2
        >>> df[["frame", "joint", "correct"]].values.tolist()
        [[0, 0, True], [0, 1, True]]
    """
    import pandas as pd

    a = _check_alpha(alpha)
    p, r, present = _check_points(pred, ref, visible)
    leading = r.shape[:-2]
    if len(leading) == 1:
        frame_default, stream_default = np.arange(leading[0]), np.zeros(leading, dtype=np.int64)
    elif len(leading) == 2:
        frame_default = np.arange(leading[0])[:, None]
        stream_default = np.arange(leading[1])[None, :]
    else:
        raise DeltatuneError(f"ref: expected shape [N, K, 2] or [F, S, K, 2], got {list(r.shape)}")
    frames = _index_grid(frame_index, leading, frame_default, "frame_index")
    streams = _index_grid(stream_index, leading, stream_default, "stream_index")
    thresholds = _pck_thresholds(r, present, a, box_size)
    distance, _, correct = _evaluate(p, r, present, thresholds)
    k = r.shape[-2]
    return pd.DataFrame(
        {
            "frame": np.repeat(frames.reshape(-1), k).astype(np.int64),
            "stream": np.repeat(streams.reshape(-1), k).astype(np.int64),
            "joint": np.tile(np.arange(k, dtype=np.int64), int(np.prod(leading))),
            "distance": distance.reshape(-1),
            "threshold": np.repeat(thresholds.reshape(-1), k),
            "correct": correct.reshape(-1),
            "visible": present.reshape(-1),
        }
    )


def summarize(df: pd.DataFrame, *, by: str | Sequence[str] = "joint") -> pd.DataFrame:
    """Aggregate a :func:`pose_frame_table` into PCK per group plus an overall row.

    Returns columns ``*by``, ``n_keypoints``, ``n_correct``, ``pck`` (NaN for groups with nothing counted),
    one row per group (sorted) and a last row whose ``by`` columns are ``"all"``. The overall row equals
    :func:`pck`'s ``value`` on the same inputs.

    Example:
        >>> ref = np.array([[[0.0, 0.0], [10.0, 0.0]]])
        >>> summarize(pose_frame_table(ref + 1.0, ref))["pck"].tolist()
        [1.0, 1.0, 1.0]
    """
    import pandas as pd

    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in _TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise DeltatuneError(f"summarize: table lacks columns {missing}; expected a pose_frame_table")
    bad = [c for c in keys if c not in ("frame", "stream", "joint")]
    if bad or not keys:
        raise DeltatuneError(f"summarize: by must name frame, stream and/or joint, got {by!r}")
    counted = df["visible"].astype(bool) & (df["threshold"] > 0)
    work = pd.DataFrame(
        {
            **{c: df[c] for c in keys},
            "n_keypoints": counted.astype(np.int64),
            "n_correct": (counted & df["correct"].astype(bool)).astype(np.int64),
        }
    )
    groups = work.groupby(keys, sort=True)[["n_keypoints", "n_correct"]].sum().reset_index()
    total = {c: "all" for c in keys}
    total.update(n_keypoints=int(work["n_keypoints"].sum()), n_correct=int(work["n_correct"].sum()))
    out = pd.concat([groups.astype({c: object for c in keys}), pd.DataFrame([total])], ignore_index=True)
    out["n_keypoints"] = out["n_keypoints"].astype(np.int64)
    out["n_correct"] = out["n_correct"].astype(np.int64)
    out["pck"] = _ratio(out["n_correct"].to_numpy(float), out["n_keypoints"].to_numpy(float))
    return out
