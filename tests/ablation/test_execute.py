"""``execute_run``: what one run of a study does, on the real tiny HRNet, real vtest frames and a real
Optuna storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltatune.ablation import load_study
from deltatune.ablation.execute import WorkerState, execute_run
from deltatune.ablation.spec import run_study_name
from deltatune.ablation.store import default_storage
from deltatune.search.training import HopelessFinetune
from tests.ablation.conftest import TINY_SEARCH, write_study

#: a search tuned on the clip and on vtest@300 at once, with accumulation and a fixed fine-tune as factors
ALSO_ON_STUDY = TINY_SEARCH + """\
streams = 1
repeats = 1
speed_repeats = 0

[fixed]
strategy = "random"
trials = 1
budget = 100.0
also_on = "vtest@300"
train_frames = "100:106"
lr = 0.003

[factors]
accumulate = ["off", "on"]
finetune_steps = [2, 0]
"""


def _settings(state: WorkerState) -> dict[str, tuple[bool, str | None]]:
    """Accumulation and weights of every evaluator the worker holds, by segment."""
    return {
        f"{wl.video}@{wl.start}": (bool(ev.net.accumulate), ev.weights_key)
        for wl, ev in state._evaluators.items()
    }


def test_an_also_on_search_scores_every_segment_with_the_runs_accumulation_and_weights(
    tmp_path: Path, results: Path
) -> None:
    """A run with accumulation off and a fixed fine-tune scores its ``also_on`` segment with both too
    (it was scored on and with the original weights: half the "off" arm was the "on" one); the next run
    of the same worker (on, original weights) does not inherit them from the cached evaluators."""
    spec = load_study(write_study(tmp_path, ALSO_ON_STUDY, "also-on-settings"))
    runs = {(r.factors["accumulate"], r.factors["finetune_steps"]): r for r in spec.runs()}
    state = WorkerState(spec, default_storage(spec.name))

    execute_run(state, runs["off", "2"])
    seen = _settings(state)
    assert set(seen) == {"vtest@0", "vtest@300"}
    off, fine_tuned = seen["vtest@0"]
    assert not off and fine_tuned is not None
    assert seen["vtest@300"] == (False, fine_tuned)

    execute_run(state, runs["on", "0"])
    assert _settings(state) == {"vtest@0": (True, None), "vtest@300": (True, None)}


#: a fixed fine-tune at a learning rate that blows it up (0.5: AdamW moves every weight by 0.5 a step)
BLOWN_STUDY = TINY_SEARCH + """\
streams = 1
repeats = 1
speed_repeats = 0

[fixed]
strategy = "random"
trials = 1
train_frames = "100:106"
finetune_steps = 4
sparsity_penalty = 1.0
lr = 0.5
"""


def test_a_blown_up_fixed_fine_tune_tells_to_lower_the_study_files_lr(tmp_path: Path, results: Path) -> None:
    """The run fails with the fine-tune's one-line reason, which names the study file's ``lr`` (it said
    "lower --lr", an option ``deltatune ablate`` does not have)."""
    spec = load_study(write_study(tmp_path, BLOWN_STUDY, "blown-fine-tune"))
    state = WorkerState(spec, default_storage(spec.name))
    said = (r"^fine-tuning hrnet_tiny blew up at step \d+ of 4 at the study file's lr 0.5 \(adam\): .*; "
            r"lower the study file's lr \(hrnet_tiny's default is 0.0001\)$")
    with pytest.raises(HopelessFinetune, match=said):
        execute_run(state, spec.runs()[0])


#: a fixed fine-tune of blazepose that sets no learning rate (1e-4, the studies' rate before, wrecked it)
BLAZEPOSE_STUDY = """\
[study]
name = "{name}"
kind = "search"
model = "blazepose"
frames = 6
streams = 1
repeats = 1
speed_repeats = 0

[fixed]
strategy = "random"
trials = 1
train_frames = "100:104"
finetune_steps = 2
sparsity_penalty = 0.1
"""


def test_an_unset_lr_fine_tunes_at_the_models_own_rate(tmp_path: Path, results: Path) -> None:
    """A study's fixed fine-tune without ``lr`` ran at 1e-4 whatever the model: blazepose's weights blew up
    ("the objective is 9.9e+04 (step 1: 0.0036), its distillation part 2.82x that of a constant output")
    and every run failed. It runs at the model's own rate (1e-6), as ``deltatune finetune`` does, and the
    run records the rate it ran."""
    spec = load_study(write_study(tmp_path, BLAZEPOSE_STUDY, "blazepose-own-lr"))
    out = execute_run(WorkerState(spec, default_storage(spec.name)), spec.runs()[0])
    assert out.finetune is not None and out.finetune["lr"] == 1e-6 and out.finetune["steps"] == 2


def test_a_train_search_samples_learning_rates_around_the_models_own(tmp_path: Path, results: Path) -> None:
    """``train = on`` sampled 1e-5, 3e-5 and 1e-4 whatever the model, each of which wrecks blazepose
    (``search --train`` samples 0.1, 0.3 and 1 times the model's own rate); the run records the levels."""
    import optuna

    text = BLAZEPOSE_STUDY.replace("finetune_steps = 2\n", "train = true\n")
    spec = load_study(write_study(tmp_path, text, "blazepose-train-lr"))
    out = execute_run(WorkerState(spec, default_storage(spec.name)), spec.runs()[0])
    inner = optuna.load_study(study_name=run_study_name(spec.name, spec.runs()[0].key),
                              storage=default_storage(spec.name))
    assert [t.distributions["train.lr"].choices for t in inner.trials] == [(1e-7, 3e-7, 1e-6)]
    assert out.train_lr == [1e-7, 3e-7, 1e-6]
