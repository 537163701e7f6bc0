"""Declarative strategy comparisons: one TOML file, one study per strategy, equal trial budgets.

A study file (``studies/*.toml``) names a workload and a list of strategies::

    [comparison]
    name = "hrnet-strategies"
    model = "hrnet"
    trials = 24                 # per strategy: equal evaluation budgets
    strategies = ["tpe", "nsga2", "deltacnn-greedy", "sweep"]
    budget = 1.0                # PCK points
    # optional: weights, video, frames, streams, space, seed, labels, joints ("present" or "all")

Each strategy runs as its own Optuna study ``<name>-<strategy>`` (resumable like ``deltatune search``),
and the comparison reports, per strategy, the best speedup within the budget on the tuning frames, the
same trial re-scored on held-out frames, and the hypervolume of its front (reference point: loss =
budget, speedup = 1).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltatune.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Comparison", "load_comparison", "run_comparison", "ComparisonResult"]

_KEYS = {"name", "model", "weights", "video", "frames", "streams", "trials", "strategies", "budget", "space",
         "seed", "labels", "joints", "description"}


@dataclass(frozen=True)
class Comparison:
    """A parsed study file."""

    name: str
    model: str
    strategies: tuple[str, ...]
    trials: int = 24
    budget: float = 1.0
    space: str = "group"
    weights: str | None = "default"
    video: str = "vtest"
    frames: int = 16
    streams: int = 2
    seed: int = 0
    labels: str | None = None
    joints: str = "present"
    description: str = ""


def load_comparison(path: str | Path) -> Comparison:
    """Read and validate a study file (one clear error naming the file and the problem)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"study file {p}: no such file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"study file {p}: not valid TOML ({exc})") from None
    sec = data.get("comparison")
    if not isinstance(sec, dict):
        raise ConfigError(f"study file {p}: needs a [comparison] table")
    unknown = sorted(set(sec) - _KEYS)
    if unknown:
        raise ConfigError(f"study file {p}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    for key in ("name", "model", "strategies"):
        if key not in sec:
            raise ConfigError(f"study file {p}: missing key {key!r} in [comparison]")
    strategies = sec["strategies"]
    if not isinstance(strategies, list) or not strategies or not all(isinstance(s, str) for s in strategies):
        raise ConfigError(f"study file {p}: 'strategies' must be a non-empty list of names")
    kw = {k: v for k, v in sec.items() if k != "strategies"}
    if kw.get("weights") == "none":
        kw["weights"] = None
    return Comparison(strategies=tuple(strategies), **kw)


@dataclass
class ComparisonResult:
    """One row per strategy (see :func:`run_comparison`)."""

    comparison: Comparison
    table: pd.DataFrame
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"comparison": self.comparison.name, "budget": self.comparison.budget,
                "trials_per_strategy": self.comparison.trials,
                "rows": self.table.to_dict(orient="records"), "notices": self.notices}


def run_comparison(
    comp: Comparison,
    *,
    trials: int | None = None,
    storage_dir: str | Path | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> ComparisonResult:
    """Run (or resume) every strategy of ``comp`` and tabulate the results."""
    import pandas as pd

    from deltatune.search.runner import SearchSettings, run_search
    from deltatune.search.strategies import strategy_class
    from deltatune.search.study_workload import StudyWorkload

    for s in comp.strategies:
        strategy_class(s)  # unknown names fail before any work
    n = trials or comp.trials
    workload = StudyWorkload(comp.model, weights=comp.weights, video=comp.video, frames=comp.frames,
                             streams=comp.streams, labels=comp.labels, joints=comp.joints)
    rows, notices = [], []
    for strategy in comp.strategies:
        study = f"{comp.name}-{strategy}"
        storage = None if storage_dir is None else str(Path(storage_dir) / f"{study}.journal")
        settings = SearchSettings(workload=workload, trials=n, strategy=strategy, space=comp.space,
                                  budget=comp.budget, study=study, storage=storage, seed=comp.seed)
        cb = (lambda k, _s=strategy: on_progress(_s, k)) if on_progress else None
        res = run_search(settings, on_progress=cb)
        notices.extend(x for x in res.notices if x not in notices)
        best = res.best_feasible or {}
        rows.append({
            "strategy": strategy,
            "trials": res.n_trials,
            "feasible": int(res.trials["feasible"].sum()) if "feasible" in res.trials else 0,
            "best_speedup": best.get("speedup", float("nan")),
            "best_loss": best.get("accuracy_loss", float("nan")),
            "heldout_speedup": best.get("heldout_speedup", float("nan")),
            "heldout_loss": best.get("heldout_accuracy_loss", float("nan")),
            "hypervolume": res.hypervolume,
            "study": study,
        })
    return ComparisonResult(comp, pd.DataFrame(rows), notices)
