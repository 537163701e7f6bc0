"""The seed experiment's table, filled: average IoU per weight decay, one row per backbone (and the features
the head was trained on), speed per row, and the tests behind the differences.

The seed is a student reproduction of DeltaCNN: Faster R-CNN with a MobileNetV2 backbone trained on a MOT16
pedestrian sequence at 96x96 (Adam, lr 1e-3, batch 8, 10 epochs), scored by average IoU at weight decay
0 / 5e-4 / 0.15 / 1, with FPS on an NVIDIA A10. Its "Classic convolutions" row is :data:`SEED_CLASSIC`;
its "Delta convolutions" row stayed empty. A detection study (kind ``detection``) with a ``backbone``
factor fills that layout from its own runs: each cell is the mean over seeds with a 95 % t CI.

The tests: within every weight-decay column and head-features level, delta vs classic backbone (same
trained detector, paired by seed) on average IoU and on ms/frame; and, for the delta backbone, the head
trained on delta vs on dense features (the seed's point that the head must be trained on delta features).
Each test is :func:`deltatune.stats.compare_two` (paired; t or Wilcoxon by the normality of the
differences), Holm-corrected over the whole table's family.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from deltatune.report.wording import fmt, fmt_p, fmt_signed

if TYPE_CHECKING:
    import pandas as pd

    from deltatune.ablation.results import AblationResults
    from deltatune.report.document import Block

__all__ = ["SEED_CLASSIC", "SEED_FPS", "SEED_SETTING", "applies", "seed_table_blocks", "seed_table_stats"]

#: The seed's "Classic convolutions" average IoU by weight decay (its "Delta convolutions" row was "?").
SEED_CLASSIC: dict[float, float] = {0.0: 0.182, 5e-4: 0.160, 0.15: 0.126, 1.0: 0.123}
#: The seed's classic speed: about 37 FPS on an NVIDIA A10 GPU.
SEED_FPS = 37.0
SEED_SETTING = "MOT16 pedestrians, 96x96, Adam lr 1e-3, batch 8, 10 epochs; NVIDIA A10 GPU; one run per cell"

_BACKBONE = {"classic": "Classic convolutions", "delta": "Delta convolutions"}


def applies(results: AblationResults) -> bool:
    """Whether ``results`` is a detection study the seed's table fits: a backbone factor, average IoU."""
    return "backbone" in results.factors and any(m.name == "avg_iou" for m in results.metrics)


#: The factors the seed's table lays out itself: rows (backbone, head features) and columns (weight decay).
_LAID_OUT = ("backbone", "head_features", "weight_decay")


def _others(results: AblationResults) -> list[str]:
    """The study's other varied factors (a learning rate, a score threshold): each of their settings gets
    rows of its own, since averaging over them would credit a cell with other levels' runs."""
    return [f for f in results.varied if f not in _LAID_OUT]


def _settings(results: AblationResults) -> list[dict[str, str]]:
    """Every combination of :func:`_others`' levels (one empty setting when there are none)."""
    out: list[dict[str, str]] = [{}]
    for f in _others(results):
        out = [{**o, f: lv} for o in out for lv in results.factors[f]]
    return out


def _setting_label(setting: dict[str, str]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in setting.items())


def _rows(results: AblationResults) -> list[tuple[str, dict[str, str]]]:
    """(label, factor levels) per table row: backbone x head features (when that is a factor) x every
    setting of the other varied factors."""
    heads = results.factors.get("head_features", [])
    one_head = _one_head(results) if len(heads) <= 1 else None
    out = []
    for setting in _settings(results):
        extra = f", {_setting_label(setting)}" if setting else ""
        for b in results.factors["backbone"]:
            name = _BACKBONE.get(b, b) + (f", head on {one_head} features" if one_head else "")
            if len(heads) > 1:
                out += [(f"{name}, head on {h} features{extra}",
                         {"backbone": b, "head_features": h, **setting}) for h in heads]  # fmt: skip
            else:
                out.append((f"{name}{extra}", {"backbone": b, **setting}))
    return out


def _one_head(results: AblationResults) -> str | None:
    """The features every run's head was trained on when that is not varied (a one-level factor, or
    ``[fixed]``), so that each row says it as the rows of a study that varies it do."""
    levels = results.factors.get("head_features") or []
    if len(levels) == 1:
        return str(levels[0])
    return next((str(v) for k, v in results.setup if k == "head_features"), None)


def _values(obs: pd.DataFrame, metric: str, levels: dict[str, str]) -> pd.Series:
    """The metric's values at ``levels``, one per repeated unit (seed), indexed by unit."""
    d = obs[obs["metric"] == metric]
    for k, v in levels.items():
        d = d[d[k] == v]
    return d.groupby("unit")["value"].mean()


def _summary(values: pd.Series) -> dict[str, Any]:
    """``n``, mean and 95 % t interval of one cell's values (one per seed); NaN where too few."""
    from deltatune.stats import describe

    v = values.dropna()
    if len(v) < 2:
        return {"n": len(v), "mean": float(v.iloc[0]) if len(v) else math.nan,
                "ci_low": math.nan, "ci_high": math.nan}  # fmt: skip
    d = describe(v.to_numpy())
    return {"n": len(v), "mean": d.mean, "ci_low": d.ci_low, "ci_high": d.ci_high}


def _cell_text(c: dict[str, Any]) -> str:
    if c["n"] == 0:
        return "–"
    if c["n"] == 1:
        return f"{fmt(c['mean'])} (n=1)"
    return f"{fmt(c['mean'])} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"


def _seed_value(level: str) -> float | None:
    try:
        x = float(level)
    except ValueError:
        return None
    return next((v for k, v in SEED_CLASSIC.items() if math.isclose(k, x)), None)


def _columns(results: AblationResults, metric: str) -> list[tuple[str, dict[str, str]]]:
    """(heading, levels) of the table's value columns: one per weight decay, else the metric's label."""
    wds = results.factors.get("weight_decay")
    name = next(m.label for m in results.metrics if m.name == metric)
    return [(name, {})] if not wds else [(f"wd {w}", {"weight_decay": w}) for w in wds]


def _stat_rows(results: AblationResults) -> list[dict[str, Any]]:
    """Every row of the tables: its label, levels and cells (value metrics per column; speed per row)."""
    obs = results.observations
    value_metrics = [m for m in ("avg_iou", "map50") if any(s.name == m for s in results.metrics)]
    out = []
    for label, levels in _rows(results):
        cells = [{"metric": m, "column": heading, **_summary(_values(obs, m, {**levels, **c}))}
                 for m in value_metrics for heading, c in _columns(results, m)]  # fmt: skip
        cells += [{"metric": m, "column": "all", **_summary(_values(obs, m, levels))}
                  for m in ("ms_per_frame", "fps") if any(s.name == m for s in results.metrics)]  # fmt: skip
        out.append({"row": label, "levels": levels, "cells": cells})
    return out


def _table(results: AblationResults, stats: dict[str, Any], metric: str, *, seed_row: bool) -> Block:
    from deltatune.report.document import Table

    wds = results.factors.get("weight_decay")
    name = next(m.label for m in results.metrics if m.name == metric)
    cols = _columns(results, metric)
    headers = ("", *(c for c, _ in cols), "ms/frame", "FPS")
    rows: list[tuple[str, ...]] = []
    if seed_row and wds and any(_seed_value(w) is not None for w in wds):
        seeds = [_seed_value(w) for w in wds]
        rows.append(("Seed: classic convolutions", *(fmt(v) if v is not None else "–" for v in seeds),
                     "–", f"about {SEED_FPS:.0f}"))  # fmt: skip
    empty = {"n": 0}
    for r in stats["rows"]:
        at = {(c["metric"], c["column"]): c for c in r["cells"]}
        rows.append((r["row"], *(_cell_text(at.get((metric, h), empty)) for h, _ in cols),
                     _cell_text(at.get(("ms_per_frame", "all"), empty)),
                     _cell_text(at.get(("fps", "all"), empty))))  # fmt: skip
    per_row = " over every weight decay of the row" if wds and len(wds) > 1 else ""
    tested = "" if metric == "avg_iou" else "; not tested below (the tests are on average IoU and ms/frame)"
    caption = (f"{name}: mean over {results.unit_name}s [95 % CI]; ms/frame and FPS{per_row} (a detector "
               "trained with another weight decay can run at another speed: its tests below are per weight "
               f"decay); FPS is the mean of the runs' frames per second, not 1000 / the mean ms{tested}")
    return Table(headers, tuple(rows), caption)


def _tests(results: AblationResults, seed: int, alpha: float) -> list[dict[str, Any]]:
    """Every comparison of the table (module docstring), before the Holm correction."""
    import pandas as pd

    from deltatune.stats import compare_two

    obs = results.observations
    backbones = results.factors["backbone"]
    heads = results.factors.get("head_features", [None])
    wds = results.factors.get("weight_decay", [None])
    pairs: list[tuple[str, dict[str, str], dict[str, str], str]] = []
    for setting in _settings(results):
        extra = f", {_setting_label(setting)}" if setting else ""
        for w in wds:
            at = {**setting} if w is None else {**setting, "weight_decay": w}
            for h in heads:
                hh = {} if h is None else {"head_features": h}
                if "classic" in backbones and "delta" in backbones:
                    for metric in ("avg_iou", "ms_per_frame"):
                        what = "delta vs classic backbone" + (f", head on {h} features" if h else "") + extra
                        pairs.append((what, {**at, **hh, "backbone": "delta"},
                                      {**at, **hh, "backbone": "classic"}, metric))  # fmt: skip
            if "delta" in backbones and {"dense", "delta"} <= set(heads):
                pairs.append((f"delta backbone: head on delta vs on dense features{extra}",
                              {**at, "backbone": "delta", "head_features": "delta"},
                              {**at, "backbone": "delta", "head_features": "dense"}, "avg_iou"))  # fmt: skip
    out = []
    for what, a_lv, b_lv, metric in pairs:
        both = pd.concat([_values(obs, metric, a_lv), _values(obs, metric, b_lv)], axis=1, join="inner")
        matched = both.dropna().to_numpy()  # seeds with both levels measured
        # levels: the compared cell, baseline: the one it is compared with (each a factor -> level dict)
        row: dict[str, Any] = {"what": what, "weight_decay": a_lv.get("weight_decay", "all"),
                               "metric": metric, "n": len(matched), "levels": a_lv,
                               "baseline": b_lv}  # fmt: skip
        if len(matched) >= 2:
            r = compare_two(matched[:, 0], matched[:, 1], paired=True, seed=seed, alpha=alpha)
            row |= {"diff": r.mean_difference, "test": r.test, "p": r.pvalue}
        else:
            row |= {"diff": math.nan, "test": "too few pairs", "p": math.nan}
        out.append(row)
    return out


def seed_table_stats(results: AblationResults, seed: int = 0, alpha: float = 0.05) -> dict[str, Any] | None:
    """The seed's table as numbers (``None`` when it does not :func:`apply <applies>`): ``rows`` (label,
    levels, cells: metric, column, n, mean, 95 % CI) and ``tests`` (each with its Holm p over the table's
    own family and ``significant``), as the report shows them and ``report --json`` writes them."""
    from deltatune.stats import holm

    if not applies(results):
        return None
    tests = _tests(results, seed, alpha)
    for t, p in zip(tests, holm([t["p"] for t in tests]) if tests else [], strict=True):
        t |= {"p_holm": p, "significant": bool(p < alpha)}
    family = sum(math.isfinite(t["p"]) for t in tests)
    return {"rows": _stat_rows(results), "tests": tests, "family_size": family}


def seed_table_blocks(results: AblationResults, stats: dict[str, Any], alpha: float = 0.05) -> list[Block]:
    """The seed's table (average IoU and mAP@0.5) from :func:`seed_table_stats`, a figure, and the
    Holm-corrected tests."""
    import pandas as pd

    from deltatune.report.document import Heading, Para, Table, _figure
    from deltatune.report.plots import interaction

    wds = results.factors.get("weight_decay") or []
    columns = "one column per weight decay" if wds else "weight decay is not a factor of this study"
    if _others(results):
        columns += "; one set of rows per setting of " + ", ".join(_others(results))
    seed_row = (f" The seed's own classic row ({SEED_SETTING}) is given for reference; its data, resolution, "
                "hardware and number of runs differ from this study's, so compare the rows of this study "
                "with each other, and the seed's row only in shape."
                if any(_seed_value(w) is not None for w in wds) else "")
    out: list[Block] = [
        Heading(2, "The seed experiment's table"),
        Para(f"Rows as in the seed's table (classic and delta convolutions); {columns}.{seed_row}", "note"),
        _table(results, stats, "avg_iou", seed_row=True),
    ]
    if any(m.name == "map50" for m in results.metrics):
        out.append(_table(results, stats, "map50", seed_row=False))
    obs = results.observations
    if "weight_decay" in results.factors:
        d = obs[obs["metric"] == "avg_iou"].copy()
        rows = _rows(results)
        d["row"] = [next(lbl for lbl, lv in rows if all(r[k] == v for k, v in lv.items()))
                    for _, r in d.iterrows()]  # fmt: skip
        order = results.factors["weight_decay"]
        seed_values = [_seed_value(w) for w in order]

        def draw(ax: Any) -> None:
            interaction(d, x="weight_decay", hue="row", y="value", order=order, ax=ax)
            if all(v is not None for v in seed_values):
                ax.plot(range(len(order)), seed_values, "k--", marker="x", label="seed: classic (its data)")
                ax.legend(fontsize="small")
            ax.set_ylabel("average IoU (mean over seeds)")

        out.append(
            _figure(
                "seed_table.png",
                "Average IoU by weight decay, one line per row of the table (mean, 95 % CI over seeds); "
                "dashed: the seed's classic row, on its own data",
                draw,
                (7.0, 4.0),
            )
        )
    tests = stats["tests"]
    if tests:
        frame = pd.DataFrame(tests)
        out.append(
            Table(
                ("comparison", "weight decay", "metric", "pairs", "mean difference", "test", "p", "Holm p"),
                tuple(
                    (
                        r.what,
                        str(r.weight_decay),
                        r.metric,
                        str(r.n),
                        fmt_signed(r.diff),
                        r.test,
                        fmt_p(r.p),
                        fmt_p(r.p_holm) + (" *" if r.significant else ""),
                    )  # fmt: skip
                    for r in frame.itertuples()
                ),
                f"Paired by seed; Holm-corrected over these {stats['family_size']} tests "
                f"(* : Holm p < {alpha:g}), a "
                "family of their own: the report's other comparisons are corrected over theirs, so the same "
                "question can pass one correction and not the other. "
                "The mean difference is the first level minus the second.",
            )
        )
    return out
