"""The README's benchmark table: ``deltatune bench`` on vtest crops for the zoo's headline models.

For each model: thresholds 0 (the exact setting; the dense refresh handles frames where most pixels
changed) and the documented setting ``studies/thresholds/<model>.json`` (accuracy loss <= 1 point on this
workload), plus rows at a higher global threshold that show what the engine does when more is skipped
(their accuracy loss is reported, not bounded), and every model's setting again on frames 650+, which no
search, selection or distillation saw. Every row is one ``run_bench`` call: the same 40 frames of
the three crop windows as one batch of 3 streams, dense (best of NCHW and channels-last) and delta timed
interleaved after a warm-up, medians of ``--repeats``.

Run: ``.venv/bin/python benchmarks/bench_table.py [--threads 2] [--frames 40] [--json] [--w32-weights FILE]``
(about 10 minutes on 2 cores). Quote the output together with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from deltatune.bench import run_bench
from deltatune.delta import native

SETTINGS = Path(__file__).resolve().parents[1] / "studies" / "thresholds"
#: first frame of the held-out rows: vtest frames from here were used neither for distillation
#: (frames 0-599) nor by any threshold search or selection (frames 0-39)
HELD_OUT_START = 650

#: (label, model, weights, thresholds: "0", a global number, or "documented", first video frame)
ROWS: list[tuple[str, str, str | None, str, int]] = [
    ("hrnet (W18-small-v2, distilled)", "hrnet", "default", "0", 0),
    ("hrnet (W18-small-v2, distilled)", "hrnet", "default", "documented", 0),
    ("hrnet (W18-small-v2, distilled)", "hrnet", "default", "0.1", 0),
    ("HRNet-W32 (random weights)", "hrnet", None, "0", 0),
    ("HRNet-W32 (random weights)", "hrnet", None, "0.01", 0),
    ("pose_resnet50 (random weights)", "pose_resnet50", None, "0", 0),
    ("pose_resnet50 (random weights)", "pose_resnet50", None, "documented", 0),
    ("mobilenet_v2 (ImageNet)", "mobilenet_v2", "default", "0", 0),
    ("mobilenet_v2 (ImageNet)", "mobilenet_v2", "default", "documented", 0),
    ("mobilenet_v2 (ImageNet)", "mobilenet_v2", "default", "0.05", 0),
    ("blazepose (MediaPipe)", "blazepose", "default", "0", 0),
    ("blazepose (MediaPipe)", "blazepose", "default", "documented", 0),
]
#: every model's setting again on frames no search, selection or distillation saw (vtest 650..)
HELD_OUT_ROWS: list[tuple[str, str, str | None, str, int]] = [
    (f"hrnet (W18-small-v2, distilled), frames {HELD_OUT_START}+", "hrnet", "default", "documented",
     HELD_OUT_START),
    (f"HRNet-W32 (random weights), frames {HELD_OUT_START}+", "hrnet", None, "0.01", HELD_OUT_START),
    (f"pose_resnet50 (random weights), frames {HELD_OUT_START}+", "pose_resnet50", None, "documented",
     HELD_OUT_START),
    (f"mobilenet_v2 (ImageNet), frames {HELD_OUT_START}+", "mobilenet_v2", "default", "documented",
     HELD_OUT_START),
    (f"blazepose (MediaPipe), frames {HELD_OUT_START}+", "blazepose", "default", "documented",
     HELD_OUT_START),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--only", default=None, help="comma-separated model names to run")
    p.add_argument("--w32-weights", type=Path, default=None,
                   help="HRNet-W32 weights (e.g. distilled with `deltatune distill --student hrnet`): adds "
                        "rows at thresholds 0 and at studies/thresholds/w32-distilled/hrnet.json, that "
                        f"one also on frames {HELD_OUT_START}+")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    native.keep_freed_memory()  # the allocator setting the deltatune command runs under (dense benefits too)
    out = []
    if not a.json:
        print(f"{torch.get_num_threads()} threads, vtest crops, {a.frames} frames x batch {a.batch}\n")
        print("| model | thresholds | dense ms | delta ms | measured speedup | MAC speedup "
              "| measured / MAC ideal | accuracy loss | every keypoint |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [*ROWS, *HELD_OUT_ROWS]
    if a.w32_weights is not None:
        w32 = str(a.w32_weights)
        rows += [("HRNet-W32 (distilled, not shipped)", "hrnet", w32, "0", 0),
                 ("HRNet-W32 (distilled, not shipped)", "hrnet", w32, "w32-distilled", 0),
                 # the same setting on frames no search or distillation saw (vtest 650..)
                 (f"HRNet-W32 (distilled), frames {HELD_OUT_START}+", "hrnet", w32, "w32-distilled",
                  HELD_OUT_START)]
    for label, model, weights, setting, start in rows:
        if a.only and model not in a.only.split(","):
            continue
        path = None
        if setting == "documented":
            path = SETTINGS / f"{model}.json"
        elif setting == "w32-distilled":
            path = SETTINGS / "w32-distilled" / "hrnet.json"
        r = run_bench(model, weights=weights, frames=a.frames, start=start, batch=a.batch,
                      repeats=a.repeats, threshold=None if path else float(setting), thresholds_file=path)
        row = {"label": label, "model": model, "weights": weights or "random",
               "thresholds": setting if path is None else str(path.relative_to(SETTINGS.parents[1])),
               **{k: v for k, v in r.to_dict().items() if k not in ("layers", "notes")}}
        out.append(row)
        if not a.json:
            name = f"`{path.relative_to(SETTINGS.parents[1])}`" if path else setting
            every = "-" if r.accuracy_loss_all_joints is None else f"{r.accuracy_loss_all_joints:.2f}"
            print(f"| {label} | {name} | {r.dense_ms:.1f} | {r.delta_ms:.1f} | {r.speedup:.2f}x | "
                  f"{r.mac_speedup:.2f}x | {r.ideal_ratio:.0%} | {r.accuracy_loss:.2f} {r.metric} | "
                  f"{every} |", flush=True)
    if a.json:
        print(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
