"""A small real ablation end to end through the CLI: ``deltatune ablate`` then ``deltatune report``.

Real engine (the shipped hrnet weights), real decoded vtest frames, real Optuna studies (a sqlite storage),
three seeds; the HTML report is then loaded in headless Chromium.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from deltatune.cli import main
from tests.report.browser import check_page, chromium_or_skip, coloured_pixels

STUDY = """\
[study]
name = "cli-e2e"
kind = "search"
model = "hrnet"
frames = 6
windows = ["96,96,240,320"]
heldout = 2
repeats = 3
speed_repeats = 2
metrics = ["heldout_loss", "heldout_speedup", "measured_speedup"]
primary = { factor = "strategy", baseline = "deltacnn-greedy", metric = "heldout_speedup" }

[fixed]
trials = 3
budget = 2.0

[factors]
strategy = ["random", "sweep", "deltacnn-greedy"]
space = ["global", "group"]

[equivalence]
heldout_loss = 0.5
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("e2e")
    mp = pytest.MonkeyPatch()
    mp.setenv("DELTATUNE_RESULTS", str(d / "results"))
    try:
        study = d / "my studies" / "study.toml"  # a space: the printed report command quotes the path
        study.parent.mkdir()
        study.write_text(STUDY)
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            assert main(["ablate", str(study), "--no-progress", "--heartbeat", "2"]) == 0
        assert f"report: deltatune report '{study}'\n" in said.getvalue(), said.getvalue()
        html, md = d / "out" / "report.html", d / "out" / "report.md"
        assert main(["report", str(study), "-o", str(html), "--md", str(md), "--aso-iterations", "100",
                     "--csv", str(d / "out" / "observations.csv")]) == 0
    finally:
        mp.undo()
    return html, md


@pytest.mark.slow
def test_report_csv_holds_every_observation(report: tuple[Path, Path]) -> None:
    """--csv: one row per run and metric, with the run's seed, unit and factor levels, and the values
    the report's per-level table summarises."""
    import pandas as pd

    from deltatune.report.wording import fmt

    obs = pd.read_csv(report[0].parent / "observations.csv")
    assert list(obs.columns) == ["run", "seed", "unit", "strategy", "space", "metric", "value"]
    assert obs["run"].nunique() == 18 and len(obs) == 18 * 3
    assert set(obs["metric"]) == {"heldout_loss", "heldout_speedup", "measured_speedup"}
    assert sorted(obs["seed"].unique()) == [0, 1, 2] and obs["value"].notna().all()
    speed = obs[obs["metric"] == "heldout_speedup"]
    from scipy import stats

    per_seed = speed.groupby(["strategy", "seed"])["value"].mean()  # a seed's runs in both spaces
    mean = per_seed.groupby(level="strategy").agg(stats.gmean)  # a speed-up is a ratio: geometric mean
    md = report[1].read_text(encoding="utf-8")
    for strategy, value in mean.items():  # the per-level means the Markdown prints, one value per seed
        assert f"| strategy | {strategy} | 3 | {fmt(value)} |" in md, (strategy, value)


@pytest.mark.slow
def test_report_has_every_element(report: tuple[Path, Path]) -> None:
    html = report[0].read_text(encoding="utf-8")
    for needle in (
        "18 of 18",
        "Primary comparison",
        "Friedman",
        "repeated-measures ANOVA",
        "Holm",
        "Hedges",
        "rank-biserial",
        "TOST",
        "Bayesian signed-rank",
        "almost stochastic",
        "80 % power",
        "Shapiro-Wilk",
        "95 % CI",
        "Measured speed",
        "git",
        "torch",
        "How to read",
    ):
        if needle in ("Friedman", "repeated-measures ANOVA"):
            continue  # one of the two, by the data
        assert needle.lower() in html.lower(), needle
    assert "friedman" in html.lower() or "repeated-measures anova" in html.lower()
    alts = re.findall(r'<img[^>]*alt="([^"]*)"', html)
    assert all(src for src in re.findall(r'<img src="(data:image/png;base64,[^"]{100,})"', html))
    kinds = " | ".join(alts).lower()
    for plot in (
        "box",
        "mean per strategy and space",
        "critical-difference",
        "pareto front",
        "measured speed",
    ):
        assert plot in kinds, (plot, alts)
    md = report[1].read_text(encoding="utf-8")
    assert "| comparison |" in md and "Holm" in md
    for row in (  # the Setup table: what every run shared
        "| video | vtest |",
        "| crop windows of the video (streams) | 96,96,240,320 |",
        "| frames | 6 per stream from frame 0 (4 tuning, 2 held out) |",
        "| seeds (repeats) | 0, 1, 2 |",
        "| trials | 3 |",
    ):
        assert row in md, row
    pngs = list((report[1].parent / "report_files").glob("*.png"))
    assert len(pngs) >= 5
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (report[1].parent / link).is_file(), link


def _section(md: str, metric: str) -> list[str]:
    """The lines of the Markdown section of ``metric`` (its heading: ``## label (metric; ...)``)."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## ") and f"({metric};" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


@pytest.mark.slow
def test_the_observations_csv_reports_the_same_statistics_as_the_study(
    report: tuple[Path, Path], tmp_path: Path
) -> None:
    """``report observations.csv``, told what the study file declared (metric order, directions, margin,
    primary comparison), tests what the study's own report tested, to the same numbers."""
    md = tmp_path / "from_csv.md"
    assert main(["report", str(report[0].parent / "observations.csv"), "--metrics",
                 "heldout_loss,heldout_speedup,measured_speedup", "--lower-is-better", "heldout_loss",
                 "--margin", "heldout_loss=0.5", "--baseline", "strategy=deltacnn-greedy", "--md", str(md),
                 "-o", str(tmp_path / "from_csv.html"), "--aso-iterations", "100"]) == 0
    study_md, csv_md = report[1].read_text(encoding="utf-8"), md.read_text(encoding="utf-8")
    assert "pairing: unit" in csv_md and "18 of 18 expected" in csv_md
    for metric in ("heldout_loss", "heldout_speedup"):
        ours, theirs = _section(csv_md, metric), _section(study_md, metric)
        tests = [line for line in theirs if line.startswith("| ") and " vs " in line]  # level vs baseline
        assert tests, theirs
        for line in tests:
            assert line in ours, line
    chromium_or_skip()  # the table's HTML report renders as the study's does
    page = check_page(tmp_path / "from_csv.html", tmp_path, window=(1400, 4000))
    assert page.errors == [], page.errors
    assert page.images is not None and page.images >= 4


@pytest.mark.slow
def test_report_renders_in_chromium(report: tuple[Path, Path], tmp_path: Path) -> None:
    chromium_or_skip()
    result = check_page(report[0], tmp_path, window=(1400, 4000))
    assert result.errors == [], result.errors
    assert result.images is not None and result.images >= 5
    assert coloured_pixels(result.screenshot) >= 5_000


def test_report_bad_inputs_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "r"))
    study = tmp_path / "s.toml"
    study.write_text(STUDY)
    study.with_suffix(".mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # a video given where a .db belongs
    cases = [
        (["report", str(tmp_path / "missing.db")], "no such file"),
        (["report"], "give the results to report: a study file (.toml)"),  # not argparse's usage lines
        # `report --storage URL --study NAME`, as the synopsis reads: the storage is what is read
        (["report", "--storage", f"sqlite:///{tmp_path}/no.db", "--study", "s"], "no such database file"),
        (["report", str(tmp_path)], "a folder, not a file"),
        (["report", str(study.with_suffix(".mp4"))], "not an sqlite database"),
        (["report", str(study)], "no results yet"),
        (["report", str(study), "--alpha", "2"], "--alpha 2.0: must be between 0 and 1"),
        (["report", str(study), "--csv", str(tmp_path / "obs.txt")], "--csv"),
        (["ablate", str(study), "--jobs", "0"], "--jobs 0: need at least 1 worker"),
        (["ablate", str(study), "--storage", str(tmp_path / "x.journal")], "ablate needs an RDB URL"),
        (["ablate", str(tmp_path / "nope.toml")], "no such study file"),
        (["ablate", str(study), "--storage", f"sqlite:///{tmp_path}"], "is a folder"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, (argv, err)


@pytest.mark.slow  # ~10 s: two real one-trial searches
def test_runs_that_recorded_no_value_are_pointed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches of one trial with a budget no first trial meets finish without a setting, so every value is
    missing: ablate says so with what to change, and the report counts the runs as completed, their
    values as missing (it said "Completed runs: 0 of 2")."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    study = tmp_path / "empty.toml"
    study.write_text(STUDY.replace('name = "cli-e2e"', 'name = "empty"').replace("repeats = 3", "repeats = 2")
                     .replace('metrics = ["heldout_loss", "heldout_speedup", "measured_speedup"]',
                              'metrics = ["heldout_loss"]')
                     .replace('primary = { factor = "strategy", baseline = "deltacnn-greedy", '
                              'metric = "heldout_speedup" }\n', "")
                     .replace("trials = 3\nbudget = 2.0", "trials = 1\nbudget = 0.0001")
                     .replace('["random", "sweep", "deltacnn-greedy"]\nspace = ["global", "group"]',
                              '["random"]')
                     .replace("[equivalence]\nheldout_loss = 0.5\n", ""))
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        assert main(["ablate", str(study), "--no-progress"]) == 0
    assert ("note: 2 of 2 finished runs recorded no value at all (a search that found no setting within its "
            "budget in its trials: more trials or a larger budget)") in said.getvalue(), said.getvalue()
    md = tmp_path / "r.md"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", str(study), "--md", str(md), "-o", str(tmp_path / "r.html"),
                     "--aso-iterations", "20"]) == 0
    text = md.read_text(encoding="utf-8")
    assert "Completed runs: 2 of 2 expected." in text and "No value in 2 of 2 observations" in text


@pytest.mark.slow  # ~10 s: two real one-trial searches
def test_a_study_files_report_reads_the_file_and_refuses_one_that_no_longer_fits_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report STUDY.toml`` showed the stored design whatever the file said now: a changed margin or
    metric list was ignored, and a file with a seed taken away still reported it, all under the file's
    name. The file's report settings now apply, added seeds count as expected runs, and a file whose runs
    are not the stored ones is refused in one line that says how to report those."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    base = (STUDY.replace('name = "cli-e2e"', 'name = "drift"').replace("\nrepeats = 3", "\nrepeats = 2")
            .replace('metrics = ["heldout_loss", "heldout_speedup", "measured_speedup"]',
                     'metrics = ["heldout_loss"]')
            .replace('primary = { factor = "strategy", baseline = "deltacnn-greedy", '
                     'metric = "heldout_speedup" }\n', "")
            .replace("trials = 3\nbudget = 2.0", "trials = 1\nbudget = 0.0001")
            .replace('["random", "sweep", "deltacnn-greedy"]\nspace = ["global", "group"]', '["random"]'))
    study = tmp_path / "drift.toml"
    study.write_text(base)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["ablate", str(study), "--no-progress"]) == 0
    md = tmp_path / "r.md"

    def report() -> int:
        with contextlib.redirect_stdout(io.StringIO()):
            return main(["report", str(study), "--md", str(md), "-o", str(tmp_path / "r.html"),
                         "--aso-iterations", "20"])

    study.write_text(base.replace("heldout_loss = 0.5", "heldout_loss = 0.25")
                     .replace('metrics = ["heldout_loss"]', 'metrics = ["heldout_loss", "tune_loss"]'))
    assert report() == 0
    text = md.read_text(encoding="utf-8")
    assert "equivalence margin ±0.25" in text and "±0.5" not in text and "(tune_loss;" in text
    study.write_text(base.replace("\nrepeats = 2", "\nrepeats = 3"))
    assert report() == 0
    assert "Completed runs: 2 of 3 expected (1 missing)" in md.read_text(encoding="utf-8")
    capsys.readouterr()
    study.write_text(base.replace("\nrepeats = 2", "\nrepeats = 1"))
    assert report() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its design is not the one its runs in " in err[0], err
    assert "1 of its runs taken away" in err[0] and "report the runs as they were made with `deltatune " \
        "report " in err[0], err


@pytest.mark.slow  # ~5 s: two one-trial searches on a tiny model
def test_runs_on_random_weights_are_said_so_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model with no default weights runs seeded random ones (ablate warns on stderr); the report said
    "weights: default" and nothing more, so its numbers read as a trained model's."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    study = tmp_path / "rand.toml"
    study.write_text(STUDY.replace('name = "cli-e2e"', 'name = "rand"').replace('model = "hrnet"',
                                                                                'model = "hrnet_tiny"')
                     .replace("\nrepeats = 3", "\nrepeats = 2")
                     .replace('metrics = ["heldout_loss", "heldout_speedup", "measured_speedup"]',
                              'metrics = ["heldout_speedup"]')
                     .replace('primary = { factor = "strategy", baseline = "deltacnn-greedy", '
                              'metric = "heldout_speedup" }\n', "")
                     .replace("trials = 3\nbudget = 2.0", "trials = 1\nbudget = 100.0")
                     .replace('["random", "sweep", "deltacnn-greedy"]\nspace = ["global", "group"]',
                              '["random"]')
                     .replace("[equivalence]\nheldout_loss = 0.5\n", ""))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["ablate", str(study), "--no-progress"]) == 0
        md = tmp_path / "r.md"
        assert main(["report", str(study), "--md", str(md), "-o", str(tmp_path / "r.html"),
                     "--aso-iterations", "20"]) == 0
    text = md.read_text(encoding="utf-8")
    assert "| weights | default (none here: 2 of 2 runs ran seeded random weights) |" in text
    assert ("2 of 2 runs ran seeded random weights (hrnet_tiny has no default weights here): their losses "
            "and settings describe no trained model") in text


@pytest.mark.slow  # the session's small real study (about 30 s, once) and four reports of it
def test_report_of_a_database_without_o_writes_beside_it(
    numeric_levels_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``report ~/runs/x.db`` wrote ./deltatune-results/x.html in whatever folder it ran from. The report
    now goes beside the database, named after it (with the study's name where the file is named
    otherwise), and the command prints where; it replaces a report of ours there, never a folder or a
    file of the user's, and -o works as before."""
    import shutil

    runs, elsewhere = tmp_path / "my runs", tmp_path / "elsewhere"
    runs.mkdir()
    elsewhere.mkdir()
    db, copy = runs / "keyframes-small.db", runs / "old.db"
    shutil.copyfile(numeric_levels_db, db)
    shutil.copyfile(numeric_levels_db, copy)
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("DELTATUNE_RESULTS", raising=False)
    fast = ["--aso-iterations", "20"]

    def report(*argv: str) -> tuple[int, str, str]:
        rc = main(["report", *argv, *fast])
        said = capsys.readouterr()
        return rc, said.out, said.err.strip()

    html = runs / "keyframes-small.html"
    assert report(str(db)) == (0, f"keyframes-small: 9 of 9 runs; report {html}\n", "")
    page = html.read_text(encoding="utf-8")
    assert "<title>Ablation study: keyframes-small</title>" in page
    assert report(str(copy))[1].endswith(f"; report {runs / 'old-keyframes-small.html'}\n")
    assert report(f"sqlite:///{db}")[1].endswith(f"; report {html}\n")  # the same file, replaced
    assert sorted(p.name for p in runs.iterdir()) == ["keyframes-small.db", "keyframes-small.html",
                                                     "old-keyframes-small.html", "old.db"]
    assert not list(elsewhere.iterdir())
    html.write_text("<!DOCTYPE html>\n<html><head><title>Ablation study: keyframes-small</title>")
    assert report(str(db))[0] == 0  # a report written before the generator tag is one of ours too
    for mine, why in (("notes", "exists and is not a deltatune report"), (None, "is a folder")):
        html.unlink()
        if mine is None:
            html.mkdir()
        else:
            html.write_text(mine)
        rc, out, err = report(str(db))
        assert (rc, out) == (2, "") and err.endswith(
            f"{html} (the report's default path, beside its runs): {why}; name the report with -o FILE"), err
        assert html.is_dir() if mine is None else html.read_text() == mine
    html.rmdir()
    assert report(str(db), "-o", str(runs))[2].endswith(f"-o {runs}: is a folder; give a file name")
    assert report(str(db), "-o", "here.html")[1].endswith("; report here.html\n")
    assert (elsewhere / "here.html").is_file() and not html.exists()


def test_ablate_says_a_random_start_warning_once(tmp_path: Path) -> None:
    """A tpe whose trials are all random startup draws: ``ablate`` says so before its runs, and each run's
    search said it again as a logged warning (twice in a two-run study, three times in all). Run as a
    process: pytest's log capture would keep the logged copies off stderr."""
    import os
    import subprocess
    import sys

    study = tmp_path / "once.toml"
    study.write_text('[study]\nname = "once"\nkind = "search"\nmodel = "hrnet_tiny"\nweights = "none"\n'
                     'frames = 6\nstreams = 1\nrepeats = 2\nspeed_repeats = 0\n[fixed]\ntrials = 2\n'
                     'strategy = "tpe"\n')
    env = {**os.environ, "DELTATUNE_RESULTS": str(tmp_path / "r"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "deltatune", "ablate", str(study), "--no-progress"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("strategy tpe with 2 trial(s)") == 1, run.stderr
