"""A conv -> ReLU example computed by hand against docs/design.md#delta-semantics.

Input: one channel, one row of 5 pixels. Conv: kernel (1, 3), padding (0, 1), weights [1, 1, 1]
(each output = sum of itself and its two neighbours), bias -1. ReLU threshold 0.5, input threshold 0.
"""

from __future__ import annotations

import torch
from torch import nn

from deltatune.delta import convert


def row(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float32).reshape(1, 1, 1, -1)


def make_net():
    conv = nn.Conv2d(1, 1, (1, 3), padding=(0, 1))
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(-1.0)
    model = nn.Sequential(conv, nn.ReLU())
    net = convert(model, thresholds={"input": 0.0, "1": 0.5})
    return net, model


def relu_op(net):
    (op,) = [o for o in net.ops if o.name == "1"]
    return op


def steps_of(log, name):
    return [e for e in log if e["name"] == name]


def test_conv_relu_by_hand() -> None:
    net, model = make_net()
    log = net.log_steps()
    relu = relu_op(net)
    with torch.no_grad():
        # frame 0: dense. conv = [-1]*5 -> relu = 0. a = conv output, r = 0
        y0 = net(row(0, 0, 0, 0, 0))
        assert torch.equal(y0, row(0, 0, 0, 0, 0))
        assert torch.equal(relu.a, row(-1, -1, -1, -1, -1))
        assert torch.equal(relu.r, row(0, 0, 0, 0, 0))

        # frame 1: pixel 2 changes by +1 -> input mask [F,F,T,F,F], conv delta [0,1,1,1,0] on pixels 1..3.
        # ReLU: r = [0,1,1,1,0], s = a + r = [-1,0,0,0,-1], d = relu(s) - relu(a) = 0 -> nothing fires.
        log.clear()
        y1 = net(row(0, 0, 1, 0, 0))
        (inp,) = steps_of(log, "input")
        assert inp["mask"].flatten().tolist() == [False, False, True, False, False]
        (cv,) = steps_of(log, "0")
        assert cv["updated_out"].flatten().tolist() == [False, True, True, True, False]
        assert torch.equal(cv["delta_out"], row(0, 1, 1, 1, 0))
        (st,) = steps_of(log, "1")
        assert st["updated"].flatten().tolist() == [False, True, True, True, False]
        assert st["fire"].flatten().tolist() == [False] * 5
        assert torch.equal(st["emitted"], row(0, 0, 0, 0, 0))
        assert torch.equal(relu.a, row(-1, -1, -1, -1, -1))
        assert torch.equal(relu.r, row(0, 1, 1, 1, 0))
        assert torch.equal(y1, row(0, 0, 0, 0, 0))  # dense is also 0 here: relu([-1,0,0,0,-1])

        # frame 2: pixel 2 -> 1.25 (+0.25). r = [0,1.25,1.25,1.25,0], s = [-1,.25,.25,.25,-1],
        # d = [0,.25,.25,.25,0] <= 0.5: held back (emitted 0, r kept). Output lags dense by 0.25.
        log.clear()
        y2 = net(row(0, 0, 1.25, 0, 0))
        (st,) = steps_of(log, "1")
        assert st["fire"].flatten().tolist() == [False] * 5
        assert torch.allclose(st["d"], row(0, 0.25, 0.25, 0.25, 0))
        assert torch.equal(relu.r, row(0, 1.25, 1.25, 1.25, 0))
        assert torch.equal(relu.a, row(-1, -1, -1, -1, -1))
        assert torch.equal(y2, row(0, 0, 0, 0, 0))
        assert torch.allclose(model(row(0, 0, 1.25, 0, 0)), row(0, 0.25, 0.25, 0.25, 0))

        # frame 3: pixel 2 -> 2 (+0.75). r = [0,2,2,2,0], s = [-1,1,1,1,-1], d = [0,1,1,1,0] > 0.5:
        # pixels 1..3 fire, emit d, a = s there, r = 0. Output catches up with dense exactly.
        log.clear()
        y3 = net(row(0, 0, 2, 0, 0))
        (st,) = steps_of(log, "1")
        assert st["fire"].flatten().tolist() == [False, True, True, True, False]
        assert torch.equal(st["emitted"], row(0, 1, 1, 1, 0))
        assert torch.equal(relu.a, row(-1, 1, 1, 1, -1))
        assert torch.equal(relu.r, row(0, 0, 0, 0, 0))
        assert torch.equal(y3, row(0, 1, 1, 1, 0))
        assert torch.equal(y3, model(row(0, 0, 2, 0, 0)))


def test_drop_mode_loses_the_held_back_change() -> None:
    """accumulate=False zeroes the residual of a change that did not fire (the ablation)."""
    net, model = make_net()
    net.accumulate = False
    relu = relu_op(net)
    with torch.no_grad():
        net(row(0, 0, 0, 0, 0))
        net(row(0, 0, 1.25, 0, 0))  # +1.25: s = [-1,.25,.25,.25,-1], d = .25 -> dropped, r = 0
        assert torch.equal(relu.r, row(0, 0, 0, 0, 0))
        y = net(row(0, 0, 2, 0, 0))  # +0.75 only: s = [-1,-.25,-.25,-.25,-1] -> d = 0, nothing fires
    assert torch.equal(y, row(0, 0, 0, 0, 0))
    assert not torch.equal(y, model(row(0, 0, 2, 0, 0)))
