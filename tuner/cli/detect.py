"""``deltatune detect``: train the Faster R-CNN + MobileNetV2 person detector and score it with a dense
("classic") or a delta backbone."""

from __future__ import annotations

import argparse
import sys

from deltatune.cli._common import add_no_progress, json_text
from deltatune.errors import ConfigError

NAME = "detect"
HELP = "train a person detector (Faster R-CNN, MobileNetV2) and score it with a classic or delta backbone"
DESCRIPTION = (
    "`detect train` trains the detection head (neck, RPN, box head) of Faster R-CNN with an ImageNet "
    "MobileNetV2 backbone on video frames resized to --size, against pseudo-label person boxes from "
    "background subtraction (default video: the vtest sample, frames 0-599) or a MOT16/17 sequence "
    "folder's ground truth. The backbone stays frozen and its features are cached; --head-features delta "
    "trains the head on the features of the delta backbone (at --threshold) run over the frames as one "
    "stream. Seeded; checkpoints go to OUT.ckpt after every epoch (--resume continues exactly). "
    "`detect eval` scores a trained detector on held-out frames (vtest: 650-794) as one stream: average "
    "IoU (detections scoring >= --score-threshold), mAP@0.5, and median ms/frame and FPS of backbone + "
    "head, the dense and delta backbones timed interleaved after a warm-up, as `deltatune bench` does."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune detect train -o det.pt",
    "deltatune detect train --video MOT16-04 --head-features delta --threshold 0.05 -o det_delta.pt",
    "deltatune detect eval --checkpoint det.pt --backbone delta --threshold 0.05",
    "deltatune detect eval --checkpoint det_delta.pt --threshold 0.05 --json   # on MOT16-04's held-out part",
)


def parse_range(text: str, option: str) -> tuple[int, int]:
    """``A:B`` (frames A..B-1) -> ``(A, B)``; one clear error otherwise."""
    try:
        a, b = (int(v) for v in text.split(":", 1))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not A:B (frames A..B-1)") from None
    if a < 0 or b <= a:
        raise ConfigError(f"{option} {text!r}: need 0 <= A < B")
    return a, b


def parse_size(text: str) -> tuple[int, int]:
    """``S`` (square) or ``HxW`` -> ``(H, W)``; one clear error otherwise."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 32:
        raise ConfigError(f"--size {text!r}: give S or HxW, each at least 32 pixels")
    return (parts[0], parts[-1])


def _add_train(p: argparse.ArgumentParser) -> None:
    from deltatune.train.detection import DETECTION_OPTIMIZERS, DetectionTrainConfig

    d = DetectionTrainConfig()
    p.add_argument("--video", default=d.video, help="video file, sample name, or MOT sequence folder "
                   f"(default {d.video})")  # fmt: skip
    p.add_argument(
        "--frames",
        default=None,
        metavar="A:B",
        help="frames A..B-1 to train on (default: vtest 0:600; else the first 76 %%, at most 600)",
    )
    p.add_argument(
        "--size",
        default=f"{d.size[0]}x{d.size[1]}",
        metavar="HxW",
        help=f"input size, S or HxW (default {d.size[0]}x{d.size[1]})",
    )
    p.add_argument(
        "--stride",
        type=int,
        choices=(8, 16, 32),
        default=d.stride,
        help=f"backbone output stride: MobileNetV2's features cut after that stride's last block "
        f"(default {d.stride})",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"frames per step (default {d.batch_size})"
    )
    p.add_argument(
        "--optimizer",
        choices=DETECTION_OPTIMIZERS,
        default=d.optimizer,
        help="adam (L2 weight decay), adamw (decoupled) or sgd (momentum 0.9) (default adam)",
    )
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    p.add_argument(
        "--weight-decay", type=float, default=d.weight_decay, help=f"weight decay (default {d.weight_decay})"
    )
    p.add_argument(
        "--head-features",
        choices=("dense", "delta"),
        default=d.head_features,
        help="train the head on the dense backbone's features or the delta backbone's (default dense)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"the delta backbone's threshold with --head-features delta (default {d.threshold})",
    )
    p.add_argument(
        "--train-backbone",
        action="store_true",
        help="train the backbone too (dense features, no cache: much slower)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    p.add_argument(
        "--resume", action="store_true", help="continue from OUT.ckpt (same settings; --epochs may grow)"
    )
    p.add_argument("-o", "--out", required=True,
                   help="detector weights to write, .pt or .pth (OUT.ckpt: the checkpoint)")


def _add_eval(p: argparse.ArgumentParser) -> None:
    from deltatune.cli._common import add_threshold_arguments
    from deltatune.train.detection_eval import DEFAULT_SCORE_THRESHOLD

    p.add_argument("--checkpoint", required=True, help="detector weights written by `deltatune detect train`")
    p.add_argument(
        "--backbone",
        choices=("classic", "delta"),
        default="delta",
        help="classic: dense backbone only; delta: the delta backbone too, timed interleaved with "
        "the dense one (default delta)",
    )
    add_threshold_arguments(p)
    p.add_argument("--video", default=None, help="source to score on (default: the one it was trained on)")
    p.add_argument(
        "--frames",
        default=None,
        metavar="A:B",
        help="held-out frames A..B-1, one stream (default: vtest 650:795)",
    )
    p.add_argument(
        "--score-threshold",
        type=float,
        default=DEFAULT_SCORE_THRESHOLD,
        help=f"detections counted by the average IoU (default {DEFAULT_SCORE_THRESHOLD})",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; medians are reported (default 3)")
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="time with the calibration table as it is (shapes it lacks use the default break-even) instead "
        "of measuring the missing layer costs first",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    from deltatune.cli import action_help

    sub = p.add_subparsers(dest="action", metavar="ACTION")
    t = sub.add_parser("train", help="train the detector", description=DESCRIPTION,
                       **action_help(p, EXAMPLES, "train"))
    _add_train(t)
    e = sub.add_parser("eval", help="score a trained detector on held-out frames", description=DESCRIPTION,
                       **action_help(p, EXAMPLES, "eval"))
    _add_eval(e)
    for q in (t, e):
        q.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
        q.add_argument("--json", action="store_true", help="print one JSON object at the end")
    add_no_progress(t)  # eval shows no progress bar


def _threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n < 1:
            raise ConfigError(f"--threads must be at least 1, got {n}")
        torch.set_num_threads(n)


def _train(args: argparse.Namespace) -> int:
    from deltatune.cli._common import WEIGHTS_SUFFIXES, check_output_path, refuse_writing_the_input
    from deltatune.train.detection import DetectionTrainConfig, train_detector

    cfg = DetectionTrainConfig(
        video=args.video,
        frames=parse_range(args.frames, "--frames") if args.frames else None,
        size=parse_size(args.size),
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        epochs=args.epochs,
        batch_size=args.batch_size,
        train_backbone=args.train_backbone,
        head_features=args.head_features,
        threshold=DetectionTrainConfig.threshold if args.threshold is None else args.threshold,
        seed=args.seed,
        stride=args.stride,
    )
    cfg.validate()
    if args.threshold is not None and args.head_features != "delta":  # it would train exactly as without
        raise ConfigError(f"--threshold {args.threshold:g}: the delta backbone's threshold; it applies with "
                          "--head-features delta only")
    refuse_writing_the_input(args.video, {"--out": args.out})  # first: the most specific thing to say
    out = check_output_path(args.out, "--out", suffixes=WEIGHTS_SUFFIXES)
    _threads(args.threads)
    from deltatune.train.checkpoints import fresh_resume_note

    if note := fresh_resume_note(out, args.resume):
        print(f"warning: {note}", file=sys.stderr)
    r = train_detector(cfg, out, resume=args.resume, progress=not (args.json or args.no_progress))
    if args.json:
        print(json_text({"weights": str(r.weights), "steps": r.steps, "epochs": r.epochs,
                         "epoch_losses": list(r.epoch_losses), "features_time_s": r.features_time_s,
                         "train_time_s": r.train_time_s, "resumed_at_step": r.resumed_at}))  # fmt: skip
        return 0
    losses = " ".join(f"{v:.3f}" for v in r.epoch_losses)
    epochs = f"{r.epochs} epoch{'' if r.epochs == 1 else 's'}"
    what, before = ("the detector, backbone and head,", "data") if cfg.train_backbone else (
        "the detector head", "data and backbone features")
    steps = f"{r.steps} step{'' if r.steps == 1 else 's'}"
    if r.resumed_at:  # the totals include the checkpoint's steps; the time is this run's
        steps += f", {r.steps - r.resumed_at} of them now, resumed at step {r.resumed_at}"
    print(f"trained {what} for {epochs} ({steps}) in {r.train_time_s:.0f} s "
          f"(+ {r.features_time_s:.0f} s {before}); loss per epoch: {losses}")  # fmt: skip
    print(f"weights: {r.weights}  (score with: deltatune detect eval --checkpoint {r.weights})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from deltatune._workers import busy_machine
    from deltatune.cli._common import check_threshold_arguments
    from deltatune.train.detection_eval import evaluate_checkpoint

    check_threshold_arguments(args)
    if args.backbone == "classic" and (args.threshold is not None or args.thresholds is not None):
        given = (f"--threshold {args.threshold:g}" if args.threshold is not None
                 else f"--thresholds {args.thresholds}")
        raise ConfigError(f"{given}: applies to the delta backbone; --backbone classic runs the dense one "
                          "only")
    if not (0 <= args.score_threshold <= 1):
        raise ConfigError(f"--score-threshold must lie in [0, 1], got {args.score_threshold}")
    _threads(args.threads)
    r = evaluate_checkpoint(
        args.checkpoint,
        frames=range(*parse_range(args.frames, "--frames")) if args.frames else None,
        video=args.video,
        backbone="dense" if args.backbone == "classic" else "delta",
        threshold=0.0 if args.threshold is None and args.thresholds is None else args.threshold,
        thresholds_file=args.thresholds,
        score_threshold=args.score_threshold,
        repeats=args.repeats,
        calibrate=not args.no_calibrate,
    )
    rows = [("classic", r.dense)] + ([("delta", r.delta)] if r.delta is not None else [])
    if args.json:
        out = {"frames": [r.frames.start, r.frames.stop], "scored_frames": r.scored_frames, "n_gt": r.n_gt,
               "trained_on": r.trained_on,
               "size": list(r.size), "threshold": r.threshold, "mac_speedup": r.mac_speedup}  # fmt: skip
        for name, s in rows:
            out[name] = {"avg_iou": s.avg_iou, "map50": s.map50, "ms_per_frame": s.ms_per_frame, "fps": s.fps,
                         "detections_per_frame": s.detections_per_frame}  # fmt: skip
        print(json_text(out))
        return 0
    kind = "held-out frames" if not r.trained_on else "frames"
    print(f"{kind} {r.frames.start}-{r.frames.stop - 1} at {r.size[0]}x{r.size[1]}, "
          f"{r.scored_frames} scored (frame 0 left out for both backbones: the delta one runs it dense), "
          f"{r.n_gt} boxes")  # fmt: skip
    if r.trained_on:  # scores on frames it learned from say little about new video
        print(f"warning: the detector trained on {r.trained_on} of these {len(r.frames)} frames: they are "
              "not held out (leave out --frames for the video's held-out part)", file=sys.stderr)
    for name, s in rows:
        what = (
            name
            if name == "classic"
            else f"delta (threshold {r.threshold if r.threshold is not None else 'file'})"
        )
        print(f"{what}: avg IoU {s.avg_iou:.3f}  mAP@0.5 {s.map50:.3f}  {s.ms_per_frame:.2f} ms/frame  "
              f"{s.fps:.1f} FPS")  # fmt: skip
    if r.delta is not None:
        print(f"measured speedup {r.dense.ms_per_frame / r.delta.ms_per_frame:.2f}x, MAC speedup of the "
              f"backbone {r.mac_speedup:.2f}x (median of {r.repeats} interleaved rounds)")  # fmt: skip
        if r.threshold == 0:  # the default: exact, so it can only show the delta bookkeeping's cost
            print("note: threshold 0 truncates nothing (the delta backbone computes the dense features); "
                  "--threshold 0.05 is the seed experiment's setting")
    busy = busy_machine()
    if busy:
        print(f"note: {busy}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "train":
        return _train(args)
    if args.action == "eval":
        return _eval(args)
    raise ConfigError("choose an action: `deltatune detect train ...` or `deltatune detect eval ...`")
