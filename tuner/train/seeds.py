"""Seeds derived from a run's ``--seed`` and a step, epoch or sample number, one rule for every trainer.

Trainers draw each batch from a generator seeded by a combination such as ``seed * 1_000_003 + step``, so
that a resumed run draws what the uninterrupted one would have. torch takes a seed below 2**64 only: an
ordinary-looking ``--seed 20261207`` made distillation's combination overflow, a traceback after a
minute of decoding. Values in range are kept as they are (runs made before keep their batches); others
are reduced modulo 2**63.
"""

from __future__ import annotations

import torch

__all__ = ["derived_seed", "seeded_generator"]

_SPAN = 2**63


def derived_seed(value: int) -> int:
    """``value`` when torch takes it as a seed unchanged (``0 <= value < 2**63``), else ``value mod
    2**63``."""
    return value if 0 <= value < _SPAN else value % _SPAN


def seeded_generator(value: int) -> torch.Generator:
    """A CPU generator seeded with :func:`derived_seed` of ``value``."""
    return torch.Generator().manual_seed(derived_seed(value))
