"""Distillation: geometry conventions, targets, a few real training steps (loss falls), resume, CLI."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deltatune.data.video import DEFAULT_WINDOWS, FrameStreams
from deltatune.errors import ConfigError
from deltatune.train import (
    AugmentConfig,
    Box,
    DistillConfig,
    crop_resize,
    distill,
    distill_loss,
    frame_to_crop,
    gaussian_heatmaps,
    load_frames,
    parse_frame_ranges,
    teacher_targets,
)
from deltatune.train.samples import flip_permutation
from deltatune.workload import preprocess
from deltatune_models.hrnet import FLIP_PAIRS_COCO

# Three real vtest frames, 20 apart: enough pedestrians for a handful of samples, fast to label.
FRAMES = "vtest:0-40:20"


def _tiny(**kw: object) -> DistillConfig:
    base = dict(
        student="hrnet_tiny",
        input_size=(128, 96),
        train_frames=FRAMES,
        heldout_frames=None,
        batch_size=4,
        warmup_steps=1,
        lr=2e-3,
        checkpoint_every=2,
        augment=AugmentConfig.none(),
    )
    base.update(kw)
    return DistillConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, vtest_path: Path) -> Path:
    """A teacher-target cache for FRAMES, computed once with the real BlazePose-full."""
    d = tmp_path_factory.mktemp("teacher")
    ranges = parse_frame_ranges(FRAMES)
    targets = teacher_targets(ranges, cache_dir=d)
    assert int((targets.pose_flag > 0.5).sum()) >= 3, "BlazePose should find vtest's pedestrians"
    return d


def test_parse_frame_ranges() -> None:
    r = parse_frame_ranges("vtest:650-794, carphone:0-89:3")
    assert [str(x) for x in r] == ["vtest:650-794", "carphone:0-89:3"]
    assert r[1].indices[:3] == [0, 3, 6]
    with pytest.raises(ConfigError):
        parse_frame_ranges("vtest:10")
    with pytest.raises(ConfigError):
        parse_frame_ranges("vtest:9-3")


def test_crop_resize_matches_frame_streams(vtest_path: Path) -> None:
    streams = FrameStreams(vtest_path, windows=DEFAULT_WINDOWS["vtest"], size=(256, 192), count=1)
    expected = next(iter(streams))
    frame = load_frames(parse_frame_ranges("vtest:0-0"))["vtest:0-0"][0]
    for i, w in enumerate(DEFAULT_WINDOWS["vtest"]):
        got = crop_resize(frame, Box(w.x, w.y, w.w, w.h), (256, 192))
        assert torch.equal(got, expected[i])


def test_coordinate_conventions() -> None:
    box = Box(100, 50, 240, 320)
    # The centre of the box's first pixel (edge coords 100.5, 50.5) -> crop index coords of a 1:1 crop.
    pts = frame_to_crop(torch.tensor([[100.5, 50.5]]), box, (320, 240))
    assert torch.allclose(pts, torch.tensor([[0.0, 0.0]]))
    # Half-size crop: the box's far edge maps to the last pixel's far edge.
    pts = frame_to_crop(torch.tensor([[340.0, 370.0]]), box, (160, 120))
    assert torch.allclose(pts, torch.tensor([[119.5, 159.5]]))
    hm, inside = gaussian_heatmaps(torch.tensor([[3.0, 2.0], [-5.0, 1.0]]), (8, 6), sigma=2.0)
    assert hm[0].argmax() == 2 * 6 + 3 and float(hm[0].max()) == 1.0
    assert inside.tolist() == [True, False]
    perm = flip_permutation(FLIP_PAIRS_COCO, 17)
    assert perm[0] == 0 and perm[1] == 2 and perm[16] == 15


def test_loss_is_zero_at_target_and_prefers_the_right_peak() -> None:
    target, _ = gaussian_heatmaps(torch.tensor([[10.0, 12.0]]), (32, 24))
    target = target[None]
    weight = torch.ones(1, 1)
    assert float(distill_loss(target, target, weight, ce_weight=0.0)) == 0.0
    moved, _ = gaussian_heatmaps(torch.tensor([[14.0, 12.0]]), (32, 24))
    assert float(distill_loss(moved[None], target, weight)) > float(distill_loss(target, target, weight))
    assert float(distill_loss(moved[None], target, torch.zeros(1, 1))) == 0.0


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        DistillConfig(teacher="openpose").validate()
    with pytest.raises(ConfigError):
        DistillConfig(input_size=(250, 192)).validate()
    with pytest.raises(ConfigError):
        DistillConfig(lr=0).validate()
    with pytest.raises(ConfigError, match=r"lr nan \(must be a finite number > 0\); weight_decay inf"):
        DistillConfig(lr=float("nan"), weight_decay=float("inf")).validate()
    cfg = _tiny()
    assert DistillConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.slow  # ~10 s on 2 cores: the BlazePose teacher cache, then 16 steps
def test_distill_loss_decreases_on_real_frames(cache: Path, tmp_path: Path) -> None:
    losses: list[float] = []
    result = distill(
        _tiny(max_steps=16, epochs=50),
        out=tmp_path / "w.pt",
        cache_dir=cache,
        on_step=lambda s, v: losses.append(v),
    )
    assert result.steps == 16 and len(losses) == 16
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.7 * first, losses
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert result.checkpoint.is_file()


class _Killed(Exception):
    """Raised from ``on_step``: the run stops there as a killed one does, keeping its last checkpoint."""


def _kill_at(step: int) -> Callable[[int, float], None]:
    def on_step(done: int, loss: float) -> None:
        if done == step:
            raise _Killed

    return on_step


@pytest.mark.slow  # needs the teacher cache (~5 s), then 6 steps and a refused resume
def test_resume_continues_exactly(cache: Path, tmp_path: Path) -> None:
    """A run killed after its step-2 checkpoint and resumed with its own settings ends at the weights of
    the run that was never stopped."""
    cfg = _tiny(epochs=50, max_steps=4, augment=AugmentConfig())
    straight = distill(cfg, out=tmp_path / "a.pt", cache_dir=cache)
    with pytest.raises(_Killed):
        distill(cfg, out=tmp_path / "b.pt", cache_dir=cache, on_step=_kill_at(3))
    assert int(torch.load(tmp_path / "b.pt.ckpt", weights_only=True)["step"]) == 2
    resumed = distill(cfg, out=tmp_path / "b.pt", cache_dir=cache, resume=True)
    assert resumed.steps == 4
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-4)
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=2e-3) for k in a)
    with pytest.raises(ConfigError, match=r"different distillation configuration \(lr 0.002 there, 0.01"):
        distill(replace(cfg, lr=1e-2), out=tmp_path / "b.pt", cache_dir=cache, resume=True)


@pytest.mark.slow  # needs the teacher cache (~5 s), then 2 steps
def test_resume_at_another_length_is_refused_before_any_work(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The learning rate decays (cosine) over the run's length, so a resume with more --max-steps or
    --epochs was neither run: 40 steps resumed to 50 ended 0.66 away from a straight 50-step run, the
    rate jumping back up at the resume. Such a resume is refused in one line naming the checkpoint's
    length, before the teacher's targets are read (an empty cache folder stays unmade); another
    --epochs that leaves the steps as they were (--max-steps stops the run first) is the same run."""
    # the settings `deltatune distill` gives for the command line below
    cfg = DistillConfig(student="hrnet_tiny", input_size=(128, 96), train_frames=FRAMES, heldout_frames=None,
                        batch_size=4, epochs=50, max_steps=2)
    out = tmp_path / "w.pt"
    distill(cfg, out=out, cache_dir=cache)
    unmade = tmp_path / "no-cache"
    for other, steps in ((replace(cfg, max_steps=3), "3"), (replace(cfg, max_steps=None), "[1-9][0-9]+")):
        with pytest.raises(ConfigError) as refused:
            distill(other, out=out, cache_dir=unmade, resume=True)
        said = str(refused.value)
        assert re.match(re.escape(f"{out}.ckpt: checkpoint of a 2-step run (--epochs 50 --max-steps 2); this "
                                  "one has ") + f"{steps} steps, and the learning rate decays", said), said
        assert said.endswith("resume with --epochs 50 --max-steps 2, or remove the checkpoint to train from "
                             "the start") and "\n" not in said
    assert not unmade.exists()
    from deltatune.cli import main

    argv = ["distill", "--student", "hrnet_tiny", "--input-size", "128x96", "--frames", FRAMES, "--heldout",
            "", "--batch-size", "4", "--epochs", "50", "--max-steps", "3", "--resume", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deltatune distill: error: {out}.ckpt: checkpoint of a 2-step run") and err.count(
        "\n") == 1, err
    again = distill(replace(cfg, epochs=60), out=out, cache_dir=cache, resume=True)
    assert again.steps == 2


def test_default_student_is_fed_as_before_bit_for_bit(vtest_path: Path) -> None:
    """Distillation fed every student RGB crops at 256x192 with ImageNet's mean/std; it now feeds the
    student's model card's input (:func:`student_card`, :func:`deltatune.workload.preprocess`). For the
    default student (the shipped weights' recipe) that is the same input to the bit, and the command
    line's defaults are still that recipe; a --width HRNet keeps the HRNet family's RGB input too."""
    from deltatune.cli import distill as cli
    from deltatune.train.distill import student_card
    from deltatune_models import IMAGENET_MEAN, IMAGENET_STD

    cfg = DistillConfig()
    card = student_card(cfg)
    assert (card.name, card.input_size, card.color_order) == ("hrnet_w18_small_v2", cfg.input_size, "RGB")
    frame = load_frames(parse_frame_ranges("vtest:0-0"))["vtest:0-0"][0]
    crops = torch.stack([crop_resize(frame, Box(w.x, w.y, w.w, w.h), cfg.input_size)
                         for w in DEFAULT_WINDOWS["vtest"]])
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    before = (crops - mean) / std  # what distill() and evaluate_fidelity() computed
    assert torch.equal(preprocess(crops, card), before)
    assert torch.equal(preprocess(crops, student_card(replace(cfg, width=8))), before)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.config(parser.parse_args([])) == cfg


def test_a_student_is_distilled_at_its_own_input_size() -> None:
    """Every student was trained at 256x192 (DistillConfig's default), whatever size its model card gives:
    hrnet_tiny runs at 128x96 in bench, search, predict and finetune. The command line now takes the
    card's size, and another is refused in one line (a --width HRNet has no card: any size)."""
    from deltatune.cli import distill as cli

    with pytest.raises(ConfigError) as refused:
        DistillConfig(student="hrnet_tiny").validate()
    assert str(refused.value) == (
        "input size 256x192: student hrnet_tiny runs at 128x96 (its model card; bench, search, predict and "
        "finetune feed it that size), so it is distilled at that size: give --input-size 128x96 or leave it "
        "out (--width builds an HRNet for any size)"
    )
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.config(parser.parse_args(["--student", "hrnet_tiny"])).input_size == (128, 96)
    assert cli.config(parser.parse_args(["--student", "pose_resnet50"])).input_size == (256, 192)
    assert cli.config(parser.parse_args(["--width", "8"])).input_size == (256, 192)
    cli.config(parser.parse_args(["--width", "8", "--input-size", "128x96"])).validate()


@pytest.mark.slow  # needs the teacher cache (~5 s), then a step and a held-out evaluation per student
def test_student_is_fed_as_its_model_card_says(cache: Path, tmp_path: Path) -> None:
    """pose_resnet* read BGR (their card's colour order, as SimpleBaselines' weights expect), but
    distillation fed every student RGB: its weights learnt red and blue swapped against what bench,
    search and predict feed them. Two students of the same input size see the same crops, each as its
    own card says, in training and in the held-out evaluation: what the RGB student is fed, turned back
    into the crop and preprocessed for the BGR student, is what that one is fed."""
    from deltatune_models import IMAGENET_MEAN, IMAGENET_STD, model_info

    fed: dict[str, list[torch.Tensor]] = {"PoseHighResolutionNet": [], "PoseResNet": []}

    def record(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        # the student itself, not one of its layers, nor model_info's shape-only pass counting its MACs
        if type(module).__name__ in fed and not args[0].is_meta:
            fed[type(module).__name__].append(args[0].detach().clone())

    hook = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        for student in ("hrnet_tiny", "pose_resnet_tiny"):
            cfg = _tiny(student=student, max_steps=1, heldout_frames=FRAMES)
            distill(cfg, out=tmp_path / f"{student}.pt", cache_dir=cache)
    finally:
        hook.remove()
    rgb, bgr = fed["PoseHighResolutionNet"], fed["PoseResNet"]
    assert len(rgb) == len(bgr) >= 2  # the training step and the held-out batches
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for a, b in zip(rgb, bgr, strict=True):
        crops = a * std + mean
        assert torch.allclose(b, preprocess(crops, model_info("pose_resnet_tiny")), atol=1e-5)
        assert float((b - a).abs().max()) > 0.1  # the colour order shows on these crops


def test_cli_parses_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    from deltatune.cli import distill as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--input-size", "256x192", "--epochs", "3", "--lr", "5e-4", "--batch-size", "2"]
    )
    assert args.input_size == (256, 192) and args.epochs == 3 and args.student == "hrnet_w18_small_v2"
    with pytest.raises(SystemExit):
        parser.parse_args(["--input-size", "big"])
    bad = parser.parse_args(["--input-size", "250x192", "--max-steps", "1"])
    with pytest.raises(ConfigError):
        cli.run(bad)


def test_bad_output_and_one_frame_ranges_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --out that cannot be written failed with a traceback after the whole training (the weights are
    saved last); a one-frame range of a static camera ended in "the teacher found no person" (its
    background, the median of the range's frames, is then the frame itself)."""
    from deltatune.cli import main

    (tmp_path / "afile").write_text("a file, not a folder")
    out = tmp_path / "afile" / "e.pt"
    assert main(["distill", "--student", "hrnet_tiny", "--max-steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"deltatune distill: error: --out {out}: cannot create {out.parent} ({out.parent} is a "
                   "file)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written anywhere
    for args in (["--heldout", "vtest:650-650", "--evaluate", "default"], ["--frames", "vtest:3-3"]):
        assert main(["distill", "--student", "hrnet_tiny", "--max-steps", "1", *args]) == 2
        err = capsys.readouterr().err
        assert "1 frame; on a static camera the teacher finds persons against the median" in err, err
        assert err.count("\n") == 1
    DistillConfig(train_frames="carphone:0-0", heldout_frames="").validate()  # no background: one will do
