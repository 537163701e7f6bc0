"""Plots of a search study: the accuracy/speed trade-off and the thresholds of the front.

Thin renderers over the tidy tables of :mod:`deltatune.search.pareto` (compute is tested there). Each takes
a DataFrame first, keyword-only column names, ``ax=None``, and returns the Axes. seaborn and matplotlib are
imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deltatune.report._mpl import plain_text, pyplot

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "SHOWN_BUDGETS", "plot_pareto", "plot_threshold_heatmap", "save_fronts_figure", "save_pareto_figure"
]

#: the trade-off plot's x axis ends at this many accuracy budgets (or at the front's largest loss)
SHOWN_BUDGETS = 4.0


def _axes(ax: Axes | None, size: tuple[float, float] = (6.5, 4.5)) -> Axes:
    if ax is not None:
        return ax
    plt = pyplot()

    _, new = plt.subplots(figsize=size)
    return new


@plain_text
def plot_pareto(
    df: pd.DataFrame,
    front: pd.DataFrame,
    *,
    loss: str = "accuracy_loss",
    speed: str = "speedup",
    feasible: str = "feasible",
    hue: str | None = "strategy",
    budget: float | None = None,
    ax: Axes | None = None,
    loss_label: str = "accuracy loss (PCK@0.2 points vs dense)",
    speed_label: str = "MAC speedup (x)",
    retimed: pd.DataFrame | None = None,
    recommended: int | None = None,
) -> Axes:
    """All trials (infeasible ones hollow), the front as a step line, the budget as a vertical line.
    ``loss_label`` / ``speed_label`` name the axes (the study's metric and speed kind). ``retimed`` (columns
    ``trial``, ``accuracy_loss``, ``measured``, ``ci_low``, ``ci_high``) adds the points the search timed
    for real: the measured speedup with its CI as an error bar, at the trial's loss; the ``recommended``
    one of them is a star, named in the legend.

    With a budget, trials that lost more than :data:`SHOWN_BUDGETS` budgets (and more than the front's
    largest loss) lie outside the x axis, and a note in the corner counts them: one trial at 70 points
    would otherwise squeeze every setting worth choosing against the axis at 0-1 points."""
    import seaborn as sns

    ax = _axes(ax)
    d = df.assign(_feasible=df[feasible].map({True: "feasible", False: "infeasible"}))
    sns.scatterplot(
        data=d,
        x=loss,
        y=speed,
        hue=hue if hue in d.columns else None,
        style="_feasible",
        style_order=["feasible", "infeasible"],
        markers={"feasible": "o", "infeasible": "X"},
        alpha=0.8,
        ax=ax,
    )
    if not front.empty:
        f = front.sort_values(loss)
        ax.step(f[loss], f[speed], where="post", color="black", lw=1.2, label="Pareto front")
        ax.scatter(f[loss], f[speed], facecolors="none", edgecolors="black", s=90, lw=1.2)
    if retimed is not None and not retimed.empty:
        r = retimed
        below = (r["measured"] - r["ci_low"]).clip(lower=0)
        above = (r["ci_high"] - r["measured"]).clip(lower=0)
        ax.errorbar(r["accuracy_loss"], r["measured"], yerr=[below, above], fmt="D", color="darkorange",
                    ms=6, capsize=3, lw=1.2, label="re-timed: measured (CI)")
        rec = r[r["trial"] == recommended]
        if not rec.empty:
            x, y = float(rec["accuracy_loss"].iloc[0]), float(rec["measured"].iloc[0])
            # a star named in the legend: a text label beside the point ran into neighbouring error bars
            ax.scatter([x], [y], marker="*", s=260, color="darkorange", edgecolors="black", lw=0.8, zorder=5,
                       label=f"recommended: trial {recommended}")
    if budget is not None:
        ax.axvline(budget, color="crimson", ls="--", lw=1, label=f"budget {budget:g}")
        limit = max(SHOWN_BUDGETS * budget, float(front[loss].max()) if not front.empty else 0.0)
        beyond = int((df[loss] > limit).sum())
        if beyond and limit > 0:
            ax.set_xlim(min(0.0, float(df[loss].min())) - 0.05 * limit, limit * 1.05)
            # the y axis spans what is shown: a hidden trial's speedup would leave the plot half empty
            ys = [df.loc[df[loss] <= limit, speed]]
            if retimed is not None and not retimed.empty:
                ys += [retimed["ci_low"], retimed["ci_high"], retimed["measured"]]
            import pandas as pd

            shown = pd.concat(ys).astype(float).dropna()
            if not shown.empty:
                low, high = float(shown.min()), float(shown.max())
                pad = 0.08 * max(high - low, 0.1)
                ax.set_ylim(low - pad, high + pad)
            ax.annotate(
                f"{beyond} trial{'s' if beyond > 1 else ''} with an accuracy loss above {limit:g} not shown",
                xy=(0.99, 0.02), xycoords="axes fraction", ha="right", va="bottom", fontsize="small",
            )
    ax.set_xlabel(loss_label)
    ax.set_ylabel(speed_label)
    ax.legend(fontsize="small", loc="best")
    return ax


@plain_text
def plot_threshold_heatmap(
    thresholds: pd.DataFrame,
    *,
    trial: str = "trial",
    layer: str = "layer",
    value: str = "threshold",
    index: str = "index",
    ax: Axes | None = None,
) -> Axes:
    """Per-layer thresholds (log10, rows = trials of the front, columns = truncation points in order)."""
    import numpy as np
    import seaborn as sns

    order = thresholds.sort_values(index)[layer].drop_duplicates().tolist()
    wide = thresholds.pivot_table(index=trial, columns=layer, values=value, aggfunc="first").reindex(
        columns=order
    )
    logv = np.log10(wide.where(wide > 0))
    ax = _axes(ax, (max(6.0, 0.12 * len(order)), 1.0 + 0.35 * len(wide)))
    if logv.isna().all().all():  # the front is all-0 settings: nothing to colour (and no colour scale)
        ax.text(0.5, 0.5, "every threshold of the front is 0 (the dense-equivalent setting)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    sns.heatmap(
        logv,
        cmap="viridis",
        ax=ax,
        cbar_kws={"label": "log10 threshold (blank: 0)"},
        # every name up to 60, then every k-th (none at all above 60 left no way to tell a column's layer)
        xticklabels=1 if len(order) <= 60 else -(-len(order) // 40),
    )
    ax.tick_params(axis="x", labelsize=6 if len(order) > 20 else 8)
    ax.set_xlabel("truncation point (execution order)")
    ax.set_ylabel("trial")
    return ax


@plain_text
def save_pareto_figure(
    df: pd.DataFrame,
    front: pd.DataFrame,
    thresholds: pd.DataFrame,
    path: str | Path,
    *,
    budget: float | None = None,
    title: str | None = None,
    loss_label: str = "accuracy loss (PCK@0.2 points vs dense)",
    speed_label: str = "MAC speedup (x)",
    retimed: pd.DataFrame | None = None,
    recommended: int | None = None,
) -> Path:
    """Trade-off plot above the threshold heatmap of the front, written to ``path`` (PNG, SVG, PDF ...);
    ``loss_label`` / ``speed_label`` name the trade-off plot's axes; ``retimed`` as for
    :func:`plot_pareto`, with its ``recommended`` trial."""
    plt = pyplot()

    has_heat = not thresholds.empty
    fig, axes = plt.subplots(
        2 if has_heat else 1,
        1,
        figsize=(9, 9 if has_heat else 5),
        gridspec_kw={"height_ratios": [3, 2]} if has_heat else None,
        squeeze=False,
    )
    plot_pareto(df, front, budget=budget, ax=axes[0][0], loss_label=loss_label, speed_label=speed_label,
                retimed=retimed, recommended=recommended)
    if title:
        axes[0][0].set_title(title)
    if has_heat:
        plot_threshold_heatmap(thresholds, ax=axes[1][0])
    fig.tight_layout()
    from deltatune._atomic import atomic_savefig

    return atomic_savefig(fig, path, dpi=120)


@plain_text
def save_fronts_figure(
    fronts: pd.DataFrame,
    path: str | Path,
    *,
    order: list[str],
    budget: float | None = None,
    title: str | None = None,
    loss_label: str = "accuracy loss (PCK@0.2 points vs dense)",
    speed_label: str = "MAC speedup (x)",
    measured: pd.DataFrame | None = None,
) -> Path:
    """The fronts of several studies (``fronts``: ``study, accuracy_loss, speedup``), one colour each in
    ``order``, with the common ``budget`` as a vertical line, written to ``path``. ``measured`` (``study,
    accuracy_loss, measured, ci_low, ci_high``): each study's recommended re-timed trial, its measured
    speedup and CI as a diamond in the study's colour (the table beside the plot lists them)."""
    from deltatune.report.plots import fronts_overlay, level_colours

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    fronts_overlay(fronts, hue="study", run="study", hue_order=order, ax=ax)
    if measured is not None and not measured.empty:
        colours = level_colours(fronts.assign(study=fronts["study"].astype(str)), "study", order)
        for i, r in enumerate(measured.itertuples(index=False)):
            ax.errorbar([r.accuracy_loss], [r.measured], fmt="D", ms=7, capsize=3, lw=1.2, mec="black",
                        yerr=[[max(0.0, r.measured - r.ci_low)], [max(0.0, r.ci_high - r.measured)]],
                        color=colours.get(str(r.study), "grey"),
                        label="recommended, measured (CI)" if i == 0 else None)
        ax.legend(title="study", fontsize="small")
    if budget is not None:
        ax.axvline(budget, color="grey", ls="--", lw=1)
        ax.annotate("budget", (budget, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", color="grey", fontsize="small")
    ax.set_xlabel(loss_label)
    ax.set_ylabel(speed_label)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    from deltatune._atomic import atomic_savefig

    return atomic_savefig(fig, path, dpi=120)
