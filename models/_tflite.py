"""Convert a float TFLite CNN into a plain, FX-traceable PyTorch module.

Why: the only real pretrained pose CNN available offline (MediaPipe's BlazePose-full) ships as a
``.tflite`` flatbuffer. The delta engine needs plain ``nn.Conv2d``/``nn.ReLU6``/``+`` graphs, so this
module maps the TFLite graph op by op to standard torch layers, NCHW throughout.

Conversion has two stages so that a converted model can be cached without the ``tflite`` parser:

1. :func:`parse_tflite` reads the flatbuffer (with the pure-Python ``tflite`` package) into a
   JSON-serialisable :class:`GraphSpec` plus a ``state_dict`` of fp32 weights (fp16 constants behind
   DEQUANTIZE ops are widened here, once).
2. :func:`build_module` turns a spec into a :class:`TFLiteModule`; its ``forward`` walks a static
   Python list of nodes, which ``torch.fx.symbolic_trace`` unrolls into a flat graph.

Supported ops: CONV_2D, DEPTHWISE_CONV_2D, ADD, PAD, MAX_POOL_2D, RESIZE_BILINEAR, RESHAPE (flatten to
``[N, K]``), LOGISTIC, CONCATENATION and DEQUANTIZE, with fused RELU/RELU6. TFLite "SAME" padding is
symmetric padding in the conv where possible and an explicit ``nn.ZeroPad2d`` before it where
TFLite pads asymmetrically (stride 2); zero padding keeps the graph delta-friendly.

Module names come from the Keras layer names embedded in the tensor names (``conv2d_12``,
``depthwise_conv2d_3``, ``add_7``), so threshold names are readable and stable for a given file.

Example (MediaPipe's ``pose_landmark_full.tflite``, the asset ``blazepose_tflite``):
    >>> from deltatune.data import asset_path
    >>> spec, state = parse_tflite(asset_path("blazepose_tflite", fetch=True))
    >>> model = build_module(spec)
    >>> model.load_state_dict(state)
    <All keys matched successfully>
    >>> len(spec["nodes"]), len(spec["outputs"])
    (140, 5)
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deltatune.errors import UnsupportedOpError, WeightsError

__all__ = ["GraphSpec", "TFLiteModule", "build_module", "convert_tflite", "parse_tflite", "prune_spec"]

logger = logging.getLogger(__name__)

GraphSpec = dict[str, Any]
"""``{"format": int, "inputs": [tid], "outputs": [{"tensor", "name", "shape"}], "nodes": [...]}``."""

SPEC_FORMAT = 1

_NUMPY_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64}
_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6"}  # tflite.ActivationFunctionType
_KIND_PATTERNS = {  # Keras layer-name patterns used to name each op kind
    "conv": r"(conv2d(_\d+)?|conv[a-z_0-9]*)",
    "dwconv": r"depthwise_conv2d(_\d+)?",
    "add": r"add(_\d+)?",
    "pad": r"zero_padding2d(_\d+)?",
    "maxpool": r"max_pooling2d(_\d+)?",
    "upsample": r"up_sampling2d(_\d+)?",
    "sigmoid": r"activation[a-z_0-9]*",
    "reshape": r"output_[a-z_0-9]+|[a-z_0-9]+_3d",
    "concat": r"concatenate(_\d+)?",
}


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TF "SAME" padding (before, after) along one axis; the extra pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _Add(nn.Module):
    """Elementwise ``a + b`` with an optional fused activation (a separate module, for naming)."""

    def __init__(self, act: nn.Module | None) -> None:
        super().__init__()
        self.act = act

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = a + b
        if self.act is not None:
            y = self.act(y)
        return y


def _act_module(name: str | None) -> nn.Module | None:
    return {None: None, "relu": nn.ReLU, "relu6": nn.ReLU6}[name]() if name else None


def _sanitise(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else f"t_{name}"


class TFLiteModule(nn.Module):
    """A converted TFLite graph: standard torch layers wired by a static node list (NCHW).

    ``forward(x)`` takes the graph input as NCHW float and returns the selected outputs in graph
    order: 4-D outputs as NCHW, 2-D outputs unchanged; a single output is returned bare.
    """

    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        self.spec = spec
        self._program: list[tuple[str, str, tuple[int, ...], int, Any]] = []
        for node in spec["nodes"]:
            kind, name = node["op"], node["name"]
            extra: Any = None
            if kind in ("conv", "dwconv"):
                layers: OrderedDict[str, nn.Module] = OrderedDict()
                left, right, top, bottom = node["padding"]
                sym = left == right and top == bottom
                if not sym:
                    layers["pad"] = nn.ZeroPad2d((left, right, top, bottom))
                cin, cout = node["in_channels"], node["out_channels"]
                layers["conv"] = nn.Conv2d(
                    cin,
                    cout,
                    tuple(node["kernel"]),
                    stride=tuple(node["stride"]),
                    padding=(top, left) if sym else 0,
                    dilation=tuple(node["dilation"]),
                    groups=cin if kind == "dwconv" else 1,
                    bias=True,
                )
                act = _act_module(node["act"])
                if act is not None:
                    layers["act"] = act
                module: nn.Module = nn.Sequential(layers)
            elif kind == "add":
                module = _Add(_act_module(node["act"]))
            elif kind == "pad":
                module = nn.ZeroPad2d(tuple(node["padding"]))
            elif kind == "maxpool":
                module = nn.MaxPool2d(
                    tuple(node["kernel"]), tuple(node["stride"]), padding=tuple(node["padding"])
                )
            elif kind == "upsample":
                module = nn.Upsample(
                    scale_factor=tuple(float(s) for s in node["scale"]),
                    mode="bilinear",
                    align_corners=node["align_corners"],
                )
            elif kind == "sigmoid":
                module = nn.Sigmoid()
            elif kind in ("reshape", "concat"):
                module = None
                extra = node.get("permute", False) if kind == "reshape" else node["axis"]
            else:
                raise UnsupportedOpError(f"graph spec node {name!r}: unknown op kind {kind!r}")
            if module is not None:
                self.add_module(name, module)
            self._program.append((kind, name, tuple(node["inputs"]), node["output"], extra))
        self._inputs = tuple(spec["inputs"])
        self._outputs = tuple(o["tensor"] for o in spec["outputs"])

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        env: dict[int, torch.Tensor] = {self._inputs[0]: x}
        for kind, name, inputs, output, extra in self._program:  # static list: fx unrolls it
            args = [env[t] for t in inputs]
            if kind == "add":
                y = getattr(self, name)(args[0], args[1])
            elif kind == "reshape":
                y = args[0].permute(0, 2, 3, 1).flatten(1) if extra else args[0].flatten(1)
            elif kind == "concat":
                y = torch.cat(args, dim=extra)
            else:
                y = getattr(self, name)(args[0])
            env[output] = y
        outs = tuple(env[t] for t in self._outputs)
        return outs[0] if len(outs) == 1 else outs


def prune_spec(spec: GraphSpec, outputs: list[str]) -> GraphSpec:
    """A copy of ``spec`` keeping only the named graph outputs and the nodes they depend on.

    Why: a pose engine needs only the heatmap head; dropping the other heads saves their compute.
    """
    by_name = {o["name"]: o for o in spec["outputs"]}
    missing = [n for n in outputs if n not in by_name]
    if missing:
        raise UnsupportedOpError(
            f"graph {spec.get('source')!r}: no output named {missing}; have {sorted(by_name)}"
        )
    producer = {n["output"]: n for n in spec["nodes"]}
    keep: set[str] = set()
    stack = [by_name[n]["tensor"] for n in outputs]
    while stack:
        node = producer.get(stack.pop())
        if node is not None and node["name"] not in keep:
            keep.add(node["name"])
            stack.extend(node["inputs"])
    return {
        **spec,
        "outputs": [by_name[n] for n in outputs],
        "nodes": [n for n in spec["nodes"] if n["name"] in keep],
    }


def build_module(spec: GraphSpec, *, outputs: list[str] | None = None) -> TFLiteModule:
    """Build the (uninitialised) torch module described by ``spec``; load weights separately.

    ``outputs`` keeps only those graph outputs (see :func:`prune_spec`).
    """
    if spec.get("format") != SPEC_FORMAT:
        raise WeightsError(f"graph spec format {spec.get('format')!r}: expected {SPEC_FORMAT}")
    return TFLiteModule(prune_spec(spec, outputs) if outputs is not None else spec)


class _Reader:
    """Walks one TFLite subgraph: constants, shapes and per-op options."""

    def __init__(self, path: Path) -> None:
        try:
            import tflite  # lazy: only conversion needs the parser
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise WeightsError(
                f"{path}: reading .tflite files needs the 'tflite' package (pip install tflite)"
            ) from exc
        self.tfl = tflite
        self.path = path
        try:
            buf = path.read_bytes()
            if buf[4:8] != b"TFL3":
                raise ValueError("no TFL3 file identifier")
            self.model = tflite.Model.GetRootAsModel(buf, 0)
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable .tflite file ({exc})") from exc
        if self.model.SubgraphsLength() != 1:
            raise UnsupportedOpError(f"{path}: {self.model.SubgraphsLength()} subgraphs, expected 1")
        self.g = self.model.Subgraphs(0)
        self.op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.consts: dict[int, np.ndarray] = {}

    def shape(self, tid: int) -> list[int]:
        t = self.g.Tensors(tid)
        return [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []

    def tensor_name(self, tid: int) -> str:
        return self.g.Tensors(tid).Name().decode()

    def const(self, tid: int) -> np.ndarray | None:
        if tid in self.consts:
            return self.consts[tid]
        t = self.g.Tensors(tid)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        dtype = _NUMPY_DTYPES.get(t.Type())
        if dtype is None:
            raise UnsupportedOpError(f"{self.path}: tensor {self.tensor_name(tid)!r} has type {t.Type()}")
        return data.view(dtype).reshape(self.shape(tid))

    def op_name(self, op: Any) -> str:
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        return self.op_names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "UNKNOWN")

    def options(self, op: Any, cls_name: str) -> Any:
        opts = getattr(self.tfl, cls_name)()
        table = op.BuiltinOptions()
        opts.Init(table.Bytes, table.Pos)
        return opts


def _pick_name(kind: str, tensor_names: list[str], used: set[str], index: int) -> str:
    """A readable, unique module name: the first unused Keras layer name of this op's kind.

    TFLite tensor names are ``;``-joined lists of the TF ops fused into them (``model/conv2d_3/Conv2D``);
    the Keras layer names inside are the readable part. Falls back to ``<kind>_op<index>``.
    """
    pattern = re.compile(_KIND_PATTERNS[kind])
    for full in tensor_names:
        for part in reversed(full.split(";")):
            for cand in part.split("/"):
                cand = _sanitise(cand)
                if pattern.fullmatch(cand) and cand not in used and not hasattr(nn.Module, cand):
                    return cand
    return f"{kind}_op{index}"


def parse_tflite(
    path: str | Path, *, outputs: list[str] | None = None, rename: dict[str, str] | None = None
) -> tuple[GraphSpec, dict[str, torch.Tensor]]:
    """Parse a float TFLite model into a graph spec and an fp32 NCHW ``state_dict``.

    ``outputs`` selects graph outputs by tensor name (default: all, in graph order); ops that no
    selected output depends on are dropped, so e.g. a heatmap-only model skips other heads.
    ``rename`` maps a tensor name to the module name of the op producing it (e.g. a graph output
    ``"Identity_3"`` to ``"heatmap"``); other ops are named from the Keras layer names in the file.
    Raises :class:`UnsupportedOpError` naming the first op that cannot be mapped.
    """
    r = _Reader(Path(path))
    g = r.g
    graph_in = [int(t) for t in g.InputsAsNumpy()]
    graph_out = [int(t) for t in g.OutputsAsNumpy()]
    if len(graph_in) != 1:
        raise UnsupportedOpError(f"{path}: {len(graph_in)} graph inputs, expected 1")
    if outputs is not None:
        by_name = {r.tensor_name(t): t for t in graph_out}
        missing = [n for n in outputs if n not in by_name]
        if missing:
            raise UnsupportedOpError(f"{path}: no graph output named {missing}; have {sorted(by_name)}")
        graph_out = [by_name[n] for n in outputs]

    ops = [g.Operators(i) for i in range(g.OperatorsLength())]
    producer = {int(o): i for i, op in enumerate(ops) for o in op.OutputsAsNumpy()}
    needed: set[int] = set()
    stack = list(graph_out)
    while stack:  # dead-code elimination: keep only ops the selected outputs depend on
        t = stack.pop()
        if t in producer and producer[t] not in needed:
            needed.add(producer[t])
            stack.extend(int(i) for i in ops[producer[t]].InputsAsNumpy() if i >= 0)

    nodes: list[dict[str, Any]] = []
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for idx, op in enumerate(ops):
        if idx not in needed:
            continue
        name = r.op_name(op)
        ins = [int(t) for t in op.InputsAsNumpy()]
        out = int(op.OutputsAsNumpy()[0])
        if name == "DEQUANTIZE":  # fp16 constant -> fp32, resolved at conversion
            value = r.const(ins[0])
            if value is None:
                raise UnsupportedOpError(f"{path}: op {idx} DEQUANTIZE of a non-constant tensor")
            r.consts[out] = value.astype(np.float32)
            continue
        forced = (rename or {}).get(r.tensor_name(out))
        node = _convert_op(r, idx, name, op, ins, out, state, used, forced)
        nodes.append(node)
    outputs_spec = [{"tensor": t, "name": r.tensor_name(t), "shape": r.shape(t)} for t in graph_out]
    spec = {
        "format": SPEC_FORMAT,
        "source": Path(path).name,
        "inputs": graph_in,
        "input_shape": r.shape(graph_in[0]),
        "outputs": outputs_spec,
        "nodes": nodes,
    }
    logger.debug("converted %s: %d nodes, %d tensors of weights", path, len(nodes), len(state))
    return spec, state


def _convert_op(
    r: _Reader,
    idx: int,
    name: str,
    op: Any,
    ins: list[int],
    out: int,
    state: dict[str, torch.Tensor],
    used: set[str],
    forced: str | None,
) -> dict[str, Any]:
    """Map one TFLite op to a spec node (and its weights into ``state``)."""
    where = f"{r.path}: op {idx} {name}"
    names = [r.tensor_name(out)] + [r.tensor_name(t) for t in ins[1:2]]
    in_shape = r.shape(ins[0])
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        kind = "conv" if name == "CONV_2D" else "dwconv"
        o = r.options(op, "Conv2DOptions" if kind == "conv" else "DepthwiseConv2DOptions")
        w, b = r.const(ins[1]), r.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
        if w is None or w.dtype != np.float32:
            raise UnsupportedOpError(f"{where}: weights are not a float constant (quantized model?)")
        if kind == "conv":  # [O, KH, KW, I] -> [O, I, KH, KW]
            weight = w.transpose(0, 3, 1, 2)
        else:  # [1, KH, KW, C*M] -> [C*M, 1, KH, KW]
            if o.DepthMultiplier() not in (1, w.shape[3] // in_shape[3]) or w.shape[3] != in_shape[3]:
                raise UnsupportedOpError(f"{where}: depth multiplier {o.DepthMultiplier()} unsupported")
            weight = w.transpose(3, 0, 1, 2)
        act = _ACTIVATIONS.get(o.FusedActivationFunction(), "?")
        if act == "?":
            raise UnsupportedOpError(f"{where}: fused activation {o.FusedActivationFunction()} unsupported")
        kh, kw = weight.shape[2:]
        stride, dil = [o.StrideH(), o.StrideW()], [o.DilationHFactor(), o.DilationWFactor()]
        if o.Padding() == r.tfl.Padding.SAME:
            top, bottom = _same_padding(in_shape[1], kh, stride[0], dil[0])
            left, right = _same_padding(in_shape[2], kw, stride[1], dil[1])
        else:
            top = bottom = left = right = 0
        node_name = forced or _pick_name(kind, names, used, idx)
        state[f"{node_name}.conv.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        bias = b if b is not None else np.zeros(weight.shape[0], np.float32)
        state[f"{node_name}.conv.bias"] = torch.from_numpy(np.ascontiguousarray(bias, np.float32))
        node = {
            "op": kind,
            "in_channels": in_shape[3],
            "out_channels": int(weight.shape[0]),
            "kernel": [int(kh), int(kw)],
            "stride": stride,
            "dilation": dil,
            "padding": [left, right, top, bottom],
            "act": act,
        }
    elif name == "ADD":
        act = _ACTIVATIONS.get(r.options(op, "AddOptions").FusedActivationFunction(), "?")
        if act == "?" or r.shape(ins[0]) != r.shape(ins[1]):
            raise UnsupportedOpError(f"{where}: broadcasting or this fused activation is unsupported")
        kind, node = "add", {"op": "add", "act": act}
    elif name == "PAD":
        p = r.const(ins[1])
        if p is None or p[0].any() or p[3].any():
            raise UnsupportedOpError(f"{where}: only constant spatial padding is supported")
        kind, node = "pad", {"op": "pad", "padding": [int(p[2, 0]), int(p[2, 1]), int(p[1, 0]), int(p[1, 1])]}
    elif name == "MAX_POOL_2D":
        o = r.options(op, "Pool2DOptions")
        k, s = [o.FilterHeight(), o.FilterWidth()], [o.StrideH(), o.StrideW()]
        pads = [(0, 0), (0, 0)]
        if o.Padding() == r.tfl.Padding.SAME:
            pads = [_same_padding(in_shape[1], k[0], s[0]), _same_padding(in_shape[2], k[1], s[1])]
        if any(a != b for a, b in pads) or o.FusedActivationFunction() != 0:
            raise UnsupportedOpError(f"{where}: asymmetric SAME padding or fused activation unsupported")
        kind, node = (
            "maxpool",
            {"op": "maxpool", "kernel": k, "stride": s, "padding": [pads[0][0], pads[1][0]]},
        )
    elif name == "RESIZE_BILINEAR":
        o = r.options(op, "ResizeBilinearOptions")
        if not (o.AlignCorners() or o.HalfPixelCenters()):
            raise UnsupportedOpError(f"{where}: legacy resize (no half-pixel centers) has no torch equal")
        oh, ow = r.shape(out)[1:3]
        kind, node = (
            "upsample",
            {
                "op": "upsample",
                "scale": [oh / in_shape[1], ow / in_shape[2]],
                "align_corners": bool(o.AlignCorners()),
            },
        )
    elif name == "LOGISTIC":
        kind, node = "sigmoid", {"op": "sigmoid"}
    elif name == "RESHAPE":
        out_shape = r.shape(out)
        if len(out_shape) != 2 or len(in_shape) != 4:
            raise UnsupportedOpError(f"{where}: only flattening NHWC to [N, K] is supported")
        permute = not (in_shape[1] == in_shape[2] == 1 or in_shape[3] == 1)
        kind, node = "reshape", {"op": "reshape", "permute": permute}
        ins = ins[:1]
    elif name == "CONCATENATION":
        o = r.options(op, "ConcatenationOptions")
        rank = len(in_shape)
        axis = o.Axis() % rank
        nchw_axis = {0: 0, 1: 2, 2: 3, 3: 1}[axis] if rank == 4 else axis
        if o.FusedActivationFunction() != 0:
            raise UnsupportedOpError(f"{where}: fused activation on concatenation unsupported")
        kind, node = "concat", {"op": "concat", "axis": nchw_axis}
    else:
        raise UnsupportedOpError(f"{where}: op not supported by the TFLite converter")
    if kind not in ("conv", "dwconv"):
        node_name = forced or _pick_name(kind, names, used, idx)
    if node_name in used or hasattr(nn.Module, node_name):
        raise UnsupportedOpError(f"{where}: module name {node_name!r} is taken")
    if kind not in ("add", "concat"):
        ins = ins[:1]
    used.add(node_name)
    node.update(name=node_name, inputs=ins, output=out, tflite_index=idx)
    return node


def convert_tflite(
    path: str | Path, *, outputs: list[str] | None = None, rename: dict[str, str] | None = None
) -> TFLiteModule:
    """Parse ``path`` and return the converted module in eval mode (see :func:`parse_tflite`)."""
    spec, state = parse_tflite(path, outputs=outputs, rename=rename)
    model = build_module(spec)
    model.load_state_dict(state, strict=True)
    return model.eval()
