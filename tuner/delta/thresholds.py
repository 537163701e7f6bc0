"""Threshold mappings and threshold files.

A :class:`ThresholdMap` says which truncation threshold each call site gets, with a documented priority
(tiered like FX quantization's ``QConfigMapping``, but its regex tier differs: see :class:`ThresholdMap`)::

    global  <  op kind (``relu``, ``maxpool``, ``input`` ...)  <  name regex (last match)  <  exact name

``None`` means "never truncate" (every updated pixel propagates). A ``scale`` multiplies every
resolved number (a global scale for searches). A map is resolved once, against a network's truncation
points, into ``{name: threshold}``.

Threshold *files* store that resolved dict (JSON, our format) together with the truncation mode and
input dilation, so a file written today loads into the same model tomorrow; loading into a network
whose names differ is a :class:`~deltatune.errors.ThresholdError` naming the missing/extra layers. The
same :class:`ThresholdFile` is the search's configuration of one trial, stored in the trial's user
attributes (:meth:`ThresholdFile.to_attrs`) and exported as a file.
DeltaCNN's ``thresholds_{name}.json`` keys its values ``"0" .. "N-1"`` in execution order; see
:func:`to_deltacnn` / :func:`from_deltacnn`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltatune._atomic import atomic_write_text
from deltatune.delta.rule import MODES, is_input_dilation, is_keyframe_change, is_keyframe_interval
from deltatune.errors import ThresholdError, missing_file

__all__ = [
    "ThresholdMap",
    "ThresholdSpec",
    "TruncationPoint",
    "ThresholdFile",
    "resolve",
    "save_thresholds",
    "thresholds_text",
    "load_thresholds",
    "check_thresholds_file",
    "to_deltacnn",
    "from_deltacnn",
    "check_names",
    "weights_beside",
    "FORMAT",
]

log = logging.getLogger(__name__)

FORMAT = "deltatune-thresholds/1"


@dataclass(frozen=True)
class TruncationPoint:
    """A place where changes are truncated: its call-site name, op kind and execution index."""

    name: str
    kind: str
    index: int


def _check_value(where: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, (bool, str)):  # False is no "off" (that is None), True or "0.1" no threshold
        raise ThresholdError(f"{where}: threshold {v!r} is not a number (None: never truncate)")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ThresholdError(f"{where}: threshold {v!r} is not a number") from None
    if not math.isfinite(f) or f < 0:
        raise ThresholdError(f"{where}: threshold {v!r} must be a finite number >= 0 (or null)")
    return f


@dataclass
class ThresholdMap:
    r"""Thresholds by priority: ``default`` < ``by_kind`` < ``by_pattern`` < ``by_name``.

    **Regex tier: the last matching pattern wins, matched with** :func:`re.search` (anywhere in the
    name). This is *not* ``QConfigMapping``'s rule (first match wins, :func:`re.match` from the start of
    the name), on purpose: a map is refined by appending a narrower pattern after a broader one (as in
    ``by_pattern=[(r"^stage3\.", 0.1), (r"branches\.3\.", 0.02)]``), and call-site names are dotted
    paths with ``#k`` suffixes, so patterns such as ``r"relu#1$"`` or ``r"\.branches\.3\."`` are
    written to match anywhere. Anchor with ``^`` to match from the start. Kept this way so that existing
    maps resolve to the same thresholds.

    Example:
        >>> m = ThresholdMap(default=0.1, by_kind={"input": 0.02}, by_name={"head.relu": None})
        >>> pts = [TruncationPoint("input", "input", 0), TruncationPoint("a.relu", "relu", 1),
        ...        TruncationPoint("head.relu", "relu", 2)]
        >>> m.resolve(pts)
        {'input': 0.02, 'a.relu': 0.1, 'head.relu': None}

        Two overlapping patterns: the later one wins where both match.

        >>> ThresholdMap(by_pattern=[(r"relu", 0.1), (r"^head\.", 0.3)]).resolve(pts[1:])
        {'a.relu': 0.1, 'head.relu': 0.3}
    """

    default: float | None = 0.0
    by_kind: dict[str, float | None] = field(default_factory=dict)
    by_pattern: list[tuple[str, float | None]] = field(default_factory=list)
    by_name: dict[str, float | None] = field(default_factory=dict)
    scale: float = 1.0

    def resolve(self, points: Sequence[TruncationPoint], *, strict: bool = True) -> dict[str, float | None]:
        """``{name: threshold}`` for every point; unknown exact names are an error when ``strict``, and so
        is a kind no truncation point can have (a typo would otherwise leave its points at the default);
        a pattern that matches no point is logged as a warning."""
        from deltatune.delta.optable import TRUNCATION_KINDS

        names = {p.name for p in points}
        if strict:
            extra = sorted(set(self.by_name) - names)
            if extra:
                raise ThresholdError(f"threshold map names {len(extra)} unknown layer(s): {_short(extra)}")
            kinds = sorted(set(self.by_kind) - TRUNCATION_KINDS)
            if kinds:
                raise ThresholdError(
                    f"threshold map kind(s) {', '.join(map(repr, kinds))}: no truncation point has that kind "
                    f"(kinds: {', '.join(sorted(TRUNCATION_KINDS))})"
                )
        patterns = []
        for pat, pat_value in self.by_pattern:
            try:
                patterns.append((re.compile(pat), pat_value))
            except re.error as exc:
                raise ThresholdError(f"threshold pattern {pat!r} is not a valid regex: {exc}") from None
        # a typo in a pattern would leave its layers at the default without a word; said, not refused:
        # one map may serve several networks, and a stage one of them lacks is no mistake
        unmatched = [rx.pattern for rx, _ in patterns if not any(rx.search(n) for n in names)]
        if unmatched:
            log.warning(
                "threshold pattern(s) %s match no truncation point of this network (names look like %s)",
                ", ".join(map(repr, unmatched)),
                _short(sorted(names)),
            )
        scale = _check_value("scale", self.scale)
        out: dict[str, float | None] = {}
        for p in points:
            v: Any = self.default
            if p.kind in self.by_kind:
                v = self.by_kind[p.kind]
            for rx, pv in patterns:  # every pattern, in order: the last match wins
                if rx.search(p.name):
                    v = pv
            if p.name in self.by_name:
                v = self.by_name[p.name]
            val = _check_value(p.name, v)
            out[p.name] = None if val is None else val * (scale if scale is not None else 1.0)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (inverse of :meth:`from_dict`)."""
        return {
            "default": self.default,
            "by_kind": dict(self.by_kind),
            "by_pattern": [list(p) for p in self.by_pattern],
            "by_name": dict(self.by_name),
            "scale": self.scale,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ThresholdMap:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        allowed = {"default", "by_kind", "by_pattern", "by_name", "scale"}
        bad = set(d) - allowed
        if bad:
            raise ThresholdError(
                f"threshold map has unknown field(s) {sorted(bad)}; allowed: {sorted(allowed)}"
            )
        return cls(
            default=d.get("default", 0.0),
            by_kind=dict(d.get("by_kind", {})),
            by_pattern=[(str(p), v) for p, v in d.get("by_pattern", [])],
            by_name=dict(d.get("by_name", {})),
            scale=float(d.get("scale", 1.0)),
        )


ThresholdSpec = ThresholdMap | Mapping[str, float | None] | float | int | None


def resolve(spec: ThresholdSpec, points: Sequence[TruncationPoint]) -> dict[str, float | None]:
    """Resolve any accepted threshold spec against ``points``.

    A plain mapping must name every point exactly (see :func:`check_names`); a number or ``None``
    applies to all points.
    """
    if isinstance(spec, ThresholdMap):
        return spec.resolve(points)
    if spec is None or isinstance(spec, (int, float)):
        return ThresholdMap(default=spec).resolve(points)
    if isinstance(spec, Mapping):
        check_names(spec.keys(), [p.name for p in points], source="threshold mapping")
        return {p.name: _check_value(p.name, spec[p.name]) for p in points}
    if isinstance(spec, str | Path):  # a file's name: its settings are more than thresholds
        raise ThresholdError(
            f"thresholds {str(spec)!r}: a file is loaded with net.load_thresholds({str(spec)!r}) (it also "
            "sets the mode, input dilation and key frames); thresholds= takes a number, a mapping or a "
            "ThresholdMap"
        )
    raise ThresholdError(f"cannot use {type(spec).__name__} as thresholds")


def _short(names: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... (+{len(names) - n} more)" if len(names) > n else "")


def check_names(given: Any, expected: Sequence[str], *, source: str) -> None:
    """Raise a one-line :class:`ThresholdError` if ``given`` and ``expected`` names differ."""
    given_set, exp_set = set(given), set(expected)
    missing = [n for n in expected if n not in given_set]
    extra = sorted(given_set - exp_set)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {_short(missing)}")
        if extra:
            parts.append(f"extra {len(extra)}: {_short(extra)}")
        raise ThresholdError(f"{source} does not match the model's truncation points ({'; '.join(parts)})")


@dataclass(frozen=True)
class ThresholdFile:
    """One threshold setting: a threshold per truncation point, the truncation mode, the input
    dilation and the key-frame interval, plus the model it is for, the fingerprint of the weights it
    was made with and free-form ``meta``.

    It is both the content of a deltatune thresholds file (:meth:`to_dict`, :func:`save_thresholds`)
    and the search's configuration of one trial (:meth:`to_attrs` / :meth:`from_attrs`, the trial's user
    attributes ``thresholds``, ``input_dilation`` and ``mode``). Pass ``mode``/``input_dilation`` by
    keyword.

    >>> tf = ThresholdFile({"input": 0.02, "relu": None}, input_dilation=3)
    >>> tf.to_attrs()
    {'thresholds': {'input': 0.02, 'relu': None}, 'input_dilation': 3, 'mode': 'max'}
    >>> ThresholdFile.from_attrs({**tf.to_attrs(), "pck": 0.9}) == tf
    True
    """

    thresholds: dict[str, float | None]
    mode: str = "max"
    input_dilation: int = 1
    #: a dense key frame every this many frames (0: none; see ``DeltaNetwork.keyframe_interval``)
    keyframe_interval: int = 0
    #: key frames on change: input fraction that restarts the stream (None: off; see
    #: ``DeltaNetwork.keyframe_change``)
    keyframe_change: float | None = None
    model: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: fingerprint of the weights the setting was made with (:func:`~deltatune.delta.fingerprint.
    #: weights_fingerprint`); ``None``: not recorded (files written before it was)
    weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a thresholds file (``"format": FORMAT``)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "model": self.model,
            "mode": self.mode,
            "input_dilation": self.input_dilation,
        }
        if self.keyframe_interval:  # files without key frames stay as they were
            out["keyframe_interval"] = self.keyframe_interval
        if self.keyframe_change is not None:
            out["keyframe_change"] = self.keyframe_change
        if self.weights is not None:
            out["weights"] = self.weights
        return {**out, "thresholds": self.thresholds, "meta": self.meta}

    def to_attrs(self) -> dict[str, Any]:
        """The setting as Optuna user attributes ``thresholds``, ``input_dilation``, ``mode`` and, when
        set, ``keyframe_interval`` and ``keyframe_change`` (the model and meta live on the study)."""
        attrs: dict[str, Any] = {
            "thresholds": dict(self.thresholds),
            "input_dilation": self.input_dilation,
            "mode": self.mode,
        }
        if self.keyframe_interval:
            attrs["keyframe_interval"] = self.keyframe_interval
        if self.keyframe_change is not None:
            attrs["keyframe_change"] = self.keyframe_change
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], *, model: str | None = None) -> ThresholdFile:
        """The setting stored in a trial's user attributes (other attributes are ignored; a missing
        dilation or mode has its default, as in studies written before they were searched)."""
        return cls(
            dict(attrs["thresholds"]),
            mode=str(attrs.get("mode", "max")),
            input_dilation=int(attrs.get("input_dilation", 1)),
            keyframe_interval=int(attrs.get("keyframe_interval", 0)),
            keyframe_change=_change_or_none(attrs.get("keyframe_change")),
            model=model,
        )


def weights_beside(path: str | Path) -> Path:
    """The weights file that goes with thresholds file ``path`` when its setting ran fine-tuned weights
    (``deltatune export`` of a ``search --train`` trial writes it): ``<stem>.weights.pt`` beside it."""
    p = Path(path)
    return p.with_name(p.stem + ".weights.pt")


def thresholds_text(tf: ThresholdFile) -> str:
    """The JSON text of a thresholds file, as :func:`save_thresholds` writes it."""
    return json.dumps(tf.to_dict(), indent=2) + "\n"


def save_thresholds(path: str | Path, tf: ThresholdFile) -> Path:
    """Write a thresholds file atomically (JSON)."""
    p = Path(path)
    atomic_write_text(p, thresholds_text(tf))
    return p


def _read_json(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ThresholdError(f"thresholds file {p}: {missing_file(p)}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ThresholdError(f"thresholds file {p}: not valid JSON ({exc})") from None


def _mode_value(path: str | Path, v: Any) -> str:
    if v not in MODES:
        raise ThresholdError(f"thresholds file {path}: mode must be one of {', '.join(MODES)}, got {v!r}")
    return str(v)


def _dilation_value(path: str | Path, v: Any) -> int:
    if not is_input_dilation(v):
        raise ThresholdError(
            f"thresholds file {path}: input_dilation must be a positive odd integer, got {v!r}"
        )
    return v


def _keyframe_value(path: str | Path, v: Any) -> int:
    if not is_keyframe_interval(v):
        raise ThresholdError(f"thresholds file {path}: keyframe_interval must be an integer >= 0, got {v!r}")
    return v


def _change_or_none(v: Any) -> float | None:
    return None if v is None else float(v)


def _keyframe_change_value(path: str | Path, v: Any) -> float | None:
    if not is_keyframe_change(v):
        raise ThresholdError(
            f"thresholds file {path}: keyframe_change must be a fraction in (0, 1] or null, got {v!r}"
        )
    return _change_or_none(v)


def _weights_value(path: str | Path, v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise ThresholdError(
            f"thresholds file {path}: weights must be a fingerprint string or null, got {v!r}"
        )
    return v


def _is_deltacnn(data: Any) -> bool:
    """DeltaCNN's format: a non-empty object keyed by index (``"0".."N-1"``, in execution order);
    whether the keys are exactly those is :func:`_deltacnn_values`' check."""
    return isinstance(data, dict) and bool(data) and all(str(k).isdigit() for k in data)


def _deltacnn_values(path: str | Path, data: dict[str, Any]) -> list[Any]:
    """The values of a DeltaCNN file in key order, refusing keys that are not exactly ``"0".."N-1"``:
    a missing index (``"0", "1", "3"``) or one written twice (``"1"`` and ``"01"``) means the file
    does not hold one value per truncation point in execution order, and mapping it by position would
    put values on the wrong points."""
    want = [str(i) for i in range(len(data))]
    if set(data) != set(want):
        missing = [k for k in want if k not in data]
        extra = sorted((k for k in data if k not in want), key=lambda k: (len(k), k))
        raise ThresholdError(
            f'DeltaCNN thresholds file {path}: keys must be "0".."{len(data) - 1}", one per truncation '
            f"point in execution order (missing {', '.join(missing)}; not expected {', '.join(extra)})"
        )
    return [data[k] for k in want]


def load_thresholds(path: str | Path, names: Sequence[str] | None = None) -> ThresholdFile:
    """Read a deltatune thresholds file, or, given the network's truncation point ``names`` (execution
    order), a DeltaCNN one (``{"0": t0, "1": t1, ...}``, mapped onto them by :func:`from_deltacnn`: a
    setting tuned with DeltaCNN's own library runs here as it is, in mode ``max``, DeltaCNN's)."""
    data = _read_json(path)
    if names is not None and _is_deltacnn(data):
        return ThresholdFile(from_deltacnn(path, names), meta={"source": "DeltaCNN thresholds file"})
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("thresholds"), dict)
    ):
        also = ' or DeltaCNN\'s {"0": t0, "1": t1, ...}' if names is not None else ""
        raise ThresholdError(
            f'thresholds file {path}: not a deltatune thresholds file (expected "format": "{FORMAT}"{also})'
        )
    th = {str(k): _check_value(f"{path}: {k}", v) for k, v in data["thresholds"].items()}
    return ThresholdFile(
        thresholds=th,
        mode=_mode_value(path, data.get("mode", "max")),
        input_dilation=_dilation_value(path, data.get("input_dilation", 1)),
        keyframe_interval=_keyframe_value(path, data.get("keyframe_interval", 0)),
        keyframe_change=_keyframe_change_value(path, data.get("keyframe_change")),
        model=data.get("model"),
        meta=dict(data.get("meta") or {}),
        weights=_weights_value(path, data.get("weights")),
    )


def check_thresholds_file(path: str | Path) -> None:
    """Refuse a thresholds file that no network could load, before any model is built or frame read.

    A DeltaCNN file's values are checked here; whether its count matches the network's truncation
    points is :func:`load_thresholds`' check, once the network exists. Raises :class:`ThresholdError`."""
    data = _read_json(path)
    if _is_deltacnn(data):
        for k, v in enumerate(_deltacnn_values(path, data)):
            _check_value(f"{path}: {k}", v)
        return
    load_thresholds(path, names=())


def to_deltacnn(
    names: Sequence[str], thresholds: Mapping[str, float | None], *, fused_conv_keys: Sequence[str] = ()
) -> dict[str, float]:
    """DeltaCNN's ``{"0": t0, "1": t1, ...}`` in execution order.

    DeltaCNN registers one key per ``DCThreshold`` on its first forward. A ``DCConv2d`` built with a fused
    ``activation=`` registers an extra (unused) key just before its activation's key: list those
    activations' names in ``fused_conv_keys`` to insert a duplicate entry there. ``None`` ("never
    truncate") is written as 0.0, DeltaCNN's closest setting.
    """
    out: dict[str, float] = {}
    fused = set(fused_conv_keys)
    i = 0
    for n in names:
        v = thresholds[n]
        val = 0.0 if v is None else float(v)
        if n in fused:
            out[str(i)] = val
            i += 1
        out[str(i)] = val
        i += 1
    return out


def from_deltacnn(
    path: str | Path, names: Sequence[str], *, fused_conv_keys: Sequence[str] = ()
) -> dict[str, float | None]:
    """Map a DeltaCNN thresholds file onto ``names`` (execution order); counts must agree."""
    data = _read_json(path)
    if not _is_deltacnn(data):
        raise ThresholdError(f'DeltaCNN thresholds file {path}: expected an object keyed "0".."N-1"')
    values = _deltacnn_values(path, data)
    expected = len(names) + len(set(fused_conv_keys))
    if len(values) != expected:
        raise ThresholdError(
            f"DeltaCNN thresholds file {path}: has {len(values)} entries but the model has {expected} "
            "truncation points in execution order (check fused-activation keys)"
        )
    out: dict[str, float | None] = {}
    i = 0
    fused = set(fused_conv_keys)
    for n in names:
        if n in fused:
            i += 1
        out[n] = _check_value(f"{path}: {i}", values[i])
        i += 1
    return out
