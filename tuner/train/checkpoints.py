"""Resumable training checkpoints: one loader for every trainer (fine-tuning, detection).

A checkpoint is a dict saved atomically with ``torch.save``; it records the training configuration as
JSON under ``"config"``. Resuming with other settings would silently mix two trainings, so a checkpoint
whose configuration differs is refused, as is a file that ``torch.load(..., weights_only=True)`` cannot
read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from deltatune.errors import ConfigError, WeightsError

__all__ = ["load_checkpoint"]


def load_checkpoint(path: Path, config_json: str, what: str) -> dict[str, Any]:
    """The checkpoint at ``path`` of a ``what`` training (e.g. ``"fine-tuning"``) whose configuration is
    ``config_json``; one clear error when it is unreadable or was written by other settings."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise WeightsError(f"{path}: not a readable {what} checkpoint ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("config") != config_json:
        raise ConfigError(
            f"{path}: checkpoint of a different {what} configuration; remove it or run with the same settings"
        )
    return blob
