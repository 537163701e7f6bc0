"""The ``deltatune`` command line: one module per subcommand, registered in :data:`COMMANDS`.

Each subcommand module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``,
and may define ``DESCRIPTION`` and ``EXAMPLES`` (command lines shown at the end of its ``--help``; a
test parses every one, so they stay valid). The command parses and validates, calls a typed library
function, and prints its result.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NoReturn

from deltatune import __version__
from deltatune.errors import DeltatuneError

__all__ = ["main", "build_parser", "COMMANDS"]

#: The subcommand modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "deltatune.cli.data",
    "deltatune.cli.models",
    "deltatune.cli.explain",
    "deltatune.cli.inspect",
    "deltatune.cli.search",
    "deltatune.cli.pareto",
    "deltatune.cli.export",
    "deltatune.cli.ablate",
    "deltatune.cli.report",
    "deltatune.cli.bench",
    "deltatune.cli.predict",
    "deltatune.cli.calibrate",
    "deltatune.cli.distill",
    "deltatune.cli.finetune",
    "deltatune.cli.detect",
)


def _load(name: str) -> ModuleType:
    return importlib.import_module(name)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that a refused command line is one line, as every other bad input is:
    ``deltatune search: error: argument --budget: invalid float value: 'abc' (see deltatune search
    --help)``, exit code 2. argparse's own prints the command's whole usage first (18 lines for
    ``search``), which buries the one line that says what is wrong."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that an ``examples:`` epilog keeps its lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


#: Said under examples that name the repository's study and threshold files.
STUDIES_NOTE = "(studies/...: files of the deltatune repository; run those examples from its folder)"


def action_help(parser: argparse.ArgumentParser, examples: tuple[str, ...], action: str) -> dict[str, Any]:
    """The ``add_parser`` arguments that end an action's ``--help`` (``detect train --help``) with the
    command's examples of that action, as every command's ``--help`` ends with its own."""
    words = f"{parser.prog} {action}"  # "deltatune detect train"
    return {"epilog": examples_epilog([e for e in examples if e == words or e.startswith(words + " ")]),
            "formatter_class": _HelpFormatter}


def examples_epilog(examples: tuple[str, ...] | list[str]) -> str | None:
    """The ``examples:`` block of a ``--help`` (``None`` without examples); examples that name
    ``studies/...`` files say where those are."""
    if not examples:
        return None
    note = [STUDIES_NOTE] if any("studies/" in e for e in examples) else []
    return "examples:\n" + "\n".join(f"  {e}" for e in [*examples, *note])


#: The top-level ``--help``'s examples: a first session.
EXAMPLES: tuple[str, ...] = (
    "deltatune data fetch                                  # the offline sample video and weights",
    "deltatune search --model hrnet                        # tune thresholds on the sample (make demo)",
    "deltatune export --study hrnet-tpe-group --best-under 1.0 -o t.json",
    "deltatune bench --model hrnet --thresholds t.json --start 650   # time it on frames no search saw",
    "deltatune ablate studies/keyframes.toml && deltatune report studies/keyframes.toml",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every registered subcommand.

    ``only``: give only that subcommand its arguments (the others are listed with their help and parse
    nothing); ``None``, all of them. :func:`main` builds only the command it runs: several commands'
    arguments import the training code, and with it torch, for their defaults (a second of every
    ``--help`` and every ``report`` that needs none of it)."""
    parser = _Parser(
        prog="deltatune",
        description=(
            "DeltaCNN-style delta inference on CPU: convert, inspect, search thresholds (and fine-tuning "
            "settings), benchmark, and test ablation studies over repeated runs (significance, effect sizes, "
            "equivalence, intervals, plots)."
        ),
        epilog=examples_epilog(EXAMPLES),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deltatune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in COMMANDS:
        mod = _load(modname)
        p = sub.add_parser(
            mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
            epilog=examples_epilog(getattr(mod, "EXAMPLES", ())), formatter_class=_HelpFormatter,
        )
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if only is None or only == mod.NAME:
            mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


def _command_words(args: argparse.Namespace) -> str:
    """The command as its errors name it, as argparse's own do: ``detect train``, ``data path``."""
    action = getattr(args, "action", None) if args.command == "detect" else getattr(args, "data_action", None)
    return f"{args.command} {action}" if isinstance(action, str) else str(args.command)


def _joined_negative_windows(argv: list[str]) -> list[str]:
    """``--window -5,0,100,100`` as ``--window=-5,0,100,100``: argparse takes a value that starts with "-"
    and is not a plain negative number for an option, and answered "expected one argument" instead of
    the window's own error (x, y must be >= 0)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--window" and i + 1 < len(argv) and re.fullmatch(r"-\d[\d.,\s-]*", argv[i + 1]):
            out.append(f"--window={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code (0 ok, 2 bad input, 1 unexpected failure)."""
    argv = _joined_negative_windows(sys.argv[1:] if argv is None else argv)
    # the command is the first word that is not an option (the top-level options take no values)
    parser = build_parser(only=next((a for a in argv if not a.startswith("-")), ""))
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser: its usage line, "deltatune report: error: ..."
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    who = _command_words(args)
    from deltatune._malloc import keep_freed_memory

    keep_freed_memory()  # process-wide allocator setting the sparse kernels need (DELTATUNE_MALLOPT=0: off)
    from deltatune._workers import quiet_storage_threads

    quiet_storage_threads()  # a lost database is said once, by the command, not by a heartbeat thread too
    try:
        with _terminate_as_interrupt():
            return int(args._run(args) or 0)
    except DeltatuneError as exc:
        if debug:  # the traceback too, and the same exit code: --debug does not change what scripts see
            traceback.print_exc()
        print(f"deltatune {who}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deltatune {who}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and friends: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        from deltatune._workers import caused_by_interrupt

        if caused_by_interrupt(exc):  # Optuna's error for an interrupt that landed in its own clean-up
            if debug:
                traceback.print_exc()
            print(f"deltatune {who}: interrupted", file=sys.stderr)
            return 130
        from deltatune.search.storage import storage_failure

        lost = storage_failure(exc)
        if lost is not None:
            if debug:
                traceback.print_exc()
            print(f"deltatune {who}: error: the study's database failed mid-command ({lost}); what "
                  "finished before is kept, and a trial or run left running is failed and run again by the "
                  "next command on that storage: once the database is reachable (and writable), run the "
                  "same command again (--debug shows where it failed)", file=sys.stderr)
            return 1
        disk = _disk_error(exc)
        if disk is None:
            raise
        if debug:
            traceback.print_exc()
        where = f" ({disk.filename})" if disk.filename else ""
        print(f"deltatune {who}: error: {disk.strerror}{where}; what finished before is kept: make "
              "room (or choose a writable place) and run the same command again", file=sys.stderr)
        return 1


#: Errors of the disk rather than of deltatune: a full disk, a quota, a file system gone read-only.
DISK_ERRNOS = frozenset({28, 30, 122})  # ENOSPC, EROFS, EDQUOT


def _disk_error(exc: BaseException) -> OSError | None:
    """The disk error (:data:`DISK_ERRNOS`) that ``exc`` is, or was raised while handling (Optuna's journal
    writer turns a full disk into ``AssertionError: Should not reach``), or ``None``."""
    from deltatune.errors import causes

    disk = (e for e in causes(exc, past_from_none=True) if isinstance(e, OSError) and e.errno in DISK_ERRNOS)
    return next(disk, None)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's time limit) ends a command as Ctrl-C does: the same message, the
    same clean-up (a search marks its running trial failed and says how to finish), instead of dying
    silently with the trial left running. The previous handler is restored after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
