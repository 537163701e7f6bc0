"""Re-timing the final front: real timings of real trials, stored in the study, the recommendation on them."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from deltatune.errors import ConfigError
from deltatune.search import open_study, resolve_storage, run_search
from deltatune.search.pareto import trials_frame
from deltatune.search.retime import RETIMED_ATTR, Retimed, median_round, retime_candidates

from .conftest import settings


def test_retimed_points_are_the_fastest_feasible_and_the_recommendation_is_the_fastest_measured(
    results: Path, tiny_evaluator
) -> None:  # type: ignore[no-untyped-def]
    res = run_search(settings(trials=6, study="rt", retime=2, retime_repeats=3), evaluator=tiny_evaluator)
    feasible = res.front[res.front["feasible"].astype(bool)].sort_values("speedup", ascending=False)
    expected = [int(t) for t in feasible["trial"].head(2)]
    assert sorted(r["trial"] for r in res.retimed) == sorted(expected)
    for r in res.retimed:
        assert len(r["ratios"]) == 3 and all(x > 0 for x in r["ratios"])
        assert r["dense_ms"] > 0 and r["delta_ms"] > 0 and r["host"] == platform.node()
        assert r["measured"] == pytest.approx(sorted(r["ratios"])[1])  # the median of 3 rounds
        # the ms shown are the median round's: their ratio is the measured speedup, not a mix of rounds
        assert r["dense_ms"] / r["delta_ms"] == pytest.approx(r["measured"], rel=1e-9)
        # 3 rounds: the order-statistic interval is [min, max], a 75 % interval, and says so
        assert (r["ci_low"], r["ci_high"]) == (min(r["ratios"]), max(r["ratios"]))
        assert r["ci_level"] == pytest.approx(0.75)
        predicted = float(res.trials.loc[res.trials["trial"] == r["trial"], "speedup"].iloc[0])
        assert r["predicted"] == pytest.approx(predicted)
    measured = [r["measured"] for r in res.retimed]
    assert measured == sorted(measured, reverse=True)
    best = res.best_feasible
    assert best is not None and best["trial"] == res.retimed[0]["trial"]
    assert best["measured_speedup"] == pytest.approx(max(measured))
    assert best["measured_ci_level"] == pytest.approx(0.75)
    # stored in the study: a resumed search reads them back instead of timing again
    study = open_study(resolve_storage(None, "rt"), "rt", create=False)
    stored = {int(k): Retimed.from_dict(v) for k, v in study.user_attrs[RETIMED_ATTR].items()}
    assert {n: s.ratios for n, s in stored.items()} == {r["trial"]: tuple(r["ratios"]) for r in res.retimed}
    again = run_search(settings(trials=6, study="rt", retime=2, retime_repeats=3, finish=True),
                       evaluator=tiny_evaluator)
    assert again.new_trials == 0
    assert [r["ratios"] for r in again.retimed] == [r["ratios"] for r in res.retimed]


def test_candidates_are_feasible_front_points_fastest_first(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    res = run_search(settings(trials=5, study="cand"), evaluator=tiny_evaluator, heldout=False)
    from deltatune.search.pareto import pareto_frame

    study = open_study(resolve_storage(None, "cand"), "cand", create=False)
    front = pareto_frame(trials_frame(study))
    picked = retime_candidates(front, 10)
    speeds = [float(front.loc[front["trial"] == t, "speedup"].iloc[0]) for t in picked]
    assert speeds == sorted(speeds, reverse=True)
    assert all(bool(front.loc[front["trial"] == t, "feasible"].iloc[0]) for t in picked)
    assert retime_candidates(front, 0) == [] and res.retimed == []


def test_candidates_that_tie_on_both_objectives_are_timed_once() -> None:
    import pandas as pd

    front = pd.DataFrame({"trial": [7, 3, 5, 9], "accuracy_loss": [0.0, 0.0, 0.5, 0.5],
                          "speedup": [1.0, 1.0, 1.4, 1.3], "feasible": [True, True, True, True]})
    assert retime_candidates(front, 3) == [5, 9, 3]


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"retime": -1}, "--retime -1"), ({"retime_repeats": 1}, "--retime-repeats 1")],
)
def test_bad_retime_settings_are_config_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        settings(**kw)


def test_a_recommendation_slower_than_dense_is_called_so_and_a_faster_one_is_not() -> None:
    from deltatune.search.runner import _slower_than_dense_notice

    base = {"trial": 0, "accuracy_loss": 0.0, "speedup": 0.93}
    measured = {**base, "measured_speedup": 0.92, "measured_ci": [0.82, 0.95]}
    note = _slower_than_dense_notice(measured, "latency", 1.0)
    assert note is not None and "0.92x measured" in note and "1-point budget" in note
    assert "runs slower than" in note and "--keyframe-change none,0.5" in note
    # a search that tried key frames on change is not told to try them
    tried = _slower_than_dense_notice(measured, "latency", 1.0, (None, 0.5)) or ""
    assert "runs slower than" in tried and "--keyframe-change" not in tried
    # a CI that reaches 1 is not evidence of a slowdown, nor of a speedup: said as such
    straddles = _slower_than_dense_notice({**measured, "measured_ci": [0.85, 1.02]}, "latency", 1.0) or ""
    assert "is not measurably faster than" in straddles and "CI [0.85, 1.02] reaches below 1" in straddles
    faster = _slower_than_dense_notice({**measured, "measured_speedup": 1.05, "measured_ci": [0.98, 1.1]},
                                       "latency", 1.0) or ""
    assert "not measurably faster" in faster and "1.05x measured" in faster
    # a CI above 1 is a speedup: nothing to say
    assert _slower_than_dense_notice({**measured, "measured_speedup": 1.2, "measured_ci": [1.1, 1.3]},
                                     "latency", 1.0) is None
    assert _slower_than_dense_notice({**measured, "measured_speedup": 1.2, "measured_ci": [1.0, 1.3]},
                                     "latency", 1.0) is None
    # not re-timed: the latency estimate speaks; a MAC count says nothing about the clock
    assert "0.93x by the latency objective" in (_slower_than_dense_notice(base, "latency", 2.0) or "")
    assert _slower_than_dense_notice(base, "macs", 1.0) is None
    assert _slower_than_dense_notice(None, "latency", 1.0) is None
    # a model whose dense frame costs a millisecond or two: the fixed costs are the reason, not the video
    tiny = _slower_than_dense_notice({**measured, "measured_dense_ms": 0.6}, "latency", 1.0) or ""
    assert "takes only 0.6 ms a frame" in tiny and "run this one dense" in tiny and "--budget" not in tiny
    large = _slower_than_dense_notice({**measured, "measured_dense_ms": 40.0}, "latency", 1.0) or ""
    assert "1-point budget" in large and "takes only" not in large


def test_a_recommendation_over_budget_on_its_held_out_frames_is_called_so() -> None:
    from deltatune.search.runner import _heldout_notice

    s = settings(budget=1.0)
    best = {"trial": 3, "accuracy_loss": 0.8, "speedup": 1.5, "heldout_accuracy_loss": 1.96}
    note = _heldout_notice(best, s)
    assert note is not None
    assert f"on the {s.workload.heldout_frames} held-out frame(s) per stream" in note
    assert "lost 1.96 points, over the 1-point budget (0.80 on the tuning frames)" in note
    assert "--also-on" in note and "deltatune bench --start N" in note
    # within the budget (equal counts as within, as feasibility does), not re-scored, no recommendation
    assert _heldout_notice({**best, "heldout_accuracy_loss": 1.0}, s) is None
    assert _heldout_notice({**best, "heldout_accuracy_loss": None}, s) is None
    assert _heldout_notice(None, s) is None
    assert _heldout_notice(best, settings(budget=2.0)) is None


def test_the_round_shown_is_the_median_one() -> None:
    """One disturbed round (10.36x) made the columns' separate medians 264.9 ms against 84.3 ms (3.1x)
    beside a measured 1.04x; the median round is the one whose ratio is the median (the lower middle
    one of an even count)."""
    assert median_round([0.99, 10.36, 1.04]) == 2
    assert median_round([1.0, 3.0, 2.0, 4.0]) == 2
    assert median_round([5.0]) == 0


def test_a_one_clip_re_timing_is_stored_without_the_segment_field() -> None:
    """Every record carried "segment": null, which versions without the field cannot read back."""
    r = Retimed(trial=1, predicted=2.0, speed="latency", ratios=(1.9, 2.1), dense_ms=10.0, delta_ms=5.0,
                ci_low=1.9, ci_high=2.1, host="h", ci_level=0.5)
    assert "segment" not in r.to_dict() and Retimed.from_dict(r.to_dict()) == r
    seg = Retimed.from_dict({**r.to_dict(), "segment": "vtest@300"})
    assert seg.to_dict()["segment"] == "vtest@300"
