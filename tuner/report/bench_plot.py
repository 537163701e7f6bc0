"""The picture of ``deltatune bench --plot``: where a delta frame's time goes, against what dense pays.

Left: the measured ms per frame of the dense model and of the delta network, each split into its convs
and the rest (for the delta network: input comparison, masks, truncation steps, adds, Python between
ops). Right: the heaviest conv layers, each with its time inside the dense model beside the time the
delta network spent in its kernel, coloured by the backend's choice (sparse, dense, or mixed over
the frames). It shows at a glance whether a setting loses to dense in its convs or in the per-pixel
work around them, which the table says in numbers.

A thin renderer over :class:`deltatune.bench.BenchResult` (computed and tested there).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deltatune.report._mpl import plain_text, pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from deltatune.bench import BenchResult, LayerBench

__all__ = ["CHOICE_COLOURS", "dense_side", "heaviest_layers", "save_bench_figure"]

#: bar colour of a layer's delta time by the backend's choice
CHOICE_COLOURS = {"sparse": "tab:blue", "dense": "tab:orange", "mixed": "tab:purple"}


def dense_side(row: LayerBench) -> float | None:
    """The dense time drawn for a layer: inside the dense model when it was measured there (CPU), else
    the calibration table's (the layer alone, in a warm cache)."""
    return row.dense_net_ms if row.dense_net_ms is not None else row.dense_ms


def heaviest_layers(result: BenchResult, n: int = 20) -> list[LayerBench]:
    """The ``n`` conv layers that cost the most on either side (:func:`dense_side` or the delta kernel),
    most expensive first; layers with neither time (skipped, or a backend that does not profile) are
    left out."""
    timed = [r for r in result.layers if r.ms is not None or dense_side(r) is not None]
    return sorted(timed, key=lambda r: -max(r.ms or 0.0, dense_side(r) or 0.0))[:n]


def _totals_panel(ax: Axes, result: BenchResult) -> None:
    kernels = sum(r.ms for r in result.layers if r.ms is not None)
    rest = max(result.delta_ms - kernels, 0.0)
    convs = [r for r in result.layers if r.kind == "conv"]
    if convs and all(r.dense_net_ms is not None for r in convs):  # the dense frame's convs, measured
        dense_convs = min(sum(r.dense_net_ms or 0.0 for r in convs), result.dense_ms)
        ax.bar([0], [dense_convs], color="0.45", width=0.6, label="dense model's convs")
        ax.bar([0], [result.dense_ms - dense_convs], bottom=[dense_convs], color="0.75", width=0.6,
               label="dense model's other layers")
    else:
        ax.bar([0], [result.dense_ms], color="0.6", width=0.6)
    ax.bar([1], [kernels], color="tab:blue", width=0.6, label="delta conv kernels")
    ax.bar([1], [rest], bottom=[kernels], color="tab:red", width=0.6,
           label="delta, the rest: input step, masks,\ntruncation, adds, Python")
    ax.set_xticks([0, 1], ["dense", "delta"])
    ax.set_ylabel("ms per frame (measured, batch included)", fontsize=8)
    for x, v in ((0, result.dense_ms), (1, result.delta_ms)):
        ax.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    ax.set_title(f"{result.speedup:.2f}x measured", fontsize=9)


def _layers_panel(ax: Axes, rows: list[LayerBench]) -> None:
    import numpy as np

    y = np.arange(len(rows))
    dense = [dense_side(r) or 0.0 for r in rows]
    delta = [r.ms or 0.0 for r in rows]
    in_net = all(r.dense_net_ms is not None for r in rows)
    ax.barh(y - 0.2, dense, height=0.4, color="0.7",
            label="dense model (in the network)" if in_net else "dense (calibrated, alone)")
    colours = [CHOICE_COLOURS.get(r.choice, "0.3") for r in rows]
    ax.barh(y + 0.2, delta, height=0.4, color=colours)
    for c, label in CHOICE_COLOURS.items():
        if any(r.choice == c for r in rows):
            ax.barh([np.nan], [np.nan], color=label, label=f"delta kernel, {c}")
    ax.set_yticks(y, [f"{r.name}  ({r.frac_out:.0%} updated)" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms per frame", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"the {len(rows)} heaviest conv layers", fontsize=9)


@plain_text
def save_bench_figure(result: BenchResult, path: str | Path, *, layers: int = 20) -> Path:
    """Draw ``result`` to ``path`` (PNG, SVG, PDF ...), atomically; ``layers`` heaviest conv layers."""
    plt = pyplot()

    rows = heaviest_layers(result, layers)
    fig = plt.figure(figsize=(11, max(4.5, 0.28 * len(rows) + 2.0)), layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=[1, 3.2])
    _totals_panel(fig.add_subplot(grid[0, 0]), result)
    if rows:
        _layers_panel(fig.add_subplot(grid[0, 1]), rows)
    else:
        ax = fig.add_subplot(grid[0, 1])
        ax.text(0.5, 0.5, "no per-layer times (the backend does not profile its kernels)", ha="center")
        ax.set_axis_off()
    macs = f"{result.mac_speedup:.2f}x" if result.mac_speedup < float("inf") else "no MACs"
    fig.suptitle(f"{result.model} on {Path(result.video).name}: {result.frames} frames x batch "
                 f"{result.batch}, {result.threads} threads; measured {result.speedup:.2f}x, MAC "
                 f"speedup {macs}, accuracy loss {result.accuracy_loss:.2f} {result.metric} points",
                 fontsize=9)
    from deltatune._atomic import atomic_savefig

    return atomic_savefig(fig, path, dpi=110)
