"""Tuning on several segments: every trial scored on each, objectives the worst (a high quantile, or the
mean) over them."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from deltatune.delta.thresholds import ThresholdFile
from deltatune.errors import ConfigError
from deltatune.search import Evaluator, open_study, resolve_storage, run_search
from deltatune.search.study_workload import Segment, parse_segment

from .conftest import TINY, settings

OTHER = TINY.on_segment(Segment("vtest", 300))


@pytest.fixture(scope="module")
def other_evaluator() -> Evaluator:
    return Evaluator(OTHER)


@pytest.mark.parametrize("aggregate", ["worst", "q90", "mean"])
def test_trials_are_scored_on_every_segment_and_aggregated(
    results: Path, tiny_evaluator, other_evaluator, aggregate: str
) -> None:  # type: ignore[no-untyped-def]
    res = run_search(settings(trials=4, study=f"seg-{aggregate}", also_on=(OTHER,), aggregate=aggregate),
                     evaluator=tiny_evaluator, heldout=False)
    study = open_study(resolve_storage(None, f"seg-{aggregate}"), f"seg-{aggregate}", create=False)
    assert res.n_trials == 4
    for t in study.trials:
        per = t.user_attrs["segments"]
        assert [p["segment"] for p in per] == ["vtest@0", "vtest@300"]
        losses = [p["accuracy_loss"] for p in per]
        speeds = [p["speedup"] for p in per]
        if aggregate == "worst":
            assert t.values == [max(losses), min(speeds)]
        elif aggregate == "q90":  # two segments: 90 % of the way from the better value to the worse
            lo, hi = min(losses), max(losses)
            slow, fast = min(speeds), max(speeds)
            assert t.values == pytest.approx([lo + 0.9 * (hi - lo), fast - 0.9 * (fast - slow)])
        else:
            assert t.values == pytest.approx([statistics.fmean(losses), statistics.fmean(speeds)])
        # each segment's number is what that segment's own evaluator gives for the setting
        config = ThresholdFile.from_attrs(t.user_attrs)
        alone = other_evaluator.evaluate(config)
        own = (per[1]["accuracy_loss"], per[1]["speedup"])
        assert own == pytest.approx((alone.accuracy_loss, alone.speedup))
    # the same study with other segments is refused
    with pytest.raises(ConfigError, match="different set of segments"):
        run_search(settings(trials=1, study=f"seg-{aggregate}", aggregate=aggregate),
                   evaluator=tiny_evaluator, heldout=False)


def test_a_segment_of_another_video_takes_its_own_windows_and_no_labels() -> None:
    carphone = TINY.on_segment(parse_segment("carphone@10"))
    assert (carphone.video, carphone.start, carphone.streams, carphone.windows) == ("carphone", 10, 1, ())
    assert TINY.on_segment(Segment("vtest", 5)).streams == TINY.streams
    with pytest.raises(ValueError, match="video@first-frame"):
        parse_segment("vtest@x")


def test_a_video_of_ones_own_is_one_stream_and_the_samples_file_keeps_its_crops(
    vtest_path: Path, still_clip: Path
) -> None:
    from deltatune.data.video import DEFAULT_WINDOWS
    from deltatune.search.study_workload import StudyWorkload, default_streams

    own = str(still_clip)
    assert default_streams(own) == 1 and StudyWorkload("hrnet", video=own, streams=1).crop_windows() == []
    # stored before, with the default of two streams where the whole frame (one stream) ran
    old = StudyWorkload.from_dict({"model": "hrnet", "video": own, "frames": 8, "streams": 2, "windows": []})
    assert old.streams == 1
    assert TINY.on_segment(Segment(own, 0)).streams == 1
    # the sample's downloaded file, named by its path, is cropped as the sample is (as bench and predict do)
    by_path = StudyWorkload("hrnet", video=str(vtest_path), streams=2)
    assert by_path.crop_windows() == list(DEFAULT_WINDOWS["vtest"][:2])
    assert default_streams(str(vtest_path)) == 2


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"also_on": (OTHER,), "aggregate": "median"}, "--aggregate 'median' is unknown"),
        ({"also_on": (OTHER,), "aggregate": "q40"}, "qP, a quantile with 50 <= P < 100"),
        ({"also_on": (OTHER,), "aggregate": "qx"}, "--aggregate 'qx' is unknown"),
        ({"also_on": (OTHER,), "workload": replace(TINY, labels="x.csv")},
         "cannot be combined with --labels"),
    ],
)
def test_bad_segment_settings_are_config_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        settings(**kw)


def test_fine_tuning_frames_skip_and_may_not_overlap_the_segments_of_the_same_video() -> None:
    from deltatune.search.training import TrainSpace

    right_after = TINY.on_segment(Segment("vtest", TINY.start + TINY.frames))  # where they would start
    space = TrainSpace.after(TINY, (right_after, OTHER), frames=8)
    assert space.start == right_after.start + right_after.frames  # moved past it; vtest@300 is far off
    carphone = TINY.on_segment(Segment("carphone", TINY.frames))  # another video: no overlap possible
    assert TrainSpace.after(TINY, (carphone,), frames=8).start == TINY.start + TINY.frames
    TrainSpace(start=TINY.frames, frames=8).check_disjoint(TINY, (carphone,))
    with pytest.raises(ConfigError, match=r"--train-frames 296:304 overlap segment vtest@300's frames"):
        settings(also_on=(OTHER,), train=TrainSpace(start=296, frames=8))


def test_a_train_search_scores_each_trials_fine_tuned_weights_on_every_segment(
    results: Path, tiny_evaluator, other_evaluator
) -> None:  # type: ignore[no-untyped-def]
    """--also-on with --train: the fine-tune (on frames neither segment holds) is loaded into every
    segment's evaluator, so each segment's number is that segment's score of the fine-tuned network."""
    import torch

    from deltatune.search.training import TrainSpace

    space = TrainSpace.after(TINY, (OTHER,), frames=6, steps=(2,), lr=(3e-3,), weight_decay=(0.0,),
                             sparsity_penalty=(1.0,), truncation_aware=(False,), batch_size=1, seed=5)
    run_search(settings(trials=3, study="seg-train", also_on=(OTHER,), train=space, budget=100.0, anchors=1),
               evaluator=tiny_evaluator, heldout=False)
    study = open_study(resolve_storage(None, "seg-train"), "seg-train", create=False)
    tuned = [t for t in study.trials if t.user_attrs.get("finetune")]
    assert tuned and all(t.state.name == "COMPLETE" for t in tuned)
    for t in tuned:
        per = t.user_attrs["segments"]
        weights = torch.load(t.user_attrs["finetune_weights"], weights_only=True)
        other_evaluator.use_weights(weights, "seg-train")
        config = ThresholdFile.from_attrs(t.user_attrs)
        alone = other_evaluator.evaluate(config)
        other_evaluator.use_weights(None)
        original = other_evaluator.evaluate(config)
        own = (per[1]["accuracy_loss"], per[1]["speedup"])
        assert own == pytest.approx((alone.accuracy_loss, alone.speedup))
        assert (original.accuracy_loss, original.speedup) != (alone.accuracy_loss, alone.speedup)
    tiny_evaluator.use_weights(None)


def test_a_point_is_re_timed_on_the_segment_that_decided_its_speedup(
    results: Path, tiny_evaluator
) -> None:  # type: ignore[no-untyped-def]
    """Re-timing measured the first segment only and set it beside the worst segment's prediction (1.41x
    measured against a 1.22x made on other frames): now the deciding segment is timed, beside its own."""
    res = run_search(settings(trials=5, study="seg-rt", also_on=(OTHER,), retime=2, retime_repeats=2),
                     evaluator=tiny_evaluator, heldout=False)
    study = open_study(resolve_storage(None, "seg-rt"), "seg-rt", create=False)
    assert res.retimed
    for r in res.retimed:
        per = study.trials[r["trial"]].user_attrs["segments"]
        slowest = min(per, key=lambda p: (p["speedup"], per.index(p)))
        assert r["segment"] == slowest["segment"] and r["predicted"] == pytest.approx(slowest["speedup"])
