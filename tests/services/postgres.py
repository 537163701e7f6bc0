"""A throw-away PostgreSQL server for the tests: Debian's ``postgresql`` package, a fresh cluster in a
temporary folder, a Unix socket only (no TCP port), stopped and removed afterwards.

Missing server or driver: the test skips, except with ``CI=true``, where it fails (CI installs both:
``make test`` installs Debian's postgresql, and the ``postgres`` extra brings psycopg2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the PostgreSQL test: {why}")
    pytest.skip(why)


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield a SQLAlchemy URL of an empty database ``deltatune`` on it."""
    bindir = _bin()
    if bindir is None:
        _unavailable("PostgreSQL server not installed (Debian package postgresql)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("psycopg2 not installed (pip install -e '.[postgres]')")
    root = Path(tempfile.mkdtemp(prefix="deltatune-pg-", dir="/tmp"))
    os.chmod(root, 0o777)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    os.chmod(sock, 0o777)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = "5439"
    run = lambda cmd: subprocess.run(_as_server_user(cmd), check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
        run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(root / "log"),
                "-o",
                f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off",
                "start",
            ]
        )
        run([str(bindir / "createdb"), "-h", str(sock), "-p", port, "-U", "postgres", "deltatune"])
        # the plain scheme users write (README); deltatune picks the installed driver
        yield f"postgresql://postgres@/deltatune?host={sock}&port={port}"
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
