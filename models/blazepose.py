"""BlazePose-full (MediaPipe's pose landmark CNN) as a plain, FX-traceable PyTorch model.

Why: it is the one real pretrained pose CNN available offline (docs/design.md#offline-assets), and it is a
MobileNet-style encoder-decoder, the kind of network delta inference suits. Its weights come from
``pose_landmark_full.tflite`` (asset ``blazepose_tflite``), converted by :mod:`._tflite`.

Architecture vs weights: the graph of the converted model ships as ``blazepose_full.json`` next to
this file (written by :func:`export_spec` from the ``.tflite``; a test checks it still matches), so
the registered entry point builds the architecture without the ``.tflite`` file or the ``tflite``
parser, e.g. on the ``meta`` device. Weights are converted once and cached as a ``state_dict`` under
``data_dir()/converted/`` (loaded with ``torch.load(..., weights_only=True)``).

Input: RGB, NCHW float in [0, 1] (pixels / 255; no mean/std), 256×256, the person roughly centred
and upright (MediaPipe feeds a detector-derived, rotated ROI crop).

Outputs of the full graph (:class:`BlazePoseFull`), in input pixels of the 256×256 crop:

- ``landmarks`` [N, 39, 5]: x, y, z, visibility, presence (the last two after a sigmoid). Rows 0–32
  are the body landmarks of :data:`LANDMARK_NAMES`; 33–34 are MediaPipe's ROI alignment points; 35–38
  are unused by MediaPipe. z is relative depth on the x scale (hips ≈ 0, smaller = nearer).
- ``pose_flag`` [N]: probability that a person is in the crop (the model applies the sigmoid).
- ``heatmaps`` [N, 39, 64, 64]: raw logits (MediaPipe applies a sigmoid); cell (i, j) is at input
  pixel (4j, 4i).
- ``segmentation`` [N, 1, 256, 256]: person mask logits.
- ``world_landmarks`` [N, 39, 3]: metres, origin between the hips.

The registered model ``blazepose`` keeps only the heatmap head: ``forward(x) -> [N, 39, 64, 64]``
logits, the one tensor the delta engine and PCK use.

Example::

    from deltatune_models import create_model
    model = create_model("blazepose")                 # heatmaps only, default weights
    full = build_blazepose(full=True)                 # landmarks, pose flag, segmentation, ...
    out = full(torch.rand(1, 3, 256, 256))            # out.landmarks: [1, 39, 5]
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from deltatune._atomic import atomic_write_bytes
from deltatune.errors import WeightsError

from ._registry import ModelCard, register_model
from ._tflite import SPEC_FORMAT, GraphSpec, TFLiteModule, build_module, parse_tflite

__all__ = [
    "BLAZEPOSE_FLIP_PAIRS",
    "BLAZEPOSE_TO_COCO17",
    "BlazePoseFull",
    "BlazePoseOutput",
    "LANDMARK_NAMES",
    "blazepose",
    "blazepose_to_coco17",
    "build_blazepose",
    "converted_state",
    "decode_landmarks",
    "export_spec",
    "heatmap_keypoints",
    "load_blazepose_weights",
    "refine_landmarks",
]

logger = logging.getLogger(__name__)

SPEC_FILE = Path(__file__).with_name("blazepose_full.json")
ASSET = "blazepose_tflite"
INPUT_SIZE = 256
HEATMAP_STRIDE = 4  # 256 / 64

#: TFLite output tensor names, as in the file.
OUT_LANDMARKS, OUT_FLAG, OUT_SEGMENTATION, OUT_HEATMAPS, OUT_WORLD = (
    "Identity",
    "Identity_1",
    "Identity_2",
    "Identity_3",
    "Identity_4",
)
#: Module names given to the ops that produce the image-shaped outputs (others keep Keras names).
_RENAME = {OUT_SEGMENTATION: "segmentation", OUT_HEATMAPS: "heatmap"}

#: MediaPipe's 33 body landmarks, then its 2 ROI alignment points and 4 unused rows (39 in all).
LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
    "roi_center",
    "roi_scale",
    "unused_35",
    "unused_36",
    "unused_37",
    "unused_38",
)

#: COCO-17 joint k is BlazePose landmark ``BLAZEPOSE_TO_COCO17[k]``:
#: nose←0 nose, left_eye←2, right_eye←5, left_ear←7, right_ear←8, left_shoulder←11,
#: right_shoulder←12, left_elbow←13, right_elbow←14, left_wrist←15, right_wrist←16, left_hip←23,
#: right_hip←24, left_knee←25, right_knee←26, left_ankle←27, right_ankle←28.
BLAZEPOSE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

#: Left/right landmark pairs (for horizontal-flip test-time augmentation).
BLAZEPOSE_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 4),
    (2, 5),
    (3, 6),
    (7, 8),
    (9, 10),
    (11, 12),
    (13, 14),
    (15, 16),
    (17, 18),
    (19, 20),
    (21, 22),
    (23, 24),
    (25, 26),
    (27, 28),
    (29, 30),
    (31, 32),
)


def blazepose_to_coco17(landmarks: Any, *, dim: int = -2) -> Any:
    """Select the 17 COCO joints from BlazePose landmarks along ``dim`` (tensor or ndarray).

    Default ``dim=-2`` fits ``[..., 39, C]`` landmark arrays; use ``dim=1`` for ``[N, 39, H, W]`` heatmaps.

    >>> blazepose_to_coco17(torch.arange(39.0)[:, None]).flatten().tolist()[:5]
    [0.0, 2.0, 5.0, 7.0, 8.0]
    """
    if isinstance(landmarks, torch.Tensor):
        index = torch.tensor(BLAZEPOSE_TO_COCO17, device=landmarks.device)
        return landmarks.index_select(dim, index)
    return np.take(np.asarray(landmarks), BLAZEPOSE_TO_COCO17, axis=dim)


def decode_landmarks(raw: torch.Tensor) -> torch.Tensor:
    """``[N, 195]`` regression output -> ``[N, 39, 5]`` (x, y, z px; sigmoid visibility, presence)."""
    lm = raw.reshape(raw.shape[0], 39, 5)
    return torch.cat([lm[..., :3], torch.sigmoid(lm[..., 3:])], dim=-1)


def _window_mean(
    heatmaps: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, kernel_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Confidence-weighted mean cell (col, row) and max confidence in a window around (cx, cy)."""
    n, k, h, w = heatmaps.shape
    conf = torch.sigmoid(heatmaps)
    half = (kernel_size - 1) // 2
    rows = torch.arange(h, device=heatmaps.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=heatmaps.device).view(1, 1, 1, w)
    inside = ((rows - cy[..., None, None]).abs() <= half) & ((cols - cx[..., None, None]).abs() <= half)
    c = conf * inside
    total = c.sum(dim=(2, 3))
    safe = total.clamp_min(1e-12)
    mean_col = (c * cols).sum(dim=(2, 3)) / safe
    mean_row = (c * rows).sum(dim=(2, 3)) / safe
    return mean_col, mean_row, c.amax(dim=(2, 3))


def refine_landmarks(
    landmarks: torch.Tensor, heatmaps: torch.Tensor, *, kernel_size: int = 7, min_confidence: float = 0.5
) -> torch.Tensor:
    """Refine landmark x, y with the heatmaps, as MediaPipe's RefineLandmarksFromHeatmapCalculator.

    Around each landmark's heatmap cell, x, y become the sigmoid-confidence-weighted mean cell (×4 px)
    of a ``kernel_size`` window, where the window's max confidence is ≥ ``min_confidence``; landmarks
    outside the heatmap or with low confidence keep their regressed x, y.
    """
    h, w = heatmaps.shape[-2:]
    cx = torch.floor(landmarks[..., 0] / HEATMAP_STRIDE)
    cy = torch.floor(landmarks[..., 1] / HEATMAP_STRIDE)
    col, row, peak = _window_mean(heatmaps, cx, cy, kernel_size)
    ok = (peak >= min_confidence) & (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
    out = landmarks.clone()
    out[..., 0] = torch.where(ok, col * HEATMAP_STRIDE, landmarks[..., 0])
    out[..., 1] = torch.where(ok, row * HEATMAP_STRIDE, landmarks[..., 1])
    return out


def heatmap_keypoints(heatmaps: torch.Tensor, *, kernel_size: int = 7) -> torch.Tensor:
    """Keypoints from heatmaps alone: ``[N, K, 64, 64]`` logits -> ``[N, K, 3]`` (x px, y px, confidence).

    The argmax cell, refined by the same weighted window mean as :func:`refine_landmarks`; the
    confidence is the sigmoid of the peak logit. Coordinates use MediaPipe's convention (cell j -> 4j).
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.flatten(2).argmax(dim=2)
    cy, cx = flat // w, flat % w
    col, row, peak = _window_mean(heatmaps, cx, cy, kernel_size)
    return torch.stack([col * HEATMAP_STRIDE, row * HEATMAP_STRIDE, peak], dim=-1)


class BlazePoseOutput(NamedTuple):
    """Decoded outputs of :class:`BlazePoseFull` (see the module docstring for units)."""

    landmarks: torch.Tensor
    pose_flag: torch.Tensor
    heatmaps: torch.Tensor
    segmentation: torch.Tensor
    world_landmarks: torch.Tensor


class BlazePoseFull(nn.Module):
    """All five BlazePose heads, decoded: ``forward(x) -> BlazePoseOutput``.

    ``refine=True`` (MediaPipe's default) refines landmark x, y with the heatmaps. The graph itself is
    ``self.net`` (a :class:`TFLiteModule` returning the raw outputs in TFLite order).
    """

    def __init__(self, net: TFLiteModule, *, refine: bool = True) -> None:
        super().__init__()
        names = [o["name"] for o in net.spec["outputs"]]
        if names != [OUT_LANDMARKS, OUT_FLAG, OUT_SEGMENTATION, OUT_HEATMAPS, OUT_WORLD]:
            raise WeightsError(f"BlazePose graph {net.spec.get('source')!r} has outputs {names}")
        self.net = net
        self.refine = refine

    def forward(self, x: torch.Tensor) -> BlazePoseOutput:
        raw, flag, seg, heat, world = self.net(x)
        landmarks = decode_landmarks(raw)
        if self.refine:
            landmarks = refine_landmarks(landmarks, heat)
        return BlazePoseOutput(landmarks, flag.flatten(), heat, seg, world.reshape(-1, 39, 3))


@lru_cache(maxsize=1)
def _shipped_spec() -> GraphSpec:
    try:
        return json.loads(SPEC_FILE.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{SPEC_FILE}: BlazePose graph description unreadable ({exc})") from exc


def export_spec(tflite_path: str | Path, out: str | Path = SPEC_FILE) -> GraphSpec:
    """Write the graph description of ``tflite_path`` to ``out`` (the shipped ``blazepose_full.json``)."""
    spec, _ = parse_tflite(tflite_path, rename=_RENAME)
    head = {k: v for k, v in spec.items() if k != "nodes"}
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "nodes": [']
    lines += [json.dumps(n, sort_keys=True) + "," for n in spec["nodes"]]
    lines[-1] = lines[-1][:-1]
    atomic_write_bytes(Path(out), ("\n".join(lines) + "\n]}\n").encode())
    _shipped_spec.cache_clear()
    return spec


def _resolve_tflite(tflite_path: str | Path | None) -> Path:
    if tflite_path is not None:
        path = Path(tflite_path)
        if not path.is_file():
            raise WeightsError(f"{path}: BlazePose .tflite file not found")
        return path
    from deltatune.data.assets import asset_path  # lazy: the data package is optional here

    return asset_path(ASSET, fetch=True)


def _cache_file(tflite_path: Path) -> Path:
    from deltatune.data.assets import data_dir, sha256_file

    digest = sha256_file(tflite_path)[:16]
    return data_dir() / "converted" / f"{tflite_path.stem}-{digest}-spec{SPEC_FORMAT}.pt"


def converted_state(
    tflite_path: str | Path | None = None, *, cache: bool = True
) -> tuple[GraphSpec, dict[str, torch.Tensor]]:
    """The graph spec and fp32 ``state_dict`` of a BlazePose ``.tflite`` (default: the asset).

    Converted once and cached in ``data_dir()/converted/`` keyed by the file's SHA-256; ``cache=False``
    neither reads nor writes the cache.
    """
    path = _resolve_tflite(tflite_path)
    cache_file = _cache_file(path) if cache else None
    if cache_file is not None and cache_file.is_file():
        try:
            blob = torch.load(cache_file, map_location="cpu", weights_only=True)
            return json.loads(blob["spec"]), blob["state_dict"]
        except Exception as exc:  # a corrupt cache is rebuilt, never fatal
            logger.warning("ignoring unreadable conversion cache %s (%s)", cache_file, exc)
    spec, state = parse_tflite(path, rename=_RENAME)
    spec = json.loads(json.dumps(spec))  # the same plain types as a spec read back from JSON
    if cache_file is not None:
        import io

        buf = io.BytesIO()
        torch.save({"spec": json.dumps(spec, sort_keys=True), "state_dict": state}, buf)
        atomic_write_bytes(cache_file, buf.getvalue())
        logger.info("cached converted %s at %s", path.name, cache_file)
    return spec, state


def load_blazepose_weights(model: nn.Module, path: str | Path, *, cache: bool = True) -> None:
    """Load the weights of a BlazePose ``.tflite`` into ``model`` (heatmap-only or full), strictly.

    This is the registry's loader for ``blazepose``; only the keys the model has are taken.
    """
    net = model.net if isinstance(model, BlazePoseFull) else model
    spec, state = converted_state(path, cache=cache)
    if isinstance(net, TFLiteModule):
        mine = {n["name"]: n for n in net.spec["nodes"]}
        theirs = {n["name"]: n for n in spec["nodes"] if n["name"] in mine}
        if theirs != mine:
            raise WeightsError(f"{path}: its graph differs from the model's (not BlazePose-full?)")
    wanted = net.state_dict().keys()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise WeightsError(f"{path}: no weights for {len(missing)} parameters, e.g. {missing[:3]}")
    net.load_state_dict({k: state[k] for k in wanted}, strict=True)


def build_blazepose(
    tflite_path: str | Path | None = None, *, cache: bool = True, full: bool = False, refine: bool = True
) -> nn.Module:
    """BlazePose-full with pretrained weights, in eval mode.

    ``full=False``: the heatmap-only :class:`TFLiteModule` (``[N, 3, 256, 256]`` -> ``[N, 39, 64, 64]``
    logits). ``full=True``: :class:`BlazePoseFull` with all heads decoded. The graph is the one in the
    ``.tflite`` file (default: the ``blazepose_tflite`` asset, fetched if missing).
    """
    spec, state = converted_state(tflite_path, cache=cache)
    net = build_module(spec, outputs=None if full else [OUT_HEATMAPS])
    net.load_state_dict({k: state[k] for k in net.state_dict()}, strict=True)
    model: nn.Module = BlazePoseFull(net, refine=refine) if full else net
    return model.eval()


MODEL_CARDS: dict[str, ModelCard] = {
    "blazepose": ModelCard(
        family="blazepose",
        task="pose",
        input_size=(INPUT_SIZE, INPUT_SIZE),
        outputs="heatmaps [N,39,64,64] logits (rows of LANDMARK_NAMES; 0-32 body, stride 4)",
        num_joints=39,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        color_order="RGB",
        default_weights=ASSET,
        provenance=(
            "MediaPipe BlazePose-full pose_landmark_full.tflite (Apache-2.0) from the mediapipe==0.10.14 "
            "wheel, converted to torch by deltatune_models._tflite (fp16 weights widened to fp32)"
        ),
        flip_pairs=BLAZEPOSE_FLIP_PAIRS,
        # 100x below the general 1e-4: the converted weights have batch norm folded in and multiply
        # activations averaging 26-66 (up to 285) at the 1x1 expansions, and AdamW moves every weight by
        # about the rate per step. `deltatune finetune --model blazepose` at the defaults otherwise (vtest
        # frames 0-39, batch 4, 100 steps, --sparsity-penalty 0.1), dense PCK points lost against the
        # original on vtest frames 60-71: 1e-4: 30.6 after step 1, 29.8 at the end; 1e-6: 1.9 and 0.3;
        # 3e-7: 0.6 and 0.0 (2-core EPYC, 2026-12-08). See deltatune.train.finetune.default_lr.
        finetune_lr=1e-6,
        loader=load_blazepose_weights,
    ),
}


@register_model
def blazepose(**kwargs: Any) -> TFLiteModule:
    """BlazePose-full (MediaPipe), 256×256 RGB in [0, 1], heatmap head only: [N, 39, 64, 64] logits."""
    if kwargs:
        raise TypeError(f"blazepose() takes no architecture arguments, got {sorted(kwargs)}")
    return build_module(_shipped_spec(), outputs=[OUT_HEATMAPS])
