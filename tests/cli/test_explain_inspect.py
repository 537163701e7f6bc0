"""``deltatune explain`` and ``deltatune inspect`` through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from deltatune.cli import main


def test_explain_shows_every_step(capsys) -> None:
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    for text in ["frame 0", "frame 3", "input change", "residual", "fired", "held back",
                 "dense network output"]:
        assert text in out
    # the held-back change becomes visible later: frame 1 is off by a bounded amount, not exact
    assert "max |delta - dense|" in out


def test_explain_shows_both_channels_that_decide_a_pixel(capsys) -> None:
    """Only the second channel's delta and residual were shown, while a pixel fires on either: in frame 2
    a blur pixel (channel 1) fired on a residual the grids never showed."""
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    for name in ("ch 1 (blur)", "ch 2 (centre-surround)"):
        assert f"its output delta, {name}:" in out and f"ReLU residual r, {name} (after):" in out
    assert "fired (either channel's |change| > 0.1):" in out
    assert "channel 1:" not in out


@pytest.mark.parametrize("value", ["0.13", "1e9"])
def test_explain_a_frame_whose_change_is_all_held_back(capsys, value: str) -> None:
    """An input threshold above a frame's changes sends no pixel on: the conv and the ReLU do nothing
    that frame (the walkthrough raised a KeyError looking for their steps)."""
    assert main(["explain", "--input-threshold", value]) == 0
    out = capsys.readouterr().out
    assert "0 of 25 input pixels are sent on" in out and "the conv and the ReLU do no work this frame" in out
    assert out.count("=== frame") == 4 and "max |delta - dense|" in out


@pytest.mark.parametrize("flag", ["--relu-threshold", "--input-threshold"])
@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_explain_rejects_a_bad_threshold_naming_its_option(capsys, flag: str, value: str) -> None:
    assert main(["explain", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag} must be a finite number >= 0" in err


@pytest.mark.slow  # ~35 s on 2 cores: 30 frames through MobileNetV2
def test_inspect_json_mobilenet(capsys, vtest_path, mobilenet_weights) -> None:
    assert main(["inspect", "--model", "mobilenet_v2", "--frames", "30", "--threshold", "0", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == "mobilenet_v2" and d["frames"] == 30
    assert d["max_rel_error_vs_dense"] <= 1e-4
    names = [p["name"] for p in d["truncation_points"]]
    assert names[0] == "input" and len(names) == len(set(names)) > 30
    args = ["inspect", "--model", "mobilenet_v2", "--frames", "30", "--threshold", "0.05", "--json"]
    assert main(args) == 0
    d2 = json.loads(capsys.readouterr().out)
    assert d2["mac_speedup"] > 1.0 and d2["mac_speedup"] > d["mac_speedup"]


def test_inspect_bad_inputs_are_one_line(capsys, tmp_path) -> None:
    assert main(["inspect", "--model", "no_such_net"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_net" in err
    missing = tmp_path / "missing.avi"
    assert main(["inspect", "--model", "hrnet_tiny", "--video", str(missing), "--frames", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.avi" in err
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"\x00garbage" * 1000)
    assert main(["inspect", "--model", "hrnet_tiny", "--video", str(corrupt), "--frames", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt.avi" in err
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"format": "deltatune-thresholds/1", "thresholds": {"input": 0.1}}))
    assert main(["inspect", "--model", "hrnet_tiny", "--frames", "3", "--thresholds", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err


def test_inspect_on_a_still_clip_says_no_macs(capsys, still_clip) -> None:
    """No layer runs after frame 0: the text says so instead of "infx", --json writes null."""
    base = ["inspect", "--model", "hrnet_tiny", "--weights", "none", "--video", str(still_clip),
            "--frames", "4"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "no multiply-adds at all" in out and "infx" not in out

    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    assert main([*base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out, parse_constant=reject)["mac_speedup"] is None


def test_inspect_on_frames_without_a_person_scores_nothing(capsys, tmp_path) -> None:
    """Real hrnet weights on grey frames: the dense model finds no keypoint, so the present-keypoint loss
    has nothing to count. It printed "0.00 PCK@0.2 points" (a 0 any setting would get), where bench says
    "nothing to score" and search refuses the clip."""
    from PIL import Image

    for i in range(4):
        Image.new("RGB", (192, 256), (90 + 3 * i, 90, 90)).save(tmp_path / f"{i:04d}.png")
    base = ["inspect", "--model", "hrnet", "--video", str(tmp_path), "--frames", "4", "--threshold", "0.05"]
    assert main(base) == 0
    out = capsys.readouterr().out
    said = "accuracy loss vs dense (frames 1..3): - (no keypoint present on these frames: nothing to score; "
    assert said + "every keypoint: " in out, out
    assert "x 1 stream," in out and "(feeds GMAC: the dense multiply-adds of the layers each point feeds, " \
        "per frame of its one stream;" in out
    assert main([*base, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["accuracy_loss"] is None and got["accuracy_loss_all_joints"] is not None


def test_inspect_windows_are_its_streams(capsys, rotated_phone_clip) -> None:
    # A phone's portrait clip (stored sideways + a display rotation): windows count pixels of the upright
    # frame, one stream each. 300 px from the top exists only upright (the stored frame is 432 tall).
    argv = ["inspect", "--model", "hrnet_tiny", "--weights", "none", "--video", str(rotated_phone_clip),
            "--frames", "3", "--window", "0,0,240,320", "--window", "150,250,240,320", "--json"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["streams"] == 2 and d["frames"] == 3


def test_inspect_start_reads_a_later_segment(capsys) -> None:
    """``--start N``: the report says where the clip starts, and the later frames give other numbers."""
    base = ["inspect", "--model", "hrnet_tiny", "--weights", "none", "--frames", "4", "--threshold", "0.05"]
    assert main([*base, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*base, "--start", "650", "--json"]) == 0
    late = json.loads(capsys.readouterr().out)
    assert (first["start"], late["start"]) == (0, 650)
    assert late["per_frame_error"] != first["per_frame_error"]
    assert main([*base, "--start", "650"]) == 0
    assert ": 4 frames from frame 650 x 3 streams" in capsys.readouterr().out
    assert main([*base, "--start", "-2"]) == 2
    assert capsys.readouterr().err.strip().endswith("--start -2: must be >= 0")


def test_inspect_plot_writes_the_picture_and_refuses_a_bad_file_type_first(capsys, tmp_path) -> None:
    bad = tmp_path / "where.txt"
    assert main(["inspect", "--model", "hrnet", "--frames", "3", "--plot", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot" in err and "unsupported file type '.txt'" in err
    assert not bad.exists()
    out = tmp_path / "where.png"
    args = ["inspect", "--model", "hrnet", "--frames", "3", "--threshold", "0.02", "--plot", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"plot: {out}" in text and "accuracy loss vs dense (frames 1..2):" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_streams_scores_an_exported_trial_on_its_search_frames(
    capsys, tmp_path, monkeypatch
) -> None:
    """``--streams N`` takes the first N crop windows as ``search --streams N`` does: inspect on the
    search's tuning frames and streams gives the trial's own MAC speedup and loss (inspect's default,
    every window of the sample, scores other crops)."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    tiny = ["--model", "hrnet_tiny", "--weights", "none"]
    assert main(["search", *tiny, "--frames", "8", "--streams", "2", "--speed", "macs", "--trials", "3",
                 "--study", "s", "--budget", "100", "--thr-range", "0.001", "0.05", "--no-progress",
                 "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "t.json"
    assert main(["export", "--study", "s", "--trial", "2", "-o", str(out)]) == 0
    capsys.readouterr()
    meta = json.loads(out.read_text())["meta"]
    # frames 0..5 of the 8: the search's tuning frames
    base = ["inspect", *tiny, "--thresholds", str(out), "--frames", "6", "--json"]
    assert main([*base, "--streams", "2"]) == 0
    got = json.loads(capsys.readouterr().out)
    random = "random weights: sparsity and error do not describe a trained network"
    assert got["streams"] == 2 and got["notes"] == [random]  # its own frames and crops: nothing to add
    assert got["mac_speedup"] == pytest.approx(meta["speedup"], rel=1e-6)
    assert got["accuracy_loss"] == pytest.approx(meta["accuracy_loss"], abs=1e-9)
    assert main(base) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["streams"] == 3
    assert other["notes"] == [
        random,
        f"this setting was tuned on vtest frames 0..5, 2 streams (where its search scored "
        f"{meta['accuracy_loss']:.2f} points lost at {meta['speedup']:.2f}x MAC speedup); these frames or "
        "crops differ, so expect other numbers (--start 0 --frames 6 --streams 2 scores its tuning frames)"]
    assert main([*base, "--streams", "4"]) == 2
    assert capsys.readouterr().err.strip().endswith("--streams 4: vtest has 3 crop windows")
    assert main([*base, "--streams", "2", "--window", "0,0,240,320"]) == 2  # the user's window, not vtest's 3
    assert capsys.readouterr().err.strip().endswith("--streams 2: --window gives 1 crop window")
    assert main([*base, "--streams", "0"]) == 2
    assert "--streams 0: need at least one stream" in capsys.readouterr().err


def test_inspect_says_when_mode_overrides_the_thresholds_file(capsys) -> None:
    """``--mode rms`` on a file tuned in max mode ran in rms and lost 13 points without a word."""
    from pathlib import Path

    tuned = Path(__file__).resolve().parents[2] / "studies" / "thresholds" / "hrnet.json"
    base = ["inspect", "--model", "hrnet", "--frames", "3", "--streams", "1", "--thresholds", str(tuned)]
    assert main([*base, "--mode", "rms", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["mode"] == "rms"
    said = f"--mode rms overrides the mode of {tuned} (max), which its thresholds were tuned in"
    assert said in got["notes"]
    assert main([*base, "--mode", "max", "--json"]) == 0
    assert not [n for n in json.loads(capsys.readouterr().out)["notes"] if "overrides" in n]


def test_bench_says_where_a_setting_was_tuned_and_when_it_lost_more_than_its_budget(
    tmp_path, capsys, monkeypatch
) -> None:
    """A setting tuned on two segments (--also-on) and timed by `bench` on frames no search saw: bench said
    nothing of where it was tuned, and inspect quoted the worst over the segments as the first one's."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "results"))
    tiny = ["--model", "hrnet_tiny", "--weights", "none"]
    assert main(["search", *tiny, "--frames", "6", "--streams", "1", "--speed", "macs", "--trials", "2",
                 "--study", "s", "--budget", "100", "--thr-range", "0.001", "0.05", "--also-on", "vtest@300",
                 "--no-progress", "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "t.json"
    assert main(["export", "--study", "s", "--trial", "1", "-o", str(out)]) == 0
    capsys.readouterr()
    meta = json.loads(out.read_text())["meta"]
    assert [g["segment"] for g in meta["segments"]] == ["vtest@0", "vtest@300"]
    assert meta["aggregate"] == "worst"
    bench = ["bench", *tiny, "--thresholds", str(out), "--start", "600", "--frames", "4", "--repeats", "2",
             "--json"]
    assert main(bench) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    tuned = ("this setting was tuned on vtest frames 0..3, 1 stream, and vtest frames 300..303 (where its "
             "search scored the worst over its 2 segments, ")
    assert any(n.startswith(tuned) for n in notes), notes
    # on one of the segments it was tuned on, nothing is said of tuning elsewhere
    assert main([*bench[:-7], "--start", "300", "--frames", "4", "--repeats", "2", "--json"]) == 0
    assert not [n for n in json.loads(capsys.readouterr().out)["notes"] if "was tuned on" in n]


def test_a_loss_over_the_files_budget_is_said() -> None:
    from deltatune.inspection import over_budget

    said = over_budget({"budget": 0.5}, 1.66, elsewhere=True) or ""
    assert "lost 1.66 points on these frames, over the 0.5-point budget" in said and "carry over" in said
    own = over_budget({"budget": 0.5}, 1.66, elsewhere=False) or ""  # its own frames: nothing carried over
    assert own.endswith("over the 0.5-point budget of its search")
    # a trial exported over its budget (export warns): it never was within it, so nothing failed to carry
    over = over_budget({"budget": 1.0, "accuracy_loss": 8.43}, 1.18, elsewhere=True) or ""
    assert over.endswith("which it exceeded on its tuning frames too (8.43 points)") and "carry" not in over
    assert over_budget({"budget": 0.5}, 0.5, elsewhere=True) is None  # equal counts as within, as feasibility
    assert over_budget({}, 3.0, elsewhere=True) is None
    assert over_budget({"budget": 0.5}, None, elsewhere=True) is None
