"""The anchor trials of a new sampler study: all-0, the bottom of the range, then a bisection on the
uniform threshold for the largest one within the budget (real tiny and default HRNet, real vtest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltatune.search import open_study, resolve_storage, run_search
from tests.search.conftest import settings


def _anchors(study_name: str) -> list[tuple[object, float, float]]:
    """(anchor attribute, accuracy loss, speedup) of the study's finished anchor trials, in order."""
    from optuna.trial import TrialState

    study = open_study(resolve_storage(None, study_name), study_name, create=False)
    return [(t.user_attrs["anchor"], *t.values) for t in study.trials
            if "anchor" in t.user_attrs and t.state == TrialState.COMPLETE]


def _bisection_holds(anchors: list[tuple[object, float, float]], budget: float) -> None:
    """Each position after the first two is the middle of the largest feasible and smallest infeasible
    positions before it (1.0 while none was infeasible)."""
    assert anchors[0][0] == "zero" and anchors[1][0] == 0.0
    lo, hi = None, 1.0
    for pos, loss, _ in anchors[1:]:
        if lo is not None:
            assert pos == pytest.approx((lo + hi) / 2)
        if loss <= budget:
            lo = pos
        else:
            hi = pos


def test_a_new_study_bisects_the_uniform_threshold(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    res = run_search(settings(trials=24, study="ladder", budget=2.0), evaluator=tiny_evaluator, heldout=False)
    anchors = _anchors("ladder")
    assert len(anchors) == 6 and res.n_trials == 24  # min(6, trials // 4); they count towards --trials
    _bisection_holds(anchors, 2.0)
    assert {a[1] <= 2.0 for a in anchors[1:]} == {True, False}  # it found both sides of the budget here
    again = run_search(settings(trials=4, study="ladder", budget=2.0), evaluator=tiny_evaluator,
                       heldout=False)
    assert again.n_trials == 28 and len(_anchors("ladder")) == 6  # a resumed study runs no anchors


def test_a_study_stopped_during_its_anchors_finishes_them_on_the_next_run(  # type: ignore[no-untyped-def]
    results: Path, tiny_evaluator
) -> None:
    """A search killed during its anchor trials resumed with samples only: the bottom-of-range anchor
    (1.82x at 0 points on that workload) never ran, and the study's best was 1.55x. The next run now
    finishes the anchors, reading the ones that finished, and then samples."""
    run_search(settings(trials=1, anchors=1, study="cut", budget=2.0), evaluator=tiny_evaluator,
               heldout=False)
    assert [a[0] for a in _anchors("cut")] == ["zero"]
    res = run_search(settings(trials=6, anchors=4, study="cut", budget=2.0), evaluator=tiny_evaluator,
                     heldout=False)
    anchors = _anchors("cut")
    assert res.n_trials == 7 and len(anchors) == 4 and [a[0] for a in anchors[:2]] == ["zero", 0.0]
    _bisection_holds(anchors, 2.0)
    study = open_study(resolve_storage(None, "cut"), "cut", create=False)
    assert all("anchor" in t.user_attrs for t in study.trials[:4])  # anchors first, then the sampler
    assert not any("anchor" in t.user_attrs for t in study.trials[4:])


@pytest.mark.slow  # ~30 s: the default hrnet on two streams of 16 frames, six trials scored on MACs
def test_the_bisection_finds_a_fast_feasible_setting_where_fixed_anchors_did_not(results: Path) -> None:
    """On vtest frames 320-335, uniform position 0.5 loses just over a point; with only the fixed
    anchors (0, the bottom, 0.5) TPE then stayed at thresholds near 0 (0.87-0.99x measured). The
    bisection gives the search a uniform setting within the budget that skips far more MACs (1.74x
    against 1.13x when written)."""
    from deltatune.search import SearchSettings, StudyWorkload

    w = StudyWorkload("hrnet", frames=16, start=320, streams=2)
    run_search(SearchSettings(workload=w, trials=6, study="seg320", speed="macs", anchors=6), heldout=False)
    anchors = _anchors("seg320")
    _bisection_holds(anchors, 1.0)
    fixed = max(a[2] for a in anchors[:3] if a[1] <= 1.0)  # what the fixed anchors offered
    assert anchors[2][0] == 0.5 and anchors[2][1] > 1.0, anchors  # just over the budget, as described
    best = max(a[2] for a in anchors if a[1] <= 1.0)
    assert best > 1.5 and best > 1.3 * fixed, anchors


def test_a_second_search_waits_for_the_anchor_another_worker_is_running(  # type: ignore[no-untyped-def]
    results: Path, tiny_evaluator, caplog
) -> None:
    """Two searches started on one new study both ran every anchor: the second saw the first's running
    anchor neither finished nor queued, and queued its own copy. Here another worker (a live process of
    this host) holds the all-0 anchor running when the search starts; the search waits for it, and when
    that worker dies the search runs the anchor queued again in its place, not a copy of its own."""
    import logging
    import platform
    import subprocess
    import sys
    import threading
    import time

    from optuna.trial import TrialState

    from deltatune.search.runner import _make_space
    from deltatune.search.storage import quiet_experimental

    quiet_experimental()
    s = settings(trials=3, anchors=2, study="two", budget=2.0)
    space = _make_space(s, tiny_evaluator)
    study = open_study(resolve_storage(None, "two"), "two")
    study.enqueue_trial(space.anchor_params(None), user_attrs={"anchor": "zero"})
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        trial = study.ask()  # the other worker's trial: its parameters drawn, its process recorded
        space.suggest(trial)
        trial.set_user_attr("pid", other.pid)
        trial.set_user_attr("host", platform.node())
        threading.Timer(1.5, lambda: (other.kill(), other.wait())).start()  # dies, and is reaped
        t0 = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="deltatune.search.runner"):
            run_search(s, evaluator=tiny_evaluator, heldout=False)
        waited = time.perf_counter() - t0
    finally:
        other.kill()
        other.wait()
    assert waited > 1.5 and f"waiting for anchor trial {trial.number}" in caplog.text
    study = open_study(resolve_storage(None, "two"), "two", create=False)
    zero = [t for t in study.trials if t.user_attrs.get("anchor") == "zero"]
    assert [t.state for t in zero] == [TrialState.FAIL, TrialState.COMPLETE]  # no third copy
    assert zero[1].system_attrs["failed_trial"] == trial.number  # the dead worker's trial, run again here
    assert zero[1].params == zero[0].params
    assert [t.user_attrs["anchor"] for t in study.trials if "anchor" in t.user_attrs][1:] == ["zero", 0.0]


def test_a_resume_with_fewer_trials_finishes_the_first_runs_bisection(  # type: ignore[no-untyped-def]
    results: Path, tiny_evaluator
) -> None:
    """The anchor count is the first run's (``--trials 24``: 6). A run stopped after two anchors and
    resumed with ``--trials 4`` sized the bisection by the resume (4 // 4 = 1 anchor) and sampled from
    the two it held; it now runs the first run's remaining anchors."""
    def stop_after_two(n: int) -> None:
        if n == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(settings(trials=24, study="short", budget=2.0), evaluator=tiny_evaluator, heldout=False,
                   on_progress=stop_after_two)
    assert len(_anchors("short")) == 2
    res = run_search(settings(trials=3, study="short", budget=2.0), evaluator=tiny_evaluator, heldout=False)
    assert len(_anchors("short")) == 5 and res.new_trials == 3  # no more anchors than this call's trials
    run_search(settings(trials=4, study="short", budget=2.0), evaluator=tiny_evaluator, heldout=False)
    anchors = _anchors("short")
    assert len(anchors) == 6, anchors
    _bisection_holds(anchors, 2.0)


def test_a_second_copy_of_an_anchor_is_pruned_unrun_and_the_bisection_goes_on(  # type: ignore[no-untyped-def]
    results: Path, tiny_evaluator
) -> None:
    """Two searches starting one new study at the same moment can both queue the same anchor (look, then
    queue, is not atomic): one of 8 trials went to a second all-0 anchor. Here the race has happened: the
    all-0 anchor is queued twice, and a live worker of another process runs the first copy; it dies. The
    second copy runs here; the first, queued again after its worker died, is pruned unrun as a duplicate
    instead of running in the place of the next anchor, and the search reports no pruned trial."""
    import platform
    import subprocess
    import sys
    import threading

    from optuna.trial import TrialState

    from deltatune.search.pareto import DUPLICATE_ATTR
    from deltatune.search.runner import _make_space
    from deltatune.search.storage import quiet_experimental

    quiet_experimental()
    s = settings(trials=4, anchors=4, study="race", budget=2.0)
    space = _make_space(s, tiny_evaluator)
    study = open_study(resolve_storage(None, "race"), "race")
    for _ in range(2):  # what both racing searches queued
        study.enqueue_trial(space.anchor_params(None), user_attrs={"anchor": "zero"})
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = study.ask()  # the other search's copy: it pops the older one
        space.suggest(first)
        first.set_user_attr("pid", other.pid)
        first.set_user_attr("host", platform.node())
        threading.Timer(1.0, lambda: (other.kill(), other.wait())).start()
        res = run_search(s, evaluator=tiny_evaluator, heldout=False)
    finally:
        other.kill()
        other.wait()
    study = open_study(resolve_storage(None, "race"), "race", create=False)
    zero = [t for t in study.trials if t.user_attrs.get("anchor") == "zero"]
    assert [t.state for t in zero] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.PRUNED], zero
    assert zero[2].user_attrs[DUPLICATE_ATTR] == zero[1].number  # the retried first copy, pruned unrun
    anchors = _anchors("race")
    assert len(anchors) == 4, anchors
    _bisection_holds(anchors, 2.0)
    assert res.n_trials == 4 and res.pruned == 0
