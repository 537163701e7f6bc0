"""Atomic writes: several files appear together when their writer returns, none when it raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltatune._atomic import atomic_write_all


def test_every_file_appears_when_the_writer_returns_and_none_when_it_raises(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "sub" / "b.txt"
    seen: list[Path | None] = []

    def write(tmp: list[Path | None]) -> None:
        seen.extend(tmp)
        for t, text in zip(tmp, ("one", None, "two"), strict=True):
            if t is not None:
                t.write_text(str(text))
        assert not a.exists() and not b.exists()  # nothing in place while writing

    atomic_write_all([a, None, b], write)
    assert seen[1] is None and [t.parent for t in seen[::2] if t is not None] == [a.parent, b.parent]
    assert (a.read_text(), b.read_text()) == ("one", "two")

    def fail(tmp: list[Path | None]) -> None:
        for t in tmp:
            if t is not None:
                t.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_all([a, b], fail)
    assert (a.read_text(), b.read_text()) == ("one", "two")  # the earlier files, untouched
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.csv", "b.txt"]  # no temporaries
