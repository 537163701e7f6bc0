"""Strict checkpoint loading with one-line, actionable errors.

Official pose checkpoints come in several wrappings: a plain ``state_dict``, a dict holding it under
``state_dict`` or ``model``, keys prefixed with ``module.`` by ``DataParallel``, and (SimpleBaselines'
PyTorch-0.4 files) no ``*.num_batches_tracked`` buffers at all. :func:`load_checkpoint` accepts all of
those and is otherwise strict: a checkpoint that does not fit the model exactly raises
:class:`~deltatune.errors.WeightsError` naming the missing and unexpected keys and the shape mismatches,
instead of silently leaving layers at random init (``strict=False`` is what the HRNet repo's own test
script does, and it hides wrong files).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deltatune.errors import WeightsError, missing_file

__all__ = ["load_checkpoint", "read_state_dict", "clean_state_dict", "check_state_dict"]

#: A pure key remap applied after unwrapping: ``filter_fn(state_dict, model) -> state_dict``.
FilterFn = Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")
_OPTIONAL_SUFFIX = ".num_batches_tracked"
_SHOW = 3


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return its tensors as a flat ``{key: tensor}`` dict.

    Uses ``torch.load(..., weights_only=True)`` (no arbitrary pickles) and unwraps one level of
    ``{"state_dict": ...}`` / ``{"model": ...}``. Keys are returned as stored (see :func:`clean_state_dict`).

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "ckpt.pth"
    >>> torch.save({"state_dict": {"module.conv.weight": torch.zeros(2, 3)}, "epoch": 140}, path)
    >>> {k: tuple(v.shape) for k, v in read_state_dict(path).items()}
    {'module.conv.weight': (2, 3)}
    >>> tmp.cleanup()
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path}: {missing_file(path)}")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        text = str(exc).strip()
        if "WeightsUnpickler error:" in text:  # torch's long advice to unpickle it unsafely; keep the cause
            cause = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
            why = " ".join(cause.split()).split(" Please ")[0].rstrip(".")
            raise WeightsError(
                f"checkpoint {path}: not a file of tensors that loads safely (torch.load with "
                f"weights_only=True: {why[:160]}); a checkpoint that pickles a whole model or other objects: "
                "re-save its state_dict, torch.save(model.state_dict(), path)"
            ) from exc
        first = text.splitlines()[0] if text else ""
        raise WeightsError(
            f"checkpoint {path}: not a loadable PyTorch checkpoint ({type(exc).__name__}: {first[:160]})"
        ) from exc
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"checkpoint {path}: holds {type(obj).__name__}, not a state_dict of tensors")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(
            f"checkpoint {path}: {len(bad)} entries are not tensors (e.g. {bad[0]!r}); "
            "expected a state_dict or a dict with a 'state_dict' entry"
        )
    nonfinite = [k for k, v in obj.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise WeightsError(
            f"checkpoint {path}: {len(nonfinite)} tensor(s) hold NaN or Inf values "
            f"(e.g. {nonfinite[0]!r}); the weights are damaged"
        )
    return dict(obj)


def clean_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the ``module.`` prefix that ``DataParallel``/``DistributedDataParallel`` add to every key."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    return out


def _preview(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f", ... (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


def check_state_dict(
    state_dict: Mapping[str, torch.Tensor], model: nn.Module, *, source: str = "checkpoint"
) -> None:
    """Raise :class:`WeightsError` unless ``state_dict`` fits ``model`` exactly (keys and shapes).

    Missing ``*.num_batches_tracked`` buffers are allowed (old SimpleBaselines files lack them; BatchNorm
    in eval mode never reads them).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k}: file {list(state_dict[k].shape)} vs model {list(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys [{_preview(missing)}]")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys [{_preview(unexpected)}]")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches [{_preview(shapes)}]")
    name = getattr(model, "model_name", None) or type(model).__name__
    raise WeightsError(f"{source} does not fit model {name}: " + "; ".join(parts))


def load_checkpoint(model: nn.Module, path: str | Path, *, filter_fn: FilterFn | None = None) -> None:
    """Load the checkpoint at ``path`` into ``model`` in place, strictly.

    Steps: read (``weights_only``) → unwrap ``state_dict``/``model`` → strip ``module.`` →
    ``filter_fn(state_dict, model)`` (a family's pure key remap) → exact key/shape check → copy.
    Tensors are cast to the model's dtypes by ``load_state_dict``.

    A checkpoint saved from a ``DataParallel`` model (``module.`` keys) loads into a fresh one:

    >>> import tempfile
    >>> from deltatune_models import create_model
    >>> trained = create_model("pose_resnet_tiny", weights=None)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "pose_resnet_tiny.pth.tar"
    >>> torch.save({"state_dict": {"module." + k: v for k, v in trained.state_dict().items()}}, path)
    >>> model = create_model("pose_resnet_tiny", weights=None)
    >>> load_checkpoint(model, path)
    >>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))
    True
    >>> tmp.cleanup()
    """
    state_dict = clean_state_dict(read_state_dict(path))
    if filter_fn is not None:
        state_dict = filter_fn(state_dict, model)
    check_state_dict(state_dict, model, source=f"checkpoint {Path(path)}")
    result = model.load_state_dict(state_dict, strict=False)
    leftover = [k for k in result.missing_keys if not k.endswith(_OPTIONAL_SUFFIX)]
    if leftover or result.unexpected_keys:  # pragma: no cover - check_state_dict already caught these
        raise WeightsError(f"checkpoint {path}: load left keys unmatched ({_preview(leftover)})")
