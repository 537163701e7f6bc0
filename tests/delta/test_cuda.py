"""The delta engine on a CUDA device: exact against dense PyTorch and against the reference backend, on
every zoo model, real vtest frames, at thresholds 0 and at the documented settings; and ``deltatune bench
--device cuda`` end to end.

Run with ``pytest -m cuda`` on a machine with an NVIDIA GPU; everywhere else the CUDA tests skip, saying
why. The same exactness checks also run on the CPU with the compiled kernels switched off, for three
models (one of each family with its own code paths: HRNet, MobileNetV2, BlazePose): the plain-torch
paths that CUDA tensors always take are then checked on real models by every CPU test run too.

A GPU machine without PyAV (the video decoder) can point ``DELTATUNE_VTEST_FRAMES`` at an image folder
named ``vtest`` holding the sample's frames as PNG files (lossless, so the same pixels)::

    python benchmarks/export_frames.py vtest --count 40 --out DIR/vtest

TF32 is switched off for these checks: with it, cuDNN's fp32 convolutions round their inputs to 10-bit
mantissas, so two mathematically equal computations (dense, and the sum of per-frame deltas) differ by
~1e-3 for reasons that have nothing to do with the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deltatune.delta import convert, native
from deltatune.delta.calibration import Calibration
from deltatune.delta.sparse import SparseBackend
from deltatune.inspection import max_relative_error
from deltatune.workload import load_workload
from tests.delta.zoo import ZOO, documented, worst_against_reference

NO_CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason=f"no CUDA device (torch {torch.__version__})"
)

FRAMES = 6
#: Checked on the CPU's plain-torch paths too (slow there: the gathered convs are not compiled).
PLAIN_TORCH = {("hrnet", "default"), ("mobilenet_v2", "default"), ("blazepose", "default")}
CASES = [
    pytest.param("cuda", n, w, marks=[pytest.mark.cuda, NO_CUDA], id=f"cuda-{n}-{w}") for n, w in ZOO
] + [
    pytest.param("cpu", n, w, marks=pytest.mark.slow, id=f"cpu-torch-{n}-{w}")
    for n, w in ZOO
    if (n, w) in PLAIN_TORCH
]


@pytest.fixture(scope="module")
def vtest_source(request: pytest.FixtureRequest) -> Path:
    """The vtest sample: ``$DELTATUNE_VTEST_FRAMES`` (an image folder of its frames) when set, else the
    fetched video."""
    folder = os.environ.get("DELTATUNE_VTEST_FRAMES")
    return Path(folder) if folder else request.getfixturevalue("vtest_path")


@pytest.fixture(autouse=True)
def no_tf32():
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.fixture
def torch_paths(request: pytest.FixtureRequest):
    """The compiled CPU kernels switched off for a ``cpu`` case (CUDA never uses them)."""
    if request.node.callspec.params["device"] == "cpu":
        with native.use_kernels(None):
            yield
    else:
        yield


def _workload(name: str, weights: str | None, source: Path, device: str):
    torch.manual_seed(0)
    wl = load_workload(name, weights=weights, video=source, frames=FRAMES)
    # [T, 3 streams, C, H, W]: the three windows as one batch
    return wl.model.to(device), wl.frames.to(device)


def _worst_against_dense(model, clip, backend: SparseBackend) -> float:
    """Largest relative error, frame by frame, of ``model`` converted at thresholds 0 with ``backend``
    (dense refresh off: every frame goes through the delta graph) against ``model`` itself."""
    net = convert(model, thresholds=0.0, backend=backend, record_stats=False, dense_refresh=None)
    assert next(net.parameters()).device == next(model.parameters()).device
    worst = 0.0
    with torch.no_grad():
        for x in clip:
            y = net(x)
            assert y.device == x.device
            worst = max(worst, max_relative_error(y, model(x)))
    return worst


@pytest.mark.parametrize(("device", "name", "weights"), CASES)
def test_delta_equals_dense_at_zero_on_cuda(device, name, weights, vtest_source, torch_paths) -> None:
    """Thresholds 0, the sparse backend (its plain-torch paths on CUDA) forced onto its gathered sparse
    kernel for every supported conv, the exact dense refresh off so that every frame goes through the
    delta graph: every frame equals the dense model's output."""
    model, clip = _workload(name, weights, vtest_source, device)
    assert next(model.parameters()).device.type == device
    assert device != "cpu" or not native.available()  # the cpu case: the plain-torch paths only
    backend = SparseBackend(break_even=1.0, calibration=Calibration(None))
    worst = _worst_against_dense(model, clip, backend)
    assert worst <= 1e-4, worst
    assert sum(u.sparse for u in backend.usage.values()) > 0  # the gathered sparse path ran on the GPU


@pytest.mark.parametrize(("device", "name", "weights"), CASES)
def test_sparse_equals_reference_at_documented_setting_on_cuda(
    device, name, weights, vtest_source, torch_paths
) -> None:
    """At the documented setting (truncation active), the sparse backend's mix of sparse and dense
    convs equals the reference backend (dense convs over the deltas) frame by frame."""
    model, clip = _workload(name, weights, vtest_source, device)
    backend = SparseBackend(break_even=0.5, calibration=Calibration(None))
    worst = worst_against_reference(model, clip, documented(name, weights), backend)
    assert worst <= 1e-4, worst
    used = backend.usage.values()
    assert sum(u.calls for u in used) > sum(u.skipped for u in used)  # convs ran, not only skipped


@pytest.mark.slow
def test_kernels_built_but_not_taken_stay_exact(vtest_source) -> None:
    """On a GPU machine with a C++ compiler the CPU kernels build, so ``native.available()`` is true (the
    backend keeps channels-last activations and masked buffers) while every CUDA tensor takes the
    plain-torch paths. float64 CPU tensors are in exactly that position (the kernels take float32 only),
    so this runs that mix here: thresholds 0 on the gathered path, and the documented setting against
    the reference backend, both exact."""
    if not native.available():
        pytest.skip("the compiled CPU kernels are unavailable here")
    model, clip = _workload("hrnet", "default", vtest_source, "cpu")
    model, clip = model.double(), clip[:4].double()
    backend = SparseBackend(break_even=1.0, calibration=Calibration(None))
    worst = _worst_against_dense(model, clip, backend)
    assert worst <= 1e-9, worst
    assert sum(u.sparse for u in backend.usage.values()) > 0
    backend = SparseBackend(break_even=0.5, calibration=Calibration(None))
    worst = worst_against_reference(model, clip, documented("hrnet", "default"), backend)
    assert worst <= 1e-9, worst


@pytest.mark.cuda
@NO_CUDA
def test_bench_on_cuda_end_to_end(vtest_source, tmp_path) -> None:
    """``deltatune bench --device cuda``: both networks on the GPU, fp16 dense beside the fp32 baseline,
    a CUDA calibration table of its own, the CPU's untouched."""
    env = {**os.environ, "DELTATUNE_DATA": str(tmp_path)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "deltatune",
            "bench",
            "--model",
            "hrnet",
            "--weights",
            "none",
            "--video",
            str(vtest_source),
            "--frames",
            "4",
            "--batch",
            "3",
            "--repeats",
            "1",
            "--device",
            "cuda",
            "--threshold",
            "0.05",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["device"].startswith("cuda") and r["batch"] == 3
    assert r["dense_ms"] > 0 and r["delta_ms"] > 0 and r["dense_fp16_ms"] > 0
    assert r["dense_fp16_ms"] == min(r["dense_fp16_nchw_ms"], r["dense_fp16_channels_last_ms"])
    cals = sorted(p.name for p in (tmp_path / "calibration").iterdir())
    assert cals and all("_cuda_torch-" in c for c in cals), cals
