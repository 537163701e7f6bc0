"""Per-pixel sparse convolution: gather -> GEMM -> scatter.

:class:`SparseConv` is what the sparse backend calls: it runs the compiled kernel (``csrc/delta_cpu.cpp``,
channels-last rows, one call; input-centric for stride-1 k x k convs when it is given the input mask,
which multiplies each updated input pixel once and adds its k*k tap results into the output pixels they
reach, fewer multiply-adds than one row per updated output pixel) on float32 CPU tensors and
:func:`sparse_conv2d` (plain torch, any device, described below) otherwise. For the updated output
pixels ``P`` the plain-torch kernel

1. computes, for every kernel tap ``k`` and pixel ``p``, the flat input position it reads
   (``[K, P]`` indices; taps that fall into the zero padding read a pixel whose delta is zero, or are
   zeroed after the gather when there is none);
2. gathers those input columns from the ``[C_in, H*W]`` view of the delta (no layout change of the
   whole tensor: only ``C_in * K * P`` values move) into ``cols [C_in * K, P]``;
3. multiplies ``W [C_out, C_in * K] @ cols`` (one GEMM, the only O(MACs) step);
4. scatters the ``[C_out, P]`` result into a zero output.

Depthwise convs (``groups == C_in == C_out``) take the same gather but no GEMM: each output channel is
the sum over taps of its own input channel times its own filter tap (:func:`sparse_depthwise2d`; the
compiled ``sparse_depthwise`` does it per pixel on contiguous channel vectors). Everything is exact (same
products as the dense conv, summed in a different order), so the result equals the reference backend to
float rounding. Other grouped convs and non-zero padding modes are not handled here (the backend keeps
them dense).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from deltatune.delta.native import native_for

__all__ = [
    "ConvGeometry",
    "geometry",
    "sparse_supported",
    "sparse_conv2d",
    "sparse_depthwise2d",
    "is_depthwise",
    "active_pixels",
    "zero_pixels",
    "SparseConv",
]


@dataclass(frozen=True)
class ConvGeometry:
    """The static description of a conv that the sparse kernel needs."""

    c_in: int
    c_out: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int  # top/left zero padding
    pw: int
    dh: int
    dw: int
    groups: int = 1


def geometry(conv: nn.Conv2d) -> ConvGeometry:
    """The :class:`ConvGeometry` of ``conv`` (string paddings resolved like ``ConvOp`` does)."""
    kh, kw = conv.kernel_size
    dh, dw = conv.dilation
    if isinstance(conv.padding, str):
        pads = [0 if conv.padding == "valid" else (d * (k - 1)) // 2 for k, d in ((kh, dh), (kw, dw))]
        ph, pw = pads
    else:
        ph, pw = conv.padding
    return ConvGeometry(
        conv.in_channels,
        conv.out_channels,
        kh,
        kw,
        conv.stride[0],
        conv.stride[1],
        ph,
        pw,
        dh,
        dw,
        conv.groups,
    )


def is_depthwise(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` is depthwise: one filter per channel (``groups == C_in == C_out > 1``)."""
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def sparse_supported(conv: nn.Conv2d) -> bool:
    """Whether the sparse kernels can run ``conv``: zero padding, and groups=1 or depthwise."""
    return conv.padding_mode == "zeros" and (conv.groups == 1 or is_depthwise(conv))


def active_pixels(out_mask: Tensor) -> Tensor:
    """Flat indices (``n * H * W + y * W + x``) of the updated pixels of a ``[N, 1, H, W]`` mask."""
    return out_mask.reshape(-1).nonzero().squeeze(1)


def _tap_offsets(g: ConvGeometry, device: torch.device) -> tuple[Tensor, Tensor]:
    ky = torch.arange(g.kh, device=device).repeat_interleave(g.kw) * g.dh - g.ph
    kx = torch.arange(g.kw, device=device).repeat(g.kh) * g.dw - g.pw
    return ky, kx


def zero_pixels(mask: Tensor) -> Tensor | None:
    """Per sample, the flat position of one pixel outside ``mask [N, 1, H, W]`` (where a delta is exactly
    zero), or ``None`` when some sample has every pixel updated. Padding taps are pointed there."""
    flat = mask.reshape(mask.shape[0], -1)
    if bool(flat.all(dim=1).any()):
        return None
    return flat.to(torch.uint8).argmin(dim=1)


def _gather(
    delta: Tensor, g: ConvGeometry, out_hw: tuple[int, int], idx: Tensor, zero_pos: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The receptive fields of the output pixels ``idx``: ``(cols [C_in, K * P] tap-major, batch entry
    [P], position in the map [P])``; taps in the zero padding read zero."""
    n, c, h, w = delta.shape
    ho, wo = out_hw
    p = idx.numel()
    k = g.kh * g.kw
    hw_out = ho * wo
    b = torch.div(idx, hw_out, rounding_mode="floor")
    pos = idx - b * hw_out
    oy = torch.div(pos, wo, rounding_mode="floor")
    ox = pos - oy * wo
    ky, kx = _tap_offsets(g, delta.device)
    iy = (oy * g.sh).unsqueeze(0) + ky.unsqueeze(1)  # [K, P]
    ix = (ox * g.sw).unsqueeze(0) + kx.unsqueeze(1)
    needs_pad = (
        g.ph > 0
        or g.pw > 0
        or (ho - 1) * g.sh + (g.kh - 1) * g.dh >= h
        or ((wo - 1) * g.sw + (g.kw - 1) * g.dw >= w)
    )
    valid = None
    if needs_pad:
        valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        if bool(valid.all()):
            valid = None
    if valid is None:
        flat = (iy * w + ix).reshape(-1)  # [K * P], tap-major
    else:
        flat = iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)
        if zero_pos is not None:
            flat = torch.where(valid, flat, zero_pos[b].unsqueeze(0))
            valid = None
        flat = flat.reshape(-1)
    if n == 1:
        cols = delta.reshape(c, h * w).index_select(1, flat)  # [C, K * P]
    else:
        bb = b.unsqueeze(0).expand(k, p).reshape(-1)
        cols = delta.reshape(n, c, h * w).permute(1, 0, 2)[:, bb, flat]  # [C, K * P]
    if valid is not None:
        cols = cols * valid.reshape(1, -1).to(cols.dtype)
    return cols, b, pos


def _scatter(out: Tensor, res: Tensor, b: Tensor, pos: Tensor) -> None:
    """Write ``res [C_out, P]`` into ``out [N, C_out, H_out * W_out]`` at the pixels ``(b, pos)``."""
    if out.shape[0] == 1:
        out[0].index_copy_(1, pos, res)
    else:
        out.permute(1, 0, 2)[:, b, pos] = res


def sparse_conv2d(
    delta: Tensor,
    weight2d: Tensor,
    g: ConvGeometry,
    out_hw: tuple[int, int],
    idx: Tensor,
    zero_pos: Tensor | None = None,
) -> Tensor:
    """Bias-free conv of ``delta [N, C_in, H, W]`` computed only at the flat output indices ``idx``.

    ``weight2d`` is the conv weight as ``[C_out, C_in * kh * kw]`` (contiguous). Output pixels not in
    ``idx`` are zero. ``zero_pos`` (``[N]``, from :func:`zero_pixels`) names a pixel per sample where
    ``delta`` is zero: taps that fall into the zero padding read it, which saves masking the gathered
    columns. Returns ``[N, C_out, H_out, W_out]`` (contiguous NCHW).
    """
    n, c = delta.shape[:2]
    ho, wo = out_hw
    out = delta.new_zeros(n, g.c_out, ho * wo)
    p = idx.numel()
    if p == 0:
        return out.view(n, g.c_out, ho, wo)
    cols, b, pos = _gather(delta, g, out_hw, idx, zero_pos)
    _scatter(out, torch.mm(weight2d, cols.view(c * g.kh * g.kw, p)), b, pos)  # [C_out, P]
    return out.view(n, g.c_out, ho, wo)


def sparse_depthwise2d(
    delta: Tensor,
    weight_kc: Tensor,
    g: ConvGeometry,
    out_hw: tuple[int, int],
    idx: Tensor,
    zero_pos: Tensor | None = None,
) -> Tensor:
    """Bias-free depthwise conv of ``delta [N, C, H, W]`` at the flat output indices ``idx``
    (``weight_kc``: the filters as ``[K, C]``, tap-major); as :func:`sparse_conv2d` otherwise."""
    n, c = delta.shape[:2]
    ho, wo = out_hw
    out = delta.new_zeros(n, c, ho * wo)
    p = idx.numel()
    if p == 0:
        return out.view(n, c, ho, wo)
    cols, b, pos = _gather(delta, g, out_hw, idx, zero_pos)
    res = (cols.view(c, g.kh * g.kw, p) * weight_kc.t().unsqueeze(2)).sum(dim=1)  # [C, P]
    _scatter(out, res, b, pos)
    return out.view(n, c, ho, wo)


class SparseConv:
    """A conv prepared for sparse execution: its geometry and its weight in the kernels' layouts.

    Calling it runs the compiled kernel (``csrc/delta_cpu.cpp``: channels-last gather -> GEMM -> scatter
    in one call) on float32 CPU tensors, else :func:`sparse_conv2d`. Either way the result is the conv
    of ``delta`` at the set pixels of ``out_mask`` and zero elsewhere.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        if not sparse_supported(conv):
            raise ValueError("SparseConv needs a groups=1 or depthwise conv with zero padding")
        self.geometry = geometry(conv)
        w = conv.weight.detach()
        self.weight = w
        #: depthwise: per-pixel tap sums, no GEMM (the filters as [K, C], tap-major)
        self.depthwise = is_depthwise(conv)
        if self.depthwise:
            self.weight_dw = w.reshape(w.shape[0], -1).t().contiguous()
            return
        self.weight2d = w.reshape(w.shape[0], -1).contiguous()  # [C_out, C_in * K] (torch kernel)
        # compiled kernel: rows (tap, input channel) -> [K * C_in, C_out], and the same weight as a
        # [C_out, K * C_in, 1, 1] 1x1-conv weight for large GEMMs
        self.weight_kc = w.permute(2, 3, 1, 0).reshape(-1, w.shape[0]).contiguous()
        self.weight_1x1 = self.weight_kc.t().contiguous().view(w.shape[0], -1, 1, 1)
        # input-centric form (stride-1 k x k layers, given the input mask): [C_in, K * C_out] (tap-major
        # columns) and the same as a [K * C_out, C_in, 1, 1] 1x1-conv weight
        self.weight_in = w.permute(1, 2, 3, 0).reshape(w.shape[1], -1).contiguous()
        self.weight_in_1x1 = self.weight_in.t().contiguous().view(-1, w.shape[1], 1, 1)
        # both GEMM weights as the compiled GEMM's column panels (csrc pack_weight), when it is built
        nk = native_for(w)
        self.weight_kc_packed = nk.pack_weight(self.weight_kc) if nk is not None else None
        self.weight_in_packed = nk.pack_weight(self.weight_in) if nk is not None else None

    @property
    def input_centric(self) -> bool:
        """Whether the compiled kernel runs this conv input-centrically when given the input mask (a
        stride-1 k x k conv that is not depthwise): its cost follows the updated input pixels."""
        g = self.geometry
        return not self.depthwise and g.sh == 1 and g.sw == 1 and g.kh * g.kw > 1

    def compiled(self, delta: Tensor, out_mask: Tensor, in_mask: Tensor | None = None) -> bool:
        """Whether a call with these tensors runs the compiled kernel, which reads ``delta`` only inside
        ``in_mask`` (so ``delta`` may hold anything outside it) and can leave the output's zeros
        unwritten (``zero_fill=False``)."""
        return self._native(delta, out_mask, in_mask) is not None

    @staticmethod
    def _native(delta: Tensor, out_mask: Tensor, in_mask: Tensor | None) -> Any:
        nk = native_for(delta, out_mask)
        return nk if nk is not None and (in_mask is None or in_mask.dtype == torch.bool) else None

    def __call__(
        self,
        delta: Tensor,
        out_mask: Tensor,
        *,
        max_fraction: float = 1.0,
        in_mask: Tensor | None = None,
        zero_fill: bool = True,
    ) -> tuple[Tensor | None, int]:
        """``(y, updated output pixels)``; ``y`` is ``None`` (nothing computed) when at least
        ``max_fraction < 1`` of the output pixels are updated: the caller runs the dense conv instead.
        ``in_mask`` (optional; ``delta`` must be zero outside it, unless :meth:`compiled`) lets the
        compiled kernel run stride-1 k x k layers input-centrically (one GEMM row per updated input
        pixel, scattered to the K output pixels it reaches: fewer multiply-adds than one row per updated
        output pixel) and the torch kernel point padding taps at a zero pixel. ``zero_fill=False`` lets
        the compiled kernel leave ``y`` undefined outside ``out_mask``."""
        g = self.geometry
        nk = self._native(delta, out_mask, in_mask)
        if nk is not None:
            shape = (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)
            frac = 1.0 if max_fraction >= 1.0 else max_fraction
            if self.depthwise:
                return nk.sparse_depthwise(delta, out_mask, self.weight_dw, *shape, frac, in_mask, zero_fill)
            weights = (self.weight_kc, self.weight_1x1, self.weight_kc_packed)
            weights_in = (self.weight_in, self.weight_in_1x1, self.weight_in_packed)
            return nk.sparse_conv(delta, out_mask, *weights, *shape, frac, in_mask, *weights_in, zero_fill)
        idx = active_pixels(out_mask)
        count, total = int(idx.numel()), out_mask.numel()
        if max_fraction < 1.0 and count >= max_fraction * total:
            return None, count
        n = delta.shape[0]
        zero_pos = None if in_mask is None else zero_pixels(in_mask.expand(n, 1, *delta.shape[2:]))
        out_hw = (int(out_mask.shape[-2]), int(out_mask.shape[-1]))
        if self.depthwise:
            return sparse_depthwise2d(delta, self.weight_dw, g, out_hw, idx, zero_pos), count
        return sparse_conv2d(delta, self.weight2d, g, out_hw, idx, zero_pos), count
