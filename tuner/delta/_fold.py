"""Folding BatchNorm into the preceding convolution of a traced graph (inference only)."""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

__all__ = ["fold_batchnorm"]


def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> nn.Module:
    fused = copy.deepcopy(conv)
    assert bn.running_var is not None and bn.running_mean is not None
    scale = (bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)) / torch.sqrt(
        bn.running_var + bn.eps
    )
    shift = (bn.bias if bn.bias is not None else torch.zeros_like(bn.running_var)) - bn.running_mean * scale
    with torch.no_grad():
        w = fused.weight
        if isinstance(conv, nn.ConvTranspose2d):
            g = conv.groups
            w4 = w.reshape(g, w.shape[0] // g, w.shape[1], *w.shape[2:])
            w4.mul_(scale.reshape(g, 1, -1, 1, 1))
            fused.weight.copy_(w4.reshape(w.shape))
        else:
            w.mul_(scale.reshape(-1, 1, 1, 1))
        old_bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
        new_bias = old_bias * scale + shift
        fused.bias = nn.Parameter(new_bias.detach().clone())
    return fused


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every eval-mode BatchNorm2d that directly follows a conv used once into that conv.

    Returns the same GraphModule, modified: the conv module is replaced by a fused copy and the
    BatchNorm node is removed. BatchNorms that cannot be folded stay (the engine runs them as an
    affine op: scale every frame, shift on frame 0).
    """
    modules = dict(gm.named_modules())
    call_counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            call_counts[node.target] = call_counts.get(node.target, 0) + 1
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(str(node.target)), nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        prev_name = str(prev.target)
        conv = modules.get(prev_name)
        if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) or call_counts.get(prev_name, 0) != 1:
            continue
        bn = modules[str(node.target)]
        assert isinstance(bn, nn.BatchNorm2d)
        if bn.running_mean is None or call_counts.get(str(node.target), 0) != 1:
            continue
        fused = _fold_into(conv, bn)
        parent_name, _, attr = prev_name.rpartition(".")
        parent = gm.get_submodule(parent_name) if parent_name else gm
        setattr(parent, attr, fused)
        modules[prev.target] = fused
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm
