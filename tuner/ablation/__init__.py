"""Ablation studies: a declared design (factors x repeats) run resumably, then tested for real differences.

- :mod:`~deltatune.ablation.spec`: study files (TOML) -> :class:`StudySpec` and its runs;
- :mod:`~deltatune.ablation.execute`: what one run does (a search, or a fixed setting scored on a clip);
- :mod:`~deltatune.ablation.runner`: ``deltatune ablate``: the queue, the workers, retries;
- :mod:`~deltatune.ablation.store`: the Optuna storage the runs live in;
- :mod:`~deltatune.ablation.results`: the tidy tables ``deltatune report`` reads.
"""

from __future__ import annotations

from deltatune.ablation.results import AblationResults, MetricSpec
from deltatune.ablation.runner import AblationSummary, run_ablation
from deltatune.ablation.spec import Run, Segment, StudySpec, load_study, parse_study
from deltatune.ablation.store import find_study, load_results

__all__ = [
    "AblationResults",
    "AblationSummary",
    "MetricSpec",
    "Run",
    "Segment",
    "StudySpec",
    "find_study",
    "load_results",
    "load_study",
    "parse_study",
    "run_ablation",
]
