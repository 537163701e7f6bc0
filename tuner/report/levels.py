"""Short names for factor levels that are file paths, so that a report's tables and plot axes stay readable.

A study may vary ``thresholds = ["/home/me/runs/a/hrnet.json", "/home/me/runs/b/hrnet.json"]``: as
written, every table row, sentence and tick label carries the whole path, and neighbouring tick labels
run into each other. A report names such levels by the shortest trailing part of their paths that keeps
them apart (``a/hrnet.json``, ``b/hrnet.json``) and lists each short name with its full path in the
setup table. The data is not changed: ``report --csv`` and the study store keep the levels as written.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from deltatune.ablation.results import AblationResults

__all__ = ["short_level_names", "with_short_levels"]


def _is_path(level: str) -> bool:
    """Whether ``level`` names a file: a path with separators that starts at a root, a drive, the home
    or the current folder, or ends in a file name with a lettered suffix (``studies/t.json``). A ratio
    such as ``1/2`` or ``0.5/1.0`` is not one."""
    if "/" not in level and "\\" not in level:
        return False
    if level.startswith(("/", "./", "../", "~", "\\")) or re.match(r"[A-Za-z]:\\", level):
        return True
    return bool(re.search(r"[A-Za-z]", PurePath(level.replace("\\", "/")).suffix))


def short_level_names(levels: list[str]) -> dict[str, str]:
    """``{level: short name}`` for the levels that are file paths and can be named shorter: the fewest
    trailing path parts that keep every level of the factor distinct (from each other and from the
    levels that are not paths). Empty when no level is a path or none gets shorter."""
    paths = [lv for lv in levels if _is_path(lv)]
    if not paths:
        return {}
    parts = {lv: PurePath(lv.replace("\\", "/")).parts for lv in paths}
    others = {lv for lv in levels if not _is_path(lv)}
    for k in range(1, max(len(p) for p in parts.values()) + 1):
        names = {lv: "/".join(p[-k:]) for lv, p in parts.items()}
        if len(set(names.values())) == len(names) and not set(names.values()) & others:
            return {lv: n for lv, n in names.items() if len(n) < len(lv)}
    return {}


def with_short_levels(results: AblationResults) -> AblationResults:
    """``results`` with path levels renamed by :func:`short_level_names` in every table, the factors and
    the primary comparison, and a setup row per renamed factor giving the full paths; ``results``
    itself when nothing is renamed."""
    renames = {f: m for f, levels in results.factors.items() if (m := short_level_names(list(levels)))}
    if not renames:
        return results

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for f, m in renames.items():
            if f in df.columns:
                df[f] = df[f].map(lambda v, m=m: m.get(v, v) if isinstance(v, str) else v)
        return df

    primary = results.primary
    if primary is not None and primary[0] in renames:
        factor, level, metric = primary
        primary = (factor, renames[factor].get(level, level), metric)
    rows = [
        (f"{f} (levels in full)", "; ".join(f"{short} = {full}" for full, short in m.items()))
        for f, m in renames.items()
    ]
    return replace(
        results,
        factors={f: [renames.get(f, {}).get(v, v) for v in levels] for f, levels in results.factors.items()},
        primary=primary,
        observations=frame(results.observations),
        speed_repeats=frame(results.speed_repeats),
        fronts=frame(results.fronts),
        setup=[*results.setup, *rows],
    )
