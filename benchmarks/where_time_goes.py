"""Where a delta frame's time goes on the CPU: compiled kernels, dense convs, the rest; and how much
truncation state a frame moves against this machine's memory bandwidth.

Why: a delta network's measured speedup falls short of its MAC speedup by per-pixel work besides the
multiply-adds. Which part dominates decides what a faster engine must change: the sparse convs (wide
3x3 layers), the truncation step's state traffic (thin layers: each updated value reads the delta, the
accumulated input and the residual and writes them back with the emitted delta, 24 bytes a value) or
Python. This runs ``--frames`` frames of the model's workload under cProfile (which inflates the Python
share: read it as an upper bound), then again without the profiler, timing each delta op with forward
hooks (their wall time per op class; what is left of the frame is Python between the ops), counts the
values at the truncation points, and times a plain memory copy for scale.

Run: ``.venv/bin/python benchmarks/where_time_goes.py [--model hrnet] [--thresholds FILE | --threshold T]
[--video V] [--frames 20] [--threads 2]`` (about a minute; run nothing else meanwhile).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict

import torch

from deltatune.delta import convert
from deltatune.delta.native import keep_freed_memory
from deltatune.delta.truncation import PointwiseTruncation
from deltatune.workload import load_workload

#: bytes a truncation step moves per updated value: reads delta, a, r; writes a, r, emitted (float32)
STATE_BYTES = 24


def copy_bandwidth_gbs(n: int = 25_000_000, rounds: int = 10) -> float:
    """GB/s of a large tensor copy (one read and one write per value): the memory bandwidth to compare
    with."""
    a, b = torch.rand(n), torch.empty(n)
    b.copy_(a)
    t0 = time.perf_counter()
    for _ in range(rounds):
        b.copy_(a)
    return 2 * n * 4 * rounds / (time.perf_counter() - t0) / 1e9


def op_class_times(net: torch.nn.Module, ops: list[torch.nn.Module], clip: torch.Tensor
                   ) -> tuple[float, dict[str, tuple[float, int]]]:
    """Seconds per frame of frames 1.. of ``clip`` without a profiler, and per op class the seconds per
    frame spent inside its ops' forward calls and the calls per frame (timed by forward hooks). Hooked,
    the network calls each op through ``nn.Module.__call__`` instead of its direct graph and skips lazy
    dense refreshes (see ``DeltaNetwork.forward``): a few microseconds more per op, counted in "between
    the ops", which is therefore an upper bound."""
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    started: dict[int, float] = {}

    def before(m: torch.nn.Module, _args: tuple) -> None:
        started[id(m)] = time.perf_counter()

    def after(m: torch.nn.Module, _args: tuple, _out: object) -> None:
        spent[type(m).__name__] += time.perf_counter() - started[id(m)]
        calls[type(m).__name__] += 1

    hooks = [op.register_forward_pre_hook(before) for op in ops]
    hooks += [op.register_forward_hook(after) for op in ops]
    try:
        net.reset()  # type: ignore[operator]
        net(clip[0])
        spent.clear()
        calls.clear()
        t0 = time.perf_counter()
        for x in clip[1:]:
            net(x)
        wall = time.perf_counter() - t0
    finally:
        for h in hooks:
            h.remove()
    frames = len(clip) - 1
    return wall / frames, {k: (v / frames, calls[k] // frames) for k, v in spent.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hrnet")
    p.add_argument("--thresholds", default=None,
                   help="thresholds file (default studies/thresholds/<model>.json)")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--video", default=None,
                   help="a sample name or video file (default: the model's vtest crops)")
    p.add_argument("--threshold", type=float, default=None, help="one threshold everywhere instead of a file")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=12)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    keep_freed_memory()
    wl = load_workload(a.model, frames=a.frames, **({"video": a.video} if a.video else {}))
    clip = wl.frames.contiguous()
    net = convert(wl.model, thresholds=a.threshold or 0.0, backend="sparse", record_stats=False)
    if a.threshold is None:
        net.load_thresholds(a.thresholds or f"studies/thresholds/{a.model}.json")
    counts = {"values": 0.0, "updated": 0.0}

    def count(_mod: torch.nn.Module, args: tuple) -> None:
        x = args[0]
        if getattr(x, "first", True):
            return
        n = float(x.data.numel())
        counts["values"] += n
        counts["updated"] += n if x.mask is None else n * float(x.mask.float().mean())

    with torch.no_grad():
        net.reset()
        [net(x) for x in clip]  # warm-up: kernels built, allocator settled
        steps = [m for m in net.modules() if isinstance(m, PointwiseTruncation)]
        hooks = [m.register_forward_pre_hook(count) for m in steps]
        net.reset()
        [net(x) for x in clip]
        for h in hooks:
            h.remove()
        net.reset()
        net(clip[0])
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for x in clip[1:]:
            net(x)
        prof.disable()
        wall = time.perf_counter() - t0
        hooked_wall, by_class = op_class_times(net, list(net.ops), clip)
    frames = len(clip) - 1
    stats = pstats.Stats(prof)
    own = {}  # function -> seconds spent in it (not in its callees)
    for (_file, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        own[name] = own.get(name, 0.0) + row[2]  # row: calls, primitive calls, own time, total, callers
    kernels = {k: v for k, v in own.items() if k.startswith("<built-in method deltatune_cpu.")}
    dense = sum(v for k, v in own.items() if k == "<built-in method torch.conv2d>")
    total = sum(own.values())
    print(f"{a.model} ({wl.weights}), batch {clip.shape[1]}, {frames} frames, {a.threads} threads: "
          f"{wall * 1e3 / frames:.1f} ms/frame under cProfile")
    print(f"{'where':44s} {'share':>6s} {'ms/frame':>9s}")
    for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])[: a.top]:
        name = k.removeprefix("<built-in method ").removesuffix(">")
        print(f"{name:44s} {v / total:6.1%} {v * 1e3 / frames:9.2f}")
    print(f"{'dense convs (torch.conv2d)':44s} {dense / total:6.1%} {dense * 1e3 / frames:9.2f}")
    rest = total - dense - sum(kernels.values())
    rest_label = "the rest (Python, small tensor ops; inflated)"
    print(f"{rest_label:44s} {rest / total:6.1%} {rest * 1e3 / frames:9.2f}")
    print(f"without the profiler: {hooked_wall * 1e3:.1f} ms/frame, by op class (forward hooks)")
    print(f"{'op class':44s} {'share':>6s} {'ms/frame':>9s} {'calls':>6s}")
    for k, (sec, n) in sorted(by_class.items(), key=lambda kv: -kv[1][0]):
        print(f"{k:44s} {sec / hooked_wall:6.1%} {sec * 1e3:9.2f} {n:6d}")
    between = hooked_wall - sum(sec for sec, _ in by_class.values())
    print(f"{'between the ops (Python, graph walk)':44s} {between / hooked_wall:6.1%} {between * 1e3:9.2f}")
    per_frame = counts["updated"] / frames  # the counting pass, like the profiled one, ran frames 1..T-1
    trunc = kernels.get("<built-in method deltatune_cpu.truncate_pointwise>", 0.0) / frames
    moved = per_frame * STATE_BYTES
    print(f"truncation points: {counts['values'] / frames / 1e6:.2f} M values per frame, "
          f"{per_frame / 1e6:.2f} M updated: {moved / 1e6:.0f} MB of state traffic per frame"
          + (f", {moved / trunc / 1e9:.1f} GB/s in the step" if trunc else ""))
    print(f"memory copy on this machine: {copy_bandwidth_gbs():.1f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
