"""MAC counts of a 3x3 conv under a known mask, computed by hand (docs/design.md#counting-work)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deltatune.delta import convert


def conv_record(stride: int, active: list[tuple[int, int]]):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=stride, padding=1))
    net = convert(model, thresholds=0.0)
    x0 = torch.rand(1, 2, 6, 6)
    x1 = x0.clone()
    for i, j in active:
        x1[0, 0, i, j] += 1.0
    with torch.no_grad():
        net(x0)
        net(x1)
    (rec,) = [r for r in net.stats.records if r.frame == 1 and r.kind == "conv"]
    return rec


# per output pixel: C_out * C_in/groups * k*k = 3 * 2 * 9 = 54 MACs
@pytest.mark.parametrize(
    ("active", "updated_out"),
    [
        ([(2, 2)], 9),  # interior pixel: its 3x3 neighbourhood of outputs
        ([(0, 0)], 4),  # corner: outputs (0,0),(0,1),(1,0),(1,1)
        ([(2, 2), (2, 3)], 12),  # two neighbours: 3x4 block
    ],
)
def test_stride1(active, updated_out) -> None:
    rec = conv_record(1, active)
    assert rec.dense_macs == 6 * 6 * 54 == 1944
    assert rec.active_out == updated_out
    assert rec.delta_macs == updated_out * 54


@pytest.mark.parametrize(
    ("active", "updated_out"),
    [
        # output (i, j) reads input rows/cols 2i-1 .. 2i+1 (padding 1). Input 2 -> i = 1 only.
        ([(2, 2)], 1),
        # input 3 -> i in {1, 2}: a 2x2 block of outputs
        ([(3, 3)], 4),
        # union of the two above
        ([(2, 2), (3, 3)], 4),
        # input 0 -> i = 0; input 5 -> i = 2 (rows 3..5)
        ([(0, 5)], 1),
    ],
)
def test_stride2(active, updated_out) -> None:
    rec = conv_record(2, active)
    assert rec.dense_macs == 3 * 3 * 54 == 486
    assert rec.active_out == updated_out
    assert rec.delta_macs == updated_out * 54


def test_take_totals_a_stream_without_keeping_its_records() -> None:
    """``take()`` per frame sums to what ``summary()`` says over the whole stream, and leaves no record
    behind (``predict`` over a long video keeps running totals, not one record per op and frame)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))
    frames = [torch.rand(1, 2, 8, 8)]
    for i in range(4):
        x = frames[-1].clone()
        x[0, :, i, 2 * i] += 0.5
        frames.append(x)
    whole, taken = convert(model, thresholds=0.01), convert(model, thresholds=0.01)
    total = taken.stats.take()  # nothing recorded yet
    with torch.no_grad():
        for x in frames:
            whole(x)
            taken(x)
            total += taken.stats.take()
            assert taken.stats.records == []
    assert total == whole.stats.summary() and total.frames == 4
    assert total.mac_speedup == whole.mac_speedup() > 1.0
