"""What ``deltatune bench`` measures: dense PyTorch vs the delta network, wall clock, on the same frames.

Protocol (docs/design.md#speed-on-cpu): the same frames, the same thread count, interleaved repeats (dense
passes, then the delta pass, per repeat), one untimed warm-up round (which also runs any first-use calibration
of the sparse backend), the median over repeats. Delta time is per steady-state frame: each delta pass resets
the stream, runs frame 0 densely *untimed*, then times frames 1..T-1; the dense pass times the same frames.
The dense baseline is timed in both memory layouts, PyTorch's default NCHW and channels-last (the model and
each frame converted, conversion timed); the faster one is the baseline every speedup is quoted against,
because the delta network itself runs channels-last when the compiled kernels are in use.
Accuracy loss is measured against the dense model's own predictions ("fidelity"): for pose models PCK@0.2 in
points (100 · (1 − PCK)) over the dense keypoints that are present (heatmap peak above the model's presence
threshold, docs/design.md#metrics; :mod:`deltatune.metrics.fidelity`), with the loss over every keypoint
reported beside it; for classifiers the top-1 disagreement in points. A separate, untimed pass records
per-layer active fractions, the dense/sparse choices and (sparse backend) per-conv kernel time.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from deltatune.errors import ConfigError

__all__ = ["BenchResult", "LayerBench", "AccuracyLoss", "run_bench", "accuracy_loss", "round_speedups",
           "check_device"]


@dataclass(frozen=True)
class LayerBench:
    """One compute layer of the delta network in the profiled pass."""

    name: str
    kind: str
    frac_out: float  # mean updated-output fraction over frames 1..T-1
    mac_share: float  # share of the delta MACs
    choice: str  # sparse / dense / skip / mixed / reference
    break_even: float | None
    ms: float | None  # mean kernel time per frame (sparse backend only)
    time_share: float | None  # share of the measured delta ms/frame
    #: the layer's dense time per frame from this machine's calibration table (timed alone, warm cache;
    #: sparse backend only): what the backend's sparse/dense choice compares against
    dense_ms: float | None = None
    #: the same conv's time per frame inside the dense model (channels-last, timed by forward hooks over
    #: the steady frames; CPU only): what the dense baseline pays for it, beside what the delta network
    #: paid (``ms``). Large activations make it exceed ``dense_ms``: in a network they come from memory,
    #: in the calibration loop from cache
    dense_net_ms: float | None = None


@dataclass(frozen=True)
class BenchResult:
    """Result of :func:`run_bench` (all times are milliseconds per frame, batch included)."""

    model: str
    backend: str
    video: str
    weights: str
    frames: int
    batch: int
    threads: int
    repeats: int
    dense_ms: float  # the faster of the two dense layouts below: the baseline
    delta_ms: float
    mac_speedup: float
    metric: str
    accuracy_loss: float
    max_rel_error: float
    dense_runs_ms: list[float] = field(default_factory=list)
    delta_runs_ms: list[float] = field(default_factory=list)
    dense_nchw_ms: float | None = None
    dense_channels_last_ms: float | None = None
    layers: list[LayerBench] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: pose: the loss over every dense keypoint, present or not, and the present share (None otherwise)
    accuracy_loss_all_joints: float | None = None
    present_fraction: float | None = None
    start: int = 0  # the clip's first frame in the video
    device: str = "cpu"  # where both networks ran: "cpu", or "cuda (<GPU name>)"
    #: CUDA only: the dense model in half precision (cuDNN fp16), NCHW and channels-last; beside the
    #: fp32 baseline, not instead of it (the delta network computes in fp32)
    dense_fp16_nchw_ms: float | None = None
    dense_fp16_channels_last_ms: float | None = None

    @property
    def speedup(self) -> float:
        """Measured wall-clock speedup: dense ms / delta ms."""
        return self.dense_ms / self.delta_ms if self.delta_ms > 0 else float("inf")

    @property
    def round_speedups(self) -> list[float]:
        """Speedup of each timing round (see :func:`round_speedups`; the faster dense layout's rounds)."""
        return round_speedups(self.dense_runs_ms, self.delta_runs_ms)

    @property
    def dense_fp16_ms(self) -> float | None:
        """The faster fp16 dense layout (CUDA only), else ``None``."""
        ms = [m for m in (self.dense_fp16_nchw_ms, self.dense_fp16_channels_last_ms) if m is not None]
        return min(ms) if ms else None

    @property
    def ideal_ratio(self) -> float:
        """Measured speedup / MAC speedup (1.0 = the MAC-count ideal reached)."""
        ok = 0 < self.mac_speedup < math.inf
        return self.speedup / self.mac_speedup if ok else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["speedup"] = self.speedup
        d["round_speedups"] = self.round_speedups
        d["measured_over_mac_ideal"] = self.ideal_ratio
        d["dense_fp16_ms"] = self.dense_fp16_ms
        return d

    def _dense_detail(self) -> str:
        if self.dense_nchw_ms is None or self.dense_channels_last_ms is None:
            return ""
        return (f"  (best of NCHW {self.dense_nchw_ms:.2f}, channels-last "
                f"{self.dense_channels_last_ms:.2f})")

    def _rounds_detail(self) -> str:
        r = self.round_speedups
        return f"  (rounds {min(r):.2f}-{max(r):.2f}x)" if len(r) > 1 else ""

    def _joints_detail(self) -> str:
        if self.present_fraction is None or self.accuracy_loss_all_joints is None:
            return ""
        if self.present_fraction >= 1.0:
            return ", every keypoint present"
        return (f", {self.present_fraction:.0%} of keypoints present; every keypoint: "
                f"{self.accuracy_loss_all_joints:.2f}")

    def _slower_note(self) -> str | None:
        """Says so when the delta network lost to dense on every timing round (a median below 1 alone may
        be noise), and why: the share of multiply-adds it skipped against the bookkeeping it adds. Half
        or more skipped and still slower is not a threshold problem (a tiny network, cheap convolutions):
        the note then says so instead of suggesting higher thresholds."""
        r = self.round_speedups or [self.speedup]
        if max(r) >= 1.0:
            return None
        skipped = 1.0 - 1.0 / self.mac_speedup if self.mac_speedup > 0 else 0.0
        if skipped >= 0.5:  # enough skipped: the bookkeeping, not the thresholds, is what lost
            timed = [r.time_share for r in self.layers if r.time_share is not None]
            # the kernels are timed in a pass of their own: under a changing load they can add up to more
            # than the median delta frame, and "-876 % of delta time" is no share
            share = f"; {1.0 - sum(timed):.0%} of delta time" if timed and sum(timed) <= 1.0 else ""
            return (f"slower than dense on every round although the delta network skips {skipped:.0%} of "
                    f"the multiply-adds: the work around them (input comparison, masks, truncation "
                    f"steps{share}) costs more than they save, as it does where convolutions are cheap "
                    f"(dense: {self.dense_ms:.2f} ms/frame); the dense model is faster here")
        return (f"slower than dense on every round: at these thresholds the delta network skips "
                f"{skipped:.0%} of the multiply-adds, too few to pay for its per-pixel work (input "
                "comparison, masks, truncation steps); higher thresholds, key frames on change, or the "
                "dense model are faster here")

    def _mac_lines(self) -> list[str]:
        if math.isfinite(self.mac_speedup):
            return [f"MAC speedup        {self.mac_speedup:9.2f}x",
                    f"measured / ideal   {self.ideal_ratio:9.1%}"]
        # no conv had an updated pixel after frame 0 (a still clip): no finite ideal to compare with
        return [f"MAC speedup        {'-':>9}   (no multiply-adds at all: no layer had an updated pixel)"]

    def _loss_line(self) -> str:
        if self.present_fraction == 0.0 and self.accuracy_loss_all_joints is not None:
            # nothing counted: a 0 here would read as "no loss" for any setting
            return (f"accuracy loss      {'-':>9}        (no keypoint present on these frames: nothing to "
                    f"score; every keypoint: {self.accuracy_loss_all_joints:.2f})")
        return (f"accuracy loss      {self.accuracy_loss:9.2f} points "
                f"({self.metric} vs dense{self._joints_detail()})")

    def render(self, *, max_layers: int | None = 40) -> str:
        """A human-readable summary plus the per-layer table (heaviest layers first)."""
        from deltatune.workload import weights_label

        weights = weights_label(self.model, self.weights)
        lines = [
            f"model {self.model} (weights: {weights}) on {self.video}: frames 1..{self.frames - 1} "
            + (f"of the clip from video frame {self.start} " if self.start else "") +
            f"x batch {self.batch}, "
            + (f"{self.threads} threads" if self.device == "cpu" else f"on {self.device}")
            + f", backend {self.backend}, median of {self.repeats} repeats",
        ]
        lines += [f"note: {n}" for n in self.notes]
        lines += [
            f"dense PyTorch      {self.dense_ms:9.2f} ms/frame{self._dense_detail()}",
        ]
        fp16 = self.dense_fp16_ms
        if fp16 is not None:
            nchw, cl = self.dense_fp16_nchw_ms, self.dense_fp16_channels_last_ms
            lines.append(f"dense fp16         {fp16:9.2f} ms/frame  (best of NCHW {nchw:.2f}, channels-last "
                         f"{cl:.2f}; delta's speedup over it {fp16 / self.delta_ms:.2f}x)")
        lines += [
            f"delta              {self.delta_ms:9.2f} ms/frame",
            f"measured speedup   {self.speedup:9.2f}x{self._rounds_detail()}",
            *self._mac_lines(),
            self._loss_line(),
            f"max rel. error     {self.max_rel_error:9.3g}",
        ]
        slower = self._slower_note()
        if slower:
            lines.append(f"note: {slower}")
        if self.layers and max_layers != 0:
            rows = sorted(self.layers,
                          key=lambda r: -(r.time_share if r.time_share is not None else r.mac_share))
            shown = rows if max_layers is None else rows[:max_layers]
            w = max(len(r.name) for r in shown)
            lines.append("")
            lines.append(f"{'layer'.ljust(w)}  {'active':>7} {'MACs':>6} {'choice':<9} {'break-even':>10} "
                         f"{'ms':>7} {'time':>6}")
            for r in shown:
                be = "-" if r.break_even is None else f"{r.break_even:.2f}"
                ms = "-" if r.ms is None else f"{r.ms:.3f}"
                ts = "-" if r.time_share is None else f"{r.time_share:.1%}"
                lines.append(f"{r.name.ljust(w)}  {r.frac_out:>7.1%} {r.mac_share:>6.1%} {r.choice:<9} "
                             f"{be:>10} {ms:>7} {ts:>6}")
            if len(rows) > len(shown):
                lines.append(f"... {len(rows) - len(shown)} more layers (--json lists all)")
            lines.append(BREAK_EVEN_NOTE)
            timed = [r.time_share for r in self.layers if r.time_share is not None]
            if timed and sum(timed) > 1.0:  # timed in a pass of their own, under another load
                lines.append(f"conv kernels: {sum(timed):.0%} of the median delta frame, timed in a pass of "
                             "their own: more than the whole frame, so the load changed between the two "
                             "timings; no share of the rest (rerun on a quiet machine)")
            elif timed:
                lines.append(f"conv kernels: {sum(timed):.1%} of delta time; the rest is masks, truncation, "
                             "adds and other elementwise work")
        return "\n".join(lines)


#: What the layer tables' break-even column means (``bench`` and ``calibrate`` print it under them).
BREAK_EVEN_NOTE = ("break-even: the updated fraction of a layer's output pixels below which its sparse "
                   "kernel beats its dense conv on this machine (its calibration table); 1.00: at every "
                   "fraction, 0: at none")

#: Timing rounds whose speedups differ by this factor or more were timed under a changing load (on a quiet
#: machine rounds agree within 10-20 %): said beside the median (1.30-7.24x on a clip where the MAC ideal
#: was 2.27x went without a word).
ROUNDS_APART = 1.5


def rounds_apart_note(rounds: list[float]) -> str | None:
    """A note when the timing rounds' speedups lie :data:`ROUNDS_APART` or more apart, else None."""
    if len(rounds) < 2 or min(rounds) <= 0 or max(rounds) / min(rounds) < ROUNDS_APART:
        return None
    return (f"the timing rounds ranged {min(rounds):.2f}-{max(rounds):.2f}x: the machine's load changed "
            "during the run, so the median is a rough figure (rerun with more --repeats on a quiet machine)")


def round_speedups(dense_runs_ms: list[float], delta_runs_ms: list[float]) -> list[float]:
    """Speedup of each interleaved timing round: dense ms / delta ms of the same round.

    Their spread shows how much the machine moved while a row was measured; a bench's headline speedup
    is the ratio of the medians. ``benchmarks/bench_table.py`` applies this to saved rows too."""
    return [d / s for d, s in zip(dense_runs_ms, delta_runs_ms, strict=True) if s > 0]


def _first_tensor(out: Any) -> Tensor:
    from torch.utils._pytree import tree_flatten

    leaves, _ = tree_flatten(out)
    for v in leaves:
        if isinstance(v, Tensor):
            return v
    raise ConfigError("the model returned no tensor")


@dataclass(frozen=True)
class AccuracyLoss:
    """:func:`accuracy_loss`'s result: the metric's name, the loss in its points and (pose) the loss over
    every keypoint and the present share."""

    metric: str
    loss: float
    loss_all_joints: float | None = None
    present_fraction: float | None = None


def accuracy_loss(task: str, dense_out: list[Any], delta_out: list[Any], *,
                  min_confidence: float | None = None) -> AccuracyLoss:
    """Accuracy loss in points of the delta outputs against the dense model's outputs (same frames).

    Pose (heatmaps ``[N, K, h, w]``): ``100 · (1 − PCK@0.2)`` of the decoded delta keypoints against the
    decoded dense keypoints whose heatmap peak exceeds ``min_confidence`` (``None``: every keypoint; see
    :func:`deltatune.metrics.fidelity`). Otherwise: ``100 ·`` the fraction of samples whose top-1 class
    differs.
    """
    from deltatune.metrics import logits_of, top1_classes, top1_fidelity

    # a classifier's output read by the one rule search and predict use too
    read = _first_tensor if task == "pose" else logits_of
    d = torch.cat([read(o) for o in dense_out])
    x = torch.cat([read(o) for o in delta_out])
    if task == "pose" and d.dim() == 4:
        from deltatune.metrics import decode_heatmaps, fidelity

        ref, conf = decode_heatmaps(d)
        pred, _ = decode_heatmaps(x)
        s = fidelity(pred.numpy(), ref.numpy(), conf, min_confidence=min_confidence, alpha=0.2)
        return AccuracyLoss("PCK@0.2", s.loss, s.loss_all_joints, s.present_fraction)
    return AccuracyLoss("top-1", top1_fidelity(top1_classes(x), top1_classes(d)).loss)


def run_bench(
    model: str,
    *,
    video: str | Path | None = None,
    weights: str | Path | None = "default",
    frames: int = 20,
    start: int = 0,
    batch: int | None = None,
    threshold: float | None = None,
    thresholds_file: str | Path | None = None,
    backend: str = "sparse",
    repeats: int = 3,
    recalibrate: bool = False,
    fallback: bool = False,
    all_joints: bool = False,
    progress: bool = False,
    device: str = "cpu",
    windows: list[Any] | None = None,
) -> BenchResult:
    """Benchmark dense PyTorch vs the delta version of ``model`` on ``frames`` real frames.

    ``start`` is the clip's first frame. ``all_joints`` scores pose fidelity over every dense keypoint
    instead of the present ones only. ``progress`` shows bars on stderr (calibration, then the profiled
    pass and the timing rounds) when stderr is a terminal: a bench of a large model takes minutes.
    ``windows`` (:class:`~deltatune.data.video.CropWindow` list) replaces the video's default crop
    windows, e.g. to batch more streams than a sample has windows. ``batch`` streams are timed: by default
    every one of ``windows``, else the first of the video's windows; fewer than ``windows`` is refused
    (windows given and silently left out would time another workload than the one asked for).

    ``device="cuda"`` runs both networks on the GPU: every timing synchronises the device, the dense
    model is also timed in half precision (reported beside the fp32 baseline, which stays the baseline
    because the delta network computes in fp32), and the sparse backend runs its plain-torch paths
    (the compiled kernels are CPU-only) with a calibration table of its own for the device.

    Example:
        >>> r = run_bench("hrnet_tiny", weights=None, frames=4, repeats=1)  # doctest: +SKIP
        >>> r.speedup > 0  # doctest: +SKIP
        True
    """
    from deltatune.delta import convert
    from deltatune.delta.backends import get_backend
    from deltatune.delta.calibration import calibrate
    from deltatune.delta.latency import channels_last_runner, time_frames
    from deltatune.inspection import max_relative_error
    from deltatune.workload import crop_windows, plan_workload

    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if batch is None:
        batch = len(windows) if windows else 1
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}")
    if windows and batch < len(windows):
        raise ConfigError(f"--batch {batch}: {len(windows)} --window given, one stream each; leave --batch "
                          "out to time them all, or give fewer windows")
    if threshold is not None and threshold < 0:
        raise ConfigError(f"--threshold must be >= 0, got {threshold}")
    dev = check_device(device)
    plan = plan_workload(model, weights=weights, video=video, frames=frames, start=start, windows=windows)
    if batch > plan.n_streams:  # known from the windows: said before any frame is decoded
        raise ConfigError(f"--batch {batch} exceeds the {crop_windows(plan.n_streams)} of this video")
    dense = plan.model.to(dev)
    be = get_backend(backend)
    net = convert(dense, thresholds=0.0 if threshold is None else threshold, backend=be,
                  fallback=fallback)
    file_meta: dict[str, Any] = {}
    if thresholds_file is not None:  # a file for another network fails here, before any frame is decoded
        file_meta = net.load_thresholds(thresholds_file).meta
    wl = plan.decode()
    if wl.n_frames < 2:
        raise ConfigError(f"--start {start}: the video has {wl.n_frames} frame(s) from there; "
                          "need at least 2")
    clip = wl.frames[:, :batch].contiguous().to(dev)
    remeasured = 0
    if be.name == "sparse":  # a benchmark asks for this machine's layer costs: missing ones are measured
        shown = progress and sys.stderr.isatty()
        remeasured = len(calibrate(net, clip[0], force=recalibrate, progress=shown))
    run_dense_cl = channels_last_runner(dense)
    half_runners = _half_runners(dense) if dev.type == "cuda" else {}

    steady = clip[1:]
    from tqdm.auto import tqdm

    # disable=None: on stderr only when it is a terminal; disable=True (no progress) makes it a no-op
    bar = tqdm(total=repeats + 2, desc=f"bench {model}", unit="pass", leave=False,
               disable=None if progress else True, file=sys.stderr)
    nchw_runs: list[float] = []
    cl_runs: list[float] = []
    delta_runs: list[float] = []
    half_runs: dict[str, list[float]] = {k: [] for k in half_runners}
    with torch.no_grad():
        net.stats.enabled = False
        net.reset()
        for x in clip[:2]:  # warm-up, outside every timing
            net(x)
        # profiled pass (untimed)
        net.stats.enabled = True
        if hasattr(be, "profile"):
            be.profile = True
            be.reset_usage()
        net.reset()
        delta_out = [_to_cpu(net(x)) for x in clip]  # frame 0 takes the dense path: no backend call
        dense_out = [_to_cpu(dense(x)) for x in clip]
        max_err = max(max_relative_error(a, b) for a, b in zip(delta_out, dense_out, strict=True))
        per_layer = net.stats.per_layer()
        mac_speedup = net.mac_speedup()
        usage = dict(getattr(be, "usage", {}))
        bar.update(1)
        if hasattr(be, "profile"):
            be.profile = False
        net.stats.enabled = False
        for r in range(repeats + 1):  # round 0 is a warm-up
            d = time_frames(dense, steady)
            dcl = time_frames(run_dense_cl, steady)
            net.reset()
            net(clip[0])
            s = time_frames(net, steady)
            halves = {k: time_frames(f, steady) for k, f in half_runners.items()}
            if r:
                nchw_runs.append(d)
                cl_runs.append(dcl)
                delta_runs.append(s)
                for k, v in halves.items():
                    half_runs[k].append(v)
            bar.update(1)
    bar.close()
    acc = accuracy_loss(wl.info.task, dense_out[1:], delta_out[1:],
                        min_confidence=None if all_joints else wl.info.present_confidence)
    nchw_ms, cl_ms = statistics.median(nchw_runs), statistics.median(cl_runs)
    dense_runs = nchw_runs if nchw_ms <= cl_ms else cl_runs
    dense_ms, delta_ms = min(nchw_ms, cl_ms), statistics.median(delta_runs)
    layers = _layer_rows(per_layer, usage, len(steady), delta_ms, be.name,
                         calibration=getattr(be, "calibration", None),
                         dense_net=_dense_layer_ms(run_dense_cl, steady) if dev.type == "cpu" else {})
    notes = []
    apart = rounds_apart_note(round_speedups(dense_runs, delta_runs))
    if apart:
        notes.append(apart)
    if recalibrate and remeasured:  # said: it changed the table every later run and search prices with
        notes.append(f"--recalibrate: {remeasured} layer shape{'s' * (remeasured != 1)} measured again and "
                     "written to this machine's calibration table")
    if dev.type != "cpu":
        notes.append(f"{dev.type}: the sparse backend ran its plain-torch paths (the compiled kernels are "
                     "CPU-only); TF32 convolutions " + ("on" if torch.backends.cudnn.allow_tf32 else "off"))
    elif be.name == "sparse":
        from deltatune.delta import native

        if not native.available():
            why = f"{native.NATIVE_ENV}=0" if native.disabled() else "their build failed; no C++ compiler?"
            notes.append(f"compiled kernels unavailable ({why}): the sparse backend ran its "
                         "slower plain-torch paths")
        if net.refreshed_frames:
            why = ("key frames on change: the input changed at >= "
                   f"{net.keyframe_change:.0%} of its pixels" if not net.refresh_is_exact
                   else "the exact dense fallback: every threshold after the input is 0, so a frame whose "
                   f"input changed at >= {net.dense_refresh:.0%} of its pixels runs the dense model, which "
                   "gives the same output sooner")
            notes.append(f"{net.refreshed_frames} of {len(steady)} timed frames ran dense ({why})")
    if wl.random_weights:
        notes.append("random weights: sparsity and accuracy do not describe a trained network")
    notes += _carry_over_notes(file_meta, wl, start, batch, acc.loss)
    return BenchResult(
        model=model, backend=be.name, video=wl.video, weights=wl.weights, frames=wl.n_frames, batch=batch,
        threads=torch.get_num_threads(), repeats=repeats, dense_ms=dense_ms, delta_ms=delta_ms,
        mac_speedup=mac_speedup, metric=acc.metric, accuracy_loss=acc.loss, max_rel_error=max_err,
        dense_runs_ms=dense_runs, delta_runs_ms=delta_runs, dense_nchw_ms=nchw_ms,
        dense_channels_last_ms=cl_ms, layers=layers, notes=notes,
        accuracy_loss_all_joints=acc.loss_all_joints, present_fraction=acc.present_fraction, start=start,
        device=_device_label(dev), dense_fp16_nchw_ms=_median_or_none(half_runs.get("nchw")),
        dense_fp16_channels_last_ms=_median_or_none(half_runs.get("channels_last")),
    )


def check_device(device: str) -> torch.device:
    """``device`` as a :class:`torch.device`, or one clear :class:`ConfigError` (before any work) for a
    name torch does not know or a CUDA device this process cannot use."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device!r} is not a device name (cpu, cuda, cuda:1 ...)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type != "cpu":
        raise ConfigError(f"--device {device}: only cpu and cuda are supported")
    return dev


def _carry_over_notes(meta: dict[str, Any], wl: Any, start: int, batch: int, loss: float | None) -> list[str]:
    """What a thresholds file's search says about these frames: tuned elsewhere (where, and what it
    scored there), and a loss here over the budget it was tuned to."""
    from deltatune.inspection import over_budget, tuned_elsewhere

    windows = [str(w) for w in wl.windows[:batch]] if wl.windows else []
    elsewhere = tuned_elsewhere(meta, wl.video, start, windows)
    return [n for n in (elsewhere, over_budget(meta, loss, elsewhere=elsewhere is not None)) if n]


def _device_label(dev: torch.device) -> str:
    return "cpu" if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})"


def _half_runners(model: torch.nn.Module) -> dict[str, Any]:
    """The dense model in half precision, NCHW and channels-last, as callables on fp32 frames (the
    conversion is part of what they time, as the channels-last baseline's is)."""
    import copy

    from deltatune.delta.latency import channels_last_runner

    nchw = copy.deepcopy(model).half()
    return {"nchw": lambda x: nchw(x.half()), "channels_last": channels_last_runner(model, torch.half)}


def _median_or_none(runs: list[float] | None) -> float | None:
    return statistics.median(runs) if runs else None


def _to_cpu(out: Any) -> Any:
    """A model output (tensor, or lists / tuples / dicts of them) with every tensor on the CPU."""
    if isinstance(out, Tensor):
        return out.cpu()
    if isinstance(out, dict):
        return {k: _to_cpu(v) for k, v in out.items()}
    if isinstance(out, tuple) and hasattr(out, "_fields"):  # a named tuple takes its fields as arguments
        return type(out)(*(_to_cpu(v) for v in out))
    if isinstance(out, (list, tuple)):
        return type(out)(_to_cpu(v) for v in out)
    return out


def _unused_choice(backend: str, delta_macs: float) -> str:
    """The choice column of a layer the sparse backend never ran on frames 1..: the conv op itself skips
    a layer with no updated input pixel (``skip``); other layers (linear, transposed conv) run dense."""
    if backend == "reference":
        return "reference"
    return "skip" if delta_macs == 0 else "dense"


def _dense_layer_ms(runner: Any, frames: Tensor) -> dict[str, float]:
    """ms per call of every ``nn.Conv2d`` of the dense model that ``runner`` (a
    :class:`~deltatune.delta.latency.ChannelsLastRunner`) holds, over ``frames``, timed by forward
    pre/post hooks in one untimed pass: each conv as the dense model runs it, between the other layers
    (not alone, in a warm cache, as the calibration table times it). Keyed by module name."""
    import time

    from torch import nn

    total: dict[str, float] = {}
    calls: dict[str, int] = {}
    start: dict[str, float] = {}
    hooks = []
    for name, mod in runner.model.named_modules():
        if isinstance(mod, nn.Conv2d):
            def pre(_m: Any, _a: Any, name: str = name) -> None:
                start[name] = time.perf_counter()

            def post(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
                total[name] = total.get(name, 0.0) + time.perf_counter() - start[name]
                calls[name] = calls.get(name, 0) + 1

            hooks += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        with torch.no_grad():
            for x in frames:
                runner(x)
    finally:
        for h in hooks:
            h.remove()
    return {k: total[k] * 1e3 / calls[k] for k in total}


def _layer_rows(per_layer: Any, usage: dict[str, Any], n_frames: int, delta_ms: float,
                backend: str, *, calibration: Any = None,
                dense_net: dict[str, float] | None = None) -> list[LayerBench]:
    if per_layer is None or len(per_layer) == 0:
        return []
    compute = per_layer[per_layer["dense_macs"] > 0]
    total = float(compute["delta_macs"].sum()) or 1.0
    rows = []
    for _, r in compute.iterrows():
        u = usage.get(r["name"])
        ms = u.seconds * 1e3 / n_frames if u is not None and u.seconds else None
        cal = calibration.get(u.signature) if calibration is not None and u is not None else None
        rows.append(LayerBench(
            name=str(r["name"]), kind=str(r["kind"]),
            frac_out=float(r["frac_out"]) if r["frac_out"] == r["frac_out"] else 0.0,
            mac_share=float(r["delta_macs"]) / total,
            choice=u.choice if u is not None else _unused_choice(backend, r["delta_macs"]),
            break_even=u.break_even if u is not None else None,
            ms=ms, time_share=(ms / delta_ms) if ms is not None and delta_ms > 0 else None,
            dense_ms=cal.dense_ms if cal is not None else None,
            dense_net_ms=(dense_net or {}).get(str(r["name"]).split("#")[0]),
        ))
    return rows
