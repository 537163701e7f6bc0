"""A short fingerprint of a model's weights, recorded in threshold files.

A threshold setting holds for the weights it was tuned on: the same thresholds on other weights of the
same architecture (another distillation run, a fine-tune, a different machine's bf16 rounding) can lose
several times the accuracy budget. Architecture checks (truncation-point names) cannot see that, so a
thresholds file records the fingerprint of the weights it was made with, and loading it onto a network
with other weights says so.

The fingerprint is a SHA-256 over every ``state_dict`` entry (name, shape and the values in standard
contiguous layout, floating-point values as float32), so it does not depend on the memory format
(channels-last), the device, or a cast to float64 for an exactness check, and it changes with any
weight or buffer (batch-norm statistics included). Rounding weights to bf16 or float16 changes them,
and so the fingerprint.
"""

from __future__ import annotations

import hashlib

from torch import nn

__all__ = ["weights_fingerprint", "PREFIX"]

#: fingerprints are written ``"sha256:<16 hex digits>"``; the prefix names the hash so it can change
PREFIX = "sha256:"


def weights_fingerprint(model: nn.Module) -> str:
    """``"sha256:<16 hex>"`` over ``model.state_dict()`` (names, shapes, values as float32).

    >>> import torch
    >>> a = nn.Linear(2, 2)
    >>> weights_fingerprint(a) == weights_fingerprint(a)
    True
    >>> with torch.no_grad():
    ...     _ = a.bias.add_(1.0)
    >>> weights_fingerprint(a) == weights_fingerprint(nn.Linear(2, 2))
    False
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        v = t.detach().cpu().contiguous()
        if v.is_floating_point():  # float64/float16/bf16 copies of float32 weights hash as those weights
            v = v.float()
        h.update(f"{name}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.numpy().tobytes())
    return PREFIX + h.hexdigest()[:16]
