"""The compiled CPU kernels (``csrc/delta_cpu.cpp``): built on first use, cached, optional.

The sparse backend's speed on CPU comes from fusing each delta op's per-pixel work (mask dilation,
gather -> GEMM -> scatter, the truncation step) into one compiled call instead of a dozen torch ops,
each with its own dispatch cost. The extension is compiled with ``torch.utils.cpp_extension`` the first
time it is needed (about 20-60 s; needs a C++ compiler, present on the machines this project targets)
into ``<data dir>/build/<torch version>/`` and loaded from there afterwards.

Everything works without it: :func:`kernels` returns ``None`` when the build fails or is disabled
(``DELTATUNE_NATIVE=0``), and callers take their plain-torch path (the same results, slower). Tensors on
other devices (CUDA) always take the torch path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from deltatune._malloc import MALLOPT_ENV, keep_freed_memory  # noqa: F401 - documented here

__all__ = [
    "kernels",
    "use_kernels",
    "compile_kernels",
    "cpu_flags",
    "available",
    "disabled",
    "native_for",
    "build_dir",
    "keep_freed_memory",
    "NATIVE_ENV",
    "MALLOPT_ENV",
]

log = logging.getLogger(__name__)

#: Set to ``0`` to never build or use the compiled kernels.
NATIVE_ENV = "DELTATUNE_NATIVE"

_SOURCE = Path(__file__).with_name("csrc") / "delta_cpu.cpp"
_lock = threading.Lock()
_state: dict[str, ModuleType | None] = {}


def build_dir() -> Path:
    """Where the extension is built and cached (per torch version)."""
    from deltatune.data.assets import data_dir

    return data_dir() / "build" / f"torch-{torch.__version__}_{_cpu_tag()}".replace("+", "_")


def cpu_flags() -> frozenset[str]:
    """This CPU's instruction-set flags (``/proc/cpuinfo``; empty where there is none): what
    ``-march=native`` builds the kernels for, e.g. whether their packed GEMM is AVX2 or AVX-512."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(f for ln in lines if ln.startswith("flags") for f in ln.split(":", 1)[1].split())


def _cpu_tag() -> str:
    """A short hash of this CPU's model and instruction-set flags: the kernels are built with
    ``-march=native``, so a build must never be loaded on a different CPU."""
    import hashlib
    import platform

    info = platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        info += "".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        info += platform.processor()
    return hashlib.sha256(info.encode()).hexdigest()[:10]


#: A build lock older than this (seconds) belongs to a build that was killed (a build takes about a
#: minute); torch would wait for it forever.
STALE_LOCK_S = 600.0


def clear_stale_lock(directory: Path, *, max_age_s: float = STALE_LOCK_S) -> bool:
    """Remove ``directory/lock`` when it is older than ``max_age_s``; returns whether it did.

    ``torch.utils.cpp_extension`` serialises builds with a lock file that only the building process
    removes: after a process was killed mid-build (Ctrl-C, ``kill``, a CI timeout) every later process
    would wait on it forever."""
    import time

    lock = directory / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return False
    if age <= max_age_s:
        return False
    log.warning("removing the build lock %s left by a killed build %.0f s ago", lock, age)
    lock.unlink(missing_ok=True)
    return True


_CFLAGS = ("-O3", "-march=native", "-fopenmp")
_LDFLAGS = ("-fopenmp",)


def build_stamp(source: Path, name: str) -> str:
    """What a finished build of ``source`` as ``name`` was made from (source text, flags, torch, CPU):
    written beside the library after a build, so that a later process whose stamp matches imports the
    library directly, without torch's build lock."""
    import hashlib

    what = "|".join(
        [source.read_text(encoding="utf-8"), name, *_CFLAGS, *_LDFLAGS, torch.__version__, _cpu_tag()]
    )
    return hashlib.sha256(what.encode()).hexdigest()[:20]


def wait_for_build_lock(directory: Path, *, max_age_s: float = STALE_LOCK_S, poll_s: float = 0.5) -> None:
    """Wait while another process builds in ``directory`` (its ``lock`` file exists), at most until the
    lock is ``max_age_s`` old; a lock that old is a killed build's, and is removed (torch itself would
    wait on it forever)."""
    import time

    while (directory / "lock").exists() and not clear_stale_lock(directory, max_age_s=max_age_s):
        time.sleep(poll_s)


def _import_built(name: str, library: Path) -> ModuleType:
    """Import an already built extension library (what ``torch.utils.cpp_extension.load`` does after
    its build step)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, library)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {library}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_kernels(source: Path, name: str, directory: Path) -> ModuleType:
    """Compile (or load the cached build of) a kernels source file as the extension module ``name`` in
    ``directory``, with the flags this project builds with (``-O3 -march=native``, OpenMP). Raises on
    failure. :func:`kernels` builds ``csrc/delta_cpu.cpp`` with it; ``benchmarks/kernels_ab.py`` builds an
    older revision of that file beside it.

    A build whose stamp (:func:`build_stamp`) matches is imported directly. Only a real build goes through
    ``torch.utils.cpp_extension.load``, whose lock file outlives a killed holder: with every process
    taking it just to load the library, killing any of them at that moment (a CI timeout, ``kill -9`` of
    a search's workers) left a lock that blocked every later process for good."""
    from torch.utils.cpp_extension import load

    directory.mkdir(parents=True, exist_ok=True)
    stamp, stamp_file, library = (
        build_stamp(source, name),
        directory / f"{name}.stamp",
        directory / f"{name}.so",
    )
    if library.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        try:
            return _import_built(name, library)
        except ImportError as exc:  # a damaged library: build again
            log.warning("cached kernels %s do not import (%s); rebuilding", library, exc)
    wait_for_build_lock(directory)
    module = load(
        name=name,
        sources=[str(source)],
        build_directory=str(directory),
        extra_cflags=list(_CFLAGS),
        extra_ldflags=list(_LDFLAGS),
        verbose=False,
    )
    from deltatune._atomic import atomic_write_text

    atomic_write_text(stamp_file, stamp + "\n")
    return module


def disabled() -> bool:
    """Whether ``DELTATUNE_NATIVE`` switches the compiled kernels off (``0``, ``false``, ``no``, ``off``)."""
    return os.environ.get(NATIVE_ENV, "1").strip().lower() in {"0", "false", "no", "off"}


def _build() -> ModuleType | None:
    if disabled():
        return None
    try:
        return compile_kernels(_SOURCE, "deltatune_cpu", build_dir())
    except Exception as exc:  # noqa: BLE001 - any build failure means "use the torch path"
        log.warning(
            "compiled CPU kernels unavailable (%s: %s); using the slower plain-torch path",
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )
        return None


def kernels() -> ModuleType | None:
    """The compiled kernel module, building it on first call; ``None`` when unavailable."""
    if "mod" not in _state:
        with _lock:
            if "mod" not in _state:
                _state["mod"] = _build()
    return _state["mod"]


@contextlib.contextmanager
def use_kernels(module: ModuleType | None) -> Iterator[None]:
    """Within the block, :func:`kernels` returns ``module`` (another build of ``csrc/delta_cpu.cpp`` with
    the same functions, or ``None`` for the plain-torch paths) instead of this process's build.

    Why: a kernel change is judged by timing both builds on the same network in one process, in
    interleaved rounds (``benchmarks/kernels_ab.py``); building two networks or two processes would time
    two machines' moods. Not thread-safe: nothing else may run the engine meanwhile."""
    with _lock:
        had, before = "mod" in _state, _state.get("mod")
        _state["mod"] = module
    try:
        yield
    finally:
        with _lock:
            if had:
                _state["mod"] = before
            else:
                _state.pop("mod", None)


def available() -> bool:
    """Whether the compiled kernels can be used in this process."""
    return kernels() is not None


def native_for(*tensors: torch.Tensor) -> ModuleType | None:
    """The compiled kernels if every tensor is a float32 (or bool mask) CPU tensor, their only supported
    case; else ``None`` (the caller's plain-torch path handles other devices and dtypes)."""
    for t in tensors:  # is_cpu: no device object per check (this runs ~1,000 times a frame)
        if not t.is_cpu or (t.dtype is not torch.float32 and t.dtype is not torch.bool):
            return None
    return kernels()
