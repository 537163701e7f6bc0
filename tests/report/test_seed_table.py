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


def _lr_study(tmp_path: Path) -> tuple[object, object]:
    """backbone x lr x weight decay, 3 seeds: lr 3e-4 scores 0.1 lower than lr 1e-3 everywhere."""
    rows = []
    for s in range(3):
        for b in ("classic", "delta"):
            for lr in ("0.001", "0.0003"):
                for wd in ("0", "0.15"):
                    iou = 0.55 + 0.01 * s - (0.1 if lr == "0.0003" else 0.0)
                    iou += 0.002 if b == "delta" else 0.0
                    ms = 26.0 + s - (5.0 if b == "delta" else 0.0)
                    rows.append(f"{s},{b},{lr},{wd},{iou},{ms},{1000 / ms}")
    path = tmp_path / "lr.csv"
    path.write_text("seed,backbone,lr,weight_decay,avg_iou,ms_per_frame,fps\n" + "\n".join(rows) + "\n")
    res = read_results_table(path, factors=["backbone", "lr", "weight_decay"],
                             metrics=["avg_iou", "ms_per_frame", "fps"], higher_is_better=["avg_iou", "fps"],
                             lower_is_better=["ms_per_frame"], baseline=("backbone", "classic"))
    return res, analyse(res, aso_iterations=ASO_ITERATIONS)


def test_another_varied_factor_gets_rows_of_its_own_not_a_pooled_cell(tmp_path: Path) -> None:
    """A learning-rate sweep: each cell averaged lr 1e-3 and 3e-4 runs together (0.511 for 0.561 and 0.461),
    and the note did not say so."""
    res, an = _lr_study(tmp_path)
    md = render_markdown(res, an, image_dir=tmp_path / "img", link_prefix="img")
    table = md.split("The seed experiment's table", 1)[1]
    assert "one set of rows per setting of lr" in table
    assert "| Classic convolutions, lr 0.001 | 0.560 [" in table
    assert "| Classic convolutions, lr 0.0003 | 0.460 [" in table
    assert "| Classic convolutions |" not in table
    tests = an.seed_table["tests"]
    assert {t["what"] for t in tests} == {f"delta vs classic backbone, lr {lr}" for lr in ("0.001", "0.0003")}
    assert len(tests) == 2 * 2 * 2  # lr x weight decay x (avg IoU, ms/frame)


def test_the_seed_tables_numbers_are_in_the_json_statistics(tmp_path: Path) -> None:
    """`report --json` promised every statistic the report shows, but left out the seed's table."""
    import json

    from deltatune.cli._common import json_text

    res, an = _lr_study(tmp_path)
    blob = json.loads(json_text(an.to_dict()))["seed_table"]
    row = next(r for r in blob["rows"] if r["row"] == "Delta convolutions, lr 0.0003")
    cell = next(c for c in row["cells"] if c["metric"] == "avg_iou" and c["column"] == "wd 0.15")
    assert cell["n"] == 3 and abs(cell["mean"] - 0.462) < 1e-9
    assert cell["ci_low"] < cell["mean"] < cell["ci_high"]
    assert blob["family_size"] == 8 and all(0 <= t["p"] <= t["p_holm"] <= 1 for t in blob["tests"])
    md = render_markdown(res, an, image_dir=tmp_path / "img", link_prefix="img")
    assert "Holm-corrected over these 8 tests" in md and "a family of their own" in md


def test_the_tables_speed_columns_tests_and_fixed_head_say_what_they_are(tmp_path: Path) -> None:
    """A student's reading: ms/frame pooled the weight-decay columns without a word, the JSON tests named
    their learning rate only inside a sentence, and a fixed head_features vanished from the row labels."""
    import json

    from deltatune.cli._common import json_text

    rows = [f"{s},{b},dense,{lr},{wd},{0.5 + 0.01 * s},{20.0 + s + (60 if wd == '0' else 0)},50"
            for s in range(3) for b in ("classic", "delta") for lr in ("0.001", "0.0003")
            for wd in ("0", "0.15")]
    path = tmp_path / "fixed_head.csv"
    path.write_text("seed,backbone,head_features,lr,weight_decay,avg_iou,ms_per_frame,fps\n"
                    + "\n".join(rows) + "\n")
    res = read_results_table(path, factors=["backbone", "head_features", "lr", "weight_decay"],
                             metrics=["avg_iou", "ms_per_frame", "fps"], higher_is_better=["avg_iou", "fps"],
                             lower_is_better=["ms_per_frame"], baseline=("backbone", "classic"))
    an = analyse(res, aso_iterations=ASO_ITERATIONS)
    md = render_markdown(res, an, image_dir=tmp_path / "img", link_prefix="img")
    table = md.split("The seed experiment's table", 1)[1]
    assert "| Classic convolutions, head on dense features, lr 0.001 |" in table
    assert "ms/frame and FPS over every weight decay of the row" in table
    tests = json.loads(json_text(an.to_dict()))["seed_table"]["tests"]
    assert {t["levels"]["lr"] for t in tests} == {"0.001", "0.0003"}
    for t in tests:
        assert (t["levels"]["backbone"], t["baseline"]["backbone"]) == ("delta", "classic")
        assert t["levels"]["lr"] == t["baseline"]["lr"]
