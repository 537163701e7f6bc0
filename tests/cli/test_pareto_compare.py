"""``deltatune pareto --study A --study B``: real searches (tiny HRNet, real vtest) side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deltatune.cli import main
from deltatune.search import hypervolume

TINY = ["--model", "hrnet_tiny", "--weights", "none", "--frames", "6", "--streams", "1", "--thr-range",
        "0.0001", "0.05", "--no-progress", "--retime", "1", "--retime-repeats", "2"]


@pytest.fixture()
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "results"


@pytest.mark.slow  # ~15 s: three real searches
def test_two_studies_side_by_side(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, strategy, trials, budget in (("a", "random", "5", "10"), ("b", "tpe", "4", "5")):
        assert main(["search", *TINY, "--trials", trials, "--study", name, "--strategy", strategy,
                     "--budget", budget]) == 0
    capsys.readouterr()
    both = ["--study", "a", "--study", "b"]
    assert main(["pareto", *both, "--json", "--csv", "all.csv", "--plot", "f.png"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reference_loss"] == 5.0 and [r["study"] for r in out["studies"]] == ["a", "b"]
    assert any("differs from a in budget" in n for n in out["notes"])
    for row in out["studies"]:
        # each study's own front, taken up to the common reference point (the smaller budget)
        main(["pareto", "--study", row["study"], "--json"])
        alone = json.loads(capsys.readouterr().out)
        front = pd.DataFrame(alone["pareto"])
        assert row["front"] == len(front) and row["trials"] == alone["n_trials"]
        assert row["hypervolume"] == pytest.approx(hypervolume(front, ref_loss=5.0))
        within = front[front["accuracy_loss"] <= 5.0]
        if within.empty:
            assert row["best_trial"] is None
        else:
            assert row["best_speedup"] == pytest.approx(within["speedup"].max())
        rec = alone["recommended"]
        assert row["measured"] == (None if rec is None else pytest.approx(rec["measured"]))
    table = pd.read_csv("all.csv")
    assert list(table.columns[:2]) == ["study", "trial"]
    assert table["study"].value_counts().to_dict() == {"a": 5, "b": 4}
    # what each trial ran, as in one study's CSV: the settings columns, the thresholds export writes
    for name in ("a", "b"):
        main(["pareto", "--study", name, "--csv", f"{name}.csv"])
        alone = pd.read_csv(f"{name}.csv")
        rows = table[table["study"] == name].drop(columns="study").reset_index(drop=True)
        assert {"mode", "input_dilation"} < set(alone.columns)
        assert any(c.startswith("threshold.") for c in alone.columns)
        pd.testing.assert_frame_equal(rows[alone.columns], alone, check_dtype=False)
    capsys.readouterr()
    assert Path("f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(["pareto", "--study", "a", "--study", "b"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 studies side by side") and "\na " in text and "\nb " in text

    # a study priced by MAC counts has no axes in common with these (priced by the latency model)
    assert main(["search", *TINY, "--trials", "2", "--study", "m", "--speed", "macs", "--budget", "5"]) == 0
    capsys.readouterr()
    assert main(["pareto", "--study", "b", "--study", "m", "--plot", "g.png"]) == 2
    err = capsys.readouterr().err
    assert "their speedups are of different kinds (b: predicted wall-clock speedup; m: MAC speedup)" in err
    assert len(err.strip().splitlines()) == 1 and not Path("g.png").exists()


def test_a_missing_study_among_several_is_named_before_any_work(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pareto", "--study", "nope1", "--study", "nope2", "--plot", "f.png"]) == 2
    err = capsys.readouterr().err
    assert "--study nope1: no journal at" in err and not Path("f.png").exists()
