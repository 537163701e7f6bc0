"""Fixtures for the search tests: the real tiny HRNet, real decoded vtest frames, real Optuna studies."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltatune.search import Evaluator, SearchSettings, StudyWorkload
from deltatune.search.spaces import Ranges

#: Random-weight tiny HRNet on 6 vtest frames (4 tune + 2 held-out) of one stream: trials take ~50 ms.
TINY = StudyWorkload("hrnet_tiny", weights=None, video="vtest", frames=6, streams=1)
#: Low thresholds and a generous budget: random weights make argmax keypoints fragile, so this keeps
#: a good share of trials feasible.
RANGES = Ranges(lo=1e-4, hi=0.05, input_lo=1e-3, input_hi=0.05)
BUDGET = 10.0


@pytest.fixture(scope="session")
def tiny_evaluator() -> Evaluator:
    """One evaluator (one converted network) shared by the in-process tests."""
    return Evaluator(TINY)


@pytest.fixture()
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh results dir (journal files) for each test."""
    d = tmp_path / "results"
    monkeypatch.setenv("DELTATUNE_RESULTS", str(d))
    monkeypatch.setenv("DELTATUNE_FINETUNE_CACHE", str(tmp_path / "finetuned"))  # fine-tunes run afresh
    return d


def settings(**kw: object) -> SearchSettings:
    """Search settings on the tiny workload; keywords override."""
    base: dict[str, object] = dict(
        workload=TINY, trials=4, strategy="tpe", space="group", budget=BUDGET, study="t", ranges=RANGES
    )
    base.update(kw)
    return SearchSettings(**base)  # type: ignore[arg-type]
