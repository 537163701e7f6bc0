"""The trade-off plot keeps the settings worth choosing readable: far-off trials leave the x axis, counted."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from deltatune.report.pareto_plot import SHOWN_BUDGETS, plot_pareto  # noqa: E402


def _trials(losses: list[float]) -> pd.DataFrame:
    return pd.DataFrame({
        "accuracy_loss": losses,
        "speedup": [1.0 + 0.1 * i for i in range(len(losses))],
        "feasible": [x <= 1.0 for x in losses],
        "strategy": "tpe",
    })


def _notes(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_trials_far_beyond_the_budget_are_cut_off_and_counted() -> None:
    df = _trials([0.0, 0.3, 0.9, 2.5, 40.0, 72.7])
    front = df[df["feasible"]].tail(2)
    _, ax = plt.subplots()
    try:
        plot_pareto(df, front, budget=1.0, ax=ax)
        left, right = ax.get_xlim()
        assert SHOWN_BUDGETS <= right < 40.0 and -0.05 * SHOWN_BUDGETS <= left <= 0.0  # 0 at the left
        assert _notes(ax) == [f"2 trials with an accuracy loss above {SHOWN_BUDGETS:g} not shown"]
        # the axis still reaches the front's largest loss when that is beyond the budgets shown
        far = df.assign(feasible=True)
        _, ax2 = plt.subplots()
        plot_pareto(far, far.iloc[[4]], budget=1.0, ax=ax2)
        assert ax2.get_xlim()[1] >= 40.0
        assert _notes(ax2) == ["1 trial with an accuracy loss above 40 not shown"]
    finally:
        plt.close("all")


def test_the_speed_axis_spans_the_trials_shown_not_the_hidden_ones() -> None:
    """A hidden trial's high speedup (lost accuracy buys speed) must not stretch the y axis over nothing;
    the re-timed points and their CIs stay inside it."""
    df = _trials([0.0, 0.3, 0.9, 40.0]).assign(speedup=[1.0, 1.3, 2.1, 6.0])
    retimed = pd.DataFrame({"trial": [2], "accuracy_loss": [0.9], "measured": [1.7], "ci_low": [0.8],
                            "ci_high": [1.9]})
    _, ax = plt.subplots()
    try:
        plot_pareto(df, df.iloc[[1, 2]], budget=1.0, ax=ax, retimed=retimed, recommended=2)
        low, high = ax.get_ylim()
        assert 2.1 < high < 2.5 and 0.6 < low < 0.8  # 0.8-2.1 shown; 6.0 hidden with its trial
    finally:
        plt.close("all")


def test_nothing_is_cut_off_when_every_trial_is_near_the_budget_or_there_is_no_budget() -> None:
    df = _trials([0.0, 0.5, 1.5, 3.9])
    _, ax = plt.subplots()
    try:
        plot_pareto(df, df.head(2), budget=1.0, ax=ax)
        assert ax.get_xlim()[1] >= 3.9 and _notes(ax) == []
        wide = _trials([0.0, 70.0])
        _, ax2 = plt.subplots()
        plot_pareto(wide, wide.head(1), budget=None, ax=ax2)
        assert ax2.get_xlim()[1] >= 70.0 and _notes(ax2) == []
    finally:
        plt.close("all")


def test_re_timed_points_are_drawn_with_their_interval_and_the_recommendation_named() -> None:
    """What the search measured is what a user chooses by: the re-timed trials appear at their loss,
    at the measured speedup with the CI as an error bar, and the recommended one is a star the legend
    names."""
    df = _trials([0.0, 0.3, 0.9, 2.5])
    timed = pd.DataFrame({"trial": [1, 2], "accuracy_loss": [0.3, 0.9], "measured": [1.05, 1.32],
                          "ci_low": [0.98, 1.20], "ci_high": [1.10, 1.41]})
    _, ax = plt.subplots()
    try:
        plot_pareto(df.assign(trial=range(4)), df.head(3), budget=1.0, ax=ax, retimed=timed, recommended=2)
        bars = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
        assert len(bars) == 1
        line, _, (vertical,) = bars[0].lines
        assert list(line.get_xdata()) == [0.3, 0.9] and list(line.get_ydata()) == [1.05, 1.32]
        spans = [tuple(round(float(v), 6) for v in seg[:, 1]) for seg in vertical.get_segments()]
        assert spans == [(0.98, 1.10), (1.20, 1.41)]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "re-timed: measured (CI)" in legend and "recommended: trial 2" in legend
        stars = [c for c in ax.collections if c.get_label() == "recommended: trial 2"]
        assert len(stars) == 1 and [list(p) for p in stars[0].get_offsets()] == [[0.9, 1.32]]
    finally:
        plt.close("all")


def test_a_front_of_all_zero_thresholds_says_so_instead_of_an_empty_heatmap() -> None:
    """log10 of 0 is blank: a heatmap of only blanks had no colour scale (and numpy warned)."""
    import warnings

    from deltatune.report.pareto_plot import plot_threshold_heatmap

    zeros = pd.DataFrame({"trial": [0, 0, 0], "layer": ["input", "relu", "relu#1"], "threshold": 0.0,
                          "index": [0, 1, 2]})
    some = zeros.assign(threshold=[0.01, 0.0, 0.02])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ax = plot_threshold_heatmap(zeros)
        assert _notes(ax) == ["every threshold of the front is 0 (the dense-equivalent setting)"]
        ax2 = plot_threshold_heatmap(some)
        assert _notes(ax2) == [] and ax2.collections  # the heatmap itself
    finally:
        plt.close("all")


def test_fronts_of_several_studies_one_colour_each_with_the_budget(tmp_path) -> None:
    from deltatune.report.pareto_plot import save_fronts_figure

    fronts = pd.DataFrame({
        "study": ["tpe", "tpe", "random"],
        "trial": [3, 7, 1],
        "accuracy_loss": [0.1, 0.6, 0.3],
        "speedup": [1.3, 1.8, 1.2],
    })
    path = save_fronts_figure(fronts, tmp_path / "f.png", order=["tpe", "random"], budget=1.0, title="t")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000
    assert not list(tmp_path.glob("*.tmp*"))  # written in one piece


def test_a_heatmap_of_many_truncation_points_still_names_its_columns() -> None:
    """Above 60 truncation points (the default hrnet has more) the heatmap had no column names at all;
    now every k-th is named, at most 40."""
    from deltatune.report.pareto_plot import plot_threshold_heatmap

    names = [f"relu#{i}" for i in range(100)]
    wide = pd.DataFrame({"trial": 0, "layer": names, "threshold": 0.01, "index": range(100)})
    try:
        ax = plot_threshold_heatmap(wide)
        shown = [t.get_text() for t in ax.get_xticklabels()]
        assert 20 <= len(shown) <= 40 and shown[:2] == ["relu#0", "relu#3"], shown
    finally:
        plt.close("all")


def test_fronts_of_several_studies_show_each_recommended_measured_point(tmp_path) -> None:
    """The table of `pareto --study A --study B` lists each study's recommended, re-timed trial; the
    plot showed only the fronts' predicted speedups."""
    from deltatune.report.pareto_plot import save_fronts_figure

    fronts = pd.DataFrame({"study": ["tpe", "random"], "trial": [3, 1], "accuracy_loss": [0.1, 0.3],
                           "speedup": [1.3, 1.2]})
    measured = pd.DataFrame({"study": ["tpe"], "accuracy_loss": [0.1], "measured": [1.04], "ci_low": [0.98],
                             "ci_high": [1.1]})
    plain = save_fronts_figure(fronts, tmp_path / "a.svg", order=["tpe", "random"]).read_text()
    shown = save_fronts_figure(fronts, tmp_path / "b.svg", order=["tpe", "random"], measured=measured)
    assert "recommended, measured (CI)" in shown.read_text()  # the legend's text (an SVG comment)
    assert "recommended, measured (CI)" not in plain


def test_a_mark_beside_the_fronts_takes_its_fronts_colour_when_a_study_has_none(tmp_path) -> None:
    """The comparison's diamonds took their colours from every named study, the fronts from the studies
    with a front: with the first study's front empty, the second's diamond had another colour."""
    from matplotlib.colors import to_rgb

    from deltatune.report.plots import fronts_overlay, level_colours

    fronts = pd.DataFrame({"study": ["b", "b"], "accuracy_loss": [0.1, 0.4], "speedup": [1.2, 1.6]})
    try:
        ax = fronts_overlay(fronts, hue="study", run="study", hue_order=["a", "b"])
        line = next(li for li in ax.get_lines() if li.get_xydata().size)
        assert to_rgb(line.get_color()) == to_rgb(level_colours(fronts, "study", ["a", "b"])["b"])
        assert list(level_colours(fronts, "study", ["a", "b"])) == ["b"]
    finally:
        plt.close("all")
    # and the figure's diamond for b is drawn in that colour (seaborn's first "deep" colour, not its second)
    from deltatune.report.pareto_plot import save_fronts_figure

    measured = pd.DataFrame({"study": ["b"], "accuracy_loss": [0.1], "measured": [1.1], "ci_low": [1.0],
                             "ci_high": [1.2]})
    svg = save_fronts_figure(fronts, tmp_path / "f.svg", order=["a", "b"], measured=measured).read_text()
    assert "#4c72b0" in svg and "#dd8452" not in svg
