"""``load_workload``: random weights are reproducible from their seed and leave the caller's RNG alone."""

from __future__ import annotations

import torch

from deltatune.workload import load_workload


def test_random_weights_come_from_the_seed_not_the_global_rng() -> None:
    torch.manual_seed(123)
    untouched = torch.rand(3)
    torch.manual_seed(123)
    a = load_workload("hrnet_tiny", weights=None, frames=2)
    assert torch.equal(torch.rand(3), untouched)  # building the model did not move the caller's stream
    torch.manual_seed(123)
    torch.rand(5)  # a different global state: the weights must not depend on it
    b = load_workload("hrnet_tiny", weights=None, frames=2)
    c = load_workload("hrnet_tiny", weights=None, frames=2, seed=1)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    assert a.random_weights and a.weights == "random"
