"""``deltatune report RESULTS``: the statistics of an ablation study as HTML and Markdown."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deltatune.ablation.results import AblationResults
    from deltatune.ablation.spec import StudySpec

NAME = "report"
HELP = "test an ablation study's differences and write an HTML / Markdown report"
DESCRIPTION = (
    "Reads a study's runs (RESULTS: the study file, or its sqlite .db file, or a storage URL with --study) "
    "and reports per metric and level n, mean, sd, median and t CIs of the mean; the test chosen and why "
    "(paired t / Wilcoxon, RM-ANOVA / Friedman + post-hoc, or the unpaired analogues); Holm-corrected "
    "p-values; effect sizes with CIs; equivalence (TOST and a Bayesian signed-rank test with the margin "
    "the study declares); almost stochastic order; the repeats needed for 80 % power; and plots. "
    "RESULTS may also be a CSV table of runs made elsewhere (a sweep trained by another tool): long, with "
    "'metric' and 'value' columns as --csv writes them, or one row per run with --metrics or --factors "
    "saying which columns are which; runs that share a seed (--unit) are compared pair by pair."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune report studies/keyframes.toml",
    "deltatune report studies/keyframes.toml --md keyframes.md -o keyframes.html",
    "deltatune report studies/keyframes.toml --csv keyframes.csv",
    "deltatune report studies/keyframes.toml --json keyframes-stats.json",
    "deltatune report sweep.csv --factors lr,weight_decay --unit seed --baseline lr=0.01 --margin mAP=0.5",
    "deltatune report sweep.csv --metrics mAP,avg_iou,loss --lower-is-better loss",
)


#: The kinds of quantity that a metric's name marks as lower-is-better
#: (:func:`deltatune.ablation.table.lower_is_better_by_name`), as this help and the README list them: one
#: list, so that the help cannot leave out a kind the table reader reads so (it left out memory). Kept here,
#: not beside the words, because ``report --help`` must not import the ablation package (and torch).
LOWER_KINDS = ("loss", "error", "time", "memory")


def lower_kinds_text() -> str:
    """:data:`LOWER_KINDS` as words of a sentence: ``"loss, error, time or memory"``."""
    return f"{', '.join(LOWER_KINDS[:-1])} or {LOWER_KINDS[-1]}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="?", default=None,
                   help="study file (.toml), its sqlite file (.db), a storage URL, or a CSV table (left out "
                        "with --storage URL: the study in that storage)")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="the report: self-contained HTML (.html), or Markdown with its plots beside it (.md) "
        "(default: beside the file the runs are read from, named after it: X.html for X.db or X.csv, "
        "X-STUDY.html where X.db's study is named otherwise, and a study file's beside its database; "
        "PostgreSQL: deltatune-results/STUDY.html or $DELTATUNE_RESULTS; a file there is replaced only when "
        "it is a deltatune report)",
    )
    p.add_argument("--md", default=None, metavar="MD", help="also write Markdown (plots beside it)")
    p.add_argument(
        "--csv",
        default=None,
        metavar="F",
        help="also write every observation as long-form CSV (run, seed, unit, one column per factor, "
        "metric, value): the numbers the tests read, for your own analysis",
    )
    p.add_argument(
        "--json",
        default=None,
        metavar="F",
        help="also write every statistic of the report as JSON (per metric and level the summaries; per "
        "comparison the test and why, raw and Holm p, the difference and its CI, effect sizes with CIs, "
        "equivalence, almost stochastic order, power); '-' prints it instead of the summary line",
    )
    p.add_argument("--storage", default=None, metavar="URL", help="with a study file: where its runs are")
    p.add_argument("--study", default=None, help="with a storage URL holding several studies: which one")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--aso-iterations",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap iterations of the almost-stochastic-order test (default 1000; about 0.1 s "
        "per comparison)",
    )
    table = p.add_argument_group("a CSV table of runs (RESULTS ending in .csv)")
    table.add_argument("--metrics", type=_names, default=[], metavar="A,B",
                       help="metric columns of a one-row-per-run table (the rest are factors), or the "
                       "metrics of a long table to report; the first is the primary one")
    table.add_argument("--factors", type=_names, default=[], metavar="A,B",
                       help="factor columns of a one-row-per-run table (the rest are metrics)")
    table.add_argument("--unit", default=None, metavar="COL",
                       help="the repeated unit's column (default: unit, else seed, else every row its own)")
    table.add_argument("--lower-is-better", type=_names, default=[], metavar="A,B",
                       help="metrics where smaller is better (default: higher is better, except a metric "
                       f"whose name says {lower_kinds_text()}: lower, said in a note)")
    table.add_argument("--higher-is-better", type=_names, default=[], metavar="A,B",
                       help="metrics where larger is better, whatever their names say")
    table.add_argument("--margin", action="append", default=[], metavar="METRIC=X",
                       help="equivalence margin of a metric, in its unit (repeatable): differences within "
                       "+-X count as practically equivalent (TOST, Bayesian ROPE)")
    table.add_argument("--baseline", default=None, metavar="FACTOR=LEVEL",
                       help="the comparison the runs were made for: every level of FACTOR against LEVEL on "
                       "the first metric (default: no primary comparison; each factor's levels are tested "
                       "against its first level, the smallest number of a numeric factor)")
    table.add_argument("--unpaired", action="store_true",
                       help="compare runs as independent groups even where they share a unit")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated column names")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: names {twice!r} twice")
    return names


_TABLE_OPTIONS = ("metrics", "factors", "unit", "lower_is_better", "higher_is_better", "margin", "baseline",
                  "unpaired")


def _table_results(args: argparse.Namespace) -> AblationResults:
    """``args.results`` read as a CSV table of runs, with the table options."""
    from deltatune.ablation.table import read_results_table
    from deltatune.errors import ConfigError

    margins: dict[str, float] = {}
    for item in args.margin:
        name, _, value = item.partition("=")
        try:
            margins[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--margin {item}: write METRIC=X with X a number") from None
        if not (math.isfinite(margins[name.strip()]) and margins[name.strip()] > 0):  # inf: all equivalent
            raise ConfigError(f"--margin {item}: the margin must be a finite number > 0")
    baseline = None
    if args.baseline is not None:
        factor, sep, level = args.baseline.partition("=")
        if not sep or not factor.strip() or not level.strip():
            raise ConfigError(f"--baseline {args.baseline}: write FACTOR=LEVEL")
        baseline = (factor.strip(), level.strip())
    return read_results_table(
        args.results, metrics=args.metrics, factors=args.factors, unit=args.unit,
        lower_is_better=args.lower_is_better, higher_is_better=args.higher_is_better, margins=margins,
        baseline=baseline, paired=not args.unpaired,
    )


def run(args: argparse.Namespace) -> int:
    from deltatune.ablation.spec import load_study, results_reader
    from deltatune.ablation.store import default_storage, find_study, load_results
    from deltatune.cli._common import check_output_path
    from deltatune.errors import ConfigError, missing_file
    from deltatune.search.storage import shown_url, sqlite_file, url_scheme

    if not 0 < args.alpha < 1:
        raise ConfigError(f"--alpha {args.alpha}: must be between 0 and 1")
    if args.aso_iterations < 10:
        raise ConfigError(f"--aso-iterations {args.aso_iterations}: need at least 10")
    for option, path, suffixes in (
        ("-o", args.output, (".html", ".htm", ".md", ".markdown")),
        ("--md", args.md, (".md", ".markdown")),
        ("--csv", args.csv, (".csv",)),
        ("--json", None if args.json == "-" else args.json, (".json",)),
    ):
        if path:
            check_output_path(path, option, suffixes=suffixes)
    if args.output and args.md and Path(args.output).suffix.lower() in (".md", ".markdown"):
        raise ConfigError(f"-o {args.output}: is a Markdown report already; leave out --md {args.md}")
    src = args.results
    if src is None:  # `report --storage URL --study NAME`, as the synopsis reads: the storage is the source
        if args.storage is None:
            raise ConfigError("give the results to report: a study file (.toml), its .db file, a storage URL "
                              "(or --storage URL), or a CSV table")
        src, args.results, args.storage = args.storage, args.storage, None
    if src.lower().endswith(".csv"):
        for option, value in (("--study", args.study), ("--storage", args.storage)):
            if value is not None:
                raise ConfigError(f"{option} {value}: applies to a study's results (a study file, its .db "
                                  f"file or a storage URL); {src} is a CSV table")
        if args.csv and Path(args.csv).resolve() == Path(src).resolve():
            raise ConfigError(f"--csv {args.csv}: that is the table being read; name another file")
        results = _table_results(args)
        # how the table was read: said before the report, not only in it (on stderr under `--json -`)
        for note in results.notes:
            print(f"note: {note}", file=sys.stderr if args.json == "-" else sys.stdout)
        return _write(args, results, f"{results.name}: {results.completed_runs} runs", Path(src))
    used = [o for o in _TABLE_OPTIONS if getattr(args, o) not in (None, [], False)]
    if used:
        raise ConfigError(f"--{used[0].replace('_', '-')}: applies to a CSV table of runs; {src} is a study")
    if src.endswith(".toml"):
        spec = load_study(src)
        if args.study is not None and args.study != spec.name:
            raise ConfigError(f"--study {args.study}: {src} names its study ({spec.name}); leave out --study")
        url = args.storage or default_storage(spec.name)
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
            hint = _where_results_are(src, spec.name, args)
            raise ConfigError(f"{src}: no results yet at {shown_url(url)}; {hint}")
        study, stored = find_study(url, spec.name)
        stored = _file_or_stored(src, spec, stored, url)
        db = sqlite_file(url) if url_scheme(url) == "sqlite" else None
    elif "://" in src:
        study, stored = find_study(src, args.study)
        db = sqlite_file(src) if url_scheme(src) == "sqlite" else None
    else:
        what = "give a study .toml, its .db file, a storage URL or a CSV table"
        if not Path(src).is_file():
            raise ConfigError(f"{src}: {missing_file(src)} ({what})")
        if Path(src).suffix.lower() == ".journal":  # a search's storage (report reads .csv and .db)
            what_it_is, command = results_reader(src) or ("", "")
            raise ConfigError(f"{src}: is {what_it_is}, not an ablation study; `{command}` shows it ({what})")
        with open(src, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise ConfigError(f"{src}: not an sqlite database ({what})")
        study, stored = find_study(f"sqlite:///{Path(src).resolve()}", args.study)
        db = Path(src)
    results = load_results(study, stored)
    if results.completed_runs == 0:
        raise ConfigError(f"study {stored.name}: no finished runs yet")
    what = f"{stored.name}: {results.completed_runs} of {results.expected_runs} runs"
    return _write(args, results, what, db)


def _file_or_stored(src: str, spec: StudySpec, stored: StudySpec, url: str) -> StudySpec:
    """The design a study file's report reads: the file's own, whose report settings (description, metrics,
    primary comparison, equivalence margins, pairing) then apply, when its runs are the stored ones or
    more (levels, seeds or segments added: they count as expected, not yet run). A file whose runs
    measure something else, or fewer of them, is refused: its report would silently show the stored
    runs under the file's name (``report`` of the database itself shows them as they were run)."""
    from deltatune.errors import ConfigError
    from deltatune.search.storage import shown_url, sqlite_file, url_scheme

    if spec.fingerprint() == stored.fingerprint() or spec.extends(stored):
        return spec
    changed = "; ".join(spec.differences(stored)) or "model, data, fixed settings, or runs taken away"
    db = sqlite_file(url) if url_scheme(url) == "sqlite" else url
    raise ConfigError(
        f"{src}: its design is not the one its runs in {shown_url(url)} were made with: {changed}; "
        f"restore the file, or report the runs as they were made with `deltatune report {db}`"
    )


def _where_results_are(src: str, name: str, args: argparse.Namespace) -> str:
    """What to do when a study's default store does not exist: it lives in the folder ``ablate`` ran in
    (``deltatune-results/``, or ``$DELTATUNE_RESULTS``), so name a store beside the study file if there is
    one, else say how the folder is found."""
    from deltatune.search.storage import shown_url

    if args.storage is not None:
        return f"run `deltatune ablate {src} --storage {shown_url(args.storage)}` first"
    beside = (Path(src).parent / "deltatune-results" / f"{name}.db").resolve()
    if beside.is_file():
        return f"there is one beside the study file: add --storage sqlite:///{beside}"
    return (f"run `deltatune ablate {src}` first (results are kept in deltatune-results/ of the folder it "
            "runs in, or $DELTATUNE_RESULTS: run report from that folder, or pass --storage)")


def default_report_path(name: str, source: Path | None) -> Path:
    """Where ``report`` writes without ``-o``: beside the file the runs are read from (the study's sqlite
    file, the CSV table), named after it (``X.db`` -> ``X.html``), with the study's ``name`` added where the
    file is named otherwise (``X-STUDY.html``: two studies of one file, or copies of one study's file, get
    reports of their own); for a storage that is no file (PostgreSQL), ``NAME.html`` in the results folder
    (:func:`~deltatune.search.storage.results_dir`). Not the working directory's results folder whatever
    the file: ``report ~/runs/x.db`` from anywhere wrote ``./deltatune-results/x.html``."""
    from deltatune.search.storage import results_dir

    if source is None:
        return results_dir() / f"{name}.html"
    stem = source.stem
    return source.with_name(f"{stem if stem == name else f'{stem}-{name}'}.html")


#: What the head of an HTML report of ours holds (its generator tag; reports from before the tag, their
#: title): a file at the default report path is replaced only when it is one.
_REPORT_MARKS = (b'<meta name="generator" content="deltatune report">', b"<title>Ablation study: ")


def _check_default_output(out: Path) -> None:
    """Refuse the default report path, before any work, where writing it would destroy something the user
    did not name: a folder, or a file that is not a report of ours; or where it cannot be written. Each in
    one line that says to give ``-o``."""
    from deltatune.cli._common import check_output_path
    from deltatune.errors import ConfigError

    where = f"{out} (the report's default path, beside its runs)"
    if out.is_dir():
        raise ConfigError(f"{where}: is a folder; name the report with -o FILE")
    if out.is_file():
        try:
            with open(out, "rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot be read ({exc.strerror}); name the report with -o FILE") \
                from None
        if not any(mark in head for mark in _REPORT_MARKS):
            raise ConfigError(f"{where}: exists and is not a deltatune report; name the report with -o FILE")
    try:
        check_output_path(out, "report", suffixes=(".html", ".htm"))
    except ConfigError as exc:
        raise ConfigError(f"{exc}; name the report with -o FILE") from None


def _write(args: argparse.Namespace, results: AblationResults, what: str, source: Path | None) -> int:
    """Write the report (the observations too with ``--csv``, the statistics with ``--json``); say where.
    ``source``: the file the runs were read from (an sqlite file, a CSV table), where the report goes
    without ``-o`` (:func:`default_report_path`); ``None`` for a storage that is no file."""
    from deltatune._atomic import atomic_write, atomic_write_text
    from deltatune.cli._common import json_text
    from deltatune.report.render import write_report

    out = Path(args.output) if args.output else default_report_path(results.name, source)
    if not args.output:
        _check_default_output(out)
    md = Path(args.md) if args.md else None
    html: Path | None = out
    if out.suffix.lower() in (".md", ".markdown"):
        html, md = None, out
    analysis = write_report(
        results, html=html, markdown=md, alpha=args.alpha, aso_iterations=args.aso_iterations
    )
    if args.csv:
        obs = results.observations
        atomic_write(args.csv, lambda p: obs.to_csv(p, index=False))
    if args.json == "-":
        print(json_text(analysis.to_dict()))
        return 0
    if args.json:
        atomic_write_text(args.json, json_text(analysis.to_dict()) + "\n")
    written = " and ".join(str(p) for p in (html, md) if p is not None)
    print(
        f"{what}; report {written}"
        + (f"; observations {args.csv}" if args.csv else "")
        + (f"; statistics {args.json}" if args.json else "")
    )
    return 0
