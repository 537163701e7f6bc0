"""The results of an ablation study as tidy tables: what ``deltatune report`` reads.

One documented long-form schema (:class:`AblationResults`), independent of where the runs were stored:

``observations``
    one row per (run, observation, metric): ``run`` (the run key), ``seed``, ``unit`` (the repeated unit: a
    seed number or a clip/segment name, as text), one column per factor (levels as text), ``metric``,
    ``value``. A run usually gives one observation; a run that scores its result on several clips gives one
    per clip, told apart by an observation factor (e.g. ``scored_on``).
``speed_repeats``
    one row per timed repeat: ``run``, ``seed``, ``unit``, factor columns, ``repeat``, ``dense_ms``,
    ``delta_ms``, ``ratio`` (dense / delta; the measured speedup of that repeat).
``fronts``
    the Pareto-front points of every search run: ``run``, ``seed``, ``unit``, factor columns,
    ``accuracy_loss``, ``speedup``.
``provenance``
    one row per run: ``run``, ``git_revision``, ``versions`` (JSON text), ``wall_s``, ``host``,
    ``attempt`` (1 for a first try, 2 for the first retry ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MetricSpec", "AblationResults", "OBSERVATION_COLUMNS", "is_speedup_name", "run_keys", "run_total"]

#: Columns of ``AblationResults.observations`` besides the factor columns.
OBSERVATION_COLUMNS = ("run", "seed", "unit", "metric", "value")


def run_keys(obs: pd.DataFrame) -> pd.Series:
    """Each observation's run as one key, ``run|unit``: a run is a name within its unit (a table may
    name its runs r0, r1 under every seed)."""
    return obs["run"].astype(str) + "|" + obs["unit"].astype(str)


def run_total(obs: pd.DataFrame) -> int:
    """How many runs ``obs`` holds (:func:`run_keys`)."""
    return int(run_keys(obs).nunique()) if len(obs) else 0


def is_speedup_name(metric: str) -> bool:
    """Whether ``metric`` is named as a speed-up: its name, lower-cased with every character that is not a
    letter or digit dropped, ends in ``speedup`` (``heldout_speedup``, ``Speedup``, ``MAC speed-up``,
    ``speed_up``). A table's column is named by hand, and ``Speedup`` is as much a ratio as ``speedup``."""
    return re.sub(r"[^0-9a-z]+", "", metric.lower()).endswith("speedup")


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is read: its label, its direction and (optionally) an equivalence margin.

    ``margin``: differences within ``±margin`` (in the metric's unit) count as practically equivalent;
    the report then tests equivalence (TOST) and gives the Bayesian probability of that region.
    """

    name: str
    label: str
    higher_is_better: bool
    margin: float | None = None
    #: ``None``: a ratio when the name says speed-up (:func:`is_speedup_name`); ``True`` or ``False``
    #: say it outright (a table's ``speedup`` column holding a 0 is no ratio of times).
    as_ratio: bool | None = None

    @property
    def ratio(self) -> bool:
        """Whether the metric is a ratio (a speed-up: dense / delta time or MACs), whose per-level summary
        is a geometric mean with a log-scale interval (:func:`deltatune.stats.describe`)."""
        return is_speedup_name(self.name) if self.as_ratio is None else self.as_ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "higher_is_better": self.higher_is_better,
            "margin": self.margin,
            "ratio": self.ratio,  # its levels' "mean" is then the geometric mean (ci_method "log-t")
        }


@dataclass(frozen=True)
class AblationResults:
    """Everything a report needs about one study (see the module docstring for the tables' columns).

    ``factors``: factor name -> its levels in declared order (as text), design factors first, then
    observation factors. ``pairing``: ``"unit"`` when the runs of different levels share their repeated
    unit (same seed, same clip) and are compared pair by pair, ``"none"`` when they are independent.
    ``primary``: ``(factor, baseline level, metric)`` of the comparison the study was designed for.
    """

    name: str
    description: str
    model: str
    factors: dict[str, list[str]]
    pairing: str
    unit_name: str
    metrics: list[MetricSpec]
    primary: tuple[str, str, str] | None
    observations: pd.DataFrame
    speed_repeats: pd.DataFrame
    fronts: pd.DataFrame
    provenance: pd.DataFrame
    expected_runs: int
    notes: list[str] = field(default_factory=list)
    #: ``(setting, value)`` rows every run shares (video, crops, clip, repeats, fixed settings)
    setup: list[tuple[str, str]] = field(default_factory=list)
    #: read from a table of runs made elsewhere: there are no timing repeats, fronts or provenance to report
    from_table: bool = False
    #: whether the study timed its runs (``False``: ``speed_repeats = 0``, so a report says speed was not
    #: timed rather than showing an empty section)
    timed: bool = True

    def metric(self, name: str) -> MetricSpec:
        """The :class:`MetricSpec` called ``name`` (KeyError when the study has none)."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def varied(self) -> list[str]:
        """The factors with two levels or more, in declared order: the ones a comparison, a box plot or an
        interaction can be drawn over (a one-level factor is a fixed setting)."""
        return [f for f, levels in self.factors.items() if len(levels) >= 2]

    @property
    def completed_runs(self) -> int:
        return run_total(self.observations)
