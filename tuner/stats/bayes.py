"""Bayesian comparison of two paired levels: how probable is each outcome, "no practical difference" included?

The Bayesian signed-rank test (Benavoli et al., ICML 2014; ``baycomp.SignedRankTest``) puts a Dirichlet
process prior on the distribution of the paired differences and returns the posterior probabilities that
``a - b`` lies left of, inside, or right of a region of practical equivalence (ROPE) ``[-rope, rope]``.
Unlike a p-value, ``p_rope`` can support "the same for practical purposes" (Benavoli et al., JMLR 2017).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from deltatune.stats._results import BayesResult
from deltatune.stats._validate import as_pair, check_margin, check_positive_int

__all__ = ["bayes_signed_rank"]


def bayes_signed_rank(
    a: Sequence[float],
    b: Sequence[float],
    *,
    rope: float,
    seed: int = 0,
    paired: bool = True,
    n_samples: int = 50_000,
    prior: float = 0.5,
) -> BayesResult:
    """Bayesian signed-rank posteriors ``P(a - b < -rope)``, ``P(|a - b| <= rope)``, ``P(a - b > rope)``.

    ``rope`` is the half-width of the ROPE in the unit of the data (``0`` is allowed: ``p_rope`` is then 0).
    The posterior is sampled ``n_samples`` times (Monte Carlo; ``baycomp``'s default is 50 000) with a
    ``numpy.random.RandomState(seed)``, so the result is deterministic given ``seed``; ``prior`` is the
    strength of the pseudo-observation at 0 (baycomp's default 0.5). The test needs paired data; with
    ``paired=False`` it is not applicable and the probabilities are NaN (test ``"n/a (unpaired)"``).

    >>> r = bayes_signed_rank([0.70, 0.72, 0.71, 0.69, 0.73], [0.60, 0.61, 0.62, 0.60, 0.59], rope=0.01,
    ...                       n_samples=2000)
    >>> r.p_right > 0.9, round(r.p_left + r.p_rope + r.p_right, 6)
    (True, 1.0)
    """
    rope = check_margin(rope, "rope", allow_zero=True)
    n_samples = check_positive_int(n_samples, "n_samples")
    x, y = as_pair(a, b, paired=paired, min_n=2)
    if not paired:
        return BayesResult(
            test="n/a (unpaired)",
            rope=rope,
            p_left=math.nan,
            p_rope=math.nan,
            p_right=math.nan,
            n_samples=0,
            seed=seed,
        )
    from baycomp import SignedRankTest

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        # baycomp takes differences as y - x, so (b, a) gives a - b; sample[:, 0] is "below -rope"
        posterior = SignedRankTest(y, x, rope, nsamples=n_samples, random_state=seed, prior=prior)
        p_left, p_rope, p_right = posterior.probs(with_rope=True)
    return BayesResult(
        test="Bayesian signed-rank",
        rope=rope,
        p_left=float(p_left),
        p_rope=float(p_rope),
        p_right=float(p_right),
        n_samples=n_samples,
        seed=seed,
    )
