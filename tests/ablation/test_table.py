"""A CSV table of runs made elsewhere, read as the results of a study (``deltatune report runs.csv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deltatune.ablation.table import lower_is_better_by_name, read_results_table
from deltatune.errors import ConfigError
from deltatune.report.analysis import Analysis, analyse
from tests.report.synthetic import make_results


def _sweep(path: Path, *, seeds: int = 5, shared_seeds: bool = True) -> Path:
    """A wide learning-rate x weight-decay sweep: one row per run, mAP and loss columns. lr 0.01 is 2 mAP
    better than 0.001, 0.1 is 3 worse; each seed shifts every run of it alike (what pairing removes)."""
    rng = np.random.default_rng(3)
    rows = []
    for seed in range(seeds):
        seed_fx = rng.normal(0, 1)
        for i, lr in enumerate(("0.001", "0.01", "0.1")):
            for j, wd in enumerate(("0", "0.0005")):
                m = 30 + {"0.001": 0, "0.01": 2, "0.1": -3}[lr] + seed_fx + rng.normal(0, 0.3)
                unit = seed if shared_seeds else seed * 10 + 2 * i + j
                rows.append({"seed": unit, "lr": lr, "weight_decay": wd, "mAP": m, "loss": 1 - m / 100})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_wide_table_becomes_runs_factors_and_metrics(tmp_path: Path) -> None:
    res = read_results_table(
        _sweep(tmp_path / "sweep.csv"), factors=["lr", "weight_decay"], lower_is_better=["loss"],
        margins={"mAP": 0.5}, baseline=("lr", "0.001"),
    )
    assert res.name == "sweep" and res.unit_name == "seed" and res.pairing == "unit"
    assert res.factors == {"lr": ["0.001", "0.01", "0.1"], "weight_decay": ["0", "0.0005"]}
    assert [(m.name, m.higher_is_better, m.margin) for m in res.metrics] == [("mAP", True, 0.5),
                                                                            ("loss", False, None)]
    assert res.primary == ("lr", "0.001", "mAP")
    obs = res.observations
    assert list(obs.columns) == ["run", "seed", "unit", "lr", "weight_decay", "metric", "value"]
    assert len(obs) == 30 * 2 and obs["run"].nunique() == 30 == res.expected_runs == res.completed_runs
    assert sorted(obs["seed"].unique()) == [0, 1, 2, 3, 4]
    # the same split from the other side: naming the metrics leaves the rest as factors
    same = read_results_table(tmp_path / "sweep.csv", metrics=["mAP", "loss"], lower_is_better=["loss"])
    pd.testing.assert_frame_equal(same.observations, obs)


def test_a_column_neither_factor_nor_metric_is_said_to_be_left_out(tmp_path: Path) -> None:
    """Given --metrics and --factors that leave a column out, the report dropped it without a word."""
    res = read_results_table(_sweep(tmp_path / "sweep.csv"), metrics=["mAP"], factors=["lr", "weight_decay"])
    assert [m.name for m in res.metrics] == ["mAP"]
    assert "loss: neither a factor nor a metric (--factors and --metrics name others), left out" in res.notes
    full = read_results_table(tmp_path / "sweep.csv", factors=["lr", "weight_decay"])
    assert not any("left out" in n for n in full.notes)


def test_pairing_by_seed_finds_what_independent_groups_miss(tmp_path: Path) -> None:
    """A 2-point effect under a 1-point seed spread: the paired analysis removes the spread."""
    path = _sweep(tmp_path / "sweep.csv", seeds=4)
    kw = {"factors": ["lr", "weight_decay"], "baseline": ("lr", "0.001")}
    paired = analyse(read_results_table(path, **kw), aso_iterations=50)
    unpaired = analyse(read_results_table(path, paired=False, **kw), aso_iterations=50)
    assert paired.pairing == "unit" and unpaired.pairing == "none"

    def p(a: Analysis) -> float:
        return next(c.p_raw for c in a.pairwise if (c.metric, c.factor, c.level) == ("mAP", "lr", "0.01"))

    assert p(paired) < 0.001 < p(unpaired)
    # seeds that never repeat across levels cannot pair: independent groups, said in a note
    lone = read_results_table(_sweep(tmp_path / "lone.csv", shared_seeds=False), **kw)
    assert lone.pairing == "none" and "compared as independent groups" in lone.notes[-1]


@pytest.mark.parametrize("clips", [(), ("vtest@640", "carphone@0")], ids=["one-observation", "on-clips"])
def test_a_long_table_written_by_report_reads_back_to_the_same_statistics(
    tmp_path: Path, clips: tuple[str, ...]
) -> None:
    """Also when each run was scored on several clips (an observation factor, ``scored_on``)."""
    original = make_results(seeds=6, clips=clips)
    path = tmp_path / "observations.csv"
    original.observations.to_csv(path, index=False)
    back = read_results_table(path, lower_is_better=["loss"], margins={"speedup": 0.5, "loss": 0.5},
                              baseline=("strategy", "greedy"), metrics=["speedup", "loss"])
    assert back.factors == original.factors and back.pairing == "unit"
    cols = list(original.observations.columns)
    got = back.observations[cols].astype({"unit": str})
    pd.testing.assert_frame_equal(got, original.observations.astype({"unit": str}), check_dtype=False)
    a, b = analyse(original, aso_iterations=50), analyse(back, aso_iterations=50)
    assert [(c.metric, c.factor, c.level, c.test.test) for c in a.pairwise] == [
        (c.metric, c.factor, c.level, c.test.test) for c in b.pairwise]
    np.testing.assert_allclose([c.p_holm for c in a.pairwise], [c.p_holm for c in b.pairwise], rtol=1e-9)
    np.testing.assert_allclose([c.diff for c in a.pairwise], [c.diff for c in b.pairwise], rtol=1e-9)


CSV_CASES = [
    ("seed,lr,acc\n0,0.1,0.5\n", {}, "one row per run (no 'metric' and 'value' columns)"),
    ("seed,lr,acc\n0,0.1,0.5\n0,0.01,?\n", {"factors": ["lr"]},
     "line 3: acc value '?' is not a number (leave the cell empty, or write NA, for a missing value)"),
    ("seed,lr,acc\n0,0.1,0.5\n0,0.1,0.6\n0,0.01,0.4\n", {"factors": ["lr"]},
     "seed 0 has two runs with lr=0.1: pairing by seed needs one run per unit and setting"),
    ("seed,lr,acc\n0,0.1,0.5\n", {"factors": ["lr"], "unit": "rep"}, "--unit rep: "),
    ("seed,lr,acc\n0,0.1,0.5\n", {"factors": ["lr"], "lower_is_better": ["loss"]},
     "--lower-is-better loss: "),
    ("seed,lr,acc\n0,0.1,0.5\n", {"factors": ["lr"], "higher_is_better": ["loss"]},
     "--higher-is-better loss: "),
    ("seed,lr,acc\n0,0.1,0.5\n",
     {"factors": ["lr"], "higher_is_better": ["acc"], "lower_is_better": ["acc"]},
     "--lower-is-better and --higher-is-better both name 'acc'"),
    ("seed,lr,acc\n0,0.1,0.5\n0,0.01,\"0,4\"\n", {"factors": ["lr"]},
     "line 3: acc value '0,4' is not a number"),
    ("seed,lr,acc\n0,0.1,0.5\n", {"factors": ["lr"], "baseline": ("wd", "0")}, "has no factor 'wd'"),
    ("seed,lr,acc\n0,0.1,0.5\n", {"factors": ["lr", "acc"], "metrics": ["acc"]}, "cannot be a metric and a"),
    ("seed,lr,acc\n0,0.1,0.5\n", {"metrics": ["acc", "lr"]}, "no factor column"),
    ("seed,lr,lr\n0,0.1,0.5\n", {"factors": ["lr"]}, "column 'lr' appears twice"),
    ("seed,lr,acc\n", {"factors": ["lr"]}, "no rows"),
    ("", {}, "not a readable CSV table (empty)"),
    ("seed,lr,acc\n0,0.1,0.5\n0,0.01\n", {"factors": ["lr"]}, "line 3: 2 cells under a header of 3"),
    ("seed,lr,metric,value\n0,0.1,acc,0.5\n0,0.1,acc,0.6\n", {}, "has two values of 'acc'"),
    ("seed,lr,metric,value\n0,0.1,acc,0.5\n", {"metrics": ["mAP"]}, "has no rows of metric 'mAP'"),
    ("seed,lr,acc\n0,0.1,0.5\n1,0.1,-inf\n", {"factors": ["lr"]},
     "line 3: acc value '-inf' is not a finite number (leave the cell empty for a missing value)"),
]


@pytest.mark.parametrize(("text", "kw", "needle"), CSV_CASES, ids=[str(i) for i in range(len(CSV_CASES))])
def test_a_table_that_cannot_be_read_is_named_in_one_error(
    tmp_path: Path, text: str, kw: dict, needle: str
) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        read_results_table(path, **kw)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_missing_values_read_alike_however_the_table_writes_them(tmp_path: Path) -> None:
    """R writes NA, spreadsheets #N/A, SQL exports NULL, pandas an empty cell: each is a missing value,
    read as an empty cell is. ("n/a" was refused as not a number.)"""
    markers = ["NA", "n/a", "#N/A", "NULL", "None", "nan", "<NA>", " "]
    rows = [f"{seed},{lr},{'' if (seed + k) % 3 == 0 else 0.5 + seed / 10 + k / 100}"
            for seed in range(len(markers)) for k, lr in enumerate(["0.1", "0.01"])]
    empty = tmp_path / "empty.csv"
    empty.write_text("seed,lr,acc\n" + "\n".join(rows) + "\n")
    marked = tmp_path / "marked.csv"
    marked.write_text("seed,lr,acc\n" + "\n".join(
        r + markers[i // 2] if r.endswith(",") else r for i, r in enumerate(rows)) + "\n")
    assert marked.read_text().count(",NA\n") + marked.read_text().count(",n/a\n") >= 1
    a = read_results_table(empty, factors=["lr"])
    b = read_results_table(marked, factors=["lr"])
    assert a.observations["value"].isna().sum() == sum(r.endswith(",") for r in rows) > 3
    pd.testing.assert_frame_equal(a.observations, b.observations)
    left_out = a.observations["value"].isna().sum()  # said as missing, not as "non-finite"
    assert f"{left_out} missing observation(s) (no value recorded) were left out" in analyse(
        b, aso_iterations=20).notes


@pytest.mark.parametrize(("column", "line"), [("lr", 4), ("seed", 6)])
def test_a_run_without_its_setting_or_seed_is_refused_with_its_line(
    tmp_path: Path, column: str, line: int
) -> None:
    """An empty factor cell became a level named "" (listed between 0.001 and 0.01, and no pair of the
    real levels tested); an empty seed a unit named "". Neither can be placed: refused, naming the line."""
    rows = [{"seed": s, "lr": lr, "mAP": 30 + s} for s in range(3) for lr in ("0.001", "0.01")]
    table = pd.DataFrame(rows).astype(str)
    table.loc[line - 2, column] = " "  # line 1 is the header
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    said = rf"t.csv: line {line}: column '{column}' is empty; every run needs"
    with pytest.raises(ConfigError, match=said):
        read_results_table(path, factors=["lr"])


def test_a_spreadsheets_csv_reads_as_a_plain_one(tmp_path: Path) -> None:
    """Semicolons, a byte-order mark and a blank line, as spreadsheets may save a table; an error names
    the line as the file numbers it."""
    plain = _sweep(tmp_path / "plain.csv")
    lines = plain.read_text().splitlines()
    sheet = tmp_path / "sheet.csv"
    semis = [x.replace(",", ";") for x in lines]
    sheet.write_text("\ufeff" + "\n".join([semis[0], "", *semis[1:]]) + "\n", encoding="utf-8")
    kw = {"factors": ["lr", "weight_decay"]}
    a, b = read_results_table(plain, **kw), read_results_table(sheet, **kw)
    assert b.unit_name == "seed" and b.pairing == "unit"
    pd.testing.assert_frame_equal(a.observations.drop(columns="run"), b.observations.drop(columns="run"))
    broken = tmp_path / "broken.csv"
    broken.write_text(sheet.read_text(encoding="utf-8").replace(";30.", ";x30.", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.csv: line \d+: mAP value 'x30\.\d+' is not a number"):
        read_results_table(broken, **kw)


@pytest.mark.parametrize("first", [0, 1], ids=["pandas-index", "r-row-names"])
def test_a_row_number_column_without_a_name_is_left_out(tmp_path: Path, first: int) -> None:
    """pandas' ``to_csv`` (index 0, 1, ...) and R's ``write.csv`` (row names 1, 2, ...) add a first column
    with an empty header; it is neither a metric nor a factor. Any other unnamed column is refused."""
    plain = _sweep(tmp_path / "plain.csv")
    frame = pd.read_csv(plain, dtype=str)
    frame.index += first
    indexed = tmp_path / "indexed.csv"
    frame.to_csv(indexed)
    kw = {"factors": ["lr", "weight_decay"]}
    res = read_results_table(indexed, **kw)
    assert [m.name for m in res.metrics] == ["mAP", "loss"]
    assert any("row numbers" in n for n in res.notes)
    pd.testing.assert_frame_equal(
        res.observations.drop(columns="run"), read_results_table(plain, **kw).observations.drop(columns="run")
    )
    shuffled = tmp_path / "shuffled.csv"
    frame.sample(frac=1, random_state=0).to_csv(shuffled)  # not row numbers in order: a column of data
    with pytest.raises(ConfigError, match=r"shuffled.csv: column 1 has no name in the header line"):
        read_results_table(shuffled, **kw)


def test_a_baseline_written_as_another_spelling_of_the_number_names_its_level(tmp_path: Path) -> None:
    path = _sweep(tmp_path / "sweep.csv")
    for written in ("1e-3", "0.0010", ".001"):
        res = read_results_table(path, factors=["lr", "weight_decay"], baseline=("lr", written))
        assert res.primary == ("lr", "0.001", "mAP")
    with pytest.raises(ConfigError, match=r"factor lr has no level '1e-4' \(levels: 0.001, 0.01, 0.1\)"):
        read_results_table(path, factors=["lr", "weight_decay"], baseline=("lr", "1e-4"))


def test_a_factor_left_among_the_metrics_is_pointed_at_when_runs_cannot_pair(tmp_path: Path) -> None:
    """Naming lr alone leaves weight_decay a metric, so each seed has two runs per lr: the error says which
    columns were read as metrics, the likely fix."""
    path = _sweep(tmp_path / "sweep.csv")
    with pytest.raises(ConfigError) as info:
        read_results_table(path, factors=["lr"])
    assert "seed 0 has two runs with lr=0.001" in str(info.value)
    assert str(info.value).endswith("in --factors (read as metrics: weight_decay, mAP, loss)")


def test_a_factor_left_out_by_metrics_is_pointed_at_when_runs_cannot_pair(tmp_path: Path) -> None:
    """Naming lr and mAP leaves weight_decay neither a factor nor a metric: the error listed only mAP as
    "read as metrics", pointing away from the column that sets the runs; it names the left-out ones too."""
    path = _sweep(tmp_path / "sweep.csv")
    with pytest.raises(ConfigError) as info:
        read_results_table(path, factors=["lr"], metrics=["mAP"])
    assert "seed 0 has two runs with lr=0.001" in str(info.value)
    assert str(info.value).endswith("in --factors (read as metrics: mAP; left out: weight_decay, loss)")


def test_an_empty_cell_is_a_missing_value_said_so_in_the_tables_words(tmp_path: Path) -> None:
    from deltatune.report.document import build_document

    path = tmp_path / "runs.csv"
    path.write_text("seed,lr,acc,loss\n0,0.1,50,1\n1,0.1,,2\n2,0.1,52,3\n0,0.01,52,1\n1,0.01,54,1\n2,0.01,55,2\n")
    res = read_results_table(path, factors=["lr"])
    assert res.completed_runs == 6  # the run is there; one of its metrics is not
    text = repr(build_document(res, analyse(res, aso_iterations=50)))
    assert "No value in 1 of 6 observations: the table leaves those cells empty (or NaN)" in text
    assert "search run" not in text


def test_a_row_missing_from_a_crossed_table_is_an_expected_run(tmp_path: Path) -> None:
    """Seeds 0-2 under both learning rates, less one row: "Completed runs: 5 of 5 expected; 1 (design cell,
    seed) pair(s) have no run" contradicted itself. The missing pair is an expected run."""
    path = tmp_path / "runs.csv"
    path.write_text("seed,lr,acc\n0,0.1,50\n1,0.1,51\n2,0.1,52\n0,0.01,52\n1,0.01,54\n")
    a = analyse(read_results_table(path, factors=["lr"]), aso_iterations=20)
    assert (a.runs.completed, a.runs.expected, a.runs.n_missing) == (5, 6, 1)
    assert a.runs.missing == ("lr = 0.01, seed 2",)


def test_a_seed_column_is_found_in_any_capitalisation(tmp_path: Path) -> None:
    """``Seed`` (as a spreadsheet heads it) is the repeated unit, not a metric of its own."""
    plain = _sweep(tmp_path / "plain.csv")
    capital = tmp_path / "capital.csv"
    lines = plain.read_text().splitlines()
    capital.write_text("\n".join([lines[0].replace("seed", "Seed"), *lines[1:]]) + "\n")
    res = read_results_table(capital, factors=["lr", "weight_decay"])
    assert res.unit_name == "Seed" and res.pairing == "unit"
    assert [m.name for m in res.metrics] == ["mAP", "loss"]


def test_two_spellings_of_one_number_are_one_level(tmp_path: Path) -> None:
    """Rows written by two scripts, ``0.001`` and ``1e-3``: one learning rate, shown as first written."""
    plain = _sweep(tmp_path / "plain.csv")
    lines = plain.read_text().splitlines()
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join([lines[0], *(ln.replace(",0.001,", ",1e-3,") if i % 2 else ln
                                            for i, ln in enumerate(lines[1:]))]) + "\n")
    assert ",1e-3," in mixed.read_text() and ",0.001," in mixed.read_text()
    kw = {"factors": ["lr", "weight_decay"]}
    res = read_results_table(mixed, **kw)
    assert res.factors["lr"] == ["0.001", "0.01", "0.1"] and res.pairing == "unit"
    assert "factor lr: 1e-3 is read as the level 0.001 (the same number)" in res.notes
    pd.testing.assert_frame_equal(res.observations, read_results_table(plain, **kw).observations)


@pytest.mark.parametrize(("name", "lower"), [
    ("loss", True), ("val_loss", True), ("train loss", True), ("top1 error", True), ("ms_per_frame", True),
    ("trainTime", True), ("val/MAE", True), ("mAP", False), ("accuracy", False), ("fps", False),
    ("glossary", False), ("timeliness", False), ("measured_speedup", False),
    ("runtime", True), ("duration_s", True), ("wall_s", True), ("memory_mb", True), ("train_h", True),
    ("s", False), ("top5s", False), ("mac_speedup", False), ("hits", False),
])
def test_a_metric_is_lower_is_better_when_a_word_of_its_name_says_so(name: str, lower: bool) -> None:
    assert lower_is_better_by_name(name) is lower


def test_a_loss_column_is_lower_is_better_unless_told_otherwise(tmp_path: Path) -> None:
    """A table has no place to say a metric's direction: a loss read as higher-is-better would call every
    improvement worse. Its name decides, in a note; ``higher_is_better`` overrides it."""
    path = tmp_path / "runs.csv"
    path.write_text("seed,lr,acc,train loss\n0,0.1,50,1.5\n1,0.1,51,1.4\n0,0.01,52,1.2\n1,0.01,54,1.1\n")
    res = read_results_table(path, factors=["lr"])
    assert [(m.name, m.higher_is_better) for m in res.metrics] == [("acc", True), ("train loss", False)]
    assert "lower is better for train loss, read from the name (--higher-is-better NAME if not)" in res.notes
    told = read_results_table(path, factors=["lr"], higher_is_better=["train loss"])
    assert [m.higher_is_better for m in told.metrics] == [True, True]
    assert not any("read from the name" in n for n in told.notes)
    named = read_results_table(path, factors=["lr"], lower_is_better=["train loss"])
    assert [m.higher_is_better for m in named.metrics] == [True, False]
    assert not any("read from the name" in n for n in named.notes)


def test_decimal_commas_of_a_semicolon_table_are_decimal_points(tmp_path: Path) -> None:
    """A spreadsheet whose locale writes ``33,93`` saves semicolons between cells: the same runs as the
    plain table, said in a note; factor levels are read alike (``0,001`` is the level ``0.001``)."""
    plain = _sweep(tmp_path / "plain.csv")
    lines = plain.read_text().splitlines()
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("\n".join(ln.replace(",", ";").replace(".", ",") for ln in lines) + "\n")
    assert ";0,001;" in sheet.read_text()
    kw = {"factors": ["lr", "weight_decay"]}
    a, b = read_results_table(plain, **kw), read_results_table(sheet, **kw)
    assert b.factors == a.factors
    pd.testing.assert_frame_equal(a.observations.drop(columns="run"), b.observations.drop(columns="run"))
    assert any("written with a decimal comma" in n for n in b.notes)
    assert not any("decimal comma" in n for n in a.notes)


def test_rows_that_are_their_own_units_have_no_missing_pairs(tmp_path: Path) -> None:
    """Without a seed column every row is its own unit: no unit is expected under another setting, so the
    report lists no missing (setting, row) pairs (it listed every other row under every setting). Seeds
    run under several settings still name the ones a setting lacks."""
    from deltatune.report._support import run_count

    rows = tmp_path / "rows.csv"
    rows.write_text("lr,acc\n0.1,50\n0.01,52\n0.001,51\n")
    res = read_results_table(rows, factors=["lr"])
    count = run_count(res, res.observations)
    assert (count.completed, count.expected, count.n_missing, count.missing) == (3, 3, 0, ())
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("seed,lr,acc\n0,0.1,50\n0,0.01,52\n1,0.1,51\n1,0.01,53\n2,0.1,49\n")
    res = read_results_table(seeds, factors=["lr"])
    assert run_count(res, res.observations).missing == ("lr = 0.01, seed 2",)


def test_a_factor_with_one_level_is_said_to_be_a_shared_setting(tmp_path: Path) -> None:
    """A column named as a factor whose every row holds the same value (weight decay 0 throughout) has
    nothing to compare: the report says so instead of leaving it out of the tests without a word."""
    path = tmp_path / "runs.csv"
    path.write_text("seed,lr,wd,acc\n0,0.1,0,50\n0,0.01,0,52\n1,0.1,0,51\n1,0.01,0,53\n2,0.1,0,49\n"
                    "2,0.01,0,52\n")
    a = analyse(read_results_table(path, factors=["lr", "wd"]), aso_iterations=20)
    assert [c.factor for m in a.metrics for c in m.comparisons] == ["lr"]
    assert ("factor wd has one level (0): there is nothing to compare, so no test of it; it is a setting "
            "every run shares") in a.notes
    assert not any("factor lr has one level" in n for n in a.notes)


def test_numeric_levels_are_in_ascending_order_whatever_the_row_order(tmp_path: Path) -> None:
    """Rows written in any order (a sweep's runs as they finished): a number factor's levels ascend, so a
    plot's axis reads left to right and its lines join neighbouring values; the smallest is the default
    baseline. Text levels keep the order they first appear in."""
    rows = [(s, lr, opt) for s in range(3) for lr in ("0.1", "1e-3", "0.01") for opt in ("sgd", "adam")]
    path = tmp_path / "runs.csv"
    lines = [f"{s},{lr},{o},{50 + i}\n" for i, (s, lr, o) in enumerate(rows)]
    path.write_text("seed,lr,opt,acc\n" + "".join(lines))
    res = read_results_table(path, factors=["lr", "opt"])
    assert res.factors == {"lr": ["1e-3", "0.01", "0.1"], "opt": ["sgd", "adam"]}


def test_a_run_without_any_value_still_counts_as_run(tmp_path: Path) -> None:
    """A run whose every metric is missing (a search that found no setting in its budget, a diverged
    training) ran: the report counts it as completed and says the values are missing, instead of calling
    the run missing (it said "Completed runs: 0 of 4" after `ablate` had finished all four)."""
    path = tmp_path / "runs.csv"
    path.write_text("seed,lr,acc\n0,0.1,50\n0,0.01,52\n1,0.1,51\n1,0.01,\n2,0.1,49\n2,0.01,53\n")
    a = analyse(read_results_table(path, factors=["lr"]), aso_iterations=20)
    assert (a.runs.completed, a.runs.expected, a.runs.n_missing) == (6, 6, 0)
    assert a.metrics[0].n_missing == 1


def test_a_table_whose_only_factor_has_one_level_is_refused(tmp_path: Path) -> None:
    """Three seeds at lr = 0.1 only: nothing to compare. The report ran (exit 0) and said the runs were
    "compared as independent groups"; a baseline at a one-level factor is refused as well."""
    path = tmp_path / "one.csv"
    path.write_text("seed,lr,acc\n0,0.1,50\n1,0.1,51\n2,0.1,49\n")
    with pytest.raises(ConfigError, match=r"one.csv: factor lr has one level only \(0.1\): nothing to "):
        read_results_table(path, factors=["lr"])
    two = tmp_path / "two.csv"
    two.write_text("seed,lr,wd,acc\n0,0.1,0,50\n0,0.01,0,52\n1,0.1,0,51\n1,0.01,0,53\n")
    with pytest.raises(ConfigError, match=r"--baseline wd=0: factor wd has one level only \(0\) in "
                       r".*two.csv: nothing to compare it with"):
        read_results_table(two, factors=["lr", "wd"], baseline=("wd", "0"))


def test_a_metric_with_no_value_in_any_row_is_refused(tmp_path: Path) -> None:
    """Every acc cell empty: the report ran (exit 0) with n = 0 in every table and "not tested" for every
    comparison. Now one error naming the metric; other metrics' gaps stay notes."""
    path = tmp_path / "empty.csv"
    path.write_text("seed,lr,acc,loss\n0,1e-3,,0.5\n0,1e-2,,0.4\n1,1e-3,,0.6\n1,1e-2,,0.3\n")
    with pytest.raises(ConfigError, match=r"empty.csv: metric 'acc' has no value in any row"):
        read_results_table(path, factors=["lr"])
    assert read_results_table(path, factors=["lr"], metrics=["loss"]).metrics[0].name == "loss"


def test_run_names_repeated_under_every_seed_are_runs_of_their_seed(tmp_path: Path) -> None:
    """A long table naming its runs r0 and r1 under each of 4 seeds was refused ("run 'r0' has two values
    of 'acc'"), and a wide one counted 2 runs in its setup and CLI line where the report counted 8."""
    rows = [f"{s},r{i},{m},acc,{0.5 + 0.01 * s + 0.1 * i}" for s in range(4) for i, m in enumerate("ab")]
    long = tmp_path / "long.csv"
    long.write_text("seed,run,method,metric,value\n" + "\n".join(rows) + "\n")
    res = read_results_table(long, factors=["method"])
    assert res.completed_runs == 8 and res.expected_runs == 8
    wide = tmp_path / "wide.csv"
    wide.write_text("seed,run,method,acc\n" + "\n".join(
        f"{s},r{i},{m},{0.5 + 0.1 * i}" for s in range(4) for i, m in enumerate("ab")) + "\n")
    res = read_results_table(wide, factors=["method"])
    assert res.completed_runs == 8 and dict(res.setup)["runs"] == "8"


def _speedups(path: Path, header: str, values: list[float]) -> Path:
    """Two learning rates over three seeds, one speed-up column named ``header``."""
    rows = [f"{s},{lr},{v}" for (s, lr), v in zip([(s, lr) for lr in ("0.1", "0.01") for s in range(3)],
                                                   values, strict=True)]
    path.write_text(f"seed,lr,{header}\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("header", ["speedup", "Speedup", "MAC Speedup", "mac_speed-up", "SpeedUp"])
def test_a_speedup_column_in_any_spelling_gets_geometric_means(tmp_path: Path, header: str) -> None:
    """A speed-up is a ratio: its levels get the geometric mean and the t interval of the logs. A column
    headed ``Speedup`` (as a spreadsheet heads it) got the arithmetic mean and a plain t interval, and
    ``MAC Speedup`` another summary than ``MAC speedup``."""
    from scipy import stats

    values = [1.5, 2.0, 4.0, 1.1, 1.3, 1.2]
    a = analyse(read_results_table(_speedups(tmp_path / "s.csv", header, values), factors=["lr"]),
                aso_iterations=20)
    (m,) = a.metrics
    assert m.spec.ratio and m.spec.to_dict()["ratio"]
    level = next(s for s in m.levels if s.level == "0.1")
    logs = np.log(values[:3])
    ci = stats.ttest_1samp(logs, 0.0).confidence_interval(0.95)
    assert level.description.mean == pytest.approx(stats.gmean(values[:3]))
    assert (level.description.ci_low, level.description.ci_high) == pytest.approx(
        (np.exp(ci.low), np.exp(ci.high)))


def test_a_speedup_column_holding_a_value_below_one_above_zero_stays_a_ratio_but_a_zero_does_not(
    tmp_path: Path,
) -> None:
    """A value of 0 or below is no ratio of times (no geometric mean exists): the table showed the
    arithmetic mean under "geometric mean" and "95 % CI (log scale)". Such a column is summarised as plain
    numbers, and a note says why; 0.5 (a slow-down) is still a ratio."""
    slow = read_results_table(_speedups(tmp_path / "slow.csv", "speedup", [0.5, 2.0, 4.0, 1.1, 1.3, 1.2]),
                              factors=["lr"])
    assert slow.metrics[0].ratio and not any("named as a speed-up" in n for n in slow.notes)
    values = [0.0, 2.0, 4.0, 1.1, 1.3, 1.2]
    res = read_results_table(_speedups(tmp_path / "zero.csv", "speedup", values), factors=["lr"])
    (spec,) = res.metrics
    assert not spec.ratio
    note = ("speedup: named as a speed-up, but it holds 0, which no ratio of times is (a speed-up is "
            "above 0): summarised as plain numbers (mean and t interval), not by a geometric mean")
    assert note in res.notes
    level = next(s for s in analyse(res, aso_iterations=20).metrics[0].levels if s.level == "0.1")
    assert level.description.mean == pytest.approx(2.0) and level.description.ci_method == "t"
    from deltatune.report.document import build_document

    text = repr(build_document(res, analyse(res, aso_iterations=20)))
    assert "'geometric mean'" not in text and "'95 % CI of mean'" in text  # the level table's headers
