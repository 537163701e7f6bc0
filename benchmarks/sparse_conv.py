"""Microbenchmark: one 3x3 conv 64->64 on 64x48 with ~5 % clustered active input pixels, sparse vs dense.

Issue 5's goal: the sparse gather -> GEMM -> scatter kernel is >= 6x faster than ``F.conv2d``. Both run
interleaved on the same thread count; the numbers are medians over rounds after a warm-up. The sparse
time includes everything a delta conv does per call on top of the dense one: the output mask
(receptive-field dilation of the input mask), the pixel index list and the zero output.

Run: ``.venv/bin/python benchmarks/sparse_conv.py [--frac 0.05] [--rounds 40] [--json]``
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from _timing import interleaved_medians
from torch import nn

from deltatune.delta import native
from deltatune.delta._sparse_kernels import SparseConv, active_pixels, geometry, sparse_conv2d, zero_pixels
from deltatune.delta.calibration import blob_mask
from deltatune.delta.linear import ConvOp


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frac", type=float, default=0.05, help="active input pixel fraction (default 0.05)")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--inner", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    native.keep_freed_memory()  # the allocator setting the deltatune command runs under (dense benefits too)
    torch.manual_seed(0)
    c, k = a.channels, a.kernel
    conv = nn.Conv2d(c, c, k, padding=k // 2, bias=False).eval()
    w = conv.weight.detach()
    mask = blob_mask((1, 1, a.height, a.width), a.frac)
    x = torch.randn(1, c, a.height, a.width) * mask
    g = geometry(conv)
    w2 = w.reshape(c, -1).contiguous()
    xcl = x.contiguous(memory_format=torch.channels_last)
    wcl = w.contiguous(memory_format=torch.channels_last)

    op = ConvOp("bench", conv)
    kernel = SparseConv(conv)

    def out_mask():
        return F.max_pool2d(mask.float(), k, 1, k // 2) > 0

    def sparse_torch():
        return sparse_conv2d(x, w2, g, (a.height, a.width), active_pixels(out_mask()), zero_pixels(mask))

    def sparse():
        """What a delta conv call costs: output mask + compiled gather -> GEMM -> scatter (channels-last)."""
        mo, _ = op.out_mask_count(mask)
        return kernel(xcl, mo, in_mask=mask)[0]

    def sparse_output_centric():
        """The same call with one GEMM row per updated *output* pixel (no input mask given)."""
        mo, _ = op.out_mask_count(mask)
        return kernel(xcl, mo)[0]

    fns = {
        "dense_nchw": lambda: F.conv2d(x, w, padding=k // 2),
        "dense_channels_last": lambda: F.conv2d(xcl, wcl, padding=k // 2),
        "sparse": sparse,
        "sparse_output_centric": sparse_output_centric,
        "sparse_torch": sparse_torch,
    }
    with torch.no_grad():
        mo = out_mask()
        err = float(((sparse() - F.conv2d(x, w, padding=k // 2)) * mo).abs().max())
        for f in (sparse_torch, sparse_output_centric):
            err = max(err, float(((f() - F.conv2d(x, w, padding=k // 2)) * mo).abs().max()))
        med = interleaved_medians(fns, rounds=a.rounds, inner=a.inner)
    best_dense = min(med["dense_nchw"], med["dense_channels_last"])
    res = {
        "threads": torch.get_num_threads(),
        "active_in": float(mask.float().mean()),
        "updated_out": float(mo.float().mean()),
        "dense_nchw_ms": med["dense_nchw"],
        "dense_channels_last_ms": med["dense_channels_last"],
        "sparse_ms": med["sparse"],
        "sparse_output_centric_ms": med["sparse_output_centric"],
        "sparse_plain_torch_ms": med["sparse_torch"],
        "compiled_kernels": native.available(),
        "speedup_vs_F_conv2d": med["dense_nchw"] / med["sparse"],
        "speedup_vs_best_dense": best_dense / med["sparse"],
        "max_abs_err": err,
    }
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{k}x{k} {c}->{c} on {a.height}x{a.width}, {res['threads']} threads: active input "
              f"{res['active_in']:.1%}, updated output {res['updated_out']:.1%}")
        print(f"dense F.conv2d (NCHW)         {med['dense_nchw']:8.3f} ms")
        print(f"dense F.conv2d (channels-last) {med['dense_channels_last']:7.3f} ms")
        print(f"sparse, compiled (what a call costs) {med['sparse']:6.3f} ms"
              + ("" if native.available() else "  [compiled kernels unavailable: plain torch]"))
        print(f"sparse, compiled, output-centric {med['sparse_output_centric']:6.3f} ms")
        print(f"sparse, plain torch            {med['sparse_torch']:8.3f} ms")
        print(f"speedup vs F.conv2d {res['speedup_vs_F_conv2d']:.2f}x, vs best dense "
              f"{res['speedup_vs_best_dense']:.2f}x  (max abs err {err:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
