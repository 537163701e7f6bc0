"""Detection building blocks against hand-worked cases: box coding, NMS, anchors and RoIAlign."""

from __future__ import annotations

import math

import pytest
import torch

from deltatune_models._anchors import base_anchors, grid_anchors
from deltatune_models._boxes import (
    BBOX_XFORM_CLIP,
    batched_nms,
    box_area,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    nms,
    remove_small_boxes,
)
from deltatune_models._roi_align import roi_align

# -- boxes -----------------------------------------------------------------------------------------------


def test_area_and_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 2.0, 1.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 1.0, 1.0]])
    assert box_area(a).tolist() == [100.0, 2.0]
    iou = box_iou(a, b)
    # a0 & b0: overlap 5x10 = 50, union 150; a1 & b2: overlap 1, union 2; disjoint pairs: 0
    expected = torch.tensor([[50 / 150, 0.0, 1 / 100], [0.0, 0.0, 0.5]])
    torch.testing.assert_close(iou, expected)


def test_encode_decode_worked_example_and_round_trip():
    anchor = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), size 10 x 20
    target = torch.tensor([[2.0, 4.0, 22.0, 44.0]])  # centre (12, 24), size 20 x 40
    log2 = math.log(2.0)
    torch.testing.assert_close(encode_boxes(target, anchor), torch.tensor([[0.7, 0.7, log2, log2]]))
    head = (10.0, 10.0, 5.0, 5.0)
    torch.testing.assert_close(
        encode_boxes(target, anchor, head), torch.tensor([[7.0, 7.0, 5 * log2, 5 * log2]])
    )
    torch.testing.assert_close(decode_boxes(encode_boxes(target, anchor, head), anchor, head), target)
    torch.manual_seed(0)
    refs = torch.rand(50, 2) * 100
    refs = torch.cat([refs, refs + 1 + torch.rand(50, 2) * 50], 1)
    deltas = torch.randn(50, 4)
    torch.testing.assert_close(
        encode_boxes(decode_boxes(deltas, refs, head), refs, head), deltas, atol=1e-4, rtol=0
    )


def test_decode_clamps_width_and_height_and_broadcasts_over_classes():
    anchor = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    out = decode_boxes(torch.tensor([[0.0, 0.0, 10.0, -1.0]]), anchor)
    width = 10 * math.exp(BBOX_XFORM_CLIP)  # = 10 * 1000 / 16 = 625
    torch.testing.assert_close(out[0, 2] - out[0, 0], torch.tensor(width))
    assert width == pytest.approx(625.0)
    torch.testing.assert_close(out[0, 3] - out[0, 1], torch.tensor(10 * math.exp(-1.0)))
    per_class = decode_boxes(torch.zeros(3, 2, 4), torch.rand(3, 1, 4) + torch.tensor([0, 0, 2, 2]))
    assert per_class.shape == (3, 2, 4)


def test_clip_and_remove_small():
    boxes = torch.tensor([[-5.0, -2.0, 50.0, 40.0], [1.0, 1.0, 1.5, 9.0], [3.0, 3.0, 4.0, 4.0]])
    torch.testing.assert_close(clip_boxes(boxes, (30, 20))[0], torch.tensor([0.0, 0.0, 20.0, 30.0]))
    assert remove_small_boxes(boxes, 1.0).tolist() == [0, 2]  # box 1 is 0.5 wide; box 2 exactly 1


# -- NMS -------------------------------------------------------------------------------------------------


def test_nms_is_greedy_and_returns_indices_by_score():
    # A suppresses B (IoU 70/130 = 0.54); B would suppress C, but B is gone, and A-C is 40/160 = 0.25
    a, b, c = [0.0, 0.0, 10.0, 10.0], [3.0, 0.0, 13.0, 10.0], [6.0, 0.0, 16.0, 10.0]
    boxes = torch.tensor([c, a, b])
    scores = torch.tensor([0.7, 0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [1, 0]
    assert nms(boxes, scores, 0.6).tolist() == [1, 2, 0]  # nothing above 0.6
    assert nms(boxes, scores, 0.2).tolist() == [1]  # 0.25 > 0.2: C suppressed by A too


def test_nms_threshold_is_strict_and_empty_input_works():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])  # IoU exactly 1/2
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).dtype == torch.int64


def test_batched_nms_only_suppresses_within_a_label():
    a, b = [0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0]  # IoU 90/110
    boxes = torch.tensor([a, b, a])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([1, 1, 2]), 0.5).tolist() == [0, 2]
    assert batched_nms(boxes, scores, torch.tensor([1, 2, 2]), 0.5).tolist() == [0, 1]
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 0.5).numel() == 0


# -- anchors ---------------------------------------------------------------------------------------------


def test_base_anchors_match_torchvisions_rounded_values():
    # size 32: ratio h/w 0.5 -> w = 32*sqrt(2) = 45.25, h = 22.63 -> +-22.6, +-11.3 -> rounded 23, 11
    expected = [[-23.0, -11.0, 23.0, 11.0], [-16.0, -16.0, 16.0, 16.0], [-11.0, -23.0, 11.0, 23.0]]
    assert base_anchors((32,), (0.5, 1.0, 2.0)).tolist() == expected
    two = base_anchors((32, 64), (0.5, 1.0))  # ratio-major: (0.5, 32), (0.5, 64), (1, 32), (1, 64)
    assert two[:, 2].tolist() == [23.0, 45.0, 16.0, 32.0]
    assert base_anchors((5,), (1.0,)).tolist() == [[-2.0, -2.0, 2.0, 2.0]]  # 2.5 rounds half to even


def test_grid_anchors_are_location_major():
    base = torch.tensor([[-16.0, -16.0, 16.0, 16.0], [-8.0, -8.0, 8.0, 8.0]])
    anchors = grid_anchors(base, (2, 3), (32, 32))
    assert anchors.shape == (2 * 3 * 2, 4)
    # row (i * W + j) * A + a: cell (0, 1) anchor 0, then cell (1, 0) anchor 1
    assert anchors[(0 * 3 + 1) * 2 + 0].tolist() == [16.0, -16.0, 48.0, 16.0]
    assert anchors[(1 * 3 + 0) * 2 + 1].tolist() == [-8.0, 24.0, 8.0, 40.0]


# -- RoIAlign --------------------------------------------------------------------------------------------

#: f[y, x] = 4 y + x: bilinear interpolation of it is exact, so every sample is 4 y + x.
RAMP = (4 * torch.arange(4.0)[:, None] + torch.arange(4.0)[None, :])[None, None]


def _one(roi, out, scale=1.0, ratio=2, aligned=True) -> torch.Tensor:
    return roi_align(RAMP, torch.tensor([[0.0, *roi]]), out, scale, ratio, aligned)[0, 0]


def test_roi_align_aligned_bins_by_hand():
    # box (1,1)-(3,3), aligned: start 0.5, bins 1 px; samples 0.75, 1.25 | 1.75, 2.25: means 1 and 2
    torch.testing.assert_close(_one((1, 1, 3, 3), 2), torch.tensor([[5.0, 6.0], [9.0, 10.0]]))
    # box (0,0)-(1,1), aligned: samples -0.25 (clamped to 0) and 0.25: mean 0.125 on both axes
    torch.testing.assert_close(_one((0, 0, 1, 1), 1), torch.tensor([[4 * 0.125 + 0.125]]))


def test_roi_align_border_rules_by_hand():
    # samples 2.75 and 4.25: 4.25 > H = 4 is outside, so 3 of the 4 samples are 0
    torch.testing.assert_close(_one((2, 2, 5, 5), 1, aligned=False), torch.tensor([[13.75 / 4]]))
    # samples 2.625 and 3.875: 3.875 is inside but beyond row H-1 = 3, so it reads row/column 3
    expected = (13.125 + 13.5 + 14.625 + 15.0) / 4
    torch.testing.assert_close(_one((2, 2, 4.5, 4.5), 1, aligned=False), torch.tensor([[expected]]))
    # a sample exactly at y = H = 4 or at y = -1 is still inside (the kernel's test is y < -1 or y > H)
    torch.testing.assert_close(_one((3, 3, 5, 5), 1, ratio=1, aligned=False), torch.tensor([[15.0]]))
    torch.testing.assert_close(_one((1, -2, 3, 0), 1, ratio=1, aligned=False), torch.tensor([[2.0]]))
    # adaptive ratio: ceil(4 / 1) = 4 samples per axis at 0.5, 1.5, 2.5, 3.5 (-> 3): mean 1.875
    torch.testing.assert_close(_one((0, 0, 4, 4), 1, ratio=0, aligned=False), torch.tensor([[5 * 1.875]]))
    # spatial scale 1/2 maps box (2,2)-(6,6) onto (1,1)-(3,3)
    torch.testing.assert_close(_one((2, 2, 6, 6), 2, scale=0.5), torch.tensor([[5.0, 6.0], [9.0, 10.0]]))


def _kernel_reference(feat, rois, ph_n, pw_n, scale, ratio, aligned):
    """A line-by-line scalar port of torchvision's roi_align CPU kernel (roi_align_kernel.cpp)."""
    _, c_n, height, width = feat.shape
    out = torch.zeros(rois.shape[0], c_n, ph_n, pw_n, dtype=torch.float64)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sw, sh = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sw, y2 * scale - off - sh
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph_n, rw / pw_n
        gh = ratio if ratio > 0 else math.ceil(rh / ph_n)
        gw = ratio if ratio > 0 else math.ceil(rw / pw_n)
        count = max(gh * gw, 1)
        for ph in range(ph_n):
            for pw in range(pw_n):
                acc = torch.zeros(c_n, dtype=torch.float64)
                for iy in range(gh):
                    y = sh + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        x = sw + pw * bw + (ix + 0.5) * bw / gw
                        if y < -1.0 or y > height or x < -1.0 or x > width:
                            continue
                        yy, xx = max(y, 0.0), max(x, 0.0)
                        yl, xl = int(yy), int(xx)
                        if yl >= height - 1:
                            yh = yl = height - 1
                            yy = float(yl)
                        else:
                            yh = yl + 1
                        if xl >= width - 1:
                            xh = xl = width - 1
                            xx = float(xl)
                        else:
                            xh = xl + 1
                        ly, lx = yy - yl, xx - xl
                        hy, hx = 1 - ly, 1 - lx
                        f = feat[int(b)].double()
                        acc += hy * hx * f[:, yl, xl] + hy * lx * f[:, yl, xh]
                        acc += ly * hx * f[:, yh, xl] + ly * lx * f[:, yh, xh]
                out[k, :, ph, pw] = acc / count
    return out


@pytest.mark.parametrize(("ratio", "aligned"), [(2, True), (0, False), (-1, True), (1, False)])
def test_roi_align_equals_a_port_of_the_cpu_kernel(ratio, aligned):
    torch.manual_seed(1)
    feat = torch.randn(2, 3, 6, 5)
    xy = torch.rand(12, 2) * torch.tensor([60.0, 70.0]) - 10  # some RoIs start or end outside the map
    wh = torch.rand(12, 2) * 50
    rois = torch.cat([torch.randint(0, 2, (12, 1)).float(), xy, xy + wh], 1)
    rois[0, 1:] = torch.tensor([12.0, 12.0, 11.0, 11.0])  # inverted box: empty grid when aligned
    got = roi_align(feat, rois, (3, 2), 1 / 8, ratio, aligned)
    ref = _kernel_reference(feat, rois, 3, 2, 1 / 8, ratio, aligned)
    torch.testing.assert_close(got.double(), ref, atol=1e-5, rtol=1e-5)


def test_roi_align_is_differentiable_in_the_features():
    torch.manual_seed(2)
    feat = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0.0, 0.3, 0.7, 3.9, 4.4], [0.0, -0.5, 1.0, 2.0, 5.5]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 2, 1.0, 2, True), (feat,))
    assert roi_align(feat, rois[:0], 2).shape == (0, 2, 2, 2)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(feat, torch.tensor([[1.0, 0, 0, 1, 1]], dtype=torch.float64), 2)
