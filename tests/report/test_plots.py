"""The study plots' level axes: long level names stay readable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from deltatune.report.plots import box_strip, interaction


def _overlaps(ax: Any) -> bool:
    """Whether any two neighbouring x tick labels of the drawn axes touch, in display pixels. Upright
    labels touch when their boxes meet; labels slanted alike are parallel strips of the text's height,
    apart by the tick spacing times the sine of the slant."""
    import math

    ax.figure.canvas.draw()
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
    angle = math.radians(labels[0].get_rotation())
    if angle == 0:
        return any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
    height = labels[0].get_fontsize() * ax.figure.dpi / 72
    ticks = sorted(ax.transData.transform([(x, 0) for x in ax.get_xticks()])[:, 0])
    return any((b - a) * math.sin(angle) < height for a, b in zip(ticks, ticks[1:], strict=False))


@pytest.mark.parametrize("draw", [box_strip, interaction])
def test_long_level_names_do_not_run_into_each_other(draw: Callable[..., Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    long = ["AdamW(lr=1e-3, betas=(0.9, 0.999))", "SGD(lr=1e-2, momentum=0.9, nesterov)",
            "RMSprop(lr=1e-3, alpha=0.99)"]
    rows = [{"optimizer": o, "wd": w, "value": v + i} for i, o in enumerate(long) for w in ("0", "5e-4")
            for v in (1.0, 1.5, 2.0)]
    df = pd.DataFrame(rows)
    kw = {"hue": "wd"} if draw is interaction else {}
    try:
        _, ax = plt.subplots(figsize=(7.0, 4.5))
        draw(df, x="optimizer", y="value", ax=ax, **kw)
        assert not _overlaps(ax)
        assert ax.get_xticklabels()[0].get_rotation() == 30
        _, ax = plt.subplots(figsize=(7.0, 4.5))  # short names stay upright
        draw(df.assign(optimizer=df["optimizer"].str[:4]), x="optimizer", y="value", ax=ax, **kw)
        assert ax.get_xticklabels()[0].get_rotation() == 0 and not _overlaps(ax)
    finally:
        plt.close("all")


def test_a_critical_difference_diagram_of_long_level_names_keeps_its_axis_and_every_name() -> None:
    """Long names on a fixed 6.5-inch figure squeezed the rank axis to a sliver and were cut off at the
    figure's edge: the figure widens for them, and the saved picture holds every name."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from deltatune.report.document import _figure
    from deltatune.report.plots import cd_diagram, cd_diagram_size

    names = ["AdamW(lr=1e-3, betas=(0.9, 0.999))", "SGD(lr=1e-2, momentum=0.9, nesterov)",
             "RMSprop(lr=1e-3, alpha=0.99)"]
    ranks = pd.Series([2.8, 1.9, 1.4], index=names)
    posthoc = pd.DataFrame([[1.0, 0.3, 0.01], [0.3, 1.0, 0.2], [0.01, 0.2, 1.0]], index=names, columns=names)
    assert cd_diagram_size(["a", "b", "c"]) == (6.5, 2.8)
    size = cd_diagram_size(names)
    assert size[0] > 9
    axes: list[Any] = []

    def draw(ax: Any) -> None:
        cd_diagram(ranks, posthoc, ax=ax)
        axes.append(ax)

    png = _figure("cd.png", "cd", draw, size).png
    assert axes[0].get_position().width * size[0] > 3.0  # inches of rank axis, after the layout
    # no name runs into the picture's left or right edge: the outermost pixel columns are background
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert pixels[:, :3].min() > 250 and pixels[:, -3:].min() > 250


def test_a_paired_box_plot_joins_each_units_values_across_the_levels() -> None:
    """With ``unit``, one line per unit runs through its values at each level (the differences a paired
    test reads), the points on their level's centre so that the lines meet them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame({"unit": ["s0", "s1", "s2"] * 2, "level": ["a"] * 3 + ["b"] * 3,
                       "value": [1.0, 2.0, 3.0, 1.5, 2.2, 3.9]})
    try:
        _, ax = plt.subplots()
        box_strip(df, x="level", y="value", order=["a", "b"], unit="unit", ax=ax)
        lines = [ln for ln in ax.lines if len(ln.get_xdata()) == 2 and ln.get_xdata().tolist() == [0.0, 1.0]]
        drawn = sorted(tuple(ln.get_ydata().tolist()) for ln in lines)
        assert drawn == [(1.0, 1.5), (2.0, 2.2), (3.0, 3.9)]
        points = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections if len(c.get_offsets())])
        assert set(np.round(points, 9)) <= {0.0, 1.0}
        _, ax = plt.subplots()
        box_strip(df, x="level", y="value", order=["a", "b"], ax=ax)  # unpaired: no lines
        assert not [ln for ln in ax.lines if ln.get_xdata().tolist() == [0.0, 1.0]]
    finally:
        plt.close("all")


def test_a_critical_difference_diagram_spans_every_rank_with_a_named_axis() -> None:
    """Mean ranks 1.67, 2.17 and 2.17 of three levels filled the whole width (its axis ran 1.7 to 2.2,
    unnamed): the axis spans 1 to k, ticks at each rank, named; labels keep three digits (1.67, not 1.7)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deltatune.report.plots import cd_diagram

    names = ["a", "b", "c"]
    ranks = pd.Series([1.6667, 2.1667, 2.1667], index=names)
    posthoc = pd.DataFrame([[1.0, 0.8, 0.8], [0.8, 1.0, 1.0], [0.8, 1.0, 1.0]], index=names, columns=names)
    try:
        _, ax = plt.subplots()
        cd_diagram(ranks, posthoc, ax=ax)
        assert ax.get_xlim() == (1.0, 3.0)
        assert ax.get_xticks().tolist() == [1.0, 2.0, 3.0]
        assert ax.get_xlabel() == "mean rank (1 = best)"
        texts = {t.get_text() for t in ax.texts}
        assert "a (1.67)" in texts and "(2.17) c" in texts
    finally:
        plt.close("all")


def test_fronts_of_levels_that_share_points_stay_visible_and_the_axes_say_what_they_measure() -> None:
    """Two levels' fronts on the same points drew one marker over the other (the first level vanished),
    the legend showed lines for fronts of one point, and the axes read "speedup" and "accuracy loss"
    without saying which speed-up or in what unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deltatune.report.plots import fronts_overlay

    df = pd.DataFrame({"run": ["r0", "r0", "r1", "r1", "r2"], "strategy": ["a", "a", "b", "b", "c"],
                       "accuracy_loss": [0.0, 0.5, 0.0, 0.5, 0.2], "speedup": [1.0, 2.0, 1.0, 2.0, 1.5]})
    try:
        _, ax = plt.subplots()
        fronts_overlay(df, hue="strategy", hue_order=["a", "b", "c"], xlabel="loss (points)",
                       ylabel="MAC speedup", ax=ax)
        marks = [c for c in ax.collections if len(c.get_offsets())]
        shapes = [tuple(np.round(c.get_paths()[0].vertices, 6).ravel()) for c in marks]
        assert len(set(shapes)) == 3  # one marker per level
        sizes = [float(c.get_sizes()[0]) for c in marks]
        assert sizes[0] > sizes[1] > sizes[2]  # a later level's mark sits inside an earlier one's
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["a", "b", "c"]
        assert all(h.get_marker() not in (None, "None", "") for h in legend.legend_handles)
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("loss (points)", "MAC speedup")
    finally:
        plt.close("all")
