"""``search --train``: training hyperparameters sampled with the thresholds, on the real tiny HRNet, real
vtest frames and real Optuna studies: fine-tuned weights are computed once per configuration and reused,
every trial is scored against the original model, hopeless fine-tunes are pruned, the export carries the
weights and reproduces the trial, and bad training options are one clear error each."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from deltatune.cli import main
from deltatune.delta.thresholds import ThresholdFile
from deltatune.errors import ConfigError
from deltatune.search import Evaluator, export_trial, open_study, run_search
from deltatune.search.training import Trainer, TrainSpace, finetune_of_attrs

from .conftest import TINY, settings

#: frames 6..13 of vtest: right after TINY's 6 search frames
SPACE = TrainSpace.after(TINY, frames=8, steps=(3,), lr=(3e-3,), weight_decay=(0.0,), sparsity_penalty=(1.0,),
                         truncation_aware=(True,), batch_size=1, seed=11)


def test_train_search_fine_tunes_once_per_configuration_and_scores_against_the_original(
    tmp_path: Path, results: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ev = Evaluator(TINY)
    original = ev.evaluate(ThresholdFile({n: 0.01 for n in ev.threshold_names}))
    reference = {k: v.clone() for k, v in ev.reference.items()}
    s = settings(trials=3, study="train", train=SPACE, storage=str(tmp_path / "t.journal"), budget=100.0)
    res = run_search(s, evaluator=ev)
    study = open_study(s.storage_spec(), "train", create=False)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 3
    configs = {json.dumps(t.user_attrs["finetune"], sort_keys=True) for t in done}
    assert len(configs) == 1  # one configuration in the space: one set of weights
    weights = Path(done[0].user_attrs["finetune_weights"])
    assert weights.is_file()
    # the pareto CSV's columns of what each trial ran carry its fine-tune
    from deltatune.search.pareto import settings_frame

    ran = settings_frame(study)
    assert list(ran["finetune.steps"]) == [3, 3, 3] and not ran["finetune.original_weights"].any()
    # the first trial fine-tuned; the later ones read the cache
    assert [t.user_attrs["finetune_trained"] for t in done] == [True, False, False]
    # the reference never moved: scores are against the original model's dense predictions
    assert all(torch.equal(reference[k], ev.reference[k]) for k in reference)
    # the same thresholds on the fine-tuned weights score differently from the original weights
    tuned = ev.evaluate(ThresholdFile({n: 0.01 for n in ev.threshold_names}))
    assert (tuned.accuracy_loss, tuned.speedup) != (original.accuracy_loss, original.speedup)
    ev.use_weights(None)
    unseen = ThresholdFile({n: 0.02 for n in ev.threshold_names})  # not in the memo: it runs
    again = ev.evaluate(unseen)
    fresh = Evaluator(TINY, use_disk_cache=False)
    alone = fresh.evaluate(unseen)
    assert not again.repeated
    assert (again.accuracy_loss, again.speedup) == (alone.accuracy_loss, alone.speedup)
    # the held-out check scored the front with each trial's own weights
    assert res.front["heldout_speedup"].notna().all()
    assert res.best_feasible is not None and res.best_feasible["finetune"]["steps"] == 3

    # export: thresholds plus the weights; both together reproduce the trial on a fresh evaluator
    t = done[-1]
    out = export_trial(study, tmp_path / "x.json", trial=t.number)
    assert out.weights is not None and out.weights.is_file()
    fresh.use_weights(torch.load(out.weights, weights_only=True), "exported")
    tf = fresh.net.load_thresholds(out.path)
    # the file names the fine-tuned weights it was scored on, not the original ones
    original_net = Evaluator(TINY).net
    assert tf.weights == fresh.net.weights_fingerprint != original_net.weights_fingerprint
    # loaded on the original weights, the warning says where the exported fine-tuned ones are
    with caplog.at_level("WARNING", logger="deltatune.delta.network"):
        original_net.load_thresholds(out.path)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"it ran fine-tuned weights, which export wrote to {out.weights} (--weights;" in said, said
    again = fresh.evaluate(tf)
    assert again.speedup == pytest.approx(t.values[1], rel=1e-9)
    assert abs(again.accuracy_loss - t.values[0]) <= 1e-6
    assert finetune_of_attrs(t.user_attrs) == SPACE.config(TINY, lr=3e-3, weight_decay=0.0, steps=3,
                                                           sparsity_penalty=1.0, truncation_aware=True)

    # a resume with other --train options names the option that changed (it printed the stored dict)
    with pytest.raises(ConfigError, match=r"different training space \(--train options\): steps \[3\] "
                                          r"\(now \[0, 3\]\); "):
        run_search(replace(s, train=replace(SPACE, steps=(0, 3))))
    with pytest.raises(ConfigError, match=r": it ran with --train, now without; "):
        run_search(replace(s, train=None))


def test_a_fine_tune_that_cannot_meet_the_budget_is_pruned_and_remembered(
    tmp_path: Path, results: Path
) -> None:
    ev = Evaluator(TINY)
    # lr 0.5 blows the objective up (4e19 at step 2), which stops the fine-tune before the budget is asked:
    # the test below; 0.01 drifts off the budget
    space = TrainSpace.after(TINY, frames=8, steps=(4,), lr=(0.01,), weight_decay=(0.0,),
                             sparsity_penalty=(1.0,), truncation_aware=(False,), batch_size=1, seed=12)
    trainer = Trainer(ev, budget=0.0)
    cfg = space.config(TINY, lr=0.01, weight_decay=0.0, steps=4, sparsity_penalty=1.0, truncation_aware=False)
    s = settings(trials=2, study="prune", train=space, storage=str(tmp_path / "p.journal"), budget=0.0)
    run_search(s, evaluator=ev)
    study = open_study(s.storage_spec(), "prune", create=False)
    states = [t.state for t in study.trials]
    assert states == [TrialState.PRUNED, TrialState.PRUNED]
    assert "PCK points" in study.trials[0].user_attrs["pruned"]
    assert not trainer.path(cfg).is_file()  # no weights for a stopped fine-tune
    # the verdict is remembered: the second trial did not train again (the trainer's own count, not a
    # timing ratio, which a loaded CI machine can upset)
    assert [t.user_attrs["finetune_trained"] for t in study.trials] == [True, False]
    # pareto --csv writes every trial: the pruned ones too, with the fine-tune they drew and why they
    # stopped (it left them out, and with them every training setting the search tried)
    out = tmp_path / "every.csv"
    assert main(["pareto", "--storage", str(tmp_path / "p.journal"), "--study", "prune",
                 "--csv", str(out)]) == 0
    import pandas as pd

    rows = pd.read_csv(out)
    assert list(rows["state"]) == ["PRUNED", "PRUNED"] and list(rows["trial"]) == [0, 1]
    assert list(rows["finetune.lr"]) == [0.01, 0.01] and list(rows["finetune.steps"]) == [4, 4]
    assert rows["pruned"].str.contains("already loses").all() and rows["accuracy_loss"].isna().all()
    # no mode, key frames or thresholds: a pruned trial stopped before it drew them
    assert not any(c in rows.columns for c in ("mode", "input_dilation", "keyframe_interval"))
    raw = pd.read_csv(out, dtype=str)
    assert list(raw["finetune.steps"]) == ["4", "4"]  # written whole, not 4.0


def test_a_fine_tune_that_blows_up_is_hopeless_and_remembered(tmp_path: Path, results: Path) -> None:
    """A fine-tune whose objective blows up stops with its one-line reason, writes no weights, and the
    configuration is remembered as hopeless (the same seeds blow up again), as a non-finite loss was."""
    from deltatune.search.training import HopelessFinetune

    ev = Evaluator(TINY)
    space = TrainSpace.after(TINY, frames=8, steps=(4,), lr=(0.5,), weight_decay=(0.0,),
                             sparsity_penalty=(1.0,), truncation_aware=(False,), batch_size=1, seed=12)
    cfg = space.config(TINY, lr=0.5, weight_decay=0.0, steps=4, sparsity_penalty=1.0, truncation_aware=False)
    trainer = Trainer(ev, budget=None)
    blew_up = (r"^fine-tuning hrnet_tiny blew up at step 2 of 4 at --train-lr 0.5 \(adam\): the objective is "
               r"\d.*x that of a constant output; .*; lower --train-lr \(hrnet_tiny's default is 0.0001\)$")
    with pytest.raises(HopelessFinetune, match=blew_up):
        trainer.weights(cfg)  # the search's option: --lr is `deltatune finetune`'s
    assert not trainer.path(cfg).is_file() and trainer.trained == 1
    with pytest.raises(HopelessFinetune, match="blew up at step 2 of 4"):
        trainer.weights(cfg)  # remembered: not trained again
    assert trainer.trained == 1


def test_a_search_whose_trials_were_all_pruned_says_so_and_what_to_change(
    capsys: pytest.CaptureFixture[str], results: Path, vtest_path: Path
) -> None:
    """It printed "0 trials (0 new)" after running every trial, and advice about thresholds
    (--thr-range) for a fine-tune that was the cause."""
    assert main(["search", "--model", "hrnet_tiny", "--weights", "none", "--frames", "6", "--streams", "1",
                 "--trials", "2", "--speed", "macs", "--retime", "0", "--budget", "0", "--no-progress",
                 "--study", "allpruned", "--train", "--train-steps", "4", "--train-lr", "0.5",
                 "--train-weight-decay", "0", "--train-penalty", "1", "--train-truncation-aware", "off",
                 "--train-batch", "1"]) == 0
    out = capsys.readouterr().out
    assert ("study allpruned: 0 complete trials (0 new), 2 pruned (2 since this run began), "
            "storage") in out, out
    assert "no feasible trial yet: every trial was pruned (the note below says why): add 0 to " \
           "--train-steps" in out and "lower --thr-range" not in out, out


def test_a_search_whose_fine_tunes_blew_up_says_why_naming_its_own_option(
    capsys: pytest.CaptureFixture[str], results: Path, vtest_path: Path
) -> None:
    """The blown-up fine-tune's reason reaches the summary and --json (it was only in each trial's
    attribute), and it names --train-lr, the search's option (it said "lower --lr", finetune's)."""
    argv = ["search", "--model", "hrnet_tiny", "--weights", "none", "--frames", "6", "--streams", "1",
            "--trials", "2", "--speed", "macs", "--retime", "0", "--budget", "0", "--no-progress",
            "--study", "blewup", "--train", "--train-steps", "4", "--train-lr", "0.5",
            "--train-weight-decay", "0", "--train-penalty", "1", "--train-truncation-aware", "off",
            "--train-batch", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    note = next(line for line in out.splitlines() if line.startswith("note: 2 trial(s) pruned"))
    assert "; 2 blew up, as trial 0's: fine-tuning hrnet_tiny blew up at step 2 of 4 at --train-lr 0.5 " \
           "(adam)" in note and note.endswith("; lower --train-lr (hrnet_tiny's default is 0.0001)"), note
    assert " --lr" not in out, out
    assert main([*argv, "--json"]) == 0  # more trials of the same configuration: remembered as blown up
    notices = json.loads(capsys.readouterr().out)["notices"]
    assert any("blew up, as trial 0's" in n and n.endswith("; lower --train-lr (hrnet_tiny's default is "
                                                           "0.0001)") for n in notices), notices


def test_the_timeout_stops_a_running_fine_tune_and_keeps_its_checkpoint(
    tmp_path: Path, results: Path
) -> None:
    ev = Evaluator(TINY)
    space = TrainSpace.after(TINY, frames=8, steps=(400,), lr=(1e-3,), weight_decay=(0.0,),
                             sparsity_penalty=(1.0,), truncation_aware=(False,), batch_size=1, seed=13)
    s = settings(trials=5, study="late", train=space, storage=str(tmp_path / "l.journal"), timeout=2.0)
    t0 = time.monotonic()
    run_search(s, evaluator=ev)
    assert time.monotonic() - t0 < 60  # 400 steps would take minutes
    study = open_study(s.storage_spec(), "late", create=False)
    assert [t.state for t in study.trials] == [TrialState.PRUNED]  # no new trial after the deadline
    assert "time ran out" in study.trials[0].user_attrs["pruned"]
    path = Path(study.trials[0].user_attrs["finetune_weights"])
    assert not path.is_file() and not list(path.parent.glob("*.hopeless*"))  # not remembered as hopeless
    assert path.with_name(path.name + ".ckpt").is_file()  # a later search resumes it


def test_anchor_trials_run_the_original_weights(tmp_path: Path, results: Path) -> None:
    """The anchors of a --train search are the thresholds-only anchors (0 steps): all-zero thresholds on
    the original weights, exact and always feasible, whatever the fine-tunes do."""
    ev = Evaluator(TINY)
    space = TrainSpace.after(TINY, frames=8, steps=(0, 3), lr=(3e-3,), weight_decay=(0.0,),
                             sparsity_penalty=(1.0,), truncation_aware=(True,), batch_size=1, seed=14)
    s = settings(trials=4, study="anchors", train=space, storage=str(tmp_path / "a.journal"))
    run_search(s, evaluator=ev)
    first = open_study(s.storage_spec(), "anchors", create=False).trials[0]
    assert first.user_attrs["anchor"] == "zero" and first.params["train.steps"] == 0
    assert first.user_attrs["finetune"] is None and first.values[0] == 0.0


def test_a_fine_tune_that_cannot_move_the_weights_is_not_run(tmp_path: Path) -> None:
    """Steps without a penalty, truncation or weight decay: the target is the model's own output, so the
    fine-tune's loss and gradient are 0 and its weights are the original ones (checked here). The search
    ran it anyway, at a training's cost; it now runs the original weights, as for 0 steps."""
    from dataclasses import replace

    import optuna

    from deltatune.search.training import TrainSpace
    from deltatune.train.finetune import finetune
    from deltatune.workload import build_model

    space = TrainSpace(start=40, frames=6, batch_size=1)
    wl = TINY
    params = {"train.steps": 15, "train.lr": 1e-4, "train.weight_decay": 0.0, "train.sparsity_penalty": 0.0,
              "train.truncation_aware": False}
    assert space.suggest(optuna.trial.FixedTrial(params), wl) is None
    moving = space.suggest(optuna.trial.FixedTrial({**params, "train.sparsity_penalty": 0.1}), wl)
    assert moving is not None and moving.steps == 15
    still = replace(moving, sparsity_penalty=0.0, steps=2)
    out = tmp_path / "still.pt"
    finetune(still, out)
    original = build_model("hrnet_tiny", None)[0].state_dict()  # the fine-tune's random weights (seed 0)
    tuned = torch.load(out, map_location="cpu", weights_only=True)
    assert tuned and all(torch.equal(v.float(), original[k].float()) for k, v in tuned.items())


def test_train_needs_a_sampler_strategy_and_frames_the_search_does_not_score() -> None:
    with pytest.raises(ConfigError, match="sampler strategy"):
        settings(strategy="deltacnn-greedy", train=SPACE)
    with pytest.raises(ConfigError, match="overlap"):
        settings(train=TrainSpace(start=2, frames=8))
    with pytest.raises(ConfigError, match="distinct"):
        TrainSpace(start=6, steps=(0, 0))


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--train-lr", "0"], "--train-lr 0.0 (must be a finite number > 0)"),
        (["--train-lr", "nan,1e-4"], "--train-lr nan (must be a finite number > 0)"),
        (["--train-weight-decay", "0,inf"], "--train-weight-decay inf (must be a finite number >= 0)"),
        (["--train-lr", "fast"], "--train-lr 'fast'"),
        (["--train-frames", "0:40"], "overlap"),
        (["--train-frames", "790:830"], "has only 795 frames"),
        (["--train-truncation-aware", "yes"], "--train-truncation-aware"),
    ],
)
def test_bad_training_options_are_one_line_and_exit_2(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], results: Path, vtest_path: Path
) -> None:
    code, err = _cli(["search", "--model", "hrnet_tiny", "--weights", "none", "--frames", "8", "--train",
                      *extra], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not results.exists() or not any(results.iterdir())  # nothing written


@pytest.mark.parametrize(
    ("model", "levels"), [("hrnet", (1e-5, 3e-5, 1e-4)), ("blazepose", (1e-7, 3e-7, 1e-6))]
)
def test_the_default_learning_rates_follow_the_models_own(model: str, levels: tuple[float, ...]) -> None:
    """Without --train-lr, a --train search samples 0.1, 0.3 and 1 times the model's own fine-tuning
    rate. The general 1e-5..1e-4 wrecks BlazePose in a step (every trial pruned as blown up), so its
    levels are 100x smaller; hrnet's are the general ones, exactly (the study's categorical choices)."""
    from deltatune.cli import build_parser
    from deltatune.cli.search import train_space
    from deltatune.search import StudyWorkload

    args = build_parser().parse_args(["search", "--model", model, "--train"])
    space = train_space(args, StudyWorkload(model, frames=8))
    assert space.lr == levels
    given = build_parser().parse_args(["search", "--model", model, "--train", "--train-lr", "1e-4"])
    assert train_space(given, StudyWorkload(model, frames=8)).lr == (1e-4,)


def test_training_options_without_train_are_refused_not_ignored(
    capsys: pytest.CaptureFixture[str], results: Path, vtest_path: Path
) -> None:
    """Given without --train, a training list would be dropped and the study would search thresholds only."""
    code, err = _cli(["search", "--model", "hrnet_tiny", "--weights", "none", "--frames", "8",
                      "--train-lr", "1e-4", "--train-batch", "1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--train-lr, --train-batch: training options need --train" in err
    assert not results.exists() or not any(results.iterdir())
