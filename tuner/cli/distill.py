"""``deltatune distill``: train a pose HRNet to reproduce BlazePose on real video (the default weights)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from deltatune.cli._common import add_no_progress, json_text
from deltatune.errors import ConfigError

if TYPE_CHECKING:
    from deltatune.train import DistillConfig

NAME = "distill"
HELP = "distil an HRNet student from BlazePose on real video crops (how the default weights were made)"
DESCRIPTION = (
    "Run the teacher (BlazePose-full) on person crops of the training frames (cached), map its landmarks "
    "to the 17 COCO joints and train the student's heatmaps on jittered, mirrored, colour-jittered crops "
    "(--crops: the default windows, boxes around the teacher's persons, or both). Checkpoints go to "
    "OUT.ckpt (atomic, resumable with --resume); the fp16 weights go to OUT; at the end the student's "
    "PCK@0.2 against the teacher on the held-out frames is reported. Frame ranges are "
    "'source:first-last[:step]', comma separated (source: vtest, carphone)."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune distill --student hrnet --out hrnet_distilled.pt",
)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size {text!r} is not HxW (e.g. 256x192)") from None
    return h, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the distillation options (defaults: the recipe of the shipped weights)."""
    from deltatune.train import DEFAULT_HELDOUT_FRAMES, DEFAULT_TRAIN_FRAMES, TEACHERS, DistillConfig

    d = DistillConfig()
    parser.add_argument("--teacher", default=d.teacher, choices=TEACHERS,
                        help=f"teacher network (default {d.teacher})")
    parser.add_argument(
        "--student", default=d.student, help=f"registered 17-joint pose model (default {d.student})"
    )
    parser.add_argument(
        "--width", type=int, help="build pose-HRNet-W<width> (official structure) instead of --student"
    )
    parser.add_argument(
        "--input-size", type=_size, metavar="HxW",
        help="student input: a registered --student's own size (its model card, the default; another is "
        f"refused), any multiple of 32 for --width (default {d.input_size[0]}x{d.input_size[1]})",
    )
    parser.add_argument(
        "--frames", default=DEFAULT_TRAIN_FRAMES, help=f"training frames (default {DEFAULT_TRAIN_FRAMES})"
    )
    parser.add_argument(
        "--heldout",
        default=DEFAULT_HELDOUT_FRAMES,
        help=f"held-out frames for the final PCK (default {DEFAULT_HELDOUT_FRAMES}); '' to skip",
    )
    parser.add_argument("--epochs", type=int, default=d.epochs,
                        help=f"passes over the training crops (default {d.epochs})")
    parser.add_argument(
        "--lr", type=float, default=d.lr,
        help=f"peak AdamW learning rate, warmed up, then cosine decay (default {d.lr})",
    )
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay,
                        help=f"AdamW's decoupled weight decay (default {d.weight_decay})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size,
                        help=f"crops per step (default {d.batch_size})")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (smoke runs)")
    parser.add_argument(
        "--crops",
        default=d.crops,
        choices=("windows", "persons", "both"),
        help=f"train on the default windows, on top-down boxes around the teacher's persons, or both "
        f"(default {d.crops})",
    )
    parser.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast for the forward pass (faster on AVX-512 CPUs)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="distilled.pt",
                        help="fp16 weights file, .pt or .pth (checkpoint: OUT.ckpt; default distilled.pt)")
    parser.add_argument(
        "--resume", action="store_true",
        help="continue from OUT.ckpt, with the settings it was written with (its run length included)",
    )
    add_no_progress(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--evaluate",
        metavar="WEIGHTS",
        help="train nothing: PCK@0.2 of --student with WEIGHTS (a file, or 'default') vs the teacher on "
        "--heldout, on person boxes and on the default windows",
    )


def config(args: argparse.Namespace) -> DistillConfig:
    """The run's settings from the command line. Without --input-size the student's input is its model
    card's size (``DistillConfig``'s default, 256x192, with --width)."""
    from deltatune.train import DistillConfig

    size = args.input_size
    if size is None:
        if args.width is None:
            from deltatune_models import model_info

            size = model_info(args.student).input_size
        else:
            size = DistillConfig().input_size
    return DistillConfig(
        teacher=args.teacher,
        student=args.student,
        width=args.width,
        input_size=tuple(size),
        train_frames=args.frames,
        heldout_frames=args.heldout or None,
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        seed=args.seed,
        max_steps=args.max_steps,
        bf16=args.bf16,
        crops=args.crops,
    )


def run(args: argparse.Namespace) -> int:
    """Validate, train, print where the weights went and the held-out PCK."""
    import torch

    from deltatune.train import distill

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads} must be >= 1")
        torch.set_num_threads(args.threads)
    cfg = config(args)
    if args.evaluate:
        return _evaluate(cfg, args)
    from deltatune.cli._common import WEIGHTS_SUFFIXES, check_output_path, refuse_writing_the_input
    from deltatune.train import parse_frame_ranges
    from deltatune.train.checkpoints import checkpoint_path, fresh_resume_note
    from deltatune.train.distill import check_heldout_apart

    check_heldout_apart(cfg)
    # before hours of training: weights written over a video they train or score on, or a place the
    # weights (or the checkpoint) cannot go, failed only at the end
    outputs = {"--out": args.out, "--out (its checkpoint)": checkpoint_path(args.out)}
    for option, frames in (("--frames", cfg.train_frames), ("--heldout", cfg.heldout_frames)):
        for r in parse_frame_ranges(frames) if frames else ():
            refuse_writing_the_input(r.source, outputs, given=f"{option} {r}")
    check_output_path(args.out, "--out", suffixes=WEIGHTS_SUFFIXES)
    check_output_path(checkpoint_path(args.out), "--out (its checkpoint)")

    if note := fresh_resume_note(args.out, args.resume):
        print(f"warning: {note}", file=sys.stderr)
    result = distill(cfg, out=args.out, resume=args.resume, progress=not args.no_progress)
    record = {
        "weights": str(result.weights),
        "checkpoint": str(result.checkpoint),
        "steps": result.steps,
        "final_loss": result.losses[-1] if result.losses else None,
        "wall_time_s": round(result.wall_time_s, 1),
        "heldout": result.heldout.to_dict() if result.heldout else None,
    }
    if args.json:
        print(json_text(record))
    else:
        print(f"weights: {record['weights']} ({result.steps} step{'s' * (result.steps != 1)}, "
              f"{record['wall_time_s']} s)")
        if result.heldout is not None:
            h = result.heldout
            print(
                f"held-out PCK@{h.alpha} vs teacher ({h.crops}): {h.pck:.3f} "
                f"({h.n_keypoints} joints, {h.n_samples} crops)"
            )
    sys.stdout.flush()
    return 0


def _evaluate(cfg: DistillConfig, args: argparse.Namespace) -> int:
    from deltatune.train import build_student, evaluate_student
    from deltatune_models import create_model, load_checkpoint, model_info

    if not cfg.heldout_frames:
        raise ConfigError("--evaluate needs --heldout frames")
    cfg.validate()
    if args.evaluate == "default" and (args.width is not None or model_info(cfg.student).weights == "none"):
        # said here: the registry's own refusal points to --weights, which distill does not have
        which = f"--width {args.width}: an HRNet of that width" if args.width is not None else cfg.student
        raise ConfigError(f"--evaluate default: {which} has no default weights; give a weights file "
                          "(--evaluate FILE)")
    if args.width is None:
        model = create_model(cfg.student, weights=args.evaluate)
    else:
        model = build_student(cfg.student, width=args.width)
        load_checkpoint(model, args.evaluate)
    results = [evaluate_student(model.eval(), cfg, crops=c) for c in ("persons", "windows")]
    if args.json:
        print(json_text([r.to_dict() for r in results]))
    else:
        for r in results:
            print(
                f"{cfg.student} ({args.evaluate}) held-out {cfg.heldout_frames}, {r.crops} crops: "
                f"PCK@{r.alpha} vs {cfg.teacher} = {r.pck:.3f} ({r.n_keypoints} joints, {r.n_samples} crops)"
            )
    return 0
