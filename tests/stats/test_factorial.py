"""factorial_anova(): agreement with R on a textbook two-way design, the test choice, the aligned rank
transform on data that break normality, blocks, and the inputs it refuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deltatune.errors import ConfigError
from deltatune.stats.factorial import factorial_anova

#: R's ``warpbreaks`` (Tippett 1950): breaks per loom by wool (A, B) and tension (L, M, H), 9 looms each.
WARPBREAKS = {
    ("A", "L"): [26, 30, 54, 25, 70, 52, 51, 26, 67], ("A", "M"): [18, 21, 29, 17, 12, 18, 35, 30, 36],
    ("A", "H"): [36, 21, 24, 18, 10, 43, 28, 15, 26], ("B", "L"): [27, 14, 29, 19, 29, 31, 41, 20, 44],
    ("B", "M"): [42, 26, 19, 16, 39, 28, 21, 39, 29], ("B", "H"): [20, 21, 24, 17, 13, 15, 15, 16, 28],
}


def _warpbreaks() -> pd.DataFrame:
    rows = [(w, t, v) for (w, t), vs in WARPBREAKS.items() for v in vs]
    return pd.DataFrame(rows, columns=["wool", "tension", "breaks"])


def test_warpbreaks_matches_r_aov() -> None:
    """R: ``summary(aov(breaks ~ wool * tension, warpbreaks))``: wool F = 3.765, p = 0.058213; tension
    F = 8.498, p = 0.000693; wool:tension F = 4.189, p = 0.021044; 48 residual df (balanced, so the
    type II table equals R's sequential one)."""
    r = factorial_anova(_warpbreaks(), ["wool", "tension"], value="breaks", parametric=True)
    assert r.test == "factorial ANOVA (type II)" and r.df_resid == 48 and r.n == 54 and r.block is None
    got = {t.term: (t.df, round(t.statistic, 3), round(t.pvalue, 6)) for t in r.terms}
    assert got == {"wool": (1, 3.765, 0.058213), "tension": (2, 8.498, 0.000693),
                   "wool × tension": (2, 4.189, 0.021044)}
    # partial eta squared from R's sums of squares: 1003 / (1003 + 5745) for the interaction
    assert r.terms[2].partial_eta_sq == pytest.approx(1002.8 / (1002.8 + 5745.1), abs=1e-3)
    assert [t.is_interaction for t in r.terms] == [False, False, True]


def _crossing(noise: np.ndarray, seeds: int = 6) -> pd.DataFrame:
    """lr helps with weight decay off and hurts with it on, by the same amount: no main effect of either
    factor, a pure interaction, plus a seed offset and ``noise``."""
    rows = []
    i = 0
    for lr in ("1e-3", "1e-4"):
        for wd in ("0", "1e-4"):
            for seed in range(seeds):
                effect = 0.05 if (lr == "1e-3") == (wd == "0") else -0.05
                rows.append((lr, wd, seed, 0.5 + effect + 0.01 * seed + noise[i]))
                i += 1
    return pd.DataFrame(rows, columns=["lr", "weight_decay", "seed", "mAP"])


def test_a_pure_interaction_is_found_and_the_main_effects_are_not() -> None:
    noise = np.random.default_rng(3).normal(0.0, 0.01, 24)
    r = factorial_anova(_crossing(noise), ["lr", "weight_decay"], value="mAP", block="seed")
    assert r.test == "within-block factorial ANOVA" and r.reason.startswith("the residuals of the factorial "
                                                                             "model look normal")
    lr, wd, both = r.terms
    assert both.term == "lr × weight_decay" and both.pvalue < 1e-4 and both.partial_eta_sq > 0.9
    assert lr.pvalue > 0.05 and wd.pvalue > 0.05
    # each effect against its interaction with the seed: 6 seeds, 1-df effects -> 5 error df each
    assert r.block == "seed" and [t.error_df for t in r.terms] == [5, 5, 5] and np.isnan(r.df_resid)
    unblocked = factorial_anova(_crossing(noise), ["lr", "weight_decay"], value="mAP")
    assert unblocked.df_resid == 20 and unblocked.terms[2].error_df is None
    assert unblocked.terms[2].statistic < both.statistic


def test_heavy_tailed_residuals_switch_to_the_aligned_rank_transform() -> None:
    """Skewed noise (lognormal, as run times and losses often are) breaks normality; the ART still finds
    the interaction, and reading one effect per aligned fit keeps the main effects null."""
    noise = np.random.default_rng(2).lognormal(0.0, 1.5, 24) * 0.02
    r = factorial_anova(_crossing(noise), ["lr", "weight_decay"], value="mAP", block="seed")
    assert r.test == "within-block aligned rank transform ANOVA"
    assert "do not look normal" in r.reason and r.reason.endswith("so a within-block aligned rank "
                                                                  "transform ANOVA")
    lr, wd, both = r.terms
    assert both.pvalue < 0.001 and lr.pvalue > 0.05 and wd.pvalue > 0.05
    forced = factorial_anova(_crossing(noise), ["lr", "weight_decay"], value="mAP", block="seed",
                             parametric=True)
    assert forced.terms[2].pvalue > both.pvalue  # the skewed errors blunt the F test of the raw values


def test_three_factors_give_every_pair_and_skip_missing_values() -> None:
    rng = np.random.default_rng(0)
    rows = [(a, b, c, s, rng.normal()) for a in "xy" for b in "pq" for c in "uvw" for s in range(3)]
    frame = pd.DataFrame(rows, columns=["a", "b", "c", "seed", "value"])
    frame.loc[5, "value"] = np.nan
    r = factorial_anova(frame, ["a", "b", "c"], block="seed", parametric=True)
    assert [t.term for t in r.terms] == ["a", "b", "c", "a × b", "a × c", "b × c"]
    # within-seed: the seed that lost a value leaves (12 cells x the 2 others), counted; with 2 seeds the
    # contrasts' covariance has rank 1, so Greenhouse-Geisser's epsilon is at its floor, 1 / (df)
    assert r.n == 24 and r.dropped_blocks == 1
    assert [t.df for t in r.terms] == pytest.approx([1] * 6) == [t.error_df for t in r.terms]
    unblocked = factorial_anova(frame, ["a", "b", "c"], parametric=True)
    assert unblocked.n == 35 and unblocked.dropped_blocks == 0
    assert [t.df for t in unblocked.terms] == [1, 1, 2, 1, 2, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f[~((f.lr == "1e-3") & (f.weight_decay == "0"))],
         "'lr' and 'weight_decay' are not crossed: 1 of their 4 level combinations"),
        (lambda f: f[f.lr == "1e-3"], "factor 'lr': needs at least 2 levels"),
        (lambda f: f.drop(columns="mAP"), "missing column(s) mAP"),
        (lambda f: f.groupby(["lr", "weight_decay"]).head(1), "no residual degrees of freedom"),
    ],
    ids=["not-crossed", "one-level", "no-column", "one-per-cell"],
)
def test_refused_inputs_say_why(change, message: str) -> None:
    frame = change(_crossing(np.zeros(24)))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        factorial_anova(frame, ["lr", "weight_decay"], value="mAP")
    with pytest.raises(ConfigError, match="at least 2 distinct factors"):
        factorial_anova(_crossing(np.zeros(24)), ["lr"], value="mAP")


def test_equal_values_are_refused_and_float_noise_does_not_rank() -> None:
    """Before, a metric that was 0 in every run (no accuracy lost anywhere) got an ART table of F values:
    the aligned values were floating-point noise, ranked. Equal values are now refused (the report shows
    the reason), and aligned values are rounded before ranking, so an additive design without noise gives
    no interaction F at all rather than a random one."""
    flat = _crossing(np.zeros(24)).assign(mAP=0.0)
    with pytest.raises(ConfigError, match="values: all 24 are equal"):
        factorial_anova(flat, ["lr", "weight_decay"], value="mAP", block="seed")
    additive = flat.assign(
        mAP=0.1 * (flat.lr == "1e-3") + 0.3 * (flat.weight_decay == "0") + 0.01 * flat.seed
    )
    r = factorial_anova(additive, ["lr", "weight_decay"], value="mAP", block="seed")
    assert r.test == "within-block aligned rank transform ANOVA" and "all values equal" in r.reason
    assert np.isnan(r.terms[2].statistic) and np.isnan(r.terms[2].pvalue)


def test_a_factor_that_changes_nothing_has_f_zero_not_rounding_noise() -> None:
    """Every value repeated across the levels of b: b's sum of squares is 0 in exact arithmetic, but the
    fit left ~1e-31, printed as F 1.48e-31 and partial eta squared 4.93e-32 in a report."""
    rng = np.random.default_rng(3)
    rows = []
    for seed in range(4):
        for a, shift in (("x", 0.0), ("y", 1.0), ("z", 0.3)):
            v = shift + 0.1 * seed + rng.normal(0, 0.2)
            rows += [(a, b, seed, v) for b in ("none", "0.5")]
    r = factorial_anova(pd.DataFrame(rows, columns=["a", "b", "seed", "value"]), ["a", "b"], block="seed")
    terms = {t.term: t for t in r.terms}
    assert (terms["b"].statistic, terms["b"].pvalue, terms["b"].partial_eta_sq) == (0.0, 1.0, 0.0)
    assert terms["a"].statistic > 1.0


def _seed_reacts(rng: np.random.Generator, seeds: int = 5) -> pd.DataFrame:
    """No effect of lr or weight decay at all; each seed has an offset and reacts to each learning rate
    in its own way (a seed x lr interaction, as initialisation and data order give), plus noise."""
    rows = []
    for seed in range(seeds):
        base, react = rng.normal(0, 1), {lr: rng.normal(0, 0.5) for lr in ("0.01", "0.001")}
        rows += [(lr, wd, seed, base + react[lr] + rng.normal(0, 0.2))
                 for lr in ("0.01", "0.001") for wd in ("0", "1e-4", "1e-3")]
    return pd.DataFrame(rows, columns=["lr", "weight_decay", "seed", "mAP"])


def test_a_blocked_main_effect_is_the_paired_t_test_of_the_seed_means() -> None:
    """Within seeds, lr's F is the squared paired t of each seed's mean over the weight decays (scipy, an
    independent computation): the seeds are the replicates, not the seed x weight-decay runs."""
    from scipy import stats

    d = _seed_reacts(np.random.default_rng(8))
    r = factorial_anova(d, ["lr", "weight_decay"], value="mAP", block="seed", parametric=True)
    means = d.groupby(["seed", "lr"])["mAP"].mean().unstack("lr")
    t = stats.ttest_rel(means["0.01"], means["0.001"])
    lr = r.terms[0]
    assert (lr.df, lr.error_df) == (1, 4)
    assert lr.statistic == pytest.approx(t.statistic**2) and lr.pvalue == pytest.approx(t.pvalue)


def test_seeds_that_react_differently_do_not_make_a_null_factor_significant() -> None:
    """The rate of false positives on data with no effect stays near the 5 % it claims. Blocking with one
    pooled residual rejected lr in about 30 % of such data sets (the seed's runs under the three weight
    decays counted as three independent pairs)."""
    rng = np.random.default_rng(0)
    rejected = [factorial_anova(_seed_reacts(rng), ["lr", "weight_decay"], value="mAP", block="seed",
                                parametric=True).terms[0].pvalue < 0.05 for _ in range(200)]
    assert np.mean(rejected) < 0.1


def test_a_three_level_effect_is_greenhouse_geisser_corrected() -> None:
    """Seeds whose reaction to the third level varies most: the F test's p is scaled by epsilon, the
    textbook formula on each seed's level means (double-centred covariance), computed here."""
    from scipy import stats

    rng = np.random.default_rng(5)
    rows = []
    for seed in range(6):
        react = rng.normal(0, [0.1, 0.2, 1.5])
        rows += [(lv, b, seed, react[i] + rng.normal(0, 0.1)) for i, lv in enumerate("pqr") for b in "xy"]
    d = pd.DataFrame(rows, columns=["a", "b", "seed", "value"])
    r = factorial_anova(d, ["a", "b"], block="seed", parametric=True)
    means = d.groupby(["seed", "a"])["value"].mean().unstack("a").to_numpy()
    c = np.eye(3) - 1 / 3
    s = c @ np.cov(means, rowvar=False) @ c
    eps = np.trace(s) ** 2 / (2 * np.trace(s @ s))
    a = r.terms[0]
    assert eps < 0.8 and (a.df, a.error_df) == pytest.approx((2 * eps, 10 * eps))
    assert a.pvalue == pytest.approx(stats.f.sf(a.statistic, 2 * eps, 10 * eps))
    assert a.pvalue > stats.f.sf(a.statistic, 2, 10)  # the uncorrected p was smaller
