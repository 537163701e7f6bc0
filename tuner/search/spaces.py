"""Search spaces: how an Optuna trial's parameters become a :class:`~deltatune.search.objective.TrialConfig`.

Three spaces, all with the input threshold (``thr.input``) and, optionally, its dilation
(``input_dilation`` in {1, 3, 5}) and the truncation mode (``mode``):

``layer``
    one parameter ``thr.<truncation point>`` per call site.
``group``
    one parameter ``thr.<group>`` per stage/branch (see :func:`group_of`).
``global``
    one ``scale`` times a multiplier ``mult.<group>`` per group.

**Log-uniform with an explicit zero.** A threshold parameter is ``suggest_float(lo / 10, hi, log=True)``;
values below ``lo`` are snapped to 0 (never truncate more than float noise). So the parameter keeps the
threshold's own units (readable in optuna-dashboard), is log-uniform over ``[lo, hi]``, and 0 has the
probability mass of one decade. The resolved thresholds of every trial are stored in its user attribute
``thresholds``; that, not the parameters, is what ``export`` writes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deltatune.errors import ConfigError
from deltatune.search.objective import TrialConfig

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
        if not (0 < self.lo < self.hi and 0 < self.input_lo < self.input_hi):
            raise ConfigError(f"threshold ranges need 0 < lo < hi, got {self}")


def group_of(name: str) -> str:
    """The stage/branch group of a truncation point name.

    >>> group_of("stage3.1.branches.2.0.relu#1"), group_of("stage3.1.fuse_layers.1.0.0.2"), group_of("relu")
    ('stage3.b2', 'stage3.fuse', 'stem')
    >>> group_of("layer1.0.relu"), group_of("transition2.3.0.2"), group_of("input")
    ('layer1', 'transition2', 'input')
    """
    if name == "input":
        return "input"
    m = re.match(r"(stage\d+)\.\d+\.branches\.(\d+)\.", name)
    if m:
        return f"{m.group(1)}.b{m.group(2)}"
    m = re.match(r"(stage\d+)\.\d+\.", name)
    if m:
        return f"{m.group(1)}.fuse"
    head = re.split(r"[.:#]", name, maxsplit=1)[0]
    return head if head and "." in name else "stem"


def groups(names: Sequence[str]) -> dict[str, list[str]]:
    """``{group: [names]}`` in execution order of first appearance."""
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(group_of(n), []).append(n)
    return out


def _snap(v: float, lo: float) -> float:
    return 0.0 if v < lo else float(v)


class SearchSpace(ABC):
    """Maps trial parameters to a :class:`TrialConfig`; one subclass per parameterisation."""

    name: str = ""

    def __init__(
        self,
        names: Sequence[str],
        *,
        ranges: Ranges | None = None,
        tune_dilation: bool = True,
        modes: Sequence[str] = ("max",),
    ) -> None:
        if not names or names[0] != "input":
            raise ConfigError("a search space needs the network's truncation points, 'input' first")
        self.names = list(names)
        self.ranges = ranges or Ranges()
        self.tune_dilation = tune_dilation
        self.modes = tuple(modes)

    def _threshold(self, trial: optuna.Trial, key: str, *, lo: float, hi: float) -> float:
        return _snap(trial.suggest_float(f"thr.{key}", lo / 10, hi, log=True), lo)

    def _input(self, trial: optuna.Trial) -> float:
        return self._threshold(trial, "input", lo=self.ranges.input_lo, hi=self.ranges.input_hi)

    def _extras(self, trial: optuna.Trial) -> tuple[int, str]:
        dil = int(trial.suggest_categorical("input_dilation", DILATIONS)) if self.tune_dilation else 1
        mode = str(trial.suggest_categorical("mode", self.modes)) if len(self.modes) > 1 else self.modes[0]
        return dil, mode

    def suggest(self, trial: optuna.Trial) -> TrialConfig:
        """Draw this trial's parameters and resolve them into thresholds for every truncation point."""
        thresholds = {"input": self._input(trial)}
        thresholds.update(self._layers(trial))
        dil, mode = self._extras(trial)
        return TrialConfig({n: thresholds[n] for n in self.names}, dil, mode)

    @abstractmethod
    def _layers(self, trial: optuna.Trial) -> dict[str, float]:
        """Thresholds of every non-input truncation point."""

    def anchor_params(self, position: float | None) -> dict[str, object]:
        """Parameters that put *every* threshold at the same log position in its range (0 = ``lo``,
        1 = ``hi``; ``None`` = all thresholds 0, the exact delta network), input dilation 1, the first
        mode: known-good starting points to enqueue."""
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
        return params

    @abstractmethod
    def _anchor_layers(self, t: float) -> dict[str, object]:
        """Layer parameters that give every layer threshold ``t``."""

    @property
    def dimension(self) -> int:
        """Number of parameters a trial draws."""
        return len(self.param_keys()) + int(self.tune_dilation) + int(len(self.modes) > 1)

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
    """One threshold per stage/branch group (:func:`group_of`)."""

    name = "group"

    def __init__(self, names: Sequence[str], **kwargs: object) -> None:
        super().__init__(names, **kwargs)  # type: ignore[arg-type]
        self.groups = {g: ns for g, ns in groups(self.names).items() if g != "input"}

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
