"""The README's benchmark table: ``deltatune bench`` on vtest crops for the zoo's headline models.

For each model: thresholds 0 (the exact setting; the dense refresh handles frames where most pixels
changed) and the documented setting ``studies/thresholds/<model>.json`` (accuracy loss <= 1 point on this
workload), plus rows at a higher global threshold that show what the engine does when more is skipped
(their accuracy loss is reported, not bounded), and every model's setting again on frames 650+, which no
search, selection or distillation saw. Every row is one ``run_bench`` call: the same 40 frames of
the three crop windows as one batch of 3 streams, dense (best of NCHW and channels-last) and delta timed
interleaved after a warm-up, medians of ``--repeats``.

Run: ``.venv/bin/python benchmarks/bench_table.py [--threads 2] [--frames 40] [--json] [--w32-weights FILE
[--w32-only]] [--save FILE.json] [--plot FILE.png]`` (about 30 minutes on the 2-core AVX2 machine,
2026-12-04). Quote the output together with the machine it ran on. ``--save`` keeps the measured rows
with the date, host and torch version; ``--from FILE.json`` prints (and ``--plot`` draws) a saved run
again without measuring. ``--w32-only`` measures only the distilled W32 rows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path
from typing import Any

import torch

from deltatune.bench import round_speedups, run_bench
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


HEADER = ("| model | thresholds | dense ms | delta ms | measured speedup (rounds) | MAC speedup "
          "| measured / MAC ideal | accuracy loss | every keypoint |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|---:|")


def _rounds(row: dict[str, Any]) -> list[float]:
    """The speedup of each timing round of a measured or saved row (saved runs may predate the field)."""
    return round_speedups(row["dense_runs_ms"], row["delta_runs_ms"])


def markdown_row(row: dict[str, Any]) -> str:
    """One table row of a measured (or saved) row."""
    name = row["thresholds"]
    name = f"`{name}`" if name.endswith(".json") else name
    every = row.get("accuracy_loss_all_joints")
    every_s = "-" if every is None else f"{every:.2f}"
    rounds = _rounds(row)
    spread = f" ({min(rounds):.2f}-{max(rounds):.2f})" if len(rounds) > 1 else ""
    ideal = row["measured_over_mac_ideal"]
    return (f"| {row['label']} | {name} | {row['dense_ms']:.1f} | {row['delta_ms']:.1f} | "
            f"{row['speedup']:.2f}x{spread} | {row['mac_speedup']:.2f}x | {ideal:.0%} | "
            f"{row['accuracy_loss']:.2f} {row['metric']} | {every_s} |")


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Measured against MAC speedup per row, as horizontal bars (the measured one with its slowest and
    fastest round), with a line at 1x (dense).

    The gap between the two bars of a row is what per-pixel work beyond the multiply-adds costs; a
    measured bar left of the line is slower than dense PyTorch."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    names = [f"{r['label']}: {Path(r['thresholds']).name}" for r in rows]
    df = pd.DataFrame({
        "row": names * 2,
        "speedup": [r["speedup"] for r in rows] + [r["mac_speedup"] for r in rows],
        "kind": ["measured (wall clock)"] * len(rows) + ["MAC count (ideal)"] * len(rows),
    })
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.2))
    try:
        sns.barplot(data=df, y="row", x="speedup", hue="kind", orient="h", ax=ax,
                    palette=["#2171b5", "#c6dbef"])
        measured = ax.containers[0]  # the first hue level's bars, one per row, in row order
        ys = [bar.get_y() + bar.get_height() / 2 for bar in measured]
        lo = [r["speedup"] - min(_rounds(r), default=r["speedup"]) for r in rows]
        hi = [max(_rounds(r), default=r["speedup"]) - r["speedup"] for r in rows]
        ax.errorbar([r["speedup"] for r in rows], ys, xerr=[lo, hi], fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=2, label="slowest-fastest round")
        ax.axvline(1.0, color="black", lw=1)
        ax.set_xlabel("speedup over the faster dense PyTorch layout (x)")
        ax.set_ylabel("")
        ax.set_title(title, fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def cpu() -> str:
    """The CPU's model name and widest vector extension (AVX-512 or AVX2), from /proc/cpuinfo on Linux."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "")
    flags = native.cpu_flags()
    vec = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name or platform.machine()}, {vec}"


def w32_setting(weights: Path) -> Path:
    """The setting in ``studies/thresholds/w32-distilled/`` made for these weights (its recorded
    fingerprint equals theirs), else ``hrnet.json``, the one chosen on the first distillation's weights."""
    from deltatune.delta.fingerprint import weights_fingerprint
    from deltatune.delta.thresholds import load_thresholds
    from deltatune.workload import load_workload

    folder = SETTINGS / "w32-distilled"
    fp = weights_fingerprint(load_workload("hrnet", weights=str(weights), frames=2).model)
    for path in sorted(folder.glob("hrnet*.json")):
        if load_thresholds(path).weights == fp:
            return path
    return folder / "hrnet.json"


def measure(a: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every selected row (``run_bench``) and print it as soon as it is measured."""
    out = []
    rows = [] if a.w32_only else [*ROWS, *HELD_OUT_ROWS]
    w32_file = None
    if a.w32_weights is not None:
        w32 = str(a.w32_weights)
        w32_file = a.w32_thresholds or w32_setting(a.w32_weights)
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
            path = w32_file
        r = run_bench(model, weights=weights, frames=a.frames, start=start, batch=a.batch,
                      repeats=a.repeats, threshold=None if path else float(setting), thresholds_file=path)
        row = {"label": label, "model": model, "weights": weights or "random",
               "thresholds": setting if path is None else _shown(path),
               **{k: v for k, v in r.to_dict().items() if k not in ("layers", "notes")}}
        out.append(row)
        if not a.json:
            print(markdown_row(row), flush=True)
    return out


def _shown(path: Path) -> str:
    """A thresholds file as the table names it: relative to the repository when it lies inside."""
    root = SETTINGS.parents[1]
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--only", default=None, help="comma-separated model names to run")
    p.add_argument("--w32-weights", type=Path, default=None,
                   help="HRNet-W32 weights (e.g. distilled with `deltatune distill --student hrnet`): adds "
                        "rows at thresholds 0 and at the setting of studies/thresholds/w32-distilled/ "
                        "that records these weights' fingerprint (else hrnet.json there), that one also "
                        f"on frames {HELD_OUT_START}+")
    p.add_argument("--w32-thresholds", type=Path, default=None, metavar="FILE.json",
                   help="with --w32-weights: this setting instead of the one chosen by fingerprint")
    p.add_argument("--w32-only", action="store_true",
                   help="only the --w32-weights rows (the distilled W32 measured again without the rest)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.add_argument("--save", type=Path, default=None, metavar="FILE.json",
                   help="also write the measured rows, with date, host and torch version, to this file")
    p.add_argument("--from", dest="source", type=Path, default=None, metavar="FILE.json",
                   help="measure nothing: print (and --plot) the rows a --save run wrote")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="draw measured against MAC speedup per row")
    a = p.parse_args()
    if a.w32_only and a.w32_weights is None:
        p.error("--w32-only: give the weights with --w32-weights FILE")
    if a.w32_weights is not None and not a.w32_weights.is_file():
        p.error(f"--w32-weights {a.w32_weights}: no such file")
    if a.w32_thresholds is not None and (a.w32_weights is None or not a.w32_thresholds.is_file()):
        p.error(f"--w32-thresholds {a.w32_thresholds}: needs --w32-weights and an existing file")
    for opt, f in (("--save", a.save), ("--plot", a.plot)):
        if f is not None and not f.parent.is_dir():
            p.error(f"{opt} {f}: folder {f.parent} does not exist")
    if a.source is not None:
        try:
            run = json.loads(a.source.read_text())
            rows, meta = run["rows"], run["meta"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            p.error(f"--from {a.source}: not a file written by --save ({e})")
    else:
        if a.threads:
            torch.set_num_threads(a.threads)
        native.keep_freed_memory()  # the allocator setting the deltatune command runs under (dense benefits)
        meta = {"date": datetime.date.today().isoformat(), "host": platform.node(),
                "cpu": cpu(), "torch": torch.__version__,
                "threads": torch.get_num_threads(), "frames": a.frames, "batch": a.batch,
                "repeats": a.repeats}
        if not a.json:
            print(f"{meta['threads']} threads, vtest crops, {a.frames} frames x batch {a.batch}\n")
            print(HEADER)
        rows = measure(a)
        if a.save is not None:
            a.save.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float) + "\n")
    if a.json:
        print(json.dumps(rows, indent=2, default=float))
    elif a.source is not None:
        print(f"saved run of {meta['date']} ({meta['threads']} threads, torch {meta['torch']})\n")
        print(HEADER)
        for row in rows:
            print(markdown_row(row))
    if a.plot is not None:
        plot(rows, a.plot, f"vtest crops, {meta['frames']} frames x batch {meta['batch']}, "
                           f"{meta['threads']} threads, torch {meta['torch']}\nmeasured {meta['date']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
