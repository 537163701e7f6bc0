"""Reports: plots and tables of searches and studies. Modules import seaborn/matplotlib lazily.

A study's report: :func:`analyse` computes its statistics (:class:`Analysis`), :func:`render_html` and
:func:`render_markdown` lay them out, :func:`write_report` does both and writes the files atomically.
"""

from __future__ import annotations

from deltatune.report.analysis import (
    Analysis,
    FactorComparison,
    LevelSummary,
    MetricAnalysis,
    PairwiseComparison,
    RunSpeed,
    analyse,
)
from deltatune.report.pareto_plot import plot_pareto, plot_threshold_heatmap, save_pareto_figure
from deltatune.report.plots import box_strip, cd_diagram, fronts_overlay, interaction
from deltatune.report.render import render_html, render_markdown, write_report

__all__ = [
    "plot_pareto",
    "plot_threshold_heatmap",
    "save_pareto_figure",
    "Analysis",
    "MetricAnalysis",
    "LevelSummary",
    "FactorComparison",
    "PairwiseComparison",
    "RunSpeed",
    "analyse",
    "box_strip",
    "interaction",
    "fronts_overlay",
    "cd_diagram",
    "render_html",
    "render_markdown",
    "write_report",
]
