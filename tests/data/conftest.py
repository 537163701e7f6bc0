"""Fixtures for the data tests: the real sample assets, fetched once (idempotent) into the data dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from deltatune.data import read_frames


@pytest.fixture(scope="session")
def vtest_head(vtest_path: Path) -> list[np.ndarray]:
    """The first 24 decoded frames of vtest."""
    return list(read_frames(vtest_path, count=24))


@pytest.fixture
def tmp_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, carphone_path: Path) -> Path:
    """An isolated $DELTATUNE_DATA holding a verified copy of the carphone asset only."""
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy2(carphone_path, d / carphone_path.name)
    monkeypatch.setenv("DELTATUNE_DATA", str(d))
    return d
