"""The one rule by which every command reads a model's output: the tensor itself, the first item of a
tuple or list, or a dict's entry under the task's key (``"heatmaps"`` for pose models, ``"logits"`` for
classifiers). :func:`~deltatune.metrics.video.heatmaps_of` and
:func:`~deltatune.metrics.classification.logits_of` apply it and say, in their words, when it finds
nothing."""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["output_tensor", "described"]


def output_tensor(out: Any, key: str) -> Tensor | None:
    """``out`` when it is a tensor, its first item when it is a tuple or list starting with one, or
    ``out[key]`` when it is a dict holding a tensor there; ``None`` otherwise."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    if isinstance(out, dict) and isinstance(out.get(key), Tensor):
        return out[key]
    return None


def described(out: Any) -> str:
    """``out``'s type, with a dict's keys: what an error says was returned instead."""
    keys = f" (keys {', '.join(map(str, out))})" if isinstance(out, dict) else ""
    return f"{type(out).__name__}{keys}"
