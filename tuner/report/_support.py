"""Support of :mod:`deltatune.report.analysis`: JSON-ready dataclasses, bootstrap CIs, run counts, provenance.

Kept apart so that the analysis module reads as the list of what a report computes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from itertools import product
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from deltatune.ablation.results import run_keys
from deltatune.errors import ConfigError
from deltatune.stats import Description, TestResult
from deltatune.stats._results import plain  # one JSON rule for statistics and reports

if TYPE_CHECKING:
    import pandas as pd

    from deltatune.ablation.results import AblationResults

__all__ = [
    "Plain",
    "plain",
    "empty_description",
    "RunCount",
    "ProvenanceSummary",
    "run_count",
    "provenance_summary",
    "RunSpeed",
    "speed_per_run",
    "nan_test",
    "attempt",
    "FAILURES",
]


T = TypeVar("T")

#: At most this many missing (cell, unit) pairs are listed by name.
MAX_MISSING_LISTED = 40


class Plain:
    """Mixin of the report's frozen dataclasses: ``to_dict()`` of every field, JSON-ready."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (nested results as dicts; NaN and infinities as ``None``)."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def empty_description(level: float = 0.95) -> Description:
    """The summary of no observations: n = 0, every number NaN (``describe`` refuses empty input)."""
    nan = math.nan
    return Description(
        n=0, mean=nan, sd=nan, median=nan, ci_low=nan, ci_high=nan, level=level, ci_method="n/a"
    )


def nan_test(reason: str, *, paired: bool, n: int) -> TestResult:
    """A test that could not be run: NaN statistic and p, ``reason`` says why."""
    return TestResult(
        test="none",
        statistic=math.nan,
        pvalue=math.nan,
        n=n,
        paired=paired,
        reason=reason,
        normality_pvalue=None,
        mean_difference=math.nan,
        effect_sizes=(),
        power_n=None,
    )


#: Errors of a statistic on degenerate data: reported as a note or a NaN result, never raised.
FAILURES = (ConfigError, ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError)


def attempt(notes: list[str], what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)``, or ``None`` with a note when it fails on the data."""
    try:
        return fn(*args, **kwargs)
    except FAILURES as e:
        notes.append(f"{what} not computed: {e}")
        return None


@dataclass(frozen=True)
class RunCount(Plain):
    """Completed vs expected runs; ``missing`` names the (design cell, unit) pairs without a run, where
    units are crossed with design cells (some unit has runs in two cells; else none is missing).

    Design factors are those constant within every run (observation factors vary inside a run).
    ``missing`` lists at most :data:`MAX_MISSING_LISTED` pairs; ``n_missing`` counts them all.
    """

    completed: int
    expected: int
    design_factors: tuple[str, ...]
    runs_per_cell: dict[str, int]
    missing: tuple[str, ...]
    n_missing: int


def run_count(results: AblationResults, obs: pd.DataFrame) -> RunCount:
    """How many runs completed, per design cell, and which (cell, unit) pairs are missing."""
    factors = [f for f in results.factors if f in obs.columns]
    if obs.empty:
        return RunCount(0, int(results.expected_runs), tuple(factors), {}, (), 0)
    obs = obs.assign(run=run_keys(obs))
    per_run = obs.groupby("run")
    design = [f for f in factors if int(per_run[f].nunique().max()) <= 1]
    runs = obs.drop_duplicates("run")
    levels = {f: [str(v) for v in results.factors[f]] for f in design}
    cell_of = runs[design].astype(str).agg(" / ".join, axis=1) if design else runs["run"].map(lambda _: "all")
    counts = cell_of.value_counts()
    names = [" / ".join(c) for c in product(*levels.values())] if design else ["all"]
    per_cell = {n: int(counts.get(n, 0)) for n in names}
    per_cell.update({str(k): int(v) for k, v in counts.items() if k not in per_cell})
    units = list(dict.fromkeys(runs["unit"].astype(str)))
    have = set(zip(cell_of, runs["unit"].astype(str), strict=True))
    label = " / ".join(design) if design else ""
    # a (cell, unit) pair is missing only where units are crossed with cells (a seed run under two
    # settings); a table whose every row is its own unit expects no unit under any other cell
    crossed = len({u for _, u in have}) < len(have)
    missing = [
        f"{label} = {cell}, {results.unit_name} {u}" if design else f"{results.unit_name} {u}"
        for cell in names
        for u in units
        if crossed and (cell, u) not in have
    ]
    completed = int(runs["run"].nunique())
    return RunCount(
        completed=completed,
        # a table's rows are all it knows of: the (cell, unit) pairs it lacks are expected runs too
        expected=max(int(results.expected_runs), completed + len(missing)),
        design_factors=tuple(design),
        runs_per_cell=per_cell,
        missing=tuple(missing[:MAX_MISSING_LISTED]),
        n_missing=len(missing),
    )


@dataclass(frozen=True)
class ProvenanceSummary(Plain):
    """Where the runs come from: git revisions and package versions (with run counts), hosts, wall time."""

    git_revisions: dict[str, int]
    versions: dict[str, tuple[str, ...]]
    hosts: tuple[str, ...]
    total_wall_s: float
    retried_runs: int
    runs: int


def provenance_summary(prov: pd.DataFrame | None) -> ProvenanceSummary:
    """Summarize the provenance table; unreadable ``versions`` JSON is counted under ``"?"``."""
    if prov is None or prov.empty:
        return ProvenanceSummary({}, {}, (), math.nan, 0, 0)
    git = (
        {str(k): int(v) for k, v in prov["git_revision"].astype(str).value_counts().items()}
        if ("git_revision" in prov.columns)
        else {}
    )
    versions: dict[str, set[str]] = {}
    for text in prov.get("versions", []):
        try:
            d = json.loads(text) if isinstance(text, str) else dict(text)
        except (TypeError, ValueError):
            d = {"?": "unreadable"}
        for pkg, ver in d.items():
            versions.setdefault(str(pkg), set()).add(str(ver))
    hosts = tuple(sorted(map(str, prov["host"].dropna().unique()))) if "host" in prov.columns else ()
    wall = float(prov["wall_s"].astype(float).sum()) if "wall_s" in prov.columns else math.nan
    retried = int((prov["attempt"].astype(int) > 1).sum()) if "attempt" in prov.columns else 0
    return ProvenanceSummary(
        git_revisions=git,
        versions={k: tuple(sorted(v)) for k, v in sorted(versions.items())},
        hosts=hosts,
        total_wall_s=wall,
        retried_runs=retried,
        runs=int(prov["run"].nunique()) if "run" in prov.columns else len(prov),
    )


@dataclass(frozen=True)
class RunSpeed(Plain):
    """The measured speed-up of one run: median ratio (dense / delta) over its repeats, with the
    order-statistic CI of the median and the confidence level it reaches (75 % at 3 repeats)."""

    run: str
    levels: dict[str, str]
    n_repeats: int
    median: float
    ci_low: float
    ci_high: float
    ci_level: float
    unit: str = ""
    """The run's repeated unit (seed or segment), where the timings say it."""


def speed_per_run(sr: pd.DataFrame | None, factors: list[str]) -> tuple[RunSpeed, ...]:
    """Each run's median speed-up over its timing repeats, with the order-statistic CI of the median
    (:func:`deltatune.stats.median_ci`)."""
    from deltatune.stats import median_ci

    if sr is None or sr.empty or "ratio" not in sr.columns or "run" not in sr.columns:
        return ()
    present = [f for f in factors if f in sr.columns]
    runs: list[RunSpeed] = []
    for run, g in sr.groupby("run", sort=False):
        r = g["ratio"].to_numpy(float)
        r = r[np.isfinite(r)]
        ci = median_ci(r) if r.size else None
        runs.append(
            RunSpeed(
                str(run),
                {f: str(g[f].iloc[0]) for f in present},
                int(r.size),
                float(np.median(r)) if r.size else math.nan,
                ci.low if ci else math.nan,
                ci.high if ci else math.nan,
                ci.level if ci else math.nan,
                str(g["unit"].iloc[0]) if "unit" in g.columns else "",
            )
        )
    return tuple(runs)
