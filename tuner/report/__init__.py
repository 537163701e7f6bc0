"""Reports: plots and tables of searches and studies. Modules import seaborn/matplotlib lazily."""

from __future__ import annotations

from deltatune.report.pareto_plot import plot_pareto, plot_threshold_heatmap, save_pareto_figure

__all__ = ["plot_pareto", "plot_threshold_heatmap", "save_pareto_figure"]
