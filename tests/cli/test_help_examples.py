"""The command lines at the end of every ``--help`` parse with today's options, and the repository files
they name exist: examples that drifted from the code would teach a user errors."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path

import pytest

from deltatune.cli import COMMANDS, EXAMPLES, STUDIES_NOTE, build_parser

ROOT = Path(__file__).resolve().parents[2]


def _commands(example: str) -> list[list[str]]:
    """``deltatune ... && deltatune ...`` -> the argument lists after ``deltatune``."""
    words = shlex.split(example, comments=True)
    out: list[list[str]] = [[]]
    for w in words:
        if w == "&&":
            out.append([])
        else:
            out[-1].append(w)
    assert all(c and c[0] == "deltatune" for c in out), example
    return [c[1:] for c in out]


ALL = [("deltatune", e) for e in EXAMPLES] + [
    (name, e) for name in COMMANDS for e in getattr(importlib.import_module(name), "EXAMPLES", ())
]


@pytest.mark.parametrize(("module", "example"), ALL)
def test_every_example_parses_and_names_files_that_exist(module: str, example: str) -> None:
    parser = build_parser()
    for argv in _commands(example):
        args = parser.parse_args(argv)
        assert module == "deltatune" or module.endswith("." + args.command), (module, example)
        for word in argv:
            if word.startswith("studies/"):
                assert (ROOT / word).is_file(), f"{example}: no {word} in the repository"


def test_every_command_has_examples_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMANDS:
        mod = importlib.import_module(name)
        assert getattr(mod, "EXAMPLES", ()), f"{name} has no EXAMPLES"
        with pytest.raises(SystemExit):
            build_parser().parse_args([mod.NAME, "--help"])
        out = capsys.readouterr().out
        assert "\nexamples:\n  deltatune " + mod.NAME in out, name
        # examples naming the repository's files say so: from another folder they are not there
        assert (STUDIES_NOTE in out) == any("studies/" in e for e in mod.EXAMPLES), name


def test_every_subcommand_action_ends_its_own_help_with_its_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`detect train --help` and `detect eval --help` (and data fetch, list, path) ended with no example,
    where every COMMAND --help ends with its own (README, Commands): now each action's, all of them."""
    import argparse

    for name in COMMANDS:
        mod = importlib.import_module(name)
        command = build_parser(only=mod.NAME)._actions[-1].choices[mod.NAME]  # type: ignore[attr-defined]
        subs = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        for word in (w for a in subs for w in a.choices):
            with pytest.raises(SystemExit):
                build_parser(only=mod.NAME).parse_args([mod.NAME, word, "--help"])
            shown = capsys.readouterr().out.split("\nexamples:\n")
            mine = [e for e in mod.EXAMPLES if e.split()[:3] == ["deltatune", mod.NAME, word]]
            said = shown[1].splitlines()[: len(mine)] if len(shown) == 2 else []
            assert mine and said == [f"  {e}" for e in mine], (mod.NAME, word, shown[1:])


def test_every_subcommand_action_says_what_it_does_in_its_own_help() -> None:
    """`data fetch --help` (and list, path; detect train, eval) printed the options with no line on
    what the action does."""
    import argparse

    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    assert sub.description, f"{parser.prog} {name}"


def _parsers(parser: object) -> list:
    """``parser`` and every parser under it."""
    import argparse

    out = [parser]
    for action in parser._actions:  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _parsers(sub)
    return out


def test_every_option_with_a_default_says_it_in_its_help() -> None:
    """``--help`` is where a user looks up what a run will do: an option whose default it does not state
    (distill's --epochs, --lr, --batch-size did not) hides it."""
    import argparse

    missing = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, [*prefix, name])
            elif (a.option_strings and a.default not in (None, False, [], argparse.SUPPRESS)
                  and not isinstance(a, argparse._HelpAction | argparse._VersionAction)):
                if "default" not in (a.help or "").lower():
                    missing.append(f"{' '.join(prefix)} {a.option_strings[-1]}")

    walk(build_parser(), [])
    assert not missing, missing


@pytest.mark.parametrize(
    "argv", [["--help"], ["report", "--help"], ["--debug", "search", "--help"], ["data", "list"]]
)
def test_help_and_light_commands_import_no_torch(argv: list[str]) -> None:
    """Building the parser gives arguments to the command that runs only: before, every command's
    arguments were built, and several import torch for their defaults, so `deltatune --help` took 1.4 s
    (0.1 s now) and every `report` of a CSV table paid a second for nothing."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom deltatune.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stderr.strip().splitlines()[-1] == "no torch", out.stderr[-2000:]


@pytest.mark.parametrize(("argv", "who", "bad"), [
    (["report", "s.toml", "--format", "md"], "deltatune report", "--format md"),
    (["--debug", "search", "--model", "hrnet", "--nonsense"], "deltatune search", "--nonsense"),
    (["--bogus"], "deltatune", "--bogus"),
])
def test_an_unknown_option_is_refused_by_its_commands_parser(
    argv: list[str], who: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The top-level parser refused it in the top-level's name ("deltatune"), which does not take the
    command's options. Now the command's own parser says it, in one line that points to its --help."""
    from deltatune.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err == f"{who}: error: unrecognized arguments: {bad} (see {who} --help)\n", err


@pytest.mark.parametrize(("argv", "line"), [
    (["search", "--model", "hrnet", "--budget", "abc"],
     "deltatune search: error: argument --budget: invalid float value: 'abc' (see deltatune search --help)"),
    (["export", "--best-under", "abc"],
     "deltatune export: error: argument --best-under: invalid float value: 'abc' "
     "(see deltatune export --help)"),
    (["bench", "--frames"], "deltatune bench: error: argument --frames: expected one argument "
     "(see deltatune bench --help)"),
    (["report", "runs.csv", "--metrics", "acc,acc"], "deltatune report: error: argument --metrics: "
     "'acc,acc': names 'acc' twice (see deltatune report --help)"),
])
def test_a_value_argparse_refuses_is_one_line_not_the_usage_block(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's own refusals (a value of the wrong type, a missing value) printed the command's whole
    usage (18 lines for search) before the one line that says what is wrong; every other bad input is
    that one line."""
    from deltatune.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]
