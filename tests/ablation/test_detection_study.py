"""A reduced seed-table study (kind ``detection``) on a real MOT sequence cut from vtest: every run trains
a real detector (ImageNet MobileNetV2 backbone) and scores it with a classic or a delta backbone; the
report prints the seed's table with the delta rows filled and the Holm-corrected tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from deltatune.ablation import find_study, load_results, load_study, run_ablation
from deltatune.ablation.runner import check_inputs
from deltatune.ablation.store import default_storage
from deltatune.errors import ConfigError, DataFetchError
from tests.ablation.conftest import write_study
from tests.mot_sequence import write_mot_sequence

#: Slow (about a minute on 2 cores): 8 detectors trained, 16 runs scored and timed.
pytestmark = pytest.mark.slow

STUDY = """\
[study]
name = "{name}"
kind = "detection"
model = "fasterrcnn_mobilenet_v2"
video = "@VIDEO@"
seeds = [0, 1]
speed_repeats = 1
primary = {{ factor = "backbone", baseline = "classic", metric = "avg_iou" }}

[fixed]
size = "96x96"
epochs = 2
batch_size = 4
train_frames = "0:10"
eval_frames = "10:14"
score_threshold = 0.0

[factors]
backbone = ["classic", "delta"]
head_features = ["dense", "delta"]
weight_decay = [0, 1]
"""


@pytest.fixture(scope="module")
def sequence(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deltatune.data.assets import asset_path

    try:
        asset_path("mobilenet_v2_imagenet", fetch=True)
    except DataFetchError as exc:
        pytest.skip(f"MobileNetV2 ImageNet weights unavailable: {exc}")
    return write_mot_sequence(vtest_path, tmp_path_factory.mktemp("mot") / "vtest-cut", count=14)


@pytest.fixture()
def detectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "detectors"
    monkeypatch.setenv("DELTATUNE_DETECTOR_CACHE", str(d))  # every detector trains afresh
    return d


@pytest.fixture()
def torch_threads() -> Iterator[None]:
    """Restores torch's thread count, which a one-worker study sets in this process."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.usefixtures("torch_threads")
def test_reduced_seed_table_study(
    tmp_path: Path, results: Path, detectors: Path, sequence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deltatune.report import analyse
    from deltatune.report.render import render_markdown

    spec = load_study(write_study(tmp_path, STUDY.replace("@VIDEO@", str(sequence)), "seed-table-ci"))
    check_inputs(spec)
    summary = run_ablation(spec, heartbeat=2, threads=1)
    assert (summary.expected, summary.complete, summary.failed) == (16, 16, {})
    # classic and delta runs of one (head features, weight decay, seed) share one trained detector
    assert len(list(detectors.glob("*.pt"))) == 8
    study, stored = find_study(default_storage(spec.name))
    res = load_results(study, stored)
    obs = res.observations
    assert set(obs["metric"]) == {"avg_iou", "map50", "ms_per_frame", "fps"}
    assert obs["value"].notna().all() and (obs[obs.metric == "ms_per_frame"]["value"] > 0).all()
    assert obs[obs.metric == "avg_iou"]["value"].between(0, 1).all()
    # only the delta runs carry timed (dense ms, delta ms) rounds
    assert set(res.speed_repeats["backbone"]) == {"delta"} and len(res.speed_repeats) == 8
    # head on delta features: another detector, so other scores than the head on dense features
    iou = obs[(obs.metric == "avg_iou") & (obs.backbone == "delta")]
    by_head = iou.pivot_table(index=["seed", "weight_decay"], columns="head_features", values="value")
    assert (by_head["dense"] != by_head["delta"]).any()

    md = render_markdown(res, analyse(res, seed=0), image_dir=tmp_path / "img", link_prefix="img")
    assert "The seed experiment's table" in md
    assert "| Seed: classic convolutions | 0.182 | 0.123 | – | about 37 |" in md
    for row in ("Classic convolutions, head on dense features", "Delta convolutions, head on delta features"):
        assert f"| {row} |" in md
    # 2 weight decays x 2 head features x (avg IoU, ms/frame) + 2 head-features tests, one Holm family
    assert "Holm-corrected over these 10 tests" in md
    assert (tmp_path / "img" / "seed_table.png").is_file()

    # the same study with another torch thread count: the detectors are reused, the timings are not
    evals = sorted(detectors.glob("*.eval-*.json"))
    assert len(evals) == 8
    other = load_study(write_study(tmp_path, STUDY.replace("@VIDEO@", str(sequence)), "seed-table-ci-t"))
    assert run_ablation(other, heartbeat=2, threads=2).complete == 16
    assert len(list(detectors.glob("*.pt"))) == 8 and len(list(detectors.glob("*.eval-*.json"))) == 16

    # a third study with the first one's settings reuses its scores and timings: ablate says so
    from deltatune.cli import main

    third = write_study(tmp_path, STUDY.replace("@VIDEO@", str(sequence)), "seed-table-ci-3")
    assert main(["ablate", str(third), "--jobs", "1", "--threads", "1"]) == 0
    said = capsys.readouterr().out
    reused = ("note: 16 of the 16 runs of this call took their detector and its scores and timings from "
              f"{detectors}")
    assert reused in said, said


def test_bad_detection_studies_are_one_clear_error(tmp_path: Path, sequence: Path) -> None:
    text = STUDY.replace("@VIDEO@", str(sequence))
    bad = {
        "model": text.replace('model = "fasterrcnn_mobilenet_v2"', 'model = "hrnet"'),
        "overlap": text.replace('eval_frames = "10:14"', 'eval_frames = "8:14"'),
        "beyond": text.replace('eval_frames = "10:14"', 'eval_frames = "10:40"'),
        "backbone": text.replace('["classic", "delta"]', '["classic", "sparse"]'),
        "size": text.replace('size = "96x96"', 'size = "96x"'),
        "units": text.replace("seeds = [0, 1]", 'units = ["vtest@0"]'),
        "missing": text.replace(str(sequence), str(tmp_path / "no-such-sequence")),
        "timed": text.replace('score_threshold = 0.0', 'score_threshold = 0.0\ntimed_frames = 5'),
        "weights": text.replace("seeds = [0, 1]", 'seeds = [0, 1]\nweights = "nosuch.pt"'),
        "windows": text.replace("seeds = [0, 1]", 'seeds = [0, 1]\nwindows = ["0,0,100,100"]'),
        "frames": text.replace("seeds = [0, 1]", "seeds = [0, 1]\nframes = 16"),
    }
    messages = {
        "model": "a detection study trains 'fasterrcnn_mobilenet_v2', got 'hrnet'",
        "overlap": r"bad-overlap\.toml:15: fixed\.eval_frames: 8:14 overlap train_frames 0:10",
        "beyond": r"bad-beyond\.toml:15: fixed\.eval_frames: 10:40: the video",
        "backbone": "expected one of classic, delta, got 'sparse'",
        "size": 'expected an input size "HxW"',
        "units": "a detection study repeats over seeds",
        "missing": r"bad-missing\.toml:\d+: study\.video: video source .*no-such-sequence does not exist",
        "timed": r"bad-timed\.toml:17: fixed\.timed_frames: 5: more than the 4 frames of eval_frames "
                 r"10:14; use at most 4",
        "weights": r"bad-weights\.toml:7: study\.weights: a detection study trains on whole frames",
        "windows": r"bad-windows\.toml:7: study\.windows: a detection study .* applies to search and "
                   "evaluate",
        "frames": r"bad-frames\.toml:7: study\.frames: a detection study",
    }
    for name, t in bad.items():
        with pytest.raises(ConfigError, match=messages[name]) as err:
            check_inputs(load_study(write_study(tmp_path, t, f"bad-{name}")))
        assert "\n" not in str(err.value)
