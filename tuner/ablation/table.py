"""Results measured elsewhere, as :class:`~deltatune.ablation.results.AblationResults`: a CSV table.

``deltatune report results.csv`` tests the differences in a table of repeated runs that no deltatune study
produced: a learning-rate sweep trained by another tool, the seeds of a paper's table. Two shapes:

long
    the columns ``metric`` and ``value`` (one row per run and metric), as ``report --csv`` writes them;
    every other column but ``run``, ``seed`` and ``unit`` is a factor.
wide
    one row per run, one column per metric; ``metrics`` or ``factors`` names which columns are which
    (numbers alone cannot tell a learning rate from a score).

The repeated unit is the ``unit`` argument's column, else ``unit`` (a study's repeated unit: a seed or a
clip, in tables ``report --csv`` wrote), else ``seed`` (either in any capitalisation: ``Seed``), else none
(every row its own unit). Runs of
different levels that share a unit are compared pair by pair (``pairing="unit"``), as runs of one seed
are in a study, unless ``paired=False``. A factor's levels are in ascending order when they are all
numbers, else in order of first appearance; the first is the default baseline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from deltatune.ablation.results import (
    OBSERVATION_COLUMNS,
    AblationResults,
    MetricSpec,
    is_speedup_name,
    run_total,
)
from deltatune.ablation.spec import matching_level
from deltatune.errors import ConfigError, missing_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["lower_is_better_by_name", "read_results_table"]

#: Columns of a long table that are not factors.
_LONG_RESERVED = ("run", "seed", "unit", "metric", "value")

#: Words that, in a metric's name, say smaller is better: a loss, an error, a time. Such a metric is read as
#: lower-is-better unless ``higher_is_better`` names it; a table has no other place to say it, and a loss
#: read as higher-is-better turns every "better" and "worse" of its report around.
_LOWER_WORDS = frozenset({
    "loss", "losses", "error", "errors", "err", "latency", "time", "ms", "seconds", "mse", "mae", "rmse",
    "nll", "wer", "cer", "perplexity", "ppl", "runtime", "duration", "wall", "walltime", "sec", "secs",
    "memory", "mem", "mb", "gb", "kb", "bytes", "rss",
})
#: Unit words that say "a time" only at the end of a name of several words (``wall_s``, ``train_h``): alone
#: or inside a name they mean other things.
_LOWER_SUFFIXES = frozenset({"s", "h", "min"})

#: A number written with a decimal comma (``33,93``), as spreadsheets in many locales save it.
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+(?:[eE][+-]?\d+)?\s*")


def lower_is_better_by_name(metric: str) -> bool:
    """Whether ``metric``'s name holds a word of a smaller-is-better quantity (``val_loss``, ``top1 error``,
    ``ms_per_frame``, ``trainTime``, ``runtime``, ``peak_memory_mb``) or ends in a unit of time
    (``wall_s``): its words are split at every character that is not a letter or digit
    and where a lower-case letter meets an upper-case one."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", metric).lower()
    words = [w for w in re.split(r"[^0-9a-z]+", spaced) if w]
    return any(w in _LOWER_WORDS for w in words) or (len(words) > 1 and words[-1] in _LOWER_SUFFIXES)


def read_results_table(
    path: str | Path,
    *,
    metrics: Sequence[str] = (),
    factors: Sequence[str] = (),
    unit: str | None = None,
    lower_is_better: Sequence[str] = (),
    higher_is_better: Sequence[str] = (),
    margins: Mapping[str, float] | None = None,
    baseline: tuple[str, str] | None = None,
    paired: bool = True,
) -> AblationResults:
    """Read a CSV of repeated runs (see the module docstring) for :func:`deltatune.report.write_report`.

    ``metrics``: the metric columns of a wide table, or the metrics of a long one to keep (default: all),
    in report order; the first is the primary metric when ``baseline`` (``(factor, level)``) names the
    comparison the runs were made for. ``lower_is_better`` and ``higher_is_better`` name metrics whose
    direction they set; any other metric is lower-is-better when its name says so (a loss, an error, a
    time: :func:`lower_is_better_by_name`, said in a note), else higher-is-better.
    ``margins``: equivalence margins by metric, in its unit. Every problem is a
    :class:`ConfigError` naming the file and the column.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {missing_file(path)}")
    header, rows, read_notes = _read_csv(path)
    header, rows, dropped = _drop_row_names(path, header, rows)
    if len(set(header)) != len(header):
        twice = next(c for c in header if header.count(c) > 1)
        raise ConfigError(f"{path}: column {twice!r} appears twice")
    table = pd.DataFrame([r for _, r in rows], columns=header, index=[n for n, _ in rows], dtype=str)
    if table.empty:
        raise ConfigError(f"{path}: no rows")
    long = "metric" in table.columns and "value" in table.columns
    unit_col = _unit_column(path, table, unit)
    spellings: dict[str, dict[str, str]] = {}  # per factor, the number spellings read as another's level
    if long:
        obs = _from_long(path, table, unit_col, metrics, factors, spellings)
    else:
        obs = _from_wide(path, table, unit_col, metrics, factors, spellings)
    metric_names = list(dict.fromkeys(metrics)) if metrics else list(dict.fromkeys(obs["metric"]))
    factor_names = [c for c in obs.columns if c not in OBSERVATION_COLUMNS]
    if not factor_names:
        raise ConfigError(f"{path}: no factor column (a column that says which setting each run used)")
    both = next((m for m in lower_is_better if m in higher_is_better), None)
    if both is not None:
        raise ConfigError(f"--lower-is-better and --higher-is-better both name {both!r}; say one")
    for name, group in (
        ("--lower-is-better", lower_is_better),
        ("--higher-is-better", higher_is_better),
        ("--margin", list(margins or {})),
    ):
        for m in group:
            if m not in metric_names:
                raise ConfigError(
                    f"{name} {m}: {path} has no metric {m!r} (metrics: {', '.join(metric_names)})"
                )
    measured = set(obs.loc[obs["value"].astype(float).map(math.isfinite), "metric"])
    empty = [m for m in metric_names if m not in measured]
    if empty:  # a report of it would be every table empty and every test "not tested"
        raise ConfigError(f"{path}: metric {empty[0]!r} has no value in any row (an empty column, or only "
                          "NaN); fill it, or name the metrics to report with --metrics")
    levels = {f: _level_order(list(dict.fromkeys(obs[f]))) for f in factor_names}
    merged = [
        f"factor {f}: {text} is read as the level {level} (the same number)"
        for f, spelt in spellings.items()
        for text, level in spelt.items()
    ]
    primary = None
    if baseline is not None:
        factor, level = baseline
        if factor not in levels:
            raise ConfigError(
                f"--baseline {factor}={level}: {path} has no factor {factor!r} "
                f"(factors: {', '.join(factor_names)})"
            )
        level = matching_level(level, levels[factor])
        if level not in levels[factor]:
            raise ConfigError(
                f"--baseline {factor}={level}: factor {factor} has no level {level!r} "
                f"(levels: {', '.join(levels[factor])})"
            )
        primary = (factor, level, metric_names[0])
    single = [f for f in factor_names if len(levels[f]) < 2]  # a setting every row shares (analysis says so)
    if baseline is not None and baseline[0] in single:
        raise ConfigError(f"--baseline {baseline[0]}={baseline[1]}: factor {baseline[0]} has one level only "
                          f"({levels[baseline[0]][0]}) in {path}: nothing to compare it with")
    if single and len(single) == len(factor_names):
        raise ConfigError(f"{path}: factor {single[0]} has one level only ({levels[single[0]][0]}): nothing "
                          "to compare (a factor needs two levels or more)")
    named = set(lower_is_better) | set(higher_is_better)
    guessed = [m for m in metric_names if m not in named and lower_is_better_by_name(m)]
    nonpositive = obs[obs["value"].astype(float) <= 0].drop_duplicates("metric")  # each metric's first
    first = dict(zip(nonpositive["metric"], nonpositive["value"].astype(float), strict=True))
    # named as a speed-up, but holding a value no ratio of times takes
    not_ratios = {m: first[m] for m in metric_names if m in first and is_speedup_name(m)}
    specs = [
        MetricSpec(m, m, m not in lower_is_better and m not in guessed, (margins or {}).get(m),
                   as_ratio=is_speedup_name(m) and m not in not_ratios)
        for m in metric_names
    ]
    no_ratio = [
        f"{m}: named as a speed-up, but it holds {v:g}, which no ratio of times is (a speed-up is above 0): "
        "summarised as plain numbers (mean and t interval), not by a geometric mean"
        for m, v in not_ratios.items()
    ]
    direction = (
        [f"lower is better for {', '.join(guessed)}, read from the name (--higher-is-better NAME if not)"]
        if guessed
        else []
    )
    unused = [] if long else [c for c in table.columns
                              if c not in {unit_col, "run", *metric_names, *factor_names}]
    left_out = (
        [f"{', '.join(unused)}: neither a factor nor a metric (--factors and --metrics name others), "
         "left out"]
        if unused
        else []
    )
    shared = unit_col is not None and paired and _units_shared(obs, factor_names)
    if shared:
        _check_one_run_per_cell(path, obs, factor_names, unit_col or "unit", wide=not long, unused=unused)
    return AblationResults(
        name=path.stem,
        description=f"Runs read from {path.name}.",
        model="",  # not recorded in a table
        factors=levels,
        pairing="unit" if shared else "none",
        unit_name=unit_col or "row",
        metrics=specs,
        primary=primary,
        observations=obs,
        speed_repeats=pd.DataFrame(
            columns=[*obs.columns[:-2], "observation", "repeat", "dense_ms", "delta_ms", "ratio"]
        ),
        fronts=pd.DataFrame(columns=["run", "seed", "unit", *factor_names, "accuracy_loss", "speedup"]),
        provenance=pd.DataFrame(columns=["run", "git_revision", "versions", "wall_s", "host", "attempt"]),
        expected_runs=run_total(obs),
        from_table=True,
        notes=[*read_notes, *dropped, *merged, *direction, *no_ratio, *left_out,
               *_pairing_notes(unit_col, shared=shared, paired=paired)],
        setup=[("source", str(path)), ("runs", str(run_total(obs)))],
    )


def _level_order(levels: list[str]) -> list[str]:
    """A factor's levels in report order: ascending when every level is a number (a learning-rate sweep
    reads left to right on a plot's axis, and its lines join neighbouring values, whatever order the rows
    came in), else in order of first appearance."""
    try:
        values = [float(v) for v in levels]
    except ValueError:
        return levels
    if not all(math.isfinite(v) for v in values):
        return levels
    return [lv for _, lv in sorted(zip(values, levels, strict=True), key=lambda t: t[0])]


def _pairing_notes(unit_col: str | None, *, shared: bool, paired: bool) -> list[str]:
    if shared or unit_col is None or not paired:
        return []
    return [f"no {unit_col} occurs under two levels of a factor, so runs are compared as independent groups"]


def _drop_row_names(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]]
) -> tuple[list[str], list[tuple[int, list[str]]], list[str]]:
    """Drop the first column when its header is empty and it holds row numbers (``0, 1, 2, ...`` as pandas'
    ``to_csv`` writes its index, ``1, 2, 3, ...`` as R's ``write.csv`` writes row names): it is neither a
    factor nor a metric. Any other column without a name is refused: a report cannot name it."""
    notes: list[str] = []
    if header and header[0] == "":
        cells = [r[0].strip() for _, r in rows]
        for first in (0, 1):
            if cells == [str(first + i) for i in range(len(cells))]:
                header = header[1:]
                rows = [(n, r[1:]) for n, r in rows]
                notes.append("the first column, without a name, holds row numbers and was left out")
                break
    if "" in header:
        raise ConfigError(
            f"{path}: column {header.index('') + 1} has no name in the header line; name it, or drop it"
        )
    return header, rows, notes


def _unit_column(path: Path, table: pd.DataFrame, unit: str | None) -> str | None:
    if unit is not None:
        if unit not in table.columns:
            raise ConfigError(
                f"--unit {unit}: {path} has no column {unit!r} (columns: {', '.join(table.columns)})"
            )
        return unit
    lowered = {str(c).strip().lower(): c for c in reversed(list(table.columns))}  # the first spelling wins
    return next((lowered[c] for c in ("unit", "seed") if c in lowered), None)


#: Cells that mean "missing value" (lower-cased): empty, and how pandas, R, spreadsheets and SQL exports
#: write one. Any other text that is not a number is refused.
MISSING_MARKERS = ("", "nan", "-nan", "na", "n/a", "#n/a", "<na>", "null", "none")


def _numbers(path: Path, column: pd.Series, what: str) -> pd.Series:
    """``column`` as floats; a cell in :data:`MISSING_MARKERS` is a missing value (NaN), any other text
    that is not a number is refused."""
    import pandas as pd

    text = column.str.strip()
    missing = text.str.lower().isin(MISSING_MARKERS)
    values = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = text[~missing & values.isna()]
    if len(bad):
        raise ConfigError(f"{path}: line {bad.index[0]}: {what} {bad.iloc[0]!r} is not a number (leave the "
                          "cell empty, or write NA, for a missing value)")
    infinite = text[values.isin((float("inf"), float("-inf")))]
    if len(infinite):  # a diverged run, say: the table's author decides (an empty cell is a missing value)
        raise ConfigError(
            f"{path}: line {infinite.index[0]}: {what} {infinite.iloc[0]!r} is not a finite number "
            "(leave the cell empty for a missing value)"
        )
    return values.astype(float)


def _filled(path: Path, column: pd.Series, name: str) -> pd.Series:
    """``column`` stripped, or a one-line :class:`ConfigError` naming the first line where it is empty: a
    run without its seed or setting cannot be placed (an empty cell would be a level, or a unit, named
    "")."""
    text = column.str.strip()
    empty = text[text == ""]
    if len(empty):
        raise ConfigError(f"{path}: line {empty.index[0]}: column {name!r} is empty; every run needs its "
                          f"{name} (fill it in, or leave the row out)")
    return text


def _frame(
    path: Path,
    table: pd.DataFrame,
    unit_col: str | None,
    factors: list[str],
    spellings: dict[str, dict[str, str]],
) -> pd.DataFrame:
    """``run``, ``seed``, ``unit`` and factor columns for the rows of ``table``, each number of a factor in
    its first spelling (the others recorded in ``spellings``, by factor)."""
    import pandas as pd

    out = pd.DataFrame(index=table.index)
    if unit_col is not None:
        units = _filled(path, table[unit_col], unit_col)
    else:
        units = pd.Series([str(i) for i in range(len(table))], index=table.index)
    codes = {u: i for i, u in enumerate(dict.fromkeys(units))}
    seeds = pd.to_numeric(units, errors="coerce")
    whole = seeds.notna().all() and (seeds == seeds.round()).all()
    out["seed"] = seeds.astype(int) if whole else units.map(codes)
    out["unit"] = units
    for f in factors:
        column = _filled(path, table[f], f)
        spelt = spellings[f] = number_spellings(column)
        out[f] = column.map(lambda t, m=spelt: m.get(t, t))
    return out


def number_spellings(column: pd.Series) -> dict[str, str]:
    """Texts of a factor column that spell a number already written otherwise, each mapped to the first
    spelling: ``{"1e-3": "0.001"}`` when rows written by different scripts say ``0.001`` and ``1e-3`` for
    one learning rate. Text that is not a number never maps."""
    first: dict[float, str] = {}
    out: dict[str, str] = {}
    for text in dict.fromkeys(column):
        try:
            value = float(text)
        except ValueError:
            continue
        canonical = first.setdefault(value, text)
        if canonical != text:
            out[text] = canonical
    return out


def _from_wide(
    path: Path,
    table: pd.DataFrame,
    unit_col: str | None,
    metrics: Sequence[str],
    factors: Sequence[str],
    spellings: dict[str, dict[str, str]],
) -> pd.DataFrame:
    import pandas as pd

    others = [c for c in table.columns if c not in (unit_col, "run")]
    for option, names in (("--metrics", metrics), ("--factors", factors)):
        for c in names:
            if c not in table.columns:
                raise ConfigError(
                    f"{option} {c}: {path} has no column {c!r} (columns: {', '.join(table.columns)})"
                )
    if not metrics and not factors:
        raise ConfigError(
            f"{path}: one row per run (no 'metric' and 'value' columns): say which columns are metrics "
            f"(--metrics NAME,...) or factors (--factors NAME,...) among {', '.join(others)}"
        )
    metric_cols = list(metrics) or [c for c in others if c not in factors]
    factor_cols = list(factors) or [c for c in others if c not in metrics]
    both = set(metric_cols) & set(factor_cols)
    if both:
        raise ConfigError(f"{path}: column {sorted(both)[0]!r} cannot be a metric and a factor")
    if not metric_cols:
        raise ConfigError(f"{path}: no metric column left besides the factors {', '.join(factor_cols)}")
    base = _frame(path, table, unit_col, factor_cols, spellings)
    lines = [f"line {n}" for n in table.index]  # a run without a name is its line of the file
    base.insert(0, "run", _run_names(path, table) if "run" in table.columns else lines)
    parts = []
    for m in metric_cols:
        part = base.copy()
        part["metric"] = m
        part["value"] = _numbers(path, table[m], f"{m} value")
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _run_names(path: Path, table: pd.DataFrame) -> pd.Series:
    """The ``run`` column, stripped; a blank name is one error naming its line (a row without a run
    would be pooled with every other such row as one run)."""
    run = table["run"].str.strip()
    blank = run[run == ""]
    if len(blank):
        raise ConfigError(f"{path}: line {blank.index[0]}: run: empty; name every run, or leave the column "
                          "out (each row is then a run of its own)")
    return run


def _from_long(
    path: Path,
    table: pd.DataFrame,
    unit_col: str | None,
    metrics: Sequence[str],
    factors: Sequence[str],
    spellings: dict[str, dict[str, str]],
) -> pd.DataFrame:
    factor_cols = list(factors) or [c for c in table.columns if c not in (*_LONG_RESERVED, unit_col)]
    for c in factor_cols:
        if c not in table.columns:
            raise ConfigError(f"--factors {c}: {path} has no column {c!r}")
    base = _frame(path, table, unit_col, factor_cols, spellings)
    if "run" in table.columns:
        run = _run_names(path, table)
    else:  # one run per unit and factor combination
        run = base[["unit", *factor_cols]].astype(str).agg("|".join, axis=1)
    base.insert(0, "run", run)
    base["metric"] = table["metric"].str.strip()
    base["value"] = _numbers(path, table["value"], "value")
    if metrics:
        missing = [m for m in metrics if m not in set(base["metric"])]
        if missing:
            raise ConfigError(f"--metrics {missing[0]}: {path} has no rows of metric {missing[0]!r}")
        base = base[base["metric"].isin(metrics)]
    # a run (a name within its unit) scored on several clips: one value per clip
    dup = base.duplicated(["run", "unit", "metric", *factor_cols])
    if dup.any():
        r = base[dup].iloc[0]
        raise ConfigError(
            f"{path}: run {r['run']!r} has two values of {r['metric']!r} (add a 'run' column "
            "or a factor that tells them apart)"
        )
    return base.reset_index(drop=True)


def _units_shared(obs: pd.DataFrame, factors: list[str]) -> bool:
    """Whether some unit occurs under two levels of some factor (runs can then be paired by unit)."""
    return any((obs.groupby("unit")[f].nunique() > 1).any() for f in factors)


def _check_one_run_per_cell(
    path: Path, obs: pd.DataFrame, factors: list[str], unit_col: str, *, wide: bool,
    unused: Sequence[str] = (),
) -> None:
    """Pairing by unit needs one run per unit and setting: two would leave the pairs ambiguous. In a wide
    table the usual cause is a factor left among the metrics, or left out when ``--metrics`` names the
    metrics (``unused``: the columns read as neither), so the error lists both."""
    runs = obs.drop_duplicates(["run", "unit"])
    dup = runs.duplicated(["unit", *factors])
    if dup.any():
        r = runs[dup].iloc[0]
        cell = ", ".join(f"{f}={r[f]}" for f in factors)
        hint = ""
        if wide:
            read = ", ".join(dict.fromkeys(obs["metric"]))
            also = f"; left out: {', '.join(unused)}" if unused else ""
            hint = f", or name every column that sets a run in --factors (read as metrics: {read}{also})"
        raise ConfigError(
            f"{path}: {unit_col} {r['unit']} has two runs with {cell}: pairing by {unit_col} needs "
            f"one run per unit and setting; pass --unpaired to compare independent groups{hint}"
        )


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], list[str]]:
    """The header, the ``(line number, cells)`` rows and notes of a CSV file: comma, semicolon or tab
    separated (sniffed), UTF-8 with or without a byte-order mark (as spreadsheets save it), blank lines
    skipped. A row with more or fewer cells than the header is refused with its line number. In a
    semicolon-separated file, numbers written with a decimal comma (``33,93``: a spreadsheet in a locale
    whose decimal mark is the comma writes semicolons for that reason) are read with a point, said in a
    note; with commas as separators a comma inside a cell is a quoted text, never a decimal mark."""
    import csv
    import io

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a readable CSV table (not UTF-8 text)") from None
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # one column, or nothing to tell from: plain commas
    lines = [row for row in csv.reader(io.StringIO(text), dialect)]
    numbered = [(i + 1, row) for i, row in enumerate(lines) if any(cell.strip() for cell in row)]
    if not numbered:
        raise ConfigError(f"{path}: not a readable CSV table (empty)")
    header = [c.strip() for c in numbered[0][1]]
    for line, row in numbered[1:]:
        if len(row) != len(header):
            raise ConfigError(f"{path}: line {line}: {len(row)} cells under a header of {len(header)}")
    rows, notes = numbered[1:], []
    if dialect.delimiter == ";":
        commas = sum(1 for _, row in rows for cell in row if _DECIMAL_COMMA.fullmatch(cell))
        if commas:
            rows = [
                (line, [cell.replace(",", ".") if _DECIMAL_COMMA.fullmatch(cell) else cell for cell in row])
                for line, row in rows
            ]
            notes.append(f"{commas} number(s) written with a decimal comma (a semicolon-separated table) "
                         "were read with a decimal point")
    return header, rows, notes
