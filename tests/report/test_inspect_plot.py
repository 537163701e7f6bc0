"""``inspect --plot``'s picture: drawn from a real inspection of the default hrnet on vtest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PIL import Image

from deltatune.inspection import inspect_model
from deltatune.report.inspect_plot import busiest_points, save_inspection_figure

ROOT = Path(__file__).resolve().parents[2]


def test_the_figure_shows_the_busiest_point_of_each_half(vtest_path: Path, tmp_path: Path) -> None:
    r = inspect_model("hrnet", video=vtest_path, frames=3,
                      thresholds_file=ROOT / "studies" / "thresholds" / "hrnet.json", keep_last=True)
    names = busiest_points(r)
    points = [p for p in r.truncation_points if p["name"] != "input"]
    half = (len(points) + 1) // 2
    assert names == [max(points[:half], key=lambda p: p["dense_macs"])["name"],
                     max(points[half:], key=lambda p: p["dense_macs"])["name"]]
    out = save_inspection_figure(r, tmp_path / "deep" / "where.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width >= 900 and im.height >= 1000  # three stream rows + layers
    assert [p.name for p in out.parent.iterdir()] == ["where.png"]  # no temporary file left
    # a last frame that ran dense has no fired pixels to show: the crops and the layer chart remain
    assert r.last_frame is not None
    dense = replace(r, last_frame=replace(r.last_frame, fired={}, dense_frame=True))
    assert busiest_points(dense) == []
    with Image.open(save_inspection_figure(dense, tmp_path / "dense.png")) as im2:
        assert im2.format == "PNG" and im2.height >= 1000
