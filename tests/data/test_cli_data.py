"""``deltatune data`` through its own argparse parser (until the lead registers it in deltatune.cli)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from deltatune.cli import data as data_cmd
from deltatune.data.assets import ASSETS
from deltatune.errors import DataFetchError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="deltatune data")
    data_cmd.add_arguments(parser)
    return data_cmd.run(parser.parse_args(argv))


def test_list_json_in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DELTATUNE_DATA", str(tmp_path))
    assert _run(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(ASSETS)
    assert {r["status"] for r in rows} == {"missing"}
    assert all(Path(r["path"]).parent == tmp_path for r in rows)


def test_list_table_shows_present(tmp_data_dir: Path, capsys) -> None:
    assert _run(["list"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("carphone"))
    assert "present" in line and str(tmp_data_dir / "carphone_pristine.mp4") in line
    assert "missing" in next(ln for ln in out.splitlines() if ln.startswith("vtest"))


def test_path(tmp_data_dir: Path, capsys) -> None:
    assert _run(["path", "carphone"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_data_dir / "carphone_pristine.mp4")
    with pytest.raises(DataFetchError, match="deltatune data fetch"):
        _run(["path", "vtest"])


def test_fetch_reports_cached_and_fetched(tmp_data_dir: Path, capsys) -> None:
    assert _run(["fetch", "--only", "carphone", "--no-progress"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[0] == "carphone" and line.endswith("cached") and "0.6 MB" in line
    (tmp_data_dir / "carphone_pristine.mp4").unlink()
    assert _run(["fetch", "--only", "carphone", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().endswith("fetched")
    assert (tmp_data_dir / "carphone_pristine.mp4").exists()


def test_unknown_name_is_rejected_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _run(["path", "nope"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
