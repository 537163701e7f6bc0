"""Microbenchmark: the compiled truncation step on BlazePose-sized maps, every pixel updated, against a
dense ReLU6 of the same map.

The step reads the change and the op's two state buffers (accumulated value, residual) and writes the
emitted change and both buffers at every updated pixel: six streams of the map, where a dense ReLU6
reads one and writes one. On large maps it runs at memory speed, so this prints the bandwidth it reaches
over those six streams beside the dense op's time: the floor of what a delta network pays per
non-linearity on a mostly updated map (README, "Depthwise-heavy models lose").

Run: ``.venv/bin/python benchmarks/truncation.py [--threads 2] [--rounds 9]``
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
from _timing import interleaved_medians

from deltatune.delta import native

#: BlazePose's map sizes at batch 3 (its stages at 256x256 input).
SHAPES = [(3, 24, 128, 128), (3, 48, 64, 64), (3, 96, 32, 32), (3, 192, 16, 16), (3, 288, 8, 8)]


def _calls(nk: Any, shape: tuple[int, int, int, int]) -> dict[str, Callable[[], object]]:
    """The truncation step (ReLU6, threshold 0.05, max over channels, accumulating, zeros written) and
    a dense ReLU6 into a reused buffer, on one channels-last map with every pixel updated."""
    cl = torch.channels_last
    g = torch.Generator().manual_seed(0)
    a = torch.randn(*shape, generator=g).contiguous(memory_format=cl)
    r = torch.zeros(*shape).contiguous(memory_format=cl)
    d = (0.1 * torch.randn(*shape, generator=g)).contiguous(memory_format=cl)
    mask = torch.ones(shape[0], 1, shape[2], shape[3], dtype=torch.bool)
    out = torch.empty_like(a)
    return {
        "step": lambda: nk.truncate_pointwise([d], [1], [mask], a, r, 0.05, 0, True, 0.0, 0.0, 6.0, None,
                                              True),
        "relu6": lambda: torch.clamp(d, 0.0, 6.0, out=out),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=9)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    native.keep_freed_memory()
    nk = native.kernels()
    if nk is None:
        print("truncation: error: the compiled kernels are unavailable here")
        return 2
    print(f"{'map':<16} {'step ms':>8} {'GB/s (6 streams)':>17} {'ReLU6 ms':>9} {'ratio':>6}")
    for shape in SHAPES:
        numel = shape[0] * shape[1] * shape[2] * shape[3]
        inner = max(3, int(2e7 // numel))
        ms = interleaved_medians(_calls(nk, shape), rounds=args.rounds, inner=inner)
        gbs = 6 * numel * 4 / (ms["step"] * 1e6)
        print(f"{'x'.join(map(str, shape)):<16} {ms['step']:>8.3f} {gbs:>17.1f} {ms['relu6']:>9.3f} "
              f"{ms['step'] / ms['relu6']:>5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
