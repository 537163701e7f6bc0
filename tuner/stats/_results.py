"""Result objects of :mod:`deltatune.stats`: frozen dataclasses, each with a JSON-ready ``to_dict()``.

Like scipy's result objects they carry the numbers and enough context to report them (which test, why, at
which level). ``to_dict()`` returns plain Python values only: floats, ints, bools, str and ``None`` (NaN
and infinities become ``None``, so the dict is valid JSON); tables become nested dicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is only needed for the many-level result
    import pandas as pd

__all__ = [
    "Description",
    "EffectSize",
    "TestResult",
    "OmnibusResult",
    "EquivalenceResult",
    "BayesResult",
    "ASOResult",
    "FactorialTerm",
    "FactorialResult",
    "INTERACTION",
]


def plain(value: Any) -> Any:
    """A JSON-ready copy of ``value``: non-finite floats become ``None``, result objects their dicts,
    DataFrames ``{row: {column: value}}``, Series and mappings ``{label: value}`` (the reports use it too)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if is_dataclass(value) and hasattr(value, "to_dict"):  # a nested result object
        return value.to_dict()
    if hasattr(value, "columns"):  # a DataFrame: {row: {column: value}}
        return {str(r): {str(c): plain(value.loc[r, c]) for c in value.columns} for r in value.index}
    if hasattr(value, "items"):  # a Series or a mapping: {label: value}
        return {str(k): plain(v) for k, v in value.items()}
    raise TypeError(f"cannot convert {type(value).__name__} to a plain value")


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field; NaN and infinities become ``None``."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Description(_ToDict):
    """Summary of one sample: size, mean, SD (ddof=1), median and a Student-t CI of the mean.

    ``ci_low``/``ci_high`` are NaN when ``n < 2``; for constant data they are ``[mean, mean]``.
    ``ci_method`` says how the CI was obtained: ``"t"``, ``"constant"``, ``"n/a"``, or ``"log-t"`` for
    ratios, where ``mean`` is the geometric mean and the CI its t interval on the log scale.
    """

    n: int
    mean: float
    sd: float
    median: float
    ci_low: float
    ci_high: float
    level: float
    ci_method: str = "t"


@dataclass(frozen=True)
class EffectSize(_ToDict):
    """A standardized effect size with its CI (``ci_method``: ``"noncentral t"`` for Hedges' g, ``"BCa"`` or
    ``"percentile"`` bootstraps for the rank-based ones, ``"n/a"`` when undefined).

    ``name`` is ``"hedges_g"``, ``"cliffs_delta"`` or ``"rank_biserial"``; ``magnitude`` is
    ``"negligible"``, ``"small"``, ``"medium"`` or ``"large"`` (Cohen's 0.2/0.5/0.8 for g, Romano et al.'s
    0.147/0.33/0.474 for Cliff's delta and rank-biserial), ``"n/a"`` when ``value`` is NaN, or why a
    value rests on too little for a word (``"too few to name: 1 non-zero pair"``).
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    level: float
    magnitude: str
    ci_method: str = "BCa"


@dataclass(frozen=True)
class TestResult(_ToDict):
    """A two-level comparison: the test chosen, its statistic and p-value, and effect sizes.

    ``n`` is the number of pairs (paired) or the total size (unpaired). ``reason`` is one sentence on why
    this test was chosen. ``mean_difference`` is ``mean(a) - mean(b)``. ``effect_sizes`` holds Hedges' g
    first, then rank-biserial (paired) or Cliff's delta (unpaired). ``power_n`` is the number of repeats per
    level for 80 % power at the observed g (at the test's alpha, two-sided), capped at 10 000; ``None`` when
    g is 0 or NaN. ``df`` is the t-test's degrees of freedom (NaN for the rank tests). ``floor``:
    the smallest p the rank test could give these values, however arranged
    (:func:`~deltatune.stats.two_levels.rank_floor`: zero differences dropped, tied values counted),
    whichever test ran.
    """

    __test__ = False  # not a pytest test class despite the name

    test: str
    statistic: float
    pvalue: float
    n: int
    paired: bool
    reason: str
    normality_pvalue: float | None
    mean_difference: float
    effect_sizes: tuple[EffectSize, ...]
    power_n: int | None
    df: float = math.nan
    floor: float = math.nan
    ranked: int = 0
    """Paired: the pairs whose difference is not zero, the ones a Wilcoxon test ranks (and ``floor``
    counts)."""


@dataclass(frozen=True, eq=False)
class OmnibusResult(_ToDict):
    """A comparison of k >= 2 levels: omnibus test, post-hoc p-value matrix and mean ranks.

    ``posthoc`` is a square DataFrame of (adjusted) p-values indexed by level name (1 on the diagonal);
    ``mean_ranks`` is the mean rank per level with rank 1 = best (see :func:`compare_many`); ``means`` the
    mean per level. ``df``/``df_denom`` are the degrees of freedom of the statistic (``df_denom`` NaN for
    the chi-squared rank tests).
    """

    test: str
    statistic: float
    pvalue: float
    n: int
    k: int
    paired: bool
    reason: str
    posthoc_test: str
    posthoc: pd.DataFrame
    mean_ranks: pd.Series
    normality_pvalue: float | None = None
    means: pd.Series | None = None
    df: float = math.nan
    df_denom: float = math.nan


@dataclass(frozen=True)
class EquivalenceResult(_ToDict):
    """Two one-sided tests (TOST) of ``-margin < mean(a - b) < margin``.

    ``pvalue`` is the larger of the two one-sided p-values; ``equivalent`` is ``pvalue < alpha``.
    ``ci_low``/``ci_high`` are the (1 - 2 alpha) CI of the mean difference, which lies inside
    ``(-margin, margin)`` exactly when equivalence is shown.
    """

    test: str
    margin: float
    pvalue: float
    equivalent: bool
    diff: float
    ci_low: float
    ci_high: float
    paired: bool
    alpha: float


@dataclass(frozen=True)
class BayesResult(_ToDict):
    """Posterior probabilities that ``a - b`` lies left of, inside, or right of the ROPE ``[-rope, rope]``.

    ``p_left`` = P(a - b < -rope), ``p_rope``, ``p_right`` = P(a - b > rope); they sum to 1.
    """

    test: str
    rope: float
    p_left: float
    p_rope: float
    p_right: float
    n_samples: int = 0
    seed: int = 0


@dataclass(frozen=True)
class ASOResult(_ToDict):
    """Almost stochastic order of ``a`` over ``b`` (Dror et al. 2019, as implemented by deepsig).

    ``eps_min`` is the upper bound of the violation ratio: 0 means ``a`` is stochastically larger than ``b``
    everywhere, 1 means ``b`` is; ``a_dominates`` is ``eps_min < threshold``.
    """

    test: str
    eps_min: float
    confidence_level: float
    a_dominates: bool
    seed: int
    threshold: float = 0.5


#: How an interaction term is named: ``"lr × weight_decay"``.
INTERACTION = " × "


@dataclass(frozen=True)
class FactorialTerm(_ToDict):
    """One effect of the factorial model: a factor, or two of them joined by :data:`INTERACTION`."""

    term: str
    df: float
    statistic: float  # F
    pvalue: float
    partial_eta_sq: float
    #: the degrees of freedom of this effect's error term: in a blocked design its interaction with the
    #: block (each effect has its own); ``None``: the model's residual (:attr:`FactorialResult.df_resid`)
    error_df: float | None = None

    @property
    def is_interaction(self) -> bool:
        return INTERACTION in self.term


@dataclass(frozen=True)
class FactorialResult(_ToDict):
    """The factorial ANOVA of :func:`factorial_anova`: which test, why, and one row per effect.

    ``df_resid`` is the error term's degrees of freedom, unblocked; blocked, every effect has its own
    (:attr:`FactorialTerm.error_df`) and ``df_resid`` is NaN. ``block`` the blocking column (``None``:
    unblocked); ``normality_pvalue`` the Shapiro-Wilk p of the residuals (``None`` when undefined);
    ``dropped_blocks`` the blocks left out because they lack a value in some cell of the design.
    """

    test: str
    reason: str
    terms: tuple[FactorialTerm, ...]
    df_resid: float
    n: int
    block: str | None
    normality_pvalue: float | None
    dropped_blocks: int = 0
    n_blocks: int = 0
    """Blocked: the blocks (units) in the model, each observed in every cell; ``n`` counts observations."""
