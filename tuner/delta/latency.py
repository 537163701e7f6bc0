"""A latency model: predicted delta ms/frame of a threshold configuration, without timing it.

The prediction has three parts, each from something that does not need a timed run:

* **convs**: for every conv call site, the calibrated cost of the choice the sparse backend makes at
  its measured updated-output fraction (:meth:`LayerCalibration.predict_ms`: 0 when nothing is
  updated, the sparse line below the break-even point, the dense time above it);
* **elementwise work**: truncation points touch ``C x`` (updated pixels when the gathered step runs,
  else all pixels) elements per frame; cost = ``per_element_ms`` times that count;
* **a fixed per-frame cost** (Python dispatch of every op, mask bookkeeping): ``base_ms``.

``per_element_ms``, ``base_ms`` and a scale on the conv part are fitted once per model on a few
measured configurations (:meth:`LatencyModel.fit`); afterwards a configuration's latency follows from
one untimed run that records active fractions (:func:`features`), so a search can use it as a cheap,
noise-free objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from deltatune.delta._gather import GATHER_MAX_FRACTION

__all__ = ["LatencyFeatures", "LatencyModel", "features"]


@dataclass(frozen=True)
class LatencyFeatures:
    """What a configuration does per frame, from one recorded (untimed) run."""

    conv_ms: float  # calibrated conv cost per frame
    elements: float  # elementwise elements touched per frame at truncation points
    frames: int

    def vector(self) -> list[float]:
        return [self.conv_ms, self.elements, 1.0]


def features(net: Any, frames: Tensor | Sequence[Tensor]) -> LatencyFeatures:
    """Run ``frames`` (frame 0 dense, then deltas) through ``net`` (a DeltaNetwork on the sparse backend),
    recording active fractions, and return the per-frame :class:`LatencyFeatures`. Not timed."""
    from deltatune.delta.sparse import SparseBackend
    from deltatune.delta.truncation import PointwiseTruncation

    backend = net._ctx.backend
    if not isinstance(backend, SparseBackend):
        raise TypeError("the latency model needs a network converted with the sparse backend")
    channels: dict[str, int] = {}
    hooks = []
    for op in net.truncation_ops:
        if isinstance(op, PointwiseTruncation):
            def hook(mod: Any, args: Any, _out: Any, name: str = op.name) -> None:
                data = args[0].data
                channels[name] = int(data.shape[1]) if data.dim() >= 3 else 1
            hooks.append(op.register_forward_hook(hook))
    was = net.stats.enabled
    net.stats.enabled = True
    net.stats.clear()
    backend.reset_usage()
    try:
        net.reset()
        with torch.no_grad():
            for x in frames:
                net(x)
    finally:
        for h in hooks:
            h.remove()
        net.stats.enabled = was
    n = max(1, len(frames) - 1)
    elements = 0.0
    for r in net.stats.records:
        if r.frame == 0 or r.name not in channels or r.pixels_in == 0:
            continue
        frac = r.active_in / r.pixels_in
        touched = r.active_in if frac <= GATHER_MAX_FRACTION else r.pixels_in
        elements += channels[r.name] * touched
    conv = 0.0
    for use in backend.usage.values():
        cal = backend.calibration.get(use.signature)
        if cal is None:
            continue
        conv += (use.sparse * cal.sparse_ms(use.mean_frac) + use.dense * cal.dense_ms)
    return LatencyFeatures(conv_ms=conv / n, elements=elements / n, frames=n)


@dataclass(frozen=True)
class LatencyModel:
    """``ms/frame = conv_scale * conv_ms + per_element_ms * elements + base_ms``."""

    conv_scale: float = 1.0
    per_element_ms: float = 0.0
    base_ms: float = 0.0

    def predict(self, f: LatencyFeatures) -> float:
        """Predicted delta ms/frame of a configuration."""
        return self.conv_scale * f.conv_ms + self.per_element_ms * f.elements + self.base_ms

    @classmethod
    def fit(cls, feats: Sequence[LatencyFeatures], measured_ms: Sequence[float]) -> LatencyModel:
        """Least-squares fit (relative error weighted, coefficients kept non-negative) on measured runs."""
        if len(feats) != len(measured_ms) or len(feats) < 3:
            raise ValueError("fit needs at least 3 measured configurations, one feature row each")
        a = torch.tensor([f.vector() for f in feats], dtype=torch.float64)
        y = torch.tensor(list(measured_ms), dtype=torch.float64)
        w = 1.0 / y.clamp_min(1e-9)  # relative errors: every configuration counts alike
        active = [0, 1, 2]
        coef = torch.zeros(3, dtype=torch.float64)
        for _ in range(3):  # drop coefficients that come out negative and refit the rest
            sol = torch.linalg.lstsq(a[:, active] * w[:, None], (y * w)[:, None]).solution.squeeze(1)
            coef = torch.zeros(3, dtype=torch.float64)
            coef[active] = sol
            neg = [i for i in active if coef[i] < 0]
            if not neg:
                break
            active = [i for i in active if i not in neg]
            if not active:
                coef = torch.zeros(3, dtype=torch.float64)
                break
        return cls(float(coef[0]), float(coef[1]), float(coef[2]))
