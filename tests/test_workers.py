"""``deltatune._workers``: the load check that qualifies timings (bench, a search's re-timed front)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from deltatune._workers import busy_machine


def test_busy_machine_compares_the_load_average_with_the_cores() -> None:
    cores = os.cpu_count() or 1
    said = busy_machine(threshold=0.0)  # any load is at least 0 x cores
    assert said is not None and said.startswith("load average ")
    assert f" on {cores} cores: other work is running, so timings will be unreliable" in said
    assert busy_machine(threshold=1e9) is None


def test_an_interrupt_that_optuna_turns_into_another_error_is_still_an_interrupt() -> None:
    """A Ctrl-C landing while Optuna records a trial's result comes out of ``optimize`` as Optuna's
    ``UnboundLocalError`` (its clean-up reads a name the interrupted line never set): the search then
    exited 1 with a traceback, its trial left RUNNING, instead of saying what was kept."""
    import optuna

    from deltatune._workers import caused_by_interrupt

    class InterruptedTell(optuna.samplers.RandomSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            raise KeyboardInterrupt  # called while Optuna tells the trial, where a Ctrl-C can land

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=InterruptedTell())
    with pytest.raises(BaseException) as info:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert not isinstance(info.value, KeyboardInterrupt), info.value  # Optuna's error, not the interrupt
    assert caused_by_interrupt(info.value)
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("raised while handling it") from None  # the chain cut: not an interrupt
    except ValueError as exc:
        assert not caused_by_interrupt(exc)
    assert not caused_by_interrupt(RuntimeError("plain"))


def test_a_dead_workers_exit_codes_are_said_once_each() -> None:
    """Two workers killed alike read "SIGKILL(-9), SIGKILL(-9)" in joblib's message, which made the
    command's line depend on how many workers died before the executor stopped."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from deltatune._workers import WorkerDied, worker_deaths

    message = ("A worker process managed by the executor was unexpectedly terminated. ...\n"
               "The exit codes of the workers are {SIGKILL(-9), SIGKILL(-9), SIGSEGV(-11)}")
    with pytest.raises(WorkerDied) as info, worker_deaths():
        raise TerminatedWorkerError(message)
    assert info.value.codes == "SIGKILL(-9), SIGSEGV(-11)"
