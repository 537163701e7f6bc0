"""Re-verify the documented threshold settings in ``studies/thresholds/`` on the evaluation workload.

For every ``<model>.json`` thresholds file in the folder (``deltatune-thresholds/1`` format), this runs the
same frames that ``deltatune bench --model <model> --frames 40 --batch 3`` runs: the vtest sample, the
model's three crop windows as three streams in one batch of 3, 40 frames (frame 0 dense). It reports the
MAC speedup over frames 1..39 and the accuracy loss against the dense model's own outputs on the same frames
(PCK@0.2 points over the present dense keypoints for pose models, with the every-keypoint loss beside it;
top-1 disagreement points for classifiers), computed exactly as
:func:`deltatune.bench.run_bench` computes them: :func:`~deltatune.workload.load_workload`,
:func:`~deltatune.delta.convert`, ``DeltaNetwork.load_thresholds``, ``DeltaNetwork.mac_speedup`` and
:func:`~deltatune.bench.accuracy_loss`. MACs only, no timing; the reference backend by default. One thread.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/threshold_settings.py [--dir studies/thresholds]
[--models hrnet,blazepose] [--frames 40] [--batch 3] [--backend reference] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from deltatune.bench import accuracy_loss
from deltatune.delta import DeltaNetwork, convert
from deltatune.delta.thresholds import ThresholdSpec
from deltatune.workload import Workload, load_workload

__all__ = ["Verification", "DenseRun", "dense_run", "verify", "verify_file", "main"]

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "studies" / "thresholds"
DEFAULT_FRAMES = 40
DEFAULT_BATCH = 3
DEFAULT_BUDGET = 1.0


@dataclass(frozen=True)
class Verification:
    """The verified numbers of one threshold setting on one workload."""

    model: str
    file: str | None
    weights: str
    random_weights: bool
    frames: int
    batch: int
    backend: str
    mac_speedup: float
    metric: str
    accuracy_loss: float
    budget: float
    accuracy_loss_all_joints: float | None = None
    #: whether the file records these weights' fingerprint (None: it records none, or no file)
    weights_match: bool | None = None

    @property
    def ok(self) -> bool:
        """Whether the accuracy loss is within the budget."""
        return self.accuracy_loss <= self.budget

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


@dataclass
class DenseRun:
    """A loaded workload (the clip cut to ``batch`` streams), its delta network and the dense outputs."""

    workload: Workload
    clip: torch.Tensor  # [T, batch, 3, H, W]
    net: DeltaNetwork
    dense_out: list[Any]
    backend: str


def dense_run(model: str, *, frames: int = DEFAULT_FRAMES, batch: int = DEFAULT_BATCH,
              weights: str = "default", backend: str = "reference") -> DenseRun:
    """Load ``model``'s vtest workload, convert it once and record the dense outputs of every frame.

    The network can then score many threshold settings with :func:`verify` (each run resets it).
    """
    wl = load_workload(model, weights=weights, frames=frames)
    if batch > wl.n_streams:
        raise ValueError(f"batch {batch} exceeds the {wl.n_streams} crop windows of the video")
    clip = wl.frames[:, :batch].contiguous()
    net = convert(wl.model, thresholds=0.0, backend=backend)
    with torch.no_grad():
        dense_out = [wl.model(x) for x in clip]
    return DenseRun(wl, clip, net, dense_out, backend)


def verify(run: DenseRun, *, thresholds: ThresholdSpec | None = None, file: str | Path | None = None,
           budget: float = DEFAULT_BUDGET) -> Verification:
    """Score one threshold setting (a thresholds ``file``, or a spec passed to ``set_thresholds``).

    Mirrors ``run_bench``'s profiled pass: reset, stats on, every frame through the delta network, MAC
    speedup over frames 1..T-1 and accuracy loss of frames 1..T-1 against the dense outputs.
    """
    net = run.net
    match = None
    if file is not None:
        recorded = net.load_thresholds(file).weights
        match = None if recorded is None else recorded == net.weights_fingerprint
    elif thresholds is not None:
        net.set_thresholds(thresholds)
    with torch.no_grad():
        net.stats.clear()
        net.stats.enabled = True
        net.reset()
        delta_out = [net(x) for x in run.clip]
        speedup = net.mac_speedup()
    wl = run.workload
    acc = accuracy_loss(wl.info.task, run.dense_out[1:], delta_out[1:],
                        min_confidence=wl.info.present_confidence)
    return Verification(
        model=wl.model_name, file=None if file is None else str(file), weights=wl.weights,
        random_weights=wl.random_weights, frames=wl.n_frames, batch=int(run.clip.shape[1]),
        backend=run.backend, mac_speedup=speedup, metric=acc.metric, accuracy_loss=acc.loss, budget=budget,
        accuracy_loss_all_joints=acc.loss_all_joints, weights_match=match,
    )


def verify_file(path: str | Path, *, frames: int = DEFAULT_FRAMES, batch: int = DEFAULT_BATCH,
                backend: str = "reference", budget: float = DEFAULT_BUDGET) -> Verification:
    """Verify one thresholds file; the model is the file's ``model`` field (else the file name's stem)."""
    p = Path(path)
    data = json.loads(p.read_text(encoding="utf-8"))
    model = data.get("model") or p.stem
    return verify(dense_run(model, frames=frames, batch=batch, backend=backend), file=p, budget=budget)


def _verdict(r: Verification) -> str:
    """``yes``/``NO`` against the budget; ``n/a`` for random weights (their loss describes nothing)."""
    if r.random_weights:
        return "n/a"
    return "yes" if r.ok else "NO"


def _render(rows: list[Verification]) -> str:
    head = (f"{'model':<14} {'MAC speedup':>11} {'loss':>7} {'all kp':>7}  {'metric':<8} {'budget':>6}  "
            f"{'ok':<3} weights")
    lines = [head, "-" * len(head)]
    for r in rows:
        w = r.weights + (" (random: loss meaningless)" if r.random_weights else "")
        if r.weights_match is not None:
            w += ", " + ("" if r.weights_match else "NOT ") + "the ones the file was tuned on"
        every = "-" if r.accuracy_loss_all_joints is None else f"{r.accuracy_loss_all_joints:.2f}"
        lines.append(f"{r.model:<14} {r.mac_speedup:>10.2f}x {r.accuracy_loss:>7.2f} {every:>7}  "
                     f"{r.metric:<8} "
                     f"{r.budget:>6.2f}  {_verdict(r):<3} {w}")
    if rows:
        r = rows[0]
        lines.append(f"(vtest, {r.frames} frames x batch {r.batch} streams, frame 0 dense and excluded; "
                     f"backend {r.backend})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 1 when a setting loses more than the budget."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of <model>.json thresholds files")
    p.add_argument("--models", default=None, help="comma-separated subset of the files' models")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames per stream, frame 0 included")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="streams (crop windows) in the batch")
    p.add_argument("--backend", default="reference", help="delta backend (reference or sparse)")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="accuracy budget in points")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    files = sorted(args.dir.glob("*.json"))
    if args.models:
        wanted = set(args.models.split(","))
        files = [f for f in files if f.stem in wanted]
    if not files:
        print(f"no thresholds files in {args.dir}", file=sys.stderr)
        return 2
    rows = [verify_file(f, frames=args.frames, batch=args.batch, backend=args.backend, budget=args.budget)
            for f in files]
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(_render(rows))
    return 0 if all(r.ok or r.random_weights for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
