"""Two or more crossed factors: main effects and two-way interactions in one factorial ANOVA.

Level-vs-baseline tests compare one factor's levels averaged over the others; when the effect of one
factor depends on another (a learning rate that only helps without weight decay) those averages can hide
it or invent it. :func:`factorial_anova` tests each factor and every pair of them in one model, fixed in
advance:

- **model, unblocked**: ordinary least squares of the value on every factor and every two-way
  interaction; higher interactions are left in the error term. Type II sums of squares (statsmodels
  ``anova_lm(typ=2)``), which suit unequal cell sizes such as a missing run.
- **model, blocked** (a seed or a segment: the unit the runs repeat, every block run at every combination
  of levels): the within-block (repeated-measures) ANOVA, statsmodels ``AnovaRM``: each effect is tested
  against its own interaction with the block. A seed that gains more from one learning rate than another
  seed does is exactly the noise a learning-rate difference must stand out from; an additive block with
  one pooled residual would count one seed's runs under the other factors' levels as independent
  evidence (pseudo-replication: about 30 % false positives at a nominal 5 % when seeds react differently
  to a level, in simulation). Blocks that miss a combination are left out (counted in
  ``dropped_blocks``), repeated runs of one block and combination averaged. Every p is Greenhouse-Geisser
  corrected for sphericity (:mod:`deltatune.stats.sphericity`; the degrees of freedom shown are the
  corrected ones, whole numbers where epsilon is 1, as for every two-level effect).
- **test choice**: Shapiro-Wilk on the model's residuals, the F test's own normality assumption. Normal
  -> the F tests of that model; otherwise the aligned rank transform (Wobbrock et al., CHI 2011, ARTool):
  for each effect the values are aligned (the model's residual plus that effect's estimate from the
  marginal or cell means), ranked, and the same model fitted to the ranks; only that effect's F test is
  read from each fit. Plain ranks are not used: their interaction tests are known to be wrong (Salter
  and Fawcett 1993).
- **effect size**: partial eta squared, ``SS_effect / (SS_effect + SS_error)``, of the fit the p-value
  comes from (its error term: the residual, or the effect's interaction with the block).

Every pair of factors must be crossed (each combination of their levels observed at least once) and the
model must leave residual degrees of freedom; otherwise a one-line :class:`ConfigError` says why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from deltatune.errors import ConfigError
from deltatune.stats._normality import all_equal, normality_choice, shapiro_p
from deltatune.stats._results import INTERACTION, FactorialResult, FactorialTerm
from deltatune.stats._ties import snap
from deltatune.stats._validate import check_fraction

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FactorialTerm", "FactorialResult", "factorial_anova", "INTERACTION"]

def _formula(columns: Sequence[str], block: str | None) -> str:
    mains = [f"C({c})" for c in columns]
    pairs = [f"C({a}):C({b})" for a, b in combinations(columns, 2)]
    return "y ~ " + " + ".join([*mains, *pairs, *([f"C({block})"] if block else [])])


def _fit(frame: pd.DataFrame, formula: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``(type II ANOVA table, residuals)`` of the OLS fit of ``formula``; a model that leaves no
    residual degrees of freedom is a :class:`ConfigError`."""
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # a perfect fit: the NaN statistic says it
        model = ols(formula, data=frame).fit()
        if not model.df_resid >= 1:
            raise ConfigError(f"values: {len(frame)} observations leave no residual degrees of freedom for "
                              f"the {int(model.df_model)} effect parameters; more repeats are needed")
        table = anova_lm(model, typ=2)
    return table, np.asarray(model.resid, dtype=float)


def _row(table: pd.DataFrame, key: str, name: str) -> FactorialTerm:
    ss, df = float(table.loc[key, "sum_sq"]), float(table.loc[key, "df"])
    ss_res = float(table.loc["Residual", "sum_sq"])
    if ss <= 1e-12 * float(table["sum_sq"].sum()):  # rounding noise of an effect that is exactly 0 (a
        return FactorialTerm(name, df, 0.0, 1.0, 0.0)  # factor that changed nothing): F 1.5e-31 reads oddly
    eta = ss / (ss + ss_res) if ss + ss_res > 0 else math.nan
    return FactorialTerm(name, df, float(table.loc[key, "F"]), float(table.loc[key, "PR(>F)"]), eta)


def _complete_blocks(
    data: pd.DataFrame, cols: Sequence[str], blk: str, block: str
) -> tuple[pd.DataFrame, int]:
    """``(rows, dropped)``: the blocks that have a value in every combination of the factors' levels, one
    row per block and combination (repeated runs averaged), and how many blocks were left out."""
    cells = data.groupby([blk, *cols], as_index=False, sort=False)["y"].mean()
    want = math.prod(int(data[c].nunique()) for c in cols)
    have = cells.groupby(blk, sort=False).size()
    keep = have[have == want].index
    if len(keep) < 2:
        raise ConfigError(f"{block}: {len(keep)} of {len(have)} blocks have a value in every one of the "
                          f"{want} combinations of the factors' levels; the within-{block} ANOVA needs at "
                          "least 2")
    return cells[cells[blk].isin(keep)].reset_index(drop=True), int(len(have) - len(keep))


def _within(frame: pd.DataFrame, cols: Sequence[str], blk: str) -> pd.DataFrame:
    """statsmodels' repeated-measures ANOVA of ``frame`` (complete blocks): every effect against its own
    interaction with the block; rows ``f0``, ``f0:f1``, ... with ``F Value``, ``Num DF``, ``Den DF`` and
    ``Pr > F``."""
    from statsmodels.stats.anova import AnovaRM

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # an error term of 0: the infinite F says it
        return AnovaRM(frame, "y", blk, within=list(cols)).fit().anova_table


def _epsilon(frame: pd.DataFrame, cols: Sequence[str], blk: str, eff: tuple[str, ...]) -> float:
    """Greenhouse-Geisser epsilon of effect ``eff`` over the complete blocks of ``frame`` (one row per block
    and cell)."""
    import pandas as pd

    from deltatune.stats.sphericity import effect_contrasts, gg_epsilon

    levels = [sorted(frame[c].unique()) for c in cols]
    wide = frame.pivot_table(index=blk, columns=list(cols), values="y", aggfunc="mean")
    wide = wide.reindex(columns=pd.MultiIndex.from_product(levels) if len(cols) > 1 else levels[0])
    m = effect_contrasts([len(lv) for lv in levels], [list(cols).index(c) for c in eff])
    return gg_epsilon(wide.to_numpy(dtype=float), m)


def _within_row(
    table: pd.DataFrame, rm: pd.DataFrame, eff: tuple[str, ...], name: str, epsilon: float
) -> FactorialTerm:
    """One effect of the within-block ANOVA ``rm``, its p Greenhouse-Geisser corrected by ``epsilon`` (its
    degrees of freedom scaled by it); ``table`` (the OLS fit of the same rows) only says when the effect's
    sum of squares is rounding noise of an exact 0."""
    from deltatune.stats.sphericity import gg_pvalue

    key = ":".join(f"C({c})" for c in eff)
    row = rm.loc[":".join(eff)]
    df1, df2 = float(row["Num DF"]), float(row["Den DF"])
    eps = epsilon if math.isfinite(epsilon) else 1.0
    if float(table.loc[key, "sum_sq"]) <= 1e-12 * float(table["sum_sq"].sum()):
        return FactorialTerm(name, df1 * eps, 0.0, 1.0, 0.0, error_df=df2 * eps)
    f = float(row["F Value"])
    if math.isnan(f) or f < 0:  # no variation left at all in the effect and its error
        return FactorialTerm(name, df1, math.nan, math.nan, math.nan, error_df=df2)
    eta = 1.0 if math.isinf(f) else f * df1 / (f * df1 + df2)
    p = 0.0 if math.isinf(f) else gg_pvalue(f, df1, df2, eps)
    return FactorialTerm(name, df1 * eps, f, p, eta, error_df=df2 * eps)


def _aligned(frame: pd.DataFrame, resid: np.ndarray, effect: tuple[str, ...]) -> np.ndarray:
    """The values aligned for ``effect`` (ART): the full model's residual plus the effect's estimate from
    marginal means (a main effect) or cell means less both marginals (a two-way interaction)."""
    y = frame["y"]
    grand = float(y.mean())
    mean = {c: frame.groupby(c)["y"].transform("mean").to_numpy() for c in effect}
    if len(effect) == 1:
        estimate = mean[effect[0]] - grand
    else:
        a, b = effect
        cell = frame.groupby([a, b])["y"].transform("mean").to_numpy()
        estimate = cell - mean[a] - mean[b] + grand
    return resid + estimate


def _ranks(values: np.ndarray, *, scale: float) -> np.ndarray:
    """Average ranks of ``values`` after snapping away floating-point noise at ``scale``
    (:func:`~deltatune.stats._ties.snap`): an aligned value that is exactly 0 in theory (a perfectly
    additive design) must tie, not be ranked by its last bits."""
    import pandas as pd

    return pd.Series(snap(values, scale)).rank(method="average").to_numpy()


def factorial_anova(
    frame: pd.DataFrame,
    factors: Sequence[str],
    *,
    value: str = "value",
    block: str | None = None,
    alpha: float = 0.05,
    parametric: bool | None = None,
) -> FactorialResult:
    """Test every factor and every two-way interaction of ``factors`` on ``value`` (see the module doc).

    ``frame`` holds one row per observation: a column per factor (levels are compared as categories), the
    ``value`` column and, for a blocked design, the ``block`` column. Rows without a finite value are left
    out. ``alpha`` is the Shapiro-Wilk threshold of the test choice; ``parametric`` overrides it.

    >>> import pandas as pd
    >>> rows = [(a, b, s, 1.0 + (a == "x") * (b == "on") * 2 + 0.1 * s + 0.05 * ((s * 7 + len(a + b)) % 3))
    ...         for a in ("x", "y") for b in ("on", "off") for s in range(4)]
    >>> r = factorial_anova(pd.DataFrame(rows, columns=["a", "b", "seed", "value"]), ["a", "b"], block="seed")
    >>> [t.term for t in r.terms], r.terms[2].pvalue < 0.001
    (['a', 'b', 'a × b'], True)
    """
    import pandas as pd

    alpha = check_fraction(alpha, "alpha")
    factors = list(factors)
    if len(factors) < 2 or len(set(factors)) != len(factors):
        raise ConfigError(f"factors: a factorial ANOVA needs at least 2 distinct factors, got {factors}")
    needed = [*factors, value, *([block] if block else [])]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise ConfigError(f"frame: missing column(s) {', '.join(absent)}")
    d = frame[needed].copy()
    d = d[np.isfinite(pd.to_numeric(d[value], errors="coerce").to_numpy(dtype=float))]
    cols = [f"f{i}" for i in range(len(factors))]  # safe names for the formula
    data = pd.DataFrame({c: d[f].astype(str).to_numpy() for c, f in zip(cols, factors, strict=True)})
    data["y"] = d[value].astype(float).to_numpy()
    blk = None
    if block is not None and d[block].nunique() >= 2:
        blk = "blk"
        data[blk] = d[block].astype(str).to_numpy()
    for c, f in zip(cols, factors, strict=True):
        if data[c].nunique() < 2:
            raise ConfigError(f"factor {f!r}: needs at least 2 levels with a value, has {data[c].nunique()}")
    for (ca, fa), (cb, fb) in combinations(zip(cols, factors, strict=True), 2):
        seen = data.groupby([ca, cb]).size()
        want = data[ca].nunique() * data[cb].nunique()
        if len(seen) < want:
            raise ConfigError(f"factors {fa!r} and {fb!r} are not crossed: {want - len(seen)} of their "
                              f"{want} level combinations have no value, so their interaction cannot be "
                              "estimated")
    dropped = 0
    if blk is not None:
        data, dropped = _complete_blocks(data, cols, blk, block or "block")
    y = data["y"].to_numpy()
    if all_equal(y):
        raise ConfigError(f"values: all {len(y)} are equal ({y[0]:g}); there is no difference to test")
    formula = _formula(cols, blk)
    table, resid = _fit(data, formula)
    df_resid = float(table.loc["Residual", "df"])
    p_norm, why = shapiro_p(resid, "the residuals of the factorial model")
    normal, phrase = normality_choice([p_norm], [why], alpha, "the residuals of the factorial model")
    f_name = "within-block factorial ANOVA" if blk else "factorial ANOVA (type II)"
    art_name = "within-block aligned rank transform ANOVA" if blk else "aligned rank transform ANOVA"
    if parametric is not None:
        normal = bool(parametric)
    chosen = f_name if normal else art_name
    chosen = f"{'an' if chosen[0] in 'aeiou' else 'a'} {chosen}"
    reason = f"{chosen} was requested" if parametric is not None else f"{phrase}, so {chosen}"
    names = dict(zip(cols, factors, strict=True))
    effects: list[tuple[str, ...]] = [(c,) for c in cols] + list(combinations(cols, 2))
    terms = []
    rm = _within(data, cols, blk) if blk and normal else None
    for eff in effects:
        key = ":".join(f"C({c})" for c in eff)
        name = INTERACTION.join(names[c] for c in eff)
        if normal:
            terms.append(_within_row(table, rm, eff, name, _epsilon(data, cols, blk, eff)) if rm is not None
                         else _row(table, key, name))
        else:
            ranked = data.copy()
            ranked["y"] = _ranks(_aligned(data, resid, eff), scale=float(np.max(np.abs(y))))
            if np.ptp(ranked["y"].to_numpy()) == 0:  # the effect's aligned values all tie: nothing to test
                nan = math.nan
                terms.append(FactorialTerm(name, float(table.loc[key, "df"]), nan, nan, nan))
                continue
            art_table, _ = _fit(ranked, formula)
            terms.append(_within_row(art_table, _within(ranked, cols, blk), eff, name,
                                     _epsilon(ranked, cols, blk, eff)) if blk else _row(art_table, key, name))
    return FactorialResult(
        test=f_name if normal else art_name,
        reason=reason,
        terms=tuple(terms),
        df_resid=math.nan if blk else df_resid,
        n=len(data),
        block=block if blk else None,
        normality_pvalue=p_norm,
        dropped_blocks=dropped,
        n_blocks=int(data[blk].nunique()) if blk else 0,
    )
