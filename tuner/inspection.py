"""What ``deltatune inspect`` computes: a delta network's truncation points, sparsity and fidelity."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx

__all__ = [
    "InspectReport", "LastFrame", "inspect_model", "governed_macs", "macs_behind_layers",
    "max_relative_error",
]


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


def _fed_layers(net: Any) -> tuple[dict[str, set[str]], dict[str, int]]:
    """``(point -> the compute layers it feeds, layer -> its frame-0 dense MACs)``: a point feeds the
    layers it reaches directly or through linear ops such as adds, pads, pooling, and max pooling (exact,
    and no truncation point of its own: the changes it passes on are the ones the point let through)."""
    from deltatune.delta._base import TruncationOp
    from deltatune.delta.linear import ConvOp, ConvTransposeOp, LinearLayerOp

    frame0 = {r.name: r.dense_macs for r in net.stats.records if r.frame == 0}
    gm = net.graph_module
    by_target = {n.target: n for n in gm.graph.nodes if n.op == "call_module"}
    mods = dict(gm.named_modules())
    compute = {m.name: frame0.get(m.name, 0) for m in mods.values()
               if isinstance(m, (ConvOp, ConvTransposeOp, LinearLayerOp))}  # fmt: skip
    out: dict[str, set[str]] = {}
    for target, node in by_target.items():
        op = mods[target]
        if not isinstance(op, TruncationOp) or not op.is_point:
            continue
        fed: set[str] = set()
        seen, todo = set(), list(node.users)
        while todo:
            n: fx.Node = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            user = mods.get(n.target) if n.op == "call_module" else None
            if isinstance(user, (ConvOp, ConvTransposeOp, LinearLayerOp)):
                fed.add(user.name)
            elif not isinstance(user, TruncationOp) or not user.is_point:
                todo.extend(n.users)
        out[op.name] = fed
    return out, compute


def governed_macs(net: Any) -> dict[str, int]:
    """Dense MACs per frame of the compute layers each truncation point feeds (see :func:`_fed_layers`),
    from the frame-0 statistics."""
    return _governed(*_fed_layers(net))


def macs_behind_layers(net: Any) -> int:
    """Dense MACs per frame of the compute layers no truncation point feeds: those that read another
    conv or linear layer with no non-linearity between (MobileNetV2's expansion convs read the previous
    block's projection), whose updated pixels follow the points before that layer."""
    return _behind(*_fed_layers(net))


def _governed(fed: dict[str, set[str]], macs: dict[str, int]) -> dict[str, int]:
    return {point: sum(macs[layer] for layer in layers) for point, layers in fed.items()}


def _behind(fed: dict[str, set[str]], macs: dict[str, int]) -> int:
    reached = set().union(*fed.values()) if fed else set()
    return sum(v for layer, v in macs.items() if layer not in reached)


@dataclass
class LastFrame:
    """The clip's last frame as ``inspect`` ran it, for ``inspect --plot``: what each stream's crop looked
    like, which pixels each truncation point let through, and what the dense and delta networks predicted.

    ``fired`` maps a truncation point to its fired pixels ``[B, h, w]`` (the input step: the pixels whose
    change it passed on); it is empty when the frame ran dense (``dense_frame``: a key frame or the
    network-wide dense fallback, where every pixel counts as updated). Pose models have keypoints in crop
    pixels ``[B, K, 2]`` and ``present`` ``[B, K]`` (the dense keypoints that count, as the accuracy loss
    counts them); classifiers have top-1 classes ``[B]``.
    """

    images: np.ndarray  # [B, H, W, 3] RGB in [0, 1], the crops as the model saw them (after resizing)
    fired: dict[str, np.ndarray]
    dense_frame: bool
    task: str
    dense_points: np.ndarray | None = None
    delta_points: np.ndarray | None = None
    present: np.ndarray | None = None
    dense_classes: np.ndarray | None = None
    delta_classes: np.ndarray | None = None


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
    #: accuracy loss of the delta outputs against the dense ones over frames 1..N-1, in points of
    #: ``metric`` (PCK@0.2 over present keypoints, or top-1); None for other tasks or a 1-frame clip
    accuracy_loss: float | None = None
    metric: str | None = None
    #: pose: the loss over every dense keypoint, given when no keypoint is present on the clip (the
    #: present-keypoint loss is then ``None``: nothing to score, not "no loss")
    accuracy_loss_all_joints: float | None = None
    #: dense MACs per frame of every compute layer, and of those no point feeds (:func:`macs_behind_layers`)
    dense_macs: int = 0
    macs_behind_layers: int = 0
    #: the last frame's crops, fired pixels and predictions (``keep_last=True``; not in :meth:`to_dict`)
    last_frame: LastFrame | None = None

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
            "accuracy_loss": self.accuracy_loss,
            "metric": self.metric,
            "accuracy_loss_all_joints": self.accuracy_loss_all_joints,
            "dense_macs": self.dense_macs,
            "macs_behind_layers": self.macs_behind_layers,
            "notes": self.notes,
        }

    def render(self) -> str:
        from deltatune.workload import weights_label

        first = f" from frame {self.start}" if self.start else ""
        weights = weights_label(self.model, self.weights)
        lines = [f"model {self.model} (weights: {weights}) on {self.video}: {self.frames} frames{first} "
                 f"x {self.streams} stream{'s' if self.streams != 1 else ''}, mode {self.mode}"]
        lines += [f"note: {n}" for n in self.notes]
        w = max([len(p["name"]) for p in self.truncation_points] + [4])
        lines.append(f"{'name'.ljust(w)}  {'op':<11} {'threshold':>9} {'feeds GMAC':>10} {'updated':>8} "
                     f"{'fired':>7}")
        for p in self.truncation_points:
            th = "none" if p["threshold"] is None else f"{p['threshold']:.4g}"
            lines.append(f"{p['name'].ljust(w)}  {p['op']:<11} {th:>9} {p['dense_macs'] / 1e9:>10.4f} "
                         f"{p['frac_updated']:>8.1%} {p['frac_fired']:>7.1%}")
        every = f"all {self.streams} streams" if self.streams != 1 else "its one stream"
        lines.append("(feeds GMAC: the dense multiply-adds of the layers each point feeds, per frame of "
                     f"{every}; a layer fed by several points, after an add, counts under each)")
        if self.macs_behind_layers:
            share = self.macs_behind_layers / self.dense_macs if self.dense_macs else math.nan
            lines.append(f"(and {self.macs_behind_layers / 1e9:.4f} GMAC ({share:.0%} of the model's "
                         f"{self.dense_macs / 1e9:.4f}) in layers no point feeds: they read another conv or "
                         "linear layer with no non-linearity between, and update where the points before "
                         "it fired)")
        macs = (f"{self.mac_speedup:.2f}x" if math.isfinite(self.mac_speedup)
                else "no multiply-adds at all (no layer had an updated pixel)")
        lines.append(f"MAC speedup (frames 1..{self.frames - 1}): {macs}")
        lines.append(f"max relative error vs dense: {self.max_rel_error_vs_dense:.3g}")
        if self.accuracy_loss is not None:
            counted = " (present keypoints)" if self.metric == "PCK@0.2" else ""
            lines.append(f"accuracy loss vs dense (frames 1..{self.frames - 1}): {self.accuracy_loss:.2f} "
                         f"{self.metric} points{counted}")
        elif self.accuracy_loss_all_joints is not None:  # a 0 here would read as "no loss" for any setting
            every = f"{self.accuracy_loss_all_joints:.2f} {self.metric} points"
            lines.append(f"accuracy loss vs dense (frames 1..{self.frames - 1}): - (no keypoint present on "
                         f"these frames: nothing to score; every keypoint: {every})")
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
    keep_last: bool = False,
    progress: bool = False,
    streams: int | None = None,
) -> InspectReport:
    """Convert ``model``, run it and its dense original on ``frames`` real frames, and report.

    ``start``: the clip's first frame in the video. ``windows``: crop windows
    (:class:`~deltatune.data.video.CropWindow`), one stream each (default: the sample's own, or the whole
    frame of other video); ``streams``: only the first this many of them. ``keep_last``: also keep the
    last frame's crops, fired pixels and predictions (:class:`LastFrame`, what ``inspect --plot``
    draws). ``progress``: a bar over the frames on stderr,
    when it is a terminal (a large model takes seconds a frame)."""
    import sys

    from tqdm.auto import tqdm

    from deltatune.bench import accuracy_loss
    from deltatune.delta import convert
    from deltatune.workload import plan_workload

    plan = plan_workload(model, weights=weights, video=video, frames=frames, start=start, windows=windows,
                         streams=streams)
    net = convert(plan.model, thresholds=0.0 if threshold is None else threshold, fallback=fallback)
    tuned_on = None
    file_meta: dict[str, Any] = {}
    if thresholds_file is not None:  # a file for another network fails here, before any frame is decoded
        file_meta = net.load_thresholds(thresholds_file).meta
    wl = plan.decode()
    if thresholds_file is not None:
        tuned_on = tuned_elsewhere(file_meta, wl.video, start, wl.windows)
    overridden = None
    if mode is not None:
        if thresholds_file is not None and net.mode != mode:  # a setting tuned in one mode, run in another
            overridden = (f"--mode {mode} overrides the mode of {thresholds_file} ({net.mode}), which its "
                          "thresholds were tuned in")
        net.mode = mode
    errors = []
    dense_out: list[Any] = []
    delta_out: list[Any] = []
    fired: dict[str, np.ndarray] = {}
    last = len(wl.frames) - 1
    bar = tqdm(wl.frames, desc=f"inspect {model}", unit="frame", leave=False,
               disable=None if progress else True, file=sys.stderr)
    with torch.no_grad():
        for i, x in enumerate(bar):
            hooks = _fired_hooks(net, fired) if keep_last and i == last else []
            try:
                y = net(x)
            finally:
                for h in hooks:
                    h.remove()
            ref = net.source(x)
            errors.append(max_relative_error(y, ref))
            dense_out.append(ref)
            delta_out.append(y)
    task = wl.info.task
    acc = None
    if task in ("pose", "classification") and len(dense_out) > 1:
        acc = accuracy_loss(task, dense_out[1:], delta_out[1:], min_confidence=wl.info.present_confidence)
    per_layer = net.stats.per_layer().set_index("name")
    fed, layer_macs = _fed_layers(net)  # one walk of the graph for the feeds column and the rest
    feeds = _governed(fed, layer_macs)
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
    nobody = acc is not None and acc.present_fraction == 0.0  # pose: the dense model found no keypoint
    notes = []
    if wl.random_weights:
        notes.append("random weights: sparsity and error do not describe a trained network")
    if tuned_on:
        notes.append(tuned_on)
    if acc is not None and not nobody:
        beyond = over_budget(file_meta, acc.loss, elsewhere=bool(tuned_on))
        notes += [beyond] if beyond else []
    if overridden:
        notes.append(overridden)
    return InspectReport(
        model=model, weights=wl.weights, video=wl.video, frames=wl.n_frames, streams=wl.n_streams,
        mode=net.mode, truncation_points=points, mac_speedup=net.mac_speedup(),
        max_rel_error_vs_dense=max(errors), per_frame_error=errors, notes=notes, start=start,
        accuracy_loss=None if acc is None or nobody else acc.loss, metric=None if acc is None else acc.metric,
        accuracy_loss_all_joints=acc.loss_all_joints if acc is not None and nobody else None,
        last_frame=_last_frame(wl, fired, dense_out[-1], delta_out[-1]) if keep_last else None,
        dense_macs=sum(layer_macs.values()), macs_behind_layers=_behind(fed, layer_macs),
    )


def tuned_elsewhere(meta: dict[str, Any], video: str, start: int, windows: list[str]) -> str | None:
    """A note when a thresholds file's search (its ``meta["workload"]``, written by ``export``) tuned it on
    other frames or crops than ``video`` from ``start`` through ``windows`` (``[]``: the whole frame):
    where it was tuned, what its search scored there, and the options that score those frames. Its
    numbers here are then not the search's (another crop can lose twice the points). ``None`` otherwise,
    or when the file does not say."""
    from deltatune.search.study_workload import StudyWorkload, parse_segment
    from deltatune.workload import resolve_video

    here = Path(video).resolve()
    try:
        w = StudyWorkload.from_dict(meta["workload"])
        theirs = [str(c) for c in w.crop_windows()]
        same_video = resolve_video(w.video)[0].resolve() == here
        segments = meta.get("segments") or []
        others = [parse_segment(str(g["segment"])) for g in segments[1:]]  # --also-on / --spread
        # each of them is scored on the clip's windows on the clip's video, else on its video's own
        on_other = any(resolve_video(g.video)[0].resolve() == here and g.start == start
                       and (theirs == windows or g.video != w.video) for g in others)  # fmt: skip
    except Exception:  # noqa: BLE001 - no workload, an older file's, or a video not on this machine
        return None
    if (same_video and w.start == start and theirs == windows) or on_other:
        return None
    last = w.start + w.tune_frames - 1
    n = max(1, len(theirs))
    where = f"{w.video} frames {w.start}..{last}, {n} stream{'s' if n > 1 else ''}"
    loss, speed = meta.get("accuracy_loss"), meta.get("speedup")
    if others:  # the scores are an aggregate over the segments
        where += ", and " + ", ".join(f"{g.video} frames {g.start}..{g.start + w.tune_frames - 1}"
                                      for g in others)
    scored = ""
    if isinstance(loss, (int, float)) and isinstance(speed, (int, float)):
        kind = "MAC speedup" if meta.get("speed") == "macs" else "predicted speedup"
        over = (f"the {meta.get('aggregate', 'worst')} over its {len(segments)} segments, "
                if len(segments) > 1 else "")
        scored = f" (where its search scored {over}{loss:.2f} points lost at {speed:.2f}x {kind})"
    crops = (" ".join(f"--window {c}" for c in theirs) if w.windows else f"--streams {w.streams}"
             if theirs else "")
    hint = " ".join(x for x in (f"--video {w.video}" if not same_video else "", f"--start {w.start}",
                                f"--frames {w.tune_frames}", crops) if x)
    return (f"this setting was tuned on {where}{scored}; these frames or crops differ, so expect other "
            f"numbers ({hint} scores its tuning frames)")


def over_budget(meta: dict[str, Any], loss: float | None, *, elsewhere: bool) -> str | None:
    """A note when ``loss`` (accuracy points on the frames just scored) exceeds the budget the thresholds
    file's search was given (``meta["budget"]``); ``elsewhere``: these are not the frames it was tuned on,
    so the setting did not carry over to them."""
    budget = meta.get("budget")
    if loss is None or not isinstance(budget, (int, float)) or not loss > budget:
        return None
    said = f"it lost {loss:.2f} points on these frames, over the {budget:g}-point budget of its search"
    tuned = meta.get("accuracy_loss")
    if isinstance(tuned, (int, float)) and tuned > budget:  # exported over budget: nothing to carry over
        return f"{said}, which it exceeded on its tuning frames too ({tuned:.2f} points)"
    if not elsewhere:  # its own frames: another clip length or scoring than the search's
        return said
    return (f"{said}: the setting does not carry over to them (search on several segments: --also-on / "
            "--spread)")


def _fired_hooks(net: Any, into: dict[str, np.ndarray]) -> list[Any]:
    """Forward hooks on every truncation op that store the pixels it passed on ``[B, h, w]`` in ``into``
    (nothing for a dense frame's ops, whose outputs carry no mask)."""
    from deltatune.delta._base import TruncationOp

    def hook(op: Any, _inputs: Any, out: Any) -> None:
        mask = getattr(out, "mask", None)
        if not getattr(out, "first", True) and isinstance(mask, torch.Tensor) and mask.dim() == 4:
            into[op.name] = mask.detach().bool().any(dim=1).cpu().numpy()

    return [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, TruncationOp)]


def _last_frame(wl: Any, fired: dict[str, np.ndarray], dense: Any, delta: Any) -> LastFrame:
    """:class:`LastFrame` of the workload's last frame from its dense and delta outputs."""
    info = wl.info
    x = wl.frames[-1].float()
    channels = len(info.mean)  # 1: a grayscale model, fed the frames' luma (deltatune.workload.preprocess)
    mean = torch.tensor(info.mean, dtype=x.dtype).reshape(channels, 1, 1)
    std = torch.tensor(info.std, dtype=x.dtype).reshape(channels, 1, 1)
    rgb = x * std + mean  # undo the model's normalisation (see deltatune.workload.preprocess)
    if channels == 1:  # shown as the gray image the model saw
        rgb = rgb.expand(-1, 3, -1, -1)
    elif getattr(info, "color_order", "RGB") == "BGR":
        rgb = rgb.flip(-3)
    images = rgb.clamp(0, 1).permute(0, 2, 3, 1).numpy()
    out = LastFrame(images=images, fired=fired, dense_frame=not fired, task=info.task)
    if info.task == "pose":
        from deltatune.metrics import decode_heatmaps, heatmap_to_input_coords, heatmaps_of

        hd, hx = heatmaps_of(dense), heatmaps_of(delta)
        size = tuple(hd.shape[-2:])
        ref, peak = decode_heatmaps(hd)
        pred, _ = decode_heatmaps(hx)
        crop = tuple(info.input_size)
        out.dense_points = heatmap_to_input_coords(ref, heatmap_size=size, input_size=crop).numpy()
        out.delta_points = heatmap_to_input_coords(pred, heatmap_size=size, input_size=crop).numpy()
        from deltatune.metrics.fidelity import present_joints

        present = present_joints(peak, info.present_confidence)  # the rule the accuracy loss counts by
        out.present = np.ones(ref.shape[:2], bool) if present is None else present
    elif info.task == "classification":
        from deltatune.metrics import logits_of, top1_classes

        out.dense_classes = top1_classes(logits_of(dense)).numpy()
        out.delta_classes = top1_classes(logits_of(delta)).numpy()
    return out
