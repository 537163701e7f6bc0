"""The package surface: cheap import, result objects frozen and JSON-ready."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

import deltatune.stats as st


def test_import_is_cheap():
    code = (
        "import sys, deltatune.stats; "
        "print(sorted(m for m in ('baycomp', 'deepsig', 'scikit_posthocs', 'statsmodels', 'scipy', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_all_names_exist():
    assert all(hasattr(st, name) for name in st.__all__)
    assert {"describe", "compare_two", "compare_many", "holm", "tost", "bayes_signed_rank"} <= set(st.__all__)


def test_results_are_frozen_and_json_ready():
    d = st.describe([1.0, 2.0, 4.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.mean = 0.0  # type: ignore[misc]
    e = st.EquivalenceResult("TOST", 1.0, float("nan"), False, 0.0, float("-inf"), float("inf"), True, 0.05)
    out = json.loads(json.dumps(e.to_dict(), allow_nan=False))
    assert out == {
        "test": "TOST",
        "margin": 1.0,
        "pvalue": None,
        "equivalent": False,
        "diff": 0.0,
        "ci_low": None,
        "ci_high": None,
        "paired": True,
        "alpha": 0.05,
    }
    assert json.loads(json.dumps(d.to_dict(), allow_nan=False))["n"] == 3


def test_every_result_class_of_the_package_has_a_json_ready_to_dict():
    classes = [getattr(st, n) for n in st.__all__ if dataclasses.is_dataclass(getattr(st, n))]
    assert {"MedianInterval", "Description", "TestResult"} <= {c.__name__ for c in classes}
    assert [c.__name__ for c in classes if not callable(getattr(c, "to_dict", None))] == []
    out = json.loads(json.dumps(st.median_ci([1.0]).to_dict(), allow_nan=False))
    assert out == {"low": None, "high": None, "level": None}
    assert st.median_ci([1.9, 2.1, 2.0, 2.4, 1.7]).to_dict() == {"low": 1.7, "high": 2.4, "level": 0.9375}
