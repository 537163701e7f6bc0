"""Microbenchmark: the sparse convs' packed GEMM against at::mm and oneDNN on the shapes of sparse frames.

A sparse conv call multiplies the gathered rows of its updated pixels, [P, K], by its weight, [K, N]
(output-centric: K = kh*kw*C_in, N = C_out; input-centric: K = C_in, N = kh*kw*C_out). The shapes below
are those of HRNet-W18-small and MobileNetV2 frames on vtest crops (P from tens to thousands of pixels,
18-2304 deep, 18-1296 wide). Each product runs three ways, interleaved in rounds on the same thread
count: ``packed_matmul`` (the register-blocked AVX2/AVX-512 kernel the convs call), ``torch.mm`` (MKL) and
a 1x1 ``conv2d`` (oneDNN, the way the kernels call it when there is no packed GEMM). Reports G
multiply-adds/s (median over rounds) and the packed kernel's ratio to the faster of the other two.

Run: ``.venv/bin/python benchmarks/packed_gemm.py [--threads 2] [--rounds 9] [--json]``
"""

from __future__ import annotations

import argparse
import json

import torch
from _timing import interleaved_medians

from deltatune.delta import native

#: (P, K, N): HRNet's input-centric 3x3 convs at 18/36/72/144 channels, its output-centric ones and 1x1s,
#: MobileNetV2's 1x1 expansions and projections, and a few very small and very large products
SHAPES = [
    (300, 18, 162), (1280, 18, 162), (2304, 18, 162), (9216, 18, 162), (1280, 162, 18), (9216, 18, 18),
    (1536, 36, 324), (4608, 36, 18), (50, 72, 648), (288, 72, 648), (576, 72, 648), (64, 144, 1296),
    (160, 144, 1296), (4000, 144, 18), (3000, 64, 64), (2560, 576, 64), (448, 2304, 36), (700, 1296, 144),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    native.keep_freed_memory()
    nk = native.kernels()
    if nk is None or not nk.packed_gemm:
        print("packed_gemm.py: this build has no packed GEMM (compiled kernels unavailable, or no AVX2+FMA)")
        return 2
    rows = []
    torch.manual_seed(0)
    for pix, k, n in SHAPES:
        x, w = torch.randn(pix, k), torch.randn(k, n)
        packed, w1 = nk.pack_weight(w), w.t().contiguous().view(n, k, 1, 1)
        err = float((nk.packed_matmul(x, packed, n) - x @ w).abs().max())
        macs = pix * k * n
        fns = {
            "packed": lambda x=x, packed=packed, n=n: nk.packed_matmul(x, packed, n),
            "mm": lambda x=x, w=w: torch.mm(x, w),
            "onednn": lambda x=x, w1=w1, pix=pix, k=k: torch.conv2d(x.view(1, pix, 1, k).permute(0, 3, 1, 2),
                                                                  w1),
        }
        med = interleaved_medians(fns, rounds=a.rounds, inner=max(3, int(1e8 / macs)))
        gs = {name: macs / (ms * 1e6) for name, ms in med.items()}
        rows.append({"p": pix, "k": k, "n": n, "macs": macs, "gmacs": gs, "max_abs_err": err,
                     "packed_vs_best_other": gs["packed"] / max(gs["mm"], gs["onednn"])})
    if a.json:
        print(json.dumps({"threads": torch.get_num_threads(), "rows": rows}, indent=2))
        return 0
    print(f"{torch.get_num_threads()} threads; G multiply-adds/s, median of {a.rounds} interleaved rounds")
    print(f"{'P x K x N':>18} {'M MACs':>7} {'packed':>7} {'mm':>6} {'oneDNN':>7} {'packed / best':>14}")
    for r in rows:
        g = r["gmacs"]
        print(f"{r['p']:>6}x{r['k']:>5}x{r['n']:>5} {r['macs'] / 1e6:7.1f} {g['packed']:7.0f} {g['mm']:6.0f} "
              f"{g['onednn']:7.0f} {r['packed_vs_best_other']:13.2f}x")
    ratios = sorted(r["packed_vs_best_other"] for r in rows)
    mid = ratios[len(ratios) // 2]
    print(f"packed / best other: {ratios[0]:.2f}x to {ratios[-1]:.2f}x, median {mid:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
