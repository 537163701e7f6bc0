"""DeltaCNN README's threshold loop: front to back, double each threshold until the budget is exceeded.

The README (github.com/facebookresearch/DeltaCNN) suggests starting every threshold at a small value
("some random number"), doubling a layer's threshold until accuracy drops below the target, keeping the
last good value, then moving to the next layer. Here the start is the space's ``lo`` (``input_lo`` for the
input) and the target is the whole budget at every step.
"""

from __future__ import annotations

from deltatune.search.strategies._greedy import GreedyStrategy

__all__ = ["DeltaCNNGreedyStrategy"]


class DeltaCNNGreedyStrategy(GreedyStrategy):
    """Greedy ×2 per layer, whole budget at every layer (sequential: one worker)."""

    name = "deltacnn-greedy"
    description = "DeltaCNN README loop: per layer front to back, threshold x2 while within budget"
    factor = 2.0
