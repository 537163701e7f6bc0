"""``deltatune report RESULTS``: the statistics of an ablation study as HTML and Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "report"
HELP = "test an ablation study's differences and write an HTML / Markdown report"
DESCRIPTION = (
    "Reads a study's runs (RESULTS: the study file, or its sqlite .db file, or a storage URL with --study) "
    "and reports per metric and level n, mean, sd, median and t CIs of the mean; the test chosen and why "
    "(paired t / Wilcoxon, RM-ANOVA / Friedman + post-hoc, or the unpaired analogues); Holm-corrected "
    "p-values; effect sizes with CIs; equivalence (TOST and a Bayesian signed-rank test with the margin "
    "the study declares); almost stochastic order; the repeats needed for 80 % power; and plots."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune report studies/keyframes.toml",
    "deltatune report studies/keyframes.toml --md keyframes.md -o keyframes.html",
    "deltatune report studies/keyframes.toml --csv keyframes.csv",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="study file (.toml), its sqlite file (.db), or a storage URL")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="HTML",
        help="self-contained HTML report (default: deltatune-results/NAME.html)",
    )
    p.add_argument("--md", default=None, metavar="MD", help="also write Markdown (plots beside it)")
    p.add_argument(
        "--csv",
        default=None,
        metavar="F",
        help="also write every observation as long-form CSV (run, seed, unit, one column per factor, "
        "metric, value): the numbers the tests read, for your own analysis",
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


def run(args: argparse.Namespace) -> int:
    from deltatune._atomic import atomic_write
    from deltatune.ablation.spec import load_study
    from deltatune.ablation.store import default_storage, find_study, load_results
    from deltatune.cli._common import check_output_path
    from deltatune.errors import ConfigError
    from deltatune.report.render import write_report
    from deltatune.search.storage import results_dir

    if not 0 < args.alpha < 1:
        raise ConfigError(f"--alpha {args.alpha}: must be between 0 and 1")
    if args.aso_iterations < 10:
        raise ConfigError(f"--aso-iterations {args.aso_iterations}: need at least 10")
    for option, path, suffixes in (
        ("-o", args.output, (".html", ".htm")),
        ("--md", args.md, (".md", ".markdown")),
        ("--csv", args.csv, (".csv",)),
    ):
        if path:
            check_output_path(path, option, suffixes=suffixes)
    src = args.results
    if src.endswith(".toml"):
        spec = load_study(src)
        url = args.storage or default_storage(spec.name)
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
            raise ConfigError(f"{src}: no results yet at {url}; run `deltatune ablate {src}` first")
        study, stored = find_study(url, spec.name)
    elif "://" in src:
        study, stored = find_study(src, args.study)
    else:
        if not Path(src).is_file():
            raise ConfigError(f"{src}: no such file (give a study .toml, its .db file, or a storage URL)")
        study, stored = find_study(f"sqlite:///{Path(src).resolve()}", args.study)
    html = Path(args.output) if args.output else results_dir() / f"{stored.name}.html"
    md = Path(args.md) if args.md else None
    if not args.output:
        check_output_path(html, "-o", suffixes=(".html", ".htm"))
    results = load_results(study, stored)
    if results.completed_runs == 0:
        raise ConfigError(f"study {stored.name}: no finished runs yet")
    write_report(results, html=html, markdown=md, alpha=args.alpha, aso_iterations=args.aso_iterations)
    if args.csv:
        obs = results.observations
        atomic_write(args.csv, lambda p: obs.to_csv(p, index=False))
    print(
        f"{stored.name}: {results.completed_runs} of {results.expected_runs} runs; report {html}"
        + (f" and {md}" if md else "")
        + (f"; observations {args.csv}" if args.csv else "")
    )
    return 0
