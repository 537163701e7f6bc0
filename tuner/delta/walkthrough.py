"""A step-by-step trace of a tiny delta network, for people who have not read the paper.

:func:`walkthrough` runs a three-layer network (conv -> ReLU -> 1x1 conv) on a few 5x5 frames and
returns, per frame and per layer, what happened: the input change and which pixels passed the input
threshold, which conv outputs were updated, the ReLU's residual buffer, which pixels fired and which
were held back, and the delta output next to the dense output. ``deltatune explain`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from deltatune.delta.convert import convert

__all__ = ["WalkthroughFrame", "walkthrough", "tiny_network", "example_frames"]


def tiny_network() -> nn.Module:
    """conv 3x3 (1 -> 2 channels: a blur and a centre-surround) -> ReLU -> conv 1x1 (2 -> 1)."""
    conv1 = nn.Conv2d(1, 2, 3, padding=1)
    conv2 = nn.Conv2d(2, 1, 1)
    assert conv1.bias is not None and conv2.bias is not None
    with torch.no_grad():
        conv1.weight[0, 0] = torch.full((3, 3), 1 / 9)
        conv1.weight[1, 0] = torch.tensor([[0.0, -0.25, 0.0], [-0.25, 1.0, -0.25], [0.0, -0.25, 0.0]])
        conv1.bias.copy_(torch.tensor([0.0, -0.1]))
        conv2.weight.copy_(torch.tensor([[[[1.0]], [[1.0]]]]))
        conv2.bias.zero_()
    return nn.Sequential(conv1, nn.ReLU(), conv2).eval()


def example_frames() -> list[Tensor]:
    """Frame 0: flat grey. Frame 1: a bright spot appears (big change). Frame 2: a faint change
    elsewhere (held back at the ReLU; its small blur tips a pixel held back in frame 1 over the threshold).
    Frame 3: the faint change grows (its residual now fires)."""
    f0 = torch.full((1, 1, 5, 5), 0.2)
    f1 = f0.clone()
    f1[0, 0, 1, 3] = 1.0
    f2 = f1.clone()
    f2[0, 0, 3, 1] = 0.32
    f3 = f2.clone()
    f3[0, 0, 3, 1] = 0.44
    return [f0, f1, f2, f3]


@dataclass
class WalkthroughFrame:
    """Everything the ops logged for one frame, plus the dense reference output."""

    index: int
    frame: Tensor
    steps: list[dict[str, Any]] = field(default_factory=list)
    output: Tensor | None = None
    dense_output: Tensor | None = None


def walkthrough(*, input_threshold: float = 0.05, relu_threshold: float = 0.1) -> list[WalkthroughFrame]:
    """Run :func:`tiny_network` as a delta network on :func:`example_frames`, logging every step."""
    model = tiny_network()
    net = convert(model, thresholds={"input": input_threshold, "1": relu_threshold})
    log = net.log_steps()
    assert log is not None
    out: list[WalkthroughFrame] = []
    with torch.no_grad():
        for i, frame in enumerate(example_frames()):
            log.clear()
            y = net(frame)
            wf = WalkthroughFrame(i, frame, [dict(e) for e in log], y, model(frame))
            out.append(wf)
    return out
