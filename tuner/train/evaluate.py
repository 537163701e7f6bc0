"""Fidelity of a distilled student to its teacher: PCK@α on held-out frames, teacher-visible joints only.

Protocol (the number the default-weights bar refers to): every frame of the held-out ranges × every
default crop window of its source; the student sees the window resized to its input size exactly as
:class:`deltatune.data.video.FrameStreams` produces it, preprocessed as its model card says (colour
order, mean/std: :func:`deltatune.workload.preprocess`, as every other command feeds it);
its heatmaps are decoded the official way (argmax + quarter-pixel shift, stride 4, no flip test). The
reference is the window's primary teacher person (:meth:`TeacherTargets.primary`: BlazePose-full's
COCO-17-mapped keypoints, see :mod:`deltatune.train.teacher`) in the same crop's pixel coordinates;
windows without one are skipped; only joints the teacher marks visible *and* present (pose flag above
0.5) and that lie inside the crop count; the PCK threshold is α × the longer side of the tight box
around those joints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from deltatune.errors import ConfigError

from .geometry import crop_resize, frame_to_crop, person_box
from .teacher import TeacherTargets

__all__ = ["FidelityResult", "evaluate_fidelity", "predict_coco"]


@dataclass(frozen=True)
class FidelityResult:
    """PCK of the student against the teacher: ``pck`` overall, ``per_joint`` [17], counts."""

    pck: float
    alpha: float
    crops: str
    n_keypoints: int
    n_samples: int
    n_skipped: int
    per_joint: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "pck": self.pck,
            "alpha": self.alpha,
            "crops": self.crops,
            "n_keypoints": self.n_keypoints,
            "n_samples": self.n_samples,
            "n_skipped": self.n_skipped,
            "per_joint": list(self.per_joint),
        }


@torch.no_grad()
def predict_coco(model: nn.Module, images: Tensor, *, preprocessing: Any) -> Tensor:
    """Student keypoints ``[N, K, 2]`` (input-pixel index coordinates) of RGB images in [0, 1], fed to the
    model as ``preprocessing`` (its model card: colour order, mean/std) says."""
    from deltatune.metrics import decode_heatmaps, heatmap_to_input_coords
    from deltatune.workload import preprocess

    heat = model(preprocess(images, preprocessing))
    coords, _ = decode_heatmaps(heat.float())
    return heatmap_to_input_coords(coords, heatmap_size=heat.shape[-2:], input_size=images.shape[-2:])


def evaluate_fidelity(
    model: nn.Module,
    targets: TeacherTargets,
    frames: dict[str, Tensor],
    *,
    input_size: tuple[int, int],
    preprocessing: Any,
    alpha: float = 0.2,
    crops: str = "windows",
    batch_size: int = 16,
) -> FidelityResult:
    """PCK@``alpha`` of ``model`` against the teacher keypoints in ``targets`` (see the module docstring).

    ``frames`` comes from :func:`deltatune.train.teacher.load_frames` for ``targets.ranges``;
    ``preprocessing`` is the model's card (anything with ``mean``, ``std``, ``color_order``; see
    :func:`deltatune.workload.preprocess`).
    ``crops="windows"``: every default window with a reference person (the search's workload);
    ``crops="persons"``: the top-down box (:func:`~deltatune.train.geometry.person_box`, 1.25 × the
    tight box of the counted joints at 3:4) around every person the teacher accepts with at least 4
    counted joints (the standard top-down protocol, as HRNet is evaluated with person boxes).
    """
    from deltatune.metrics import pck

    was_training = model.training
    model.eval()
    counted = targets.counted()
    items = []  # (clip, frame, crop box, person)
    if crops == "windows":
        for ri, fi, wi in targets.samples():
            box = targets.windows[ri][wi]
            person = targets.primary(ri, fi, box)
            if person is not None:
                items.append((str(targets.ranges[ri]), fi, box, person))
    elif crops == "persons":
        for p in range(len(targets.frame)):
            if int(counted[p].sum()) >= 4:
                box = person_box(targets.keypoints[p][counted[p]])
                items.append(
                    (str(targets.ranges[int(targets.range_index[p])]), int(targets.frame[p]), box, p)
                )
    else:
        raise ConfigError(f"crops={crops!r} must be 'windows' or 'persons'")
    if not items:
        raise ConfigError("the teacher found no person in any held-out window: nothing to evaluate")
    preds, refs, visible = [], [], []
    h, w = input_size
    try:
        for lo in range(0, len(items), batch_size):
            images = []
            for key, fi, box, person in items[lo : lo + batch_size]:
                images.append(crop_resize(frames[key][fi], box, input_size))
                ref = frame_to_crop(targets.keypoints[person], box, input_size)
                inside = (ref[:, 0] >= 0) & (ref[:, 0] <= w - 1) & (ref[:, 1] >= 0) & (ref[:, 1] <= h - 1)
                refs.append(ref)
                visible.append(counted[person] & inside)
            preds.append(predict_coco(model, torch.stack(images), preprocessing=preprocessing))
    finally:
        model.train(was_training)
    result = pck(
        torch.cat(preds).numpy(), torch.stack(refs).numpy(), visible=torch.stack(visible).numpy(), alpha=alpha
    )
    return FidelityResult(
        pck=float(result.value),
        alpha=alpha,
        crops=crops,
        n_keypoints=result.n_keypoints,
        n_samples=len(items),
        n_skipped=result.n_skipped,
        per_joint=tuple(float(v) for v in result.per_joint),
    )
