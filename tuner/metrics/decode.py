"""Heatmap decoding and flip test, exactly as the official HRNet / SimpleBaselines code does it.

Top-down pose CNNs (HRNet, Pose-ResNet) output one heatmap per joint at 1/4 of the input resolution. The
official repositories (leoxiaobin/deep-high-resolution-net.pytorch and
microsoft/human-pose-estimation.pytorch, ``lib/core/inference.py`` and ``lib/utils/transforms.py``) turn
them into keypoints like this:

1. ``get_max_preds``: per joint, the argmax over the flattened heatmap gives ``x = idx % w``,
   ``y = idx // w``; the peak value is the score; coordinates are set to 0 when the peak is ``<= 0``.
2. Quarter-pixel refinement (``TEST.POST_PROCESS``): with ``px = floor(x + 0.5)``, ``py = floor(y + 0.5)``,
   and only when ``1 < px < w - 1`` and ``1 < py < h - 1``, move ``x`` by ``0.25 * sign(hm[py, px+1] -
   hm[py, px-1])`` and ``y`` by ``0.25 * sign(hm[py+1, px] - hm[py-1, px])``. Peaks in the outer two-pixel
   border are not refined.
3. Heatmap pixel ``i`` corresponds to input pixel ``stride * i`` (no half-pixel offset).

The flip test runs the model on the horizontally flipped crop, mirrors the resulting heatmaps back and swaps
left/right joints (``flip_back``), shifts them right by one column, and averages with the plain output.

Everything here takes and returns torch tensors and works on a batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deltatune.errors import DeltatuneError

__all__ = [
    "COCO_FLIP_PAIRS",
    "MPII_FLIP_PAIRS",
    "decode_heatmaps",
    "heatmap_to_input_coords",
    "flip_back",
    "flip_test_average",
]

#: Left/right joint pairs of the 17 COCO keypoints (official ``coco.py``: eyes, ears, shoulders, elbows,
#: wrists, hips, knees, ankles).
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip

#: Left/right joint pairs of the 16 MPII joints (official ``mpii.py``: ankles, knees, hips, wrists, elbows,
#: shoulders).
MPII_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))


# --------------------------------------------------------------------------------------------- validation


def _check_heatmaps(heatmaps: object, name: str) -> Tensor:
    if not isinstance(heatmaps, Tensor):
        raise DeltatuneError(f"{name}: expected a torch.Tensor, got {type(heatmaps).__name__}")
    if heatmaps.ndim != 4:
        raise DeltatuneError(f"{name}: expected shape [N, K, h, w], got {list(heatmaps.shape)}")
    if not heatmaps.is_floating_point():
        raise DeltatuneError(f"{name}: expected a floating-point tensor, got {heatmaps.dtype}")
    if heatmaps.shape[2] == 0 or heatmaps.shape[3] == 0:
        raise DeltatuneError(f"{name}: heatmaps are empty, shape {list(heatmaps.shape)}")
    return heatmaps


def _check_size(size: Sequence[int], name: str) -> tuple[int, int]:
    if len(size) != 2 or any(int(s) != s or s <= 0 for s in size):
        raise DeltatuneError(f"{name}: expected (height, width) of two positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _flip_permutation(flip_pairs: Sequence[Sequence[int]], num_joints: int) -> list[int]:
    perm = list(range(num_joints))
    seen: set[int] = set()
    for pair in flip_pairs:
        if len(pair) != 2:
            raise DeltatuneError(f"flip_pairs: expected pairs of two joint indices, got {pair!r}")
        a, b = int(pair[0]), int(pair[1])
        if a == b:
            raise DeltatuneError(f"flip_pairs: pair {tuple(pair)!r} pairs a joint with itself")
        for j in (a, b):
            if not 0 <= j < num_joints:
                raise DeltatuneError(f"flip_pairs: joint {j} is out of range for {num_joints} joints")
            if j in seen:
                raise DeltatuneError(f"flip_pairs: joint {j} appears in more than one pair")
            seen.add(j)
        perm[a], perm[b] = b, a
    return perm


# --------------------------------------------------------------------------------------------- compute


def decode_heatmaps(heatmaps: Tensor, *, refine: bool = True) -> tuple[Tensor, Tensor]:
    """Decode keypoints from heatmaps as the official ``get_max_preds`` (+ quarter-pixel shift) does.

    Returns ``(coords, scores)``: ``coords`` is ``[N, K, 2]`` with ``(x, y)`` in heatmap pixels, ``scores`` is
    ``[N, K]``, the peak value of each heatmap. Joints whose peak is ``<= 0`` get coordinates ``(0, 0)``. With
    ``refine`` (the official ``TEST.POST_PROCESS``, on for every reported number), a peak not in the outer
    two-pixel border moves a quarter pixel towards its higher neighbour on each axis. Ties in the argmax go to
    the first pixel in row-major order, as in numpy.

    Example:
        >>> hm = torch.zeros(1, 1, 8, 6)
        >>> hm[0, 0, 3, 2] = 1.0; hm[0, 0, 3, 3] = 0.5  # peak at (x=2, y=3), right neighbour higher
        >>> coords, scores = decode_heatmaps(hm)
        >>> coords.tolist(), scores.tolist()
        ([[[2.25, 3.0]]], [[1.0]])
    """
    hm = _check_heatmaps(heatmaps, "heatmaps")
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    scores = flat.amax(dim=2)
    idx = flat.argmax(dim=2)  # torch documents the first maximal index on ties, as numpy
    x = (idx % w).to(hm.dtype)
    y = torch.div(idx, w, rounding_mode="floor").to(hm.dtype)
    positive = scores > 0
    x = torch.where(positive, x, torch.zeros_like(x))
    y = torch.where(positive, y, torch.zeros_like(y))
    if refine:
        x, y = _quarter_shift(hm, x, y)
    return torch.stack((x, y), dim=-1), scores


def _quarter_shift(hm: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Move each integer peak by 0.25 px towards the higher neighbour, interior peaks only."""
    n, k, h, w = hm.shape
    px = torch.floor(x + 0.5).long()
    py = torch.floor(y + 0.5).long()
    interior = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    # Clamp so the gathers stay in range; the results are discarded outside `interior`.
    pxc = px.clamp(1, max(w - 2, 1))
    pyc = py.clamp(1, max(h - 2, 1))
    flat = hm.reshape(n, k, h * w)

    def at(yy: Tensor, xx: Tensor) -> Tensor:
        index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).unsqueeze(-1)
        return flat.gather(2, index).squeeze(-1)

    dx = torch.sign(at(pyc, pxc + 1) - at(pyc, pxc - 1))
    dy = torch.sign(at(pyc + 1, pxc) - at(pyc - 1, pxc))
    zero = torch.zeros_like(x)
    x = x + 0.25 * torch.where(interior, dx, zero)
    y = y + 0.25 * torch.where(interior, dy, zero)
    return x, y


def heatmap_to_input_coords(
    coords: Tensor, *, heatmap_size: Sequence[int], input_size: Sequence[int]
) -> Tensor:
    """Map ``(x, y)`` from heatmap pixels to input-crop pixels by the per-axis stride, as the official code.

    ``heatmap_size`` and ``input_size`` are ``(height, width)``. ``x`` is scaled by
    ``input_w / heatmap_w`` and ``y`` by ``input_h / heatmap_h`` (4 for HRNet / Pose-ResNet); heatmap pixel
    ``i`` maps to input pixel ``stride * i`` with no half-pixel offset, matching how the training targets
    were placed. ``coords`` may have any leading shape ``[..., 2]``.

    Example:
        >>> heatmap_to_input_coords(torch.tensor([[2.25, 3.0]]), heatmap_size=(64, 48), input_size=(256, 192))
        tensor([[ 9., 12.]])
    """
    if not isinstance(coords, Tensor) or coords.ndim < 1 or coords.shape[-1] != 2:
        shape = list(coords.shape) if isinstance(coords, Tensor) else type(coords).__name__
        raise DeltatuneError(f"coords: expected a tensor of shape [..., 2], got {shape}")
    hm_h, hm_w = _check_size(heatmap_size, "heatmap_size")
    in_h, in_w = _check_size(input_size, "input_size")
    dtype = coords.dtype if coords.is_floating_point() else torch.float32
    scale = torch.tensor([in_w / hm_w, in_h / hm_h], dtype=dtype, device=coords.device)
    return coords.to(dtype) * scale


def flip_back(heatmaps: Tensor, flip_pairs: Sequence[Sequence[int]]) -> Tensor:
    """Undo a horizontal input flip on heatmaps: mirror the width axis and swap left/right joints.

    ``heatmaps`` is the ``[N, K, h, w]`` output of the model on ``input.flip(3)``; ``flip_pairs`` lists the
    left/right joint pairs (:data:`COCO_FLIP_PAIRS`, :data:`MPII_FLIP_PAIRS`). Returns a new tensor; joints
    in no pair are only mirrored. Same as the official ``flip_back``.

    Example:
        >>> hm = torch.arange(6.0).reshape(1, 3, 1, 2)  # joints 0, 1, 2 with rows [0,1], [2,3], [4,5]
        >>> flip_back(hm, [(1, 2)]).flatten().tolist()
        [1.0, 0.0, 5.0, 4.0, 3.0, 2.0]
    """
    hm = _check_heatmaps(heatmaps, "heatmaps")
    perm = _flip_permutation(flip_pairs, hm.shape[1])
    index = torch.tensor(perm, dtype=torch.long, device=hm.device)
    return hm.flip(3).index_select(1, index)


def flip_test_average(
    out: Tensor, out_flipped: Tensor, flip_pairs: Sequence[Sequence[int]], *, shift_heatmap: bool = True
) -> Tensor:
    """Average plain and flipped-input heatmaps, the official flip test.

    ``out`` is the model output on the crop, ``out_flipped`` the raw output on the horizontally flipped crop.
    ``out_flipped`` is passed through :func:`flip_back`; with ``shift_heatmap`` (``TEST.SHIFT_HEATMAP``, on in
    the official configs) it is then shifted right by one column (``f[..., 1:] = f[..., :-1]``; column 0 keeps
    its value) to compensate the flipped pixel grid. Returns ``(out + flipped_back) / 2``.

    Example:
        >>> out = torch.tensor([[[[0.0, 2.0, 4.0]]]])
        >>> flip_test_average(out, out, [], shift_heatmap=True).flatten().tolist()  # back=[4,2,0] -> [4,4,2]
        [2.0, 3.0, 3.0]
    """
    a = _check_heatmaps(out, "out")
    b = _check_heatmaps(out_flipped, "out_flipped")
    if a.shape != b.shape:
        raise DeltatuneError(f"out_flipped: shape {list(b.shape)} does not match out's shape {list(a.shape)}")
    back = flip_back(b, flip_pairs)
    if shift_heatmap and back.shape[3] > 1:
        back[:, :, :, 1:] = back[:, :, :, :-1].clone()
    return (a + back) * 0.5
