"""Resumable training checkpoints: one loader for every trainer (fine-tuning, detection, distillation).

A checkpoint is a dict saved atomically with ``torch.save``; it records the training configuration as
JSON under ``"config"``. Resuming with other settings would silently mix two trainings, so a checkpoint
whose configuration differs is refused, naming the settings that differ, as is a file that
``torch.load(..., weights_only=True)`` cannot read. The settings a trainer lists as ``may_differ`` are
exempt. Every trainer here draws its batches from the step or epoch number and the seed, so a run
resumed with its own settings continues exactly. How long to train may differ only where nothing
depends on the length: fine-tuning (``steps``) and detector training (``epochs``) keep one learning
rate throughout, so a run resumed with more steps or epochs is the longer run exactly. Distillation's
learning rate decays over the run's length, so it refuses another ``epochs`` or ``max_steps`` itself
(a resume with another length would be neither run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from deltatune.errors import ConfigError, WeightsError

__all__ = ["load_checkpoint", "check_not_past", "checkpoint_path", "fresh_resume_note"]


def checkpoint_path(out: str | Path) -> Path:
    """Where a trainer writing weights to ``out`` keeps its checkpoint: ``<out>.ckpt`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def fresh_resume_note(out: str | Path, resume: bool) -> str | None:
    """For a command's ``--resume``: a sentence when there is no checkpoint to continue from (the
    training then starts from its first step; a mistyped ``-o`` looked like a resumed run), else None.
    The trainers themselves resume quietly: the search and the ablations call them with ``resume=True``
    on every fresh fine-tune, as a cache."""
    ckpt = checkpoint_path(out)
    if resume and not ckpt.is_file():
        return f"--resume: no checkpoint at {ckpt} yet; training starts from the beginning"
    return None


def load_checkpoint(
    path: Path, config_json: str, what: str, *, may_differ: Iterable[str] = ()
) -> dict[str, Any]:
    """The checkpoint at ``path`` of a ``what`` training (e.g. ``"fine-tuning"``) whose configuration is
    ``config_json``; one clear error when it is unreadable or was written by other settings (those in
    ``may_differ`` aside), naming each setting with its value there and now."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise WeightsError(f"{path}: not a readable {what} checkpoint ({type(exc).__name__})") from None
    try:
        saved = json.loads(blob["config"]) if isinstance(blob, dict) else None
    except (KeyError, TypeError, ValueError):
        saved = None
    if not isinstance(saved, dict):
        raise WeightsError(f"{path}: not a {what} checkpoint (it records no training configuration)")
    now = json.loads(config_json)
    exempt = set(may_differ)
    differ = [
        k for k in sorted(saved.keys() | now.keys())
        if k not in exempt and saved.get(k, _MISSING) != now.get(k, _MISSING)
    ]
    if differ:
        said = "; ".join(
            f"{k} {_shown(saved.get(k, _MISSING))} there, {_shown(now.get(k, _MISSING))} now"
            for k in differ[:4]
        )
        more = f"; and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise ConfigError(
            f"{path}: checkpoint of a different {what} configuration ({said}{more}); remove it or run with "
            "the same settings"
        )
    return blob


def check_not_past(path: Path, done: int, total: int, unit: str, option: str) -> None:
    """Refuse to resume a checkpoint that has done more ``unit`` (steps, epochs) than ``option`` asks for."""
    if done > total:
        raise ConfigError(
            f"{path}: has done {done} {unit} already, more than {option} {total}; give {option} {done} or "
            "more, or remove the checkpoint"
        )


_MISSING = object()


def _shown(value: Any) -> str:
    return "not recorded" if value is _MISSING else json.dumps(value)
