"""Fixtures of the report tests: synthetic studies and their analyses, computed once per session.

ASO runs with 100 bootstrap iterations here (deepsig's default 1000 takes seconds per comparison); the
analysis is otherwise the one the CLI runs.
"""

from __future__ import annotations

import pytest

from deltatune.ablation.results import AblationResults
from deltatune.report.analysis import Analysis, analyse
from tests.report.synthetic import make_results

#: Bootstrap iterations of the almost-stochastic-order test in these tests.
ASO_ITERATIONS = 100


@pytest.fixture(scope="session")
def two_by_two() -> tuple[AblationResults, Analysis]:
    """strategy (greedy, tpe: tpe clearly better) x space (null), 5 seeds, paired."""
    r = make_results()
    return r, analyse(r, aso_iterations=ASO_ITERATIONS)


@pytest.fixture(scope="session")
def three_by_two() -> tuple[AblationResults, Analysis]:
    """strategy (greedy, tpe, nsga2) x space (null), 5 seeds, paired: omnibus tests and CD diagrams."""
    r = make_results(strategies=("greedy", "tpe", "nsga2"))
    return r, analyse(r, aso_iterations=ASO_ITERATIONS)
