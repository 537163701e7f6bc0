"""``deltatune.ablation.store``: a stored study's design may grow (more levels, seeds or segments, its
finished runs kept) but not change what its runs measure."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltatune.ablation.spec import parse_study
from deltatune.ablation.store import META_KEY, design_change, open_ablation
from deltatune.errors import ConfigError

STUDY = """\
[study]
name = "grow"
kind = "evaluate"
model = "hrnet"
frames = 8
units = ["vtest@0", "vtest@100"]

[fixed]
thresholds = 0.05

[factors]
scale = [0.5, 1.0]
"""


def test_a_design_that_adds_levels_seeds_or_segments_extends_the_stored_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grow.db'}"
    first = parse_study(STUDY, path="grow.toml")
    assert design_change(url, first) is None  # nothing stored yet
    study = open_ablation(url, first, heartbeat=None)
    grown = parse_study(STUDY.replace("[0.5, 1.0]", "[0.5, 1.0, 2.0]").replace(
        '"vtest@100"]', '"vtest@100", "carphone@0"]'), path="grow.toml")
    assert grown.extends(first) and not first.extends(grown)
    assert design_change(url, grown) == (
        "grow: the study file adds runs to the stored design (4 -> 9 runs); finished runs are kept"
    )
    open_ablation(url, grown, heartbeat=None)
    study = open_ablation(url, grown, heartbeat=None)  # the grown design is the stored one now
    assert study.user_attrs[META_KEY]["fingerprint"] == grown.fingerprint()
    assert design_change(url, grown) is None
    reordered = parse_study(STUDY.replace("[0.5, 1.0]", "[1.0, 0.5, 2.0]").replace(
        '"vtest@100"]', '"vtest@100", "carphone@0"]'), path="grow.toml")
    assert design_change(url, reordered) == (
        "grow: the study file lists the stored design's levels in another order; runs are kept"
    )
    # the refusal names what changed (it listed every kind of change a design can have)
    changed = {
        "fixed.thresholds 0.05 (now 0.1)": STUDY.replace("thresholds = 0.05", "thresholds = 0.1"),
        "of its runs taken away (levels, seeds or segments), e.g. ": STUDY.replace("[0.5, 1.0]", "[0.5]"),
        "frames 8 (now 9)": STUDY.replace("frames = 8", "frames = 9"),
    }
    for what, text in changed.items():
        spec = parse_study(text, path="grow.toml")
        assert not spec.extends(grown), what
        with pytest.raises(ConfigError, match="was run with a different design") as info:
            design_change(url, spec)
        assert what in str(info.value), str(info.value)
        with pytest.raises(ConfigError, match="was run with a different design"):
            open_ablation(url, spec, heartbeat=None)


def test_segments_of_another_video_extend_a_study_whose_units_shared_one(tmp_path: Path) -> None:
    """Units all from carphone give the study ``video = carphone``; adding a vtest unit made it the default
    vtest, and the grown file was refused as "a different design: video 'carphone' (now 'vtest')", though
    no run reads ``video`` without windows (each unit names its own). With windows it crops, and counts."""
    url = f"sqlite:///{tmp_path / 'grow.db'}"
    one_video = STUDY.replace('["vtest@0", "vtest@100"]', '["carphone@0"]')
    first = parse_study(one_video, path="grow.toml")
    open_ablation(url, first, heartbeat=None)
    grown = parse_study(one_video.replace('["carphone@0"]', '["carphone@0", "vtest@0"]'), path="grow.toml")
    assert (first.video, grown.video) == ("carphone", "vtest")
    assert grown.extends(first) and grown.differences(first) == []
    assert design_change(url, grown) == (
        "grow: the study file adds runs to the stored design (2 -> 4 runs); finished runs are kept"
    )
    cropped = 'frames = 8\nwindows = ["0,0,96,96"]'
    old = parse_study(one_video.replace("frames = 8", cropped), path="grow.toml")
    new = parse_study(one_video.replace("frames = 8", cropped + '\nvideo = "vtest"').replace(
        '["carphone@0"]', '["carphone@0", "vtest@0"]'), path="grow.toml")
    assert not new.extends(old) and "video 'carphone' (now 'vtest')" in new.differences(old)


def test_a_storage_of_searches_only_points_to_pareto(tmp_path: Path) -> None:
    """``report s.db`` on a search's storage: naming a study with --study would not help, so the error
    names its searches and the command that shows one."""
    import optuna

    from deltatune.ablation.store import find_study
    from deltatune.search.pareto import META_KEY as SEARCH_KEY

    url = f"sqlite:///{tmp_path / 's.db'}"
    search = optuna.create_study(study_name="net-tpe-group", storage=url, directions=["minimize", "maximize"])
    search.set_user_attr(SEARCH_KEY, {"model": "net"})
    with pytest.raises(ConfigError, match=r"holds no ablation study, only search studies \(net-tpe-group\); "
                                          r"`deltatune pareto --storage sqlite:///.*s\.db` shows a search"):
        find_study(url)


def test_plain_optuna_sees_the_trial_value_named_as_the_runs_wall_time(tmp_path: Path) -> None:
    """Opened with optuna.load_study (or optuna-dashboard), each run's value was an unnamed number to
    minimise, so the "best trial" was the run that finished fastest."""
    import optuna

    url = f"sqlite:///{tmp_path / 'grow.db'}"
    open_ablation(url, parse_study(STUDY, path="grow.toml"), heartbeat=None)
    assert optuna.load_study(study_name="grow", storage=url).metric_names == ["run_wall_s"]


def test_a_level_written_as_another_number_type_is_named_in_the_refusal() -> None:
    """`scale = [1.0, 2.0]` for a stored `[1, 2.0]` is one level to the parser, but a run's key is its
    levels as written: the refusal said only "runs taken away, e.g. scale=1"."""
    stored = parse_study(STUDY.replace("[0.5, 1.0]", "[0.5, 1]"), path="grow.toml")
    now = parse_study(STUDY, path="grow.toml")
    said = now.differences(stored)
    assert said[0].startswith("2 of its runs taken away")
    assert said[1:] == ["scale level 1.0 was written 1: write it as before to keep its runs"]


def test_a_report_of_a_search_study_whose_tpe_runs_are_random_search_notes_it(tmp_path: Path) -> None:
    """The report's notes (load_results) carry the study's warning that its tpe runs never left their
    random startup trials."""
    import optuna

    from deltatune.ablation.store import load_results

    spec = parse_study('[study]\nname = "s4"\nkind = "search"\nmodel = "hrnet"\n[fixed]\ntrials = 4\n'
                       '[factors]\nstrategy = ["tpe", "random"]\n', path="s4.toml")
    url = f"sqlite:///{tmp_path / 's4.db'}"
    open_ablation(url, spec, heartbeat=None)
    results = load_results(optuna.load_study(study_name="s4", storage=url), spec)
    assert any(n.startswith("strategy tpe with 4 trial(s)") for n in results.notes)


FINE_TUNED = """\
[study]
name = "rate"
kind = "search"
model = "{model}"
frames = 6
streams = 1
seeds = [0, 1]

[fixed]
finetune_steps = 2
sparsity_penalty = 0.1
"""


def _stored_run(url: str, text: str, provenance: dict) -> None:
    """Store ``text``'s design with its first run finished, recording ``provenance`` as a version of
    deltatune stored it (a run stored before runs recorded their fine-tune has no ``finetune`` key)."""
    import optuna

    spec = parse_study(text, path="rate.toml")
    study = open_ablation(url, spec, heartbeat=None)
    study.add_trial(optuna.trial.create_trial(
        value=1.0, user_attrs={"run_key": spec.runs()[0].key, "provenance": provenance}))


def test_runs_fine_tuned_at_the_old_default_rate_are_not_mixed_with_runs_at_the_models_own(
    tmp_path: Path,
) -> None:
    """A study's unset ``lr`` meant 1e-4 for every model; now it is the model's own rate. A blazepose study
    whose runs fine-tuned at 1e-4 would have taken new runs at 1e-6 into the same cells (the study file,
    its fingerprint and the run keys read the same): resuming it is refused. Runs that recorded the rate
    they ran are compared by it; hrnet's own rate is 1e-4, so its stored studies resume as before."""
    from deltatune.ablation.store import FINETUNE_KEY

    text = FINE_TUNED.format(model="blazepose")
    old = f"sqlite:///{tmp_path / 'old.db'}"
    _stored_run(old, text, {"deltatune": "0.x"})  # no record: it ran 1e-4
    with pytest.raises(ConfigError, match=r"^study 'rate' in .*old.db: its finished run \w+ fine-tuned at lr "
                       r"0.0001, its runs would now at 1e-06 \(an unset lr is blazepose's own rate now, "
                       r"0.0001 before\): use a new name, or another --storage, so that no cell mixes runs "
                       r"of two learning rates$"):
        open_ablation(old, parse_study(text, path="rate.toml"), heartbeat=None)
    new = f"sqlite:///{tmp_path / 'new.db'}"
    _stored_run(new, text, {FINETUNE_KEY: {"lr": 1e-6}})
    open_ablation(new, parse_study(text, path="rate.toml"), heartbeat=None)  # the same rate: resumed
    hrnet = FINE_TUNED.format(model="hrnet")
    _stored_run(f"sqlite:///{tmp_path / 'hrnet.db'}", hrnet, {"deltatune": "0.x"})
    open_ablation(f"sqlite:///{tmp_path / 'hrnet.db'}", parse_study(hrnet, path="rate.toml"), heartbeat=None)


def test_runs_whose_search_sampled_the_old_learning_rates_are_not_mixed_with_new_ones(tmp_path: Path) -> None:
    """A ``train = on`` run's search sampled 1e-5, 3e-5 and 1e-4 for every model; now the model's own
    levels (blazepose: 1e-7, 3e-7, 1e-6). Resuming a blazepose study whose runs searched the old levels is
    refused; hrnet's levels are the old ones, and runs that recorded theirs are compared by them."""
    text = FINE_TUNED.format(model="blazepose").replace("finetune_steps = 2\n", "train = true\n")
    old = f"sqlite:///{tmp_path / 'old.db'}"
    _stored_run(old, text, {"deltatune": "0.x"})  # no record: the old levels
    with pytest.raises(ConfigError, match=r"its finished run \w+ searched fine-tunes at lr 1e-05, 3e-05, "
                       r"0.0001, its runs would now at 1e-07, 3e-07, 1e-06 \(blazepose's own scale\)"):
        open_ablation(old, parse_study(text, path="rate.toml"), heartbeat=None)
    from deltatune.ablation.store import TRAIN_LR_KEY

    new = f"sqlite:///{tmp_path / 'new.db'}"
    _stored_run(new, text, {TRAIN_LR_KEY: [1e-7, 3e-7, 1e-6]})
    open_ablation(new, parse_study(text, path="rate.toml"), heartbeat=None)
    hrnet = FINE_TUNED.format(model="hrnet").replace("finetune_steps = 2\n", "train = true\n")
    _stored_run(f"sqlite:///{tmp_path / 'hrnet.db'}", hrnet, {"deltatune": "0.x"})
    open_ablation(f"sqlite:///{tmp_path / 'hrnet.db'}", parse_study(hrnet, path="rate.toml"), heartbeat=None)
