"""Studies side by side: which fronts may share axes, and one reference point for every hypervolume."""

from __future__ import annotations

import pandas as pd
import pytest

from deltatune.errors import ConfigError
from deltatune.search import hypervolume, pareto_frame
from deltatune.search.compare import StudyFront, check_comparable, fronts_frame, summary_frame


def _study(name: str, losses: list[float], speeds: list[float], *, budget: float = 1.0,
           unit: str = "PCK points", speed: str = "latency", workload: str = "w") -> StudyFront:
    trials = pd.DataFrame({"trial": range(len(losses)), "accuracy_loss": losses, "speedup": speeds})
    trials["feasible"] = trials["accuracy_loss"] <= budget
    meta = {"budget": budget, "speed": speed, "workload": {"model": workload}}
    return StudyFront(name, meta, unit, trials, pareto_frame(trials))


def test_hypervolumes_share_the_smallest_budget_as_reference() -> None:
    wide = _study("wide", [0.0, 0.8, 1.6], [1.2, 1.9, 3.0], budget=2.0)
    narrow = _study("narrow", [0.1, 0.5, 0.9], [1.1, 1.5, 1.7], budget=1.0)
    table = summary_frame([wide, narrow]).set_index("study")
    # the wide study's point at 1.6 points lies beyond the common reference (1.0): it scores nothing
    assert table.loc["wide", "hypervolume"] == pytest.approx(hypervolume(wide.front, ref_loss=1.0))
    assert table.loc["wide", "hypervolume"] < hypervolume(wide.front, ref_loss=2.0)
    assert table.loc["wide", "best_trial"] == 1 and table.loc["wide", "best_speedup"] == pytest.approx(1.9)
    assert table.loc["narrow", "best_trial"] == 2 and table.loc["narrow", "feasible"] == 3
    assert table.loc["wide", "measured"] is None
    assert sorted(fronts_frame([wide, narrow])["study"].unique()) == ["narrow", "wide"]
    assert any("narrow differs from wide in budget" in n for n in check_comparable([wide, narrow]))


def test_fronts_in_other_units_or_speed_kinds_are_refused() -> None:
    pose = _study("pose", [0.0], [1.5])
    top1 = _study("cls", [0.0], [1.5], unit="top-1 points")
    with pytest.raises(ConfigError, match="different units"):
        check_comparable([pose, top1])
    macs = _study("macs", [0.0], [1.5], speed="macs")
    with pytest.raises(ConfigError, match=r"kinds \(pose: predicted wall-clock speedup; macs: MAC speedup\)"):
        check_comparable([pose, macs])
    other = _study("other", [0.0], [1.5], workload="another clip")
    assert check_comparable([pose, _study("same", [0.2], [1.1])]) == []
    assert check_comparable([pose, other]) == [
        "other differs from pose in workload (model, video, windows, frames): the fronts were scored on "
        "different terms"
    ]


def test_a_study_without_a_feasible_trial_has_an_empty_row() -> None:
    none = _study("none", [3.0, 4.0], [2.0, 3.0])
    table = summary_frame([none, _study("some", [0.5], [1.4])]).set_index("study")
    assert table.loc["none", "front"] == 0 and table.loc["none", "hypervolume"] == 0.0
    assert table.loc["none", "best_trial"] is None
