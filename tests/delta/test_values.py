"""Every delta value implements one interface: metadata right without computing, parts that sum to it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deltatune.delta.values import DeltaMasked, DeltaSum, DeltaTensor, DeltaUpsampled, DeltaValue

CL = torch.channels_last


def _kinds() -> dict[str, DeltaValue]:
    gen = torch.Generator().manual_seed(2)
    m = torch.rand(2, 1, 4, 6, generator=gen) < 0.5
    d = (torch.randn(2, 3, 4, 6, generator=gen) * m).contiguous(memory_format=CL)
    coarse_m = torch.rand(2, 1, 2, 3, generator=gen) < 0.5
    coarse = (torch.randn(2, 3, 2, 3, generator=gen) * coarse_m).contiguous(memory_format=CL)
    up = nn.Upsample(scale_factor=2, mode="nearest")
    plain = DeltaTensor(d, m, False, int(m.sum()))
    masked = DeltaMasked(d.masked_fill(~m, 7.0), m, int(m.sum()))
    lifted = DeltaUpsampled(DeltaTensor(coarse, coarse_m, False), 2, up)
    summed = DeltaSum.plus(DeltaSum.plus(plain, DeltaMasked(d.masked_fill(~m, -3.0), m)), lifted)
    assert summed is not None
    return {"plain": plain, "masked": masked, "upsampled": lifted, "sum": summed}


def test_metadata_is_right_for_every_kind_without_computing_it() -> None:
    for name, v in _kinds().items():
        meta = (v.shape, v.dtype, v.device, v.channels_last)
        if isinstance(v, (DeltaSum, DeltaUpsampled)):
            assert not v.computed, name  # asking for metadata computed nothing
        if isinstance(v, DeltaMasked):
            assert not v.buffer_clean
        data = v.data
        assert meta == (data.shape, data.dtype, data.device, data.is_contiguous(memory_format=CL)), name
        assert v.mask is not None and tuple(v.mask.shape) == (data.shape[0], 1, *data.shape[2:]), name
        assert not bool(data.masked_select(~v.mask.expand_as(data)).any()), name  # zero outside the mask


def test_kernel_parts_sum_to_the_value_inside_their_masks() -> None:
    """What a kernel reads (each leaf's buffer inside its mask, upsampled by its factor) sums to ``data``."""
    for name, v in _kinds().items():
        terms = v.kernel_parts()
        total = torch.zeros(v.shape)
        for leaf, factor in terms:
            assert leaf.mask is not None
            part = leaf.buffer * leaf.mask  # a kernel reads inside the mask only
            if factor > 1:
                part = F.interpolate(part, scale_factor=factor, mode="nearest")
            total = total + part
        torch.testing.assert_close(total, v.data, msg=name)
    assert len(_kinds()["sum"].kernel_parts()) == 3
    assert _kinds()["upsampled"].kernel_parts()[0][1] == 2


def test_reading_a_masked_value_changes_only_the_value() -> None:
    v = _kinds()["masked"]
    assert isinstance(v, DeltaMasked)
    inside = v.buffer[v.mask.expand_as(v.buffer)].clone()
    data = v.data
    assert v.buffer_clean and data is v.buffer
    assert torch.equal(v.buffer[v.mask.expand_as(v.buffer)], inside)  # a mask-aware reader sees the same


def test_empty_and_addends() -> None:
    z = DeltaTensor(torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 3, 3, dtype=torch.bool), False, 0)
    assert z.empty and not DeltaTensor(z.data, None, True, 0).empty
    s = _kinds()["sum"]
    assert len(s.addends()) == 3 and DeltaSum.plus(z, s) is None  # a + (b + c) rounds differently
    _ = s.data
    assert s.addends() == [s]  # a computed sum is one addend
