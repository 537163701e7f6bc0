"""Every architecture traces with torch.fx (the delta engine rewrites the traced graph)."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.fx

from deltatune_models import create_model, list_models, model_info


@pytest.mark.parametrize("name", ["hrnet_tiny", "pose_resnet_tiny", "mobilenet_v2"])
def test_traced_graph_computes_what_the_model_computes(name):
    torch.manual_seed(0)
    model = create_model(name, weights=None)
    size = model_info(name).input_size
    if name == "mobilenet_v2":
        size = (96, 96)  # any multiple of 32 works; smaller is faster
    gm = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in list_models() if n.startswith(("hrnet", "pose_resnet"))])
def test_full_size_models_trace(name):
    with torch.device("meta"):
        model = create_model(name, weights=None)
    gm = torch.fx.symbolic_trace(model)
    ops = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    # residual and fusion sums are plain additions the engine can find
    assert operator.add in ops
    assert sum(1 for n in gm.graph.nodes if n.op == "call_module") > 100


def test_hrnet_fusion_upsamples_are_modules_the_engine_can_see():
    gm = torch.fx.symbolic_trace(create_model("hrnet_tiny", weights=None))
    ups = [
        n
        for n in gm.graph.nodes
        if n.op == "call_module" and isinstance(gm.get_submodule(n.target), torch.nn.Upsample)
    ]
    # stage2: 1 (branch 1 -> 0); stage3: 3; stage4 (single output): 3
    assert len(ups) == 1 + 3 + 3
