"""Does the search's recommendation measure what it predicted? One search per segment of a video.

Runs ``deltatune search`` (the default settings of ``make demo``: latency objective, 40 TPE trials,
the 3 fastest feasible front points re-timed, 5 interleaved rounds each) on ``--frames`` frames starting
at each of ``--starts``, each in a fresh study, and prints every re-timed point: predicted speedup,
measured median with its CI, and the relative gap. The latency model is fitted once per model, input
shape and machine and cached, so the searches after the first price other frames with a fit made on the
first segment's: the check covers that too. Run one at a time on a quiet machine.

Run: ``.venv/bin/python benchmarks/prediction_check.py --starts 0,160,320,480,640 [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from deltatune.search.runner import SearchSettings, run_search
from deltatune.search.study_workload import StudyWorkload, default_streams


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hrnet")
    p.add_argument("--video", default="vtest")
    p.add_argument("--starts", default="0,160,320,480,640", help="first frames of the segments")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--retime", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for start in (int(s) for s in args.starts.split(",")):
            w = StudyWorkload(args.model, video=args.video, frames=args.frames, start=start,
                              streams=default_streams(args.video))
            t0 = time.perf_counter()
            res = run_search(SearchSettings(
                workload=w, trials=args.trials, speed="latency", retime=args.retime, seed=args.seed,
                study=f"seg{start}", storage=f"{tmp}/seg{start}.journal",
            ))
            minutes = (time.perf_counter() - t0) / 60
            best = res.best_feasible or {}
            held_out = best.get("heldout_accuracy_loss")
            for r in res.retimed:
                rows.append({
                    "start": start, "trial": r["trial"], "recommended": r["trial"] == best.get("trial"),
                    "loss": float(res.trials.set_index("trial").loc[r["trial"], "accuracy_loss"]),
                    "predicted": r["predicted"], "measured": r["measured"],
                    "ci": [r["ci_low"], r["ci_high"]], "gap": r["predicted"] / r["measured"] - 1,
                    "search_min": minutes,
                    # the recommendation's re-score on the segment's held-out frames (a fresh stream)
                    "heldout_loss": held_out if r["trial"] == best.get("trial") else None,
                })
            if not args.json:
                for row in rows:
                    if row["start"] == start:
                        mark = "*" if row["recommended"] else " "
                        held = "" if row["heldout_loss"] is None else f" (held-out {row['heldout_loss']:.2f})"
                        print(f"frames {start}+  trial {row['trial']:>3}{mark} loss {row['loss']:.2f}{held}  "
                              f"predicted {row['predicted']:.2f}x  measured {row['measured']:.2f}x "
                              f"[{row['ci'][0]:.2f}, {row['ci'][1]:.2f}]  gap {row['gap']:+.0%}  "
                              f"({minutes:.1f} min)", flush=True)
    rec = [r for r in rows if r["recommended"]]
    summary = {
        "recommended_within_15pct": sum(abs(r["gap"]) <= 0.15 for r in rec), "searches": len(rec),
        "median_abs_gap_recommended": statistics.median(abs(r["gap"]) for r in rec) if rec else None,
        "median_abs_gap_all": statistics.median(abs(r["gap"]) for r in rows) if rows else None,
    }
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=1))
    else:
        print(f"recommended trial within 15 % of its prediction in {summary['recommended_within_15pct']} of "
              f"{summary['searches']} searches; median |gap| {summary['median_abs_gap_recommended']:.1%} "
              f"(recommended), {summary['median_abs_gap_all']:.1%} (every re-timed point)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
