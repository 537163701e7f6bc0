"""Delta-aware fine-tuning on real vtest frames: the objective falls, the penalty makes the network change
less between frames (and a delta network at fixed thresholds skip more), plain distillation without the
extra terms, exact resume, the straight-through truncation, and the CLI."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from deltatune.cli import main
from deltatune.errors import ConfigError
from deltatune.train.finetune import (
    DEFAULT_LR,
    FinetuneConfig,
    FinetuneDiverged,
    _pair_hooks,
    finetune,
    output_loss,
    temporal_change,
)
from deltatune.workload import load_workload


@pytest.fixture(scope="module")
def tiny_workload(vtest_path: Path):  # noqa: ANN201
    """hrnet_tiny (seeded random weights) on 12 real vtest frames, the default crop windows as streams."""
    torch.manual_seed(0)
    return load_workload("hrnet_tiny", weights=None, frames=12)


def _cfg(**kw: object) -> FinetuneConfig:
    base: dict[str, object] = dict(model="hrnet_tiny", weights="none", frames=12, steps=6, batch_size=2,
                                   lr=3e-3, checkpoint_every=2, seed=3)
    base.update(kw)
    return FinetuneConfig(**base)  # type: ignore[arg-type]


def _objective(model: nn.Module, teacher: nn.Module, frames: torch.Tensor, penalty: float) -> float:
    """The fine-tuning objective on every consecutive pair of stream 0 (fixed: not the training draws)."""
    x = torch.cat([frames[:-1, 0], frames[1:, 0]])
    changes: list[torch.Tensor] = []
    with torch.no_grad(), _pair_hooks(model, frames.shape[0] - 1, truncate=None, mode="max", changes=changes):
        pred = model(x)
    with torch.no_grad():
        target = teacher(x)
    return float(output_loss(pred, target) + penalty * torch.stack(changes).mean())


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_penalised_steps_lower_the_objective_and_the_frame_to_frame_change(tmp_path, tiny_workload) -> None:
    from deltatune.delta import convert

    teacher = tiny_workload.model
    cfg = _cfg(sparsity_penalty=1.0, steps=8)
    r = finetune(cfg, tmp_path / "ft.pt", workload=tiny_workload)
    assert r.steps == 8 and (tmp_path / "ft.pt").is_file()
    student = load_workload("hrnet_tiny", weights=None, frames=2).model
    student.load_state_dict(_load(tmp_path / "ft.pt"))
    frames = tiny_workload.frames
    before = _objective(teacher, teacher, frames, 1.0)
    after = _objective(student, teacher, frames, 1.0)
    assert after < before
    # the same delta network settings skip more work on the fine-tuned weights (temporal sparsity rose)
    macs = []
    for m in (teacher, student):
        net = convert(m, thresholds=0.02)
        net.run_stream(list(frames[:, :1]))
        macs.append(net.mac_speedup())
    assert macs[1] > macs[0]


def test_without_penalty_or_truncation_it_is_plain_distillation(tmp_path, tiny_workload) -> None:
    """Penalty 0, no truncation: the loss is the distillation loss alone, and a student that starts as the
    teacher is its fixed point (zero loss, zero gradient: the weights do not move)."""
    r = finetune(_cfg(), tmp_path / "plain.pt", workload=tiny_workload)
    assert r.losses == r.distill_losses and max(r.losses) == 0.0
    assert all(c > 0 for c in r.sparsity)  # measured all the same, only not optimised
    got = _load(tmp_path / "plain.pt")
    want = tiny_workload.model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in got)


def test_an_interrupted_run_resumed_gives_the_same_weights(tmp_path, tiny_workload) -> None:
    cfg = _cfg(sparsity_penalty=0.5, truncation_aware=True, threshold=0.05)
    full = finetune(cfg, tmp_path / "full.pt", workload=tiny_workload)
    cut = finetune(cfg, tmp_path / "cut.pt", workload=tiny_workload, stop_after=3)
    assert cut.steps == 3 and not (tmp_path / "cut.pt").exists() and cut.checkpoint.is_file()
    resumed = finetune(cfg, tmp_path / "cut.pt", workload=tiny_workload, resume=True)
    assert resumed.steps == 6 and resumed.losses == full.losses
    a, b = _load(tmp_path / "full.pt"), _load(tmp_path / "cut.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match=r"different fine-tuning configuration \(seed 3 there, 4 now\)"):
        finetune(replace(cfg, seed=4), tmp_path / "cut.pt", workload=tiny_workload, resume=True)


def test_a_finished_run_resumed_with_more_steps_is_the_longer_run(tmp_path, tiny_workload) -> None:
    """Batches are drawn from the step number and there is no schedule: 4 steps, then resumed to 6, give
    the weights and losses of 6 steps in one go. Fewer steps than the checkpoint has done are refused."""
    cfg = _cfg(sparsity_penalty=0.5)
    full = finetune(cfg, tmp_path / "full.pt", workload=tiny_workload)
    short = finetune(replace(cfg, steps=4), tmp_path / "ext.pt", workload=tiny_workload)
    assert short.steps == 4 and short.losses == full.losses[:4]
    longer = finetune(cfg, tmp_path / "ext.pt", workload=tiny_workload, resume=True)
    assert longer.steps == 6 and longer.losses == full.losses
    a, b = _load(tmp_path / "full.pt"), _load(tmp_path / "ext.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match=r"has done 6 steps already, more than --steps 5"):
        finetune(replace(cfg, steps=5), tmp_path / "ext.pt", workload=tiny_workload, resume=True)


def test_truncation_aware_forward_is_deltacnn_with_a_straight_through_gradient() -> None:
    """The second frame's output keeps only the changes above the threshold; the gradient reaches the
    changes that fired and not the others."""
    relu = nn.Sequential(nn.ReLU())
    a = torch.tensor([[[[1.0, 1.0]]]])  # [1, 1, 1, 2]: one channel, two pixels
    b = torch.tensor([[[[1.5, 1.01]]]], requires_grad=True)
    changes: list[torch.Tensor] = []
    with _pair_hooks(relu, 1, truncate=0.1, mode="max", changes=changes):
        y = relu(torch.cat([a, b]))
    assert torch.equal(y[1], torch.tensor([[[1.5, 1.0]]]))  # 0.5 fired, 0.01 held back
    y[1].sum().backward()
    assert b.grad is not None and b.grad.reshape(-1).tolist() == [1.0, 0.0]
    assert torch.isclose(changes[0], temporal_change(torch.cat([a, b.detach()]).relu(), 1))


def test_cli_finetune_and_bad_inputs(tmp_path, capsys, vtest_path) -> None:
    out = tmp_path / "w.pt"
    argv = ["finetune", "--model", "hrnet_tiny", "--weights", "none", "--frames", "0:6", "--steps", "2",
            "--batch-size", "1", "--sparsity-penalty", "0.1", "-o", str(out), "--json", "--threads", "1"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["steps"] == 2 and Path(d["weights"]) == out and out.is_file()
    assert main(["inspect", "--model", "hrnet_tiny", "--weights", str(out), "--frames", "3", "--json"]) == 0
    capsys.readouterr()
    # --resume with no checkpoint at that name (a mistyped -o) trained from step 0 without a word
    other = tmp_path / "w2.pt"
    assert main([*argv[:-4], str(other), "--json", "--threads", "1", "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"warning: --resume: no checkpoint at {other}.ckpt yet; training starts from the beginning" in err
    assert main([*argv[:-4], str(other), "--json", "--threads", "1", "--resume"]) == 0  # there now: quiet
    assert "--resume" not in capsys.readouterr().err
    for bad, needle in [(["--frames", "5:6"], "at least 2 frames"), (["--frames", "x"], "is not A:B"),
                        (["--lr", "0"], "--lr 0.0 (must be a finite number > 0)"),
                        (["--lr", "nan"], "--lr nan (must be a finite number > 0)"),
                        (["--weight-decay", "inf"], "--weight-decay inf (must be a finite number >= 0)"),
                        (["--steps", "0"], "--steps 0 (must be at least 1)"),
                        (["-o", str(tmp_path)], "--out"),
                        (["--frames", "790:830"], "has 795 frame(s); need 40 (--frames 790:795)"),
                        (["--window", "1,2,3"], "'1,2,3'"), (["--window", "700,0,240,320"], "700,0,240,320"),
                        (["--threshold", "0.05"], "--threshold 0.05: it is the truncation threshold of "
                                                  "--truncation-aware, which is off"),
                        (["--sparsity-penalty", "0"], "nothing to fine-tune")]:
        args = ["finetune", "--model", "hrnet_tiny", "--weights", "none", "-o", str(tmp_path / "z.pt"),
                "--sparsity-penalty", "0.1", *bad]
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "z.pt").exists()


def test_a_model_without_truncation_points_is_refused(tmp_path, tiny_workload) -> None:
    from deltatune.workload import Workload

    linear = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 2, 1)).eval()  # no non-linearity
    wl = Workload("linear", linear, tiny_workload.info, tiny_workload.frames, "vtest", [], "", True)
    with pytest.raises(ConfigError, match="no truncation points"):
        finetune(_cfg(), tmp_path / "x.pt", workload=wl)
    assert not (tmp_path / "x.pt").exists()


def test_cli_finetune_trains_on_the_crop_windows_it_is_given(tmp_path, capsys, vtest_path) -> None:
    """--window picks the streams: the sample's three windows written out give the default run's weights,
    one other window other weights (other pixels); the windows are part of the checkpoint's settings."""
    def run(name: str, *windows: str) -> dict[str, torch.Tensor]:
        argv = ["finetune", "--model", "hrnet_tiny", "--weights", "none", "--frames", "0:5", "--steps", "2",
                "--batch-size", "2", "--sparsity-penalty", "1", "--lr", "1e-2", "-o", str(tmp_path / name),
                "--json", "--threads", "1"]
        for w in windows:
            argv += ["--window", w]
        assert main(argv) == 0
        capsys.readouterr()
        return _load(tmp_path / name)

    default = run("default.pt")
    listed = run("listed.pt", "96,96,240,320", "456,96,240,320", "168,256,240,320")
    other = run("other.pt", "500,200,240,320")
    assert all(torch.equal(default[k], listed[k]) for k in default)
    assert any(not torch.equal(default[k], other[k]) for k in default)
    blob = torch.load(tmp_path / "other.pt.ckpt", map_location="cpu", weights_only=True)
    assert json.loads(blob["config"])["windows"] == ["500,200,240,320"]
    assert "windows" not in json.loads(_cfg().to_json())  # no windows: the settings as before the field


def test_the_summary_compares_the_same_frames_before_and_after(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Each step draws other frame pairs, so "first step -> last step" compared frames, not weights: the
    frame-to-frame change "doubled" (0.031 -> 0.050) in a run that lowered it on any one set of frames.
    The summary now scores the final weights on the first step's pairs; a run whose objective rose there
    gets a note, one at a tiny learning rate (weights all but unchanged) none."""
    base = ["finetune", "--model", "hrnet", "--frames", "0:10", "--steps", "6", "--batch-size", "2",
            "--sparsity-penalty", "0.1", "--threads", "2", "--no-progress"]
    assert main([*base, "--lr", "1e-4", "-o", str(tmp_path / "a.pt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    m = re.match(r"fine-tuned hrnet for 6 steps in \d+ s; on the first step's frame pairs, before -> after: "
                 r"objective ([\d.e-]+) -> ([\d.e-]+), frame-to-frame change ([\d.]+) -> ([\d.]+)$", lines[0])
    assert m, lines
    assert float(m[2]) > 1.05 * float(m[1])  # steps at 1e-4 drift from the original (README)
    assert lines[-1].startswith("note: on the same frames the objective rose: the run ended worse than it "
                                "began at --lr 0.0001"), lines
    assert main([*base, "--lr", "1e-9", "-o", str(tmp_path / "b.pt"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["end_loss"] == pytest.approx(d["first_loss"], rel=1e-3)
    assert d["end_change"] == pytest.approx(d["first_change"], rel=1e-3)


@pytest.fixture(scope="module")
def blazepose_workload(vtest_path: Path):  # noqa: ANN201
    """BlazePose-full with its real weights (converted from MediaPipe's .tflite) on 4 real vtest frames, the
    sample's 3 crop windows as streams."""
    return load_workload("blazepose", frames=4, frames_as_range=True)


def _confident_keypoints(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BlazePose's own heatmap decoding of its 33 body landmarks: ``([N, 33, 2] px, [N, 33] confidence)``."""
    from deltatune_models.blazepose import heatmap_keypoints

    with torch.no_grad():
        kp = heatmap_keypoints(model(x))[:, :33]
    return kp[..., :2], kp[..., 2]


def test_blazepose_fine_tunes_at_its_own_learning_rate_without_losing_its_keypoints(
    tmp_path, blazepose_workload
) -> None:
    """A user trial: `finetune --model blazepose` at the general default lr 1e-4 blew the objective up in
    one step (0.0087 -> 2.4e4). AdamW moves every weight by about the rate per step whatever its gradient,
    and BlazePose's weights (batch norm folded in, over activations averaging 26-66) cannot take 1e-4:
    on these frames 2 steps moved half of its confident keypoints by more than a heatmap cell (mean 10
    cells). Its card's rate, the default now, keeps them (96.6 % within a cell)."""
    from deltatune_models import model_card

    cfg = FinetuneConfig(model="blazepose", frames=4, steps=2, batch_size=1, sparsity_penalty=0.1)
    assert cfg.lr == model_card("blazepose").finetune_lr == 1e-6 and DEFAULT_LR == 1e-4
    assert FinetuneConfig(model="hrnet").lr == DEFAULT_LR  # the others keep theirs (and their checkpoints)
    r = finetune(cfg, tmp_path / "bp.pt", workload=blazepose_workload)
    assert r.end_loss is not None and r.end_loss < 1e4 * r.losses[0]  # 1e-4: 0.0167 -> 1.38e4 (8e5x)
    teacher = blazepose_workload.model
    student = copy.deepcopy(teacher)
    student.load_state_dict(_load(tmp_path / "bp.pt"))
    x = blazepose_workload.frames.flatten(0, 1)
    ref, confidence = _confident_keypoints(teacher, x)
    got, _ = _confident_keypoints(student, x)
    sure = confidence > 0.5
    assert int(sure.sum()) > 50
    moved_cells = (got - ref).norm(dim=-1)[sure] / 4  # stride 4
    assert float((moved_cells <= 1).float().mean()) > 0.9, moved_cells


def test_a_blown_up_fine_tune_stops_with_one_line_and_writes_no_weights(
    tmp_path, capsys, blazepose_workload
) -> None:
    """Finite but wrecked (AdamW at 1e-4 on blazepose: final weights further from the original's output
    than a constant is, on step 1's frame pairs) and exploding (SGD: 2e7 at step 3, 1e19 later) runs are
    refused in one line each; nothing is written where the weights go, and the checkpoint of the wrecked
    run is removed (it was left behind: resumed with more steps it continued from the lost weights and
    wrote them, objective 0.0167 -> 5877)."""
    cfg = FinetuneConfig(model="blazepose", frames=4, steps=2, batch_size=1, sparsity_penalty=0.1, lr=1e-4)
    adam = tmp_path / "adam.pt"
    with pytest.raises(FinetuneDiverged, match=r"^fine-tuning blazepose blew up by the end of its 2 steps .* "
                       r"at --lr 0.0001 \(adam\): the objective is 1.\d+e\+04 \(step 1: 0.0167\), its "
                       r"distillation part 1.\d+x that of a constant output; no weights written to "
                       f"{re.escape(str(adam))}, and its checkpoint {re.escape(str(adam))}.ckpt removed "
                       r"\(a resume would repeat the blow-up\); lower --lr \(blazepose's default is "
                       r"1e-06\)$"):
        finetune(cfg, adam, workload=blazepose_workload)
    assert not adam.exists() and not Path(f"{adam}.ckpt").exists()
    out = tmp_path / "sgd.pt"
    argv = ["finetune", "--model", "blazepose", "--frames", "0:4", "--steps", "5", "--batch-size", "1",
            "--optimizer", "sgd", "--lr", "1e-4", "--sparsity-penalty", "0.1", "--threads", "1",
            "--no-progress", "-o", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "deltatune finetune: error: fine-tuning blazepose blew up at step 3 of 5 at --lr 0.0001 (sgd): the "
        "objective is "), err
    assert "x that of a constant output; no weights written to" in err[0] and not captured.out
    assert not out.exists()


def test_a_non_finite_objective_stops_the_run_at_once(tmp_path, tiny_workload) -> None:
    """A NaN in the objective (here from a frame with a NaN pixel) stops the run at that step: no step is
    taken on it, no weights are written, and at step 1 the rate is not blamed (no step has been taken)."""
    from deltatune.workload import Workload

    frames = tiny_workload.frames.clone()
    frames[:, :, :, 0, 0] = float("nan")
    wl = Workload("hrnet_tiny", tiny_workload.model, tiny_workload.info, frames, "vtest", [], "", True)
    other = tmp_path / "x.pt.ckpt"
    other.write_bytes(b"another run's checkpoint")  # not this run's: a blow-up leaves it alone
    with pytest.raises(FinetuneDiverged, match=r"blew up at step 1 of 6 at --lr 0.003 \(adam\): the "
                       r"objective is nan; no weights written to .*x.pt; that is the original weights' "
                       r"objective on these frames: check the video and --weights$"):
        finetune(_cfg(sparsity_penalty=0.1), tmp_path / "x.pt", workload=wl)
    assert not (tmp_path / "x.pt").exists() and other.read_bytes() == b"another run's checkpoint"


def test_a_run_that_blows_up_after_a_checkpoint_removes_it(tmp_path, tiny_workload) -> None:
    """A run that saved a checkpoint and then blew up removes it: resumed with its settings it repeats the
    same seeded steps into the same blow-up, and a lower --lr cannot resume it (another configuration)."""
    cfg = _cfg(lr=0.5, sparsity_penalty=1.0, checkpoint_every=1)
    out = tmp_path / "x.pt"
    said = (r"blew up at step [2-6] of 6 at --lr 0.5 .*; no weights written to .*x.pt, and its checkpoint "
            r".*x.pt.ckpt removed \(a resume would repeat the blow-up\); lower --lr")
    with pytest.raises(FinetuneDiverged, match=said):
        finetune(cfg, out, workload=tiny_workload)
    assert not out.exists() and not Path(f"{out}.ckpt").exists()
