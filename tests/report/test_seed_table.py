"""The seed experiment's table in a report: its columns and caption follow the study's factors."""

from __future__ import annotations

from pathlib import Path

from deltatune.ablation.table import read_results_table
from deltatune.report import render_markdown
from deltatune.report.analysis import analyse
from tests.report.conftest import ASO_ITERATIONS


def _study(tmp_path: Path, weight_decays: tuple[str, ...]) -> str:
    rows = []
    for s in range(3):
        for b in ("classic", "delta"):
            for wd in weight_decays:
                iou = 0.55 + 0.01 * s + (0.002 if b == "delta" else 0.0) - (0.3 if wd == "0.15" else 0.0)
                ms = 26.0 + s - (5.0 if b == "delta" else 0.0)
                rows.append(f"{s},{b},{wd},{iou},{ms},{1000 / ms}")
    path = tmp_path / "det.csv"
    path.write_text("seed,backbone,weight_decay,avg_iou,ms_per_frame,fps\n" + "\n".join(rows) + "\n")
    factors = ["backbone", "weight_decay"] if len(weight_decays) > 1 else ["backbone"]
    res = read_results_table(path, factors=factors, metrics=["avg_iou", "ms_per_frame", "fps"],
                             higher_is_better=["avg_iou", "fps"], lower_is_better=["ms_per_frame"],
                             baseline=("backbone", "classic"))
    return render_markdown(res, analyse(res, aso_iterations=ASO_ITERATIONS), image_dir=tmp_path / "img",
                           link_prefix="img")


def test_without_a_weight_decay_factor_the_column_is_the_metric_and_no_seed_row_is_promised(
    tmp_path: Path,
) -> None:
    """A study of the backbone alone: the value column had an empty heading, and the caption spoke of
    one column per weight decay and of the seed's row, neither of which the table had."""
    md = _study(tmp_path, ("0",))
    table = md.split("The seed experiment's table", 1)[1]
    assert "|   | avg_iou | ms/frame | FPS |" in table  # the metric's label (a CSV's: its column name)
    assert "weight decay is not a factor of this study" in table
    assert "one column per weight decay" not in table and "The seed's own classic row" not in table
    assert "| Seed: classic convolutions |" not in table


def test_with_the_seeds_weight_decays_the_seed_row_and_its_caption_are_there(tmp_path: Path) -> None:
    md = _study(tmp_path, ("0", "0.15"))
    table = md.split("The seed experiment's table", 1)[1]
    assert "| wd 0 | wd 0.15 | ms/frame | FPS |" in table
    assert "one column per weight decay. The seed's own classic row" in table
    assert "| Seed: classic convolutions | 0.182 | 0.126 |" in table
