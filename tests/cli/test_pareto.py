"""``deltatune pareto`` on one study: real searches (tiny HRNet, real vtest frames, journal storages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltatune.cli import main
from deltatune.search import open_study, resolve_storage, run_search
from deltatune.search.study_workload import Segment
from tests.search.conftest import TINY, settings


@pytest.fixture()
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "results"


def _heldout(name: str) -> dict[str, dict[str, float]]:
    """The held-out scores study ``name`` stores, by trial."""
    return dict(open_study(resolve_storage(None, name), name, create=False).user_attrs["heldout"])


def test_heldout_rescores_an_also_on_study_as_its_search_does(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pareto --heldout`` on a study tuned on two segments stores the worst over both segments' held-out
    frames, as ``search`` does for the same trials; it stored the first segment's alone, and a later
    ``search`` resume showed those."""
    also_on = (TINY.on_segment(Segment("vtest", 300)),)
    for name, heldout in (("searched", True), ("unscored", False)):  # a sweep: the same trials in each
        run_search(settings(trials=3, strategy="sweep", budget=100.0, study=name, also_on=also_on),
                   heldout=heldout)
    capsys.readouterr()
    assert main(["pareto", "--study", "unscored", "--heldout", "--json"]) == 0
    shown = {str(r["trial"]): r for r in json.loads(capsys.readouterr().out)["pareto"]}
    searched, rescored = _heldout("searched"), _heldout("unscored")
    assert rescored.keys() == searched.keys() == shown.keys()
    for trial, scores in searched.items():
        assert rescored[trial] == pytest.approx(scores)
        assert shown[trial]["heldout_accuracy_loss"] == pytest.approx(scores["accuracy_loss"])


def test_a_retiming_stopped_part_way_is_said_until_a_resume_finishes_it(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A search interrupted while re-timing its front kept the points it had timed, and ``pareto``
    showed them and recommended the fastest as if the re-timing had finished. It now says how many of the
    planned points were timed, and a ``--finish`` resume times the rest, after which the note is gone."""
    def stop_after_one(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    s = settings(trials=6, study="cut-rt", budget=100.0, retime=3, retime_repeats=2)
    with pytest.raises(KeyboardInterrupt):
        run_search(s, heldout=False, on_retime=stop_after_one)
    capsys.readouterr()
    assert main(["pareto", "--study", "cut-rt"]) == 0
    out = capsys.readouterr().out
    import re

    planned = re.search(r"re-timing on \S+ stopped after 1 of (\d+) front points", out)
    assert planned is not None and int(planned.group(1)) >= 2, out
    assert "--study cut-rt --finish re-times the rest" in out
    assert main(["pareto", "--study", "cut-rt", "--json"]) == 0
    cut = json.loads(capsys.readouterr().out)["retime_unfinished"]
    assert cut["planned"] == int(planned.group(1)) and len(cut["missing"]) == cut["planned"] - 1
    run_search(settings(trials=6, study="cut-rt", budget=100.0, retime=3, retime_repeats=2, finish=True),
               heldout=False)
    capsys.readouterr()
    assert main(["pareto", "--study", "cut-rt"]) == 0
    out = capsys.readouterr().out
    assert "stopped after" not in out and out.count("re-timed by the search") == 1
    assert main(["pareto", "--study", "cut-rt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["retime_unfinished"] is None
