"""The delta engine: DeltaCNN semantics on any PyTorch device.

Public entry points, in the order of use: :func:`convert` turns an unmodified model into a
:class:`DeltaNetwork`; :func:`calibrate` measures this machine's layer costs for the sparse backend;
:class:`ThresholdMap` says which threshold each truncation point gets. Where things are:
:mod:`~deltatune.delta.rule` (DeltaCNN's rule, defined once), :mod:`~deltatune.delta.values` (the
:class:`DeltaValue` interface of what flows between ops), :mod:`~deltatune.delta.backends` (how a backend
plugs in), :mod:`~deltatune.delta.calibration` (where the calibration table comes from),
:mod:`~deltatune.delta.linear` and :mod:`~deltatune.delta.truncation` (the ops).
"""

from __future__ import annotations

from deltatune.delta.backends import Backend, ReferenceBackend, get_backend
from deltatune.delta.calibration import calibrate
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
from deltatune.delta.values import DeltaTensor, DeltaValue

__all__ = [
    "convert",
    "calibrate",
    "trace",
    "DeltaNetwork",
    "DeltaValue",
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
