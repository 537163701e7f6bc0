"""Search spaces: how an Optuna trial's parameters become a threshold setting
(a :class:`~deltatune.delta.thresholds.ThresholdFile`).

Three spaces, all with the input threshold (``thr.input``) and, optionally, its dilation
(``input_dilation`` in {1, 3, 5}), the truncation mode (``mode``), the key-frame interval
(``keyframe_interval``, from the given list) and the key-frame-on-change fraction (``keyframe_change``,
from the given list; ``None`` is off):

``layer``
    one parameter ``thr.<truncation point>`` per call site.
``group``
    one parameter ``thr.<group>`` per group of truncation points (see :func:`group_of`).
``global``
    one ``scale`` times a multiplier ``mult.<group>`` per group.

**Log-uniform with an explicit zero.** A threshold parameter is ``suggest_float(lo / 10, hi, log=True)``;
values below ``lo`` are snapped to 0 (never truncate more than float noise). So the parameter keeps the
threshold's own units (readable in optuna-dashboard), is log-uniform over ``[lo, hi]``, and 0 has the
probability mass of one decade. The resolved thresholds of every trial are stored in its user attribute
``thresholds``; that, not the parameters, is what ``export`` writes.

**Groups come from the model card.** A card declares its groups as an ordered list of
``(name template, regex)`` (``ModelCard.threshold_groups``, e.g. HRNet's stages and branches); a name
takes the first pattern that matches its start. Names no pattern matches, and every name of a model whose
card declares none (a model of your own), fall back to :func:`generic_group`: the first dotted component.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deltatune.delta.thresholds import ThresholdFile
from deltatune.errors import ConfigError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Ranges",
    "SearchSpace",
    "LayerSpace",
    "GroupSpace",
    "GlobalSpace",
    "SPACES",
    "make_space",
    "GroupPattern",
    "generic_group",
    "check_group_patterns",
    "group_of",
    "groups",
]

DILATIONS = (1, 3, 5)


@dataclass(frozen=True)
class Ranges:
    """Threshold ranges: ``[lo, hi]`` for layers, ``[input_lo, input_hi]`` for the (normalised) input;
    ``mult`` bounds the per-group multipliers of the ``global`` space."""

    lo: float = 1e-3
    hi: float = 1.0
    input_lo: float = 1e-3
    input_hi: float = 1.0
    mult: tuple[float, float] = (0.25, 4.0)

    def __post_init__(self) -> None:
        for what, lo, hi in (("layer", self.lo, self.hi), ("input", self.input_lo, self.input_hi)):
            if not (0 < lo < hi and math.isfinite(hi)):  # also refuses NaN; an infinite hi cannot be sampled
                raise ConfigError(f"{what} threshold range {lo:g} {hi:g}: need finite numbers 0 < lo < hi")
        a, b = self.mult
        if not (0 < a <= b and math.isfinite(b)):
            raise ConfigError(f"multiplier range {a:g} {b:g}: need finite numbers 0 < lo <= hi")


#: ``(group name template, regex)``: a name the regex matches (:func:`re.match`, from the start) is in
#: group ``template.format(match[0], match[1], ...)``, so ``{1}`` is the first capture group.
GroupPattern = tuple[str, str]


def generic_group(name: str) -> str:
    """The group of a name when no model pattern claims it: ``input``, else the first dotted component
    of a nested name, else ``stem`` (top-level call sites such as ``relu``, ``relu#1``, ``:relu``).

    >>> generic_group("layer1.0.relu#2"), generic_group("layer1.0:relu"), generic_group("relu#1")
    ('layer1', 'layer1', 'stem')
    >>> generic_group(":relu"), generic_group("input")
    ('stem', 'input')
    """
    if name == "input":
        return "input"
    head = re.split(r"[.:#]", name, maxsplit=1)[0]
    return head if head and "." in name else "stem"


def check_group_patterns(patterns: Sequence[GroupPattern]) -> list[tuple[str, re.Pattern[str]]]:
    """``patterns`` compiled; a bad regex, or a template naming a capture group the regex lacks, is a
    :class:`ConfigError` (a model card's mistake, found before any trial runs)."""
    out = []
    for template, pattern in patterns:
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"threshold group pattern {pattern!r} is not a valid regex: {exc}") from None
        try:
            template.format(*([""] * (rx.groups + 1)))
        except (IndexError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"threshold group template {template!r} does not fit pattern {pattern!r} "
                f"({rx.groups} capture group(s)): {exc}"
            ) from None
        out.append((template, rx))
    return out


def group_of(name: str, patterns: Sequence[GroupPattern] = ()) -> str:
    r"""The threshold group of a truncation point name: the first of ``patterns`` matching the start of
    the name, else :func:`generic_group`. ``input`` is always a group of its own.

    >>> hrnet = [("{1}.b{2}", r"(stage\d+)\.\d+\.branches\.(\d+)\."), ("{1}.fuse", r"(stage\d+)\.\d+\.")]
    >>> group_of("stage3.1.branches.2.0.relu#1", hrnet), group_of("stage3.1.fuse_layers.1.0.0.2", hrnet)
    ('stage3.b2', 'stage3.fuse')
    >>> group_of("transition2.3.0.2", hrnet), group_of("relu", hrnet), group_of("stage3.1.relu")
    ('transition2', 'stem', 'stage3')
    """
    return _group(name, check_group_patterns(patterns))


def _group(name: str, compiled: Sequence[tuple[str, re.Pattern[str]]]) -> str:
    if name == "input":
        return "input"
    for template, rx in compiled:
        m = rx.match(name)
        if m:
            return template.format(m.group(0), *m.groups())
    return generic_group(name)


def groups(names: Sequence[str], patterns: Sequence[GroupPattern] = ()) -> dict[str, list[str]]:
    """``{group: [names]}`` (:func:`group_of` with ``patterns``) in execution order of first appearance."""
    compiled = check_group_patterns(patterns)
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(_group(n, compiled), []).append(n)
    return out


def _snap(v: float, lo: float) -> float:
    return 0.0 if v < lo else float(v)


class SearchSpace(ABC):
    """Maps trial parameters to a :class:`~deltatune.delta.thresholds.ThresholdFile`; one subclass per
    parameterisation."""

    name: str = ""

    def __init__(
        self,
        names: Sequence[str],
        *,
        ranges: Ranges | None = None,
        tune_dilation: bool = True,
        modes: Sequence[str] = ("max",),
        group_patterns: Sequence[GroupPattern] = (),
        keyframes: Sequence[int] = (0,),
        keyframe_changes: Sequence[float | None] = (None,),
    ) -> None:
        if not names or names[0] != "input":
            raise ConfigError("a search space needs the network's truncation points, 'input' first")
        self.names = list(names)
        self.ranges = ranges or Ranges()
        self.tune_dilation = tune_dilation
        self.modes = tuple(modes)
        #: key-frame intervals to choose from (``keyframe_interval``, searched when there are several)
        self.keyframes = tuple(int(k) for k in keyframes)
        #: key-frame-on-change fractions to choose from (``keyframe_change``, searched when several)
        self.keyframe_changes = tuple(None if v is None else float(v) for v in keyframe_changes)
        check_group_patterns(group_patterns)
        #: the model card's ``threshold_groups`` (grouped spaces only; see :func:`group_of`)
        self.group_patterns = tuple(group_patterns)

    def _threshold(self, trial: optuna.Trial, key: str, *, lo: float, hi: float) -> float:
        return _snap(trial.suggest_float(f"thr.{key}", lo / 10, hi, log=True), lo)

    def _input(self, trial: optuna.Trial) -> float:
        return self._threshold(trial, "input", lo=self.ranges.input_lo, hi=self.ranges.input_hi)

    def _extras(self, trial: optuna.Trial) -> tuple[int, str, int, float | None]:
        dil = int(trial.suggest_categorical("input_dilation", DILATIONS)) if self.tune_dilation else 1
        mode = str(trial.suggest_categorical("mode", self.modes)) if len(self.modes) > 1 else self.modes[0]
        kf = self.keyframes
        key = int(trial.suggest_categorical("keyframe_interval", kf)) if len(kf) > 1 else kf[0]
        kc = self.keyframe_changes
        change = trial.suggest_categorical("keyframe_change", kc) if len(kc) > 1 else kc[0]
        return dil, mode, key, change

    def suggest(self, trial: optuna.Trial) -> ThresholdFile:
        """Draw this trial's parameters and resolve them into thresholds for every truncation point."""
        thresholds = {"input": self._input(trial)}
        thresholds.update(self._layers(trial))
        dil, mode, key, change = self._extras(trial)
        return ThresholdFile(
            {n: thresholds[n] for n in self.names},
            mode=mode,
            input_dilation=dil,
            keyframe_interval=key,
            keyframe_change=change,
        )

    @abstractmethod
    def _layers(self, trial: optuna.Trial) -> dict[str, float]:
        """Thresholds of every non-input truncation point."""

    def anchor_params(self, position: float | None) -> dict[str, object]:
        """Parameters that put *every* threshold at the same log position in its range (0 = ``lo``,
        1 = ``hi``; ``None`` = all thresholds 0, the exact delta network), input dilation 1, the first
        mode, the first key-frame interval and the first key-frame-on-change fraction: known-good
        starting points to enqueue."""
        r = self.ranges
        if position is None:  # the bottom of every parameter range snaps to 0
            t, t_in = r.lo / 10, r.input_lo / 10
        else:
            t, t_in = r.lo * (r.hi / r.lo) ** position, r.input_lo * (r.input_hi / r.input_lo) ** position
        params: dict[str, object] = {"thr.input": t_in}
        params.update(self._anchor_layers(t))
        if self.tune_dilation:
            params["input_dilation"] = 1
        if len(self.modes) > 1:
            params["mode"] = self.modes[0]
        if len(self.keyframes) > 1:
            params["keyframe_interval"] = self.keyframes[0]
        if len(self.keyframe_changes) > 1:
            params["keyframe_change"] = self.keyframe_changes[0]
        return params

    @abstractmethod
    def _anchor_layers(self, t: float) -> dict[str, object]:
        """Layer parameters that give every layer threshold ``t``."""

    @property
    def dimension(self) -> int:
        """Number of parameters a trial draws."""
        extras = int(self.tune_dilation) + sum(
            len(choices) > 1 for choices in (self.modes, self.keyframes, self.keyframe_changes)
        )
        return len(self.param_keys()) + extras

    @abstractmethod
    def param_keys(self) -> list[str]:
        """Names of the threshold-like parameters (for documentation and plots)."""


class LayerSpace(SearchSpace):
    """One threshold per truncation point."""

    name = "layer"

    def _layers(self, trial: optuna.Trial) -> dict[str, float]:
        r = self.ranges
        return {n: self._threshold(trial, n, lo=r.lo, hi=r.hi) for n in self.names[1:]}

    def param_keys(self) -> list[str]:
        return [f"thr.{n}" for n in self.names]

    def _anchor_layers(self, t: float) -> dict[str, object]:
        return {f"thr.{n}": t for n in self.names[1:]}


class GroupSpace(SearchSpace):
    """One threshold per group of truncation points (:func:`group_of` with the card's patterns)."""

    name = "group"

    def __init__(self, names: Sequence[str], **kwargs: object) -> None:
        super().__init__(names, **kwargs)  # type: ignore[arg-type]
        self.groups = {g: ns for g, ns in groups(self.names, self.group_patterns).items() if g != "input"}

    def _layers(self, trial: optuna.Trial) -> dict[str, float]:
        r = self.ranges
        out: dict[str, float] = {}
        for g, ns in self.groups.items():
            t = self._threshold(trial, g, lo=r.lo, hi=r.hi)
            out.update({n: t for n in ns})
        return out

    def param_keys(self) -> list[str]:
        return ["thr.input", *(f"thr.{g}" for g in self.groups)]

    def _anchor_layers(self, t: float) -> dict[str, object]:
        return {f"thr.{g}": t for g in self.groups}


class GlobalSpace(GroupSpace):
    """A global scale times a per-group multiplier (the multiplier shapes, the scale trades off)."""

    name = "global"

    def _layers(self, trial: optuna.Trial) -> dict[str, float]:
        r = self.ranges
        scale = _snap(trial.suggest_float("scale", r.lo / 10, r.hi, log=True), r.lo)
        out: dict[str, float] = {}
        for g, ns in self.groups.items():
            m = trial.suggest_float(f"mult.{g}", r.mult[0], r.mult[1], log=True)
            out.update({n: scale * m for n in ns})
        return out

    def param_keys(self) -> list[str]:
        return ["thr.input", "scale", *(f"mult.{g}" for g in self.groups)]

    def _anchor_layers(self, t: float) -> dict[str, object]:
        return {"scale": t, **{f"mult.{g}": 1.0 for g in self.groups}}


SPACES: dict[str, type[SearchSpace]] = {"layer": LayerSpace, "group": GroupSpace, "global": GlobalSpace}


def make_space(name: str, names: Sequence[str], **kwargs: object) -> SearchSpace:
    """Build the space called ``name`` (``layer``, ``group`` or ``global``) over ``names``."""
    try:
        cls = SPACES[name]
    except KeyError:
        raise ConfigError(f"--space {name!r} is unknown; choose one of {', '.join(SPACES)}") from None
    return cls(names, **kwargs)  # type: ignore[arg-type]
