"""Atomic file writes: results appear whole or not at all.

Every writer of results, caches and checkpoints goes through :func:`atomic_write`: the content is written
to a temporary file in the destination's folder (same file system) and moved into place with
``os.replace``; on any failure the temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_all",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_torch_save",
    "atomic_savefig",
    "existing_ancestor",
    "missing_folders",
    "remove_empty_folders",
]


def existing_ancestor(folder: str | Path) -> Path:
    """``folder`` (absolute) if it exists, else the nearest folder above it that does: where a check of
    an output path probes, since the writers here create missing folders only when they write (a refused
    command leaves none behind)."""
    above = Path(folder).absolute()
    while not above.exists() and above != above.parent:
        above = above.parent
    return above


def missing_folders(path: str | Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, innermost first: what writing ``path`` will
    create, and :func:`remove_empty_folders` undoes when the write fails."""
    return [d for d in Path(path).absolute().parents if not d.exists()]


def remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (innermost first, as :func:`missing_folders` lists them) while they are empty;
    stop at the first that is not (something else was written there meanwhile: it stays, and so do the
    folders above it)."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            break


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically (mode 0644). Folders missing
    above ``path`` are made first, and removed again (when still empty) if ``write`` fails."""
    dest = Path(path)
    made = missing_folders(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        try:
            write(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except BaseException:
        remove_empty_folders(made)
        raise
    return dest


def atomic_write_all(
    paths: Sequence[str | Path | None], write: Callable[[list[Path | None]], None]
) -> None:
    """Call ``write(temporaries)``, one temporary per path (``None`` stays ``None``: a file not asked for),
    and move every one into place only when ``write`` returned; when it raised, none is."""

    def nest(rest: Sequence[str | Path | None], tmp: list[Path | None]) -> None:
        if not rest:
            write(tmp)
        elif rest[0] is None:
            nest(rest[1:], [*tmp, None])
        else:
            atomic_write(rest[0], lambda t: nest(rest[1:], [*tmp, t]))

    nest(paths, [])


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    def write(p: Path) -> None:
        p.write_text(text, encoding="utf-8")

    return atomic_write(path, write)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    def write(p: Path) -> None:
        p.write_bytes(data)

    return atomic_write(path, write)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda p: torch.save(obj, p))


def atomic_savefig(fig: Any, path: str | Path, *, dpi: int) -> Path:
    """Save a matplotlib figure to ``path`` atomically, in the format its suffix names (PNG, SVG, PDF ...),
    then close it: a plot is never left half-written where a reader expects a whole one."""
    import matplotlib.pyplot as plt

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        return atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format=fmt))
    finally:
        plt.close(fig)
