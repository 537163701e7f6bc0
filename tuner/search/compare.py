"""Several search studies side by side (``deltatune pareto --study A --study B ...``): whether their fronts
can share axes, and one summary row each, with every hypervolume taken at one reference point.

Two studies' fronts compare only in the same accuracy unit (PCK points or top-1 points) and the same kind
of speedup (MACs, predicted or measured wall clock): :func:`check_comparable` refuses anything else, and
names what else differs (the workload, the budget, the weights) so that the reader can judge. Each
study's own hypervolume is taken up to its own budget; side by side, the reference point is the smallest
budget of them (:func:`summary_frame`), so that no study scores area that another could not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from deltatune.errors import ConfigError
from deltatune.search.objective import SPEED_NAMES
from deltatune.search.pareto import WEIGHTS_ATTR, hypervolume

__all__ = ["StudyFront", "check_comparable", "reference_loss", "summary_frame", "fronts_frame"]


@dataclass(frozen=True)
class StudyFront:
    """What the comparison needs of one study: its name, metadata, every trial, its front, and the
    recommended re-timed trial (``None`` when the search timed nothing)."""

    name: str
    meta: Mapping[str, Any]
    unit: str
    trials: pd.DataFrame
    front: pd.DataFrame
    recommended: Mapping[str, Any] | None = None

    @property
    def budget(self) -> float:
        """The study's accuracy budget (as stored; 1.0 when a study predates the record)."""
        return float(self.meta.get("budget", 1.0))


def check_comparable(studies: list[StudyFront]) -> list[str]:
    """Refuse (``ConfigError``) studies whose fronts cannot share axes: other accuracy units or speed
    kinds. Return one note per other difference worth knowing (workload, budget, weights)."""
    names = ", ".join(s.name for s in studies)
    units = {s.unit for s in studies}
    if len(units) > 1:
        each = "; ".join(f"{s.name}: {s.unit}" for s in studies)
        raise ConfigError(f"--study {names}: their accuracy losses are in different units ({each}); "
                          "fronts compare only within one")
    kinds = {str(s.meta.get("speed", "macs")) for s in studies}
    if len(kinds) > 1:
        each = "; ".join(f"{s.name}: {SPEED_NAMES.get(str(s.meta.get('speed', 'macs')), '?')} speedup"
                         for s in studies)
        raise ConfigError(f"--study {names}: their speedups are of different kinds ({each}); fronts "
                          "compare only within one (search --speed)")
    notes = []
    first = studies[0]
    aspects = (("workload", "workload (model, video, windows, frames)"), ("budget", "budget"),
               (WEIGHTS_ATTR, "weights"))
    for s in studies[1:]:
        differ = [what for key, what in aspects if s.meta.get(key) != first.meta.get(key)]
        if differ:
            notes.append(f"{s.name} differs from {first.name} in {' and '.join(differ)}: the fronts were "
                         "scored on different terms")
    return notes


def reference_loss(studies: list[StudyFront]) -> float:
    """The common reference point's accuracy loss: the smallest budget of the studies."""
    return min(s.budget for s in studies)


def summary_frame(studies: list[StudyFront]) -> pd.DataFrame:
    """One row per study: ``study, trials, feasible, front, hypervolume`` (up to :func:`reference_loss`),
    ``best_trial, best_loss, best_speedup`` (the front's fastest point within that loss) and
    ``measured, measured_trial`` (the study's recommended re-timed trial, if it has one). Columns are
    of Python objects: a study without such a point has ``None`` there."""
    ref = reference_loss(studies)
    rows = []
    for s in studies:
        within = s.front[s.front["accuracy_loss"] <= ref] if not s.front.empty else s.front
        best = within.sort_values(["speedup", "accuracy_loss"], ascending=[False, True]).head(1)
        rec = s.recommended
        rows.append({
            "study": s.name,
            "trials": len(s.trials),
            "feasible": int(s.trials["feasible"].sum()) if not s.trials.empty else 0,
            "front": len(s.front),
            "hypervolume": hypervolume(s.front, ref_loss=ref) if not s.front.empty else 0.0,
            "best_trial": int(best["trial"].iloc[0]) if not best.empty else None,
            "best_loss": float(best["accuracy_loss"].iloc[0]) if not best.empty else None,
            "best_speedup": float(best["speedup"].iloc[0]) if not best.empty else None,
            "measured": None if rec is None else float(rec["measured"]),
            "measured_trial": None if rec is None else int(rec["trial"]),
        })
    return pd.DataFrame(rows, dtype=object)  # object: a missing value stays None, not NaN in a float column


def fronts_frame(studies: list[StudyFront]) -> pd.DataFrame:
    """The fronts of all studies in one long table: ``study, trial, accuracy_loss, speedup``."""
    cols = ["study", "trial", "accuracy_loss", "speedup"]
    parts = [s.front.assign(study=s.name)[cols] for s in studies if not s.front.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
