"""A/B: a model's delta frames with the end of the network run densely, as one island on accumulated
values, against the plain delta network and dense PyTorch, in one process, interleaved.

Why: past the first few layers most of BlazePose's and mobilenet_v2's maps are 80-100 % updated at their
documented settings, so their truncation steps there move every value's state (six memory streams per
value, against two for a dense ReLU) for almost no skipped work. A dense tail replaces them with the
dense layers on the accumulated values: one sum per input at the cut, the tail's dense layers, and one
truncation of its output. Exact where the thresholds are 0 (the tail truncates nothing), and at other
thresholds no less accurate (its layers drop no change). This measures whether that pays.

The cut is a node of the traced graph (``--cuts``, comma-separated; ``none`` = the plain delta network):
that node and everything after it in graph order form the tail, which is closed under users, so only
values made before the cut enter it. Every network runs the model's documented thresholds on its
workload with this machine's layer costs; the rounds alternate the order of the networks.

Run: ``.venv/bin/python benchmarks/dense_tail_ab.py [--model blazepose] [--cuts none,conv2d_7_conv]
[--frames 24] [--start 0] [--rounds 5] [--threads 2]`` (about a minute per network; run nothing else
meanwhile). ``--list`` prints the graph's node names to cut at.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys

import torch
from torch import fx, nn

from deltatune.delta import convert
from deltatune.delta.calibration import calibrate
from deltatune.delta.convert import trace
from deltatune.delta.latency import channels_last_runner, time_delta, time_frames
from deltatune.delta.native import keep_freed_memory
from deltatune.delta.thresholds import load_thresholds
from deltatune.workload import load_workload


class DenseTail(nn.Module):
    """The tail of a traced graph as one module: a leaf to the converter, which makes it a dense island."""

    def __init__(self, graph_module: fx.GraphModule) -> None:
        super().__init__()
        self.graph_module = graph_module

    def forward(self, *values: torch.Tensor) -> torch.Tensor:
        return self.graph_module(*values)


def split_at(model: nn.Module, cut: str) -> tuple[fx.GraphModule, int, int]:
    """``model`` traced, with node ``cut`` and every later node moved into one :class:`DenseTail`
    call; returns the new module, the tail's node count and the number of values entering it."""
    gm = trace(model)
    nodes = list(gm.graph.nodes)
    names = [n.name for n in nodes]
    if cut not in names:
        raise SystemExit(f"--cuts: no node {cut!r} in the traced graph (see --list)")
    out = nodes[-1]
    region = [n for n in nodes[names.index(cut):-1] if n.op != "placeholder"]
    inside = set(region)
    inputs: list[fx.Node] = []
    for n in region:
        inputs += [a for a in n.all_input_nodes if a not in inside and a not in inputs]
    sub = fx.Graph()
    env = {i: sub.placeholder(i.name) for i in inputs}
    for n in region:
        env[n] = sub.node_copy(n, lambda a: env[a])
    if any(a not in env for a in out.all_input_nodes):
        raise SystemExit(f"--cuts {cut}: the model's output uses a value made before the cut; cut earlier")
    sub.output(fx.map_arg(out.args[0], lambda a: env[a]))
    gm.add_submodule("dense_tail", DenseTail(fx.GraphModule(gm, sub)))
    with gm.graph.inserting_before(out):
        tail = gm.graph.call_module("dense_tail", tuple(inputs))
    out.args = (tail,)
    for n in reversed(region):
        gm.graph.erase_node(n)
    gm.graph.lint()
    gm.recompile()
    return gm, len(region), len(inputs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="blazepose")
    p.add_argument("--cuts", default="none,conv2d_7_conv", help="comma-separated node names; none = no tail")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--start", type=int, default=0, help="first frame of the video")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--thresholds", default=None, help="default studies/thresholds/<model>.json")
    p.add_argument("--list", action="store_true", help="print the traced graph's node names and stop")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    keep_freed_memory()
    wl = load_workload(a.model, frames=a.frames, start=a.start)
    if a.list:
        print(" ".join(n.name for n in trace(wl.model).graph.nodes))
        return 0
    clip = wl.frames.contiguous()
    frames = list(clip)
    nets, sizes = {}, {}
    for cut in a.cuts.split(","):
        if cut == "none":
            model, sizes[cut] = wl.model, "no tail"
        else:
            model, n_nodes, n_in = split_at(wl.model, cut)
            sizes[cut] = f"tail of {n_nodes} nodes, {n_in} input(s)"
        net = convert(model, thresholds=0.0, backend="sparse", record_stats=False, fallback=cut != "none",
                      leaf_types=(DenseTail,))
        with torch.no_grad():  # exact at thresholds 0, as the plain network is
            net.reset()
            err = max(float((net(x) - wl.model(x)).abs().max()) for x in frames[:3])
            scale = float(wl.model(frames[0]).abs().max())
        if err > 1e-4 * max(1.0, scale):
            raise SystemExit(f"{cut}: differs from the dense model at thresholds 0 by {err:.3g}")
        tf = load_thresholds(a.thresholds or f"studies/thresholds/{a.model}.json")
        missing = [n for n in net.threshold_names if n not in tf.thresholds and n != "dense_tail"]
        if missing:  # a file for another network: it would run those points at 0 and bias the A/B
            raise SystemExit(f"--thresholds: no threshold for {', '.join(missing[:3])} ...")
        mine = {n: tf.thresholds.get(n, 0.0) for n in net.threshold_names}  # the tail's island: 0
        net.apply_settings(dataclasses.replace(tf, thresholds=mine))
        calibrate(net, clip[0])
        nets[cut] = net
    run_cl = channels_last_runner(wl.model)
    steady = frames[1:]
    times: dict[str, list[float]] = {k: [] for k in ["dense", *nets]}
    with torch.no_grad():
        dense = wl.model if time_frames(wl.model, steady) <= time_frames(run_cl, steady) else run_cl
        for net in nets.values():
            time_delta(net, frames)  # warm-up
        for r in range(a.rounds):  # the order of dense and every network alternates between rounds
            order = ["dense", *nets] if r % 2 == 0 else [*reversed(nets), "dense"]
            for k in order:
                times[k].append(time_frames(dense, steady) if k == "dense" else time_delta(nets[k], frames))
    print(f"{a.model}, batch {clip.shape[1]}, frames {a.start}-{a.start + a.frames - 1} ({len(steady)} delta "
          f"frames), {a.threads} threads, {a.rounds} alternating rounds")
    d = statistics.median(times["dense"])
    print(f"{'dense':24s} median {d:7.2f} ms/frame")
    for k in nets:  # the speedup: the median of each round's dense / delta (one round's two timings)
        m = statistics.median(times[k])
        ratio = statistics.median(dd / t for dd, t in zip(times["dense"], times[k], strict=True))
        print(f"{k:24s} median {m:7.2f} ms/frame  {ratio:.2f}x dense  ({sizes[k]}; rounds "
              + " ".join(f"{x:.1f}" for x in times[k]) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
