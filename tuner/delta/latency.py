"""A latency model: predicted delta ms/frame of a threshold configuration, without timing it.

A configuration's delta time is the sum of what its ops do, and one untimed run that records what they
did (:func:`features`) is enough to price it:

* **convs**: each conv call's calibrated cost (:class:`~deltatune.delta.calibration.LayerCalibration`)
  for the choice the sparse backend made at that call's updated-output fraction (sparse line or dense
  time), summed separately for the sparse-kernel calls and the dense calls: each sum has a
  coefficient of its own, because calibration times a layer alone, in a warm cache, and in a network
  the two kinds of call slow down by different factors (on default hrnet, 2026-12-03: sparse-kernel
  calls took 1.8x their calibrated time, dense calls 1.2-1.3x);
* **updated elements**: channels x updated pixels at truncation points (the compiled per-pixel step);
* **dense elements**: the output size of every op that did any work (zero-filling, adds, upsampling,
  and the other passes over whole tensors);
* **active ops**: ops that did work (per-call dispatch and bookkeeping); ops whose input carried no
  change are nearly free and are not counted;
* frames run through the dense fallback (thresholds 0): their calibrated dense conv cost, with a
  coefficient of its own (the fit includes two such configurations);
* a constant per frame.

:meth:`LatencyModel.fit` weighs these with non-negative coefficients fitted on a few measured
configurations of one model on one machine; afterwards a search can price any configuration from one
untimed run (cheap, and free of timing noise). ``benchmarks/latency_model.py`` reports its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deltatune.delta.calibration import synchronizer

__all__ = [
    "LatencyFeatures",
    "LatencyModel",
    "FittedLatency",
    "features",
    "fit_latency",
    "FEATURE_NAMES",
    "time_frames",
    "time_delta",
    "time_interleaved",
    "best_dense_ms",
    "channels_last_runner",
    "ChannelsLastRunner",
    "random_thresholds",
    "training_configs",
    "check_latency",
    "timed_configs",
    "PREDICTION_TOLERANCE",
]

#: How far (relative) a predicted speedup may be from the measured one before a fit counts as off: a
#: search's closing note says so beyond it, and a fit made on another clip is refitted beyond it.
PREDICTION_TOLERANCE = 0.15

#: The order of :meth:`LatencyFeatures.vector` (and of the fitted coefficients).
FEATURE_NAMES: tuple[str, ...] = (
    "dense_conv_ms",
    "sparse_conv_ms",
    "refresh_ms",
    "updated_elements",
    "dense_elements",
    "active_ops",
    "constant",
)


@dataclass(frozen=True)
class LatencyFeatures:
    """What a configuration does per frame (frame 0 excluded), from one recorded, untimed run."""

    conv_ms: float  # calibrated conv cost of the delta frames (sparse-kernel and dense calls)
    updated_elements: float  # channels x updated pixels at truncation points
    dense_elements: float  # output elements of ops that did work
    active_ops: float  # ops that did work
    frames: int
    refreshed: float = 0.0  # share of frames that ran through the dense fallback
    refresh_ms: float = 0.0  # calibrated dense conv cost of those frames (its own coefficient)
    sparse_conv_ms: float = 0.0  # the sparse-kernel calls' part of conv_ms

    def vector(self) -> list[float]:
        return [
            self.conv_ms - self.sparse_conv_ms,
            self.sparse_conv_ms,
            self.refresh_ms,
            self.updated_elements,
            self.dense_elements,
            self.active_ops,
            1.0,
        ]


def _delta_out(out: Any) -> Any:
    from deltatune.delta.values import DeltaValue

    if isinstance(out, DeltaValue):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], DeltaValue):
        return out[0]
    return None


def features(
    net: Any, frames: Tensor | Sequence[Tensor], *, outputs: list[Any] | None = None
) -> LatencyFeatures:
    """Run ``frames`` (frame 0 dense, then deltas) through ``net`` (a DeltaNetwork on the sparse backend),
    recording what every op does, and return the per-frame :class:`LatencyFeatures`. Not timed.
    ``outputs``, when given, receives the network's output for every frame."""
    from deltatune.delta.calibration import signature
    from deltatune.delta.linear import ConvOp
    from deltatune.delta.sparse import SparseBackend
    from deltatune.delta.truncation import PointwiseTruncation
    from deltatune.delta.values import DeltaValue

    backend = net._ctx.backend
    if not isinstance(backend, SparseBackend):
        raise TypeError("the latency model needs a network converted with the sparse backend")
    totals = {"updated": 0.0, "dense": 0.0, "ops": 0.0, "refresh_conv_ms": 0.0}
    state = {"frame": 0}

    def hook(mod: Any, args: Any, out: Any) -> None:
        if state["frame"] == 0:
            return
        x = args[0] if args and isinstance(args[0], DeltaValue) else None
        y = _delta_out(out)
        if y is None or (y.empty and (x is None or x.empty)):
            return  # no work (or a shape query)
        totals["ops"] += 1
        totals["dense"] += float(y.data.numel())
        if isinstance(mod, PointwiseTruncation) and x is not None and not x.first:
            px = x.data.numel() // max(1, int(x.data.shape[1]))
            upd = px if x.mask is None else int(x.mask.expand(x.data.shape[0], 1, *x.data.shape[2:]).sum())
            totals["updated"] += float(upd * int(x.data.shape[1]))
        if isinstance(mod, ConvOp) and x is not None and x.first:  # a dense-refresh frame
            cal = backend.calibration.get(signature(mod.conv, tuple(x.data.shape)))
            if cal is not None:
                totals["refresh_conv_ms"] += cal.dense_ms

    hooks = [op.register_forward_hook(hook) for op in net.ops]
    backend.reset_usage()
    net.reset()
    try:
        with torch.no_grad():
            for i, x in enumerate(frames):
                state["frame"] = i
                y = net(x)
                if outputs is not None:
                    outputs.append(y)
    finally:
        for h in hooks:
            h.remove()
    n = max(1, len(frames) - 1)
    sparse = dense = 0.0
    for use in backend.usage.values():
        cal = backend.calibration.get(use.signature)
        if cal is None:
            continue
        sparse += use.sparse * cal.sparse_fixed_ms + cal.sparse_slope_ms * use.sparse_frac_sum
        dense += use.dense * cal.dense_ms
    return LatencyFeatures(
        conv_ms=(sparse + dense) / n,
        sparse_conv_ms=sparse / n,
        updated_elements=totals["updated"] / n,
        dense_elements=totals["dense"] / n,
        active_ops=totals["ops"] / n,
        frames=n,
        refreshed=net.refreshed_frames / n,
        refresh_ms=totals["refresh_conv_ms"] / n,
    )


@dataclass(frozen=True)
class LatencyModel:
    """``ms/frame = coef · features`` with non-negative coefficients (see :data:`FEATURE_NAMES`)."""

    coef: tuple[float, ...] = (1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)

    def predict(self, f: LatencyFeatures) -> float:
        """Predicted delta ms/frame of a configuration."""
        return float(sum(c * v for c, v in zip(self.coef, f.vector(), strict=True)))

    def to_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.coef, strict=True))

    @classmethod
    def fit(cls, feats: Sequence[LatencyFeatures], measured_ms: Sequence[float]) -> LatencyModel:
        """Least squares on relative errors (every configuration counts alike), coefficients kept
        non-negative: :func:`scipy.optimize.nnls` (Lawson-Hanson) on the row-weighted (``1 / ms``),
        column-scaled problem (features span 1e-3 .. 1e7, so unscaled columns would be ill-conditioned)."""
        from scipy.optimize import nnls

        if len(feats) != len(measured_ms) or len(feats) < 3:
            raise ValueError("fit needs at least 3 measured configurations, one feature row each")
        a = np.array([f.vector() for f in feats], dtype=np.float64)
        y = np.array(list(measured_ms), dtype=np.float64)
        scale = np.maximum(np.abs(a).max(axis=0), 1e-12)
        w = 1.0 / np.maximum(y, 1e-9)
        sol, _residual = nnls((a / scale) * w[:, None], y * w)
        return cls(tuple(float(c) for c in sol / scale))


def time_frames(fn: Any, frames: Sequence[Tensor]) -> float:
    """Wall-clock ms per frame of ``fn`` over ``frames`` (one pass, no warm-up). On CUDA frames the
    device is synchronised before the clock starts and before it stops
    (:func:`~deltatune.delta.calibration.synchronizer`)."""
    import time

    sync = synchronizer(frames[0].device if len(frames) else None)
    sync()
    t0 = time.perf_counter()
    for x in frames:
        fn(x)
    sync()
    return (time.perf_counter() - t0) * 1e3 / max(1, len(frames))


class ChannelsLastRunner:
    """A copy of a dense model in channels-last memory (:attr:`model`), called like the model: each 4-D
    input is converted to channels-last (and to ``dtype``, when given) first."""

    def __init__(self, model: Any, dtype: torch.dtype | None = None) -> None:
        import copy

        self.model = copy.deepcopy(model).to(dtype=dtype, memory_format=torch.channels_last)
        self.dtype = dtype

    def __call__(self, x: Tensor) -> Any:
        x = x if self.dtype is None else x.to(self.dtype)
        return self.model(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)


def channels_last_runner(model: Any, dtype: torch.dtype | None = None) -> ChannelsLastRunner:
    """A copy of the dense ``model`` in channels-last memory, as a callable that converts each 4-D input:
    the other layout a dense baseline must be timed in (the delta network's dense paths run in it, and
    on these CPUs it is often the faster one). With ``dtype`` (e.g. ``torch.half`` on CUDA) the copy and
    each input are converted to it as well."""
    return ChannelsLastRunner(model, dtype)


def best_dense_ms(model: Any, frames: Sequence[Tensor], *, run_cl: Any = None) -> float:
    """ms/frame of the faster dense layout (NCHW as given, or channels-last) over ``frames``."""
    run_cl = run_cl if run_cl is not None else channels_last_runner(model)
    return min(time_frames(model, frames), time_frames(run_cl, frames))


def time_delta(net: Any, frames: Sequence[Tensor]) -> float:
    """Delta ms per steady-state frame: reset, frame 0 untimed (dense), frames 1.. timed. Statistics
    recording is off while timing (it is not part of inference, and it keeps every refresh frame on the
    delta graph, see ``DeltaNetwork.forward``) and restored afterwards."""
    with net.stats.paused():
        net.reset()
        net(frames[0])
        return time_frames(net, frames[1:])


def time_interleaved(model: Any, net: Any, frames: Tensor, *, repeats: int) -> list[tuple[float, float]]:
    """``repeats`` rounds of (dense ms/frame, delta ms/frame) on ``frames`` ``[T, B, C, H, W]``.

    Each round times dense PyTorch on frames 1.., then the delta network on the same frames after an
    untimed dense frame 0. One untimed round first warms both up (and lets the sparse backend calibrate)
    and picks the dense baseline: the faster of NCHW and channels-last, which every later round times.
    """
    run_cl = channels_last_runner(model)
    steady = list(frames[1:])
    out: list[tuple[float, float]] = []
    with torch.no_grad():
        dense = model if time_frames(model, steady) <= time_frames(run_cl, steady) else run_cl
        time_delta(net, list(frames))
        for _ in range(repeats):
            d = time_frames(dense, steady)
            s = time_delta(net, list(frames))
            out.append((d, s))
    return out


def training_configs(names: Sequence[str], rng: Any, n: int) -> list[dict[str, float]]:
    """``n`` configurations to fit the latency model on: two at thresholds 0 after the input (so the
    dense-refresh frames are priced from measurement), two :func:`random_thresholds` at the ends of its
    scale range (the sparsest and the most nearly exact configurations are inside the fit, not
    extrapolated), the rest :func:`random_thresholds`."""
    head: list[dict[str, float]] = []
    if n >= 4:
        head = [{k: 0.0 for k in names}, {k: (0.01 if k == "input" else 0.0) for k in names}]
    if n >= 6:
        head += [
            random_thresholds(names, rng, scale=SCALE_RANGE[1]),
            random_thresholds(names, rng, scale=SCALE_RANGE[0]),
        ]
    return head + [random_thresholds(names, rng) for _ in range(n - len(head))]


#: The range of the per-configuration threshold scale that :func:`random_thresholds` draws from.
SCALE_RANGE = (1e-4, 0.3)


def random_thresholds(
    names: Sequence[str], rng: Any, *, scale: float | None = None, spread: float = 1.0, zero: float = 0.2
) -> dict[str, float]:
    """A random configuration: a scale ``s`` (given, or log-uniform in :data:`SCALE_RANGE`) for the whole
    configuration, and per point ``s * exp(N(0, spread))``, or 0 with probability ``zero``.

    One scale per configuration makes a handful of them span everything from nearly exact (most pixels
    active: where a 1-point accuracy budget lives) to very sparse. Drawing every point independently
    over the whole range instead made all configurations about equally sparse (the largest thresholds
    dominate), and a fit on them could not tell one configuration's cost from another's.
    """
    import math

    if scale is None:
        scale = math.exp(rng.uniform(math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])))
    return {n: (0.0 if rng.random() < zero else scale * math.exp(rng.gauss(0.0, spread))) for n in names}


@dataclass(frozen=True)
class FittedLatency:
    """A :class:`LatencyModel` fitted for one network on this machine, with the dense time it is
    compared against (the faster of the NCHW and channels-last dense runs) and its fit residuals."""

    model: LatencyModel
    dense_ms: float
    fit_errors: tuple[float, ...]

    @property
    def prices_work(self) -> bool:
        """Whether the fit prices conv work at all (a conv coefficient above 0). Fitted on frames in
        which nothing changes (a still clip), no configuration did any conv work, every conv coefficient
        comes out 0 and the model prices every configuration alike: such a fit must not be cached, or
        every later search at the same input shape would see one speedup for all its trials."""
        c = dict(zip(FEATURE_NAMES, self.model.coef, strict=True))
        return c["dense_conv_ms"] > 0 or c["sparse_conv_ms"] > 0 or c["refresh_ms"] > 0

    def poor_fit_note(self) -> str | None:
        """A sentence when the model misses its own timed configurations by more than
        :data:`PREDICTION_TOLERANCE` at the median (timings taken while other work ran, most often: a
        cached fit of 0.76 at worst priced a later search without a word), else None."""
        import statistics

        if not self.fit_errors:
            return None
        median = statistics.median(self.fit_errors)
        if median <= PREDICTION_TOLERANCE:
            return None
        return (
            f"the latency model misses its own {len(self.fit_errors)} timed configurations by "
            f"{median:.0%} at the median (up to {max(self.fit_errors):.0%}): the machine was likely busy "
            "while it was timed; its predictions are rough (--refit on a quiet machine fits it again)"
        )

    def speedup(self, f: LatencyFeatures) -> float:
        """Predicted wall-clock speedup of a configuration over the dense model."""
        return self.dense_ms / max(self.model.predict(f), 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {"coef": list(self.model.coef), "dense_ms": self.dense_ms, "fit_errors": list(self.fit_errors)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FittedLatency:
        if len(d["coef"]) != len(FEATURE_NAMES):
            raise ValueError(f"expected {len(FEATURE_NAMES)} coefficients, got {len(d['coef'])}")
        return cls(
            LatencyModel(tuple(float(c) for c in d["coef"])),
            float(d["dense_ms"]),
            tuple(float(e) for e in d.get("fit_errors", ())),
        )


def timed_configs(
    net: Any, frames: Sequence[Tensor], configs: Sequence[dict[str, float]], *, repeats: int = 2
) -> list[tuple[LatencyFeatures, float, float]]:
    """Per threshold configuration of ``net`` (sparse backend): its :func:`features` and its delta and
    dense ms/frame on ``frames``, each the median of ``repeats`` timings interleaved with the dense model
    (the faster layout), so that load on a shared machine hits both alike. Calibrates the layer shapes
    the table lacks first (the conv costs the features price) and warms up; the network's thresholds
    are restored afterwards."""
    import statistics

    from deltatune.delta.calibration import calibrate

    if len(frames) < 2:
        raise ValueError("the latency model needs at least 2 frames (frame 0 runs dense, untimed)")
    saved = net.thresholds
    dense = net.dense_model
    run_cl = channels_last_runner(dense)
    rows: list[tuple[LatencyFeatures, float, float]] = []
    try:
        with torch.no_grad():
            calibrate(net, frames[0])  # measured once per machine
            time_delta(net, frames)  # warm-up
            for config in configs:
                net.set_thresholds(config)
                f = features(net, frames)
                d_runs, s_runs = [], []
                for _ in range(repeats):
                    d_runs.append(best_dense_ms(dense, frames[1:], run_cl=run_cl))
                    s_runs.append(time_delta(net, frames))
                rows.append((f, statistics.median(s_runs), statistics.median(d_runs)))
    finally:
        net.set_thresholds(saved)
    return rows


def fit_latency(
    net: Any, frames: Sequence[Tensor], *, configs: int = 12, repeats: int = 2, seed: int = 0
) -> FittedLatency:
    """Fit the latency model of ``net`` (sparse backend) on ``configs`` configurations from
    :func:`training_configs`, timed by :func:`timed_configs`."""
    import random
    import statistics

    rng = random.Random(seed)
    rows = timed_configs(net, frames, training_configs(net.threshold_names, rng, configs), repeats=repeats)
    ref = statistics.median(d for _, _, d in rows)
    measured = [ms * ref / d for _, ms, d in rows]
    model = LatencyModel.fit([f for f, _, _ in rows], measured)
    errs = tuple(abs(model.predict(f) - m) / m for (f, _, _), m in zip(rows, measured, strict=True))
    return FittedLatency(model, ref, errs)


#: The threshold scales :func:`check_latency` tries: a third and two thirds of the way along
#: :data:`SCALE_RANGE` (log scale), where the accuracy budgets searches work in usually lie.
CHECK_SCALES = (1.44e-3, 2.08e-2)


def check_latency(
    fitted: FittedLatency, net: Any, frames: Sequence[Tensor], *, repeats: int = 2, seed: int = 1
) -> tuple[float, ...]:
    """How far ``fitted`` is off on ``frames``: per configuration (every threshold 0, then one
    :func:`random_thresholds` at each of :data:`CHECK_SCALES`), ``|predicted / measured - 1|`` of the
    speedup, timed by :func:`timed_configs` as a fit is.

    A search may use a fit made on another clip of the same input shape (``Evaluator._fitted_latency``),
    but its coefficients can be far off on a clip unlike the one it was made on (fitted on vtest crops,
    it predicted 2.83x for a setting that measured 1.74x on a clip with one moving object, 2026-12-05).
    The exact setting (thresholds 0) is every search's first trial, and where most of a clip's pixels
    change it runs mostly dense: a fit made on a nearly still clip had seen no such frame, predicted
    7.99x for it on a clip that measured 0.95x, and passed a check of the two random settings alone.
    Checking costs three configurations' timings, about a quarter of a fit."""
    import random

    rng = random.Random(seed)
    configs = [dict.fromkeys(net.threshold_names, 0.0)]
    configs += [random_thresholds(net.threshold_names, rng, scale=scale) for scale in CHECK_SCALES]
    rows = timed_configs(net, frames, configs, repeats=repeats)
    return tuple(abs(fitted.speedup(f) / (dense / delta) - 1) for f, delta, dense in rows)
