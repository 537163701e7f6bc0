"""Threshold search: Optuna multi-objective studies trading accuracy loss against speedup.

- :mod:`~deltatune.search.study_workload` — what is evaluated (model, weights, clip, tuning/held-out split);
- :mod:`~deltatune.search.objective` — the two objectives of one threshold setting, dense reference cache;
- :mod:`~deltatune.search.spaces` — ``layer`` / ``group`` / ``global`` parameterisations;
- :mod:`~deltatune.search.strategies` — TPE, NSGA-II, GP, random and the greedy/sweep baselines;
- :mod:`~deltatune.search.storage` — journal file (default) or RDB storage;
- :mod:`~deltatune.search.runner` — workers, ask/tell loop, budget constraint, held-out check;
- :mod:`~deltatune.search.pareto` — tidy tables, front, hypervolume, recommendation;
- :mod:`~deltatune.search.export` — thresholds files from trials.

Importing this package imports neither optuna nor seaborn; they load when a study is opened.
"""

from __future__ import annotations

from deltatune.search.export import FORMATS, ExportResult, export_trial, select_trial
from deltatune.search.objective import SPEEDS, Evaluation, Evaluator, resolve_speed
from deltatune.search.pareto import (
    TRIAL_COLUMNS,
    best_under,
    hypervolume,
    pareto_frame,
    study_meta,
    thresholds_frame,
    trials_frame,
)
from deltatune.search.runner import SearchResult, SearchSettings, open_study, rescore_heldout, run_search
from deltatune.search.spaces import SPACES, GlobalSpace, GroupSpace, LayerSpace, Ranges, SearchSpace, group_of
from deltatune.search.storage import StorageSpec, resolve_storage, results_dir
from deltatune.search.strategies import STRATEGIES, Strategy, make_strategy
from deltatune.search.study_workload import StudyWorkload

__all__ = [
    "FORMATS",
    "SPACES",
    "SPEEDS",
    "STRATEGIES",
    "TRIAL_COLUMNS",
    "Evaluation",
    "Evaluator",
    "ExportResult",
    "GlobalSpace",
    "GroupSpace",
    "LayerSpace",
    "Ranges",
    "SearchResult",
    "SearchSettings",
    "SearchSpace",
    "StorageSpec",
    "Strategy",
    "StudyWorkload",
    "best_under",
    "export_trial",
    "group_of",
    "hypervolume",
    "make_strategy",
    "open_study",
    "pareto_frame",
    "rescore_heldout",
    "resolve_speed",
    "resolve_storage",
    "results_dir",
    "run_search",
    "select_trial",
    "study_meta",
    "thresholds_frame",
    "trials_frame",
]
