"""A/B benchmark of a kernel change: the compiled kernels of a git revision against the working tree's,
on one delta network in one process, in interleaved rounds.

A change to ``tuner/delta/csrc/delta_cpu.cpp`` is judged on whole frames of a real model, not only on a
microbenchmark. Timing the two builds in two runs would compare two moods of a noisy shared machine; here
the base revision's source is compiled beside the current one (``native.compile_kernels``), and each
round times the same network, same frames and same thresholds with the base kernels, the current
kernels and the dense model, in turn (``native.use_kernels``; the two builds swap places every round).
Both builds run the same per-layer choices (this machine's calibration table for the current kernels),
or with ``--own-costs`` each its own: the base build's layer costs are then measured with its kernels
(once, cached in a table of its own), so that a change which moves the sparse/dense break-evens is
timed whole, choices included.
Reports the median ms per frame of each, the base/current ratio with the range over rounds, and the
largest difference between the two builds' outputs.

How small a difference means something: with no change at all (the working tree's kernels equal to ``--base
HEAD``), hrnet at its setting came out 0.958x with the builds in a fixed order and 0.937x with them
alternating (the current build slower; rounds 0.78-1.05x; 2026-12-04). The same source compiled twice does
not run equally fast (code placement), so read a ratio within about 0.93-1.07x as no change, and run this
A/A comparison first when a change is small.

Run: ``.venv/bin/python benchmarks/kernels_ab.py --model hrnet --thresholds studies/thresholds/hrnet.json
[--base HEAD] [--start 650] [--rounds 5] [--threads 2] [--own-costs]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from deltatune.delta import convert, native
from deltatune.delta.backends import get_backend
from deltatune.delta.calibration import calibrate
from deltatune.delta.latency import channels_last_runner, time_frames
from deltatune.delta.sparse import SparseBackend
from deltatune.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "tuner/delta/csrc/delta_cpu.cpp"


WORK = Path(tempfile.gettempdir()) / "deltatune-kernels-ab"
BASE_NAME = "deltatune_cpu_base"


def base_kernels(rev: str) -> tuple[object, str]:
    """The kernels source at git revision ``rev``, compiled as its own module (cached per source), and
    its build stamp (source, flags, torch, CPU: :func:`native.build_stamp`), which names its cost table."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{SOURCE}"], capture_output=True, text=True)
    if src.returncode:
        raise SystemExit(f"kernels_ab.py: --base {rev}: {src.stderr.strip() or 'git show failed'}")
    WORK.mkdir(exist_ok=True)
    path = WORK / "delta_cpu_base.cpp"
    path.write_text(src.stdout)
    return native.compile_kernels(path, BASE_NAME, WORK / "build"), native.build_stamp(path, BASE_NAME)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hrnet")
    p.add_argument("--thresholds", default=None, help="a thresholds file (default: one --threshold)")
    p.add_argument("--threshold", type=float, default=0.0)
    p.add_argument("--base", default="HEAD", help="git revision of the kernels to compare (default HEAD)")
    p.add_argument("--start", type=int, default=0, help="first video frame (default 0)")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--own-costs", action="store_true",
                   help="give the base build per-layer choices from layer costs measured with its own "
                        "kernels (a change that moves the break-evens is then timed whole)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    native.keep_freed_memory()
    current = native.kernels()
    if current is None:
        print("kernels_ab.py: the compiled kernels are unavailable here", file=sys.stderr)
        return 2
    base, stamp = base_kernels(a.base)
    wl = load_workload(a.model, weights="default", frames=a.frames, start=a.start)
    clip = wl.frames[:, : a.batch].contiguous()
    net = convert(wl.model, thresholds=a.threshold, backend=get_backend("sparse"))
    calibrate(net, clip[0])
    nets = {"base": net, "current": net}
    if a.own_costs:  # the base build's costs, measured with its kernels, in a table of its own
        table = WORK / f"costs-{stamp}.json"
        own = convert(wl.model, thresholds=a.threshold, backend=SparseBackend(calibration=table))
        with native.use_kernels(base):
            calibrate(own, clip[0])
        nets["base"] = own
    for n in set(nets.values()):
        if a.thresholds:
            n.load_thresholds(a.thresholds)
        n.stats.enabled = False
    builds = {"base": base, "current": current}
    dense_runners = (wl.model, channels_last_runner(wl.model))
    times: dict[str, list[float]] = {"base": [], "current": [], "dense": []}
    with torch.no_grad():
        outs = {}
        for name, mod in builds.items():  # also the warm-up of each build
            with native.use_kernels(mod):
                net = nets[name]
                net.reset()
                outs[name] = [net(x) for x in clip]
        for d in dense_runners:  # warm-up of each dense layout
            d(clip[0])
        diff = max(float((b - c).abs().max()) for b, c in zip(outs["base"], outs["current"], strict=True))
        for r in range(a.rounds):
            # the order alternates: run always second, a build came out ~4 % slower than the same source
            # run first (both builds of HEAD, 2026-12-04)
            order = list(builds.items()) if r % 2 == 0 else list(builds.items())[::-1]
            for name, mod in order:
                with native.use_kernels(mod):
                    net = nets[name]
                    net.reset()
                    net(clip[0])
                    times[name].append(time_frames(net, clip[1:]))
            # the faster dense layout of the round, as `deltatune bench` takes it
            times["dense"].append(min(time_frames(d, clip[1:]) for d in dense_runners))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = [b / c for b, c in zip(times["base"], times["current"], strict=True)]
    setting = a.thresholds or f"threshold {a.threshold:g}"
    costs = "each build with its own layer costs" if a.own_costs else "both with the current layer costs"
    print(f"{a.model}, {setting}, frames {a.start + 1}-{a.start + a.frames - 1} x batch {a.batch}, "
          f"{torch.get_num_threads()} threads, {a.rounds} interleaved rounds, {costs}")
    print(f"dense              {med['dense']:8.2f} ms/frame  (the faster of NCHW and channels-last)")
    print(f"kernels at {a.base:<8} {med['base']:8.2f} ms/frame  ({med['dense'] / med['base']:.2f}x dense)")
    print(f"kernels now        {med['current']:8.2f} ms/frame  ({med['dense'] / med['current']:.2f}x dense)")
    print(f"base / now         {med['base'] / med['current']:8.3f}x  "
          f"(rounds {min(ratios):.3f}-{max(ratios):.3f}); largest output difference {diff:.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
