"""Bad input, table-driven: every case is one line on stderr naming the input, exit code 2, no traceback.

Each case fails before any model work (they all run in well under a second each).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deltatune.cli import main

TINY = ["search", "--model", "hrnet_tiny", "--weights", "none", "--frames", "6", "--trials", "1"]
STUDY = """\
[study]
name = "bad"
kind = "search"
model = "hrnet"
frames = 16
[fixed]
trials = 2
[factors]
strategy = ["tpe", "sweep"]
"""


def _damaged_journal(path: Path) -> None:
    """A real Optuna journal with one line in the middle cut short (as a crash mid-write would leave it)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.create_study(study_name="dmg", storage=JournalStorage(JournalFileBackend(str(path))))
    for _ in range(3):
        study.enqueue_trial({"x": 1.0})
    lines = path.read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder: a results dir with a good, a random-bytes and a damaged journal, a study file."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(tmp_path / "res"))
    monkeypatch.chdir(tmp_path)
    res = tmp_path / "res"
    res.mkdir()
    (res / "rnd.journal").write_bytes(os.urandom(3000))
    _damaged_journal(res / "dmg.journal")
    (tmp_path / "folder").mkdir()
    (tmp_path / "s.toml").write_text(STUDY)
    (tmp_path / "bad_labels.csv").write_text("x,y\n1,2\n")
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "bad_thr.json").write_text('{"nope": 1}')
    (tmp_path / "dc_bad.json").write_text('{"0": 0.1, "1": "x"}')
    (tmp_path / "dc_gap.json").write_text('{"0": 0.1, "1": 0.2, "3": 0.3}')
    (tmp_path / "s.journal").write_text("")  # a search's storage (its content does not matter here)
    (tmp_path / "runs.csv").write_text("seed,lr,acc\n0,0.1,0.5\n0,0.01,0.6\n")
    from PIL import Image

    for name, count in (("three", 3), ("one", 1)):
        (tmp_path / name).mkdir()
        for i in range(count):
            Image.new("RGB", (64, 48), (i * 40, 0, 0)).save(tmp_path / name / f"{i:04d}.png")
    return tmp_path


CASES: list[tuple[list[str], str]] = [
    (TINY + ["--study", "x" * 300], "use a plain name of 1-100 characters"),
    (TINY + ["--study", ""], "--study '': use a plain name"),
    (TINY + ["--study", "a/b"], "no path separators"),
    (TINY[:-1] + ["0"], "--trials 0: need at least 1"),
    (TINY + ["--budget", "-1"], "--budget -1.0: must be a finite number >= 0"),
    (TINY + ["--jobs", "0"], "--jobs 0: need at least 1 worker"),
    (TINY + ["--space", "nope"], "--space 'nope' is unknown"),
    (TINY + ["--strategy", "nope"], "--strategy 'nope' is unknown"),
    (TINY + ["--speed", "nope"], "--speed 'nope' is unknown"),
    (TINY + ["--modes", "foo"], "--modes foo: choose from"),
    (TINY + ["--storage", "nope://x"], "unknown scheme 'nope'"),
    (TINY + ["--storage", "sqlite:///afile/x.db"], "--storage sqlite:///afile/x.db: cannot create afile ("),
    (TINY + ["--storage", "folder"], "not a storage URL"),
    (["bench", "--model", "hrnet_tiny", "--weights", "none", "--layers", "-1"], "--layers must be >= 0"),
    (TINY + ["--storage", "sqlite:///"], "--storage sqlite:///: sqlite URL needs a file"),
    (TINY + ["--storage", "sqlite:///folder"], "folder is a folder, not a database file"),
    (["pareto", "--storage", "sqlite:///typo.db"], "--storage sqlite:///typo.db: no such database file"),
    (["export", "--storage", "sqlite:///typo.db", "--trial", "0"], "no such database file"),
    (["report", "sqlite:///typo.db"], "sqlite:///typo.db: no such database file"),
    (TINY + ["--labels", "missing.csv"], "--labels missing.csv: no such file"),
    (TINY + ["--labels", "folder"], "--labels folder: a folder, not a file"),
    (["inspect", "--model", "hrnet_tiny", "--weights", "folder"], "checkpoint folder: a folder, not a file"),
    (["inspect", "--model", "hrnet_tiny", "--thresholds", "folder"], "thresholds file folder: a folder, not"),
    (TINY + ["--labels", "bad_labels.csv"], "missing CSV columns"),
    (TINY + ["--jobs", "2", "--strategy", "deltacnn-greedy"], "is sequential"),
    (TINY + ["--keyframes", "8,x"], "--keyframes '8,x': expected comma-separated numbers"),
    (TINY + ["--keyframes", "-4"], "--keyframes -4: need integers >= 0"),
    (TINY + ["--retime", "-1"], "--retime -1: must be >= 0"),
    (TINY + ["--also-on", "vtest@x"], "--also-on 'vtest@x': expected \"video@first-frame\""),
    (TINY + ["--also-on", "no_such_clip.mp4@3"],
     "--also-on no_such_clip.mp4@3: video source no_such_clip.mp4 does not exist"),
    (TINY + ["--also-on", "vtest@790"],
     "--also-on vtest@790: --frames 6: vtest has 795 frame(s), 5 from frame 790; need 6 "
     "(--frames 5 or fewer, or an earlier start (vtest@N))"),
    (TINY + ["--also-on", "vtest@100", "--train", "--train-frames", "90:130"],
     "--train-frames 90:130 overlap segment vtest@100's frames 100:106"),
    (TINY + ["--spread", "1"], "--spread 1: need at least 2 stretches"),
    (TINY + ["--spread", "3", "--start", "788"],
     "--spread 3: vtest has 795 frames, too few for 3 stretches of --frames 6 from frame 788"),
    (TINY + ["--also-on", "vtest@100", "--aggregate", "q100"], "--aggregate 'q100' is unknown"),
    # a segment written without @N starts at 0: the clip itself, scored twice for nothing
    (TINY + ["--also-on", "vtest"], "--also-on vtest@0: the same stretch as the clip itself"),
    (TINY + ["--also-on", "vtest@100", "vtest@100"], "--also-on vtest@100: the same stretch as another"),
    (TINY + ["--aggregate", "q90"], "--aggregate q90: applies only with --also-on or --spread"),
    (TINY + ["--retime-repeats", "1"], "--retime-repeats 1: need at least 2 rounds"),
    (TINY + ["--refit", "--speed", "macs"], "--refit: only --speed latency uses a latency model"),
    (TINY + ["--plot", "front.xyz"], "--plot front.xyz: unsupported file type '.xyz'"),
    (TINY + ["--window", "1,2,3"], "crop window '1,2,3' is not four integers"),
    # argparse took a value starting with "-" for an option: "expected one argument"
    (TINY + ["--window", "-5,0,100,100"], "crop window -5,0,100,100 needs x,y >= 0"),
    # a folder is the problem, not its name's missing suffix ("unsupported file type '(none)'")
    (TINY + ["--plot", "folder"], "--plot folder: is a folder; give a file name"),
    (TINY + ["--window", "700,500,240,320"], "outside the 768x576 frame"),
    (TINY + ["--window", "0,0,240,320", "--streams", "2"], "--streams 2: 1 --window given"),
    (["search", "--model", "nope"], "nope"),
    (["search", "--model", "fasterrcnn_mobilenet_v2"], "score pose and classification models"),
    # the detector's box head cannot be traced: these said "torch.fx cannot trace this model ... removed"
    (["inspect", "--model", "fasterrcnn_mobilenet_v2", "--frames", "3"],
     "--model fasterrcnn_mobilenet_v2: a detector; `deltatune inspect` covers pose models and classifiers (a "
     "detector from `deltatune detect train`: `deltatune detect eval` scores and times its delta backbone, "
     "`deltatune predict` runs it over a video)"),
    (["bench", "--model", "fasterrcnn_mobilenet_v2", "--frames", "3"],
     "a detector; `deltatune bench` covers pose models and classifiers (a detector from"),
    (["calibrate", "--model", "fasterrcnn_mobilenet_v2"],
     "a detector; `deltatune calibrate` covers pose models and classifiers (a detector from"),
    (["search", "--model", "mobilenet_v2", "--labels", "bad_labels.csv"], "keypoint labels apply to pose"),
    (["search", "--model", "mobilenet_v2", "--all-joints"], "--all-joints: applies to pose models"),
    (["search", "--model", "hrnet", "--weights", "missing.pt"], "--weights missing.pt: no such file"),
    (TINY[:5] + ["--frames", "2"], "--frames 2: need at least 4 frames"),
    (TINY[:5] + ["--frames", "900"],
     "--frames 900: vtest has 795 frame(s); need 900 (--frames 795 or fewer)"),
    (TINY + ["--video", "missing.mp4"], "missing.mp4"),
    (["pareto", "--study", "missing"], "missing"),
    (["pareto", "--study", "rnd"], "journal"),
    (["pareto", "--study", "dmg"], "corrupt"),
    (["pareto", "--study", "rnd", "--csv", "/proc/x.csv"], "--csv /proc/x.csv: cannot write there"),
    (["pareto", "--study", "rnd", "--plot", "x.xyz"], "--plot x.xyz: unsupported file type '.xyz'"),
    (["pareto", "--study", "rnd", "--csv", "folder"], "--csv folder: is a folder; give a file name"),
    (["pareto", "--study", "rnd", "--csv", "afile/x.csv"], "--csv afile/x.csv: cannot create afile"),
    (["export", "--study", "rnd", "--trial", "0", "-o", "folder"],
     "-o folder: is a folder; give a file name"),
    (["export", "--study", "rnd", "--trial", "0", "-o", "/proc/x.json"], "cannot write there"),
    (["detect", "eval", "--checkpoint", "det.pt", "--backbone", "classic", "--threshold", "0.05"],
     "--threshold 0.05: applies to the delta backbone; --backbone classic runs the dense one only"),
    (["report", "missing.db"], "missing.db: no such file"),
    (["report", "s.toml"], "no results yet"),
    (["report", "s.journal"], "s.journal: is a search study's journal, not an ablation study; "
                              "`deltatune pareto --storage s.journal` shows it"),
    (["report", "s.toml", "--alpha", "2"], "--alpha 2.0: must be between 0 and 1"),
    (["report", "s.toml", "-o", "x.pdf"], "-o x.pdf: unsupported file type"),
    (["report", "s.toml", "--unit", "seed"], "--unit: applies to a CSV table of runs; s.toml is a study"),
    (["report", "runs.csv"], "runs.csv: one row per run (no 'metric' and 'value' columns): say which"),
    # options that select a stored study mean nothing for a table, or for a file that names its study
    (["report", "runs.csv", "--factors", "lr", "--study", "x"],
     "--study x: applies to a study's results (a study file, its .db file or a storage URL); runs.csv is"),
    (["report", "runs.csv", "--factors", "lr", "--storage", "sqlite:///r.db"],
     "--storage sqlite:///r.db: applies"),
    (["report", "s.toml", "--study", "other"],
     "--study other: s.toml names its study (bad); leave out --study"),
    (["report", "runs.csv", "--factors", "lr", "--margin", "acc=x"], "--margin acc=x: write METRIC=X"),
    (["report", "runs.csv", "--factors", "lr", "--margin", "acc=inf"],
     "--margin acc=inf: the margin must be a finite number > 0"),
    (["report", "runs.csv", "--factors", "lr", "--baseline", "lr"], "--baseline lr: write FACTOR=LEVEL"),
    (["report", "missing.csv"], "missing.csv: no such file"),
    (["report", "runs.csv", "--factors", "lr", "--csv", "./runs.csv"], "that is the table being read"),
    (["report", "runs.csv", "--factors", "lr", "-o", "r.md", "--md", "s.md"], "-o r.md: is a Markdown"),
    (["ablate", "s.toml", "--jobs", "0"], "--jobs 0: need at least 1 worker"),
    (["ablate", "s.toml", "--heartbeat", "0"], "--heartbeat 0.0: must be a finite number of seconds > 0"),
    (["ablate", "s.toml", "--heartbeat", "inf"], "--heartbeat inf: must be a finite number of seconds > 0"),
    (["ablate", "s.toml", "--storage", "x.journal"], "ablate needs an RDB URL"),
    (["ablate", "s.toml", "--storage", "sqlite:///folder"], "is a folder"),
    (["ablate", "missing.toml"], "missing.toml: no such study file"),
    (["ablate", "afile"], "afile"),
    (["inspect", "--model", "nope"], "nope"),
    (
        ["inspect", "--model", "hrnet_tiny", "--weights", "none", "--frames", "2000"],
        "has 795 frame(s)",
    ),
    (
        ["inspect", "--model", "hrnet_tiny", "--weights", "none", "--video", "three", "--frames", "200"],
        "--frames 200: three has 3 frame(s); need 200 (--frames 3 or fewer)",
    ),
    (
        ["bench", "--model", "hrnet_tiny", "--weights", "none", "--video", "three", "--frames", "40"],
        "--frames 40: three has 3 frame(s)",
    ),
    (
        ["inspect", "--model", "hrnet_tiny", "--weights", "none", "--video", "one", "--frames", "2"],
        "has 1 frame(s); need 2 (a clip needs at least 2 frames: give a longer video or a folder",
    ),
    (
        [
            "bench",
            "--model",
            "hrnet_tiny",
            "--weights",
            "none",
            "--video",
            "three",
            "--frames",
            "3",
            "--start",
            "2",
        ],
        "3 frame(s), 1 from --start 2; need 3 (an earlier --start)",
    ),
    (["bench", "--model", "hrnet_tiny", "--weights", "none", "--threshold", "-1"], "--threshold must be"),
    (["bench", "--model", "hrnet_tiny", "--weights", "none", "--video", "three", "--frames", "3",
      "--thresholds", str(Path(__file__).resolve().parents[2] / "studies/thresholds/blazepose.json")],
     "(made for model blazepose, not hrnet_tiny) does not match the model's truncation points"),
    (["bench", "--model", "hrnet_tiny", "--weights", "none", "--repeats", "0"], "--repeats"),
    (["bench", "--model", "hrnet_tiny", "--weights", "none", "--device", "gpu0"], "--device 'gpu0' is not"),
    (["bench", "--model", "hrnet_tiny", "--weights", "none", "--window", "1,2,3"], "crop window '1,2,3'"),
    (
        ["bench", "--model", "hrnet_tiny", "--weights", "none", "--window", "700,500,240,320"],
        "outside",
    ),
    (["inspect", "--model", "hrnet_tiny", "--weights", "none", "--window", "a,b,c,d"], "window 'a,b,c,d'"),
    (["inspect", "--model", "hrnet_tiny", "--weights", "none", "--window", "0,0,900,10"], "outside"),
    (["calibrate", "--model", "nope"], "nope"),
    (["calibrate", "--model", "hrnet_tiny", "--weights", "none", "--batch", "0"], "--batch must be"),
    (["calibrate", "--model", "hrnet_tiny", "--weights", "none", "--batch", "9"], "--batch 9 exceeds"),
    (["calibrate", "--model", "hrnet_tiny", "--weights", "none", "--repeats", "0"], "--repeats must be"),
    (["calibrate", "--model", "hrnet_tiny", "--weights", "none", "--threads", "0"], "--threads must be"),
    # NaN is no loss and within infinity is every trial: refused before the study is looked up
    (["export", "--study", "nosuch", "--best-under", "nan"],
     "--best-under nan: must be a finite number >= 0 (accuracy points)"),
    (["export", "--study", "nosuch", "--best-under", "inf"],
     "--best-under inf: must be a finite number >= 0 (accuracy points)"),
    # a thresholds file is checked before the model is built: no random-weights warning line first
    (["inspect", "--model", "pose_resnet50", "--thresholds", "bad_thr.json"],
     "thresholds file bad_thr.json: not a deltatune thresholds file"),
    (["bench", "--model", "pose_resnet50", "--thresholds", "dc_bad.json"],
     "dc_bad.json: 1: threshold 'x' is"),
    (["predict", "--model", "pose_resnet50", "--weights", "none", "--thresholds", "dc_bad.json",
      "-o", "p.csv"], "dc_bad.json: 1: threshold 'x' is not a number"),
    (["predict", "--model", "pose_resnet50", "--weights", "none", "--thresholds", "dc_gap.json",
      "-o", "p.csv"], 'DeltaCNN thresholds file dc_gap.json: keys must be "0".."2"'),
    # distill takes the weights as --evaluate FILE: the registry's "or --weights none" named no option of it
    (["distill", "--student", "hrnet_tiny", "--evaluate", "default", "--heldout", "vtest:650-651"],
     "--evaluate default: hrnet_tiny has no default weights; give a weights file (--evaluate FILE)"),
    (["distill", "--width", "8", "--evaluate", "default", "--heldout", "vtest:650-651"],
     "--evaluate default: --width 8: an HRNet of that width has no default weights; give a weights file"),
    # weights go to torch's files: a .txt of weights was written without a word
    (["distill", "--student", "hrnet_tiny", "--max-steps", "1", "--out", "w.txt"],
     "--out w.txt: unsupported file type '.txt'; use one of .pt, .pth"),
    (["finetune", "--model", "hrnet_tiny", "--weight-decay", "0.1", "-o", "w.txt"],
     "--out w.txt: unsupported file type '.txt'; use one of .pt, .pth"),
    (["detect", "train", "-o", "w"], "--out w: unsupported file type '(none)'; use one of .pt, .pth"),
    # a held-out PCK on frames the student trained on says how well it remembers them
    (["distill", "--student", "hrnet_tiny", "--max-steps", "1", "--frames", "vtest:0-7",
      "--heldout", "vtest:0-7"],
     "--heldout vtest:0-7 overlaps --frames vtest:0-7: frames 0-7 of vtest are in both; hold out frames the "
     "student does not train on"),
    (["distill", "--student", "hrnet_tiny", "--max-steps", "1", "--frames", "carphone:0-9,vtest:0-599:3",
      "--heldout", "vtest:0-20:2"],
     "--heldout vtest:0-20:2 overlaps --frames vtest:0-599:3: frames 0-18:6 of vtest are in both"),
]


@pytest.mark.parametrize(("argv", "needle"), CASES, ids=[f"{i:02d}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(
    ws: Path, argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in err and needle in lines[0], lines[0]


def test_study_file_errors_name_file_line_field(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for old, new, needle in [
        ("frames = 16", 'frames = "sixteen"', "s.toml:5: study.frames: expected an integer, got 'sixteen'"),
        ("trials = 2", 'budget = "high"',
         "s.toml:7: fixed.budget: expected a finite number >= 0, got 'high'"),
        ('strategy = ["tpe", "sweep"]', 'colour = ["red"]', "s.toml:9: factors.colour: unknown factor"),
    ]:
        (ws / "s.toml").write_text(STUDY.replace(old, new))
        assert main(["ablate", "s.toml"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err


@pytest.mark.parametrize("where", ["/proc/deltatune-data", "afile"])
def test_data_dir_that_cannot_be_written(
    ws: Path, monkeypatch: pytest.MonkeyPatch, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DELTATUNE_DATA", where)
    assert main(["data", "fetch", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and where in err, err


def test_results_dir_that_is_a_file(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(ws / "afile"))
    assert main(TINY) == 2
    assert "$DELTATUNE_RESULTS" in capsys.readouterr().err


def test_a_search_stopped_by_bad_input_leaves_no_journal_or_folder(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DELTATUNE_RESULTS", str(ws / "fresh" / "results"))
    assert main([*TINY, "--video", "missing.mp4"]) == 2
    assert main([*TINY, "--video", "missing.mp4", "--storage", "sub/dir/x.journal"]) == 2
    # a new SQLite file holds Optuna's tables once opened, but no study: removed too
    assert main([*TINY, "--video", "missing.mp4", "--storage", "sqlite:///lite/dir/x.db"]) == 2
    assert "missing.mp4" in capsys.readouterr().err
    assert not (ws / "fresh").exists() and not (ws / "sub").exists() and not (ws / "lite").exists()
    # an existing journal stays, even empty; so does an existing SQLite file without a study
    (ws / "kept.journal").touch()
    assert main([*TINY, "--video", "missing.mp4", "--storage", "kept.journal"]) == 2
    assert (ws / "kept.journal").is_file()
    (ws / "kept.db").touch()
    assert main([*TINY, "--video", "missing.mp4", "--storage", "sqlite:///kept.db"]) == 2
    assert (ws / "kept.db").is_file()


def test_a_refused_command_leaves_no_output_folder(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Checking an output path created its folders, so a command refused after the check left them."""
    assert main(["predict", "--model", "nosuch", "-o", "new/sub/out.csv"]) == 2
    assert main(["export", "--study", "nosuch", "--trial", "0", "-o", "new2/t.json"]) == 2
    assert main(["inspect", "--model", "nosuch", "--plot", "new3/p.png"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert not any((ws / d).exists() for d in ("new", "new2", "new3"))


def test_an_output_in_place_of_the_input_video_is_refused(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--overlay clip.mp4`` on ``--video clip.mp4`` replaced the video with its overlay at the end."""
    clip = ws / "clip.mp4"
    clip.write_bytes(b"not decoded: refused before")
    assert main(["predict", "--model", "hrnet", "--video", "clip.mp4", "-o", "o.csv",
                 "--overlay", str(clip)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"deltatune predict: error: --overlay {clip}: is the input video (--video clip.mp4); "
                   "give another file name"), err
    assert clip.read_bytes() == b"not decoded: refused before" and not (ws / "o.csv").exists()



@pytest.mark.parametrize("command", ["inspect", "bench", "search"])
def test_a_plot_into_the_input_image_folder_is_refused(
    ws: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench --video frames --plot frames/f1.png`` drew its plot over one of the frames it had read
    (exit 0), and a plot under a new name in that folder became a frame of the video the next command
    read."""
    from PIL import Image

    frames = ws / "frames"
    frames.mkdir()
    for i in range(4):
        Image.new("RGB", (64, 48), (40 * i, 0, 0)).save(frames / f"f{i}.png")
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    base = [command, "--model", "hrnet_tiny", "--weights", "none", "--frames", "4"]
    cases = [
        (["--video", "frames", "--plot", "frames/f1.png"],
         "--plot frames/f1.png: would be one of the frames of the input image folder (--video frames)"),
        (["--video", str(frames), "--plot", "frames/where.PNG"],
         f"--plot frames/where.PNG: would be a new frame of the input image folder (--video {frames})"),
        (["--video", "frames/f0.png", "--plot", str(frames / "f0.png")],
         f"--plot {frames / 'f0.png'}: is the input video (--video frames/f0.png)"),
    ]
    for extra, needle in cases:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"deltatune {command}: error: {needle}") and len(err.splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before


def test_distill_refuses_weights_in_place_of_a_video_it_reads(
    ws: Path, carphone_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``distill --frames carphone:0-3 --out <carphone's file>`` wrote the weights over the sample (exit 0),
    where finetune and detect train refuse their input video: every video of --frames and --heldout
    (the default held-out frames too) is an input."""
    import shutil

    data = ws / "data"  # a copy of the sample: the command must not reach the shared one
    data.mkdir()
    clip = data / carphone_path.name
    shutil.copy(carphone_path, clip)
    monkeypatch.setenv("DELTATUNE_DATA", str(data))
    before = clip.read_bytes()
    base = ["distill", "--student", "hrnet_tiny", "--epochs", "1", "--max-steps", "1", "--out", str(clip)]
    for frames, said in [
        (["--frames", "carphone:0-3", "--heldout", ""], "--frames carphone:0-3"),
        (["--frames", "missing.mp4:0-3", "--heldout", "carphone:10-13"], "--heldout carphone:10-13"),
        (["--frames", f"{clip}:0-3", "--heldout", ""], f"--frames {clip}:0-3"),
    ]:
        assert main([*base, *frames]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"deltatune distill: error: --out {clip}: is the input video ({said}); give another "
                       "file name"), err
        assert clip.read_bytes() == before and not clip.with_name(clip.name + ".ckpt").exists()


def test_an_overlay_onto_a_samples_own_file_is_refused(
    ws: Path, carphone_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--video carphone --overlay <carphone's file>`` replaced the shared sample with a few overlay
    frames, and every later command found it corrupt: the sample's name resolves to its file before the
    check."""
    before = carphone_path.stat()
    assert main(["predict", "--model", "hrnet", "--video", "carphone", "--frames", "2", "-o", "o.csv",
                 "--overlay", str(carphone_path)]) == 2
    assert f"--overlay {carphone_path}: is the input video (--video carphone)" in capsys.readouterr().err
    after = carphone_path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_run_that_fails_partway_leaves_no_output_folder(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder whose last image is broken fails only when it is reached, after the outputs' temporary files
    were opened: the folders made for them went with them."""
    import shutil

    shutil.copytree(ws / "three", ws / "late")
    (ws / "late" / "0003.png").write_bytes(b"not an image")
    argv = ["predict", "--model", "hrnet_tiny", "--weights", "none", "--video", "late", "--no-progress"]
    assert main([*argv, "-o", "out/sub/l.csv", "--overlay", "out/l.mp4"]) == 2
    said = "0003.png cannot be read (Pillow cannot identify it: empty, damaged, or a format it does not know)"
    assert said in capsys.readouterr().err
    assert not (ws / "out").exists()
    assert main([*argv, "-o", "l.csv", "--overlay", "out2/l.mp4"]) == 2
    assert not (ws / "out2").exists() and not (ws / "l.csv").exists()


def test_debug_shows_the_traceback_and_keeps_the_exit_code(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--debug`` re-raised the error: the traceback, but exit code 1 where the same input gives 2."""
    assert main(["--debug", "predict", "--model", "nosuch", "-o", "x.csv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "Traceback (most recent call last):" and err[-1].startswith("deltatune predict: error: ")


def test_a_clip_past_the_end_of_a_video_that_does_not_say_its_length(
    ws: Path, vtest_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A WebM (VP9) container gives no frame count, so the clip's length shows only once it is decoded:
    the refusal then is the one every other too-short clip gets, and nothing is written."""
    import av

    from deltatune.data import read_frames

    path = ws / "clip.webm"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 192, 256, "yuv420p"
        for f in read_frames(vtest_path, count=5):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f[:256, 100:292].copy(), format="rgb24")))
        out.mux(stream.encode())
    monkeypatch.setenv("DELTATUNE_RESULTS", str(ws / "fresh"))
    assert main([*TINY[:5], "--frames", "8", "--trials", "1", "--video", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"deltatune search: error: --frames 8: {path} has 5 frame(s); need 8 "
                       "(--frames 5 or fewer)")
    assert not (ws / "fresh").exists()
    out = ws / "p.csv"  # predict from past its end: the same, in predict's words
    assert main(["predict", "--model", "hrnet", "--video", str(path), "--start", "9", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"deltatune predict: error: --start 9: frame 9 is beyond the end of {path} (5 frames)"
    assert not out.exists()


@pytest.mark.parametrize("command", [["bench"], ["inspect"], ["predict", "-o", "p.csv"]])
def test_a_thresholds_file_for_another_model_is_refused_before_any_frame_is_decoded(
    ws: Path, vtest_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Converting the model is enough to see that a thresholds file does not fit it; decoding a long clip
    first took seconds. On vtest cut after its second frame (its header, stating 795 frames, intact) the
    clip from frame 5 cannot be decoded, so the refusal is the thresholds file's only when no frame was
    read before it."""
    cut = ws / "cut.avi"
    cut.write_bytes(vtest_path.read_bytes()[:100_000])
    blazepose = Path(__file__).resolve().parents[2] / "studies/thresholds/blazepose.json"
    argv = [*command, "--model", "hrnet_tiny", "--weights", "none", "--video", str(cut), "--start", "5",
            "--frames", "10", "--window", "0,0,96,128", "--thresholds", str(blazepose), "--no-progress"]
    assert main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    said = (f"deltatune {command[0]}: error: thresholds file {blazepose} "
            "(made for model blazepose, not hrnet_tiny)")
    assert len(err) == 1 and err[0].startswith(f"{said} does not match"), err
    assert not (ws / "p.csv").exists()


@pytest.mark.parametrize("command", [["bench", "--start", "5", "--no-progress"], ["calibrate"]])
def test_a_batch_beyond_the_streams_is_refused_before_any_frame_is_decoded(
    ws: Path, vtest_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The streams are the crop windows (here the whole frame, one): ``--batch 2`` is refused before the
    clip is read. On vtest cut after its second frame (its header, stating 795 frames, intact) the clip
    cannot be decoded, so the refusal is the batch's only when no frame was read before it."""
    cut = ws / "cut.avi"
    cut.write_bytes(vtest_path.read_bytes()[:100_000])
    argv = [*command, "--model", "hrnet_tiny", "--weights", "none", "--video", str(cut), "--frames", "10",
            "--batch", "2"]
    assert main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    said = "--batch 2 exceeds the 1 crop window (stream) of this video"
    assert err == [f"deltatune {command[0]}: error: {said}"]


def test_a_study_stopped_by_bad_input_leaves_no_results_folder(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, ``ablate`` made the sqlite file's folder while checking the storage URL, ahead of the study's
    inputs: a refused study (or a ``--dry-run``) left an empty results folder behind."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(ws / "fresh" / "results"))
    (ws / "s.toml").write_text(STUDY.replace("frames = 16", 'frames = 16\nvideo = "missing.mp4"'))
    assert main(["ablate", "s.toml"]) == 2
    assert main(["ablate", "s.toml", "--storage", "sqlite:///sub/dir/x.db"]) == 2
    assert "missing.mp4" in capsys.readouterr().err
    (ws / "s.toml").write_text(STUDY)
    assert main(["ablate", "s.toml", "--dry-run"]) == 0
    assert not (ws / "fresh").exists() and not (ws / "sub").exists()
    assert main(["ablate", "s.toml", "--storage", "sqlite:///afile/x.db"]) == 2
    assert "cannot create afile (" in capsys.readouterr().err


def _blank_frames(folder: Path, count: int) -> None:
    """``count`` nearly uniform grey 320x240 PNG frames (nobody in view) in ``folder``."""
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (320, 240), (90 + i, 90, 90)).save(folder / f"{i:04d}.png")


def test_a_search_on_frames_where_the_model_finds_nobody_is_refused(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only present keypoints count by default: on frames without people every setting would lose 0
    points, and the search would recommend any threshold. Real hrnet weights, blank frames."""
    _blank_frames(ws / "blank", 8)
    argv = ["search", "--model", "hrnet", "--video", "blank", "--frames", "6", "--trials", "1",
            "--speed", "macs", "--study", "nobody", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--video blank: the dense hrnet finds no keypoint" in err and "--all-joints" in err
    assert not (ws / "res" / "nobody.journal").exists()
    # the same for a segment the budget must also hold on
    also = ["search", "--model", "hrnet", "--frames", "6", "--trials", "1", "--speed", "macs",
            "--study", "nobody2", "--no-progress", "--also-on", "blank@0"]
    assert main(also) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--also-on blank: the dense hrnet finds no keypoint" in err
    assert not (ws / "res" / "nobody2.journal").exists()
    # a segment that starts later is named as one, with its own frames
    assert main([*also[:-1], "blank@2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "search: error: segment blank@2: the dense hrnet finds no keypoint" in err
    assert "frames 3..5 of blank" in err


def test_a_search_where_every_keypoint_counts_names_the_real_cause(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BlazePose has no presence threshold (its heatmaps are unnormalised), so every keypoint counts; on
    frames without people it puts them all at one point, and PCK (whose box needs two distinct
    keypoints) counts none. The refusal says so, not "heatmap peak above None", and does not suggest
    --all-joints, which would change nothing. Real MediaPipe weights, blank frames."""
    from deltatune_models import model_info

    if not model_info("blazepose").weights.startswith("available"):
        pytest.skip("BlazePose's MediaPipe weights are not in the data cache (make data fetches them)")
    _blank_frames(ws / "blank", 6)
    argv = ["search", "--model", "blazepose", "--video", "blank", "--frames", "6", "--trials", "1",
            "--speed", "macs", "--study", "nobody3", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--video blank: the dense blazepose puts no person's keypoints at two distinct points" in err
    assert "None" not in err and "--all-joints" not in err and "--labels" in err
    assert not (ws / "res" / "nobody3.journal").exists()


def test_a_search_on_random_weights_that_find_no_keypoint_says_the_weights_are_the_cause(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pose_resnet50 has no default weights; its random heatmaps peak nowhere above 0.2 on vtest. The
    refusal names the model and the missing weights, not the video (which has people in view)."""
    argv = ["search", "--model", "pose_resnet50", "--frames", "6", "--trials", "1", "--speed", "macs",
            "--study", "random-pose", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "--model pose_resnet50: with random weights the dense model finds no keypoint" in err[0]
    assert "pass --weights FILE" in err[0]
    assert not (ws / "res" / "random-pose.journal").exists()


def test_pareto_reads_storages_without_creating_them_and_points_ablations_to_report(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped sqlite file was created empty, and the error then said it 'holds 0 search studies'; a
    storage of ablations only now names them and the command that reports one."""
    import optuna

    from deltatune.ablation.store import META_KEY

    assert main(["pareto", "--storage", "sqlite:///typo.db"]) == 2
    assert main(["report", "sqlite:///typo.db"]) == 2
    assert not (ws / "typo.db").exists()
    url = f"sqlite:///{ws / 'ab.db'}"
    optuna.create_study(study_name="ab", storage=url).set_user_attr(META_KEY, {"spec": {}})
    capsys.readouterr()
    assert main(["pareto", "--storage", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"holds no search study, only ablation studies (ab); `deltatune report {url}` reports one"
    )


def test_a_full_disk_is_found_behind_the_error_it_caused() -> None:
    """Optuna's journal writer, out of disk space, raised ``AssertionError: Should not reach`` while
    handling the OSError; the CLI printed the whole traceback. The disk error is found in the chain (and
    the CLI says it in one line); other errors are not taken for one."""
    import errno

    from deltatune.cli import _disk_error

    try:
        try:
            with open("/dev/full", "w") as f:  # noqa: PTH123 - the device that is always full
                f.write("x")
        except OSError:
            raise AssertionError("Should not reach") from None
    except AssertionError as exc:
        assert exc.__cause__ is None and isinstance(exc.__context__, OSError)
        found = _disk_error(exc)
    assert found is not None and found.errno == errno.ENOSPC
    assert _disk_error(ValueError("x")) is None and _disk_error(OSError(errno.ENOENT, "gone")) is None


def test_fine_tuning_the_detector_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The detector's output is a list of boxes per image: fine-tuning it crashed at the first step with
    "AttributeError: 'list' object has no attribute 'dim'" (exit 1). It is refused before any work, and
    the line says how the detector trains."""
    out = tmp_path / "frcnn.pt"
    argv = ["finetune", "--model", "fasterrcnn_mobilenet_v2", "--steps", "2", "--weight-decay", "0.1",
            "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["deltatune finetune: error: --model fasterrcnn_mobilenet_v2: a detector; fine-tuning "
                   "covers pose models and classifiers (the detector's head trains with `deltatune detect "
                   "train`)"]
    assert not list(tmp_path.iterdir())


def test_a_threshold_for_dense_head_features_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``detect train --head-features dense --threshold 0.1`` trained for five minutes exactly as without
    --threshold (the threshold is the delta backbone's); it is refused before any work."""
    out = tmp_path / "a.pt"
    assert main(["detect", "train", "--head-features", "dense", "--threshold", "0.1", "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "deltatune detect train: error: --threshold 0.1: the delta backbone's threshold; it applies with "
        "--head-features delta only"]
    assert not list(tmp_path.iterdir())


def test_a_bad_thresholds_file_is_refused_before_the_random_weights_warning(ws: Path) -> None:
    """As a user's shell shows it: pose_resnet50 has no default weights, so building it warns; a bad
    thresholds file must be the only line, refused before the model is built."""
    for cmd in ("inspect", "bench"):
        done = subprocess.run([sys.executable, "-m", "deltatune", cmd, "--model", "pose_resnet50",
                               "--thresholds", "bad_thr.json"], cwd=ws, capture_output=True, text=True,
                              timeout=300)
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        assert done.returncode == 2 and len(lines) == 1, (cmd, done.stderr)
        assert "bad_thr.json: not a deltatune thresholds file" in lines[0]


def test_report_from_another_folder_names_the_store_beside_the_study_file(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cd / && deltatune report /x/s.toml` said "no results yet ... run ablate first", though ablate had
    run in /x and its results were in /x/deltatune-results/."""
    (ws / "x" / "deltatune-results").mkdir(parents=True)
    (ws / "x" / "s.toml").write_text(STUDY)
    store = ws / "x" / "deltatune-results" / "bad.db"
    store.write_bytes(b"")
    assert main(["report", "x/s.toml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"there is one beside the study file: add --storage sqlite:///{store.resolve()}"), err
    assert main(["report", "s.toml"]) == 2
    assert "results are kept in deltatune-results/ of the folder it runs in" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_ablate_threads_0_is_refused_before_a_study_is_stored(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    """``--threads 0`` was checked after the study's database was made: the refused call left a study
    with no runs that then refused any change of the study file ("was run with a different design"),
    and ``--dry-run`` accepted it."""
    monkeypatch.setenv("DELTATUNE_RESULTS", str(ws / "results"))
    (ws / "s.toml").write_text(STUDY)
    assert main(["ablate", "s.toml", "--threads", "0", *extra]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert said[-1] == "deltatune ablate: error: --threads 0: need at least 1", said
    assert not (ws / "results").exists()
