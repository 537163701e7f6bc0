"""The delta engine: DeltaCNN semantics on any PyTorch device.

Public entry points: :func:`convert` turns an unmodified model into a :class:`DeltaNetwork`;
:class:`ThresholdMap` says which threshold each truncation point gets.
"""

from __future__ import annotations

from deltatune.delta._tensor import DeltaTensor
from deltatune.delta.backends import Backend, ReferenceBackend, get_backend
from deltatune.delta.convert import convert, trace
from deltatune.delta.network import DeltaNetwork
from deltatune.delta.stats import LayerRecord, StatsRecorder, StatsSummary
from deltatune.delta.thresholds import (
    ThresholdFile,
    ThresholdMap,
    TruncationPoint,
    from_deltacnn,
    load_thresholds,
    save_thresholds,
    to_deltacnn,
)

__all__ = [
    "convert",
    "trace",
    "DeltaNetwork",
    "DeltaTensor",
    "ThresholdMap",
    "ThresholdFile",
    "TruncationPoint",
    "load_thresholds",
    "save_thresholds",
    "to_deltacnn",
    "from_deltacnn",
    "Backend",
    "ReferenceBackend",
    "get_backend",
    "StatsRecorder",
    "StatsSummary",
    "LayerRecord",
]
