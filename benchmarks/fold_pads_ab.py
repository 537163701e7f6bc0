"""A/B: a model's delta frames with its symmetric zero pads folded into the convs (what ``convert`` does)
against the same network with the pads kept as ops, in one process, interleaved.

Why: a pad op copies the whole delta map into a larger one every frame, updated pixels or not; folded,
the conv kernels treat the taps outside the map as zeros. BlazePose pads before each of its five
stride-2 convs. Both networks run the model's documented thresholds on its workload (vtest crops, batch
of its streams), each with this machine's layer costs; the rounds alternate which network runs first.

Run: ``.venv/bin/python benchmarks/fold_pads_ab.py [--model blazepose] [--rounds 6] [--threads 2]``
(about a minute; run nothing else meanwhile).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys

import torch

from deltatune.delta.calibration import calibrate
from deltatune.delta.latency import time_delta
from deltatune.delta.linear import PadOp
from deltatune.delta.native import keep_freed_memory
from deltatune.workload import load_workload


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="blazepose")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    keep_freed_memory()
    conv_mod = importlib.import_module("deltatune.delta.convert")  # the module, not the function
    wl = load_workload(a.model, frames=a.frames)
    clip = wl.frames.contiguous()
    folded = conv_mod.convert(wl.model, thresholds=0.0, backend="sparse", record_stats=False)
    fold = conv_mod.fold_zero_pads
    conv_mod.fold_zero_pads = lambda gm: gm
    try:
        kept = conv_mod.convert(wl.model, thresholds=0.0, backend="sparse", record_stats=False)
    finally:
        conv_mod.fold_zero_pads = fold
    nets = {"pads folded": folded, "pads kept": kept}
    for net in nets.values():
        net.load_thresholds(f"studies/thresholds/{a.model}.json")
        calibrate(net, clip[0])

    frames = list(clip)
    times: dict[str, list[float]] = {k: [] for k in nets}
    with torch.no_grad():
        for net in nets.values():
            time_delta(net, frames)  # warm-up
        for r in range(a.rounds):
            for k in (list(nets) if r % 2 == 0 else list(reversed(nets))):
                times[k].append(time_delta(nets[k], frames))
    pads = {k: sum(isinstance(op, PadOp) for op in n.ops) for k, n in nets.items()}
    print(f"{a.model}, batch {clip.shape[1]}, {len(clip) - 1} delta frames, {a.threads} threads, "
          f"{a.rounds} alternating rounds")
    for k, v in times.items():
        print(f"{k:12s} {pads[k]} pad op(s)  median {statistics.median(v):7.2f} ms/frame  rounds "
              + " ".join(f"{x:.1f}" for x in v))
    ratio = statistics.median(times["pads kept"]) / statistics.median(times["pads folded"])
    print(f"folded is {ratio:.3f}x as fast")
    return 0


if __name__ == "__main__":
    sys.exit(main())
