"""The picture of ``deltatune inspect --plot``: where a delta network does its work on a clip.

For each stream (up to :data:`MAX_STREAMS`), the last frame's crop with the pixels the input step passed on
tinted and the dense and delta predictions drawn over it, then the pixels that fired at the two truncation
points that feed the most multiply-adds in each half of the network. Below, every truncation point in
network order: the share of pixels updated and fired over the clip, over the dense GMACs it feeds. This is
what a user looks at to see why a setting is fast or slow, and what it costs on their own video.

A thin renderer over :class:`deltatune.inspection.InspectReport` (computed and tested there).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deltatune.report._mpl import plain_text, pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from deltatune.inspection import InspectReport, LastFrame

__all__ = ["MAX_STREAMS", "busiest_points", "save_inspection_figure"]

#: streams drawn (one row each); a batch of more streams shows its first ones
MAX_STREAMS = 3
#: the input step's tint (RGB) over pixels it passed on
TINT = np.array([1.0, 0.15, 0.1])


def busiest_points(report: InspectReport) -> list[str]:
    """The truncation points drawn beside the crop: in each half of the network (by order), the one that
    feeds the most dense multiply-adds and has fired pixels on the last frame. Fewer when a half has none
    (a dense last frame has none at all)."""
    last = report.last_frame
    if last is None or not last.fired:
        return []
    points = [p for p in report.truncation_points if p["name"] in last.fired and p["name"] != "input"]
    half = (len(points) + 1) // 2
    out = []
    for part in (points[:half], points[half:]):
        if part:
            out.append(max(part, key=lambda p: (p["dense_macs"], -p["index"]))["name"])
    return out


def _stream(mask: np.ndarray, b: int) -> np.ndarray:
    """Stream ``b``'s pixels of a fired mask ``[B, h, w]``; a mask broadcast over the batch (``B == 1``)
    is every stream's."""
    return mask[b] if mask.shape[0] > b else mask[0]


def _crop_panel(ax: Axes, last: LastFrame, b: int) -> None:
    img = last.images[b]
    mask = last.fired.get("input")
    if mask is not None:
        m = _stream(mask, b)[..., None].astype(float)
        img = img * (1 - 0.45 * m) + TINT * 0.45 * m
        share = f"input: {m.mean():.0%} of pixels passed on"
    else:
        share = "a dense frame (key frame or dense fallback)"
    ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
    title = f"stream {b}: {share}"
    if last.dense_points is not None and last.delta_points is not None and last.present is not None:
        keep = last.present[b]
        d, x = last.dense_points[b][keep], last.delta_points[b][keep]
        for (x0, y0), (x1, y1) in zip(d, x, strict=True):
            ax.plot([x0, x1], [y0, y1], color="yellow", lw=0.8)
        ax.scatter(d[:, 0], d[:, 1], s=28, facecolors="none", edgecolors="lime", linewidths=1.3,
                   label="dense")
        ax.scatter(x[:, 0], x[:, 1], s=22, marker="x", color="magenta", linewidths=1.2, label="delta")
        if len(d):
            ax.legend(loc="lower right", fontsize=7, framealpha=0.7)
        title += f"\n{int(keep.sum())} present keypoints: dense o, delta x"
    elif last.dense_classes is not None and last.delta_classes is not None:
        dc, xc = int(last.dense_classes[b]), int(last.delta_classes[b])
        title += f"\ntop-1 class: dense {dc}, delta {xc}" + ("" if dc == xc else "  (differs)")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _mask_panel(ax: Axes, last: LastFrame, name: str, b: int) -> None:
    m = _stream(last.fired[name], b)
    ax.imshow(m, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(f"{name}: {m.mean():.0%} fired\n({m.shape[1]}x{m.shape[0]}, black = fired)", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _layers_panel(ax: Axes, report: InspectReport) -> None:
    pts = report.truncation_points
    idx = np.arange(len(pts))
    gmac = np.array([p["dense_macs"] for p in pts], dtype=float) / 1e9
    ax2 = ax.twinx()
    ax2.bar(idx, gmac, width=0.9, color="0.85", zorder=0)
    ax2.set_ylabel("dense GMACs it feeds", fontsize=8, color="0.45")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(idx, [100 * p["frac_updated"] for p in pts], color="tab:blue", lw=1.2, label="updated")
    ax.plot(idx, [100 * p["frac_fired"] for p in pts], color="tab:orange", lw=1.2, label="fired")
    ax.set_ylim(0, 102)
    ax.set_ylabel(f"% of pixels, frames 1..{report.frames - 1}", fontsize=8)
    ax.set_xlim(-0.6, len(pts) - 0.4)
    step = max(1, len(pts) // 12)
    ax.set_xticks(idx[::step])
    ax.set_xticklabels([p["name"] for p in pts][::step], rotation=30, ha="right", fontsize=7)
    ax.set_xlabel("truncation point (network order)", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)


def _title(report: InspectReport) -> str:
    first = f" from frame {report.start}" if report.start else ""
    macs = f"{report.mac_speedup:.2f}x" if np.isfinite(report.mac_speedup) else "no MACs"
    acc = ("" if report.accuracy_loss is None
           else f", accuracy loss {report.accuracy_loss:.2f} {report.metric} points")
    streams = f"{report.streams} stream{'s' * (report.streams != 1)}"
    return (f"{report.model} on {Path(report.video).name}: {report.frames} frames{first} x {streams}"
            f", MAC speedup {macs}{acc}\nlast frame (frame {report.start + report.frames - 1})")


@plain_text
def save_inspection_figure(report: InspectReport, path: str | Path) -> Path:
    """Draw ``report`` (made with ``keep_last=True``) to ``path`` (PNG, SVG, PDF ...), atomically."""
    plt = pyplot()

    last = report.last_frame
    if last is None:
        raise ValueError("save_inspection_figure: the report has no last frame "
                         "(inspect_model(keep_last=True))")
    rows = min(MAX_STREAMS, last.images.shape[0])
    names = busiest_points(report)
    cols = 1 + len(names)
    aspect = last.images.shape[1] / last.images.shape[2]
    height = 3.0 * rows * min(aspect, 1.5) + 3.6
    fig = plt.figure(figsize=(max(9.0, 3.2 * cols), height), layout="constrained")
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[3 * min(aspect, 1.5)] * rows + [2.4])
    for b in range(rows):
        _crop_panel(fig.add_subplot(grid[b, 0]), last, b)
        for c, name in enumerate(names, start=1):
            _mask_panel(fig.add_subplot(grid[b, c]), last, name, b)
    _layers_panel(fig.add_subplot(grid[rows, :]), report)
    fig.suptitle(_title(report), fontsize=9)
    from deltatune._atomic import atomic_savefig

    return atomic_savefig(fig, path, dpi=110)
