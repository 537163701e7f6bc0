"""``deltatune bench``'s library function and command module on a tiny model (speed goes in benchmarks/)."""

from __future__ import annotations

import argparse
import json

import pytest

from deltatune.bench import run_bench
from deltatune.cli import bench as bench_cli
from deltatune.errors import ConfigError


@pytest.fixture(autouse=True)
def _private_calibration(tmp_path, monkeypatch) -> None:
    # the sparse backend's calibration cache must not land in the user's data dir
    from deltatune.delta import calibration, sparse

    for mod in (calibration, sparse):
        monkeypatch.setattr(mod, "default_path", lambda device="cpu": tmp_path / "cal.json")


def test_bench_returns_sane_fields(vtest_path) -> None:
    r = run_bench("hrnet_tiny", weights=None, frames=8, threshold=0.05, repeats=1)
    assert r.dense_ms > 0 and r.delta_ms > 0 and r.speedup > 0
    assert r.mac_speedup >= 1.0 and r.metric == "PCK@0.2"
    assert 0.0 <= r.accuracy_loss <= 100.0
    assert len(r.dense_runs_ms) == len(r.delta_runs_ms) == 1
    assert r.layers and all(0.0 <= row.frac_out <= 1.0 for row in r.layers)
    assert {row.choice for row in r.layers} <= {"sparse", "dense", "skip", "mixed"}
    # every conv the backend ran has its dense cost from this machine's calibration table beside it
    ran = [row for row in r.layers if row.choice != "skip" and row.kind == "conv"]
    assert ran and all(row.dense_ms is not None and row.dense_ms > 0 for row in ran)
    # ... and its time inside the dense model, per frame: together less than a whole dense frame takes
    # (about 0.4x of it; bounded at 2x: one untimed pass against one timed run, on a machine other work
    # may slow at either moment; a sum over the 7 frames instead of a mean would be about 2.8x)
    convs = [row for row in r.layers if row.kind == "conv"]
    assert all(row.dense_net_ms is not None and row.dense_net_ms > 0 for row in convs)
    slowest_dense = max(r.dense_nchw_ms or 0.0, r.dense_channels_last_ms or 0.0, r.dense_ms)
    assert sum(row.dense_net_ms or 0.0 for row in convs) < 2 * slowest_dense
    d = r.to_dict()
    for key in ("dense_ms", "delta_ms", "speedup", "mac_speedup", "accuracy_loss", "measured_over_mac_ideal"):
        assert key in d
    assert "measured speedup" in r.render()


def test_bench_at_zero_is_exact_with_reference_backend(vtest_path) -> None:
    r = run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.0, repeats=1, backend="reference")
    assert r.accuracy_loss == 0.0 and r.max_rel_error <= 1e-4
    assert {row.choice for row in r.layers} == {"reference"}
    assert all(row.dense_ms is None for row in r.layers)  # no calibration table: nothing to show


def test_bench_cli_json(capsys, vtest_path) -> None:
    p = argparse.ArgumentParser()
    bench_cli.add_arguments(p)
    args = p.parse_args(["--model", "hrnet_tiny", "--weights", "none", "--frames", "3", "--repeats", "1",
                         "--threshold", "0.02", "--json"])
    assert bench_cli.run(args) == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert d["model"] == "hrnet_tiny" and d["speedup"] > 0 and "accuracy_loss" in d
    assert "pass/s" not in captured.err  # the progress bar is for terminals: off when stderr is captured


def test_a_frame_that_ran_dense_is_explained_by_the_rule_that_chose_it() -> None:
    """At threshold 0 (exact) a frame whose input changed at a quarter of its pixels or more runs the
    dense model. The note said only "thresholds 0", which reads wrong when the input threshold is not 0."""
    r = run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.0, repeats=1)
    said = [n for n in r.notes if "timed frames ran dense" in n]
    assert said and "every threshold after the input is 0, so a frame whose input changed at >= 25% of its " \
                     "pixels runs the dense model" in said[0], r.notes


def test_bench_warns_when_threads_exceed_the_cores(capsys) -> None:
    """--threads 64 on 2 cores ran dense 9x slower, and the only word was a load-average warning that
    blamed other work. More threads than cores now get a warning of their own; as many do not."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0))
    p = argparse.ArgumentParser()
    bench_cli.add_arguments(p)
    before = torch.get_num_threads()
    try:
        for threads, warned in ((cores + 1, True), (cores, False)):
            args = p.parse_args(["--model", "hrnet_tiny", "--weights", "none", "--frames", "3", "--repeats",
                                 "1", "--threads", str(threads), "--json"])
            assert bench_cli.run(args) == 0
            err = capsys.readouterr().err
            said = f"warning: --threads {threads} on {cores} cores: the threads beyond the cores take turns"
            assert (said in err) == warned, err
    finally:
        torch.set_num_threads(before)


def test_bench_rejects_bad_input() -> None:
    p = argparse.ArgumentParser()
    bench_cli.add_arguments(p)
    with pytest.raises(ConfigError):
        bench_cli.run(p.parse_args(["--model", "hrnet_tiny", "--threshold", "-1"]))
    with pytest.raises(ConfigError):
        run_bench("hrnet_tiny", weights=None, frames=3, batch=99)
    with pytest.raises(ConfigError, match="--start 794"):  # vtest has 795 frames: one left
        run_bench("hrnet_tiny", weights=None, frames=3, start=794)


@pytest.mark.slow  # ~35 s on 2 cores: two timed benches of the distilled HRNet
def test_bench_scores_present_keypoints_and_reports_every_keypoint(vtest_path) -> None:
    """Real weights on real frames: the loss counts the dense keypoints that are present, the loss over
    every keypoint is reported beside it, and --all-joints makes the two the same."""
    r = run_bench("hrnet", frames=3, batch=3, threshold=0.05, repeats=1)
    assert r.present_fraction is not None and 0.0 < r.present_fraction < 1.0
    assert r.accuracy_loss_all_joints is not None and "of keypoints present" in r.render()
    assert r.to_dict()["accuracy_loss_all_joints"] == r.accuracy_loss_all_joints
    every = run_bench("hrnet", frames=3, batch=3, threshold=0.05, repeats=1, all_joints=True)
    assert every.present_fraction == 1.0 and every.accuracy_loss == every.accuracy_loss_all_joints
    assert every.accuracy_loss_all_joints == pytest.approx(r.accuracy_loss_all_joints)


def test_bench_says_when_there_is_nothing_to_score() -> None:
    """Carphone's first frames show a head and shoulders in which the default hrnet finds no keypoint
    above its presence threshold: the loss line says so instead of printing a 0 that any setting gets."""
    r = run_bench("hrnet", video="carphone", frames=3, threshold=0.05, repeats=1)
    assert r.present_fraction == 0.0 and r.accuracy_loss == 0.0
    line = next(ln for ln in r.render().splitlines() if ln.startswith("accuracy loss"))
    assert "no keypoint present on these frames: nothing to score" in line and "0.00 points" not in line
    on_vtest = run_bench("hrnet", frames=3, threshold=0.05, repeats=1)
    assert on_vtest.present_fraction and "nothing to score" not in on_vtest.render()


def test_bench_reports_each_rounds_speedup(vtest_path) -> None:
    r = run_bench("hrnet_tiny", weights=None, frames=4, repeats=3, threshold=0.02)
    assert len(r.round_speedups) == 3 == len(r.dense_runs_ms) == len(r.delta_runs_ms)
    for got, d, s in zip(r.round_speedups, r.dense_runs_ms, r.delta_runs_ms, strict=True):
        assert got == pytest.approx(d / s)  # each round's dense time over the same round's delta time
    assert r.to_dict()["round_speedups"] == r.round_speedups
    lo, hi = min(r.round_speedups), max(r.round_speedups)
    assert f"(rounds {lo:.2f}-{hi:.2f}x)" in r.render(max_layers=0)
    # every round slower than dense: the output says so, with the share of multiply-adds skipped
    import dataclasses

    slow = dataclasses.replace(r, dense_runs_ms=[10.0, 10.0, 10.0], delta_runs_ms=[11.0, 12.0, 10.5],
                               dense_ms=10.0, delta_ms=11.0, mac_speedup=1.25)
    assert "note: slower than dense on every round: at these thresholds the delta network skips 20% of the " \
        "multiply-adds" in slow.render(max_layers=0)
    # most multiply-adds skipped and still slower (a tiny network): not a matter of higher thresholds
    tiny = dataclasses.replace(slow, mac_speedup=8.0).render(max_layers=0)
    assert "although the delta network skips 88% of the multiply-adds" in tiny
    assert "(dense: 10.00 ms/frame)" in tiny and "higher thresholds" not in tiny
    one_faster = dataclasses.replace(slow, delta_runs_ms=[11.0, 9.5, 10.5])
    assert "slower than dense" not in one_faster.render(max_layers=0)


def test_bench_windows_give_more_streams_than_the_sample_has(vtest_path) -> None:
    """``windows`` replaces the sample's three crop windows: a 2 x 2 grid is a batch of 4 streams."""
    from deltatune.data.video import CropWindow

    grid = [CropWindow(x, y, 240, 320) for y in (0, 256) for x in (0, 528)]
    r = run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.02, repeats=1, batch=4, windows=grid)
    assert r.batch == 4 and r.delta_ms > 0 and r.device == "cpu" and r.dense_fp16_ms is None
    with pytest.raises(ConfigError, match=r"--batch 5 exceeds the 4 crop windows \(streams\) of"):
        run_bench("hrnet_tiny", weights=None, frames=3, batch=5, windows=grid)
    with pytest.raises(ConfigError, match=r"--batch 2 exceeds the 1 crop window \(stream\) of this video"):
        run_bench("hrnet_tiny", weights=None, frames=3, batch=2, windows=grid[:1])


def test_bench_times_every_window_given_unless_told_a_batch(vtest_path) -> None:
    """Windows given are the workload: without ``batch`` every one is a stream (the sample's default is
    one stream), and a smaller ``batch`` that would leave some out is refused."""
    from deltatune.data.video import CropWindow

    pair = [CropWindow(100, 100, 240, 320), CropWindow(400, 100, 240, 320)]
    assert run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.02, repeats=1, windows=pair).batch == 2
    assert run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.02, repeats=1).batch == 1
    with pytest.raises(ConfigError, match="--batch 1: 2 --window given, one stream each; leave --batch out"):
        run_bench("hrnet_tiny", weights=None, frames=3, batch=1, windows=pair)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error of a CPU-only torch")
def test_bench_cuda_without_a_gpu_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="--device cuda: this torch .* sees no CUDA device"):
        run_bench("hrnet_tiny", weights=None, frames=3, device="cuda")


def test_bench_says_why_the_compiled_kernels_were_not_used(vtest_path, monkeypatch) -> None:
    from deltatune.delta import native

    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert native.disabled()
    with native.use_kernels(None):
        r = run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.02, repeats=1)
    assert any(n.startswith("compiled kernels unavailable (DELTATUNE_NATIVE=0)") for n in r.notes), r.notes
    monkeypatch.setenv(native.NATIVE_ENV, "1")
    assert not native.disabled()


def test_outputs_come_back_to_the_cpu_with_their_structure() -> None:
    """What ``bench`` scores: a model's output (tensor, lists, tuples, named tuples, dicts) on the CPU."""
    from collections import namedtuple

    import torch

    from deltatune.bench import _to_cpu

    pair = namedtuple("pair", "boxes scores")
    out = _to_cpu([{"det": pair(torch.ones(2, 4), (torch.zeros(2),))}, torch.ones(1), "label"])
    assert isinstance(out, list) and isinstance(out[0]["det"], pair) and out[2] == "label"
    assert out[0]["det"].boxes.device.type == "cpu" and torch.equal(out[0]["det"].scores[0], torch.zeros(2))


def test_bench_on_a_still_clip_reports_no_macs_as_valid_json(capsys, still_clip) -> None:
    """Nothing changes after frame 0: no layer runs, so the MAC speedup has no finite value. The text
    says so (not "infx"), every conv is reported skipped (not "dense"), and --json stays standard JSON
    (null, not Python's Infinity token)."""
    still = still_clip
    r = run_bench("hrnet_tiny", weights=None, video=str(still), frames=4, threshold=0.0, repeats=1)
    assert r.mac_speedup == float("inf")
    text = r.render(max_layers=None)
    assert "no multiply-adds at all" in text and "infx" not in text and "measured / ideal" not in text
    assert r.layers and {row.choice for row in r.layers} == {"skip"}
    p = argparse.ArgumentParser()
    bench_cli.add_arguments(p)
    args = p.parse_args(["--model", "hrnet_tiny", "--weights", "none", "--video", str(still), "--frames", "4",
                         "--repeats", "1", "--json"])
    assert bench_cli.run(args) == 0

    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    d = json.loads(capsys.readouterr().out, parse_constant=reject)
    assert d["mac_speedup"] is None and d["measured_over_mac_ideal"] is None and d["speedup"] > 0


def test_recalibrate_says_what_it_measured_again(vtest_path) -> None:
    """`bench --recalibrate` rewrote the calibration table (what every later run and search prices with)
    without a word."""
    r = run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.05, repeats=1, recalibrate=True)
    said = [n for n in r.notes if n.startswith("--recalibrate: ")]
    assert len(said) == 1 and "layer shapes measured again and written to this machine's" in said[0], r.notes
    plain = run_bench("hrnet_tiny", weights=None, frames=3, threshold=0.05, repeats=1)
    assert not [n for n in plain.notes if "--recalibrate" in n]


def test_rounds_far_apart_are_said_to_be_a_rough_figure() -> None:
    """Rounds of 1.30-7.24x beside a 2.27x MAC ideal went without a word (the load changed mid-run)."""
    from deltatune.bench import rounds_apart_note

    note = rounds_apart_note([1.30, 1.35, 7.24]) or ""
    assert note.startswith("the timing rounds ranged 1.30-7.24x: the machine's load changed")
    assert rounds_apart_note([1.30, 1.41, 1.38]) is None and rounds_apart_note([1.3]) is None


def test_kernel_time_shares_above_the_whole_frame_are_not_turned_into_a_negative_share() -> None:
    """The conv kernels are timed in a pass of their own; under a changing load they added up to more
    than the median delta frame and the slower-than-dense note said "-876% of delta time"."""
    from deltatune.bench import BenchResult, LayerBench

    def result(shares: list[float]) -> BenchResult:
        layers = [LayerBench(f"conv{i}", "conv", 0.05, 0.5, "sparse", 0.3, 0.1, s)
                  for i, s in enumerate(shares)]
        return BenchResult(model="m", backend="sparse", video="v", weights="none", frames=4, batch=1,
                           threads=1, repeats=2, dense_ms=1.0, delta_ms=2.0, mac_speedup=30.0, metric="top-1",
                           accuracy_loss=0.0, max_rel_error=0.0, dense_runs_ms=[1.0, 1.0],
                           delta_runs_ms=[2.0, 2.1], layers=layers)

    noisy = result([5.0, 4.76]).render()
    assert "% of delta time)" not in noisy and "-" not in noisy.split("truncation steps")[1].split(")")[0]
    assert "conv kernels: 976% of the median delta frame, timed in a pass of their own" in noisy
    quiet = result([0.06, 0.04]).render()
    assert "truncation steps; 90% of delta time)" in quiet and "conv kernels: 10.0% of delta time" in quiet
