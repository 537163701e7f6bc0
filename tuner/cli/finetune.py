"""``deltatune finetune``: delta-aware fine-tuning of a pretrained zoo model on the user's own video."""

from __future__ import annotations

import argparse
import sys

from deltatune.cli._common import add_no_progress, add_window_argument, json_text
from deltatune.errors import ConfigError

NAME = "finetune"
HELP = "fine-tune a pretrained model on consecutive video frames so that it changes less between frames"
DESCRIPTION = (
    "Fine-tunes a registered model on pairs of consecutive frames of a video (default: the vtest sample, "
    "the model's crop windows as streams), with no labels: the target is the original dense model's own "
    "output on the same frames. --sparsity-penalty adds a normalised L1 penalty on frame-to-frame changes "
    "at the non-linearities; --truncation-aware runs DeltaCNN's truncation (at --threshold) in the "
    "training forward pass, with a straight-through gradient through the firing decision. One of them, or "
    "--weight-decay, is needed: without them the target is the model itself and the weights cannot move. "
    "Seeded; "
    "checkpoints go to OUT.ckpt (atomic; --resume continues exactly); the weights go to OUT, loadable "
    "with --weights OUT by every other command. Batch-norm statistics stay frozen. The learning rate "
    "defaults to the model's own (1e-4; blazepose's weights need 1e-6). A run whose objective blows up "
    "(not finite, or far beyond a constant output's) stops with one line, writes no weights and removes "
    "OUT.ckpt (a resume would repeat the blow-up)."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune finetune --model hrnet --steps 30 --weight-decay 5e-4 -o hrnet_ft.pt",
    "deltatune finetune --model hrnet --video clip.mp4 --window 100,40,300,400 --frames 0:60 "
    "--sparsity-penalty 0.1 -o clip_ft.pt",
)


def parse_frames(text: str) -> tuple[int, int]:
    """``A:B`` (video frames A..B-1) or ``N`` (frames 0..N-1) -> ``(start, count)``; one clear error."""
    try:
        if ":" in text:
            a, b = (int(v) for v in text.split(":", 1))
        else:
            a, b = 0, int(text)
    except ValueError:
        raise ConfigError(f"--frames {text!r} is not A:B (frames A..B-1) or N") from None
    if a < 0 or b - a < 2:
        raise ConfigError(f"--frames {text!r}: need 0 <= A and at least 2 frames")
    return a, b - a


def _lr_defaults() -> str:
    """The default learning rates, for ``--help``: the general one, then each model's own."""
    from deltatune.train.finetune import DEFAULT_LR
    from deltatune_models import list_models, model_card

    own = [f"{n} {lr:g}" for n in list_models() if (lr := model_card(n).finetune_lr) is not None]
    return f"{DEFAULT_LR:g}" + (f"; {', '.join(own)}" if own else "")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from deltatune.train.finetune import OPTIMIZERS, FinetuneConfig

    d = FinetuneConfig()
    p.add_argument("--model", default=d.model, help=f"registered model name (default {d.model})")
    p.add_argument(
        "--weights", default=d.weights, help="'default', 'none' or a checkpoint file (default: default)"
    )
    p.add_argument("--video", default=None, help="video file, image folder, or sample name (default: vtest)")
    add_window_argument(p)
    p.add_argument(
        "--frames",
        default=f"{d.start}:{d.start + d.frames}",
        metavar="A:B",
        help=f"video frames A..B-1 to train on (default {d.start}:{d.start + d.frames})",
    )
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default {_lr_defaults()})")
    p.add_argument(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help=f"decoupled weight decay (default {d.weight_decay})",
    )
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"frame pairs per step (default {d.batch_size})"
    )
    p.add_argument(
        "--optimizer", choices=OPTIMIZERS, default=d.optimizer,
        help=f"adam (AdamW) or sgd (momentum 0.9) (default {d.optimizer})",
    )
    p.add_argument(
        "--sparsity-penalty",
        type=float,
        default=d.sparsity_penalty,
        help="weight of the normalised L1 penalty on frame-to-frame changes (default 0: off)",
    )
    p.add_argument(
        "--truncation-aware",
        action="store_true",
        help="truncate changes in the training forward pass as the delta network will",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"truncation threshold of --truncation-aware (default {d.threshold})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    p.add_argument(
        "--resume", action="store_true", help="continue from OUT.ckpt (same settings; --steps may grow)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("-o", "--out", required=True,
                   help="weights file to write, .pt or .pth (OUT.ckpt holds the checkpoint)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from deltatune.cli._common import WEIGHTS_SUFFIXES, check_output_path, refuse_writing_the_input
    from deltatune.train.finetune import FinetuneConfig, finetune

    start, count = parse_frames(args.frames)
    cfg = FinetuneConfig(
        model=args.model,
        weights=args.weights,
        video=args.video,
        windows=tuple(args.window or ()),
        start=start,
        frames=count,
        lr=args.lr,
        weight_decay=args.weight_decay,
        steps=args.steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        sparsity_penalty=args.sparsity_penalty,
        truncation_aware=args.truncation_aware,
        threshold=FinetuneConfig.threshold if args.threshold is None else args.threshold,
        seed=args.seed,
    )
    cfg.validate()
    if args.threshold is not None and not args.truncation_aware:
        raise ConfigError(f"--threshold {args.threshold}: it is the truncation threshold of "
                          "--truncation-aware, which is off; add --truncation-aware")
    if not cfg.moves_weights:
        raise ConfigError("nothing to fine-tune: without --sparsity-penalty, --truncation-aware or "
                          "--weight-decay the target is the model's own output and the weights would not "
                          "move; add --sparsity-penalty 0.1 (README, Fine-tuning)")
    refuse_writing_the_input(args.video, {"--out": args.out})  # first: the most specific thing to say
    out = check_output_path(args.out, "--out", suffixes=WEIGHTS_SUFFIXES)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    from deltatune.train.checkpoints import fresh_resume_note

    if note := fresh_resume_note(out, args.resume):
        print(f"warning: {note}", file=sys.stderr)
    r = finetune(cfg, out, resume=args.resume, progress=not (args.json or args.no_progress))
    from deltatune_models import model_info

    arch = cfg.model  # the architecture the weights fit: hrnet's default weights are hrnet_w18_small_v2's
    if cfg.weights == "default":
        arch = model_info(cfg.model).default_variant or cfg.model
    if args.json:
        print(
            json_text(
                {
                    "model": arch,
                    "weights": str(r.weights),
                    "lr": cfg.lr,
                    "steps": r.steps,
                    "wall_time_s": r.wall_time_s,
                    "first_loss": r.losses[0] if r.losses else None,
                    "last_loss": r.losses[-1] if r.losses else None,
                    "first_change": r.sparsity[0] if r.sparsity else None,
                    "last_change": r.sparsity[-1] if r.sparsity else None,
                    "end_loss": r.end_loss,  # the final weights on the first step's frame pairs
                    "end_change": r.end_change,
                }
            )
        )
        return 0
    this_run = f" ({r.steps - r.resumed_at} this run)" if r.resumed_at else ""
    from deltatune.train.finetune import DEFAULT_LR

    own_lr = ""
    if args.lr is None and cfg.lr != DEFAULT_LR:  # the model's own rate: say which ran
        own_lr = f" at --lr {cfg.lr:g} ({cfg.model}'s own default)"
    said = (f"fine-tuned {cfg.model} for {r.steps} step{'' if r.steps == 1 else 's'}{this_run}{own_lr} in "
            f"{r.wall_time_s:.0f} s")
    # (objective, change) before and after, on the first step's frame pairs; None when no step ran
    before_after = None if r.end_loss is None or r.end_change is None or not r.losses else (
        (r.losses[0], r.sparsity[0]), (r.end_loss, r.end_change))
    if before_after is not None:
        (loss0, change0), (loss1, change1) = before_after
        said += (f"; on the first step's frame pairs, before -> after: objective {loss0:.4g} -> "
                 f"{loss1:.4g}, frame-to-frame change {change0:.4f} -> {change1:.4f}")
    print(said)
    print(f"weights: {r.weights}  (use with --model {arch} --weights {r.weights})")
    if before_after is not None:
        (loss0, change0), (loss1, change1) = before_after
        worse = []  # by more than 5 %: the pairs are one batch, and a trade of a little distillation for
        # a steadier network is what the penalty asks for
        if loss1 > 1.05 * loss0:
            worse.append("the objective rose")
        if cfg.sparsity_penalty > 0 and change1 > 1.05 * change0:
            worse.append("the frame-to-frame change the penalty should lower grew")
        if worse:
            print(f"note: on the same frames {' and '.join(worse)}: the run ended worse than it began at "
                  f"--lr {cfg.lr:g} (README, Fine-tuning, on this drift)")
    return 0
