"""Where a delta frame's time goes on a CUDA device: GPU kernel time against wall time, kernel launches
and host-device synchronisations per frame, dense model beside it (torch.profiler).

Why: a delta network does little arithmetic per frame but runs many small ops (masks, truncation,
gathers) and reads counts back to the host; on a GPU its wall time can be launch- and sync-bound while
the GPU idles. The numbers say which of those a faster CUDA path must remove (docs/gpu.md).

Run: ``python3 benchmarks/gpu_profile.py [--model hrnet] [--thresholds studies/thresholds/hrnet.json]
[--video vtest] [--frames 20] [--batch 1]`` (needs a CUDA device; ``--device cpu`` runs the same
profile on the CPU, e.g. to check the script).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import torch
from torch.profiler import ProfilerActivity, profile

from deltatune.delta import convert
from deltatune.delta.calibration import calibrate
from deltatune.workload import load_workload


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _profile(fn, frames) -> tuple[float, object]:
    device = frames[0].device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    _sync(device)
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for x in frames:
            fn(x)
        _sync(device)
        wall = (time.perf_counter() - t0) * 1e3 / len(frames)
    return wall, prof


def _summary(name: str, wall: float, prof, n: int) -> None:
    gpu_us = sum(k.self_device_time_total for k in prof.key_averages())
    events = prof.events()
    kernels = sum(1 for e in events if str(e.device_type).endswith("CUDA"))
    calls = Counter(e.name for e in events)
    syncs = calls["cudaStreamSynchronize"] + calls["cudaDeviceSynchronize"]
    copies = calls["cudaMemcpyAsync"] + calls["cudaMemcpy"]
    print(f"{name}: wall {wall:.2f} ms/frame, GPU kernels {gpu_us / 1e3 / n:.2f} ms/frame "
          f"({gpu_us / 1e3 / n / wall:.0%} busy), {kernels / n:.0f} kernels/frame, "
          f"{syncs / n:.0f} synchronisations and {copies / n:.0f} memcpy calls/frame")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hrnet")
    p.add_argument("--weights", default="default")
    p.add_argument("--thresholds", default="studies/thresholds/hrnet.json")
    p.add_argument("--video", default=None)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--device", default="cuda")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_profile: error: --device {args.device}: no CUDA device", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    wl = load_workload(args.model, weights=None if args.weights == "none" else args.weights,
                       video=args.video, frames=args.frames)
    model = wl.model.to(device)
    clip = wl.frames[:, : args.batch].contiguous().to(device)
    net = convert(model, thresholds=0.0, backend="sparse", record_stats=False)
    calibrate(net, clip[0])
    net.load_thresholds(args.thresholds)
    steady = list(clip[1:])
    with torch.no_grad():
        for _ in range(2):  # warm-up: cuDNN algorithm choice, allocator
            [model(x) for x in steady]
            net.reset()
            [net(x) for x in clip]
        wall_d, prof_d = _profile(model, steady)
        net.reset()
        net(clip[0])
        wall_s, prof_s = _profile(net, steady)
    n = len(steady)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{args.model} ({wl.weights}) batch {args.batch}, {n} frames, {where}")
    _summary("dense", wall_d, prof_d, n)
    _summary("delta", wall_s, prof_s, n)
    print(f"\ndelta: top {args.top} ops by total CPU time")
    print(prof_s.key_averages().table(sort_by="cpu_time_total", row_limit=args.top, max_name_column_width=40))
    print(f"\ndelta: top {args.top} ops by GPU time")
    print(prof_s.key_averages().table(sort_by="device_time_total", row_limit=args.top,
                                      max_name_column_width=40))
    return 0


if __name__ == "__main__":
    sys.exit(main())
