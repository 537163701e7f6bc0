"""Searches end to end: feasible trials and a front, resuming, two worker processes, held-out check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deltatune.delta import ThresholdFile
from deltatune.delta.fingerprint import weights_fingerprint
from deltatune.errors import ConfigError
from deltatune.search import Ranges, open_study, resolve_storage, run_search
from deltatune.search.pareto import WEIGHTS_ATTR, study_meta
from deltatune.search.runner import REPEAT_ATTR
from deltatune.search.study_workload import StudyWorkload

from .conftest import TINY, settings


def test_search_gives_feasible_trials_a_front_and_a_heldout_score(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    res = run_search(settings(trials=6, study="front"), evaluator=tiny_evaluator)
    assert res.n_trials == 6 and res.new_trials == 6
    assert res.trials["feasible"].any()
    assert not res.front.empty and res.front["feasible"].all()
    assert res.best_feasible is not None
    assert res.best_feasible["speedup"] == pytest.approx(res.front["speedup"].max())
    assert res.front["heldout_accuracy_loss"].notna().all() and res.front["heldout_speedup"].notna().all()
    assert res.hypervolume >= 0.0
    assert (results / "front.journal").is_file() and res.storage.endswith("front.journal")
    d = res.to_dict()
    assert {"study", "storage", "n_trials", "pareto", "best_feasible"} <= set(d)
    assert set(d["pareto"][0]) >= {"trial", "accuracy_loss", "speedup", "feasible"}
    assert any("random weights" in n for n in res.notices)


def test_rerunning_the_same_study_resumes_its_numbering(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    run_search(settings(trials=3, study="resume"), evaluator=tiny_evaluator, heldout=False)
    res = run_search(settings(trials=2, study="resume"), evaluator=tiny_evaluator, heldout=False)
    assert res.n_trials == 5 and res.new_trials == 2
    study = open_study(resolve_storage(None, "resume"), "resume", create=False)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    seeds = [t.user_attrs["seed"] for t in study.trials]
    assert seeds[0] != seeds[3]  # a resumed run draws with a new seed, never replays the first run


def test_a_large_seed_runs(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    """The samplers seed numpy, which takes seeds below 2**32: the worker seeds derived from --seed 123456
    overflowed it (a traceback)."""
    big = settings(trials=2, study="bigseed", seed=123456)
    res = run_search(big, evaluator=tiny_evaluator, heldout=False)
    assert res.new_trials == 2
    study = open_study(resolve_storage(None, "bigseed"), "bigseed", create=False)
    assert all(0 <= t.user_attrs["seed"] < 2**32 for t in study.trials)


def test_resuming_with_another_workload_or_budget_is_refused(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    run_search(settings(trials=1, study="mix"), evaluator=tiny_evaluator, heldout=False)
    # one pair of parentheses: "different budget (1.0 (now 2.0))" read as a typo
    with pytest.raises(ConfigError, match=r"different budget: 10.0 \(now 2.0\); use a new --study name"):
        run_search(settings(trials=1, study="mix", budget=2.0), evaluator=tiny_evaluator, heldout=False)
    random = replace(TINY, weights="default")
    with pytest.raises(ConfigError, match=r"weights 'none' \(random weights\) \(now 'default'\)"):
        run_search(settings(trials=1, study="mix", workload=random), heldout=False)
    other = StudyWorkload("hrnet_tiny", weights=None, frames=8, streams=1)
    with pytest.raises(ConfigError, match=r"different workload: frames \d+ \(now 8\)"):
        run_search(settings(trials=1, study="mix", workload=other), heldout=False)
    # refused before the network is built: weights that do not exist are not even opened
    missing = replace(TINY, weights=str(results / "missing.pt"))
    with pytest.raises(ConfigError, match="different workload: weights"):
        run_search(settings(trials=1, study="mix", workload=missing), heldout=False)


def test_resuming_with_another_speed_or_search_space_is_refused(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    """Trials priced by MAC counts and by the latency model, or drawn from other ranges or another space,
    went into one study and one front without a word (and the study's recorded speed stayed the first).
    Another strategy or seed on a resume is fine: they choose points, not what a point is."""
    run_search(settings(trials=1, study="kinds"), evaluator=tiny_evaluator, heldout=False)
    with pytest.raises(ConfigError, match=r"different speed objective \(--speed\): 'macs' \(now 'latency'\)"):
        run_search(settings(trials=1, study="kinds", speed="latency"), heldout=False)
    for change, said in [
        ({"space": "layer"}, "space 'group' (now 'layer')"),
        ({"modes": ("max", "norm")}, "modes ['max'] (now ['max', 'norm'])"),
        ({"ranges": Ranges(lo=0.01, hi=0.5, input_lo=1e-3, input_hi=0.05)},
         "thr_range [0.0001, 0.05] (now [0.01, 0.5])"),
        ({"tune_dilation": False}, "dilation True (now False)"),
        ({"keyframes": (0, 4)}, "keyframes [0] (now [0, 4])"),
    ]:
        with pytest.raises(ConfigError, match="different search space") as info:
            run_search(settings(trials=1, study="kinds", **change), heldout=False)
        assert said in str(info.value), str(info.value)
    res = run_search(settings(trials=1, study="kinds", strategy="random", seed=5), evaluator=tiny_evaluator,
                     heldout=False)
    assert res.n_trials == 2


@pytest.mark.slow  # ~10 s: a latency fit of the tiny model
def test_resuming_at_another_thread_count_is_refused_for_a_timed_speed(results: Path) -> None:
    """A study priced by the latency model at 2 threads took trials priced at 1 (OMP_NUM_THREADS=1, as the
    README advises on a busy machine) without a word: the same setting is 1.39x at one count and 0.98x
    at the other. MAC counts do not depend on threads."""
    run_search(settings(trials=1, study="thr", speed="latency", price_threads=2), heldout=False)
    with pytest.raises(ConfigError, match=r"its trials were priced at 2 torch thread\(s\), this run would "
                                          r"price at 1: "):
        run_search(settings(trials=1, study="thr", speed="latency", price_threads=1), heldout=False)
    res = run_search(settings(trials=1, study="thr", speed="latency", price_threads=2), heldout=False)
    assert res.n_trials == 2
    run_search(settings(trials=1, study="m", price_threads=2), heldout=False)  # macs: any count
    assert run_search(settings(trials=1, study="m", price_threads=1), heldout=False).n_trials == 2


def test_resuming_after_the_weights_file_changed_is_refused(  # type: ignore[no-untyped-def]
    results: Path, tmp_path: Path, tiny_evaluator
) -> None:
    path = tmp_path / "w.pt"
    torch.save(tiny_evaluator.model.state_dict(), path)
    wl = replace(TINY, weights=str(path))
    run_search(settings(trials=1, study="wfile", workload=wl), heldout=False)
    study = open_study(resolve_storage(None, "wfile"), "wfile", create=False)
    assert study_meta(study)[WEIGHTS_ATTR] == weights_fingerprint(tiny_evaluator.model)
    state = torch.load(path, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 0.01  # same path, other contents (re-distilled, re-trained)
    torch.save(state, path)
    with pytest.raises(ConfigError, match="other weights"):
        run_search(settings(trials=1, study="wfile", workload=wl), heldout=False)


def test_the_evaluator_scores_a_setting_once_per_weights_split_and_accumulation(tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    cfg = ThresholdFile(dict.fromkeys(tiny_evaluator.threshold_names, 0.0137))
    first = tiny_evaluator.evaluate(cfg)
    again = tiny_evaluator.evaluate(ThresholdFile(dict(cfg.thresholds)))
    assert not first.repeated and again.repeated
    assert (again.accuracy_loss, again.speedup, again.pck) == (first.accuracy_loss, first.speedup, first.pck)
    assert not tiny_evaluator.evaluate(cfg, split="heldout").repeated
    assert not tiny_evaluator.evaluate(replace(cfg, keyframe_interval=2)).repeated
    tiny_evaluator.net.accumulate = not tiny_evaluator.net.accumulate
    try:
        other = tiny_evaluator.evaluate(cfg)  # residuals dropped or kept: another network, scored afresh
    finally:
        tiny_evaluator.net.accumulate = not tiny_evaluator.net.accumulate
    assert not other.repeated


def test_a_trial_that_repeats_a_scored_setting_is_marked_and_counted(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    run_search(settings(trials=3, study="again", anchors=0), evaluator=tiny_evaluator, heldout=False)
    study = open_study(resolve_storage(None, "again"), "again", create=False)
    first = study.trials[0]
    study.enqueue_trial(first.params)  # the sampler proposing trial 0's setting again
    res = run_search(settings(trials=1, study="again", anchors=0), evaluator=tiny_evaluator, heldout=False)
    study = open_study(resolve_storage(None, "again"), "again", create=False)
    last = study.trials[-1]
    assert last.user_attrs["thresholds"] == first.user_attrs["thresholds"]
    assert last.user_attrs.get(REPEAT_ATTR) is True and last.values == first.values
    assert any(n.startswith("1 of 1 trials proposed a setting") for n in res.notices)


@pytest.mark.slow
def test_two_worker_processes_share_one_journal(results: Path) -> None:
    res = run_search(settings(trials=6, study="par", jobs=2, strategy="random"), heldout=False)
    study = open_study(resolve_storage(None, "par"), "par", create=False)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(6)) and res.n_trials == 6
    assert {t.user_attrs["worker"] for t in study.trials} == {0, 1}
    assert len({t.user_attrs["seed"] for t in study.trials}) == 2
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 6  # no duplicated draws across workers


@pytest.mark.slow  # ~20 s: fits the latency model once (timed runs), then two worker processes
def test_workers_price_latency_at_the_commands_thread_count(
    results: Path, vtest_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--jobs 2`` workers run one thread each; the command (which re-times the front) and the user run
    more. Each worker fitted and priced with a one-thread latency model (two timed fits at once), so its
    trials' speedups were not the ones the command predicts; they are now, read from the command's fit."""
    import shutil

    import torch

    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.search.objective import Evaluator
    from tests.search.conftest import TINY

    data = tmp_path / "data"  # a private data dir: its latency cache starts empty
    data.mkdir()
    shutil.copy2(vtest_path, data / vtest_path.name)
    monkeypatch.setenv("DELTATUNE_DATA", str(data))
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        s = settings(trials=4, study="lat-par", jobs=2, strategy="random", speed="latency")
        run_search(s, heldout=False)
        fits = sorted((data / "latency").glob("hrnet_tiny-*.json"))
        assert len(fits) == 1  # the command's; no worker fitted a model of its own
        torch.set_num_threads(1)  # a one-thread process pricing at two threads gives the same numbers
        ev = Evaluator(TINY, speed="latency", price_threads=2)
        assert torch.get_num_threads() == 1 and ev.latency_cache_path() == fits[0]
        study = open_study(resolve_storage(None, "lat-par"), "lat-par", create=False)
        assert {t.user_attrs["worker"] for t in study.trials} == {0, 1}
        for t in study.trials:
            again = ev.evaluate(ThresholdFile.from_attrs(t.user_attrs), split="tune").speedup
            assert again == pytest.approx(t.values[1], rel=1e-9), t.number
        # the fit records the clip it was made on, and a poor prediction names it and how to refit
        from deltatune.search.runner import _prediction_notice

        assert ev.latency_fitted_on() == f"vtest frames 0..{TINY.tune_frames - 1}"
        off = {"measured_speedup": 2.0, "predicted_speedup": 3.7}
        note = _prediction_notice(off, "latency", ev)
        assert note is not None and f"(fitted on vtest frames 0..{TINY.tune_frames - 1})" in note
        assert "predicted 3.70x" in note and "measured 2.00x (+85%)" in note
        assert "search again with --refit" in note
        assert "To refit it (on this clip, at another moment)" in note  # the fit was made on this clip
        assert _prediction_notice({**off, "predicted_speedup": 2.2}, "latency", ev) is None  # within 15 %
        assert _prediction_notice(off, "macs", ev) is None and _prediction_notice(None, "latency", ev) is None
    finally:
        torch.set_num_threads(old)


@pytest.mark.slow  # two worker processes time two trials
def test_measured_speed_with_several_workers_says_its_timings_are_contended(results: Path) -> None:
    res = run_search(settings(trials=2, study="meas-par", jobs=2, strategy="random", speed="measured"),
                     heldout=False)
    assert res.n_trials == 2 and (res.trials["speedup"] > 0).all()
    assert any(n.startswith("--speed measured with --jobs 2: the workers time") for n in res.notices)
    one = run_search(settings(trials=1, study="meas-one", speed="measured"), heldout=False)
    assert not any("--jobs" in n for n in one.notices)


@pytest.mark.slow  # ~6 s: fits the latency model (timed runs)
def test_latency_speed_uses_the_fitted_latency_model(results: Path) -> None:
    from deltatune.search.objective import Evaluator
    from tests.search.conftest import TINY

    ev = Evaluator(TINY, speed="latency", use_disk_cache=False)  # fits on this machine, now
    assert ev.latency is not None and ev.latency.dense_ms > 0
    import inspect

    from deltatune.delta.latency import fit_latency

    n_configs = inspect.signature(fit_latency).parameters["configs"].default  # one residual per config
    assert len(ev.latency.fit_errors) == n_configs and all(e == e for e in ev.latency.fit_errors)
    res = run_search(settings(trials=2, study="lat", speed="latency"), evaluator=ev, heldout=False)
    assert res.speed == "latency"
    assert all("--speed" not in n for n in res.notices)
    assert (res.trials["speedup"] > 0).all()
    with pytest.raises(ConfigError, match="evaluator"):
        run_search(settings(trials=1, study="lat2", speed="macs"), evaluator=ev, heldout=False)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"budget": -0.5}, "--budget -0.5: must be a finite number >= 0"),
        ({"budget": float("nan")}, "--budget nan: must be a finite number >= 0"),
        ({"budget": float("inf")}, "--budget inf: must be a finite number >= 0"),
        ({"heartbeat": float("inf")}, "--heartbeat inf: must be a finite number of seconds > 0"),
        ({"timeout": float("nan")}, "--timeout nan: must be a finite number of seconds > 0"),
        ({"timeout": float("inf")}, "--timeout inf: must be a finite number of seconds > 0"),
        ({"seed": -1}, "--seed -1: must be >= 0"),
        ({"trials": 0}, "--trials 0"),
        ({"jobs": 0}, "--jobs 0"),
        ({"speed": "joules"}, "--speed 'joules' is unknown"),
        ({"space": "blocks"}, "--space 'blocks' is unknown"),
        ({"modes": ("max", "l1")}, "--modes"),
    ],
)
def test_bad_settings_are_config_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        settings(**kw)


def test_bad_storage_urls_are_config_errors(results: Path) -> None:
    from deltatune.search.storage import resolve_storage as rs

    with pytest.raises(ConfigError, match="unknown scheme 'redis'"):
        rs("redis://localhost/0", "s")
    with pytest.raises(ConfigError, match="not a storage URL"):
        rs("results.txt", "s")
    # the postgres extra's driver is installed (make test), so a plain postgresql:// URL with no server
    # behind it fails to connect, not with "database driver missing" (SQLAlchemy 2.1's default driver for
    # that scheme is psycopg 3, which the extra does not bring)
    for scheme in ("postgresql", "postgres"):
        with pytest.raises(ConfigError, match=f"--storage {scheme}://nobody@127.0.0.1:1/none: cannot open"):
            rs(f"{scheme}://nobody@127.0.0.1:1/none", "s").open()
    with pytest.raises(ConfigError, match="cannot open"):
        rs(f"sqlite:///{results}/no/such/dir/x.db", "s").open()
    with pytest.raises(ConfigError, match="plain name"):
        rs(None, "../escape")
    assert rs("sqlite:///x.db", "s").kind == "rdb"
    assert rs(None, "s").url == str(results / "s.journal")


def test_engine_url_names_the_installed_postgres_driver() -> None:
    import importlib.util

    from deltatune.search.storage import engine_url

    installed = next(d for d in ("psycopg2", "psycopg") if importlib.util.find_spec(d) is not None)
    assert engine_url("postgresql://u@h/db?x=1") == f"postgresql+{installed}://u@h/db?x=1"
    assert engine_url("postgres://u@h/db") == f"postgresql+{installed}://u@h/db"
    for kept in ("postgresql+psycopg2://u@h/db", "sqlite:///x.db", "mysql+pymysql://u@h/db"):
        assert engine_url(kept) == kept


def test_shown_url_hides_only_the_password() -> None:
    from deltatune.search.storage import shown_url

    assert shown_url("postgresql://u:pw@h:5432/db?sslmode=require") == "postgresql://u:***@h:5432/db?sslmode=require"
    assert shown_url("mysql+pymysql://a:p@ss@h/d") == "mysql+pymysql://a:***@h/d"  # an @ in the password
    assert shown_url("postgresql://:pw@/db?host=/tmp/s") == "postgresql://:***@/db?host=/tmp/s"
    for kept in ("postgresql://u@h/db", "sqlite:///x.db", "sqlite:////tmp/a:b@c.db", "r/s.journal"):
        assert shown_url(kept) == kept


def test_unknown_model_is_a_clear_error() -> None:
    from deltatune.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="unknown model 'hrnet_w99'"):
        run_search(settings(workload=StudyWorkload("hrnet_w99", weights=None)))


def test_workload_split_and_validation() -> None:
    assert (TINY.tune_frames, TINY.heldout_frames) == (4, 2)
    assert StudyWorkload("hrnet_tiny", frames=16).heldout_frames == 4
    with pytest.raises(ConfigError, match="--frames 3"):
        StudyWorkload("hrnet_tiny", frames=3)
    assert StudyWorkload.from_dict(TINY.to_dict()) == TINY


def test_latency_model_cache_is_per_input_shape() -> None:
    """A latency model fitted on two streams is not reused for one (batch changes per-call overheads and
    the dense time); the same workload finds the same cache file."""
    from dataclasses import replace

    from deltatune.search.objective import Evaluator

    ev = Evaluator(TINY, use_disk_cache=False)
    one = ev.latency_cache_path()
    again = Evaluator(TINY, use_disk_cache=False).latency_cache_path()
    two = Evaluator(replace(TINY, streams=2), use_disk_cache=False).latency_cache_path()
    assert one == again and one != two
    assert one.parent.name == "latency" and one.name.startswith("hrnet_tiny-")
    # one file per clip; the same key's fits of other clips share the name up to the clip digest
    other = ev.latency_cache_path("other.mp4 frames 0..3")
    assert other != one and other.name.rsplit("-", 1)[0] == one.name.rsplit("-", 1)[0]
    assert two.name.rsplit("-", 1)[0] != one.name.rsplit("-", 1)[0]


@pytest.mark.slow  # ~15 s: fits the latency model twice (timed runs)
def test_a_latency_fit_that_prices_no_work_is_never_cached_or_reused(
    still_clip: Path, vtest_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a still clip no fitting configuration does conv work, so the fit prices every setting alike.
    Cached, it made a later search at the same input shape (another video) see one speedup (23.7x) for
    every trial. It is not cached now, and a cache holding such a fit (written before) is refitted."""
    import json
    import shutil
    from dataclasses import replace

    from deltatune.search.objective import Evaluator
    from tests.search.conftest import TINY

    data = tmp_path / "data"  # a private data dir: the cache goes there, vtest is copied in
    data.mkdir()
    shutil.copy2(vtest_path, data / vtest_path.name)
    monkeypatch.setenv("DELTATUNE_DATA", str(data))
    still = Evaluator(replace(TINY, video=str(still_clip)), speed="latency")
    assert still.latency is not None and not still.latency.prices_work
    path = still.latency_cache_path()
    assert not path.exists()
    # a cache file from before, holding that fit, at the key a vtest search of the same shape uses: on
    # vtest, it is neither this clip's fit nor usable as another clip's
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": still._latency_key(), **still.latency.to_dict()}))
    moving = Evaluator(TINY, speed="latency")
    assert moving._shape_fits() == [path]
    assert moving.latency is not None and moving.latency.prices_work  # fitted on vtest, not read
    own = json.loads(moving.latency_cache_path().read_text())
    assert own["coef"] == list(moving.latency.model.coef) and own["fitted_on"] == moving.clip_label()
    # and at vtest's own file (written before this check existed), it is refitted too
    moving.latency_cache_path().write_text(path.read_text())
    again = Evaluator(TINY, speed="latency")
    assert again.latency.prices_work and json.loads(again.latency_cache_path().read_text())["coef"] == list(
        again.latency.model.coef)


@pytest.mark.slow  # ~25 s: fits the latency model three times and checks one fit (timed runs)
def test_a_latency_fit_from_another_clip_is_checked_here_and_refitted_when_off(
    vtest_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fits are cached per clip. A search on a clip without a fit of its own uses the newest fit of the
    same input shape made on another clip only after checking it here: made on a clip unlike this one,
    a fit can be far off (2.83x predicted, 1.74x measured), and one off by more than
    PREDICTION_TOLERANCE is refitted on this clip and cached for it. A clip's own fit is used as it is,
    unless ``--refit`` (``refit_latency``) asks for a new one."""
    import json
    import shutil

    from deltatune.delta.latency import PREDICTION_TOLERANCE, FittedLatency, check_latency
    from deltatune.search.objective import Evaluator
    from tests.search.conftest import TINY

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy2(vtest_path, data / vtest_path.name)
    monkeypatch.setenv("DELTATUNE_DATA", str(data))
    first = Evaluator(TINY, speed="latency")  # fits here, cached for this clip
    own = first.latency_cache_path()
    cached = json.loads(own.read_text())
    assert cached["fitted_on"] == first.clip_label() and first.latency_file() == own
    # five times every coefficient: every predicted delta time 5x too long, every speedup 5x too small
    wild = {**cached, "coef": [5.0 * c for c in cached["coef"]]}
    errors = check_latency(FittedLatency.from_dict(wild), first.net, list(first.frames["tune"]))
    assert len(errors) == 3 and min(errors) > PREDICTION_TOLERANCE
    own.write_text(json.dumps(wild))  # this clip's own: trusted as it is, however wrong
    assert Evaluator(TINY, speed="latency").latency.model.coef == tuple(wild["coef"])
    # --refit: fitted again here, whatever is cached, and the new fit replaces the cached one
    refitted = Evaluator(TINY, speed="latency", refit_latency=True)
    assert refitted.latency.model.coef != tuple(wild["coef"]) and refitted.latency_file() == own
    assert json.loads(own.read_text())["coef"] == list(refitted.latency.model.coef)
    own.write_text(json.dumps(wild))
    # made on another clip (and this clip has none of its own): checked here, off, refitted here
    elsewhere = first.latency_cache_path("other.mp4 frames 0..3")
    elsewhere.write_text(json.dumps({**wild, "fitted_on": "other.mp4 frames 0..3"}))
    own.unlink()
    again = Evaluator(TINY, speed="latency")
    assert again.latency.model.coef != tuple(wild["coef"]) and again.latency_file() == own
    refit = json.loads(own.read_text())
    assert refit["fitted_on"] == first.clip_label() and refit["coef"] == list(again.latency.model.coef)
    assert json.loads(elsewhere.read_text())["coef"] == wild["coef"]  # the other clip's fit is its own
    # a fit of another clip that passes the check here is kept as this clip's own, so that the next
    # evaluator of this clip (a --jobs worker) reads it without timing the check beside another worker
    own.unlink()
    assert again._adopt_fit(elsewhere) == own
    adopted = json.loads(own.read_text())
    assert adopted["fitted_on"] == "other.mp4 frames 0..3" and adopted["checked_on"] == first.clip_label()
    worker = Evaluator(TINY, speed="latency")
    assert worker.latency.model.coef == tuple(wild["coef"]) and worker.latency_file() == own
    assert worker.latency_fitted_on() == "other.mp4 frames 0..3"


@pytest.mark.slow  # ~30 s: three evaluators and a one-trial search
def test_a_clip_rewritten_under_the_same_name_gets_a_fresh_reference_and_its_study_is_refused(
    results: Path, vtest_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dense reference is cached on disk; keyed by the video's path, a clip re-exported under the
    same name was scored against the old clip's reference (silently wrong losses). The key is the decoded
    frames now, and a study made on the old clip is not resumed on the new one."""
    from PIL import Image

    from deltatune.data import read_frames
    from deltatune.search.objective import Evaluator
    from tests.search.conftest import TINY

    monkeypatch.setenv("DELTATUNE_DATA", str(tmp_path / "data"))  # a private reference cache
    clip = tmp_path / "clip"
    clip.mkdir()

    def export(start: int) -> None:
        for i, f in enumerate(read_frames(vtest_path, start=start, count=6)):
            Image.fromarray(f).save(clip / f"{i:03d}.png")

    export(0)
    wl = replace(TINY, video=str(clip))
    first = Evaluator(wl)
    before, key = first._reference("tune"), first._cache_key("tune")
    assert (tmp_path / "data" / "cache" / "reference" / f"{key}.pt").is_file()  # on the disk cache
    assert Evaluator(wl).frames_fingerprint() == first.frames_fingerprint()  # same clip, same print
    run_search(settings(trials=1, study="clip", workload=wl), evaluator=first, heldout=False)
    export(400)  # other frames, same file names
    again = Evaluator(wl)
    assert again._cache_key("tune") != key and again.frames_fingerprint() != first.frames_fingerprint()
    fresh = Evaluator(wl, use_disk_cache=False)._reference("tune")
    assert torch.equal(again._reference("tune"), fresh) and not torch.equal(before, fresh)
    with pytest.raises(ConfigError, match="created on other frames"):
        run_search(settings(trials=1, study="clip", workload=wl), evaluator=again, heldout=False)


@pytest.mark.slow  # ~20 s: two searches with two worker processes each
def test_a_second_parallel_search_in_one_process_writes_where_it_was_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """joblib reuses its loky workers between calls, and a reused worker kept the environment it started
    with: a second search in the same process, with another results folder, had its trials written into
    the first one's folder and found none of its own. Workers take the caller's DELTATUNE_* now."""
    for name in ("a", "b"):
        monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / name))
        res = run_search(settings(trials=2, study="twice", jobs=2, strategy="random"), heldout=False)
        assert res.n_trials == 2
        study = open_study(resolve_storage(None, "twice"), "twice", create=False)
        assert len(study.trials) == 2 and (tmp_path / name / "twice.journal").is_file()


def test_a_finish_run_reports_the_studys_finished_trials(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    """``--finish`` counts the study's finished trials; its progress bar counted this run's, so it went
    from 0/4 to 2/4 on a study it finished."""
    run_search(settings(trials=2, study="fin"), evaluator=tiny_evaluator, heldout=False)
    seen: list[int] = []
    res = run_search(settings(trials=4, study="fin", finish=True), evaluator=tiny_evaluator, heldout=False,
                     on_progress=seen.append)
    assert res.n_trials == 4 and seen[0] == 2 and seen[-1] == 4 and seen == sorted(seen)
    again: list[int] = []
    run_search(settings(trials=4, study="fin", finish=True), evaluator=tiny_evaluator, heldout=False,
               on_progress=again.append)
    assert again == [4]  # nothing to run: the bar shows the study done


@pytest.mark.slow  # ~15 s: fits the latency model twice (timed runs)
def test_a_latency_fit_made_on_other_layer_costs_is_fitted_again(
    vtest_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results: Path
) -> None:
    """A fit records the calibrated layer costs it was made on. After `calibrate --force` measured them
    again (one conv's break-even moved from 0.27 to 0.17), a search went on pricing with the fit of the
    old costs, without a word; now that fit is fitted again. A fit of the same costs is read as it is."""
    import json
    import shutil

    from deltatune.search.objective import Evaluator
    from tests.search.conftest import TINY

    data = tmp_path / "data"  # a private data dir: its latency cache starts empty
    data.mkdir()
    shutil.copy2(vtest_path, data / vtest_path.name)
    monkeypatch.setenv("DELTATUNE_DATA", str(data))
    first = Evaluator(TINY, speed="latency")
    path = first.latency_cache_path()
    fit = json.loads(path.read_text())
    assert fit["calibration"] == first._calibration
    before = path.stat().st_mtime_ns
    assert Evaluator(TINY, speed="latency").latency.to_dict()["coef"] == fit["coef"]  # read, not fitted
    assert path.stat().st_mtime_ns == before
    path.write_text(json.dumps({**fit, "calibration": "0123456789abcdef"}))  # made on other costs
    again = Evaluator(TINY, speed="latency")
    assert json.loads(path.read_text())["calibration"] == again._calibration  # fitted again and cached
    # a fit that misses its own timings (made while the machine was busy) is said to be rough, cached or not
    rough = {**json.loads(path.read_text()), "fit_errors": [0.3] * 12}
    path.write_text(json.dumps(rough))
    result = run_search(settings(trials=2, strategy="random", speed="latency", retime=0, study="rough"),
                        heldout=False)
    assert any(n.startswith("the latency model misses its own 12 timed configurations by 30% at the median")
               for n in result.notices), result.notices


def test_a_setting_that_does_no_work_scores_the_mac_cap_and_the_search_says_so(
    still_clip: Path, results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On frames where nothing changes no setting does a multiply-add; counted as 1 MAC the MAC speedup
    was about 7.7e9x (the front, its hypervolume and the exported file carried it). It is capped, and
    the search says that these trials cannot be told apart."""
    from deltatune.search.objective import MAC_SPEEDUP_CAP

    s = settings(workload=replace(TINY, video=str(still_clip)), trials=3, strategy="random", speed="macs",
                 study="capped", retime=0)
    result = run_search(s, heldout=False)
    assert set(result.trials["speedup"]) == {MAC_SPEEDUP_CAP}
    assert result.hypervolume <= MAC_SPEEDUP_CAP * s.budget
    assert any(n.startswith("3 trial(s) scored the MAC speedup cap, 100x: ") for n in result.notices), (
        result.notices)
    from deltatune.cli import main

    # a still segment beside a moving one: --aggregate mean folds the cap into a score below it, and the
    # note said nothing; it counts the trials whose segments reached it
    moving = replace(TINY, start=300)
    mixed = settings(also_on=(replace(TINY, video=str(still_clip)),), aggregate="mean", trials=2,
                     strategy="random", speed="macs", study="capped-part", retime=0, workload=moving)
    part = run_search(mixed, heldout=False)
    assert (part.trials["speedup"] < MAC_SPEEDUP_CAP).all()
    assert any(n.startswith("2 trial(s) reached it on one of their segments, which the aggregate score "
                            "hides") for n in part.notices), part.notices
    assert main(["export", "--study", "capped", "--trial", "0", "-o", str(results / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "MAC speedup 100.000x" in out and "note: 100x is the cap of a MAC speedup: on its tuning" in out


def test_a_search_that_never_leaves_its_samplers_random_start_says_so(results: Path, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
    """A "tpe" of 2 trials draws both at random: the search's notices say so (and a refused search says
    only why it was refused: tests/models/test_user_families.py)."""
    res = run_search(settings(trials=2, study="startup"), evaluator=tiny_evaluator, heldout=False)
    assert any(n.startswith("strategy tpe with 2 trial(s): its first") for n in res.notices), res.notices
    res = run_search(settings(trials=2, study="startup-random", strategy="random"), evaluator=tiny_evaluator,
                     heldout=False)
    assert not any("random draws" in n for n in res.notices)
