"""Microbenchmark: one depthwise conv (default 3x3, 144 channels, 56x56, stride 1) with ~5 % clustered
active input pixels, sparse vs dense.

The depthwise layers of MobileNetV2 (the seed detector's backbone) and BlazePose. Dense depthwise convs are
cheap per output pixel (k*k multiply-adds per channel), so the sparse kernel must be cheap per updated
pixel too: it sums the k*k taps' contiguous channel vectors per updated output pixel, no GEMM. Both sides
run interleaved on the same thread count; medians over rounds after a warm-up. The sparse time includes
what a delta conv call adds on top of the dense one: the output mask (receptive-field dilation of the
input mask), the pixel list and the zero output.

Run: ``.venv/bin/python benchmarks/sparse_depthwise.py [--channels 144] [--size 56] [--kernel 3]
[--stride 1] [--frac 0.05] [--threads 2] [--json]``
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from _timing import interleaved_medians
from torch import nn

from deltatune.delta import native
from deltatune.delta._sparse_kernels import (
    SparseConv,
    active_pixels,
    geometry,
    sparse_depthwise2d,
    zero_pixels,
)
from deltatune.delta.calibration import blob_mask
from deltatune.delta.linear import ConvOp


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frac", type=float, default=0.05, help="active input pixel fraction (default 0.05)")
    p.add_argument("--channels", type=int, default=144)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--size", type=int, default=56, help="input height and width (default 56)")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--inner", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    native.keep_freed_memory()  # the allocator setting the deltatune command runs under (dense benefits too)
    torch.manual_seed(0)
    c, k, s, hw = a.channels, a.kernel, a.stride, a.size
    conv = nn.Conv2d(c, c, k, s, padding=k // 2, groups=c, bias=False).eval()
    w = conv.weight.detach()
    mask = blob_mask((1, 1, hw, hw), a.frac)
    x = torch.randn(1, c, hw, hw) * mask
    xcl = x.contiguous(memory_format=torch.channels_last)
    wcl = w.contiguous(memory_format=torch.channels_last)
    op = ConvOp("bench", conv)
    kernel = SparseConv(conv)
    g = geometry(conv)

    def dense(t: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, wt, None, s, k // 2, 1, c)

    def sparse() -> torch.Tensor:
        """What a delta conv call costs: output mask + the compiled per-pixel depthwise kernel."""
        mo, _ = op.out_mask_count(mask)
        return kernel(xcl, mo, in_mask=mask)[0]

    def sparse_torch() -> torch.Tensor:
        mo = op._torch_out_mask(mask)
        out_hw = (int(mo.shape[-2]), int(mo.shape[-1]))
        return sparse_depthwise2d(x, kernel.weight_dw, g, out_hw, active_pixels(mo), zero_pixels(mask))

    fns = {
        "dense_nchw": lambda: dense(x, w),
        "dense_channels_last": lambda: dense(xcl, wcl),
        "sparse": sparse,
        "sparse_torch": sparse_torch,
    }
    with torch.no_grad():
        mo = op.out_mask(mask)
        ref = dense(x, w)
        err = max(float(((f() - ref) * mo).abs().max()) for f in (sparse, sparse_torch))
        med = interleaved_medians(fns, rounds=a.rounds, inner=a.inner)
    best_dense = min(med["dense_nchw"], med["dense_channels_last"])
    res = {
        "threads": torch.get_num_threads(),
        "channels": c,
        "kernel": k,
        "stride": s,
        "size": hw,
        "active_in": float(mask.float().mean()),
        "updated_out": float(mo.float().mean()),
        "dense_nchw_ms": med["dense_nchw"],
        "dense_channels_last_ms": med["dense_channels_last"],
        "sparse_ms": med["sparse"],
        "sparse_plain_torch_ms": med["sparse_torch"],
        "compiled_kernels": native.available(),
        "speedup_vs_best_dense": best_dense / med["sparse"],
        "max_abs_err": err,
    }
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"depthwise {k}x{k} stride {s}, {c} channels on {hw}x{hw}, {res['threads']} threads: active "
              f"input {res['active_in']:.1%}, updated output {res['updated_out']:.1%}")
        print(f"dense (NCHW)          {med['dense_nchw']:8.3f} ms")
        print(f"dense (channels-last) {med['dense_channels_last']:8.3f} ms")
        print(f"sparse, compiled      {med['sparse']:8.3f} ms"
              + ("" if native.available() else "  [compiled kernels unavailable: plain torch]"))
        print(f"sparse, plain torch   {med['sparse_torch']:8.3f} ms")
        print(f"speedup vs best dense {res['speedup_vs_best_dense']:.2f}x  (max abs err {err:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
