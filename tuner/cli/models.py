"""``deltatune models``: list the model zoo with input size, outputs, dense MACs, weights and provenance."""

from __future__ import annotations

import argparse
import sys

from deltatune.cli._common import json_text

NAME = "models"
HELP = "list the registered models (input size, outputs, dense GMACs, weights status, provenance)"
DESCRIPTION = (
    "List every registered model. Dense MACs are counted over Conv2d, ConvTranspose2d and Linear layers "
    "for one frame at the model's input size. Weights: 'available' (default weights fetched), "
    "'not fetched' (run `deltatune data fetch`), or 'none' (pass an official checkpoint with --weights "
    "FILE). Your own models join the list when $DELTATUNE_MODELS names the files (or modules) that "
    "register them, separated by ':', or when an installed package declares them under the "
    "'deltatune.models' entry-point group (README, Your own model)."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune models",
    "deltatune models --all --json",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--json`` and ``--all``."""
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    parser.add_argument("--all", action="store_true", help="include tiny test-only variants")


def collect(*, include_tiny: bool = False, errors: list[str] | None = None) -> list[dict[str, object]]:
    """One JSON-able record per registered model (``name``, ``input_size``, ``outputs``, ``macs``, ...).

    With ``errors``, a model whose card its network cannot take (a user's family) is left out and its
    one-line error appended there, so one broken model does not hide the others; without, it raises."""
    from deltatune.errors import DeltatuneError
    from deltatune_models import list_models, model_info

    records = []
    for name in list_models(include_tiny=include_tiny):
        try:
            info = model_info(name)
        except DeltatuneError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
            continue
        record = info.to_dict()
        record["gmacs"] = round(info.gmacs, 3)
        records.append(record)
    return records


def _table(records: list[dict[str, object]]) -> str:
    header = ("name", "task", "input", "outputs", "GMACs", "colour", "weights", "provenance")
    rows = [
        (
            str(r["name"]),
            str(r["task"]),
            "x".join(str(v) for v in r["input_size"]),  # type: ignore[attr-defined]
            str(r["outputs"]),
            f"{r['gmacs']:.2f}",
            "gray" if r["in_channels"] == 1 else str(r["color_order"]),
            str(r["weights"]),
            str(r["provenance"]),
        )
        for r in records
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    widths[-1] = 0  # provenance is last and long: no padding
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the model list as a table or JSON; exit code 0, or 2 when a model could not be described."""
    errors: list[str] = []
    records = collect(include_tiny=bool(args.all), errors=errors)
    if args.json:
        print(json_text(records))
    else:
        print(_table(records))
    for e in errors:  # the others are listed; each broken one is a line, and the exit code says so
        print(f"deltatune models: error: {e}", file=sys.stderr)
    return 2 if errors else 0
