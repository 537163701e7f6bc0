"""The model registry: families register entry points, users call :func:`create_model` by name.

Shaped like timm's ``_registry.py``. A family module (``hrnet.py``, ``blazepose.py``, ...) declares a
``MODEL_CARDS`` dict ``{entry point name: ModelCard}`` and decorates each entry point with
:func:`register_model`; the decorator finds the card by the function's name in its module's
``MODEL_CARDS`` (or takes ``card=`` explicitly). An entry point takes only keyword arguments that
change the architecture and returns a randomly initialised model; weights are the registry's job::

    MODEL_CARDS = {"my_net": ModelCard(family="my_family", task="pose", input_size=(256, 192), ...)}

    @register_model
    def my_net(**kwargs) -> MyNet:
        return _create(MY_NET_CFG, **kwargs)

:func:`model_info` answers "what is this model" (input size, preprocessing, outputs, dense MACs, weights
status, provenance) without the user having to build it; MACs come from one forward pass on the
``meta`` device (shapes only, no memory), cached per name.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from deltatune.errors import ConfigError, DataFetchError, ModelNotFoundError, WeightsError

from ._checkpoint import FilterFn, load_checkpoint

__all__ = [
    "ModelCard",
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "model_info",
    "model_card",
    "is_model",
    "count_dense_macs",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

log = logging.getLogger(__name__)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: Presence threshold of heatmap models trained on unit-peak Gaussian targets: a dense keypoint whose
#: heatmap peak is at most this is not present (the official HRNet evaluation's ``TEST.IN_VIS_THRE``).
PRESENT_CONFIDENCE = 0.2

WEIGHTS_AVAILABLE = "available"
WEIGHTS_NOT_FETCHED = "not fetched (run deltatune data fetch)"
WEIGHTS_NONE = "none"
WEIGHTS_CORRUPT = "corrupt (run deltatune data fetch --force)"
WEIGHTS_MISSING = "missing (shipped file absent: reinstall deltatune)"
#: ``default_weights="package:<path>"`` names a file shipped inside this package (e.g. distilled weights).
PACKAGE_PREFIX = "package:"

#: ``loader(model, path)`` loads a weights file into a model in place (default: strict state_dict load).
Loader = Callable[[nn.Module, Path], None]
F = TypeVar("F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelCard:
    """Static facts about one registered model, declared next to its entry point.

    ``mean``/``std`` apply to the channels *in ``color_order``* after scaling pixels to [0, 1] (so a
    BGR model gets ImageNet's R statistics on its B channel, as SimpleBaselines does). One value each
    declares a grayscale model: its input is one channel, the frames' luma (ITU-R BT.601 weights).
    ``default_weights`` is an asset name for :func:`deltatune.data.assets.asset_path`, or
    ``"package:<relative path>"`` for a file shipped inside ``deltatune_models`` (e.g.
    ``"package:weights/x.pt"``), or ``None``.
    ``filter_fn`` is the family's pure key remap; ``loader`` replaces the state_dict loader for
    non-PyTorch weight files (e.g. a TFLite converter).
    """

    family: str
    task: Literal["pose", "classification", "detection"]
    input_size: tuple[int, int]
    outputs: str
    num_joints: int | None = None
    num_classes: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    color_order: Literal["RGB", "BGR"] = "RGB"
    default_weights: str | None = None
    weights_hint: str = ""
    provenance: str = ""
    flip_pairs: tuple[tuple[int, int], ...] | None = None
    tiny: bool = False
    #: Heatmap peak above which a keypoint of this model's *dense* prediction counts as present when it is
    #: the reference (fidelity; see ``deltatune.metrics.fidelity``): 0.2 for heatmaps trained on unit-peak
    #: Gaussians (HRNet's ``TEST.IN_VIS_THRE``); ``None`` counts every keypoint.
    present_confidence: float | None = None
    #: ``weights="default"`` builds this other registered model (with *its* default weights) instead:
    #: how ``hrnet`` (W32, for official checkpoints) serves the distilled HRNet-W18-Small-v2 default.
    default_variant: str | None = None
    #: How a grouped threshold search (``--space group``/``global``) groups this model's truncation points:
    #: an ordered tuple of ``(group name template, regex)``. A name takes the first regex that matches its
    #: start (:func:`re.match`); the template is formatted with the match (``{1}`` = first capture group).
    #: Names no pattern matches fall back to their first dotted component (``stem`` for top-level names,
    #: ``input`` for the input): see ``deltatune.search.spaces.group_of``. Empty: the fallback only.
    threshold_groups: tuple[tuple[str, str], ...] = ()
    #: The learning rate ``deltatune finetune`` uses for this model when ``--lr`` is not given (``None``:
    #: the fine-tuner's general default, 1e-4). AdamW moves every weight by about the learning rate per
    #: step whatever its gradient, so a network whose weights are small against its activations (batch
    #: norm folded into the convolutions, as in TFLite graphs) needs a smaller one: see
    #: ``deltatune.train.finetune.default_lr``.
    finetune_lr: float | None = None
    filter_fn: FilterFn | None = field(default=None, compare=False, repr=False)
    loader: Loader | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.mean) not in (1, 3) or len(self.std) != len(self.mean):
            raise ValueError(
                f"ModelCard: mean {self.mean} and std {self.std} need 3 values each (RGB or BGR input) or 1 "
                "each (a grayscale model)"
            )

    @property
    def in_channels(self) -> int:
        """Input channels: 3 (colour) or 1 (grayscale: one mean and one std)."""
        return len(self.mean)


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`model_info` reports about a registered model (see :class:`ModelCard`)."""

    name: str
    family: str
    task: str
    description: str
    input_size: tuple[int, int]
    num_joints: int | None
    num_classes: int | None
    outputs: str
    macs: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    color_order: str
    weights: str
    default_weights: str | None
    provenance: str
    flip_pairs: tuple[tuple[int, int], ...] | None
    tiny: bool
    present_confidence: float | None = None
    threshold_groups: tuple[tuple[str, str], ...] = ()
    #: the registered model whose architecture and weights ``weights="default"`` builds (``None``: this one)
    default_variant: str | None = None
    #: the learning rate ``deltatune finetune`` uses for this model by default (``None``: the general 1e-4)
    finetune_lr: float | None = None

    @property
    def in_channels(self) -> int:
        """Input channels: 3 (colour) or 1 (grayscale)."""
        return len(self.mean)

    @property
    def gmacs(self) -> float:
        """Dense multiply-accumulates of one forward pass at ``input_size``, in billions."""
        return self.macs / 1e9

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        out = asdict(self)
        out["input_size"] = list(self.input_size)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        out["in_channels"] = self.in_channels
        out["flip_pairs"] = [list(p) for p in self.flip_pairs] if self.flip_pairs else None
        out["threshold_groups"] = [list(p) for p in self.threshold_groups]
        return out


@dataclass(frozen=True)
class _Entry:
    name: str
    fn: Callable[..., nn.Module]
    card: ModelCard
    #: the user's family (a ``$DELTATUNE_MODELS`` item or an entry point's module) that registered it, as
    #: named there, and what identifies it (a file's resolved path); ``None`` for the zoo and direct calls
    source: str | None = None
    source_key: str | None = None


_REGISTRY: dict[str, _Entry] = {}
_BUILTIN_FAMILIES = (
    "deltatune_models.mobilenet_v2",
    "deltatune_models.hrnet",
    "deltatune_models.pose_resnet",
    "deltatune_models.blazepose",
    "deltatune_models.faster_rcnn",
)


def register_model(fn: F | None = None, *, card: ModelCard | None = None) -> Any:
    """Register an entry point under its function name (usable bare or as ``@register_model(card=...)``).

    Without ``card=``, the card is ``MODEL_CARDS[fn.__name__]`` of the function's module. Registering a
    name twice replaces the old entry with a warning (like timm), except a zoo model's name, which is
    refused outside the zoo, and a name two of the user's families register, which is refused in the
    second (:class:`TypeError`: which of the two a name means would depend on the order of
    ``$DELTATUNE_MODELS``).
    """

    def _register(func: F) -> F:
        found = card
        module = sys.modules.get(func.__module__)
        if found is None:
            found = getattr(module, "MODEL_CARDS", {}).get(func.__name__)
        if found is None:
            # a DELTATUNE_MODELS file is imported under a made-up module name: name the file instead
            where = getattr(module, "__file__", None) or func.__module__
            raise TypeError(
                f"register_model: no ModelCard for {func.__name__!r}; define MODEL_CARDS[{func.__name__!r}] "
                f"in {where} before the entry point, or pass card="
            )
        name = func.__name__
        if (name in _REGISTRY and _REGISTRY[name].fn.__module__ in _BUILTIN_FAMILIES
                and func.__module__ not in _BUILTIN_FAMILIES):
            # the shipped studies, threshold files and READMEs name zoo models: replacing one would change
            # what they run without a word
            raise TypeError(f"register_model: {name!r} is a zoo model; give yours another name")
        source, key = _importing[-1] if _importing else (None, None)
        before = _REGISTRY.get(name)
        if before is not None and key is not None and before.source_key not in (None, key):
            raise TypeError(f"register_model: {name!r} is registered by {before.source!r} already; give one "
                            "of them another name")
        if before is not None and before.fn is not func and (key is None or before.source_key != key):
            warnings.warn(f"model {name!r} is already registered; overwriting it", UserWarning, stacklevel=2)
        _REGISTRY[name] = _Entry(name=name, fn=func, card=found, source=source, source_key=key)
        _cached_macs.cache_clear()
        return func

    return _register(fn) if fn is not None else _register


def _load_builtin_families() -> None:
    import importlib

    for modname in _BUILTIN_FAMILIES:
        try:
            importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:  # a family exists but its own import failed: that is a bug
                raise
            log.debug("model family %s is not installed", modname)
    _load_user_families()


#: Environment variable naming the user's own model families: ``.py`` files or importable module names,
#: separated by ``os.pathsep`` (``:`` on Linux). Each registers its entry points as the built-in
#: families do (``MODEL_CARDS`` + ``@register_model``).
MODELS_ENV = "DELTATUNE_MODELS"
#: Entry-point group through which an installed package registers model families: each entry point's
#: value is a module to import (``[project.entry-points."deltatune.models"] my_nets = "my_pkg.nets"``).
ENTRY_POINT_GROUP = "deltatune.models"
_user_families_loaded: set[str] = set()
#: The user families being imported, innermost last: ``(source as named, its key)`` (:func:`_source_key`).
_importing: list[tuple[str, str]] = []


def user_family_sources() -> list[str]:
    """The user's model families to import: ``$DELTATUNE_MODELS`` items, then installed entry points.

    Read on every call, so that a change of the variable (a test, a notebook) takes effect; each source
    is imported once per process. Worker processes inherit the variable and import the same files.
    """
    import os

    sources = [s.strip() for s in os.environ.get(MODELS_ENV, "").split(os.pathsep) if s.strip()]
    return sources + list(_entry_point_sources())


@functools.cache
def _entry_point_sources() -> tuple[str, ...]:
    """Modules named by installed ``deltatune.models`` entry points (scanned once per process: the scan
    reads every installed package's metadata, milliseconds that every model lookup would pay)."""
    from importlib.metadata import entry_points

    return tuple(ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP))


def _load_user_families() -> None:
    """Import every user family not imported yet (:func:`user_family_sources`).

    A file that does not exist, a module that is not installed, or a family whose import raises is the
    user's input gone wrong: one :class:`ModelNotFoundError` line naming the source and the cause.
    """
    for source in user_family_sources():
        if source in _user_families_loaded:
            continue
        # marked first, so that a family that looks a model up while it is imported does not import
        # itself again; unmarked on failure, so that every later lookup reports the error again
        _user_families_loaded.add(source)
        key = _source_key(source)
        _importing.append((source, key))
        try:
            _import_family(source)
            if not any(e.source_key == key for e in _REGISTRY.values()):  # nothing to search: the wrong file?
                log.warning("%s: %s registers no model (decorate each entry point with @register_model; "
                            "README, Your own model)", MODELS_ENV, source)
        except ModelNotFoundError:
            _user_families_loaded.discard(source)
            raise
        except Exception as exc:
            _user_families_loaded.discard(source)
            raise ModelNotFoundError(
                f"{MODELS_ENV}: model family {source!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            _importing.pop()


def _is_file_source(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source


def _source_key(source: str) -> str:
    """What identifies a user family: a file's resolved path (``nets.py`` and ``./nets.py`` are one), a
    module's name."""
    return str(Path(source).expanduser().resolve()) if _is_file_source(source) else source


def _import_family(source: str) -> None:
    """Import one user family: a ``.py`` file (as module ``deltatune_user_<stem>``) or a module."""
    import importlib
    import importlib.util

    if _is_file_source(source):
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            raise ModelNotFoundError(f"{MODELS_ENV}: model family file {source!r} does not exist")
        modname = "deltatune_user_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ModelNotFoundError(f"{MODELS_ENV}: {source!r} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module  # register_model looks the card up in the entry's module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(modname, None)
            raise
        log.info("imported model family %s from %s", modname, path)
        return
    try:
        importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name != source and not source.startswith(f"{exc.name}."):
            raise
        raise ModelNotFoundError(
            f"{MODELS_ENV}: model family module {source!r} is not installed (or give a .py file path)"
        ) from exc


def _entry(name: str) -> _Entry:
    _load_builtin_families()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if not os.environ.get(MODELS_ENV):  # a new shell without the export is the likelier slip for a new name
        hint += (f"; a model of your own is found through {MODELS_ENV} (not set here): export "
                 f"{MODELS_ENV}=my_nets.py (README, Your own model)")
    raise ModelNotFoundError(
        f"unknown model {name!r}{hint} (known: {', '.join(list_models(include_tiny=True))})"
    )


def model_card(name: str) -> ModelCard:
    """The :class:`ModelCard` a registered model was declared with (cheap: builds nothing, unlike
    :func:`model_info`, which counts MACs); :class:`ModelNotFoundError` for an unknown name."""
    return _entry(name).card


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model."""
    _load_builtin_families()
    return name in _REGISTRY


def list_models(*, include_tiny: bool = False, task: str | None = None) -> list[str]:
    """Sorted names of registered models; tiny test variants only with ``include_tiny=True``.

    >>> "hrnet" in list_models()
    True
    """
    _load_builtin_families()
    return sorted(
        (
            n
            for n, e in _REGISTRY.items()
            if (include_tiny or not e.card.tiny) and (task is None or e.card.task == task)
        ),
        key=_natural_key,
    )


def _natural_key(name: str) -> list[object]:
    """Sort ``pose_resnet50`` before ``pose_resnet101``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _asset_status(asset: str | None) -> tuple[str, Path | None]:
    """Weights status of a default-weights asset without fetching anything."""
    if asset is None:
        return WEIGHTS_NONE, None
    if asset.startswith(PACKAGE_PREFIX):
        shipped = Path(__file__).parent / asset[len(PACKAGE_PREFIX) :]
        return (WEIGHTS_AVAILABLE, shipped) if shipped.is_file() else (WEIGHTS_MISSING, None)
    try:
        from deltatune.data.assets import asset_path, asset_status
    except ImportError:  # pragma: no cover - deltatune.data ships with deltatune
        return WEIGHTS_NOT_FETCHED, None
    try:
        status = asset_status(asset)
        if status == "corrupt":
            return WEIGHTS_CORRUPT, None
        if status != "present":
            return WEIGHTS_NOT_FETCHED, None
        return WEIGHTS_AVAILABLE, Path(asset_path(asset))
    except DataFetchError:
        return WEIGHTS_NOT_FETCHED, None


def create_model(name: str, *, weights: str | Path | None = "default", **kwargs: Any) -> nn.Module:
    """Build a registered model in eval mode, with its default weights, none, or a checkpoint file.

    ``weights="default"``: the model's default weights; :class:`WeightsError` if it has none or they are
    not fetched. ``weights=None``: random init. A path: strict load (:func:`load_checkpoint`, after the
    family's ``checkpoint_filter_fn``). ``kwargs`` go to the entry point (e.g. ``num_joints=16``).

    >>> model = create_model("hrnet_tiny", weights=None)
    >>> model.model_name
    'hrnet_tiny'
    """
    entry = _entry(name)
    card = entry.card
    path: Path | None = None
    if isinstance(weights, str) and weights == "default" and card.default_variant:
        log.info("%s: default weights are those of %s (a different architecture)", name, card.default_variant)
        variant = create_model(card.default_variant, weights="default", **kwargs)
        variant.model_aliases = (name,)  # type: ignore[assignment]  # the name it was asked for by
        return variant
    if isinstance(weights, str) and weights == "default":
        status, path = _asset_status(card.default_weights)
        if status == WEIGHTS_NONE:
            hint = card.weights_hint or "pass a checkpoint file (--weights FILE)"
            raise WeightsError(
                f"model {name!r} has no default weights; {hint}, or --weights none for random ones "
                "(weights=None in Python)"
            )
        if path is None and status == WEIGHTS_MISSING:
            raise WeightsError(
                f"default weights of model {name!r} ({card.default_weights}) are not installed; "
                "reinstall deltatune or pass a checkpoint file (--weights FILE)"
            )
        if path is None:
            raise WeightsError(
                f"default weights of model {name!r} (asset {card.default_weights!r}) are "
                f"{status.split(' (')[0]}; run `deltatune data fetch --only {card.default_weights}` "
                "or pass a checkpoint file (--weights FILE)"
            )
    elif weights is not None:
        path = Path(weights)

    model = entry.fn(**kwargs)
    model.model_name = name  # type: ignore[assignment]
    model.model_card = card  # type: ignore[assignment]
    if path is not None:
        loader = card.loader
        if loader is None:
            load_checkpoint(model, path, filter_fn=card.filter_fn)
        else:
            loader(model, path)
        log.info("loaded weights for %s from %s", name, path)
    return model.eval()


def count_dense_macs(model: nn.Module, input_shape: tuple[int, ...], *, device: str = "cpu") -> int:
    """Dense MACs of one forward pass: Conv2d, ConvTranspose2d and Linear layers, summed.

    Conv: ``H_out·W_out·C_out·(C_in/groups)·k_h·k_w``; transposed conv counts every input pixel scattered
    into its ``k_h·k_w·C_out/groups`` outputs; linear: ``in·out`` per row. Batch included. The same
    formulas as the delta network's counts: docs/design.md#counting-work.
    """
    return _counted_run(model, input_shape, device)[0]


def _counted_run(model: nn.Module, input_shape: tuple[int, ...], device: str) -> tuple[int, Any]:
    """:func:`count_dense_macs` and the model's output on the zero input (to check it against the card)."""
    total = 0

    def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total += output.numel() * (mod.in_channels // mod.groups) * kh * kw
        elif isinstance(mod, nn.ConvTranspose2d):
            kh, kw = mod.kernel_size
            total += inputs[0].numel() * (mod.out_channels // mod.groups) * kh * kw
        elif isinstance(mod, nn.Linear):
            total += output.numel() * mod.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            out = model(torch.zeros(input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return int(total), out


@functools.cache
def _cached_macs(name: str) -> int:
    entry = _REGISTRY[name]
    shape = (1, entry.card.in_channels, *entry.card.input_size)
    counted: tuple[int, Any] | None = None
    try:  # shapes only: no parameter memory, no arithmetic
        with torch.device("meta"):
            model = entry.fn()
        counted = _counted_run(model.eval(), shape, "meta")
    except (NotImplementedError, RuntimeError) as exc:
        log.debug("meta-device MAC count failed for %s (%s); counting on CPU", name, exc)
    if counted is None:
        try:
            counted = _counted_run(entry.fn().eval(), shape, "cpu")
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # the card does not fit the network
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ConfigError(
                f"model {name!r} fails on the input its ModelCard declares, {list(shape)} (input_size, and "
                f"one channel per mean value): {type(exc).__name__}: {first}"
            ) from None
    _check_outputs(name, entry.card, shape, counted[1])
    return counted[0]


def _check_outputs(name: str, card: ModelCard, shape: tuple[int, ...], out: Any) -> None:
    """Refuse a card whose joint or class count is not what the network outputs on its declared input.

    Why: every command reads the card's count (keypoint rows of ``predict``'s CSV, the labels' joints,
    top-1 over the classes); a card saying 17 joints over a 5-channel head would decode wrong keypoints
    without an error. Only a plain tensor output is checked: heatmaps ``[N, num_joints, ...]`` of a pose
    model, logits ``[N, ..., num_classes]`` of a classifier (tuples and detections are left alone)."""
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        return
    if card.task == "pose" and out.dim() != 4:  # logits [N, C] are no heatmaps, whatever C is
        raise ConfigError(
            f"model {name!r}: its ModelCard says task 'pose', but the network outputs {list(out.shape)} on "
            f"the declared input {list(shape)}, not heatmaps [N, joints, h, w], which pose models are "
            "scored by (a classifier's logits take task 'classification')"
        )
    if card.task == "pose" and card.num_joints is not None and out.shape[1] != card.num_joints:
        what, declared, got = "joints", card.num_joints, f"{out.shape[1]} heatmap channels"
    elif card.task == "classification" and card.num_classes is not None and out.shape[-1] != card.num_classes:
        what, declared, got = "classes", card.num_classes, f"{out.shape[-1]} logits per image"
    else:
        return
    raise ConfigError(
        f"model {name!r}: its ModelCard declares {declared} {what}, but the network outputs {got} "
        f"({list(out.shape)} on the declared input {list(shape)}); fix the card's num_{what} or the network"
    )


def model_info(name: str) -> ModelInfo:
    """Describe a registered model: input size, outputs, preprocessing, dense MACs, weights, provenance.

    >>> model_info("hrnet").input_size
    (256, 192)
    """
    entry = _entry(name)
    card = entry.card
    status, _ = _asset_status(card.default_weights)
    default_weights = card.default_weights
    if card.default_variant:
        variant = _entry(card.default_variant).card
        vstatus, _ = _asset_status(variant.default_weights)
        status = f"{vstatus} (as {card.default_variant})" if vstatus == WEIGHTS_AVAILABLE else vstatus
        default_weights = variant.default_weights
    doc = (entry.fn.__doc__ or "").strip().splitlines()
    return ModelInfo(
        name=name,
        family=card.family,
        task=card.task,
        description=doc[0] if doc else "",
        input_size=card.input_size,
        num_joints=card.num_joints,
        num_classes=card.num_classes,
        outputs=card.outputs,
        macs=_cached_macs(name),
        mean=card.mean,
        std=card.std,
        color_order=card.color_order,
        weights=status,
        default_weights=default_weights,
        provenance=card.provenance,
        flip_pairs=card.flip_pairs,
        tiny=card.tiny,
        present_confidence=card.present_confidence,
        threshold_groups=card.threshold_groups,
        default_variant=card.default_variant,
        finetune_lr=card.finetune_lr,
    )
