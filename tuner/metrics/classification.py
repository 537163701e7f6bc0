"""Top-1 fidelity of a classifier against the dense model: the classification counterpart of
:mod:`deltatune.metrics.fidelity`.

A delta network's classification output is scored by whether its top-1 class is the dense model's top-1
class on the same frame (the dense model is the reference, as for pose). The loss is in *top-1 points*:
``100 ·`` the share of samples whose top-1 class differs, so one point is one sample in a hundred.
``bench`` and ``search`` both score classifiers with these two functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from deltatune.errors import ConfigError
from deltatune.metrics.outputs import described, output_tensor

__all__ = ["TopOneScore", "logits_of", "top1_classes", "top1_fidelity"]


class NoLogitsError(ConfigError, TypeError):
    """A classifier's output holds no logits where deltatune reads them: a one-line error for the command
    line, and a ``TypeError`` for callers that test output types."""


def logits_of(out: Any) -> Tensor:
    """The logits of a classifier's output: a tensor, the first element of a tuple, or ``out["logits"]``
    (as :func:`~deltatune.metrics.video.heatmaps_of` reads a pose model's heatmaps), the one rule every
    command scores and writes classes by; :class:`NoLogitsError` otherwise. A model returning
    ``{"logits": ..., "feat": ...}`` was scored by ``inspect`` and ``bench`` and refused by ``search``."""
    logits = output_tensor(out, "logits")
    if logits is None:
        raise NoLogitsError(f"a classifier's output of type {described(out)} has no logits: it returns them "
                            "as a tensor, the first element of a tuple, or out['logits']")
    return logits


def top1_classes(logits: Tensor) -> Tensor:
    """The top-1 class of every sample of ``logits`` ``[N, ...]`` (everything after the batch axis is one
    score vector), as ``int64 [N]``."""
    return logits.reshape(logits.shape[0], -1).argmax(1)


@dataclass(frozen=True)
class TopOneScore:
    """:func:`top1_fidelity`'s result.

    Attributes:
        agreement: share of samples whose top-1 class equals the reference's (1.0 with no samples).
        loss: ``100 · (1 − agreement)``, in top-1 points.
        samples: how many samples were compared.
    """

    agreement: float
    loss: float
    samples: int


def top1_fidelity(pred: Tensor, ref: Tensor) -> TopOneScore:
    """Compare top-1 classes ``pred`` with the reference classes ``ref`` (same shape, any number of axes).

    Example:
        >>> import torch
        >>> s = top1_fidelity(torch.tensor([3, 1, 2, 2]), torch.tensor([3, 1, 2, 0]))
        >>> s.agreement, s.loss, s.samples
        (0.75, 25.0, 4)
    """
    if pred.shape != ref.shape:
        raise ValueError(f"top-1 classes of shape {tuple(pred.shape)} against a reference of "
                         f"{tuple(ref.shape)}")
    n = pred.numel()
    agreement = float((pred == ref).to(torch.float64).mean()) if n else 1.0
    return TopOneScore(agreement=agreement, loss=100.0 * (1.0 - agreement), samples=n)
