"""Search strategies, one module each, behind :class:`~deltatune.search.strategies._base.Strategy`.

``STRATEGIES`` maps the ``--strategy`` names to their classes; :func:`make_strategy` builds one.
"""

from __future__ import annotations

from typing import Any

from deltatune.errors import ConfigError
from deltatune.search.strategies._base import SamplerStrategy, Strategy
from deltatune.search.strategies.cbinfer_greedy import CBinferGreedyStrategy
from deltatune.search.strategies.deltacnn_greedy import DeltaCNNGreedyStrategy
from deltatune.search.strategies.gp import GPStrategy
from deltatune.search.strategies.nsga2 import NSGAIIStrategy
from deltatune.search.strategies.random_search import RandomStrategy
from deltatune.search.strategies.sweep import GlobalSweepStrategy
from deltatune.search.strategies.tpe import TPEStrategy

__all__ = [
    "Strategy",
    "SamplerStrategy",
    "TPEStrategy",
    "NSGAIIStrategy",
    "GPStrategy",
    "RandomStrategy",
    "DeltaCNNGreedyStrategy",
    "CBinferGreedyStrategy",
    "GlobalSweepStrategy",
    "STRATEGIES",
    "make_strategy",
    "startup_warning",
    "strategy_class",
]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        TPEStrategy,
        NSGAIIStrategy,
        GPStrategy,
        RandomStrategy,
        DeltaCNNGreedyStrategy,
        CBinferGreedyStrategy,
        GlobalSweepStrategy,
    )
}


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name``; a clear :class:`ConfigError` otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"--strategy {name!r} is unknown; choose one of {', '.join(STRATEGIES)}") from None


def make_strategy(name: str, space: Any, **kwargs: Any) -> Strategy:
    """Build strategy ``name`` over ``space`` (``seed``, ``budget``, ``n_trials`` as keywords)."""
    return strategy_class(name)(space, **kwargs)


def startup_warning(name: str, trials: int) -> str | None:
    """A warning when a run of strategy ``name`` with ``trials`` trials never gets past its random startup
    trials (:meth:`Strategy.random_startup`): every trial is then a random draw, and comparing such a
    "tpe" with random search compares random search with itself. ``None`` when the strategy models
    anything in that many trials (or never draws at random)."""
    startup = strategy_class(name).random_startup(trials)
    if not startup or trials > startup:
        return None
    return (f"strategy {name} with {trials} trial(s): its first {startup} trials are random draws, so none "
            f"of these is proposed by {name}'s model and the run is a random search; run more than "
            f"{startup} trials for {name} to take part")
