"""``check_inputs``: a study's model, videos, windows and thresholds files are checked before any run starts,
each problem one line naming the study file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltatune.ablation import load_study
from deltatune.ablation.runner import check_inputs
from deltatune.delta.thresholds import load_thresholds, to_deltacnn
from deltatune.errors import ConfigError
from tests.ablation.conftest import TINY_SEARCH, write_study

ROOT = Path(__file__).resolve().parents[2]
HRNET = ROOT / "studies" / "thresholds" / "hrnet.json"
MOBILENET = ROOT / "studies" / "thresholds" / "mobilenet_v2.json"

STUDY = """\
[study]
name = "{{name}}"
kind = "evaluate"
model = "hrnet"
frames = 5
streams = 1
units = ["vtest@0"]

[factors]
thresholds = [{files}]
"""


def _study(tmp_path: Path, name: str, *files: Path) -> object:
    text = STUDY.format(files=", ".join(json.dumps(str(f)) for f in files))
    return load_study(write_study(tmp_path, text, name))


def test_thresholds_files_of_the_study_model_pass_in_either_format(tmp_path: Path) -> None:
    tf = load_thresholds(HRNET)
    names = list(tf.thresholds)  # the file lists the network's points in execution order
    deltacnn = tmp_path / "thresholds_hrnet.json"
    deltacnn.write_text(json.dumps(to_deltacnn(names, tf.thresholds)))
    check_inputs(_study(tmp_path, "fits", HRNET, deltacnn))


def test_a_thresholds_file_of_another_model_is_one_error_before_any_run(tmp_path: Path) -> None:
    """Before, every run that used it failed three times and ``ablate`` ended with 0 runs and exit 0."""
    with pytest.raises(ConfigError, match=r"other-model\.toml:10: factors\.thresholds: thresholds file "
                                          r".*mobilenet_v2.json .*does not match the model's truncation "
                                          r"points .*\(model hrnet\)"):
        check_inputs(_study(tmp_path, "other-model", HRNET, MOBILENET))
    broken = tmp_path / "broken.json"
    broken.write_text('{"input": 0.1,\n')
    with pytest.raises(ConfigError, match=r"broken-json\.toml:10: factors\.thresholds: thresholds file "
                                          r".*broken.json: not valid JSON"):
        check_inputs(_study(tmp_path, "broken-json", broken))
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"0": 0.1, "1": 0.1}))
    with pytest.raises(ConfigError, match="DeltaCNN thresholds file .*short.json: has 2 entries"):
        check_inputs(_study(tmp_path, "short", short))


def test_a_search_study_has_no_thresholds_files_to_check(tmp_path: Path) -> None:
    """Searches choose their own thresholds: the check passes them by (it once asked them for files)."""
    text = """\
[study]
name = "{name}"
kind = "search"
model = "hrnet"
frames = 6
windows = ["96,96,240,320"]
heldout = 2
repeats = 2

[fixed]
trials = 3

[factors]
strategy = ["random", "sweep"]
"""
    check_inputs(load_study(write_study(tmp_path, text, "a-search")))


BAD_INPUTS = [
    ('model = "hrnett"', r":4: study\.model: unknown model 'hrnett'"),
    ('units = ["vtest@0", "/no/such.mp4@0"]',
     r":7: study\.units: segment /no/such\.mp4@0: .*does not exist"),
    ('units = ["vtest@0"]\nwindows = ["700,0,240,320"]',
     r":8: study\.windows: segment vtest@0: crop window .*outside the 768x576 frame"),
    ('units = ["vtest@0", "vtest@793"]',
     r":7: study\.units: segment vtest@793: frames = 5: vtest has 795 frame\(s\), 2 from frame 793; need 5 "
     r"\(an earlier first frame\)$"),
    ('units = ["vtest@0"]\nweights = "/no/such.pth"',
     r":8: study\.weights: weights = /no/such\.pth: no such file$"),
]


@pytest.mark.parametrize(
    ("line", "pattern"), BAD_INPUTS, ids=["model", "video", "window", "frames", "weights"]
)
def test_a_bad_model_video_or_window_names_the_study_line_and_field(
    tmp_path: Path, line: str, pattern: str
) -> None:
    """Before, these errors named the video or window but not the study file, so a user of a long study file
    had to guess which field held it; a missing weights file was blamed on ``study.units`` in the command
    line's words (``--weights``)."""
    text = STUDY.format(files=json.dumps(str(HRNET)))
    key = line.split(" =")[0]
    text = "\n".join(line if row.startswith(f"{key} =") else row for row in text.splitlines())
    path = write_study(tmp_path, text, "bad")
    with pytest.raises(ConfigError, match=rf"^{path}{pattern}") as info:
        check_inputs(load_study(path))
    assert "\n" not in str(info.value)


def test_fine_tuning_frames_may_not_overlap_a_segment_the_runs_are_scored_on(tmp_path: Path) -> None:
    """A fine-tune that saw frames 10..15 would be scored on them too kindly as ``score_on`` vtest@10; by
    default the frames skip such segments (also_on ones too)."""
    from deltatune.ablation.execute import WorkerState, train_space

    text = TINY_SEARCH + """\
repeats = 2
score_on = ["vtest@10"]

[fixed]
trials = 2
train_frames = "6:14"

[factors]
train = ["on", "off"]
"""
    with pytest.raises(ConfigError, match=r"overlap\.toml:12: fixed\.train_frames: fine-tuning frames 6:14 "
                                          r"overlap segment vtest@10's"):
        check_inputs(load_study(write_study(tmp_path, text, "overlap")))
    spec = load_study(write_study(tmp_path, text.replace('train_frames = "6:14"\n', ""), "skip"))
    check_inputs(spec)
    point = next(iter(spec.points()))
    space = train_space(spec, point, WorkerState(spec, None).workload(), 0)
    assert space.start == 16  # after vtest@10's frames 10..15, not right after the clip at 6


def test_fine_tuning_frames_errors_are_located_in_the_study_files_words(tmp_path: Path) -> None:
    """A fine-tune's frames that overlap the clip, or (by default, after the clip) run past the video's end:
    one line at the field that sets them (train_frames, else the setting that turned the fine-tune on),
    in the study file's words. It once read ``tf.toml: train_frames: --train-frames 4:10 ...``: no line,
    and the command line's option."""
    text = TINY_SEARCH + """\
start = START
streams = 1
repeats = 1

[fixed]
trials = 2
finetune_steps = 2
train_frames = "4:10"
"""
    with pytest.raises(ConfigError) as info:
        check_inputs(load_study(write_study(tmp_path, text.replace("START", "0"), "clip")))
    assert str(info.value) == (
        f"{tmp_path / 'clip.toml'}:14: fixed.train_frames: fine-tuning frames 4:10 overlap the search's "
        "frames 0:6; fine-tune on frames the search does not score")
    late = text.replace("START", "780").replace('train_frames = "4:10"\n', "")
    with pytest.raises(ConfigError, match=r"late\.toml:13: fixed\.finetune_steps: fine-tuning frames "
                                          r"786:\d+: vtest has only \d+ frames"):
        check_inputs(load_study(write_study(tmp_path, late, "late")))


def test_a_study_finds_its_video_beside_it_from_any_working_directory(
    tmp_path: Path, still_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Videos, like weights and thresholds files, are found relative to the study file when the working
    directory has no such file: a study kept beside its clip runs from anywhere (it once failed with
    "video source clip does not exist" from another directory)."""
    import shutil

    from deltatune.ablation.execute import WorkerState

    home = tmp_path / "study"
    shutil.copytree(still_clip, home / "clip")
    shutil.copy(HRNET, home / "t.json")
    text = STUDY.replace('units = ["vtest@0"]', 'units = ["clip@0", "clip@1"]')
    text = text.replace("frames = 5", "frames = 4")
    spec = load_study(write_study(home, text.format(files='"t.json"'), "beside"))
    monkeypatch.chdir(tmp_path)
    check_inputs(spec)
    for unit in spec.units:
        wl = WorkerState(spec, None).workload(unit)
        assert (Path(wl.video), wl.start) == (home / "clip", unit.start)
    assert [u.label for u in spec.units] == ["clip@0", "clip@1"]  # reports name them as written


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ('"nosuchclip@10"',
         r"ao\.toml:13: fixed\.also_on: segment nosuchclip@10: video source nosuchclip does not exist"),
        ('"vtest@790"',
         r"ao\.toml:13: fixed\.also_on: segment vtest@790: frames = 6: vtest has 795 frame\(s\), 5 from "
         r"frame 790; need 6"),
        ('"off"', r"ao\.toml:13: fixed\.also_on: expected a string of segments .* or \"none\", got 'off'"),
    ],
    ids=["missing-video", "past-the-end", "off"],
)
def test_also_on_segments_are_checked_before_any_run(tmp_path: Path, level: str, expected: str) -> None:
    """A search's ``also_on`` segments are read by every run: a missing video or a segment past the end
    of its video passed --dry-run and then failed every run; ``"off"`` became a video named ``False``.
    Each is one line at the field now, before any model is built (a real segment passes)."""
    text = f"""\
[study]
name = "{{name}}"
kind = "search"
model = "hrnet_tiny"
weights = "none"
frames = 6
streams = 1
repeats = 1

[fixed]
strategy = "sweep"
trials = 1
also_on = {level}
"""
    with pytest.raises(ConfigError, match=expected) as info:
        check_inputs(load_study(write_study(tmp_path, text, "ao")))
    assert "\n" not in str(info.value)
    check_inputs(load_study(write_study(tmp_path, text.replace(level, '"vtest@300"'), "fine")))


def test_a_search_study_of_ones_own_video_is_one_stream(tmp_path: Path, still_clip: Path) -> None:
    """A video of one's own has no crop windows: its whole frame is the one stream. More streams were
    ignored (one ran) while the study recorded them; now refused, located, and the report says it."""
    own = TINY_SEARCH + f'video = "{still_clip}"\nstreams = 3\n[factors]\nmode = ["max"]\n'
    spec = load_study(write_study(tmp_path, own, "own-three"))
    with pytest.raises(ConfigError, match=r"own-three\.toml:8: study\.streams: 3 streams of .*, a video of "
                                          r"one's own, which is one stream \(its whole frame\); windows"):
        check_inputs(spec)
    plain = load_study(write_study(tmp_path, own.replace("streams = 3\n", ""), "own-default"))
    check_inputs(plain)
    assert dict(plain.setup_rows())["crop windows of the video (streams)"] == "the whole frame (one stream)"
    vtest = load_study(write_study(tmp_path, TINY_SEARCH + '[factors]\nmode = ["max"]\n', "sample"))
    rows = dict(vtest.setup_rows())
    assert rows["crop windows of the video (streams)"] == "2 of the video's default windows"
