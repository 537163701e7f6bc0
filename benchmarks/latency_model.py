"""Latency model accuracy: predicted vs measured delta ms/frame over random threshold configurations.

Fits :class:`deltatune.delta.latency.LatencyModel` on ``--train`` configurations (the mix
``search --speed latency`` fits on: two at thresholds 0, which run the dense fallback, then random ones
from :func:`~deltatune.delta.latency.random_thresholds`), then reports the median absolute relative error
on ``--test`` (>= 20) further configurations from the same sampler, and the error of the same fit with
one coefficient for all conv calls (sparse-kernel and dense costs pooled). Each measurement: stream
reset, frame 0 untimed, frames 1..T-1 timed, median over repeats, interleaved with a dense run of the
same frames; by default each delta time is rescaled by (median dense time / that moment's dense time),
which removes the load of a shared machine from the comparison.

Run: ``.venv/bin/python benchmarks/latency_model.py --model mobilenet_v2 [--threads 1] [--json]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from dataclasses import replace

import torch

from deltatune.delta import convert
from deltatune.delta.calibration import calibrate
from deltatune.delta.latency import (
    LatencyModel,
    features,
    random_thresholds,
    time_delta,
    time_frames,
    training_configs,
)
from deltatune.delta.native import keep_freed_memory
from deltatune.delta.sparse import SparseBackend
from deltatune.workload import load_workload


def _measure(net, clip, repeats: int) -> tuple[float, float]:
    """(delta ms/frame, dense ms/frame), interleaved per repeat, medians."""
    runs, dense = [], []
    with torch.no_grad():
        for _ in range(repeats):
            dense.append(time_frames(net.dense_model, clip[1:]))
            runs.append(time_delta(net, clip))
    return statistics.median(runs), statistics.median(dense)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--weights", default="default")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--train", type=int, default=12)
    p.add_argument("--test", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-normalize", dest="normalize", action="store_false",
                   help="do not rescale delta times by the interleaved dense time (load on a shared machine)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    keep_freed_memory()  # the allocator setting the deltatune command runs under
    rng = random.Random(a.seed)
    wl = load_workload(a.model, weights=None if a.weights == "none" else a.weights, frames=a.frames)
    clip = wl.frames[:, :1]
    backend = SparseBackend()
    net = convert(wl.model, thresholds=0.0, backend=backend, record_stats=False)
    calibrate(net, clip[0])  # this machine's layer costs (measured once, then read from the table)
    _measure(net, clip, 1)  # warm-up

    rows = []
    configs = training_configs(net.threshold_names, rng, a.train)
    configs += [random_thresholds(net.threshold_names, rng) for _ in range(a.test)]
    for config in configs:
        net.set_thresholds(config)
        f = features(net, clip)
        ms, dense = _measure(net, clip, a.repeats)
        rows.append((f, ms, dense))
    # the machine is shared: scale each delta time by how slow the interleaved dense run was at that moment
    ref = statistics.median(d for _, _, d in rows)
    rows = [(f, ms * ref / d) for f, ms, d in rows] if a.normalize else [(f, ms) for f, ms, _ in rows]
    train, test = rows[: a.train], rows[a.train:]
    model = LatencyModel.fit([f for f, _ in train], [m for _, m in train])
    errs = [abs(model.predict(f) - m) / m for f, m in test]
    # the same rows, with one coefficient for all conv calls (sparse-kernel and dense pooled)
    pool = [(replace(f, sparse_conv_ms=0.0), m) for f, m in rows]
    pooled = LatencyModel.fit([f for f, _ in pool[: a.train]], [m for _, m in pool[: a.train]])
    pooled_errs = [abs(pooled.predict(f) - m) / m for f, m in pool[a.train:]]
    res = {
        "model": a.model, "normalized_by_dense": a.normalize, "threads": torch.get_num_threads(),
        "train": len(train), "test": len(test),
        "fit": model.to_dict(), "median_abs_rel_error": statistics.median(errs),
        "max_abs_rel_error": max(errs),
        "pooled_conv_median_abs_rel_error": statistics.median(pooled_errs),
        "pooled_conv_max_abs_rel_error": max(pooled_errs),
        "measured_ms": [m for _, m in test], "predicted_ms": [model.predict(f) for f, _ in test],
    }
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{a.model}, {res['threads']} threads: fitted on {len(train)} configs {model.to_dict()}")
        for f, m in test:
            print(f"  measured {m:8.2f} ms  predicted {model.predict(f):8.2f} ms  "
                  f"(conv part {f.conv_ms:.2f} ms)")
        print(f"median |error| {res['median_abs_rel_error']:.1%} over {len(test)} held-out configurations "
              f"(max {res['max_abs_rel_error']:.1%})")
        med, top = res["pooled_conv_median_abs_rel_error"], res["pooled_conv_max_abs_rel_error"]
        print(f"with one coefficient for all conv calls: median |error| {med:.1%} (max {top:.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
