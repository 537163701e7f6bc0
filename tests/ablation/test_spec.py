"""Study files: the design they declare, and one file:line: field error for every malformed one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deltatune.ablation.spec import StudySpec, load_study, parse_study
from deltatune.errors import ConfigError

GOOD = """\
[study]
name = "abl"
kind = "evaluate"
model = "hrnet"
frames = 8
units = ["vtest@0", "vtest@100", "carphone"]

[fixed]
thresholds = 0.05

[factors]
mode = ["max", "rms"]
accumulate = ["on", "off"]

[equivalence]
accuracy_loss = 0.5
"""


def test_design_is_every_combination_times_every_unit() -> None:
    s = parse_study(GOOD, path="abl.toml")
    runs = s.runs()
    assert len(runs) == 2 * 2 * 3
    assert {r.unit for r in runs} == {"vtest@0", "vtest@100", "carphone@0"}
    assert runs[0].factors == {"mode": "max", "accumulate": "on"}
    assert len({r.key for r in runs}) == len(runs)
    assert s.setting(runs[0].point, "thresholds") == 0.05
    assert s.setting(runs[0].point, "accumulate") is True
    assert s.setting(runs[-1].point, "accumulate") is False
    assert s.equivalence == {"accuracy_loss": 0.5}


def test_run_keys_are_stable_and_survive_a_round_trip() -> None:
    s = parse_study(GOOD, path="abl.toml")
    again = StudySpec.from_dict(s.to_dict())
    assert [r.key for r in again.runs()] == [r.key for r in s.runs()]
    assert again.fingerprint() == s.fingerprint()
    changed = parse_study(GOOD.replace("frames = 8", "frames = 9"), path="abl.toml")
    assert changed.fingerprint() != s.fingerprint()


def test_search_study_repeats_over_seeds() -> None:
    s = parse_study(
        '[study]\nname = "s"\nkind = "search"\nmodel = "hrnet"\nrepeats = 5\n'
        '[factors]\nstrategy = ["tpe", "deltacnn-greedy"]\n',
        path="s.toml",
    )
    assert [r.seed for r in s.runs()] == [0, 1, 2, 3, 4] * 2
    assert s.unit_name == "seed"
    assert "heldout_loss" in s.metric_names()


def _err(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_study(text, path="studies/x.toml")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "frames = 8",
            'frames = "sixteen"',
            "studies/x.toml:5: study.frames: expected an integer, got 'sixteen'",
        ),
        ('mode = ["max", "rms"]', 'speed = ["fast"]', "studies/x.toml:12: factors.speed: unknown factor"),
        (
            'mode = ["max", "rms"]',
            'mode = ["max", "fastest"]',
            "studies/x.toml:12: factors.mode: expected one",
        ),
        (
            'mode = ["max", "rms"]',
            'mode = "max"',
            "studies/x.toml:12: factors.mode: expected a non-empty list",
        ),
        ("thresholds = 0.05", "thresholds = -1", "studies/x.toml:9: fixed.thresholds: expected a threshold"),
        (
            "thresholds = 0.05",
            'thresholds = "nope.json"',
            "studies/x.toml:9: fixed.thresholds: threshold file",
        ),
        ('model = "hrnet"\n', "", "studies/x.toml:1: [study]: missing field 'model'"),
        (
            'units = ["vtest@0", "vtest@100", "carphone"]',
            'units = ["vtest@x"]',
            'studies/x.toml:6: study.units: expected "video@first-frame"',
        ),
        ("frames = 8", "frames = 2", "studies/x.toml:5: study.frames: expected an integer >= 4"),
        (
            "accuracy_loss = 0.5",
            "accuracy_loss = 0",
            "studies/x.toml:16: equivalence.accuracy_loss: expected a finite margin",
        ),
        (
            "accuracy_loss = 0.5",
            "hypervolume = 0.5",
            "studies/x.toml:16: equivalence.hypervolume: unknown metric",
        ),
        (
            'kind = "evaluate"',
            'kind = "train"',
            "studies/x.toml:3: study.kind: expected one of search, evaluate",
        ),
        ("frames = 8", 'frames = 8\ncolour = "red"', "studies/x.toml:6: study.colour: unknown field"),
        (
            'accumulate = ["on", "off"]',
            'accumulate = ["on", "on"]',
            "factors.accumulate: lists a level twice",
        ),
        ('accumulate = ["on", "off"]', "scale = [1, 1.0]", "factors.scale: lists a level twice: [1, 1.0]"),
        # accepted before: a report with no primary comparison, or without the metric it compares
        (
            "frames = 8",
            'frames = 8\nprimary = { factor = "accumulate", baseline = "on", metric = "accuracy_loss" }\n'
            'metrics = ["mac_speedup"]',
            "study.primary: metric 'accuracy_loss' is not in study.metrics (mac_speedup); add it there",
        ),
        (
            "frames = 8",
            'frames = 8\nmetrics = ["mac_speedup"]',
            "equivalence.accuracy_loss: not in study.metrics (mac_speedup); add it there",
        ),
        (
            'accumulate = ["on", "off"]',
            'accumulate = ["on"]\n[study.primary]\nfactor = "accumulate"\nbaseline = "on"\n'
            'metric = "accuracy_loss"',
            "study.primary: factor 'accumulate' has one level (on): a comparison needs two or more",
        ),
    ],
)
def test_malformed_file_gives_file_line_field(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert expected in _err(GOOD.replace(old, new))


def test_search_fields_are_checked_by_kind() -> None:
    base = '[study]\nname = "s"\nkind = "search"\nmodel = "hrnet"\n'
    assert "study.units: a search study repeats over seeds" in _err(base + 'units = ["vtest"]\n')
    # repeats and seeds that disagree: one of them would be ignored without a word
    assert "study.repeats: 3, but seeds lists 2 (7, 8); give one of them" in _err(
        base + "repeats = 3\nseeds = [7, 8]\n")
    assert parse_study(base + "repeats = 2\nseeds = [7, 8]\n", path="s.toml").seeds == (7, 8)
    assert "factors.budget: expected a finite number >= 0, got 'high'" in _err(
        base + '[factors]\nbudget = ["high"]\n'
    )
    assert "factors.strategy: expected one of" in _err(base + '[factors]\nstrategy = ["annealing"]\n')
    # one segment scored twice is one observation counted twice (accepted before; units refused it)
    assert "study.score_on: lists a segment twice" in _err(base + 'score_on = ["carphone@0", "carphone@0"]\n')
    assert "study.primary: baseline 'x' is not a level" in _err(
        base + 'primary = { factor = "strategy", baseline = "x", metric = "heldout_loss" }\n'
        '[factors]\nstrategy = ["tpe", "sweep"]\n'
    )


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert _err("[study\nname = 1").startswith("studies/x.toml:1: not valid TOML")
    with pytest.raises(ConfigError, match="no such study file"):
        load_study(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: is a folder, not a study file (.toml)")):
        load_study(tmp_path)
    # [study] left out, its fields at the top: named at the first field's line, not as a table
    assert _err('# my study\n\nname = "x"\nkind = "search"\ndescription = "d"\n[factors]\n'
                'strategy = ["tpe"]\n') == ("studies/x.toml:3: name: a field outside any table; the "
                                           "study's fields go under [study] (tables: equivalence, factors, "
                                           "fixed, study)")
    # results given where a design is expected: the error names the command that reads them
    for name, command in (("runs.csv", "deltatune report"), ("s.db", "deltatune report"),
                          ("s.journal", "deltatune pareto --storage")):
        (tmp_path / name).write_text("seed,lr,acc\n")
        expected = f"not a study file (.toml); `{command} {tmp_path / name}`"
        with pytest.raises(ConfigError, match=re.escape(expected)):
            load_study(tmp_path / name)


def test_shipped_studies_parse() -> None:
    studies = sorted(Path(__file__).resolve().parents[2].joinpath("studies").glob("*.toml"))
    assert studies, "no shipped study files"
    for p in studies:
        s = load_study(p)
        assert s.runs(), p


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[fixed]\ntrain_frames = "40:41"\n', 'fixed.train_frames: expected "A:B"'),
        ("[fixed]\nlr = 0\n", "fixed.lr: expected a finite number > 0"),
        ("[fixed]\nfinetune_steps = 10\n[factors]\ntrain = [true, false]\n",
         "fixed.finetune_steps: train = on samples the fine-tune"),
        ('[fixed]\ntimeout = -1\n', "fixed.timeout: expected a finite number >= 0"),
        ("[fixed]\nweight_decay = inf\n", "fixed.weight_decay: expected a finite number >= 0, got inf"),
        ("[fixed]\nlr = nan\n", "fixed.lr: expected a finite number > 0, got nan"),
        # a number in quotes is text to TOML: say so (a student wrote lr = ["1e-3", "3e-4"])
        ('[factors]\nlr = ["1e-3", "3e-4"]\n',
         "factors.lr: expected a finite number > 0, got '1e-3' (text: write the number without quotes)"),
        ('[fixed]\nweight_decay = "x"\n', "fixed.weight_decay: expected a finite number >= 0, got 'x'"),
    ],
)
def test_training_settings_are_checked(extra: str, expected: str) -> None:
    base = '[study]\nname = "s"\nkind = "search"\nmodel = "hrnet"\n'
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_study(base + extra, path="s.toml")


def test_observe_picks_the_observations_besides_score_on() -> None:
    base = '[study]\nname = "s"\nkind = "search"\nmodel = "hrnet"\nscore_on = ["vtest@650"]\n'
    assert parse_study(base, path="s.toml").observation_factors() == {
        "scored_on": ["tuning", "held-out", "vtest@650"]
    }
    only = parse_study(base + "observe = []\n", path="s.toml")
    assert only.observation_factors() == {"scored_on": ["vtest@650"]}
    assert only.fingerprint() != parse_study(base, path="s.toml").fingerprint()
    with pytest.raises(ConfigError, match="only with score_on"):
        parse_study(base.replace('score_on = ["vtest@650"]\n', "") + "observe = []\n", path="s.toml")
    with pytest.raises(ConfigError, match='expected distinct "tuning"'):
        parse_study(base + 'observe = ["later"]\n', path="s.toml")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[factors]\nalso_on = ["none", "vtest@x"]\n', "factors.also_on: expected \"video@first-frame\""),
        ('[fixed]\nalso_on = 3\n', "fixed.also_on: expected a string of segments"),
        ('[fixed]\naggregate = "median"\n', "fixed.aggregate: expected worst, mean or qP"),
        ('[factors]\nkeyframes = ["0,x"]\n', "factors.keyframes: expected key-frame intervals to search"),
        ("[fixed]\nkeyframes = -2\n", "fixed.keyframes: expected key-frame intervals to search"),
    ],
)
def test_segment_and_keyframe_settings_are_checked(extra: str, expected: str) -> None:
    base = '[study]\nname = "s"\nkind = "search"\nmodel = "hrnet"\n'
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_study(base + extra, path="s.toml")


def test_keyframe_interval_is_an_evaluate_factor() -> None:
    base = '[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0"]\n'
    spec = parse_study(base + "[factors]\nkeyframe_interval = [0, 16]\n", path="s.toml")
    assert sorted(r.factors["keyframe_interval"] for r in spec.runs()) == ["0", "16"]
    expected = "factors.keyframe_interval: expected a key-frame interval"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_study(base + "[factors]\nkeyframe_interval = [0, -1]\n", path="s.toml")


DETECTION = (
    '[study]\nname = "d"\nkind = "detection"\nmodel = "fasterrcnn_mobilenet_v2"\nseeds = [3, 4]\n'
    '[fixed]\nsize = "96x128"\nepochs = 2\n[factors]\nbackbone = ["classic", "delta"]\n'
    "weight_decay = [0, 5e-4, 0.15, 1]\n"
)


def test_detection_study_repeats_over_seeds_with_trainer_settings() -> None:
    from deltatune.ablation.detection import detection_config
    from deltatune.ablation.spec import parse_size

    s = parse_study(DETECTION)
    runs = s.runs()
    assert len(runs) == 2 * 4 * 2 and {r.seed for r in runs} == {3, 4} and s.unit_name == "seed"
    assert [r.factors["weight_decay"] for r in runs[:8:2]] == ["0", "0.0005", "0.15", "1"]
    cfg = detection_config(s, runs[3].point, runs[3].seed)
    assert (cfg.size, cfg.epochs, cfg.weight_decay, cfg.seed, cfg.lr) == ((96, 128), 2, 0.0005, 4, 1e-3)
    assert cfg.head_features == "dense" and cfg.optimizer == "adam" and cfg.batch_size == 8
    assert set(s.metric_names()) == {"avg_iou", "map50", "ms_per_frame", "fps"}
    assert parse_size(160) == (160, 160) and parse_size("") is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('model = "fasterrcnn_mobilenet_v2"', 'model = "hrnet"', "detection study trains"),
        ('size = "96x128"', 'size = "16x16"', "input size"),
        ("epochs = 2", "epochs = 0", "integer >= 1"),
        ('"classic", "delta"', '"classic", "dense"', "one of classic, delta"),
        ("seeds = [3, 4]", 'score_on = ["vtest@0"]', "scores its own held-out frames"),
        ("[factors]", '[factors]\nmode = ["max"]', "unknown factor for detection studies"),
    ],
)
def test_detection_study_fields_are_checked(old: str, new: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_study(DETECTION.replace(old, new))


def test_keyframe_change_is_an_evaluate_factor() -> None:
    from deltatune.ablation.spec import keyframe_change_value

    base = '[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0"]\n'
    spec = parse_study(base + '[factors]\nkeyframe_change = ["none", 0.25]\n', path="s.toml")
    values = sorted((keyframe_change_value(spec.setting(r.point, "keyframe_change")) or 0.0)
                    for r in spec.runs())
    assert values == [0.0, 0.25]
    expected = 'factors.keyframe_change: expected a key-frame-on-change fraction in (0, 1] or "none"'
    for bad in ("[0.25, 2]", '["none", "half"]', "[0.25, 0]"):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            parse_study(base + f"[factors]\nkeyframe_change = {bad}\n", path="s.toml")


def test_windows_are_the_streams_of_a_study() -> None:
    base = '[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0", "vtest@160"]\n'
    spec = parse_study(base + 'windows = ["96, 96, 240, 320", "0,0,240,320"]\n[factors]\nmode = ["max"]\n',
                       path="s.toml")
    assert spec.windows == ("96,96,240,320", "0,0,240,320") and spec.streams == 2
    assert StudySpec.from_dict(spec.to_dict()) == spec
    rows = dict(spec.setup_rows())  # what a report's Setup table shows
    assert rows["crop windows of the video (streams)"] == "96,96,240,320; 0,0,240,320"
    assert rows["segments (repeats)"] == "vtest@0, vtest@160"
    # each segment names its video and first frame (vtest@160 does not start at 0)
    assert rows["frames"] == "16 per stream from each segment's first frame"
    assert rows["video"] == "each segment's (below)"
    assert dict(plain_rows := parse_study(base + '[factors]\nmode = ["max"]\n', path="s.toml").setup_rows())[
        "crop windows of the video (streams)"] == (
        "up to 2 of each video's default windows (a video of one's own: its whole frame)"), plain_rows
    # the runs' workloads crop those windows (same video: every unit keeps them)
    from deltatune.ablation.execute import WorkerState

    wl = WorkerState(spec, None).workload(spec.units[1])
    assert wl.windows == spec.windows and wl.streams == 2 and wl.start == 160
    # a study without windows keeps the fingerprint it had before the field existed
    plain = parse_study(base + '[factors]\nmode = ["max"]\n', path="s.toml")
    d = plain.to_dict()
    del d["windows"]
    assert StudySpec.from_dict(d).fingerprint() == plain.fingerprint() != spec.fingerprint()
    # the same windows written as integer lists are the same study
    ints = parse_study(base + 'windows = [[96, 96, 240, 320], [0, 0, 240, 320]]\n[factors]\nmode = ["max"]\n',
                       path="s.toml")
    assert ints.windows == spec.windows and ints.fingerprint() == spec.fingerprint()
    for bad, expected in (
        ('windows = ["1,2,3"]', "s.toml:6: study.windows: crop window '1,2,3' is not four integers"),
        ("windows = [[1, 2, 3]]", "s.toml:6: study.windows: crop window '1,2,3' is not four integers"),
        ("windows = [[0.5, 0, 240, 320]]", "or [x, y, w, h] integer lists, got [[0.5, 0, 240, 320]]"),
        ("windows = []", 's.toml:6: study.windows: expected a non-empty list of "x,y,w,h" strings'),
        ('windows = ["0,0,240,320"]\nstreams = 2', "1 windows are 1 streams, but streams = 2"),
        ('windows = ["0,0,240,320", "96,96,240,320", "0,0,240,320"]',
         "s.toml:6: study.windows: lists the crop window '0,0,240,320' twice; each window is one stream: "
         "list it once"),
        ('windows = ["0,0,240,320", [0, 0, 240, 320]]',
         "study.windows: lists the crop window '0,0,240,320' (again as [0, 0, 240, 320]) twice"),
    ):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            parse_study(base + bad + '\n[factors]\nmode = ["max"]\n', path="s.toml")


def test_a_numeric_baseline_names_its_level_however_it_is_written() -> None:
    """``baseline = 1`` for levels ``[0.5, 1.0, 2.0]`` (TOML keeps 1 an integer) and ``5e-4`` for ``0.0005``
    name those levels; a number that is no level is refused with the levels listed."""
    base = '[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0"]\n'
    for baseline, levels, want in (("1", "[0.5, 1.0, 2.0]", "1.0"), ("5e-4", "[0.0, 0.0005]", "0.0005")):
        text = (base + f'primary = {{ factor = "scale", baseline = {baseline}, metric = "accuracy_loss" }}\n'
                f"[fixed]\nthresholds = 0.05\n[factors]\nscale = {levels}\n")
        assert parse_study(text, path="s.toml").primary == ("scale", want, "accuracy_loss")
    text = (base + 'primary = { factor = "scale", baseline = 3, metric = "accuracy_loss" }\n'
            "[fixed]\nthresholds = 0.05\n[factors]\nscale = [0.5, 1.0]\n")
    assert "baseline 3 is not a level of 'scale' (levels: 0.5, 1.0)" in _err(text)


def test_windows_crop_the_video_the_units_are_from() -> None:
    """An evaluate study of one video of the user's names it only in its units: the windows crop that video
    (not the default ``video``, vtest, whose crops no unit would take: every run would have scored the
    whole frame, stretched, while the report's setup listed the windows). Windows of a video that no
    unit is from are refused."""
    from deltatune.ablation.execute import WorkerState

    base = ('[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\n'
            'units = ["clip.mp4@0", "./clip.mp4@20"]\nwindows = ["240,200,120,160"]\n')
    spec = parse_study(base + '[factors]\nmode = ["max"]\n', path="s.toml")
    assert spec.video == "clip.mp4"
    for unit in spec.units:  # ./clip.mp4 is the same file
        wl = WorkerState(spec, None).workload(unit)
        assert (wl.video, wl.windows, wl.streams) == (unit.video, ("240,200,120,160",), 1)
    assert dict(spec.setup_rows())["crop windows of the video (streams)"] == "240,200,120,160"
    with pytest.raises(ConfigError, match=re.escape(
            "s.toml:6: study.windows: they crop study.video (vtest), which no unit is from: set video to the "
            "one they crop (units are from clip.mp4)")):
        parse_study(base + 'video = "vtest"\n[factors]\nmode = ["max"]\n', path="s.toml")
    # units of two videos: the windows crop study.video's, the other's get its default windows, said so
    mixed = parse_study(base.replace('"./clip.mp4@20"', '"vtest@20"') + 'video = "clip.mp4"\n[factors]\n'
                        'mode = ["max"]\n', path="s.toml")
    assert dict(mixed.setup_rows())["crop windows of the video (streams)"] == (
        "240,200,120,160 of clip.mp4; other videos' segments: their default windows")
    assert WorkerState(mixed, None).workload(mixed.units[1]).windows == ()


def test_a_search_study_name_leaves_room_for_its_runs_study_names() -> None:
    """Each run of a search study stores its search as ``NAME.<run key>``, which the storage takes up to
    100 characters: a longer name passed the parser and then failed every run, naming ``--study``. The
    longest accepted name gives inner names the storage takes; one more character is refused, located."""
    from deltatune.search.storage import resolve_storage

    text = '[study]\nname = "{}"\nkind = "search"\nmodel = "hrnet"\nrepeats = 1\n[fixed]\ntrials = 2\n'
    longest = 100 - 13  # "." and a 12-character run key
    spec = parse_study(text.format("s" * longest), path="studies/x.toml")
    for run in spec.runs():
        resolve_storage(None, f"{spec.name}.{run.key}")  # no error (execute names the run's search so)
    msg = _err(text.format("s" * (longest + 1)))
    assert msg.startswith(f"studies/x.toml:2: study.name: use 1-{longest} letters"), msg
    assert "NAME.<run key>" in msg and f"({longest + 1} characters)" in msg
    evaluate = '[study]\nname = "{}"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0"]\n'
    assert parse_study(evaluate.format("e" * 100), path="e.toml").name == "e" * 100  # no inner studies


@pytest.mark.parametrize("kind", ["search", "evaluate"])
def test_heldout_leaving_too_few_tuning_frames_is_refused_at_its_line(kind: str) -> None:
    """``heldout = 3`` of ``frames = 4`` leaves one tuning frame: the parser refuses it at study.heldout,
    not check_inputs (or every report's setup rows) later with no file, line or field."""
    repeat = 'units = ["vtest@0"]' if kind == "evaluate" else "repeats = 1"
    text = f'[study]\nname = "ho"\nkind = "{kind}"\nmodel = "hrnet"\nframes = 4\nheldout = 3\n{repeat}\n'
    assert _err(text) == ("studies/x.toml:6: study.heldout: held-out frames 3 of 4: both tuning and held-out "
                          "parts need >= 2 frames")


def test_a_search_study_whose_tpe_runs_are_random_search_says_so() -> None:
    """trials = 4 makes every "tpe" trial one of its random startup draws: the study's notes (printed by
    ablate, listed in the report) say so for tpe, not for random search or a baseline."""
    s = parse_study(
        '[study]\nname = "s"\nkind = "search"\nmodel = "hrnet"\nrepeats = 3\n[fixed]\ntrials = 4\n'
        '[factors]\nstrategy = ["tpe", "random", "deltacnn-greedy"]\n',
        path="s.toml",
    )
    notes = s.startup_notes()
    assert len(notes) == 1 and notes[0].startswith("strategy tpe with 4 trial(s): its first 4 trials")
    longer = parse_study('[study]\nname = "s"\nkind = "search"\nmodel = "hrnet"\n[fixed]\ntrials = 20\n'
                         '[factors]\nstrategy = ["tpe", "random"]\n', path="s.toml")
    assert longer.startup_notes() == []
    assert parse_study(GOOD, path="abl.toml").startup_notes() == []


def test_one_thresholds_file_named_two_ways_is_refused_naming_both(tmp_path: Path) -> None:
    """``t.json`` and ``./sub/../t.json`` (or its absolute path) are one file: as two levels of
    ``thresholds`` they ran the same setting twice, and a report compared the setting with itself."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "t.json").write_text("{}")
    (tmp_path / "u.json").write_text("{}")
    base = '[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0"]\n[factors]\n'
    path = str(tmp_path / "s.toml")
    spec = parse_study(base + 'thresholds = ["t.json", "u.json", 0.05]\n', path=path)
    assert spec.factors["thresholds"] == ["t.json", "u.json", 0.05]
    for other in ("./sub/../t.json", str(tmp_path / "t.json")):
        with pytest.raises(ConfigError) as e:
            parse_study(base + f'thresholds = ["t.json", "u.json", "{other}"]\n', path=path)
        assert str(e.value) == (f"{path}:7: factors.thresholds: 't.json' and {other!r} are one threshold "
                                "file; list it once")


def test_video_of_an_evaluate_study_without_windows_is_refused() -> None:
    """Each unit of an evaluate study names its video, and ``video`` only says which one ``windows`` crop:
    without windows no run read it, so ``video = "nope.mp4"`` (no such file) passed and ran vtest."""
    base = '[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0", "carphone"]\n'
    assert _err(base + 'video = "nope.mp4"\n[factors]\nmode = ["max"]\n') == (
        "studies/x.toml:6: study.video: an evaluate study scores each unit on its own video (units are from "
        "vtest, carphone); video names the one its windows crop, and this study has no windows: drop it")
    cropped = parse_study(base + 'video = "vtest"\nwindows = ["0,0,96,96"]\n[factors]\nmode = ["max"]\n',
                          path="s.toml")
    assert cropped.video == "vtest" and cropped.windows == ("0,0,96,96",)


def test_a_study_that_times_no_run_has_no_measured_speedup_to_name() -> None:
    """At ``speed_repeats = 0`` no run is timed: ``measured_speedup`` named in metrics, primary or
    equivalence would report nothing, and is refused saying why."""
    base = '[study]\nname = "s"\nkind = "evaluate"\nmodel = "hrnet"\nunits = ["vtest@0"]\nspeed_repeats = 0\n'
    factors = '[factors]\nmode = ["max", "rms"]\n'
    assert "measured_speedup" not in parse_study(base + factors, path="s.toml").metric_names()
    timed = parse_study(base.replace("speed_repeats = 0", "speed_repeats = 1") + factors, path="s.toml")
    assert "measured_speedup" in timed.metric_names()
    why = ("measured_speedup is measured in the speed_repeats timed rounds, and speed_repeats = 0 times no "
           "run: set speed_repeats >= 1, or leave it out")
    primary = 'primary = { factor = "mode", baseline = "max", metric = "measured_speedup" }\n'
    for text, where in (
        (base + 'metrics = ["accuracy_loss", "measured_speedup"]\n' + factors, "7: study.metrics"),
        (base + primary + factors, "7: study.primary"),
        (base + factors + "[equivalence]\nmeasured_speedup = 0.1\n", "10: equivalence.measured_speedup"),
    ):
        assert _err(text) == f"studies/x.toml:{where}: {why}"
