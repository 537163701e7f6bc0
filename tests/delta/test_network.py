"""DeltaNetwork's execution paths: direct op calls when nothing watches them, hooked calls otherwise."""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten

from deltatune.delta import convert
from deltatune.delta.linear import ConvOp
from tests.delta.nets import AllOps, moving_square_clip, randomize_bn


def _net(backend: str = "sparse"):
    model = randomize_bn(AllOps()).eval()
    return convert(model, thresholds=0.05, backend=backend)


def test_direct_calls_equal_hooked_calls_and_hooks_see_every_call() -> None:
    clip = list(moving_square_clip(6))
    net = _net()
    with torch.no_grad():
        direct = net.run_stream(clip)
        assert net._direct is not None  # no hook: the direct graph ran
        calls = []
        conv = next(op for op in net.ops if isinstance(op, ConvOp))
        handle = conv.register_forward_hook(lambda m, i, o: calls.append(m.name))
        hooked = net.run_stream(clip)
        handle.remove()
    assert calls == [conv.name] * len(clip)  # the hooked path calls every op through its module
    graph_calls = []
    with torch.no_grad():
        handle = net.graph_module.register_forward_hook(lambda *_: graph_calls.append(1))
        net.run_stream(clip)
        handle.remove()
    assert len(graph_calls) == len(clip)  # a hook on the graph module sees every graph run
    flat_direct, flat_hooked = tree_flatten(direct)[0], tree_flatten(hooked)[0]
    assert len(flat_direct) == len(flat_hooked) > len(clip)
    for a, b in zip(flat_direct, flat_hooked, strict=True):
        assert torch.equal(a, b)


def test_direct_graph_follows_the_network_to_another_dtype() -> None:
    clip = list(moving_square_clip(4))
    net = _net("reference")
    with torch.no_grad():
        net.run_stream(clip)
        first = net._direct
        net.double()
        assert net._direct is None  # rebuilt on use: it refers to the graph's constants
        out = net.run_stream([f.double() for f in clip])
    assert net._direct is not None and net._direct is not first
    assert all(t.dtype == torch.float64 for t in tree_flatten(out[-1])[0])
