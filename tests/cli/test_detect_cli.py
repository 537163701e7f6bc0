"""``deltatune detect``: one tiny train + eval through the CLI on a MOT-format sequence cut from vtest
(boxes: pseudo-labels), and bad inputs (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deltatune.cli import main
from deltatune.errors import DataFetchError
from tests.mot_sequence import write_mot_sequence


@pytest.fixture(scope="module")
def sequence(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MOT sequence folder: 12 vtest frames at half size, pseudo-label boxes as ``gt/gt.txt``."""
    return write_mot_sequence(vtest_path, tmp_path_factory.mktemp("mot") / "vtest-cut", count=12)


def test_train_then_eval_prints_the_results(sequence: Path, tmp_path: Path, capsys) -> None:
    from deltatune.data.assets import asset_path

    try:
        asset_path("mobilenet_v2_imagenet", fetch=True)
    except DataFetchError as exc:
        pytest.skip(f"MobileNetV2 ImageNet weights unavailable: {exc}")
    out = tmp_path / "det.pt"
    train = ["detect", "train", "--video", str(sequence), "--frames", "0:8", "--size", "96", "--epochs", "2",
             "--batch-size", "4", "--weight-decay", "5e-4", "-o", str(out), "--json"]  # fmt: skip
    assert main(train) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["steps"] == 4 and len(r["epoch_losses"]) == 2 and out.is_file()
    ev = ["detect", "eval", "--checkpoint", str(out), "--frames", "8:12", "--threshold", "0.05",
          "--repeats", "1", "--no-calibrate"]  # fmt: skip
    assert main(ev) == 0
    text = capsys.readouterr().out
    assert "held-out frames 8-11 at 96x96, 3 scored" in text
    assert "classic: avg IoU" in text and "delta (threshold 0.05): avg IoU" in text and "FPS" in text
    assert "threshold 0 truncates nothing" not in text
    assert main([*ev[:6], *ev[8:]]) == 0  # no --threshold: exact, and said so
    text = capsys.readouterr().out
    assert "delta (threshold 0.0)" in text and "note: threshold 0 truncates nothing" in text
    assert main([*ev[:6], *ev[8:-1], "--backbone", "classic", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["classic"]) >= {"avg_iou", "map50", "ms_per_frame", "fps"} and "delta" not in r
    assert r["trained_on"] == 0
    # frames it trained on are no held-out score: said, not called "held-out frames"
    seen = ["detect", "eval", "--checkpoint", str(out), "--frames", "6:10", "--backbone", "classic",
            "--repeats", "1"]  # fmt: skip
    assert main(seen) == 0
    out_text, err = capsys.readouterr()
    assert "frames 6-9 at 96x96" in out_text and "held-out" not in out_text
    assert "warning: the detector trained on 2 of these 4 frames: they are not held out" in err
    # the same sequence spelled another way is the same video (the warning was dropped, "held-out" said)
    assert main([*seen, "--video", f"{sequence}/img1/.."]) == 0
    out_text, err = capsys.readouterr()
    assert "held-out" not in out_text and "trained on 2 of these 4 frames" in err


def test_training_the_backbone_too_says_so(sequence: Path, tmp_path: Path, capsys) -> None:
    """``--train-backbone`` trains the whole detector: the summary said "trained the detector head"."""
    out = tmp_path / "det.pt"
    argv = ["detect", "train", "--video", str(sequence), "--frames", "0:2", "--size", "64", "--epochs", "1",
            "--batch-size", "2", "--train-backbone", "--no-progress", "-o", str(out)]
    assert main(argv) == 0
    said = capsys.readouterr().out.splitlines()[0]
    assert said.startswith("trained the detector, backbone and head, for 1 epoch (1 step) in "), said
    assert said.endswith(" s data); loss per epoch: " + said.rsplit(": ", 1)[1]) and "features" not in said


def test_a_thresholds_file_for_another_network_is_refused_before_any_frame_is_read(
    sequence: Path, vtest_path: Path, tmp_path: Path, capsys
) -> None:
    """eval decoded and pseudo-labelled the frames and ran the dense detector over them before it loaded
    the thresholds file into the delta backbone (7.9 s on vtest's held-out frames at 320x320). On vtest cut
    after 25 frames (its header, stating 795, intact), whose held-out frames cannot be read, the refusal is
    the file's only when no frame was read before it."""
    out = tmp_path / "det.pt"
    assert main(["detect", "train", "--video", str(sequence), "--frames", "0:2", "--size", "64", "--epochs",
                 "1", "--batch-size", "2", "--no-progress", "-o", str(out)]) == 0
    capsys.readouterr()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(vtest_path.read_bytes()[:400_000])
    hrnet = Path(__file__).resolve().parents[2] / "studies/thresholds/hrnet.json"
    assert main(["detect", "eval", "--checkpoint", str(out), "--video", str(cut), "--thresholds", str(hrnet),
                 "--repeats", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"deltatune detect eval: error: thresholds file {hrnet} (made for model hrnet) does not match"), err


def test_a_resumed_training_says_how_many_steps_it_ran_now(sequence: Path, tmp_path: Path, capsys) -> None:
    """Resumed with more epochs, the summary counted the checkpoint's steps as this run's: "for 2 epochs
    (2 steps) in 1 s" after one new step. It now says how many ran now, and where it resumed."""
    out = tmp_path / "det.pt"
    argv = ["detect", "train", "--video", str(sequence), "--frames", "0:2", "--size", "64", "--epochs", "1",
            "--batch-size", "2", "--no-progress", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "resumed at" not in capsys.readouterr().out
    assert main([*argv[:9], "2", *argv[10:], "--resume"]) == 0
    said = capsys.readouterr().out.splitlines()[0]
    want = "trained the detector head for 2 epochs (2 steps, 1 of them now, resumed at step 1) in "
    assert said.startswith(want), said
    assert main([*argv[:9], "3", *argv[10:], "--resume", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["steps"], r["resumed_at_step"]) == (3, 2)


def test_a_sequence_shorter_than_its_seqinfo_says_is_named_as_that(
    sequence: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """seqinfo.ini saying seqLength=20 over 12 images in img1/ was refused as "MOT-F: 12 frames and 15 box
    lists for the 15 frames 0..14", which names neither file nor what disagrees."""
    import shutil

    shutil.copytree(sequence, tmp_path / "MOT-F")
    ini = tmp_path / "MOT-F" / "seqinfo.ini"
    ini.write_text(ini.read_text().replace("seqLength=12", "seqLength=20"))
    monkeypatch.chdir(tmp_path)
    assert main(["detect", "train", "--video", "MOT-F", "--size", "96", "--epochs", "1", "-o", "d.pt"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "deltatune detect train: error: MOT-F/seqinfo.ini: seqLength=20 but img1/ holds 12 images"
    ]
    assert not (tmp_path / "d.pt").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["detect"], "choose an action"),
        (["detect", "train", "--epochs", "0", "-o", "{tmp}/a.pt"], "--epochs"),
        (["detect", "train", "--size", "16", "-o", "{tmp}/a.pt"], "--size '16'"),
        (["detect", "train", "--frames", "9:3", "-o", "{tmp}/a.pt"], "--frames '9:3'"),
        (["detect", "train", "--head-features", "delta", "--train-backbone", "-o", "{tmp}/a.pt"], "frozen"),
        (["detect", "train", "--lr", "nan", "-o", "{tmp}/a.pt"], "finite"),
        (["detect", "train", "-o", "{tmp}"], "is a folder"),
        (["detect", "train", "--video", "{tmp}/junk.pt", "-o", "{tmp}/junk.pt"], "is the input video"),
        (["detect", "eval", "--checkpoint", "{tmp}/missing.pt"], "no such file"),
        (["detect", "eval", "--checkpoint", "{tmp}/junk.pt"], "not a readable"),
        (["detect", "eval", "--checkpoint", "{tmp}/plain.pt"], "not written by `deltatune detect train`"),
        (["detect", "eval", "--checkpoint", "{tmp}/plain.pt", "--threshold", "-1"], "--threshold"),
        (["detect", "eval", "--checkpoint", "{tmp}/plain.pt", "--score-threshold", "2"], "--score-threshold"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "junk.pt").write_bytes(b"junk")
    torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pt")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    # named as argparse names its own errors of the action: "deltatune detect eval: error: ..."
    who = " ".join(argv[:2])  # "detect", or "detect train" / "detect eval"
    assert len(err.splitlines()) == 1 and err.startswith(f"deltatune {who}: error:"), err
    assert message in err, err


def test_help_lists_both_actions(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    text = capsys.readouterr().out
    assert "train" in text and "eval" in text
