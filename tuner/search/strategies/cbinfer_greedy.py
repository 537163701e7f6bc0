"""CBinfer's greedy loop (Cavigelli et al., 2017): grow each layer's threshold by ×1.2, front to back, under
a per-layer tolerance.

CBinfer tunes change-detection thresholds layer by layer, each layer allowed a share of the total accuracy
loss. Here layer ``i`` of ``L`` may bring the cumulative loss up to ``budget · (i + 1) / L``, so the last
layer ends exactly at the budget and early layers cannot spend it all.
"""

from __future__ import annotations

from deltatune.search.strategies._greedy import GreedyStrategy

__all__ = ["CBinferGreedyStrategy"]


class CBinferGreedyStrategy(GreedyStrategy):
    """Greedy ×1.2 per layer with a linearly growing per-layer tolerance (sequential: one worker)."""

    name = "cbinfer-greedy"
    description = "CBinfer loop: per layer front to back, threshold x1.2 within a per-layer tolerance"
    factor = 1.2

    def allowance(self, index: int) -> float:
        return self.budget * (index + 1) / len(self.names)
