"""The strategy interface: every search strategy — an Optuna sampler or a baseline loop — is one plug-in.

The runner's loop is the same for all of them (ask/tell on one Optuna study)::

    trial = study.ask()
    config = strategy.propose(trial)          # (the runner stops once strategy.exhausted())
    evaluation = evaluator.evaluate(config)
    study.tell(trial, [evaluation.accuracy_loss, evaluation.speedup])
    strategy.after_trial(config, evaluation)  # no-op hook; greedy baselines learn from it

Before its first proposal a worker hands the strategy the study's finished trials of it
(:meth:`Strategy.resume`), so a resumed sequential baseline goes on instead of starting over.

Sampler strategies draw parameters through the :class:`~deltatune.search.spaces.SearchSpace`; baselines
propose fixed thresholds (their trials carry no parameters, only the ``thresholds`` user attribute), so
their trials sit in the same study and their fronts are comparable. The seed is injected, never global.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence

    import optuna
    from optuna.trial import FrozenTrial

    from deltatune.delta.thresholds import ThresholdFile
    from deltatune.search.objective import Evaluation
    from deltatune.search.spaces import SearchSpace

__all__ = ["Strategy", "SamplerStrategy"]


class Strategy(ABC):
    """One search strategy. ``parallel``: whether several worker processes may share its study."""

    name: ClassVar[str] = ""
    parallel: ClassVar[bool] = True
    description: ClassVar[str] = ""

    def __init__(
        self, space: SearchSpace, *, seed: int | None = None, budget: float = 1.0, n_trials: int | None = None
    ) -> None:
        self.space = space
        self.seed = seed
        self.budget = budget
        self.n_trials = n_trials

    @classmethod
    def random_startup(cls, n_trials: int | None) -> int:
        """How many of a run's first trials this strategy draws at random before it models anything, for a
        run of ``n_trials`` trials (0: none, as for random search itself and the baselines). A run whose
        trials do not exceed it is a random search under another name (:func:`startup_warning`)."""
        return 0

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        """The sampler this worker's study object uses (baselines: a seeded random sampler, unused)."""
        import optuna

        return optuna.samplers.RandomSampler(seed=self.seed)

    def exhausted(self) -> bool:
        """True when the strategy has nothing left to try (the runner then stops early)."""
        return False

    def resume(self, done: Sequence[FrozenTrial]) -> None:  # noqa: B027 - optional hook
        """Go on from ``done``, the study's COMPLETE trials of this strategy (oldest first), before the
        first proposal: a sequential baseline resumed after an interruption then continues where it
        stopped instead of starting again. No-op by default (a sampler reads the study itself)."""

    @abstractmethod
    def propose(self, trial: optuna.Trial) -> ThresholdFile:
        """The configuration to evaluate in ``trial``."""

    def after_trial(self, config: ThresholdFile, evaluation: Evaluation) -> None:  # noqa: B027 - optional hook
        """Called with every finished evaluation (no-op by default)."""


class SamplerStrategy(Strategy):
    """A strategy whose proposals are an Optuna sampler's draws in the search space."""

    def propose(self, trial: optuna.Trial) -> ThresholdFile:
        return self.space.suggest(trial)
