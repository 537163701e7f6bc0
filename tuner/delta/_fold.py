"""Graph rewrites before conversion (inference only): BatchNorm folded into the preceding convolution,
and a symmetric zero pad folded into the padding of the convolutions that read it."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils import parametrize

__all__ = ["fold_batchnorm", "fold_zero_pads", "has_forward_hooks", "materialize_weights"]


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


def materialize_weights(model: nn.Module) -> nn.Module:
    """Replace every weight reparametrization in ``model`` (an eval-mode working copy) by the plain
    tensor it computes now: torch parametrizations (``parametrizations.weight_norm``/``spectral_norm``)
    and the older pre-hook forms (``nn.utils.weight_norm``/``spectral_norm``).

    Why: such a ``weight`` is recomputed at every access, so folding a BatchNorm into it scaled a
    temporary and lost the scale while the bias was folded (0.06 off from frame 0, silently); the older
    forms are forward pre-hooks, which the delta ops would skip. In eval mode both compute a fixed
    tensor (spectral norm runs no power iteration), so the plain copy is the same layer. Returns
    ``model``, modified."""
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    for qualified, m in list(model.named_modules()):
        if parametrize.is_parametrized(m):
            plain = _plain_copy(m)
            if not qualified:
                model = plain
            else:
                parent, _, attr = qualified.rpartition(".")
                setattr(model.get_submodule(parent), attr, plain)
            m = plain
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, WeightNorm):
                nn.utils.remove_weight_norm(m, hook.name)
            elif isinstance(hook, SpectralNorm):
                nn.utils.remove_spectral_norm(m, hook.name)
    return model


def _plain_copy(m: nn.Module) -> nn.Module:
    """``m`` (a parametrized layer) as an instance of its own class whose parametrized tensors are plain
    parameters holding their current values. Not ``parametrize.remove_parametrizations``: that deletes
    the tensor's property from the dynamic class, which a deep copy shares with the original model
    (whose ``weight`` then vanished)."""
    values = {name: getattr(m, name).detach().clone() for name in m.parametrizations}  # type: ignore[union-attr]
    cls = type(m).__bases__[0]  # parametrize puts a class of its own on top of the layer's
    plain: nn.Module = object.__new__(cls)
    plain.__dict__.update(m.__dict__)
    plain._modules = {k: v for k, v in m._modules.items() if k != "parametrizations"}
    plain._parameters = dict(m._parameters)
    for name, value in values.items():
        plain._parameters[name] = nn.Parameter(value, requires_grad=False)
    return plain


def has_forward_hooks(m: nn.Module) -> bool:
    """Whether calling ``m`` runs a forward hook or pre-hook of its own (one that can change what it
    takes or returns). Such a layer is neither folded nor merged: the hook belongs to it as it is."""
    return bool(m._forward_hooks or m._forward_pre_hooks)


def _module_calls(gm: fx.GraphModule) -> dict[str, int]:
    """How many ``call_module`` nodes call each module (a module called twice cannot be rewritten for
    one of its calls)."""
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            counts[str(node.target)] = counts.get(str(node.target), 0) + 1
    return counts


def _replace_module(gm: fx.GraphModule, modules: dict[str, nn.Module], target: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule ``target`` was, in ``gm`` and in the name -> module map."""
    parent_name, _, attr = target.rpartition(".")
    setattr(gm.get_submodule(parent_name) if parent_name else gm, attr, new)
    modules[target] = new


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every eval-mode BatchNorm2d that directly follows a conv used once into that conv.

    Returns the same GraphModule, modified: the conv module is replaced by a fused copy and the
    BatchNorm node is removed. BatchNorms that cannot be folded stay (the engine runs them as an
    affine op: scale every frame, shift on frame 0).
    """
    modules = dict(gm.named_modules())
    call_counts = _module_calls(gm)
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
        if has_forward_hooks(conv) or has_forward_hooks(bn) or parametrize.is_parametrized(conv):
            continue  # a parametrized weight is recomputed at each access: scaling it in place is lost
        _replace_module(gm, modules, prev_name, _fold_into(conv, bn))
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


def _symmetric_zero_pad(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[int, int] | None:
    """``(top, left)`` when ``node`` pads the last two dims of a 4-D map with zeros, the same on both
    sides of each (``nn.ZeroPad2d``, ``nn.ConstantPad2d(.., 0)`` or ``F.pad(x, (l, r, t, b))``), else
    None."""
    pad: tuple[Any, ...]
    if node.op == "call_module":
        m = modules.get(str(node.target))
        if type(m) is nn.ZeroPad2d or (type(m) is nn.ConstantPad2d and m.value == 0.0):
            pad = tuple(m.padding)
        else:
            return None
    elif node.op == "call_function" and node.target is F.pad:
        given = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
        mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
        value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value", None)
        if mode != "constant" or value not in (None, 0, 0.0) or not isinstance(given, (tuple, list)):
            return None
        pad = tuple(given)
    else:
        return None
    if len(pad) != 4 or not all(isinstance(v, int) for v in pad):
        return None
    left, right, top, bottom = pad
    if left != right or top != bottom or min(pad) < 0:
        return None
    return top, left


def fold_zero_pads(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold a symmetric zero pad whose every reader is an unpadded, zero-padding-mode ``nn.Conv2d`` used
    once into those convs' ``padding``, and remove the pad.

    Why: a delta network would otherwise copy the whole delta map into a larger one every frame (the pad
    moves every value, updated or not), where the conv kernels treat taps outside the map as zeros for
    free. TFLite graphs (BlazePose) pad explicitly before their stride-2 VALID convs. The result is the
    same conv: ``conv(pad(x), padding=0) == conv(x, padding=p)`` for a zero pad. Returns ``gm``, modified.
    """
    modules = dict(gm.named_modules())
    call_counts = _module_calls(gm)
    for node in list(gm.graph.nodes):
        pad = _symmetric_zero_pad(node, modules)
        if pad is None or not node.users or not isinstance(node.args[0], fx.Node):
            continue
        if node.op == "call_module" and has_forward_hooks(modules[str(node.target)]):
            continue
        convs = []
        for user in node.users:
            conv = modules.get(str(user.target)) if user.op == "call_module" else None
            if (
                type(conv) is not nn.Conv2d
                or has_forward_hooks(conv)
                or call_counts.get(str(user.target), 0) != 1
                or user.args[:1] != (node,)
                or conv.padding_mode != "zeros"
                or isinstance(conv.padding, str)
                or tuple(conv.padding) != (0, 0)
            ):
                break
            convs.append((user, conv))
        else:
            for user, conv in convs:
                padded = copy.deepcopy(conv)
                padded.padding = pad
                _replace_module(gm, modules, str(user.target), padded)
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm
