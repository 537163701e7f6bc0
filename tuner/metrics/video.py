"""Pose evaluation on a real clip: a model (dense or delta) over streams, scored against a reference.

The reference is either labels (:class:`~deltatune.data.labels.KeypointLabels`, in full-frame pixel
coordinates) or the dense model's own predictions ("fidelity"). Predictions are decoded from heatmaps
(official argmax + quarter-pixel rule), mapped from heatmap to input pixels and then, when crop windows
are given, from the resized crop back to full-frame pixels, so that labels and predictions share one
coordinate frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from deltatune.errors import ConfigError, LabelError
from deltatune.metrics.decode import decode_heatmaps, heatmap_to_input_coords
from deltatune.metrics.outputs import described, output_tensor
from deltatune.metrics.pck import pck, pose_frame_table, summarize

if TYPE_CHECKING:
    import pandas as pd

    from deltatune.data.labels import KeypointLabels

__all__ = ["PoseEvaluation", "predict_keypoints", "evaluate_pose", "heatmaps_of", "crop_to_frame"]


class NoHeatmapsError(ConfigError, TypeError):
    """A pose model's output holds no heatmaps where deltatune reads them: a one-line error for the
    command line (a :class:`ConfigError`), and still a ``TypeError`` for callers that test output types."""


def heatmaps_of(out: Any) -> Tensor:
    """The heatmap tensor of a model output (a tensor, the first of a tuple, or ``out["heatmaps"]``);
    :class:`NoHeatmapsError` otherwise."""
    heatmaps = output_tensor(out, "heatmaps")
    if heatmaps is None:
        raise NoHeatmapsError(f"model output of type {described(out)} has no heatmaps: a pose model returns "
                              "them as a tensor, the first element of a tuple, or out['heatmaps']")
    return heatmaps


def predict_keypoints(
    run: Callable[[Tensor], Any],
    clip: Tensor,
    *,
    input_size: Sequence[int],
    windows: Sequence[Any] | None = None,
    with_peaks: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Run ``run`` on every frame of ``clip`` ``[T, B, 3, H, W]``; keypoints ``[T, B, K, 2]``.

    Coordinates are input-crop pixels, or full-frame pixels when ``windows`` (one per stream, with
    ``x, y, w, h``) are given. ``with_peaks`` also returns each keypoint's heatmap peak ``[T, B, K]``,
    which says whether a dense keypoint is present (:func:`deltatune.metrics.present_joints`).
    """
    out, peaks = [], []
    with torch.no_grad():
        for x in clip:
            hm = heatmaps_of(run(x))
            xy, peak = decode_heatmaps(hm)
            out.append(heatmap_to_input_coords(xy, heatmap_size=hm.shape[-2:], input_size=input_size))
            peaks.append(peak)
    kp = torch.stack(out)
    kp = crop_to_frame(kp, input_size=input_size, windows=windows) if windows else kp
    return (kp, torch.stack(peaks)) if with_peaks else kp


def crop_to_frame(kp: Tensor, *, input_size: Sequence[int], windows: Sequence[Any]) -> Tensor:
    """Keypoints ``[T, B, K, 2]`` in resized-crop pixels -> full-frame pixels, stream ``b`` through
    ``windows[b]`` (``x, y, w, h``; the crop was resized from ``w x h`` to ``input_size``)."""
    h, w = input_size
    out = kp.clone()
    for s, win in enumerate(windows):
        out[:, s, :, 0] = win.x + kp[:, s, :, 0] * (win.w / w)
        out[:, s, :, 1] = win.y + kp[:, s, :, 1] * (win.h / h)
    return out


@dataclass(frozen=True)
class PoseEvaluation:
    """Per-keypoint rows and the PCK of one run against one reference."""

    table: pd.DataFrame
    pck: float
    alpha: float
    reference: str

    def per_joint(self) -> pd.DataFrame:
        return summarize(self.table, by="joint")

    def per_frame(self) -> pd.DataFrame:
        return summarize(self.table, by="frame")

    def to_dict(self) -> dict[str, Any]:
        return {"pck": self.pck, "alpha": self.alpha, "reference": self.reference,
                "n_keypoints": int(self.table["visible"].sum())}


def evaluate_pose(
    pred: Tensor,
    *,
    reference: Tensor | KeypointLabels,
    alpha: float = 0.2,
    present: Any = None,
) -> PoseEvaluation:
    """Score predicted keypoints ``[T, B, K, 2]`` against dense predictions (same shape) or labels.

    Labels must cover the clip: ``labels.coords`` is ``[F, S, K, 2]`` with ``F >= T`` and ``S == B``.
    ``present`` (bool ``[T, B, K]``, dense reference only) counts only those reference keypoints, e.g.
    ``present_joints(peaks, model_info(m).present_confidence)`` with the peaks from
    ``predict_keypoints(..., with_peaks=True)`` (docs/design.md#metrics, :mod:`deltatune.metrics.fidelity`).
    """
    if present is not None and not isinstance(reference, Tensor):
        raise LabelError("present= applies to a dense-prediction reference; labels carry their own "
                         "visibility")
    if isinstance(reference, Tensor):
        ref, visible, box, kind = reference, present, None, "dense"
    else:
        t, b, k = pred.shape[:3]
        if reference.coords.shape[0] < t or reference.coords.shape[1] != b or reference.coords.shape[2] != k:
            raise LabelError(
                f"labels cover {tuple(reference.coords.shape[:3])} (frames, streams, joints) but the run has "
                f"{(t, b, k)}"
            )
        ref = torch.as_tensor(reference.coords[:t])
        visible = torch.as_tensor(reference.visible[:t])
        box = None
        if reference.boxes is not None:
            bx = torch.as_tensor(reference.boxes[:t])
            box = torch.maximum(bx[..., 2] - bx[..., 0], bx[..., 3] - bx[..., 1])
        kind = "labels"
    result = pck(pred, ref, visible=visible, alpha=alpha, box_size=box)
    table = pose_frame_table(pred, ref, visible=visible, alpha=alpha, box_size=box)
    return PoseEvaluation(table=table, pck=float(result.value), alpha=alpha, reference=kind)
