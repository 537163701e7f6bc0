"""Pure compute of fronts, hypervolume and the recommendation (no study needed)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from deltatune.search.pareto import best_under, hypervolume, pareto_frame


def _df(rows: list[tuple[float, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"trial": i, "accuracy_loss": a, "speedup": s, "feasible": f} for i, (a, s, f) in enumerate(rows)]
    )


def test_front_drops_dominated_and_infeasible_rows() -> None:
    df = _df([(0.0, 1.5, True), (0.5, 2.0, True), (0.4, 3.0, True), (2.0, 9.0, False), (0.4, 2.5, True)])
    front = pareto_frame(df)
    assert front["trial"].tolist() == [0, 2]
    assert pareto_frame(df, feasible=None)["trial"].tolist() == [0, 2, 3]


def test_front_keeps_exact_duplicates_and_is_sorted_by_speed() -> None:
    df = _df([(0.3, 2.0, True), (0.1, 1.2, True), (0.3, 2.0, True)])
    assert pareto_frame(df)["trial"].tolist() == [1, 0, 2]


def test_front_of_nothing_feasible_is_empty() -> None:
    assert pareto_frame(_df([(5.0, 3.0, False)])).empty


def test_hypervolume_is_the_dominated_area_up_to_the_reference_point() -> None:
    df = _df([(0.0, 2.0, True), (0.5, 3.0, True), (0.2, 1.5, True)])  # the last one is dominated
    # staircase: loss 0..0.5 at height 2-1, loss 0.5..1 at height 3-1
    assert hypervolume(df, ref_loss=1.0) == pytest.approx(0.5 * 1 + 0.5 * 2)
    # points beyond the reference point add nothing
    assert hypervolume(_df([(1.5, 9.0, False), (0.0, 0.9, True)]), ref_loss=1.0) == 0.0


def test_best_under_prefers_speed_then_lower_loss_then_earlier_trial() -> None:
    df = _df([(0.2, 2.0, True), (0.9, 4.0, True), (0.1, 4.0, True), (3.0, 8.0, False)])
    assert int(best_under(df)["trial"]) == 2
    assert int(best_under(df, 0.15)["trial"]) == 2
    assert int(best_under(df, 5.0)["trial"]) == 3
    assert best_under(df, 0.05) is None
    assert not math.isnan(float(best_under(df)["speedup"]))
