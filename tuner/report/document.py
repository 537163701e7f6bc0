"""The content of a study report as a list of format-neutral blocks, figures included.

:func:`build_document` decides *what* the report says, in which order; :mod:`deltatune.report.render` only
decides how a block looks in HTML or Markdown, so that both formats always carry the same content. Figures
are drawn here (matplotlib's Agg backend, ~100 dpi) and kept as PNG bytes.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from deltatune.report._mpl import plain_text, pyplot
from deltatune.report.wording import (
    CONFIDENT_ASO,
    HOW_TO_READ,
    MIN_ASO_RUNS,
    aso_too_few,
    effect_name,
    fmt,
    fmt_eps,
    fmt_p,
    fmt_percent,
    fmt_prob,
    fmt_signed,
    level_name,
    missing_values,
    p_is,
    pair_name,
    point_interval,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from deltatune.ablation.results import AblationResults, MetricSpec
    from deltatune.report.analysis import Analysis, FactorComparison, MetricAnalysis, PairwiseComparison
    from deltatune.stats import Description

__all__ = ["Heading", "Para", "Bullets", "Table", "Figure", "Terms", "Block", "build_document", "DPI"]

#: Resolution of the report's figures: sharp enough on screen, small enough to embed a dozen in one file.
DPI = 100


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    """A paragraph; ``kind`` is ``"p"``, ``"note"`` (secondary) or ``"key"`` (a finding to stand out)."""

    text: str
    kind: str = "p"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG figure; ``name`` is its file name in the Markdown report's image folder."""

    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Terms:
    """A list of (term, explanation) pairs."""

    items: tuple[tuple[str, str], ...]


Block = Heading | Para | Bullets | Table | Figure | Terms


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


@plain_text
def _figure(name: str, caption: str, draw: Callable[[Axes], object], size: tuple[float, float]) -> Figure:
    """Draw on a fresh figure, save it as PNG bytes and close it (figures are never left open)."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=size)
    try:
        draw(ax)
        fig.tight_layout()
        buf = io.BytesIO()
        # "tight": the saved picture grows to hold what is drawn outside the axes (a critical-difference
        # diagram's level names), which tight_layout does not make room for
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)
    return Figure(name=name, png=buf.getvalue(), caption=caption)


def _ci(lo: float, hi: float) -> str:
    return "–" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{fmt(lo)}, {fmt(hi)}]"


def _diff_ci(lo: float, hi: float) -> str:
    """A CI of a difference; one of zero width (every pair, or both constant levels, differ by one
    amount) is no interval: the sentence says "no spread, so neither a t-test nor a t CI is defined"."""
    return "– (no spread)" if point_interval(lo, hi) else _ci(lo, hi)


def _desc_row(d: Description) -> tuple[str, ...]:
    return (str(d.n), fmt(d.mean), fmt(d.sd), fmt(d.median), _ci(d.ci_low, d.ci_high))


_DESC = ("n", "mean", "sd", "median", "95 % CI of mean")
#: The same columns for a ratio (a speed-up): its geometric mean, with the t interval of the logs mapped back.
_DESC_RATIO = ("n", "geometric mean", "sd", "median", "95 % CI (log scale)")
_RATIO_NOTE = ("a speed-up is a ratio: the geometric mean, with an interval from the log values (it stays "
               "above 0)")


def _pair(p: PairwiseComparison) -> str:
    return pair_name(p.factor, p.level, p.baseline)


def _comparison_blocks(
    c: FactorComparison, spec_margin: float | None, omnibus_fig: Figure | None, unit: str, alpha: float
) -> list[Block]:
    out: list[Block] = [Heading(3, f"{c.factor}: {', '.join(c.levels)} (baseline {c.baseline})")]
    if c.paired:
        # a level with no value at all is left out of the blocks (its own note says so), not in them
        absent = [level_name(c.factor, p.level) for p in c.pairwise if min(p.n_a, p.n_b) == 0 and c.n_blocks]
        which = f"every level but {', '.join(absent)}" if absent else "every level"
        out.append(
            Para(
                f"Paired on {c.n_blocks} {c.block_unit or unit}(s) with {which}; {c.n_incomplete} "
                "incomplete block(s) "
                + ("(a run missing a level)" if c.block_unit else
                   "(a unit at one setting of the other factors, missing a level)") + " dropped.",
                "note",
            )
        )
    else:
        out.append(Para("Unpaired: the runs of each level are compared as independent samples.", "note"))
    out += [Para(n, "note") for n in c.notes]
    if c.omnibus_summary:
        out.append(Para(c.omnibus_summary))
    if c.omnibus is not None and not math.isfinite(c.omnibus.pvalue):
        out.append(Para(
            f"No post-hoc p-values or critical-difference diagram: the {c.omnibus.test} statistic is "
            "undefined on these values (nothing to rank or no spread to compare, e.g. every block ties "
            "its levels), and post-hoc tests of it would only print 1.000 everywhere.", "note"))
    elif c.omnibus is not None:
        m = c.omnibus.posthoc
        out.append(
            Table(
                ("post-hoc p", *(level_name(c.factor, v) for v in m.columns)),
                tuple((level_name(c.factor, r), *(fmt_p(v) for v in m.loc[r])) for r in m.index),
                f"{c.omnibus.posthoc_test} post-hoc p-values, adjusted within this metric's level pairs (the "
                "tests below adjust over every comparison of the report, so the same pair can read higher "
                "there)",
            )
        )
    if omnibus_fig is not None:
        out.append(omnibus_fig)
    pws = c.pairwise
    out.append(
        Table(
            ("comparison", "n", "test", "why this test", "statistic", "p (raw)", "p (Holm)", "significant"),
            tuple(
                (
                    _pair(p),
                    f"{p.n_a} vs {p.n_b}" if not p.paired else str(p.n_a),
                    p.test.test,
                    p.test.reason,
                    fmt(p.test.statistic),
                    fmt_p(p.p_raw),
                    fmt_p(p.p_holm),
                    "yes" if p.significant else "no",
                )
                for p in pws
            ),
            "Tests (level vs baseline); Holm over every pairwise comparison of the report",
        )
    )
    effects = tuple(
        (_pair(p), effect_name(e.name, p.paired), fmt(e.value), _ci(e.ci_low, e.ci_high), e.magnitude)
        for p in pws
        for e in p.test.effect_sizes
    )
    if effects:
        out.append(
            Table(("comparison", "effect size", "value", "95 % CI", "magnitude"), effects, "Effect sizes")
        )
    out.append(
        Table(
            ("comparison", "difference (level - baseline)", "95 % CI"),
            tuple((_pair(p), fmt(p.diff), _diff_ci(p.diff_ci_low, p.diff_ci_high)) for p in pws),
            "Mean difference, t CI (paired t or Welch)",
        )
    )
    if spec_margin is not None:
        rows = []
        for p in pws:
            eq, b = p.equivalence, p.bayes
            rows.append(
                (
                    _pair(p),
                    fmt_p(eq.pvalue) if eq else "–",
                    _diff_ci(eq.ci_low, eq.ci_high) if eq else "–",
                    p.equivalence_verdict or "–",
                    fmt_prob(b.p_left) if b else "–",
                    fmt_prob(b.p_rope) if b else "–",
                    fmt_prob(b.p_right) if b else "–",
                )
            )
        out.append(
            Table(
                (
                    "comparison",
                    "TOST p",
                    f"{100 * (1 - 2 * alpha):.3g} % CI of difference",
                    "verdict",
                    "Bayes p_left (diff < -m)",
                    "Bayes p_rope (within ±m)",
                    "Bayes p_right (diff > +m)",
                ),
                tuple(rows),
                f"Equivalence within the margin ±{spec_margin:g} (TOST; Bayesian signed-rank)",
            )
        )
    out.append(
        Table(
            ("comparison", "ASO eps_min", "level almost stochastically better?"),
            tuple(
                (
                    _pair(p),
                    fmt_eps(p.aso.eps_min) if p.aso else "–",
                    ("too few runs" if aso_too_few(p) else
                     "yes" if p.aso.a_dominates and p.aso.eps_min < CONFIDENT_ASO else
                     "better more often than not (not a confident claim)" if p.aso.a_dominates else "no")
                    if p.aso else "–",
                )
                for p in pws
            ),
            "Almost stochastic order (eps_min < 0.5: the level is better more often than not; below 0.2: "
            f"a confident claim, with at least {MIN_ASO_RUNS} runs a level; independent samples, pairing "
            f"ignored{_aso_confidence(pws)})",
        )
    )
    out.append(Bullets(tuple(p.summary for p in pws)))
    out.append(Bullets(tuple(f"{_pair(p)}: {p.power_note}" for p in pws)))
    for p in pws:
        out += [Para(f"{_pair(p)}: {n}", "note") for n in p.notes]
    return out


def _metric_blocks(
    results: AblationResults, m: MetricAnalysis, x: str | None, hue: str | None, alpha: float
) -> list[Block]:
    from deltatune.report.plots import cd_diagram, cd_diagram_size, interaction

    spec = m.spec
    direction = "higher is better" if spec.higher_is_better else "lower is better"
    margin = f", equivalence margin ±{spec.margin:g}" if spec.margin is not None else ""
    out: list[Block] = [Heading(2, f"{spec.label} ({spec.name}; {direction}{margin})")]
    if m.n_missing:
        why = missing_values(m.n_missing, m.n_observations, results.unit_name, from_table=results.from_table)
        out.append(Para(why, "note"))
    obs = results.observations
    d = obs[obs["metric"] == spec.name] if len(obs) else obs
    if len(d):  # the plots draw the values there are (a missing accuracy is NaN)
        d = d[d["value"].notna()]
        if not len(d):
            out.append(Para(f"No {spec.label} value was recorded in any run: nothing to plot or test.",
                            "note"))
    if x is not None and len(d):
        order = results.factors[x]
        for f in (x, *(f for f in results.varied if f != x and f in d.columns)):
            out.append(_level_box(results, spec, f, "" if f == x else f"_{_slug(f)}"))
        if hue is not None:
            out.append(
                _figure(
                    f"interaction_{_slug(spec.name)}.png",
                    f"{spec.label}: {'geometric mean' if spec.ratio else 'mean'} per {x} and {hue} (95 % CI"
                    f"{', log scale' if spec.ratio else ''})",
                    lambda ax: interaction(
                        d, x=x, hue=hue, y="value", order=order, hue_order=results.factors[hue],
                        ratio=spec.ratio, ax=ax,
                    ).set_ylabel(f"{'geometric mean' if spec.ratio else 'mean'} {spec.label}"),
                    (6.5, 4.0),
                )
            )
    out.append(
        Table(
            ("factor", "level", *(_DESC_RATIO if spec.ratio else _DESC)),
            tuple((s.factor, s.level, *_desc_row(s.description)) for s in m.levels),
            (f"Per level: one value per {results.unit_name} (its runs at the other factors' levels averaged)"
             if results.pairing == "unit" else "Per level: one value per run")
            + (f"; {_RATIO_NOTE}" if spec.ratio else ""),
        )
    )
    out += [Para(note, "note") for note in m.levels_notes]
    same = [(s.factor, s.level) for s in m.levels
            if s.description.n >= 2 and s.description.ci_method == "constant"]
    if same:
        several = len({s.factor for s in m.levels}) > 1
        out.append(Para(_constant_levels_note(same, results.unit_name, several), "note"))
    if m.cells:
        out.append(
            Table(
                ("cell", *(_DESC_RATIO if spec.ratio else _DESC)),
                tuple((s.level, *_desc_row(s.description)) for s in m.cells),
                f"Per design cell ({m.cells[0].factor})",
            )
        )
    out += _factorial_blocks(m, results.unit_name, alpha)
    for c in m.comparisons:
        fig = None
        om = c.omnibus
        if om is not None and om.k > 2 and len(om.mean_ranks) > 2 and math.isfinite(om.pvalue):
            # its labels are "level (rank)": a numeric level goes with its factor ("2 (1.67)" read as numbers)
            ranks, posthoc = _named_levels(c.factor, om.mean_ranks, om.posthoc)
            fig = _figure(
                f"cd_{_slug(spec.name)}_{_slug(c.factor)}.png",
                f"Critical-difference diagram of {c.factor} on {spec.label}: mean rank (1 = best); a bar "
                f"joins levels not different at {alpha:g} ({om.posthoc_test})",
                lambda ax, ranks=ranks, posthoc=posthoc: cd_diagram(ranks, posthoc, alpha=alpha, ax=ax),
                cd_diagram_size(list(ranks.index)),
            )
        out += _comparison_blocks(c, spec.margin, fig, results.unit_name, alpha)
    return out


def _named_levels(factor: str, ranks: pd.Series, posthoc: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """``ranks`` and the ``posthoc`` matrix with their levels named as :func:`level_name` names them."""
    def named(v: object) -> str:
        return level_name(factor, v)

    return ranks.rename(index=named), posthoc.rename(index=named, columns=named)


def _level_box(results: AblationResults, spec: MetricSpec, factor: str, suffix: str) -> Figure:
    """The box plot of ``spec``'s values per level of ``factor``: the values the per-level table and the
    tests use (:func:`~deltatune.report.analysis.level_values`), one per unit with a line joining each
    unit's values when the study pairs on its unit, else one per run; the caption says which."""
    from deltatune.report.analysis import level_values
    from deltatune.report.plots import box_strip

    frame = level_values(results, spec.name, factor)
    paired = results.pairing == "unit"
    unit = results.unit_name
    what = (f"one value per {unit} (its runs at the other factors' levels averaged, as the table and tests "
            f"use them), a line joining each {unit}'s values" if paired else "one value per run")
    return _figure(
        f"box_{_slug(spec.name)}{suffix}.png",
        f"{spec.label} per {factor}: box and {what}",
        lambda ax: box_strip(frame, x=factor, y="value", order=results.factors[factor],
                             unit="unit" if paired else None, ax=ax).set_ylabel(spec.label),
        (6.5, 4.0),
    )


def _constant_levels_note(levels: list[tuple[str, str]], unit: str, by_factor: bool) -> str:
    """Why levels (``(factor, level)``) with one value in every run need reading with care: their repeats
    (over ``unit``, the study's repeated unit: a seed, a clip) are copies. ``by_factor``: name each
    level's factor (two factors may share level names)."""
    if by_factor:
        factors = dict.fromkeys(f for f, _ in levels)
        names = "; ".join(f"{f} = " + ", ".join(lv for g, lv in levels if g == f) for f in factors)
    else:
        names = ", ".join(level_name(f, lv) for f, lv in levels)
    these = "these levels" if len(levels) > 1 else "this level"
    return (
        f"{names}: the same value in every run. Changing the {unit} did not change this metric at {these} "
        f"(a deterministic strategy, or an outcome no {unit} moves), so the runs are copies, not "
        "replicates: a zero spread is no evidence of stability, and a test against such a level compares "
        "with one number."
    )


def _factorial_blocks(m: MetricAnalysis, unit: str, alpha: float) -> list[Block]:
    """The factorial ANOVA of a metric (two or more varied factors): one row per main effect and two-way
    interaction, the test and why, and a warning to read cells, not averages, when an interaction is
    significant."""
    from deltatune.stats.factorial import INTERACTION

    if m.factorial is None:
        return [Para(m.factorial_note, "note")] if m.factorial_note else []
    r = m.factorial
    if r.block:
        dropped = (f"; {r.dropped_blocks} {unit}(s) without a value in every cell left out"
                   if r.dropped_blocks else "")
        error = f"each effect tested against its interaction with the {unit} (df: effect, error){dropped}"
    else:
        error = f"residual df = {r.df_resid:g}"
    out: list[Block] = [
        Table(
            ("effect", "df", "F", "p", "partial η²", "significant"),
            tuple(
                (t.term, f"{t.df:.3g}" if t.error_df is None else f"{t.df:.3g}, {t.error_df:.3g}",
                 fmt(t.statistic), fmt_p(t.pvalue), fmt(t.partial_eta_sq),
                 "yes" if t.pvalue < alpha else "no" if math.isfinite(t.pvalue) else "–")
                for t in r.terms
            ),
            f"Factors together: {r.test}, n = {r.n}"
            + (f" observations of {r.n_blocks} {unit}s" if r.n_blocks else "")
            + f", {error}; p not corrected",
        ),
        Para(f"Why: {r.reason}. Each effect is tested with the other factors in the model; an interaction "
             "means one factor's effect depends on another's level.", "note"),
    ]
    if m.factorial_note:  # how the rows were arranged for it
        out.append(Para(m.factorial_note, "note"))
    for t in r.terms:
        if t.is_interaction and t.pvalue < alpha:
            a, b = t.term.split(INTERACTION)
            out.append(Para(
                f"{a} and {b} interact ({p_is(t.pvalue)}): the effect of {a} depends on {b}. The per-level "
                f"tests below average over the other factors' levels; read the per-cell table and the "
                "interaction plot before them.",
                "key",
            ))
    return out


def _cell_mean(m: MetricAnalysis, settings: dict[str, str]) -> float:
    """The mean of ``m``'s design-cell means at ``settings`` (factor -> level), the cells of every other
    factor's levels weighted alike; NaN when a cell is missing or its name cannot be read back."""
    means = []
    for c in m.cells:
        names, levels = c.factor.split(" × "), c.level.split(" / ")
        if len(names) != len(levels):  # a level name with " / " in it: the cell cannot be placed
            return math.nan
        cell = dict(zip(names, levels, strict=True))
        if all(cell.get(f) == lv for f, lv in settings.items()):
            means.append(c.description.mean)
    return float(sum(means) / len(means)) if means and all(map(math.isfinite, means)) else math.nan


def _primary_interactions(
    pc: FactorComparison, m: MetricAnalysis, factors: dict[str, list[str]], alpha: float
) -> list[str]:
    """One sentence per significant interaction of the primary factor in ``m``'s factorial ANOVA, for the
    primary comparison's section: its bullets average over the other factor, and where the effect depends
    on that factor's level the average alone misleads (+25 "on average" can be +0.5 at one level and +50
    at the other). Each level's difference from the baseline is given at every level of the other factor,
    as differences of the design-cell means."""
    from deltatune.stats.factorial import INTERACTION

    if m.factorial is None:
        return []
    out = []
    for t in m.factorial.terms:
        if not (t.is_interaction and t.pvalue < alpha and pc.factor in t.term.split(INTERACTION)):
            continue
        a, b = t.term.split(INTERACTION)
        other = b if a == pc.factor else a
        parts = []
        for p in pc.pairwise:
            diffs = [(v, _cell_mean(m, {pc.factor: p.level, other: v})
                      - _cell_mean(m, {pc.factor: p.baseline, other: v})) for v in factors.get(other, [])]
            at = ", ".join(f"{fmt_signed(d)}{f' {m.spec.label}' if i == 0 else ''} at {other} = {v}"
                           for i, (v, d) in enumerate(diffs))
            parts.append(f"{_pair(p)} {at}")
        out.append(
            f"The effect of {pc.factor} depends on {other} (interaction {p_is(t.pvalue)}, factorial ANOVA "
            f"below): {'; '.join(parts)} (differences of the design-cell means). The comparison above "
            f"averages over {other}'s levels."
        )
    return out


def _speed_blocks(results: AblationResults, a: Analysis, x: str | None) -> list[Block]:
    import pandas as pd

    from deltatune.report.plots import box_strip

    out: list[Block] = [Heading(2, "Measured speed")]
    if not results.timed:
        return [*out, Para("Not timed: the study's speed_repeats is 0.", "note")]
    if not a.speed_runs:
        return [*out, Para("No timing repeats were recorded.", "note")]
    out.append(
        Table(
            ("factor", "level", "n", "geometric mean of run medians", "sd", "median", "95 % CI (log scale)"),
            tuple((s.factor, s.level, *_desc_row(s.description)) for s in a.speed_levels),
            (f"Speed-up (dense / delta time) per level: CI over the runs' medians, one value per "
             f"{results.unit_name} (the mean of its runs' medians)" if results.pairing == "unit" else
             "Speed-up (dense / delta time) per level: CI over the runs' medians") + f"; {_RATIO_NOTE}",
        )
    )
    if x is not None and all(x in r.levels for r in a.speed_runs):
        frame = pd.DataFrame([{x: r.levels[x], "unit": r.unit or r.run, "median speed-up": r.median}
                              for r in a.speed_runs if math.isfinite(r.median)])
        paired = results.pairing == "unit"
        if paired:  # one value per unit, as the table above: a unit's runs at other levels share it
            frame = frame.groupby(["unit", x], as_index=False, sort=False)["median speed-up"].mean()
        what = (f"one value per {results.unit_name} (the mean of its runs' medians, as the table), a line "
                f"joining each {results.unit_name}'s values" if paired else "one value per run")
        out.append(
            _figure(
                "speed.png",
                f"Measured speed-up (median of a run's repeats) by {x}: {what}",
                lambda ax: box_strip(frame, x=x, y="median speed-up", order=results.factors[x],
                                     unit="unit" if paired else None, ax=ax),
                (6.5, 3.6),
            )
        )
    out.append(
        Table(
            ("run", "levels", "repeats", "median speed-up", "CI of the median", "its level"),
            tuple(
                (
                    r.run,
                    ", ".join(f"{k}={v}" for k, v in r.levels.items()),
                    str(r.n_repeats),
                    fmt(r.median),
                    _ci(r.ci_low, r.ci_high),
                    fmt_percent(r.ci_level),
                )
                for r in a.speed_runs
            ),
            "Per run (order-statistic CI of the median, with the level it reaches: [min, max] up to 8 "
            "repeats, below 95 % up to 5)",
        )
    )
    return out


def _fronts_blocks(results: AblationResults, x: str | None) -> list[Block]:
    from deltatune.report.plots import fronts_overlay

    f: pd.DataFrame = results.fronts
    if f is None or f.empty or x is None or x not in f.columns:
        return []
    return [
        Heading(2, "Pareto fronts"),
        _figure(
            "fronts.png",
            f"Pareto front of every run on its tuning frames, coloured by {x} (a marker per level)",
            lambda ax: fronts_overlay(f, hue=x, hue_order=results.factors[x], xlabel=FRONT_LOSS,
                                      ylabel=FRONT_SPEED, ax=ax),
            (7.0, 4.5),
        ),
    ]


#: The axes of a search study's fronts: each trial's accuracy loss and MAC speed-up on the run's tuning
#: frames, as the search scored it (an ablation's searches rank their trials by MACs, not by timing).
FRONT_LOSS = "accuracy loss on tuning frames (PCK or top-1 points)"
FRONT_SPEED = "MAC speedup on tuning frames (dense MACs / delta MACs)"


def _runs_blocks(results: AblationResults, a: Analysis) -> list[Block]:
    rc = a.runs
    line = f"Completed runs: {rc.completed} of {rc.expected} expected"
    if rc.completed < rc.expected:
        line += f" ({rc.expected - rc.completed} missing)"
    if rc.n_missing:
        line += f"; {rc.n_missing} (design cell, {results.unit_name}) pair(s) have no run"
    line += "."
    out: list[Block] = [Heading(2, "Runs"), Para(line, "key")]
    if rc.missing:
        more = f" … and {rc.n_missing - len(rc.missing)} more" if rc.n_missing > len(rc.missing) else ""
        out.append(Para("Missing: " + "; ".join(rc.missing) + more, "note"))
    if rc.runs_per_cell:
        out.append(
            Table(
                (" / ".join(rc.design_factors) or "cell", "runs"),
                tuple((k, str(v)) for k, v in rc.runs_per_cell.items()),
                "Runs per design cell",
            )
        )
    return out


def _provenance_blocks(a: Analysis) -> list[Block]:
    p = a.provenance
    out: list[Block] = [Heading(2, "Provenance")]
    if not p.runs:
        return [*out, Para("No provenance was recorded.", "note")]
    out.append(
        Para(
            f"{p.runs} run(s) on {len(p.hosts)} host(s) ({', '.join(p.hosts) or '–'}), total wall time "
            f"{fmt(p.total_wall_s / 3600.0)} h; {p.retried_runs} run(s) needed a retry."
        )
    )
    out.append(
        Table(
            ("git revision", "runs"), tuple((k, str(v)) for k, v in p.git_revisions.items()), "Git revisions"
        )
    )
    if p.versions:
        out.append(
            Table(
                ("package", "version(s)"),
                tuple((k, ", ".join(v)) for k, v in p.versions.items()),
                "Package versions (more than one version means the runs differ)",
            )
        )
    return out


def _factor_for_plots(results: AblationResults) -> tuple[str | None, str | None]:
    """The x factor (primary, else the first with >= 2 levels) and a second one for interactions."""
    multi = results.varied
    x = results.primary[0] if results.primary and results.primary[0] in results.factors else None
    x = x or (multi[0] if multi else next(iter(results.factors), None))
    hue = next((f for f in multi if f != x), None)
    return x, hue


def build_document(results: AblationResults, analysis: Analysis) -> list[Block]:
    """Every block of the report of ``results`` in order (primary comparison first), figures drawn."""
    from deltatune.report import seed_table

    x, hue = _factor_for_plots(results)
    seed_table_applies = analysis.seed_table is not None
    factors = "; ".join(f"{f}: {', '.join(lv)}" for f, lv in results.factors.items())
    out: list[Block] = [
        Heading(1, f"Ablation study: {results.name}"),
        Para(results.description or "", "p"),
        Para(
            (f"Model {results.model}. " if results.model else "")
            + f"Factors — {factors}. Repeated unit: {results.unit_name} "
            f"(pairing: {results.pairing}). alpha = {analysis.alpha:g}, resampling seed = {analysis.seed}; "
            f"{analysis.family_size} pairwise comparison(s) in the Holm family "
            f"({analysis.n_pairwise} in the report)"
            + (" and the seed's table's tests in a family of their own" if seed_table_applies else "")
            + ".",
            "note",
        ),
    ]
    rc = analysis.runs
    if rc.completed < rc.expected:  # said before any number, not only in the runs section below
        out.insert(1, Para(
            f"Incomplete study: {rc.completed} of {rc.expected} runs finished ({rc.expected - rc.completed} "
            "missing). Every number below is from the finished runs only and can change once the rest "
            "have run.", "key"))
    if results.setup:
        out += [Heading(2, "Setup"), Table(("setting", "value"), tuple(results.setup))]
    out += _runs_blocks(results, analysis)
    if seed_table_applies:
        out += seed_table.seed_table_blocks(results, analysis.seed_table or {}, analysis.alpha)
    pc = analysis.primary
    if pc is None and results.primary is not None:
        f, base, metric = results.primary
        out += [
            Heading(2, f"Primary comparison: {f} on {metric} (baseline {base})"),
            Para(
                "Not available: the factor has fewer than two levels or the metric is not in the study.",
                "note",
            ),
        ]
    if pc is not None:
        pm = next((m for m in analysis.metrics if m.spec.name == pc.metric), None)
        interactions = _primary_interactions(pc, pm, results.factors, analysis.alpha) if pm else []
        out += [
            Heading(2, f"Primary comparison: {pc.factor} on {pc.metric} (baseline {pc.baseline})"),
            Bullets(tuple(p.summary for p in pc.pairwise) or ("no comparison could be made",)),
            *(Para(text, "key") for text in interactions),
        ]
    for m in analysis.metrics:
        out += _metric_blocks(results, m, x, hue, analysis.alpha)
    terms = HOW_TO_READ
    if results.from_table:  # a table of runs records no timing repeats, fronts or provenance
        terms = tuple(t for t in HOW_TO_READ if t[0] != "Measured speed")
    else:
        out += _speed_blocks(results, analysis, x)
        out += _fronts_blocks(results, x)
        out += _provenance_blocks(analysis)
    notes = [*results.notes, *analysis.notes]
    if notes:
        out += [Heading(2, "Notes"), Bullets(tuple(notes))]
    out += [Heading(2, "How to read this report"), Terms(terms)]
    return _unique_figure_names(out)


def _unique_figure_names(blocks: list[Block]) -> list[Block]:
    """``blocks`` with each figure's file name made unique (``box_x.png``, ``box_x-2.png``, ...).

    Names are slugs of metric and factor names, and names that differ only in case or in characters a
    slug drops (``mAP`` and ``map``; ``精度`` and ``损失``, both ``x``) share a slug: without this, the
    Markdown report would write both figures to one file, the second over the first, and link that one
    file from both sections.
    """
    taken: set[str] = set()
    out: list[Block] = []
    for b in blocks:
        if isinstance(b, Figure):
            stem, dot, ext = b.name.rpartition(".")
            name, k = b.name, 1
            while name.lower() in taken:  # case-insensitive, as some file systems compare names
                k += 1
                name = f"{stem}-{k}{dot}{ext}"
            taken.add(name.lower())
            b = b if name == b.name else replace(b, name=name)
        out.append(b)
    return out


def _aso_confidence(pws: Sequence[PairwiseComparison]) -> str:
    """The ASO table's words on its confidence level where it is not deepsig's default 0.95: Bonferroni
    over the study's comparisons."""
    levels = {p.aso.confidence_level for p in pws if p.aso is not None}
    if not levels or levels == {0.95}:
        return ""
    return (f"; confidence level {fmt_percent(max(levels), 4)}, 1 - alpha / m over the study's m comparisons "
            "(Bonferroni)")
