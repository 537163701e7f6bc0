"""Heatmap decoding and flip test against hand-placed peaks and a literal copy of the official code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deltatune.errors import DeltatuneError
from deltatune.metrics import (
    COCO_FLIP_PAIRS,
    MPII_FLIP_PAIRS,
    decode_heatmaps,
    flip_back,
    flip_test_average,
    heatmap_to_input_coords,
)


def _official_final_preds(batch_heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """get_max_preds + the POST_PROCESS quarter shift, transcribed from HRNet lib/core/inference.py."""
    batch_size, num_joints, _, width = batch_heatmaps.shape
    heatmaps_reshaped = batch_heatmaps.reshape((batch_size, num_joints, -1))
    idx = np.argmax(heatmaps_reshaped, 2).reshape((batch_size, num_joints, 1))
    maxvals = np.amax(heatmaps_reshaped, 2).reshape((batch_size, num_joints, 1))
    preds = np.tile(idx, (1, 1, 2)).astype(np.float32)
    preds[:, :, 0] = (preds[:, :, 0]) % width
    preds[:, :, 1] = np.floor((preds[:, :, 1]) / width)
    pred_mask = np.tile(np.greater(maxvals, 0.0), (1, 1, 2)).astype(np.float32)
    coords = preds * pred_mask
    heatmap_height, heatmap_width = batch_heatmaps.shape[2], batch_heatmaps.shape[3]
    for n in range(coords.shape[0]):
        for p in range(coords.shape[1]):
            hm = batch_heatmaps[n][p]
            px = int(math.floor(coords[n][p][0] + 0.5))
            py = int(math.floor(coords[n][p][1] + 0.5))
            if 1 < px < heatmap_width - 1 and 1 < py < heatmap_height - 1:
                diff = np.array([hm[py][px + 1] - hm[py][px - 1], hm[py + 1][px] - hm[py - 1][px]])
                coords[n][p] += np.sign(diff) * 0.25
    return coords, maxvals[..., 0]


def _peak(h: int, w: int, x: int, y: int, **neighbours: float) -> torch.Tensor:
    """One [1, 1, h, w] heatmap with value 1 at (x, y) and optional left/right/up/down neighbour values."""
    hm = torch.zeros(1, 1, h, w)
    hm[0, 0, y, x] = 1.0
    offsets = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
    for name, value in neighbours.items():
        dy, dx = offsets[name]
        hm[0, 0, y + dy, x + dx] = value
    return hm


# --------------------------------------------------------------------------------------------- decode


def test_quarter_shift_goes_towards_the_higher_neighbour() -> None:
    # h=8, w=6, peak at (x=2, y=3); right 0.5 > left 0 -> x + 0.25; down 0.2 > up 0 -> y + 0.25
    coords, scores = decode_heatmaps(_peak(8, 6, 2, 3, right=0.5, down=0.2))
    assert coords.tolist() == [[[2.25, 3.25]]]
    assert scores.tolist() == [[1.0]]
    # left 0.5 > right 0 -> x - 0.25; up 0.2 > down 0 -> y - 0.25
    coords, _ = decode_heatmaps(_peak(8, 6, 2, 3, left=0.5, up=0.2))
    assert coords.tolist() == [[[1.75, 2.75]]]


def test_equal_neighbours_do_not_shift_and_refine_false_keeps_integers() -> None:
    # left = right = 0.3 -> sign(0) = 0; up = down = 0 -> no shift
    coords, _ = decode_heatmaps(_peak(8, 6, 3, 4, left=0.3, right=0.3))
    assert coords.tolist() == [[[3.0, 4.0]]]
    coords, _ = decode_heatmaps(_peak(8, 6, 2, 3, right=0.5, down=0.2), refine=False)
    assert coords.tolist() == [[[2.0, 3.0]]]


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        # w=6: refine only for 1 < px < 5, i.e. px in {2, 3, 4}; h=8: py in {2, ..., 6}
        (4, 6, [4.25, 6.25]),  # last interior column and row: shifted
        (1, 3, [1.0, 3.0]),  # px = 1 is border
        (5, 3, [5.0, 3.0]),  # px = w-1 is border (its right neighbour does not even exist)
        (2, 1, [2.0, 1.0]),  # py = 1 is border
        (2, 7, [2.0, 7.0]),  # py = h-1 is border
    ],
)
def test_border_rule(x: int, y: int, expected: list[float]) -> None:
    hm = torch.zeros(1, 1, 8, 6)
    hm[0, 0, y, x] = 1.0
    # a higher right/lower neighbour wherever it exists, so an interior peak would move by +0.25 on both axes
    if x + 1 < 6:
        hm[0, 0, y, x + 1] = 0.5
    if y + 1 < 8:
        hm[0, 0, y + 1, x] = 0.3
    coords, _ = decode_heatmaps(hm)
    assert coords[0, 0].tolist() == expected


def test_non_positive_peak_zeroes_coordinates() -> None:
    hm = torch.full((1, 2, 8, 6), -1.0)
    hm[0, 0, 3, 3] = -0.1  # max is negative: coords (0, 0), score -0.1
    hm[0, 1] = 0.0  # all zero: max 0 <= 0 -> coords (0, 0), score 0
    coords, scores = decode_heatmaps(hm)
    assert coords.tolist() == [[[0.0, 0.0], [0.0, 0.0]]]
    assert scores[0, 0].item() == pytest.approx(-0.1)
    assert scores[0, 1].item() == 0.0


def test_ties_go_to_the_first_pixel_in_row_major_order() -> None:
    hm = torch.zeros(1, 1, 8, 6)
    hm[0, 0, 5, 1] = 1.0  # flat index 5*6+1 = 31
    hm[0, 0, 2, 4] = 1.0  # flat index 2*6+4 = 16 -> first
    coords, _ = decode_heatmaps(hm, refine=False)
    assert coords.tolist() == [[[4.0, 2.0]]]


def test_matches_official_code_on_random_batched_heatmaps() -> None:
    gen = torch.Generator().manual_seed(0)
    hm = torch.rand(3, 5, 16, 12, generator=gen) - 0.2
    hm[1, 2] -= 2.0  # one all-negative joint
    coords, scores = decode_heatmaps(hm)
    ref_coords, ref_scores = _official_final_preds(hm.numpy())
    assert coords.shape == (3, 5, 2) and scores.shape == (3, 5)
    np.testing.assert_array_equal(coords.numpy(), ref_coords)
    np.testing.assert_array_equal(scores.numpy(), ref_scores)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(2, 8, 6), torch.zeros(1, 1, 8, 6, dtype=torch.int64), np.zeros((1, 1, 8, 6))],
)
def test_decode_rejects_bad_input(bad: object) -> None:
    with pytest.raises(DeltatuneError, match="heatmaps"):
        decode_heatmaps(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- mapping


def test_heatmap_to_input_coords_scales_by_stride_per_axis() -> None:
    coords = torch.tensor([[[2.25, 3.0], [0.0, 63.0]]])
    # 64x48 -> 256x192: stride 4 on both axes; (2.25*4, 3*4) = (9, 12); (0, 63*4) = (0, 252)
    out = heatmap_to_input_coords(coords, heatmap_size=(64, 48), input_size=(256, 192))
    assert out.tolist() == [[[9.0, 12.0], [0.0, 252.0]]]
    # (h, w) order: heatmap 64x48 -> input 256x96 scales x by 96/48 = 2 and y by 256/64 = 4
    out = heatmap_to_input_coords(coords, heatmap_size=(64, 48), input_size=(256, 96))
    assert out.tolist() == [[[4.5, 12.0], [0.0, 252.0]]]


def test_heatmap_to_input_coords_rejects_bad_sizes() -> None:
    with pytest.raises(DeltatuneError, match="heatmap_size"):
        heatmap_to_input_coords(torch.zeros(1, 2), heatmap_size=(64,), input_size=(256, 192))
    with pytest.raises(DeltatuneError, match="input_size"):
        heatmap_to_input_coords(torch.zeros(1, 2), heatmap_size=(64, 48), input_size=(0, 192))
    with pytest.raises(DeltatuneError, match="coords"):
        heatmap_to_input_coords(torch.zeros(1, 3), heatmap_size=(64, 48), input_size=(256, 192))


# --------------------------------------------------------------------------------------------- flip


def test_flip_back_mirrors_width_and_swaps_pairs() -> None:
    hm = torch.arange(18.0).reshape(1, 3, 2, 3)
    # joint 0 = [[0,1,2],[3,4,5]], joint 1 = [[6,7,8],[9,10,11]], joint 2 = [[12,13,14],[15,16,17]]
    out = flip_back(hm, [(1, 2)])
    assert out[0, 0].tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]  # unpaired: mirrored only
    assert out[0, 1].tolist() == [[14.0, 13.0, 12.0], [17.0, 16.0, 15.0]]  # mirrored joint 2
    assert out[0, 2].tolist() == [[8.0, 7.0, 6.0], [11.0, 10.0, 9.0]]  # mirrored joint 1
    assert hm[0, 0, 0].tolist() == [0.0, 1.0, 2.0]  # input untouched


def test_flip_back_is_an_involution_for_coco_and_mpii() -> None:
    gen = torch.Generator().manual_seed(1)
    for pairs, k in ((COCO_FLIP_PAIRS, 17), (MPII_FLIP_PAIRS, 16)):
        hm = torch.rand(2, k, 4, 5, generator=gen)
        assert torch.equal(flip_back(flip_back(hm, pairs), pairs), hm)


def test_flipped_peak_decodes_to_the_mirrored_joint() -> None:
    # COCO joint 5 (left shoulder) peaks at x=1 in the flipped crop of width 6; mirrored x = 6-1-1 = 4, and
    # it belongs to joint 6 (right shoulder) after flip_back.
    hm = torch.zeros(1, 17, 8, 6)
    hm[0, 5, 3, 1] = 1.0
    coords, scores = decode_heatmaps(flip_back(hm, COCO_FLIP_PAIRS), refine=False)
    assert coords[0, 6].tolist() == [4.0, 3.0] and scores[0, 6].item() == 1.0
    assert scores[0, 5].item() == 0.0


@pytest.mark.parametrize(
    ("pairs", "match"),
    [([(0, 3)], "out of range"), ([(0, 1), (1, 2)], "more than one pair"), ([(1, 1)], "itself")],
)
def test_flip_back_rejects_bad_pairs(pairs: list[tuple[int, int]], match: str) -> None:
    with pytest.raises(DeltatuneError, match=match):
        flip_back(torch.zeros(1, 3, 2, 2), pairs)


def test_flip_test_average_with_and_without_shift() -> None:
    out = torch.tensor([[[[0.0, 2.0, 4.0]], [[1.0, 1.0, 1.0]]]])  # [1, 2, 1, 3]
    flipped = torch.tensor([[[[6.0, 0.0, 0.0]], [[0.0, 0.0, 8.0]]]])
    # flip_back with pair (0, 1): joint 0 <- mirrored joint 1 = [8, 0, 0]
    #                             joint 1 <- mirrored joint 0 = [0, 0, 6]
    # no shift: joint 0 = ([0,2,4] + [8,0,0]) / 2 = [4, 1, 2]
    #           joint 1 = ([1,1,1] + [0,0,6]) / 2 = [0.5, 0.5, 3.5]
    avg = flip_test_average(out, flipped, [(0, 1)], shift_heatmap=False)
    assert avg.flatten().tolist() == [4.0, 1.0, 2.0, 0.5, 0.5, 3.5]
    # shift right by one, column 0 kept: [8,0,0] -> [8,8,0]; [0,0,6] -> [0,0,0]
    # joint 0 = ([0,2,4] + [8,8,0]) / 2 = [4, 5, 2]; joint 1 = ([1,1,1] + [0,0,0]) / 2 = [0.5, 0.5, 0.5]
    avg = flip_test_average(out, flipped, [(0, 1)])
    assert avg.flatten().tolist() == [4.0, 5.0, 2.0, 0.5, 0.5, 0.5]
    assert flipped.flatten().tolist() == [6.0, 0.0, 0.0, 0.0, 0.0, 8.0]  # input untouched


def test_flip_test_average_rejects_shape_mismatch() -> None:
    with pytest.raises(DeltatuneError, match="out_flipped"):
        flip_test_average(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5), [(0, 1)])
