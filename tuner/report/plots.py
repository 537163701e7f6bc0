"""Plots of an ablation study: values per level, interactions, Pareto fronts and critical differences.

Thin renderers over tidy DataFrames (the tables of :class:`deltatune.ablation.results.AblationResults`);
the statistics they illustrate are computed in :mod:`deltatune.report.analysis`. Each takes a DataFrame
(or the ranks of a comparison) first, keyword-only column names, ``ax=None``, and returns the Axes, like
:mod:`deltatune.report.pareto_plot`. seaborn and matplotlib are imported only when a plot is drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from deltatune.report.pareto_plot import _axes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["box_strip", "interaction", "fronts_overlay", "cd_diagram", "cd_diagram_size"]


def _order(df: pd.DataFrame, column: str, order: Sequence[str] | None) -> list[str]:
    """The levels of ``column`` present in ``df``: in ``order`` when given, else in order of appearance."""
    present = [str(v) for v in df[column].dropna().astype(str).unique()]
    if order is None:
        return present
    return [str(v) for v in order if str(v) in set(present)]


def level_colours(df: pd.DataFrame, column: str, order: Sequence[str] | None) -> dict[str, Any]:
    """The colour of each level of ``column`` present in ``df`` (in :func:`_order`), as
    :func:`fronts_overlay` draws them: what a mark drawn beside its lines takes to match them."""
    import seaborn as sns

    levels = _order(df, column, order)
    return dict(zip(levels, sns.color_palette("deep", len(levels)), strict=True))


#: Tick labels of a level axis are slanted when the longest one, times their number, passes this many
#: characters: on the report's 6-7 inch plots, about where neighbouring labels start to run into each other.
SLANT_CHARS = 70


def _fit_level_labels(ax: Axes, levels: Sequence[str]) -> None:
    """Slant the x tick labels (30 degrees, right-aligned to their ticks) when they are too long to sit
    side by side (:data:`SLANT_CHARS`): long level names (an optimizer written out, a file name) overlapped
    into one unreadable line."""
    if levels and max(len(v) for v in levels) * len(levels) > SLANT_CHARS:
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")


def box_strip(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    hue: str | None = None,
    order: Sequence[str] | None = None,
    hue_order: Sequence[str] | None = None,
    unit: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """A box per level of ``x`` with every observation drawn over it as a point.

    The box shows median and quartiles; the points show the raw values, which matter with the handful of
    seeds a study usually has (a box over five values hides how they are spread). ``unit`` (a column; not
    with ``hue``): the values are paired on it, and a line joins each unit's values across the levels
    (points then sit on their level's centre, unjittered, so the lines meet them): a paired test reads
    the differences along those lines, which the boxes alone do not show.
    """
    import seaborn as sns

    ax = _axes(ax)
    d = df.assign(**{x: df[x].astype(str)})
    if hue is not None:
        d[hue] = d[hue].astype(str)
    xs = _order(d, x, order)
    hs = _order(d, hue, hue_order) if hue is not None else None
    box_kw = {"hue": hue, "hue_order": hs} if hue is not None else {"color": "#c6dbef"}
    with warnings.catch_warnings():
        # seaborn 0.13 passes matplotlib >= 3.10 the deprecated `vert`; nothing to act on here
        warnings.filterwarnings("ignore", message="vert: bool was deprecated", category=DeprecationWarning)
        sns.boxplot(data=d, x=x, y=y, order=xs, showfliers=False, width=0.6, ax=ax, **box_kw)
    sns.stripplot(
        data=d,
        x=x,
        y=y,
        order=xs,
        hue=hue if hue is not None else x,
        hue_order=hs if hue is not None else xs,
        dodge=hue is not None,
        palette="deep",
        size=6,
        alpha=0.85,
        jitter=0.0 if unit is not None and hue is None else 0.15,
        edgecolor="black",
        linewidth=0.4,
        legend=hue is not None,
        ax=ax,
    )
    if hue is not None:
        handles, labels = ax.get_legend_handles_labels()
        n = len(hs or [])
        ax.legend(handles[-n:], labels[-n:], title=hue, fontsize="small")
    elif unit is not None:
        position = {lv: i for i, lv in enumerate(xs)}
        for _, g in d[d[x].isin(position)].groupby(unit, sort=False):
            g = g.sort_values(x, key=lambda c: c.map(position))
            if len(g) > 1:
                ax.plot(g[x].map(position).to_numpy(float), g[y].to_numpy(float), color="0.45",
                        linewidth=0.8, alpha=0.5, zorder=1)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    _fit_level_labels(ax, xs)
    return ax


def _t_bars(values: pd.Series, *, ratio: bool = False) -> tuple[float, float]:
    """The 95 % Student-t CI of the mean of ``values`` (seaborn's ``errorbar`` callable): the same
    interval as the tables, where seaborn's own ``("ci", 95)`` bootstrap is too narrow at a few repeats.
    ``ratio``: the log-scale interval of the geometric mean, as the tables give for speed-ups."""
    from deltatune.stats import describe

    d = describe(values.to_numpy(float), ratio=ratio)
    return (d.mean, d.mean) if d.n < 2 else (d.ci_low, d.ci_high)


def _geometric_mean(values: pd.Series) -> float:
    """The geometric mean of ``values`` (seaborn's ``estimator`` for ratios), as the tables give it."""
    from deltatune.stats import describe

    return describe(values.to_numpy(float), ratio=True).mean


def interaction(
    df: pd.DataFrame,
    *,
    x: str,
    hue: str,
    y: str,
    order: Sequence[str] | None = None,
    hue_order: Sequence[str] | None = None,
    ratio: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Mean of ``y`` per level of ``x`` (bars: the 95 % t interval the report's tables give), one line per
    level of ``hue``; ``ratio`` (a speed-up): the geometric mean and its log-scale interval, likewise.

    Parallel lines mean the two factors act independently; crossing or diverging lines show an
    interaction, i.e. the effect of ``x`` depends on ``hue``.
    """
    import seaborn as sns

    ax = _axes(ax)
    d = df.assign(**{x: df[x].astype(str), hue: df[hue].astype(str)})
    xs = _order(d, x, order)
    hs = _order(d, hue, hue_order)
    sns.pointplot(
        data=d,
        x=x,
        y=y,
        hue=hue,
        order=xs,
        hue_order=hs,
        estimator=_geometric_mean if ratio else "mean",
        errorbar=partial(_t_bars, ratio=ratio),
        dodge=0.15 if len(hs) > 1 else False,
        palette="deep",
        markers="o",
        capsize=0.08,
        ax=ax,
    )
    ax.set_xlabel(x)
    ax.set_ylabel(f"{'geometric mean' if ratio else 'mean'} {y}")
    ax.legend(title=hue, fontsize="small")
    _fit_level_labels(ax, xs)
    return ax


#: Markers of the levels in :func:`fronts_overlay`, in level order: a point of one level drawn over the same
#: point of another keeps both visible (a small hollow square inside a larger ring), where one hid the other.
FRONT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def fronts_overlay(
    df: pd.DataFrame,
    *,
    hue: str,
    loss: str = "accuracy_loss",
    speed: str = "speedup",
    run: str = "run",
    hue_order: Sequence[str] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Every run's Pareto front as a step line (loss vs speed-up), coloured by its level of ``hue``.

    Overlaying the fronts of all seeds shows the spread between repeats next to the difference between
    levels: fronts of one colour that interleave with another colour's are not clearly different. Each
    level has its own hollow marker (:data:`FRONT_MARKERS`), the first levels' drawn largest, so that a
    point several levels share shows each, one inside the other; the legend shows each level's line
    and marker (a front of one point is a marker alone). ``xlabel``/``ylabel`` name the axes with their
    units (which accuracy loss, which speed-up); by default the column names.
    """
    from matplotlib.lines import Line2D

    ax = _axes(ax)
    d = df.assign(**{hue: df[hue].astype(str)})
    colours = level_colours(d, hue, hue_order)
    handles = []
    for i, level in enumerate(colours):
        marker = FRONT_MARKERS[i % len(FRONT_MARKERS)]
        size = max(12.0, 100.0 - 35.0 * i)  # later levels smaller: they sit inside the earlier ones' marks
        for _, front in d[d[hue] == level].groupby(run, sort=True):
            f = front.sort_values(loss)
            ax.step(f[loss], f[speed], where="post", color=colours[level], lw=1.4, alpha=0.6)
            ax.scatter(f[loss], f[speed], s=size, marker=marker, alpha=0.9, linewidths=1.4,
                       facecolors="none", edgecolors=colours[level], zorder=3 + i)
        handles.append(Line2D([0], [0], color=colours[level], lw=1.4, marker=marker, markersize=7,
                              markerfacecolor="none", label=level))
    ax.set_xlabel(xlabel or loss.replace("_", " "))
    ax.set_ylabel(ylabel or speed.replace("_", " "))
    ax.legend(handles=handles, title=hue, fontsize="small")
    return ax


def cd_diagram_size(levels: Sequence[str]) -> tuple[float, float]:
    """The figure size (inches) of a critical-difference diagram of ``levels``: 6.5 x 2.8, wider when
    long level names need it. Its labels stand left and right of the rank axis; on a fixed width, long
    ones squeezed the axis to a sliver (its rank ticks printed over each other) and were cut off at the
    figure's edge. About 0.085 inch per character of the longest label, with its " (2.5)" rank, on both
    sides of a 3-inch axis; at most 14 inches."""
    longest = max((len(str(v)) for v in levels), default=0) + 6
    return (min(14.0, max(6.5, 3.0 + 2 * 0.085 * longest)), 2.8)


def cd_diagram(
    mean_ranks: pd.Series, posthoc: pd.DataFrame, *, alpha: float = 0.05, ax: Axes | None = None
) -> Axes:
    """Critical-difference diagram: levels on their mean rank (1 = best), bars join levels not told apart.

    ``posthoc`` is the square matrix of post-hoc p-values of the same levels (scikit-posthocs' Nemenyi or
    Conover); levels joined by a crossbar do not differ at ``alpha``. The rank axis spans every rank the
    levels could take, 1 to k, with a tick at each and its name above it: scaled to the observed ranks
    only (1.67 to 2.17 of 3 levels) a difference of half a rank filled the width, and read as large.
    Ranks in the labels have three significant digits (two printed 1.67 and 1.72 alike as 1.7).
    """
    import scikit_posthocs as sp

    ax = _axes(ax, cd_diagram_size(list(mean_ranks.index)))
    ranks = mean_ranks.copy()
    ranks.index = ranks.index.astype(str)
    sig = posthoc.copy()
    sig.index = sig.index.astype(str)
    sig.columns = sig.columns.astype(str)
    sig = sig.loc[ranks.index, ranks.index].fillna(1.0)
    sp.critical_difference_diagram(ranks, sig, alpha=alpha, ax=ax, label_fmt_left="{label} ({rank:.3g})",
                                   label_fmt_right="({rank:.3g}) {label}")
    k = len(ranks)
    ax.set_xlim(1.0, float(k))
    ax.set_xticks(range(1, k + 1))
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("mean rank (1 = best)")
    return ax
