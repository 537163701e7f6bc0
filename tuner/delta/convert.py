"""Convert an unmodified ``nn.Module`` into a :class:`~deltatune.delta.network.DeltaNetwork`.

Shaped like FX quantization's prepare/convert: the model is traced with :mod:`torch.fx` (standard
``torch.nn`` layers stay opaque leaves), BatchNorms are folded into their convs and symmetric zero pads
into the padding of the convs that read them, and every node of the graph is replaced by a delta op
that processes :class:`~deltatune.delta.values.DeltaValue` values.
Residual ``+`` and ``torch.cat`` become delta merges, which module swapping alone could not see. Once
the graph is built, :func:`plan_zero_fill` decides for every op whose kernel can leave the zeros of its
output unwritten whether any reader needs them.

Threshold names are call-site names: the qualified module name (``layer1.0.relu``), ``#k`` for the
k-th reuse of a module instance (``layer1.0.relu#1``), ``owner:function`` for functional calls
(``layer1.0:relu``, or ``:relu`` at the top level), and ``input`` for the input sparsifier. The input
sparsifiers' names are taken first: a submodule attribute named ``input`` is ``input#1`` (it had the
sparsifier's name, and one threshold setting set both).
"""

from __future__ import annotations

import copy
import functools
import operator
import re
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from deltatune.delta import optable as T
from deltatune.delta._base import DeltaOp, TruncationOp
from deltatune.delta._context import MODES, RunContext
from deltatune.delta._fold import fold_batchnorm, fold_zero_pads, has_forward_hooks, materialize_weights
from deltatune.delta.backends import Backend, get_backend
from deltatune.delta.linear import (
    AddSubOp,
    CatOp,
    ChannelAffineOp,
    ConvOp,
    ConvTransposeOp,
    LinearLayerOp,
    MetaOp,
    PadOp,
    StructuralOp,
)
from deltatune.delta.network import DeltaNetwork
from deltatune.delta.stats import StatsRecorder
from deltatune.delta.thresholds import ThresholdSpec
from deltatune.delta.truncation import DenseIsland, Densify, InputSparsify, PointwiseTruncation, piecewise_of
from deltatune.errors import ConfigError, UnsupportedOpError

__all__ = ["convert", "DeltaTracer", "trace", "fixed_arguments", "fold_fixed_items", "plan_zero_fill"]


class DeltaTracer(fx.Tracer):
    """``torch.fx`` tracer that keeps standard layers (and any ``leaf_types``) opaque."""

    def __init__(self, leaf_types: Sequence[type[nn.Module]] = ()) -> None:
        super().__init__()
        self.leaf_types = tuple(leaf_types)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self.leaf_types and isinstance(m, self.leaf_types):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _InPlaceProxy(node, self)


class _InPlaceProxy(fx.Proxy):
    """A proxy that records ``y += x`` as ``operator.iadd`` (and ``-=``, ``*=``, ``/=`` alike).

    ``fx.Proxy`` has no in-place operators, so Python ran ``y = y + x`` instead: the graph showed a new
    tensor, where the model changes ``y``'s storage, and every view of it (``x2 = x[:, :1]; x2 += 1``
    changes ``x``). Recorded as what it is, :func:`refuse_hidden_mutations` sees it."""

    def __iadd__(self, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", operator.iadd, (self, other), {})

    def __isub__(self, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", operator.isub, (self, other), {})

    def __imul__(self, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", operator.imul, (self, other), {})

    def __itruediv__(self, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", operator.itruediv, (self, other), {})


def trace(model: nn.Module, *, leaf_types: Sequence[type[nn.Module]] = ()) -> fx.GraphModule:
    """Symbolically trace ``model``; a model fx cannot trace is a clear :class:`UnsupportedOpError`."""
    tracer = DeltaTracer(leaf_types)
    if tracer.is_leaf_module(model, ""):
        # a bare layer (convert(nn.Conv2d(...)) to time one conv): traced as it is, its forward would be
        # the functional call (F.conv2d) instead of the module the builder converts; wrapped, it is one
        model = nn.Sequential(model)
    refuse_hooks_outside_the_graph(model)
    try:
        graph = tracer.trace(model, concrete_args=_scalar_arguments(model) or None)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedOpError(
            f"{type(model).__name__}: torch.fx cannot trace this model ({first}); "
            "data-dependent control flow must be removed or wrapped in a leaf module"
        ) from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def fixed_arguments(model: nn.Module) -> dict[str, Any]:
    """The optional arguments of ``model.forward`` that are not tensors (``scale=0.5``, ``mask=None``,
    ``flag=True``), by name, with their defaults.

    A frame is the tensors a model is called with; the options around them stay what they are by
    default. Traced as placeholders, they were taken for a second frame input (``relu(x) * scale`` was
    refused as a product of two changing maps); traced as constants (fx's ``concrete_args``), the
    branches they choose are decided once, and the converted network refuses a call that passes another
    value (it cannot follow one). Containers (``size=(16, 16)``) are traced as placeholders with their
    default, which fx's ``concrete_args`` would flatten into broken code: they may not steer control
    flow, but reach the ops that read them as the constant they are."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # a builtin or C-implemented forward: nothing to fix
        return {}
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name: p.default
        for p in params
        if p.kind in plain
        and p.default is not inspect.Parameter.empty
        and not isinstance(p.default, torch.Tensor)
    }


def _scalar_arguments(model: nn.Module) -> dict[str, Any]:
    """The :func:`fixed_arguments` that fx can trace as constants: not containers."""
    return {k: v for k, v in fixed_arguments(model).items() if not isinstance(v, (tuple, list, dict, set))}


def _plain_constant(v: Any) -> bool:
    """Whether ``v`` may stand in a graph's arguments as a literal: a number, string, bool, ``None``, a
    dtype or device, or a tuple or list of those (never a tensor, a dict or another mutable object)."""
    if isinstance(v, (tuple, list)):
        return all(_plain_constant(item) for item in v)
    return v is None or isinstance(v, (str, int, float, bool, complex, torch.dtype, torch.device))


def _literal_for(target: fx.Node, value: Any, n: fx.Node) -> Any:
    """``value`` where an argument reads ``target``, any other node as it is."""
    return value if n is target else n


def fold_fixed_items(gm: fx.GraphModule) -> fx.GraphModule:
    """Replace each item read from a container argument fixed at its default (``cfg["mode"]`` of
    ``forward(self, x, cfg={"mode": "nearest"})``, ``cfg[1]``, ``cfg["up"]["mode"]``) by the value it
    reads, where every index is a constant and that value is a plain constant (:func:`_plain_constant`).

    Why: a container default is a placeholder of the traced graph (see :func:`fixed_arguments`), so an
    item of it reached the ops as a graph value, which an op that must know it at conversion took for
    one computed each frame (``F.interpolate(x, mode=cfg["mode"])`` was refused as an interpolation
    mode). The argument follows its default (the network refuses a call that passes another value), so
    the item is that constant. An item read by an index the graph computes (from a frame's shape) stays
    a graph value. Returns ``gm``, modified."""
    values: dict[fx.Node, Any] = {}  # what each placeholder with a default, and each item of one, holds
    for node in gm.graph.nodes:
        if node.op == "placeholder" and node.args and not str(node.target).startswith("*"):
            values[node] = node.args[0]
        elif (
            node.op == "call_function"
            and node.target is operator.getitem
            and len(node.args) == 2
            and not node.kwargs
            and node.args[0] in values
            and not _node_has(node.args[1])
        ):
            try:
                values[node] = values[node.args[0]][node.args[1]]
            except (KeyError, IndexError, TypeError):  # left to fail where the model reads it
                continue
    changed = False
    for node, value in values.items():
        if node.op != "call_function" or not _plain_constant(value):
            continue
        swap = functools.partial(_literal_for, node, value)
        for user in list(node.users):
            if user not in values:  # an item of this item is folded from its own value
                user.args, user.kwargs = fx.map_arg(user.args, swap), fx.map_arg(user.kwargs, swap)
                changed = True
    for node in reversed(list(gm.graph.nodes)):  # the items no op reads any more
        if node in values and node.op == "call_function" and not node.users:
            gm.graph.erase_node(node)
            changed = True
    if changed:
        gm.recompile()
    return gm


#: Python's in-place operators, as :class:`_InPlaceProxy` records ``y += x`` and friends, and their plain
#: forms, which the converted ops run.
_INPLACE_OPERATORS = (operator.iadd, operator.isub, operator.imul, operator.itruediv)
_PLAIN_OPERATORS = {
    operator.iadd: operator.add,
    operator.isub: operator.sub,
    operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
}


def _mutates(node: fx.Node, inplace_modules: set[str]) -> bool:
    """Whether ``node`` changes its first argument in place: ``x.relu_()``, ``x.add_(1)``, ``y += x``,
    ``F.relu(x, inplace=True)``, or a module built with ``inplace=True``."""
    if node.op == "call_method":
        return _inplace_name(str(node.target))
    if node.op == "call_function":
        return (
            node.target in _INPLACE_OPERATORS
            or node.kwargs.get("inplace") is True
            or _inplace_name(getattr(node.target, "__name__", ""))
        )
    return node.op == "call_module" and str(node.target) in inplace_modules


def _inplace_name(name: str) -> bool:
    """Whether ``name`` is torch's in-place form of an op (``relu_``, ``add_``; not ``__add__``)."""
    return name.endswith("_") and not name.startswith("_")


def _out_of_place(node: fx.Node) -> Any:
    """The callable of a function or method ``node`` that leaves its inputs alone: ``x.relu_()`` as
    ``x.relu()``, ``F.relu_(x)`` as ``F.relu(x)``. Every converted op runs it on the engine's own buffers,
    which an in-place op would change under it (the dense fallback was 0.18-0.48 off from frame 1 on).
    A name without a callable plain form (``requires_grad_``) is kept."""
    if node.op == "call_method":
        name = str(node.target)
        plain = (
            name[:-1] if _inplace_name(name) and callable(getattr(torch.Tensor, name[:-1], None)) else name
        )
        return _MethodCall(plain)
    if node.target in _PLAIN_OPERATORS:
        return _PLAIN_OPERATORS[node.target]
    fn = _callable(node.target)
    name = getattr(node.target, "__name__", "")
    if _inplace_name(name):
        functional = getattr(node.target, "__module__", "") == "torch.nn.functional"
        owner = torch.nn.functional if functional else torch
        plain_fn = getattr(owner, name[:-1], None) or getattr(torch, name[:-1], None)
        if plain_fn is not None:
            return _callable(plain_fn)
    return fn


def _reads_shape_only(node: fx.Node) -> bool:
    """Whether ``node`` reads only a tensor's shape (``y.size(0)``, ``y.shape``), which no in-place op
    changes."""
    return (node.op == "call_method" and node.target in T.META_METHODS) or (
        node.op == "call_function" and node.target in T.META_FUNCTIONS
    )


#: Methods whose result can share its input's storage (a view, or the input itself): an in-place change
#: through one of them changes the others, which torch.fx does not record.
_ALIAS_METHODS = frozenset(
    {
        "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze",
        "transpose", "permute", "t", "narrow", "select", "expand", "expand_as", "split", "split_with_sizes",
        "tensor_split", "chunk", "unbind", "contiguous", "detach", "as_strided", "movedim", "moveaxis",
        "swapaxes", "swapdims", "diagonal", "unfold", "__getitem__", "to", "float", "type_as", "cpu",
        "cuda", "real", "view_as_real",
    }
)  # fmt: skip
#: Functions alike (``operator.getitem`` is ``y[:, :2]``, and an item of ``split``'s tuple).
_ALIAS_FUNCTIONS = frozenset(
    {
        operator.getitem, torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.transpose,
        torch.permute, torch.narrow, torch.select, torch.split, torch.tensor_split, torch.chunk, torch.unbind,
        torch.movedim, torch.moveaxis, torch.swapaxes, torch.swapdims, torch.t, torch.detach, torch.diagonal,
        torch.as_strided,
    }
)  # fmt: skip
#: Modules that return their input or a view of it (a dropout in eval mode returns its input).
_ALIAS_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.modules.dropout._DropoutNd)


def _aliases_input(node: fx.Node, gm: fx.GraphModule, inplace_modules: set[str]) -> bool:
    """Whether ``node``'s result can share storage with its first argument: a view (``y[:, :2]``,
    ``y.view(..)``), an op that may return its input (``.contiguous()``, ``nn.Identity``), or an in-place
    op (it returns the tensor it changed)."""
    if _mutates(node, inplace_modules):
        return True
    if node.op == "call_method":
        return str(node.target) in _ALIAS_METHODS
    if node.op == "call_function":
        return node.target in _ALIAS_FUNCTIONS
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), _ALIAS_MODULES)
    return False


def refuse_hooks_outside_the_graph(model: nn.Module) -> None:
    """Refuse forward hooks that no converted op would run: the model's own (torch.fx traces its
    ``forward``, not its ``__call__``) and global ones (``register_module_forward_hook``).

    A hook of a submodule fx traces through is recorded in the graph like any other code; a layer's own
    hooks (a leaf) make it an unsupported op (:meth:`_Builder.convert_module`), which ``fallback=True``
    runs densely, hooks and all (its delta op would call the layer's maths only: the hook's change was
    lost from frame 1 on)."""
    if has_forward_hooks(model):
        raise UnsupportedOpError(
            f"{type(model).__name__}: the model itself carries forward hooks or pre-hooks, which torch.fx "
            "does not trace (the converted network would skip them); remove them or move them onto a layer"
        )
    g = nn.modules.module
    if g._global_forward_hooks or g._global_forward_pre_hooks:
        raise UnsupportedOpError(
            "global forward hooks or pre-hooks are registered (register_module_forward_hook); the converted "
            "network's ops would skip them: remove them before converting"
        )


def refuse_hidden_mutations(gm: fx.GraphModule, inplace_modules: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Refuse an in-place op whose input, or a tensor sharing its storage, is read again after it
    (``y.add_(1); return f(y)``, ``y[:, :2].relu_(); return f(y)``).

    torch.fx records the op as a node of its own, but the later reads take the node *before* it: the
    change happens only by aliasing, which the delta network (new tensors at every op) does not have, so
    the converted network would leave it out and differ from the model without a word (0.29 off on a
    small conv net). The same holds through views: ``y[:, :2].relu_()`` changes ``y``, and a read of ``y``
    (or of another view of it) after that missed the change (0.28 off). Aliases are followed through
    views and in-place results, both ways (a view's base and the base's other views), except through the
    op itself, whose result carries the change. Assigning the result (``y = y + 1``, ``y = F.relu(y)``,
    ``out = self.relu(out)``) makes the dependency explicit; that form converts exactly."""
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    neighbours: dict[fx.Node, list[fx.Node]] = {n: [] for n in gm.graph.nodes}
    for n in gm.graph.nodes:
        if n.args and isinstance(n.args[0], fx.Node) and _aliases_input(n, gm, inplace_modules):
            neighbours[n].append(n.args[0])
            neighbours[n.args[0]].append(n)
    for node in gm.graph.nodes:
        if not _mutates(node, inplace_modules) or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        target = node.args[0]
        group, todo = {target}, [target]
        while todo:  # every tensor sharing target's storage, not reached through the op itself
            for m in neighbours[todo.pop()]:
                if m is not node and m not in group:
                    group.add(m)
                    todo.append(m)
        later: list[str] = []
        for alias in sorted(group, key=order.__getitem__):
            for u in alias.users:
                # a view taken after the op is followed to its own readers; a later in-place op reads
                if u is node or order[u] < order[node] or _reads_shape_only(u):
                    continue
                if u in group and not _mutates(u, inplace_modules):
                    continue
                via = "" if alias is target else f" (through {alias.name}, which shares its storage)"
                later.append(u.name + via)
        if later:
            hint = (
                f"assign the result instead ({target.name} = ...)"
                if len(group) == 1
                else "compute it out of place (a changed slice: torch.cat([f(y[:, :k]), y[:, k:]], 1))"
            )
            raise UnsupportedOpError(
                f"{_where(node)}: changes {target.name} in place, and {', '.join(later)} read(s) it after "
                f"that; torch.fx does not record such a change, so the converted network would miss it: "
                f"{hint}"
            )


class _MethodCall:
    """Callable for a ``call_method`` node: ``obj.method(*args, **kwargs)``."""

    def __init__(self, method: str) -> None:
        self.method = method

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(obj, self.method)(*args, **kwargs)

    def __repr__(self) -> str:
        return f".{self.method}()"


def _function_named(module: str, name: str) -> _Named:
    """Unpickle a :class:`_Named` function."""
    import importlib

    return _Named(getattr(importlib.import_module(module), name))


class _Named:
    """A function called by an op, pickled by its module and name: some of torch's functions
    (``F.max_pool2d``, ``F.adaptive_max_pool2d``: boolean-dispatched) are local objects that pickle cannot
    name, so a network holding one could not be sent to a worker process."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return _function_named, (self.fn.__module__, self.fn.__name__)

    def __repr__(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__name__}"


def _callable(target: Any) -> Any:
    """``target`` of a ``call_function`` node as an op keeps it: wrapped in :class:`_Named` when pickle
    could not find it by its qualified name."""
    return _Named(target) if "<locals>" in getattr(target, "__qualname__", "") else target


class _Bound:
    """``fn(x, *args, **kwargs)`` with constant extra arguments bound at conversion."""

    def __init__(self, fn: Any, args: tuple, kwargs: dict) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __call__(self, *xs: Any) -> Any:
        return self.fn(*xs, *self.args, **self.kwargs)


class _Slot:
    """Where a value goes in :class:`_Placed`'s arguments: the ``index``-th delta input's dense value, or
    (``const``) the ``index``-th value the graph computes each frame."""

    def __init__(self, index: int, const: bool) -> None:
        self.index, self.const = index, const


class _Placed:
    """A fallback op's call with its arguments as the model wrote them: the accumulated dense inputs and
    the graph's per-frame values (a functional layer's weights: ``F.layer_norm(y, s, self.weight)``,
    ``F.conv2d(y, self.weight)``; amounts read from shapes) put back where they were, wherever the
    changing maps stand (``torch.stack([a, b])``, ``torch.where(c, a, b)``). ``args`` and ``kwargs``
    hold :class:`_Slot` where those go, and :class:`_Call` where a bool map the op reads is computed
    (``y > 0`` of ``torch.where(y > 0, y, 0.1 * y)``)."""

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __call__(self, *dense: Any, consts: tuple[Any, ...] = ()) -> Any:
        def fill(v: Any) -> Any:
            if isinstance(v, _Slot):
                return consts[v.index] if v.const else dense[v.index]
            if isinstance(v, _Call):
                return v.fn(*fill(v.args), **fill(v.kwargs))
            if isinstance(v, (list, tuple)):
                return type(v)(fill(x) for x in v)
            if isinstance(v, dict):
                return {k: fill(x) for k, x in v.items()}
            return v

        return self.fn(*fill(self.args), **fill(self.kwargs))


class _Call:
    """A call inside a :class:`_Placed` one's arguments (a bool map the fallback op computes itself)."""

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs


def _as_plain(v: Any) -> Any:
    """fx's immutable lists and dicts as plain ones (they pickle by value and rebuild as they were)."""
    if isinstance(v, tuple):
        return tuple(_as_plain(x) for x in v)
    if isinstance(v, list):
        return [_as_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _as_plain(x) for k, x in v.items()}
    return v


class _StructMask:
    """Updated output pixels of a pooling island: the op applied to the 0/1 masks."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, masks: list[torch.Tensor | None], y: torch.Tensor) -> torch.Tensor | None:
        if any(m is None for m in masks):
            return None
        out = self.fn(*[m.to(y.dtype) for m in masks])  # type: ignore[union-attr]
        return out != 0


def _all_masks(masks: list[torch.Tensor | None], y: torch.Tensor) -> None:
    return None


def _node_has(arg: Any) -> bool:
    """Whether a (nested) argument holds a graph node."""
    return bool(_nodes_in(arg))


def _nodes_in(arg: Any) -> list[fx.Node]:
    """The graph nodes inside a (nested) argument."""
    found: list[fx.Node] = []
    fx.map_arg(arg, found.append)
    return found


def _operands(node: fx.Node) -> tuple[Any, Any]:
    """The two operands of a binary op (``torch.mul(a, b)``, ``a.div(b)``), given by position or by name
    (``torch.mul(a, other=b)``, ``torch.div(input=a, other=b)``): counting positional ones only, a product
    of two changing maps passed ``other=`` was taken for a scaling (silently wrong)."""
    args = list(node.args[:2])  # a method's ``self`` is its first argument
    args += [node.kwargs.get(name) for name in ("input", "other")[len(args) :]]
    return args[0], args[1]


#: Functions and methods (by name) whose result is a bool map (``y > 0`` is ``gt``).
_BOOL_RESULTS = frozenset(
    {"gt", "lt", "ge", "le", "eq", "ne", "greater", "less", "greater_equal", "less_equal", "not_equal",
     "logical_and", "logical_or", "logical_xor", "logical_not", "isnan", "isinf", "isfinite", "isposinf",
     "isneginf", "signbit", "bool", "isclose", "__and__", "__or__", "__xor__", "__invert__", "and_", "or_",
     "invert"}
)  # fmt: skip


def _owner(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    last = list(stack.values())[-1]
    return str(last[0]) if isinstance(last, tuple) else str(last)


def _fname(node: fx.Node) -> str:
    if node.op == "call_method":
        return str(node.target)
    if node.target in _PLAIN_OPERATORS:  # ``y += x`` keeps the call-site name ``add``, as fx once traced it
        return _PLAIN_OPERATORS[node.target].__name__
    return getattr(node.target, "__name__", str(node.target))


def _where(node: fx.Node) -> str:
    """Where ``node`` sits, for an error: the module, or the owner and the call with the values it takes
    (two ``mul`` calls of one forward read ``(mul of conv, sigmoid)`` and ``(mul of mul, mean)``)."""
    if node.op == "call_module":  # "module '1'" says what a bare Sequential index is
        return f"module {str(node.target)!r}"
    owner = _owner(node)
    inputs = [a.name for a in node.all_input_nodes]
    of = f" of {', '.join(inputs)}" if inputs else ""
    return f"{owner or '<top level>'} ({_fname(node)}{of})"


class _Builder:
    """Builds the delta graph from a traced, BN-folded graph (one use)."""

    def __init__(
        self, gm: fx.GraphModule, *, fallback: bool, input_dilation: int, truncate_maxpool: bool = False
    ) -> None:
        self.gm = gm
        self.truncate_maxpool = truncate_maxpool
        self.modules = dict(gm.named_modules())
        self.fallback = fallback
        self.input_dilation = input_dilation
        self.root = nn.Module()
        self.op_modules = nn.ModuleDict()
        self.root.ops = self.op_modules
        self.new = fx.Graph()
        self.env: dict[fx.Node, fx.Node] = {}
        self.is_delta: dict[fx.Node, bool] = {}
        self.counts: dict[str, int] = {}
        self.ops: list[DeltaOp] = []
        self.keys: set[str] = set()
        #: fallback ops whose result is a bool map: each fallback op that reads one computes it itself
        self.deferred: set[fx.Node] = set()
        #: fallback ops that return a tuple whose items are read by index: (fn, inputs, n_delta)
        self.tuple_fallbacks: dict[fx.Node, tuple[Any, tuple[fx.Node, ...], int | None]] = {}

    # -- naming ---------------------------------------------------------------------------------
    def call_site(self, node: fx.Node) -> str:
        if node.op == "call_module":
            base = str(node.target)
        else:
            base = f"{_owner(node)}:{_fname(node)}"
        k = self.counts.get(base, 0)
        self.counts[base] = k + 1
        return base if k == 0 else f"{base}#{k}"

    def add_op(self, op: DeltaOp, args: tuple, kwargs: dict | None = None) -> fx.Node:
        key = re.sub(r"[^0-9a-zA-Z_]", "_", op.name) or "op"
        while key in self.keys or not key[0].isalpha():
            key = f"n_{key}" if not key[0].isalpha() else f"{key}_"
        self.keys.add(key)
        self.op_modules[key] = op
        self.ops.append(op)
        return self.new.call_module(f"ops.{key}", args, kwargs or {})

    def mapped(self, arg: Any) -> Any:
        return fx.map_arg(arg, lambda n: self.env[n])

    # -- the walk -------------------------------------------------------------------------------
    def build(self) -> tuple[fx.GraphModule, list[DeltaOp]]:
        n_inputs = 0
        for node in self.gm.graph.nodes:
            if node.op == "placeholder" and str(node.target).startswith("*"):
                # ``*args`` / ``**kwargs`` of the forward: nothing a frame passes (empty unless given)
                self.env[node] = self.new.placeholder(node.target)
                self.is_delta[node] = False
            elif node.op == "placeholder" and node.args:
                # an optional argument fixed at its default (see fixed_arguments): a constant, which the
                # graph's own assert checks at every call
                self.env[node] = self.new.placeholder(node.target, default_value=node.args[0])
                self.is_delta[node] = False
            elif node.op == "placeholder":
                p = self.new.placeholder(node.target)
                name = "input" if n_inputs == 0 else f"input:{node.target}"
                n_inputs += 1
                self.counts[name] = 1  # reserved: a submodule named ``input`` is called ``input#1``
                self.env[node] = self.add_op(InputSparsify(name, dilation=self.input_dilation), (p,))
                self.is_delta[node] = True
            elif node.op == "get_attr":
                value = self.attribute(str(node.target))
                key = "const_" + re.sub(r"[^0-9a-zA-Z_]", "_", str(node.target))
                if isinstance(value, torch.Tensor):
                    self.root.register_buffer(key, value.detach().clone())
                else:
                    setattr(self.root, key, value)
                self.env[node] = self.new.get_attr(key)
                self.is_delta[node] = False
            elif node.op == "output":
                self.env[node] = self.new.output(self.output_args(node.args[0]))
            else:
                delta_in = any(self.is_delta.get(n, False) for n in node.all_input_nodes)
                if not delta_in:
                    self.env[node] = self.copy_constant(node)
                    self.is_delta[node] = False
                else:
                    self.env[node], self.is_delta[node] = self.convert_node(node)
        self.new.lint()
        return fx.GraphModule(self.root, self.new, "DeltaGraph"), self.ops

    def output_args(self, arg: Any) -> Any:
        def wrap(n: fx.Node) -> fx.Node:
            if n in self.deferred:
                raise UnsupportedOpError(
                    f"{_where(n)}: the model returns a bool map, which a delta network cannot carry (a "
                    "delta value is one floating-point map): return it as a float map (.float())"
                )
            if not self.is_delta.get(n, False):
                return self.env[n]
            name = "output" if n.name == "output" else f"output:{n.name}"
            return self.add_op(Densify(name), (self.env[n],))

        return fx.map_arg(arg, wrap)

    def copy_constant(self, node: fx.Node) -> fx.Node:
        args, kwargs = self.mapped(node.args), self.mapped(node.kwargs)
        if node.op == "call_module":
            key = "const_mod_" + re.sub(r"[^0-9a-zA-Z_]", "_", str(node.target))
            if not hasattr(self.root, key):
                self.root.add_module(key, self.modules[node.target])
            return self.new.call_module(key, args, kwargs)
        if node.op == "call_method":
            return self.new.call_method(str(node.target), args, kwargs)
        assert callable(node.target)
        # a constant changed in place (``c += 1``) would change the stored copy again at every frame
        return self.new.call_function(_PLAIN_OPERATORS.get(node.target, node.target), args, kwargs)

    # -- one node -------------------------------------------------------------------------------
    def convert_node(self, node: fx.Node) -> tuple[fx.Node, bool]:
        if _int_item(node) and node.args[0] in self.tuple_fallbacks:
            return self.tuple_item(node)
        if any(a in self.deferred for a in node.all_input_nodes):
            return self.unsupported(node, "it reads a bool map")
        args, kwargs = self.mapped(node.args), self.mapped(node.kwargs)
        first = node.args[0] if node.args else None
        if node.op == "call_module":
            return self.convert_module(node, args, kwargs)
        target: Any = node.target
        fn = _out_of_place(node)  # an op never changes its inputs: they are the engine's own buffers
        kind_of = (
            (lambda table: table.get(target))
            if node.op == "call_method"
            else (lambda table: table.get(target) if isinstance(table, dict) else None)
        )

        if (node.op == "call_function" and target in T.META_FUNCTIONS) or (
            node.op == "call_method" and target in T.META_METHODS
        ):
            return self.add_op(MetaOp(self.call_site(node), fn), args, kwargs), False
        if node.op == "call_function" and target in T.ADD_FUNCTIONS + T.SUB_FUNCTIONS:
            op = AddSubOp(
                self.call_site(node), fn, subtract=target in T.SUB_FUNCTIONS, plain=target in T.ADD_FUNCTIONS
            )
            return self.add_op(op, args, kwargs), True
        if node.op == "call_method" and target in T.ADD_METHODS:
            op = AddSubOp(self.call_site(node), fn, subtract=T.ADD_METHODS[target], plain=True)
            return self.add_op(op, args, kwargs), True
        if node.op == "call_function" and target in T.CAT_FUNCTIONS:
            return self.add_op(CatOp(self.call_site(node), fn), args, kwargs), True
        if (node.op == "call_function" and target in T.MUL_FUNCTIONS) or (
            node.op == "call_method" and target in ("mul", "mul_")
        ):
            n_delta = sum(self.is_delta.get(a, False) for a in _operands(node) if isinstance(a, fx.Node))
            if n_delta == 1:
                return self.add_op(StructuralOp(self.call_site(node), fn, "scale"), args, kwargs), True
            if n_delta == 2:  # an SE or attention block's gate: (a + da)(b + db) is not linear in the changes
                return self.unsupported(node, "a product of two changing maps is not linear in their changes")
        elif (node.op == "call_function" and target in T.DIV_FUNCTIONS) or (
            node.op == "call_method" and target in ("div", "div_")
        ):
            rounding = node.kwargs.get("rounding_mode")
            if rounding is not None:  # floor(a / c) is a step function of a, not a scaling
                return self.unsupported(node, f"a division with rounding_mode={rounding!r} is not linear")
            divisor = _operands(node)[1]
            if not (isinstance(divisor, fx.Node) and self.is_delta.get(divisor, False)):
                return self.add_op(StructuralOp(self.call_site(node), fn, "scale"), args, kwargs), True
            return self.unsupported(node, "a quotient by a changing map is not linear in its changes")
        if node.op == "call_function" and target in (F.conv2d, torch.conv2d):
            conv = self.functional_conv(node)
            if conv is not None:
                assert isinstance(first, fx.Node)
                return self.add_op(ConvOp(self.call_site(node), conv), (self.env[first],)), True
        if node.op == "call_function" and target is torch.nn.functional.pad:
            pad: Any = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
            mode: Any = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
            value: Any = node.args[3] if len(node.args) > 3 else node.kwargs.get("value", 0.0)
            if not _node_has((mode, value)) and not any(self.is_delta.get(n, False) for n in _nodes_in(pad)):
                assert isinstance(first, fx.Node)
                if not _node_has(pad):
                    pad_op = PadOp(self.call_site(node), tuple(pad), str(mode), float(value or 0.0))
                    return self.add_op(pad_op, (self.env[first],)), True
                # amounts computed from shapes (a U-Net pads an upsampled map to its skip's size): the
                # same at every frame of a stream, computed by the graph each frame and passed along
                pad_op = PadOp(self.call_site(node), None, str(mode), float(value or 0.0))
                return self.add_op(pad_op, (self.env[first], self.mapped(pad))), True
        if node.op == "call_function" and target in (
            torch.nn.functional.interpolate,
            torch.nn.functional.upsample,
        ):
            mode = node.kwargs.get("mode", node.args[3] if len(node.args) > 3 else "nearest")
            if mode not in T.INTERP_MODES:
                return self.unsupported(node, f"interpolation mode {mode!r} is not linear-monotone")
        pw = kind_of(T.POINTWISE_METHODS) if node.op == "call_method" else T.POINTWISE_FUNCTIONS.get(target)
        if pw is not None:
            return self.truncation(node, PointwiseTruncation, pw, fn)
        if node.op == "call_function" and target in T.POOL_FUNCTIONS:
            return self.truncation(node, DenseIsland, T.POOL_FUNCTIONS[target], fn)
        if (
            node.op == "call_method"
            and target in ("expand_as", "type_as")
            and not (isinstance(first, fx.Node) and self.is_delta.get(first, False))
        ):
            # a constant broadcast to a changing map's shape, or cast to its type: it reads only those
            return self.add_op(MetaOp(self.call_site(node), fn), args, kwargs), False
        st = kind_of(T.STRUCTURAL_METHODS) if node.op == "call_method" else T.STRUCTURAL_FUNCTIONS.get(target)
        if st is not None:
            return self.add_op(StructuralOp(self.call_site(node), fn, st), args, kwargs), True
        return self.unsupported(node, f"operation {_fname(node)!r} is not supported")

    def convert_module(self, node: fx.Node, args: tuple, kwargs: dict) -> tuple[fx.Node, bool]:
        mod = self.modules[node.target]
        name = self.call_site(node)
        if has_forward_hooks(mod):  # the delta ops run the layer's maths, not its __call__ (and hooks)
            return self.unsupported(
                node,
                f"{type(mod).__name__} carries forward hooks or pre-hooks, which its delta op would skip",
                name=name,
            )
        if isinstance(mod, nn.Conv2d):
            return self.add_op(ConvOp(name, mod), args, kwargs), True
        if isinstance(mod, nn.ConvTranspose2d):
            if node.args[1:] or node.kwargs:
                return self.unsupported(node, "ConvTranspose2d with an explicit output_size", name=name)
            return self.add_op(ConvTransposeOp(name, mod), args, kwargs), True
        if isinstance(mod, nn.Linear):
            return self.add_op(LinearLayerOp(name, mod), args, kwargs), True
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            if mod.running_var is None or mod.running_mean is None:  # not an affine map: it needs --fallback
                return self.unsupported(
                    node, "BatchNorm without running statistics (it normalises by each batch)", name=name
                )
            return self.add_op(ChannelAffineOp(name, mod), args, kwargs), True
        for cls, kind in T.POINTWISE_MODULES.items():
            if type(mod) is cls:
                if hasattr(mod, "inplace"):
                    setattr(mod, "inplace", False)  # noqa: B010 - any module type with the flag
                return self.truncation(node, PointwiseTruncation, kind, mod, name=name)
        if getattr(mod, "return_indices", False) is True:
            raise UnsupportedOpError(
                f"{_where(node)}: {type(mod).__name__} with return_indices=True returns a tuple (values, "
                "indices), where a delta value is one floating-point map: wrap the code that uses it in a "
                "module passed in leaf_types, which the fallback runs whole"
            )
        for cls, kind in T.POOL_MODULES.items():
            if type(mod) is cls:
                return self.truncation(node, DenseIsland, kind, mod, name=name)
        if isinstance(mod, nn.modules.padding._ConstantPadNd):
            return self.add_op(PadOp(name, tuple(mod.padding), "constant", mod.value), args, kwargs), True
        if isinstance(mod, (nn.Upsample,)) and mod.mode not in T.INTERP_MODES:
            return self.unsupported(node, f"Upsample mode {mod.mode!r} is not linear-monotone", name=name)
        if isinstance(mod, T.STRUCTURAL_MODULES):
            if isinstance(mod, (nn.Dropout, nn.Dropout2d)):
                mod.inplace = False
            return self.add_op(StructuralOp(name, mod, type(mod).__name__.lower()), args, kwargs), True
        return self.unsupported(node, f"module type {type(mod).__name__} is not supported", name=name)

    def truncation(
        self, node: fx.Node, cls: type, kind: str, fn: Any, *, name: str | None = None
    ) -> tuple[fx.Node, bool]:
        """A threshold-carrying op: extra arguments must be constants and are bound now."""
        delta_args = [a for a in node.args if isinstance(a, fx.Node) and self.is_delta.get(a, False)]
        rest = node.args[1:]
        kwargs = {k: v for k, v in node.kwargs.items() if k != "inplace"}
        if len(delta_args) != 1 or node.args[0] is not delta_args[0] or _node_has((rest, kwargs)):
            return self.unsupported(node, "non-constant extra arguments to a non-linear op", name=name)
        if rest or kwargs:
            fn = _Bound(fn, tuple(rest), kwargs)
        name = name or self.call_site(node)
        op: TruncationOp
        if cls is PointwiseTruncation:
            op = PointwiseTruncation(name, fn, kind, piecewise=piecewise_of(kind, fn))
        else:
            op = DenseIsland(name, fn, kind, _StructMask(fn))
            op.is_point = self.truncate_maxpool  # DeltaCNN's max pooling has no threshold
        return self.add_op(op, (self.env[delta_args[0]],)), True

    def not_one_real_map(self, node: fx.Node) -> str:
        """Why ``node``'s result is not one floating-point map, as far as the graph tells: a tuple
        (``return_indices=True``, or an item taken by an integer index) or a bool map (a comparison);
        ``""`` when none is seen. The dense fallback failed on either at run time (an AttributeError on
        frame 0, a RuntimeError on frame 1)."""
        mod = self.modules.get(str(node.target)) if node.op == "call_module" else None
        if getattr(mod, "return_indices", False) is True or node.kwargs.get("return_indices") is True:
            return "a tuple: return_indices=True"
        if any(
            u.op == "call_function" and u.target is operator.getitem and isinstance(u.args[1], int)
            for u in node.users
        ):
            return "a tuple, whose items are read"
        if _fname(node) in _BOOL_RESULTS:
            return f"a bool map: {_fname(node)}"
        return ""

    def unsupported(self, node: fx.Node, why: str, *, name: str | None = None) -> tuple[fx.Node, bool]:
        if not self.fallback:
            raise UnsupportedOpError(
                f"{_where(node)}: {why}; pass fallback=True (CLI: --fallback) to run it densely "
                "(densify -> op -> sparsify)"
            )
        fn: Any = self.modules[node.target] if node.op == "call_module" else _out_of_place(node)
        delta_nodes = [a for a in node.args if isinstance(a, fx.Node) and self.is_delta.get(a, False)]
        n = len(delta_nodes)
        n_delta: int | None = None
        reads_deferred = any(a in self.deferred for a in node.all_input_nodes)
        if (
            n == 0
            or reads_deferred
            or list(node.args[:n]) != delta_nodes
            or _node_has((node.args[n:], node.kwargs))
        ):
            # changing maps elsewhere than first, values the graph computes each frame, or a bool map it
            # reads: the call is rebuilt with each in its place
            inside = list(dict.fromkeys(self.leaves(node)))
            delta_nodes = [a for a in inside if self.is_delta.get(a, False)]
            const_nodes = [a for a in inside if not self.is_delta.get(a, False)]
            slots = {a: _Slot(i, False) for i, a in enumerate(delta_nodes)}
            slots |= {a: _Slot(i, True) for i, a in enumerate(const_nodes)}
            args, kwargs = self.template(node, slots)
            fn, n_delta = _Placed(fn, args, kwargs), len(delta_nodes)
            delta_nodes += const_nodes
        elif node.args[n:] or node.kwargs:
            fn = _Bound(fn, tuple(node.args[n:]), dict(node.kwargs))
        inputs = tuple(self.env[a] for a in delta_nodes)
        result = self.not_one_real_map(node)
        if result.startswith("a tuple, whose items") and all(_int_item(u) for u in node.users):
            # every reader takes one item by index (``torch.max(y, 1)[0]``): one fallback op per item
            self.tuple_fallbacks[node] = (fn, inputs, n_delta)
            return None, True  # type: ignore[return-value]  # its readers take their item from tuple_fallbacks
        if result.startswith("a bool map"):
            # not a delta value: computed again inside each fallback op that reads it
            self.deferred.add(node)
            return None, True  # type: ignore[return-value]  # its readers compute it (see template)
        if result:
            raise UnsupportedOpError(
                f"{_where(node)}: {why}, and the dense fallback cannot carry its result ({result}; a delta "
                "value is one floating-point map): wrap the code that uses it in a module passed in "
                "leaf_types, which the fallback runs whole"
            )
        op = DenseIsland(name or self.call_site(node), fn, "fallback", _all_masks)
        op.n_delta = n_delta
        return self.add_op(op, inputs), True

    def functional_conv(self, node: fx.Node) -> nn.Conv2d | None:
        """``F.conv2d(x, self.weight, self.bias, stride, padding, dilation, groups)`` as the layer it is,
        when the input is the only changing map, the weight and bias are the model's own tensors and
        the rest are constants; else ``None`` (the dense fallback may still run it)."""
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        given: dict[str, Any] = dict(zip(names, node.args, strict=False)) | dict(node.kwargs)
        x, weight, bias = given.get("input"), given.get("weight"), given.get("bias")
        if not (isinstance(x, fx.Node) and self.is_delta.get(x, False)):
            return None
        if not all(isinstance(t, fx.Node) and t.op == "get_attr" for t in (weight, bias) if t is not None):
            return None
        if weight is None or _node_has([given.get(k) for k in names[3:]]):
            return None
        w = self.attribute(str(weight.target))
        b = None if bias is None else self.attribute(str(bias.target))
        if not isinstance(w, torch.Tensor) or w.dim() != 4 or not (b is None or isinstance(b, torch.Tensor)):
            return None
        groups = int(given.get("groups", 1))
        conv = nn.Conv2d(
            w.shape[1] * groups,
            w.shape[0],
            tuple(w.shape[2:]),  # type: ignore[arg-type]
            stride=given.get("stride", 1),
            padding=given.get("padding", 0),
            dilation=given.get("dilation", 1),
            groups=groups,
            bias=b is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(w)
            if b is not None:
                conv.bias.copy_(b)  # type: ignore[union-attr]
        return conv.eval()

    def attribute(self, target: str) -> Any:
        """The value of a ``get_attr`` target of the traced model."""
        value: Any = self.gm
        for part in target.split("."):
            value = getattr(value, part)
        return value

    def leaves(self, node: fx.Node) -> list[fx.Node]:
        """The nodes ``node`` reads, through the bool maps it computes itself (:attr:`deferred`)."""
        out: list[fx.Node] = []
        for a in _nodes_in((node.args, node.kwargs)):
            out += self.leaves(a) if a in self.deferred else [a]
        return out

    def template(self, node: fx.Node, slots: dict[fx.Node, _Slot]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``node``'s arguments with :class:`_Slot` for the values it is handed and :class:`_Call` for the
        bool maps it computes itself."""

        def place(a: fx.Node) -> Any:
            if a in slots:
                return slots[a]
            fn = self.modules[str(a.target)] if a.op == "call_module" else _out_of_place(a)
            return _Call(fn, *self.template(a, slots))

        args, kwargs = _as_plain(fx.map_arg((node.args, dict(node.kwargs)), place))
        return args, kwargs

    def tuple_item(self, node: fx.Node) -> tuple[fx.Node, bool]:
        """``node`` = ``t[i]`` of a fallback op ``t`` that returns a tuple: the op, keeping item ``i``."""
        tup, index = node.args[0], node.args[1]
        assert isinstance(tup, fx.Node) and isinstance(index, int)
        fn, inputs, n_delta = self.tuple_fallbacks[tup]
        op = DenseIsland(self.call_site(tup), _Item(fn, index), "fallback", _all_masks)
        op.n_delta = n_delta
        return self.add_op(op, inputs), True


def _int_item(node: fx.Node) -> bool:
    """Whether ``node`` is ``t[i]`` with a constant integer ``i``."""
    return node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[1], int)


class _Item:
    """``fn(...)[index]``: one item of a fallback op that returns a tuple."""

    def __init__(self, fn: Any, index: int) -> None:
        self.fn, self.index = fn, index

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)[self.index]


def _reads_inside_masks(node: fx.Node, modules: dict[str, nn.Module], backend: Backend) -> bool:
    """Whether every reader of ``node``'s value reads it inside its mask only: a conv the backend runs
    mask-aware, or the compiled truncation step of a piecewise non-linearity, also through the lazy ops
    that hand a value on unread (a plain residual add, a nearest upsampling), whose readers must then be
    such truncation steps: a conv reading a lazy sum or upsampling computes it from every pixel."""

    def op_of(user: fx.Node) -> nn.Module | None:
        return modules.get(str(user.target)) if user.op == "call_module" else None

    def through_lazy(n: fx.Node) -> bool:
        for user in n.users:
            op = op_of(user)
            if isinstance(op, PointwiseTruncation) and op.piecewise is not None:
                continue
            if not (_is_lazy(op) and through_lazy(user)):
                return False
        return True

    for user in node.users:
        op = op_of(user)
        if isinstance(op, ConvOp):
            if not backend.reads_masked(op.conv):
                return False
        elif isinstance(op, PointwiseTruncation) and op.piecewise is not None:
            continue
        elif not (_is_lazy(op) and through_lazy(user)):
            return False
    return True


def _is_lazy(op: nn.Module | None) -> bool:
    """An op that returns a lazy value over its delta inputs (their buffers read later, by its readers)."""
    return (isinstance(op, AddSubOp) and op.plain) or (
        isinstance(op, StructuralOp) and op.nearest_factor is not None
    )


def plan_zero_fill(graph_module: fx.GraphModule, backend: Backend) -> dict[str, bool]:
    """Decide, per op, whether its kernel writes the zeros of its output (``op.zero_fill``).

    The compiled conv, input and truncation kernels can leave an output undefined outside its mask (a
    :class:`~deltatune.delta.values.DeltaMasked` value) when every reader reads inside masks only; most
    of a sparse frame's pixels are such zeros. Decided once here, where the readers are known, so that
    reading a value never changes its producer. A reader that does need every pixel at run time anyway
    (a conv that takes its dense path on one frame) reads ``data``, which zeroes the buffer in place.
    Returns ``{op name: zero_fill}`` for the ops that have the choice.
    """
    modules = dict(graph_module.named_modules())
    out: dict[str, bool] = {}
    for node in graph_module.graph.nodes:
        op = modules.get(str(node.target)) if node.op == "call_module" else None
        if isinstance(op, (ConvOp, InputSparsify, PointwiseTruncation)):
            op.zero_fill = not (backend.masked_io and _reads_inside_masks(node, modules, backend))
            out[op.name] = op.zero_fill
    return out


def convert(
    model: nn.Module,
    example_input: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    thresholds: ThresholdSpec = 0.0,
    backend: str | Backend = "reference",
    mode: str = "max",
    accumulate: bool = True,
    input_dilation: int = 1,
    fallback: bool = False,
    leaf_types: Sequence[type[nn.Module]] = (),
    record_stats: bool = True,
    dense_refresh: float | None | str = "auto",
    truncate_maxpool: bool = False,
) -> DeltaNetwork:
    """Convert an unmodified PyTorch model into a delta network.

    The model is copied (the original is untouched), put in eval mode, traced and rewritten.

    Args:
        model: any ``nn.Module`` that ``torch.fx`` can trace, built from supported ops.
        example_input: optional input; if given, one dense frame is run (then ``reset()``) so that
            conversion problems surface here rather than on the first real frame.
        thresholds: a :class:`~deltatune.delta.thresholds.ThresholdMap`, a ``{name: value}`` dict,
            a single float for every truncation point, or ``None`` (never truncate).
        backend: ``"reference"`` (exact, dense computation of masked deltas) or a backend object.
        mode: truncation reduction over channels: ``max`` (DeltaCNN), ``norm`` or ``rms``.
        accumulate: keep residuals of changes that did not fire (DeltaCNN). ``False`` drops them
            (ablation: errors drift).
        input_dilation: odd window size of the max-pool applied to the input change map.
        fallback: run unsupported ops densely (densify -> op -> sparsify) instead of raising.
        leaf_types: extra module types the tracer must not enter (they need ``fallback=True``).
        record_stats: record per-layer statistics (switch off for timing).
        dense_refresh: updated-input fraction at which a frame runs densely when that is exact (every
            threshold after the input 0, accumulation on; see :class:`InputSparsify`); ``None`` never;
            ``"auto"``: the backend's default (on for ``sparse``, off for ``reference``).
        truncate_maxpool: make max pooling a truncation point with a threshold of its own (beyond
            DeltaCNN, whose max pooling registers none; never exported to DeltaCNN's format). By default
            it is exact: ``pool(A + d) - pool(A)`` at the updated pixels.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from deltatune.delta import convert
        >>> net = convert(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), thresholds=0.0)
        >>> x = torch.rand(1, 3, 8, 8)
        >>> bool(torch.allclose(net(x), net.source(x)))
        True
    """
    if mode not in MODES:
        raise ConfigError(f"truncation mode {mode!r} is unknown; choose one of {', '.join(MODES)}")
    if input_dilation < 1 or input_dilation % 2 == 0:
        raise ConfigError(f"input dilation must be a positive odd integer, got {input_dilation}")
    source = copy.deepcopy(model).eval()
    work = materialize_weights(copy.deepcopy(source))
    inplace_modules = set()
    for name, m in work.named_modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            if m.inplace:
                inplace_modules.add(name)
            m.inplace = False
    traced = trace(work, leaf_types=leaf_types)
    refuse_hidden_mutations(traced, inplace_modules)
    gm = fold_zero_pads(fold_batchnorm(fold_fixed_items(traced)))
    graph_module, ops = _Builder(
        gm, fallback=fallback, input_dilation=input_dilation, truncate_maxpool=truncate_maxpool
    ).build()
    ctx = RunContext(backend=get_backend(backend), mode=mode, accumulate=accumulate, recorder=StatsRecorder())
    plan_zero_fill(graph_module, ctx.backend)
    ctx.recorder.enabled = record_stats  # type: ignore[union-attr]
    net = DeltaNetwork(graph_module, ops, ctx, source=source, fixed_arguments=fixed_arguments(work))
    net.dense_refresh = ctx.backend.dense_refresh if dense_refresh == "auto" else dense_refresh  # type: ignore[assignment]
    net.set_thresholds(thresholds)
    if example_input is not None:
        with torch.no_grad():
            inputs = (example_input,) if isinstance(example_input, torch.Tensor) else tuple(example_input)
            net(*inputs)
        net.reset()
        net.stats.clear()
    return net
