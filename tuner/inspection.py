"""What ``deltatune inspect`` computes: a delta network's truncation points, sparsity and fidelity."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import fx

__all__ = ["InspectReport", "inspect_model", "governed_macs", "max_relative_error"]


def max_relative_error(out: Any, ref: Any) -> float:
    """max |out - ref| / max |ref| over every output tensor (nested outputs allowed); ``inf`` when a
    difference is NaN (a NaN in either output must fail every tolerance, and ``max`` would skip it)."""
    from torch.utils._pytree import tree_flatten

    a, _ = tree_flatten(out)
    b, _ = tree_flatten(ref)
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if isinstance(x, torch.Tensor):
            scale = float(y.abs().max().clamp_min(1e-12))
            err = float((x - y).abs().max()) / scale
            if math.isnan(err):
                return math.inf
            worst = max(worst, err)
    return worst


def governed_macs(net: Any) -> dict[str, int]:
    """Dense MACs per frame of the compute layers each truncation point feeds (directly or through
    linear ops such as adds, pads, pooling), from the frame-0 statistics."""
    from deltatune.delta._base import TruncationOp
    from deltatune.delta.linear import ConvOp, ConvTransposeOp, LinearLayerOp

    frame0 = {r.name: r.dense_macs for r in net.stats.records if r.frame == 0}
    gm = net.graph_module
    by_target = {n.target: n for n in gm.graph.nodes if n.op == "call_module"}
    mods = dict(gm.named_modules())
    out: dict[str, int] = {}
    for target, node in by_target.items():
        op = mods[target]
        if not isinstance(op, TruncationOp):
            continue
        total, seen, todo = 0, set(), list(node.users)
        while todo:
            n: fx.Node = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            user = mods.get(n.target) if n.op == "call_module" else None
            if isinstance(user, (ConvOp, ConvTransposeOp, LinearLayerOp)):
                total += frame0.get(user.name, 0)
            elif not isinstance(user, TruncationOp):
                todo.extend(n.users)
        out[op.name] = total
    return out


@dataclass
class InspectReport:
    """Result of :func:`inspect_model`."""

    model: str
    weights: str
    video: str
    frames: int
    streams: int
    mode: str
    truncation_points: list[dict[str, Any]]
    mac_speedup: float
    max_rel_error_vs_dense: float
    per_frame_error: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the clip's first frame in the video
    start: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weights": self.weights,
            "video": self.video,
            "frames": self.frames,
            "start": self.start,
            "streams": self.streams,
            "mode": self.mode,
            "truncation_points": self.truncation_points,
            "mac_speedup": self.mac_speedup,
            "max_rel_error_vs_dense": self.max_rel_error_vs_dense,
            "per_frame_error": self.per_frame_error,
            "notes": self.notes,
        }

    def render(self) -> str:
        first = f" from frame {self.start}" if self.start else ""
        lines = [f"model {self.model} (weights: {self.weights}) on {self.video}: {self.frames} frames{first} "
                 f"x {self.streams} streams, mode {self.mode}"]
        lines += [f"note: {n}" for n in self.notes]
        w = max([len(p["name"]) for p in self.truncation_points] + [4])
        lines.append(f"{'name'.ljust(w)}  {'op':<11} {'threshold':>9} {'feeds GMAC':>10} {'updated':>8} "
                     f"{'fired':>7}")
        for p in self.truncation_points:
            th = "none" if p["threshold"] is None else f"{p['threshold']:.4g}"
            lines.append(f"{p['name'].ljust(w)}  {p['op']:<11} {th:>9} {p['dense_macs'] / 1e9:>10.4f} "
                         f"{p['frac_updated']:>8.1%} {p['frac_fired']:>7.1%}")
        macs = (f"{self.mac_speedup:.2f}x" if math.isfinite(self.mac_speedup)
                else "no multiply-adds at all (no layer had an updated pixel)")
        lines.append(f"MAC speedup (frames 1..{self.frames - 1}): {macs}")
        lines.append(f"max relative error vs dense: {self.max_rel_error_vs_dense:.3g}")
        return "\n".join(lines)


def inspect_model(
    model: str,
    *,
    weights: str | Path | None = "default",
    video: str | Path | None = None,
    frames: int = 30,
    start: int = 0,
    threshold: float | None = None,
    thresholds_file: str | Path | None = None,
    mode: str | None = None,
    fallback: bool = False,
    windows: list[Any] | None = None,
) -> InspectReport:
    """Convert ``model``, run it and its dense original on ``frames`` real frames, and report.

    ``start``: the clip's first frame in the video. ``windows``: crop windows
    (:class:`~deltatune.data.video.CropWindow`), one stream each (default: the sample's own, or the whole
    frame of other video)."""
    from deltatune.delta import convert
    from deltatune.workload import load_workload

    wl = load_workload(model, weights=weights, video=video, frames=frames, start=start, windows=windows)
    net = convert(wl.model, thresholds=0.0 if threshold is None else threshold, fallback=fallback)
    if thresholds_file is not None:
        net.load_thresholds(thresholds_file)
    if mode is not None:
        net.mode = mode
    errors = []
    with torch.no_grad():
        for x in wl.frames:
            errors.append(max_relative_error(net(x), net.source(x)))
    per_layer = net.stats.per_layer().set_index("name")
    feeds = governed_macs(net)
    points = []
    for p in net.truncation_points:
        row = per_layer.loc[p.name] if p.name in per_layer.index else None
        points.append({
            "name": p.name,
            "op": p.kind,
            "index": p.index,
            "threshold": net.thresholds[p.name],
            "dense_macs": int(feeds.get(p.name, 0)),
            "frac_updated": float(row["frac_in"]) if row is not None else 0.0,
            "frac_fired": float(row["frac_out"]) if row is not None else 0.0,
        })
    notes = []
    if wl.random_weights:
        notes.append("random weights: sparsity and error do not describe a trained network")
    return InspectReport(
        model=model, weights=wl.weights, video=wl.video, frames=wl.n_frames, streams=wl.n_streams,
        mode=net.mode, truncation_points=points, mac_speedup=net.mac_speedup(),
        max_rel_error_vs_dense=max(errors), per_frame_error=errors, notes=notes, start=start,
    )
