"""``benchmarks/where_time_goes.py``: a delta frame's time split by kernel, and by op class without the
profiler, adds up, and the truncation state it reports is the values that reach the model's truncation
points (real hrnet, real vtest)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

from deltatune.delta import convert
from deltatune.delta.truncation import PointwiseTruncation
from deltatune.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "where_time_goes.py"


def test_shares_add_up_and_the_state_counted_is_the_truncation_points_values() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--model", "hrnet", "--frames", "3", "--threads", "1",
                        "--top", "99"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    profiled, hooked = r.stdout.split("without the profiler")
    for table in (profiled, hooked):  # cProfile's split, and the hook-timed one by op class
        shares = [float(s) for s in re.findall(r"^\S.*?\s(-?\d+\.\d)%\s+-?\d", table, re.M)]
        assert len(shares) >= 4 and abs(sum(shares) - 100.0) < 1.0, r.stdout
    # every op of the network is counted once per frame: 132 convs and 111 truncation steps in hrnet
    assert re.search(r"^ConvOp\s.*\s132$", hooked, re.M) and re.search(r"^PointwiseTruncation\s.*\s111$",
                                                                         hooked, re.M), hooked
    values = float(re.search(r"truncation points: ([\d.]+) M values per frame", r.stdout).group(1))
    # the same count independently: every truncation point's input, frames 1 and 2 of the workload
    wl = load_workload("hrnet", frames=3)
    net = convert(wl.model, thresholds=0.0)
    steps = [m for m in net.modules() if isinstance(m, PointwiseTruncation)]
    assert steps
    sizes: list[int] = []
    hooks = [m.register_forward_pre_hook(lambda _m, a: sizes.append(a[0].data.numel())) for m in steps]
    with torch.no_grad():
        net(wl.frames[0])
        sizes.clear()
        net(wl.frames[1])
    for h in hooks:
        h.remove()
    assert values == round(sum(sizes) / 1e6, 2)
