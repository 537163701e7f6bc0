"""The converted delta network: a stateful ``nn.Module`` processing one frame per call."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from deltatune.delta._base import DeltaOp, TruncationOp
from deltatune.delta._context import RunContext
from deltatune.delta.backends import Backend
from deltatune.delta.fingerprint import weights_fingerprint
from deltatune.delta.rule import (
    MODES,
    frame_refresh_due,
    is_keyframe_change,
    is_keyframe_interval,
    refresh_exact,
    refresh_keyframe,
)
from deltatune.delta.stats import StatsRecorder
from deltatune.delta.thresholds import (
    ThresholdFile,
    ThresholdSpec,
    TruncationPoint,
    check_names,
    load_thresholds,
    resolve,
    save_thresholds,
    weights_beside,
)
from deltatune.delta.truncation import InputSparsify
from deltatune.errors import ConfigError, StreamError

__all__ = ["DeltaNetwork"]

log = logging.getLogger(__name__)


def _all_finite(x: torch.Tensor) -> bool:
    """Whether ``x`` holds no NaN or Inf. A NaN or Inf makes the sum non-finite, so a finite sum settles
    it with one reduction; only a non-finite sum (which finite values can also give, by overflow) takes
    the elementwise check. On a 3 x 3 x 256 x 256 frame with 2 threads, ``isfinite(x).all()`` takes
    1.23 ms and the sum 0.07 ms (2026-12-03)."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


class DeltaNetwork(nn.Module):
    """A delta version of a dense model; call it once per frame, ``reset()`` between streams.

    Batch entries are independent streams. Frame 0 after construction or :meth:`reset` runs dense;
    later frames propagate truncated changes. The output is always the dense (accumulated) tensor.
    A frame whose batch size or resolution differs from the running stream raises
    :class:`~deltatune.errors.StreamError` unless ``auto_reset`` is on, in which case the stream
    restarts densely.
    """

    #: the original dense model and the direct-call graph, kept outside the module tree (see __init__)
    _source: nn.Module
    _direct: fx.GraphModule | None

    def __init__(
        self,
        graph_module: fx.GraphModule,
        ops: list[DeltaOp],
        ctx: RunContext,
        *,
        source: nn.Module,
        fixed_arguments: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.graph_module = graph_module
        #: the optional non-tensor arguments of the model's forward, fixed at these defaults at conversion
        #: (``convert.fixed_arguments``); a call may pass them after the frame inputs, with these values
        self.fixed_arguments = dict(fixed_arguments or {})
        self._ops = ops
        self._ctx = ctx
        for op in ops:
            op.attach(ctx)
        # truncation points after the input: their thresholds decide whether the dense refresh is exact
        self._inner_truncations = [
            op for op in ops if isinstance(op, TruncationOp) and not isinstance(op, InputSparsify)
        ]
        inputs = [op for op in ops if isinstance(op, InputSparsify)]
        #: the input sparsifiers in the order of the frame inputs (one per placeholder of the graph)
        self._input_ops = inputs
        #: Run consecutive dense-refresh frames through the original dense model (see :meth:`forward`).
        self.lazy_refresh = True
        self._stale = False  # buffers after the input are not materialised (lazy refresh frames ran)
        self._keyframe_interval = 0  # see keyframe_interval
        self._last_refreshed = False
        if ctx.backend.channels_last:  # the lazy refresh runs it on channels-last inputs: no weight reorders
            source = source.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # the dense model, kept outside the module tree so .to()/state_dict stay the delta network's
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_direct", None)  # see _direct_graph (outside the tree, like _source)

    # -- running ---------------------------------------------------------------------------------
    def forward(self, *inputs: torch.Tensor) -> Any:
        """Process one frame (``[N, C, H, W]``, N independent streams); returns the dense output.

        Lazy dense refresh: a dense-refresh frame (see ``InputSparsify``) computes exactly the dense
        model on the input reference and resets every buffer to that frame's dense values. When the
        frame before was one too, and nothing observes the per-op work (statistics off, no ``explain``
        log, no forward hooks on the ops), this frame runs the original dense model on the reference
        instead of the delta graph, and the buffers are left stale; the first later frame that needs them
        (not a refresh frame) first rebuilds them with one dense pass over the last reference. Same
        outputs, but a stream of refresh frames (thresholds 0 on noisy video) costs what the dense model
        costs.

        A frame with NaN or Inf is refused (:class:`StreamError`) before it touches any state: a NaN never
        fires a truncation (``score > t`` is false), so it would hide in a residual and silently freeze
        that pixel's output.

        The delta network is for inference: a frame runs without autograd whatever the caller's grad mode.
        Its buffers carry every frame into the next, so a graph recorded outside ``torch.no_grad()`` would
        chain each frame to all before it and hold them in memory (12 GB after 300 frames of a small
        three-conv network); the outputs are plain tensors, as under ``no_grad``.
        """
        with torch.no_grad():
            return self._forward(inputs)

    def _forward(self, inputs: tuple[torch.Tensor, ...]) -> Any:
        """:meth:`forward` without autograd (the caller holds ``torch.no_grad``)."""
        self._check_fixed(inputs[len(self._input_ops) :])
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor) and x.is_floating_point() and not _all_finite(x):
                raise StreamError(f"frame {self._ctx.frame + 1}, input {i}: contains NaN or Inf values")
        self._ctx.frame += 1
        ctx = self._ctx
        if refresh_keyframe(ctx.frame, self._keyframe_interval):
            self._restart_streams()  # a key frame: this frame runs dense, like frame 0
        exact = self.refresh_is_exact
        ctx.refresh_allowed = ctx.refresh_fraction is not None and exact
        ctx.restart_allowed = ctx.keyframe_change is not None and not exact
        try:
            observed = self._observed()  # once per frame: it checks the hooks of ~1,000 ops
            if (self._stale or self._last_refreshed) and self._lazy_ok(inputs, observed):
                refs = self._dense_refresh_inputs(inputs)
                if refs is not None:
                    self._stale = True
                    return self._dense_output(refs)
            if self._stale:
                self._materialise()
            before = ctx.refreshed
            if len(self._input_ops) > 1:
                self._decide_frame(inputs)
            gm = self.graph_module
            hooked = observed or bool(gm._forward_hooks or gm._forward_pre_hooks)
            run = gm if hooked else self._direct_graph()
            out = run(*inputs)
            self._last_refreshed = ctx.refreshed > before
            return out
        except BaseException:
            if self._ctx.frame == 0:  # a failed first frame leaves no half-initialised stream behind
                self._restart_streams()
            self._ctx.frame -= 1
            raise
        finally:
            ctx.frame_dense = None
            for op in self._input_ops:
                op._pending = None

    def _check_fixed(self, extra: tuple[Any, ...]) -> None:
        """Refuse, before any state changes, a call that passes an optional argument another value than
        the default the network was converted with (the graph would assert part-way through a frame)."""
        for (name, default), value in zip(self.fixed_arguments.items(), extra, strict=False):
            try:
                same = value is default or (not isinstance(value, torch.Tensor) and bool(value == default))
            except Exception:  # a value that cannot be compared is not the default
                same = False
            if not same:
                raise ConfigError(
                    f"argument {name}={value!r}: this delta network was converted with {name}={default!r} "
                    "(the default of the model's forward) and follows only that value; convert a model "
                    f"whose forward defaults to {value!r}"
                )

    def _decide_frame(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """Decide, for a network with several frame inputs, whether this frame runs dense (the dense
        refresh, or a key frame on change) once for all of them (``rule.frame_refresh_due``): every
        input is compared ahead of the graph (``InputSparsify.compare_ahead``; the graph's input steps
        take those results), and when any input changed at the fraction or more, every input runs the
        frame densely. Each input deciding alone would send a dense value down one branch and a delta
        down another into the same add or cat (0.4 off from then on, on a frame + depth network).
        An input restarted by ``auto_reset`` (its shape changed) restarts every input with it."""
        ctx, ops = self._ctx, self._input_ops
        if len(inputs) != len(ops):
            return  # the graph refuses the call with the usual TypeError
        xs = [op._prepare(x) for op, x in zip(ops, inputs, strict=True)]  # may refuse before any change
        if any(op.ref is None for op in ops):
            if not all(op.ref is None for op in ops):
                self._restart_streams()  # one input restarted: every input restarts (runs as frame 0)
            return
        changed = [op.compare_ahead(x) for op, x in zip(ops, xs, strict=True)]
        ctx.frame_dense = frame_refresh_due(changed, ctx.dense_fraction)
        if ctx.frame_dense:
            ctx.refreshed += 1

    def _dense_refresh_inputs(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        """For the lazy refresh: when this frame runs dense (the dense refresh, or a key frame on
        change), update every input's reference, count the frame and return what each input runs the
        frame on (``InputSparsify.dense_refresh_input``); otherwise ``None``, with every reference as it
        was. Several inputs decide once for all of them, as :meth:`_decide_frame` does, so the dense
        model runs on every input's reference (or frame) of one frame."""
        ops = self._input_ops
        if len(ops) == 1:
            ref = ops[0].dense_refresh_input(inputs[0])
            return None if ref is None else (ref,)
        if any(
            not isinstance(x, torch.Tensor) or op.ref is None or x.shape != op.ref.shape
            for op, x in zip(ops, inputs, strict=True)
        ):
            return None  # a restarting stream runs through the graph (see _decide_frame)
        xs = [op._prepare(x) for op, x in zip(ops, inputs, strict=True)]
        before = [op.ref for op in ops]
        changed = [op.compare_ahead(x) for op, x in zip(ops, xs, strict=True)]
        for op in ops:
            op._pending = None  # the graph compares again if it runs
        ctx = self._ctx
        if not frame_refresh_due(changed, ctx.dense_fraction):
            for op, ref in zip(ops, before, strict=True):
                op.ref = ref
            return None
        ctx.frame_dense = True  # every input's _dense_frame: one frame, counted once here
        ctx.refreshed += 1
        return tuple(op._dense_frame(x) for op, x in zip(ops, xs, strict=True))

    def _lazy_ok(self, inputs: tuple[torch.Tensor, ...], observed: bool) -> bool:
        """Whether this frame may skip the delta graph: a lazy refresh is possible and nothing observes
        per-op work (statistics, the ``explain`` log, forward hooks on the ops such as the latency
        model's feature hooks, or global module hooks)."""
        ctx = self._ctx
        if not (
            self.lazy_refresh
            and (ctx.refresh_allowed or ctx.restart_allowed)
            and self._input_ops
            and len(inputs) == len(self._input_ops)
            and ctx.log is None
            and (ctx.recorder is None or not ctx.recorder.enabled)
        ):
            return False
        return not observed

    def _observed(self) -> bool:
        """Whether hooks watch the ops' calls: global module hooks or hooks on an op."""
        from torch.nn.modules import module as _module

        if _module._global_forward_hooks or _module._global_forward_pre_hooks:
            return True
        return any(op._forward_hooks or op._forward_pre_hooks for op in self._ops)

    def _direct_graph(self) -> fx.GraphModule:
        """The delta graph with every op's ``forward`` called directly instead of through
        ``nn.Module.__call__`` (which only adds the hook checks: the same calls when no hook is set).
        HRNet-W32 makes about 1,000 op calls a frame, and the direct calls save about 3 ms of them on
        the 2-core machines. Built on first use; ``forward`` takes it only while no hook watches the ops
        (:meth:`_observed`) or the graph module, so hooks (the latency model's, a user's) see every
        call."""
        if self._direct is None:
            gm = self.graph_module
            modules = dict(gm.named_modules())
            graph = fx.Graph()
            graph.output(graph.graph_copy(gm.graph, {}))
            for node in graph.nodes:
                mod = modules.get(str(node.target)) if node.op == "call_module" else None
                if isinstance(mod, DeltaOp):
                    node.op, node.target = "call_function", mod.forward
            graph.lint()
            object.__setattr__(self, "_direct", fx.GraphModule(gm, graph, "DeltaGraphDirect"))
        assert self._direct is not None
        return self._direct

    def _dense_output(self, refs: tuple[torch.Tensor, ...]) -> Any:
        """The original model on ``refs`` (one per frame input), with outputs in standard layout (as
        ``Densify`` returns)."""
        from torch.utils._pytree import tree_map

        out = self._source(*refs)
        return tree_map(lambda t: t.contiguous() if isinstance(t, torch.Tensor) else t, out)

    def _materialise(self) -> None:
        """Rebuild every buffer after lazy refresh frames: one first-frame pass over the last references
        (one per frame input, unrecorded), which is the state a refresh frame run through the delta graph
        leaves."""
        refs = [op.ref for op in self._input_ops]
        assert refs and all(ref is not None for ref in refs)
        ctx = self._ctx
        log, ctx.log = ctx.log, None
        try:
            with self.stats.paused():
                for op in self._ops:
                    op.reset()
                self.graph_module(*refs)
        finally:
            ctx.log = log
        self._stale = False

    def reset(self) -> None:
        """Forget every stream: the next frame runs dense and re-initialises all buffers."""
        self._restart_streams()
        self._ctx.frame = -1
        self._ctx.refreshed = 0

    def _restart_streams(self) -> None:
        """Drop every op's per-stream state (the next frame runs dense); the frame count goes on."""
        for op in self._ops:
            op.reset()
        self._stale = False
        self._last_refreshed = False

    @property
    def keyframe_interval(self) -> int:
        """Every this many frames, a key frame: the frame runs dense and re-initialises every buffer, as
        frame 0 does (0: never). It bounds how long truncation error can accumulate on a stream, at the
        cost of one dense frame per interval (counted in the statistics and timings like any frame)."""
        return self._keyframe_interval

    @keyframe_interval.setter
    def keyframe_interval(self, n: int) -> None:
        if not is_keyframe_interval(n):
            raise ConfigError(f"key-frame interval must be an integer >= 0 (0: none), got {n!r}")
        self._keyframe_interval = n

    @property
    def refresh_is_exact(self) -> bool:
        """Whether a dense frame gives what the delta path gives (every threshold after the input 0,
        accumulation on): then dense frames are the exact ``dense_refresh``, else key frames on change."""
        return refresh_exact((op.threshold for op in self._inner_truncations), self._ctx.accumulate)

    @property
    def keyframe_change(self) -> float | None:
        """Key frames on change: when a threshold after the input is above 0, a frame whose input changed
        at this share of its pixels or more restarts the stream (runs dense and exact, like frame 0);
        ``None``: never. Consecutive such frames run the original dense model (the lazy refresh of
        :meth:`forward`). Where most of the picture moves every frame, a delta pass updates nearly every
        pixel and pays the truncation work on top; this caps such a frame's cost at about a dense pass."""
        return self._ctx.keyframe_change

    @keyframe_change.setter
    def keyframe_change(self, value: float | None) -> None:
        if not is_keyframe_change(value):
            raise ConfigError(f"key frames on change: expected a fraction in (0, 1] or None, got {value!r}")
        self._ctx.keyframe_change = None if value is None else float(value)

    @property
    def refreshed_frames(self) -> int:
        """Frames since the last :meth:`reset` that ran dense: the exact dense fallback (``dense_refresh``)
        or key frames on change (``keyframe_change``)."""
        return self._ctx.refreshed

    def source(self, *inputs: torch.Tensor) -> Any:
        """Run the original dense model (eval mode) on ``inputs``."""
        return self._source(*inputs)

    @property
    def weights_fingerprint(self) -> str:
        """Fingerprint of the dense model's weights (:func:`~deltatune.delta.fingerprint.
        weights_fingerprint`), recorded in saved threshold files; computed on each call (0.09 s for
        HRNet-W32's 28.5 M parameters on 2 cores, 2026-12-04), so it follows weights changed in place."""
        return weights_fingerprint(self._source)

    @property
    def dense_model(self) -> nn.Module:
        """The original dense model (a copy, in eval mode; its weights in channels-last memory when the
        backend runs channels-last)."""
        return self._source

    def __getstate__(self) -> dict[str, Any]:
        """What pickling (and ``copy.deepcopy``) keeps: everything, streams included, but the direct-call
        graph, a cache whose generated code refers to bound methods that ``torch.fx`` cannot pickle
        (``joblib`` would fail to send the network to a worker); it is rebuilt on first use."""
        state = self.__dict__.copy()
        state["_direct"] = None
        return state

    def _apply(self, fn: Any, recurse: bool = True) -> DeltaNetwork:  # keep the dense copy on the same device
        super()._apply(fn, recurse)
        self._source._apply(fn, recurse)
        object.__setattr__(self, "_direct", None)  # it refers to the graph's constants: rebuild on use
        self.reset()
        return self

    # -- settings --------------------------------------------------------------------------------
    @property
    def ops(self) -> list[DeltaOp]:
        """Every delta op in execution order."""
        return list(self._ops)

    @property
    def truncation_ops(self) -> list[TruncationOp]:
        """The ops that are truncation points (max pooling is not, unless converted so)."""
        return [op for op in self._ops if isinstance(op, TruncationOp) and op.is_point]

    @property
    def truncation_points(self) -> list[TruncationPoint]:
        """The threshold-carrying call sites, in execution order (``input`` first)."""
        return [TruncationPoint(op.name, op.kind, i) for i, op in enumerate(self.truncation_ops)]

    @property
    def threshold_names(self) -> list[str]:
        return [op.name for op in self.truncation_ops]

    @property
    def thresholds(self) -> dict[str, float | None]:
        """The current ``{name: threshold}`` (a copy)."""
        return {op.name: op.threshold for op in self.truncation_ops}

    def set_thresholds(self, spec: ThresholdSpec) -> dict[str, float | None]:
        """Apply thresholds (a map, a full ``{name: value}`` dict, one number, or ``None``)."""
        resolved = resolve(spec, self.truncation_points)
        for op in self.truncation_ops:
            op.threshold = resolved[op.name]
        return resolved

    @property
    def mode(self) -> str:
        return self._ctx.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ConfigError(f"truncation mode {value!r} is unknown; choose one of {', '.join(MODES)}")
        self._ctx.mode = value

    @property
    def dense_refresh(self) -> float | None:
        """Updated-input fraction at which a frame runs densely when that is exact (all thresholds
        after the input 0, accumulation on); ``None`` = never. Default: the backend's (0.25 for
        ``sparse``, never for ``reference``)."""
        return self._ctx.refresh_fraction

    @dense_refresh.setter
    def dense_refresh(self, value: float | None) -> None:
        if value is not None and not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"dense_refresh must be a fraction in [0, 1] or None, got {value}")
        self._ctx.refresh_fraction = None if value is None else float(value)

    @property
    def accumulate(self) -> bool:
        return self._ctx.accumulate

    @accumulate.setter
    def accumulate(self, value: bool) -> None:
        self._ctx.accumulate = bool(value)

    @property
    def input_dilation(self) -> int:
        ops = [op for op in self._ops if isinstance(op, InputSparsify)]
        return ops[0].dilation if ops else 1

    @input_dilation.setter
    def input_dilation(self, k: int) -> None:
        if k < 1 or k % 2 == 0:
            raise ConfigError(f"input dilation must be a positive odd integer, got {k}")
        for op in self._ops:
            if isinstance(op, InputSparsify):
                op.dilation = k

    @property
    def auto_reset(self) -> bool:
        return any(op.auto_reset for op in self._ops if isinstance(op, InputSparsify))

    @auto_reset.setter
    def auto_reset(self, value: bool) -> None:
        for op in self._ops:
            if isinstance(op, InputSparsify):
                op.auto_reset = bool(value)

    @property
    def backend(self) -> str:
        """The backend's name (``reference``, ``sparse``)."""
        return self._ctx.backend.name

    @property
    def backend_object(self) -> Backend:
        """The :class:`~deltatune.delta.backends.Backend` instance the ops compute with."""
        return self._ctx.backend

    # -- statistics ------------------------------------------------------------------------------
    @property
    def stats(self) -> StatsRecorder:
        """Per-layer, per-frame records (see :mod:`deltatune.delta.stats`)."""
        assert self._ctx.recorder is not None
        return self._ctx.recorder

    def mac_speedup(self, *, include_first: bool = False) -> float:
        """Dense MACs / delta MACs over the recorded frames (frame 0 excluded by default). With statistics
        off and nothing recorded it is an error, not 1.0, which would read as 'nothing saved'."""
        summary = self.stats.summary(include_first=include_first)
        if not self.stats.enabled and summary.frames == 0:
            raise ConfigError(
                "mac_speedup: statistics are off (convert(..., record_stats=False)), so no "
                "multiply-adds were counted"
            )
        return summary.mac_speedup

    # -- threshold files -------------------------------------------------------------------------
    def threshold_file(
        self, *, model: str | None = None, meta: dict[str, Any] | None = None
    ) -> ThresholdFile:
        """The current settings as a :class:`ThresholdFile`; ``model`` defaults to the registered name a
        zoo model carries (``deltatune_models.create_model`` sets ``model_name``), else none."""
        if model is None:
            name = getattr(self._source, "model_name", None)
            model = name if isinstance(name, str) else None
        return ThresholdFile(
            self.thresholds,
            mode=self.mode,
            input_dilation=self.input_dilation,
            keyframe_interval=self.keyframe_interval,
            keyframe_change=self.keyframe_change,
            model=model,
            meta=dict(meta or {}),
            weights=self.weights_fingerprint,
        )

    def save_thresholds(
        self, path: str | Path, *, model: str | None = None, meta: dict[str, Any] | None = None
    ) -> Path:
        """Write the current thresholds, mode, input dilation and key-frame interval to ``path``
        (atomically)."""
        return save_thresholds(path, self.threshold_file(model=model, meta=meta))

    def load_thresholds(self, path: str | Path) -> ThresholdFile:
        """Load a thresholds file; its names must equal this network's truncation points (a DeltaCNN
        file, keyed by position, must have one value per truncation point: :func:`from_deltacnn`).

        A file that records the weights it was made with (``weights``) and names other weights than this
        network's gets a logged warning, not an error: the setting still runs (comparing it on other
        weights is a fair experiment), but its accuracy loss was measured on those weights only.
        """
        tf = load_thresholds(path, self.threshold_names)
        mine = getattr(self._source, "model_name", None)
        aliases = tuple(getattr(self._source, "model_aliases", ()))  # e.g. hrnet, built as hrnet_w18_small_v2
        asked = f"{aliases[0]} ({mine})" if aliases else mine
        foreign = isinstance(mine, str) and bool(tf.model) and tf.model not in (mine, *aliases)
        made_for = f" (made for model {tf.model}{f', not {asked}' if foreign else ''})" if tf.model else ""
        check_names(tf.thresholds.keys(), self.threshold_names, source=f"thresholds file {path}{made_for}")
        if foreign:  # names alike (one family's sizes, say): it runs, but nothing was measured on this model
            log.warning(
                "thresholds file %s was made for model %s, not %s; its truncation points have the same "
                "names, so it runs, but its accuracy loss and speed were measured on %s",
                path,
                tf.model,
                asked,
                tf.model,
            )
        if tf.weights is not None and tf.weights != (fingerprint := self.weights_fingerprint):
            tuned = (tf.meta or {}).get("finetune")  # a search --train trial: export wrote its weights too
            log.warning(
                "thresholds file %s was made with other weights (%s) than this model's (%s); its accuracy "
                "loss holds for those weights only%s",
                path,
                tf.weights,
                fingerprint,
                f"; it ran fine-tuned weights, which export wrote to {weights_beside(path)} (--weights; on "
                "the model the search's 'use it' line names)"
                if tuned
                else "",
            )
        self.apply_settings(tf)
        return tf

    def apply_settings(self, tf: ThresholdFile) -> None:
        """Put a setting on the network: its thresholds, mode, input dilation and key frames (interval
        and on change)."""
        self.set_thresholds(tf.thresholds)
        self.mode = tf.mode
        self.input_dilation = tf.input_dilation
        self.keyframe_interval = tf.keyframe_interval
        self.keyframe_change = tf.keyframe_change

    def log_steps(self, enabled: bool = True) -> list[dict[str, Any]] | None:
        """Start (or stop) recording what every op does per frame; returns the live log list.

        Each entry is a dict with the op's ``name``, ``kind``, ``frame`` and the tensors it used
        (input delta, masks, residuals, what fired). Meant for small examples (``deltatune explain``).
        """
        self._ctx.log = [] if enabled else None
        return self._ctx.log

    def run_stream(self, frames: Iterable[torch.Tensor]) -> list[Any]:
        """Reset, then process ``frames`` in order; returns the outputs (no autograd)."""
        self.reset()
        with torch.no_grad():
            return [self(f) for f in frames]

    def extra_repr(self) -> str:
        return (
            f"backend={self.backend!r}, mode={self.mode!r}, accumulate={self.accumulate}, "
            f"truncation_points={len(self.truncation_ops)}"
        )
