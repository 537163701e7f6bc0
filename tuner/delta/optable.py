"""Which torch operations the converter understands, and as what.

Each supported op falls in one class: a *compute* layer (conv, transposed conv, linear: counted in
MACs), a *pointwise non-linearity* (a truncation point with accumulation buffers), a *non-pointwise
non-linearity* (max pooling: a truncation point with input/output buffers), a *structural linear op*
(applied to deltas as is), or a *shape query*. Anything else is unsupported (a clear error naming the
op and its module path) unless the dense fallback is enabled.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "POINTWISE_MODULES",
    "POINTWISE_FUNCTIONS",
    "POINTWISE_METHODS",
    "POOL_MODULES",
    "POOL_FUNCTIONS",
    "TRUNCATION_KINDS",
    "STRUCTURAL_MODULES",
    "STRUCTURAL_FUNCTIONS",
    "STRUCTURAL_METHODS",
    "META_FUNCTIONS",
    "META_METHODS",
    "ADD_FUNCTIONS",
    "SUB_FUNCTIONS",
    "ADD_METHODS",
    "CAT_FUNCTIONS",
    "MUL_FUNCTIONS",
    "DIV_FUNCTIONS",
    "INTERP_MODES",
]

#: Pointwise non-linear modules -> kind name used in threshold mappings.
POINTWISE_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.LeakyReLU: "leaky_relu",
    nn.Hardswish: "hardswish",
    nn.SiLU: "silu",
    nn.Sigmoid: "sigmoid",
    nn.Hardsigmoid: "hardsigmoid",
    nn.Tanh: "tanh",
    nn.GELU: "gelu",
    nn.ELU: "elu",
    nn.Hardtanh: "hardtanh",
    nn.Mish: "mish",
    nn.Softplus: "softplus",
    nn.PReLU: "prelu",
}

POINTWISE_FUNCTIONS: dict[object, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.relu6: "relu6",
    F.leaky_relu: "leaky_relu",
    F.hardswish: "hardswish",
    F.silu: "silu",
    F.sigmoid: "sigmoid",
    torch.sigmoid: "sigmoid",
    F.hardsigmoid: "hardsigmoid",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    F.gelu: "gelu",
    F.elu: "elu",
    F.hardtanh: "hardtanh",
    F.mish: "mish",
    F.softplus: "softplus",
    torch.clamp: "clamp",
}

POINTWISE_METHODS: dict[str, str] = {
    "relu": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "clamp": "clamp",
    "clip": "clamp",
}
# the in-place forms (x.relu_()) compute the same; the converter applies the plain method (never to its
# own buffers in place) and refuses an in-place call whose input is read again after it
POINTWISE_METHODS |= {f"{name}_": kind for name, kind in POINTWISE_METHODS.items()}

POOL_MODULES: dict[type[nn.Module], str] = {
    nn.MaxPool2d: "maxpool",
    nn.AdaptiveMaxPool2d: "maxpool",
}

POOL_FUNCTIONS: dict[object, str] = {
    F.max_pool2d: "maxpool",
    F.adaptive_max_pool2d: "maxpool",
}

#: Every kind a truncation point can have: the keys of ``ThresholdMap.by_kind`` (``fallback``: an op run
#: densely by ``convert(..., fallback=True)``).
TRUNCATION_KINDS: frozenset[str] = frozenset(
    {"input", "fallback"}
    | set(POINTWISE_MODULES.values())
    | set(POINTWISE_FUNCTIONS.values())
    | set(POINTWISE_METHODS.values())
    | set(POOL_MODULES.values())
    | set(POOL_FUNCTIONS.values())
)

#: Linear modules with no constant term (applied to deltas as they are).
STRUCTURAL_MODULES: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.Flatten,
    nn.Unflatten,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Upsample,
    nn.UpsamplingNearest2d,
    nn.UpsamplingBilinear2d,
    nn.ReflectionPad2d,
    nn.ReplicationPad2d,
    nn.ZeroPad2d,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.ChannelShuffle,
)

STRUCTURAL_FUNCTIONS: dict[object, str] = {
    torch.flatten: "flatten",
    torch.reshape: "reshape",
    F.avg_pool2d: "avgpool",
    F.adaptive_avg_pool2d: "avgpool",
    F.interpolate: "upsample",
    F.upsample: "upsample",
    F.dropout: "dropout",
    torch.squeeze: "reshape",
    torch.unsqueeze: "reshape",
    torch.transpose: "reshape",
    torch.permute: "reshape",
    F.pixel_shuffle: "reshape",
    F.pixel_unshuffle: "reshape",
    torch.pixel_shuffle: "reshape",
    torch.pixel_unshuffle: "reshape",
    torch.channel_shuffle: "reshape",
    torch.chunk: "split",
    torch.split: "split",
    torch.mean: "mean",
    torch.sum: "sum",
    operator.getitem: "getitem",
    operator.neg: "neg",
    torch.neg: "neg",
}

STRUCTURAL_METHODS: dict[str, str] = {
    "view": "reshape",
    "reshape": "reshape",
    "flatten": "flatten",
    "contiguous": "reshape",
    "permute": "reshape",
    "transpose": "reshape",
    "squeeze": "reshape",
    "unsqueeze": "reshape",
    "chunk": "split",
    "split": "split",
    "mean": "mean",
    "sum": "sum",
    "clone": "reshape",
    "float": "reshape",
    "neg": "neg",
    "__getitem__": "getitem",
    "expand": "reshape",
    "expand_as": "reshape",
    "repeat": "reshape",
}

META_FUNCTIONS: tuple[object, ...] = (getattr, len)
META_METHODS: tuple[str, ...] = ("size", "dim", "numel", "type", "get_device")

ADD_FUNCTIONS: tuple[object, ...] = (operator.add, operator.iadd, torch.add)
SUB_FUNCTIONS: tuple[object, ...] = (operator.sub, operator.isub, torch.sub)
ADD_METHODS: dict[str, bool] = {"add": False, "add_": False, "sub": True, "sub_": True}
CAT_FUNCTIONS: tuple[object, ...] = (torch.cat, torch.concat, torch.concatenate)
MUL_FUNCTIONS: tuple[object, ...] = (operator.mul, operator.imul, torch.mul)
DIV_FUNCTIONS: tuple[object, ...] = (operator.truediv, operator.itruediv, torch.div)

#: Interpolation modes that are linear with non-negative weights (masks stay exact).
INTERP_MODES: tuple[str, ...] = ("nearest", "bilinear", "linear", "nearest-exact", "area")
