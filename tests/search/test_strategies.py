"""Every strategy runs on the real tiny HRNet and records trials.

One contract class that every strategy's tests inherit (STYLE §9).
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from deltatune.errors import ConfigError
from deltatune.search import (
    STRATEGIES,
    open_study,
    resolve_storage,
    run_search,
    thresholds_frame,
    trials_frame,
)
from deltatune.search.strategies import make_strategy

from .conftest import RANGES, settings


class StrategyContract:
    """What every strategy must do; subclasses set ``name`` (and may add their own tests)."""

    name: ClassVar[str] = ""
    trials: ClassVar[int] = 4
    space: ClassVar[str] = "group"

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, tmp_path_factory, tiny_evaluator):  # type: ignore[no-untyped-def]
        journal = str(tmp_path_factory.mktemp(cls.name) / f"{cls.name}.journal")
        s = settings(strategy=cls.name, trials=cls.trials, space=cls.space, study=cls.name, storage=journal)
        res = run_search(s, evaluator=tiny_evaluator, heldout=False)
        study = open_study(resolve_storage(journal, cls.name), cls.name, create=False)
        return res, study

    def test_is_registered(self) -> None:
        assert STRATEGIES[self.name].name == self.name

    def test_runs_and_records_trials(self, run, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
        res, study = run
        df = trials_frame(study)
        assert 1 <= len(df) <= self.trials and res.new_trials == len(df)
        assert set(df["strategy"]) == {self.name}
        assert df["constraint"].notna().all()  # the budget constraint is in the study
        assert ((df["constraint"] <= 0) == df["feasible"]).all()
        assert (df["speedup"] >= 1.0).all()
        for t in study.trials:
            assert list(t.user_attrs["thresholds"]) == tiny_evaluator.threshold_names
            assert t.constraints and "budget" in t.constraints
        assert set(thresholds_frame(study)["layer"]) == set(tiny_evaluator.threshold_names)

    def test_seed_is_recorded_per_trial(self, run) -> None:  # type: ignore[no-untyped-def]
        _, study = run
        assert all(isinstance(t.user_attrs["seed"], int) for t in study.trials)


class TestTPE(StrategyContract):
    name = "tpe"


class TestNSGAII(StrategyContract):
    name = "nsga2"


class TestGP(StrategyContract):
    name = "gp"
    trials = 3  # the GP fits after 8 startup draws; this checks the plumbing, not the model


class TestRandom(StrategyContract):
    name = "random"
    space = "layer"


class TestDeltaCNNGreedy(StrategyContract):
    name = "deltacnn-greedy"
    trials = 6

    def test_doubles_the_input_threshold_while_within_budget(self, run) -> None:  # type: ignore[no-untyped-def]
        _, study = run
        first = study.trials[0].user_attrs["thresholds"]
        assert first["input"] == pytest.approx(RANGES.input_lo)
        assert all(v == 0.0 for k, v in first.items() if k != "input")
        feasible_prefix = []
        for t in study.trials:
            if t.user_attrs["greedy_layer"] != "input" or t.constraints["budget"] > 0:
                break
            feasible_prefix.append(t.user_attrs["thresholds"]["input"])
        for a, b in zip(feasible_prefix, feasible_prefix[1:], strict=False):
            assert b == pytest.approx(2 * a)

    def test_is_sequential(self) -> None:
        with pytest.raises(ConfigError, match="sequential"):
            settings(strategy=self.name, jobs=2)


class TestCBinferGreedy(StrategyContract):
    name = "cbinfer-greedy"
    trials = 5

    def test_grows_by_1_2_under_a_per_layer_tolerance(self, tiny_evaluator) -> None:  # type: ignore[no-untyped-def]
        from deltatune.search.spaces import LayerSpace

        s = make_strategy(self.name, LayerSpace(tiny_evaluator.threshold_names), budget=3.5)
        n = len(tiny_evaluator.threshold_names)
        assert s.allowance(0) == pytest.approx(3.5 / n) and s.allowance(n - 1) == pytest.approx(3.5)
        assert s.factor == pytest.approx(1.2)


class TestGlobalSweep(StrategyContract):
    name = "sweep"

    def test_sweeps_one_global_threshold_low_to_high(self, run) -> None:  # type: ignore[no-untyped-def]
        _, study = run
        values = []
        for t in study.trials:
            th = {k: v for k, v in t.user_attrs["thresholds"].items() if k != "input"}
            assert len(set(th.values())) == 1
            values.append(next(iter(th.values())))
        assert values == sorted(values) and values[0] == pytest.approx(RANGES.lo)
        assert values[-1] == pytest.approx(RANGES.hi)


def _finish(name: str, study: str, journal: str, evaluator: object, *, stop_after: int = 0) -> list[object]:
    """Run strategy ``name`` as a ``--finish`` search of 6 trials on ``study`` (Ctrl-C once ``stop_after``
    trials finished, when > 0); the thresholds of the study's finished trials, in order."""
    from optuna.trial import TrialState

    def interrupt(n: int) -> None:
        if 0 < stop_after <= n:
            raise KeyboardInterrupt

    s = settings(strategy=name, trials=6, study=study, storage=journal, finish=True)
    try:
        run_search(s, evaluator=evaluator, heldout=False, on_progress=interrupt)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        assert stop_after > 0
    done = open_study(resolve_storage(journal, study), study, create=False).get_trials(
        states=(TrialState.COMPLETE,))
    return [t.user_attrs["thresholds"] for t in done]


@pytest.mark.parametrize("name", ["sweep", "deltacnn-greedy", "cbinfer-greedy"])
def test_a_baseline_interrupted_then_finished_runs_the_trials_of_an_uninterrupted_one(
    name: str, tmp_path, tiny_evaluator  # type: ignore[no-untyped-def]
) -> None:
    """A sequential baseline resumed with ``--finish`` (what a retried ablation run does) goes on where it
    stopped: the sweep restarted its grid over the trials left (positions 0, 1 again instead of 2/5 ... 1)
    and a greedy loop its first layer, repeating trials and never reaching what the uninterrupted one did."""
    journal = str(tmp_path / "resume.journal")
    whole = _finish(name, "whole", journal, tiny_evaluator)
    assert len(_finish(name, "cut", journal, tiny_evaluator, stop_after=2)) == 2
    assert len(whole) == 6 and _finish(name, "cut", journal, tiny_evaluator) == whole


def test_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="--strategy 'bayes' is unknown; choose one of tpe"):
        settings(strategy="bayes")


@pytest.mark.parametrize(("name", "trials", "warned"), [
    ("tpe", 4, True), ("tpe", 12, False), ("tpe", 30, False), ("gp", 8, True), ("gp", 9, False),
    ("nsga2", 8, True), ("random", 2, False), ("deltacnn-greedy", 2, False),
])
def test_a_run_that_never_gets_past_its_random_startup_trials_is_called_random_search(
    name: str, trials: int, warned: bool
) -> None:
    """A study's "tpe" of 4 trials drew all 4 at random (TPE's startup is 4 at least): it compared random
    search with itself, and nothing said so. The warning's count is the one the sampler is built with."""
    from deltatune.search.strategies import startup_warning, strategy_class

    warning = startup_warning(name, trials)
    assert (warning is not None) == warned
    if warned:
        startup = strategy_class(name).random_startup(trials)
        assert warning.startswith(f"strategy {name} with {trials} trial(s): its first {startup} trials are "
                                  "random draws")
        assert "the run is a random search" in warning


def test_the_startup_the_warning_counts_is_the_samplers_own() -> None:
    """TPE's and GP's samplers are built with the random startup trials the warning names."""
    from deltatune.search.strategies import GPStrategy, TPEStrategy

    for trials in (4, 12, 40):
        sampler = TPEStrategy(None, seed=0, n_trials=trials).make_sampler()  # type: ignore[arg-type]
        assert sampler._n_startup_trials == TPEStrategy.random_startup(trials)
    assert GPStrategy.random_startup(5) == GPStrategy.STARTUP
