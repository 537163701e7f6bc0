"""``deltatune search``: multi-objective threshold search (accuracy loss vs speedup) with Optuna.

deltatune search --model hrnet [--weights W] [--video V] [--window X,Y,W,H ...] [--frames N] [--start N]
                 [--trials N] [--strategy S]
                 [--space layer|group|global] [--budget X] [--speed latency|macs|measured [--refit]]
                 [--retime N]
                 [--also-on SEGMENT ...] [--spread N] [--keyframes LIST] [--keyframe-change LIST]
                 [--study NAME] [--storage URL] [--jobs N] [--seed S] [--plot F.png] [--json]
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Any

from deltatune.cli._common import (
    add_no_progress,
    add_start_argument,
    add_window_argument,
    json_text,
    parse_windows,
)

log = logging.getLogger(__name__)

NAME = "search"
HELP = "search per-layer truncation thresholds (accuracy loss vs speedup, Optuna)"
DESCRIPTION = (
    "Search truncation thresholds with an Optuna multi-objective study: minimise accuracy loss (against "
    "the dense model's own predictions: PCK@0.2 points for pose models, top-1 points for classifiers) "
    "and maximise speedup (MACs, predicted or measured wall clock: --speed), with the accuracy budget"
    " as an Optuna constraint. The first frames of each stream tune, the last ones re-score the final "
    "front (held-out check). Studies are journal files in ./deltatune-results/ (or $DELTATUNE_RESULTS) "
    "unless --storage names another; re-running with the same --study resumes it. Open any storage with "
    "optuna-dashboard."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune search --model hrnet                      # the demo: vtest crops, 40 trials",
    "deltatune search --model hrnet --video clip.mp4 --window 400,120,300,400 --start 900 --frames 24",
    "deltatune search --model hrnet --also-on vtest@400 vtest@640 --keyframes 0,8,16",
    "deltatune search --model hrnet --video clip.mp4 --window 400,120,300,400 --spread 4 --aggregate q75",
    "deltatune search --model hrnet --train --trials 60   # thresholds and fine-tuning together",
    "deltatune search --model hrnet --study S --storage postgresql://user@host/db --trials 200 --finish",
)

#: How many of the fastest feasible front points are re-timed by default (``--retime``).
DEFAULT_RETIME = 3
_STRATEGIES = ("tpe", "nsga2", "gp", "random", "deltacnn-greedy", "cbinfer-greedy", "sweep")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deltatune search``."""
    parser.add_argument(
        "--model", required=True, help="registered model name (see `deltatune models`); your own: "
        "DELTATUNE_MODELS=my_nets.py (README, Your own model)",
    )
    parser.add_argument(
        "--weights",
        default="default",
        help="'default', 'none' (random init) or a checkpoint file (default: default; a model "
        "without default weights falls back to random weights with a notice)",
    )
    parser.add_argument(
        "--video", default="vtest",
        help="video file, image folder, or sample name (vtest, carphone; default vtest)",
    )
    parser.add_argument(
        "--labels", default=None, metavar="FILE",
        help="reference keypoints (COCO keypoints JSON or CSV frame,stream,joint,x,y,visible) in full-frame "
        "pixels, one stream per crop window; accuracy loss is then dense PCK - delta PCK against them "
        "(default: the dense model's own predictions)",
    )
    parser.add_argument(
        "--all-joints", action="store_true",
        help="without --labels: score fidelity over every dense keypoint, not only those the dense model "
        "finds present (heatmap peak above the model's presence threshold, 0.2 for HRNet/SimpleBaselines)",
    )
    parser.add_argument(
        "--fallback", action="store_true",
        help="run ops the delta engine cannot convert (e.g. GroupNorm, a product of two maps) densely "
        "(densify -> op -> sparsify) instead of refusing the model; bench and inspect need it too",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=16,
        help="frames per stream: the first 3/4 tune, the last 1/4 (>= 2) are held out (default 16)",
    )
    parser.add_argument(
        "--streams", type=int, default=None,
        help="crop windows (streams) of the sample video (default 2, or all of them when it has fewer); "
        "a video of one's own is one stream, its whole frame, unless --window gives crops"
    )
    add_start_argument(parser)
    add_window_argument(parser)
    parser.add_argument("--trials", type=int, default=40, help="new trials to run (default 40)")
    parser.add_argument(
        "--heartbeat", type=float, default=10.0, metavar="SECONDS",
        help="with an RDB --storage: heartbeat of running trials; a trial of a dead worker (another "
        "machine, a killed process) is retried after 3x this long without one (default 10)",
    )
    parser.add_argument(
        "--finish", action="store_true",
        help="--trials counts finished trials of the study in total: a resumed search runs only what is "
        "missing (after a crash, re-run the same command with --finish)",
    )
    parser.add_argument(
        "--strategy", default="tpe", metavar="S", help=f"one of: {', '.join(_STRATEGIES)} (default tpe)"
    )
    parser.add_argument(
        "--space",
        default="group",
        metavar="SPACE",
        help="layer (one threshold per truncation point), group (per stage/branch, default) or "
        "global (scale x per-group multipliers)",
    )
    parser.add_argument(
        "--budget", type=float, default=1.0,
        help="accuracy budget in points: PCK points (pose) or top-1 points (classifiers) (default 1.0)"
    )
    parser.add_argument(
        "--speed",
        default="latency",
        metavar="KIND",
        help="speed objective: latency (wall-clock speedup predicted by the latency model, fitted once per "
        "model, machine and clip, 1-3 minutes, then cached; a clip without a fit of its own borrows one "
        "after a check; default), macs (MAC speedup) or measured (each "
        "trial timed; slow and noisy, and contended with --jobs > 1)",
    )
    parser.add_argument(
        "--retime", type=int, default=DEFAULT_RETIME, metavar="N",
        help=f"after the search, time the N fastest feasible front points for real (interleaved with dense, "
        f"--retime-repeats rounds each) and recommend the fastest measured one (default {DEFAULT_RETIME}; "
        "0: recommend on the speed objective alone)",
    )
    parser.add_argument(
        "--retime-repeats", type=int, default=5, metavar="R",
        help="interleaved dense/delta rounds per re-timed point (default 5; at least 2). The interval of "
        "the median speedup reaches 94 %% with 5 rounds, only 50 %% with 2, and 95 %% from 6",
    )
    parser.add_argument(
        "--refit", action="store_true",
        help="--speed latency: fit the latency model on this clip now (1-3 minutes) instead of using the "
        "cached fit, and cache the new one; for when a search warned that its predictions were off",
    )
    parser.add_argument(
        "--modes", default="max", help="truncation modes to search, comma-separated (default max)"
    )
    parser.add_argument(
        "--no-dilation", action="store_true", help="do not search the input dilation (keep 1)"
    )
    parser.add_argument(
        "--also-on", nargs="+", default=[], metavar="SEGMENT",
        help="also score every trial on these stretches of video, written video@first-frame (e.g. "
        "vtest@400 vtest@640): same model, frames and streams (up to the video's crop windows); a trial's "
        "objectives are the worst over all segments (--aggregate), so the budget holds on each",
    )
    parser.add_argument(
        "--spread", type=int, default=None, metavar="N",
        help="score every trial on N stretches of the clip's video, evenly spaced from --start to its "
        "end (the clip and N - 1 more; the same as listing them with --also-on), so the setting holds "
        "across the video, not only on its first frames",
    )
    parser.add_argument(
        "--aggregate", default=None, metavar="HOW",
        help="with --also-on or --spread: worst (default; the largest loss and the smallest speedup), "
        "qP (a high quantile, 50 <= P < 100, e.g. q90: the P-th percentile of the losses and the "
        "(100-P)-th of the speedups, so one segment out of many may go over) or mean",
    )
    parser.add_argument(
        "--keyframe-change", default="none", metavar="LIST",
        help="key frames on change to search, comma-separated: a frame whose input changed at this share "
        "of its pixels or more runs dense and exact, restarting the stream (none: off; default none). "
        "Caps a frame's cost at about a dense pass where most of the picture moves (a panning camera, "
        "scene cuts); e.g. none,0.25,0.5",
    )
    parser.add_argument(
        "--keyframes", default="0", metavar="LIST",
        help="key-frame intervals to search, comma-separated: every N frames the stream runs one dense "
        "frame that clears accumulated truncation error (0: none; default 0). Worth it on long streams "
        "and unfamiliar video; e.g. 0,16,32 (--frames must exceed the interval for it to show)",
    )
    parser.add_argument(
        "--thr-range",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        default=None,
        help="threshold range of the layers (default 0.001 1.0; below LO means 0)",
    )
    parser.add_argument("--study", default=None, help="study name (default <model>-<strategy>-<space>)")
    parser.add_argument(
        "--storage",
        default=None,
        help="a .journal path, sqlite:///file.db or postgresql://... (default "
        "./deltatune-results/<study>.journal)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes on the study (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the samplers (default 0)")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS",
        help="start no new trial after this many seconds (per worker); with a large --trials, a search "
        "on a wall-clock budget",
    )
    train = parser.add_argument_group(
        "training hyperparameters (--train)",
        "Sample a delta-aware fine-tune (deltatune finetune) per trial together with the thresholds: each "
        "trial draws one level of every list below; --train-steps 0 keeps the original weights. Trials are "
        "scored against the ORIGINAL model's dense predictions. Fine-tuned weights are cached per "
        "configuration; a fine-tune whose dense model already exceeds --budget at half its steps is "
        "stopped and the trial PRUNED. Costs about 0.75-3 s per step on 2 cores (default hrnet, batch 2; "
        "see the README).",
    )
    train.add_argument("--train", action="store_true", help="search training hyperparameters too")
    train.add_argument(
        "--train-frames", default=None, metavar="A:B",
        help="frames A..B-1 of --video to fine-tune on; must not overlap the search's frames "
        "(default: the 40 frames right after them)",
    )
    for flag, metavar, what in (
        ("--train-steps", "LIST", "fine-tuning steps (default {})"),
        ("--train-lr", "LIST", "learning rates (AdamW; default {}: 0.1, 0.3 and 1 times the model's own "
         "fine-tuning rate, 1e-4 for most, 1e-6 for blazepose)"),
        ("--train-weight-decay", "LIST", "weight decays (AdamW, decoupled; default {})"),
        ("--train-penalty", "LIST", "sparsity penalties on frame-to-frame change (default {})"),
        ("--train-truncation-aware", "LIST", "truncation in the training forward pass: off, on or off,on "
         "(default {})"),
        ("--train-batch", "N", "frame pairs per step (default {})"),
    ):
        train.add_argument(flag, default=None, metavar=metavar, type=int if flag == "--train-batch" else str,
                           help=what.format(_TRAIN_DEFAULTS[flag]))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument(
        "--plot", default=None, metavar="F.png",
        help="at the end, draw the study as `deltatune pareto --plot` does: every trial, the front, the "
        "re-timed points with their CIs, the recommendation and the budget, above the front's thresholds",
    )
    add_no_progress(parser)


def _numbers(text: str, option: str, kind: type = float) -> tuple[Any, ...]:
    """``"0,1e-4"`` -> ``(0.0, 0.0001)``; one clear error naming ``option``."""
    from deltatune.errors import ConfigError

    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated numbers") from None
    if not values:
        raise ConfigError(f"{option} {text!r}: expected at least one value")
    return values


def _fractions_or_none(text: str, option: str) -> tuple[float | None, ...]:
    """``"none,0.25"`` -> ``(None, 0.25)``; one clear error naming ``option``."""
    from deltatune.errors import ConfigError

    parts = [v.strip().lower() for v in text.split(",") if v.strip()]
    try:
        values = tuple(None if v in ("none", "off") else float(v) for v in parts)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated fractions or none") from None
    if not values:
        raise ConfigError(f"{option} {text!r}: expected at least one value")
    return values


def _onoff(text: str) -> tuple[bool, ...]:
    from deltatune.errors import ConfigError

    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or any(v not in ("on", "off") for v in values):
        raise ConfigError(f"--train-truncation-aware {text!r}: expected off, on or off,on")
    return tuple(v == "on" for v in values)


#: the training options' defaults (the options themselves default to None, so that one given without --train
#: is seen); their help texts quote these
_TRAIN_DEFAULTS: dict[str, Any] = {
    "--train-frames": None, "--train-steps": "0,15,30", "--train-lr": "1e-5,3e-5,1e-4",
    "--train-weight-decay": "0,5e-4,0.15,1", "--train-penalty": "0,0.1,1",
    "--train-truncation-aware": "off,on", "--train-batch": 2,
}


def train_space(args: argparse.Namespace, workload: Any, also_on: tuple[Any, ...] = ()) -> Any:
    """The :class:`~deltatune.search.training.TrainSpace` of ``--train`` (None without it); by default its
    frames follow the clip and skip the ``also_on`` segments of the same video."""
    from deltatune.cli.finetune import parse_frames
    from deltatune.errors import ConfigError
    from deltatune.search.training import TrainSpace, default_lrs

    given = {name: getattr(args, name.removeprefix("--").replace("-", "_")) for name in _TRAIN_DEFAULTS}
    if not args.train:
        named = [name for name, value in given.items() if value is not None]
        if named:  # silently searching thresholds only would look like the training space was tried
            raise ConfigError(f"{', '.join(named)}: training options need --train (search training "
                              "hyperparameters too)")
        return None
    text = {name: _TRAIN_DEFAULTS[name] if value is None else value for name, value in given.items()}
    kw = dict(
        lr=(default_lrs(args.model, args.weights) if args.train_lr is None  # the model's own scale
            else _numbers(args.train_lr, "--train-lr")),
        weight_decay=_numbers(text["--train-weight-decay"], "--train-weight-decay"),
        steps=_numbers(text["--train-steps"], "--train-steps", int),
        sparsity_penalty=_numbers(text["--train-penalty"], "--train-penalty"),
        truncation_aware=_onoff(text["--train-truncation-aware"]),
        batch_size=int(text["--train-batch"]),
        seed=args.seed,
    )
    if args.train_frames is None:
        return TrainSpace.after(workload, also_on, **kw)
    start, count = parse_frames(args.train_frames)
    return TrainSpace(start=start, frames=count, **kw)


def build_settings(args: argparse.Namespace) -> Any:
    """Validate the options into :class:`~deltatune.search.SearchSettings` (errors are ConfigError)."""
    from deltatune.errors import ConfigError
    from deltatune.search import SearchSettings, StudyWorkload
    from deltatune.search.spaces import Ranges
    from deltatune.search.study_workload import default_streams, sample_windows

    weights = None if str(args.weights).lower() in ("none", "random") else args.weights
    windows = parse_windows(args.window) or []
    if windows and args.streams is not None and args.streams != len(windows):
        raise ConfigError(f"--streams {args.streams}: {len(windows)} --window given, and each is one stream; "
                          "drop --streams")
    streams = len(windows) or (default_streams(args.video) if args.streams is None else args.streams)
    if not windows and args.streams not in (None, 1) and not sample_windows(args.video):
        raise ConfigError(f"--streams {args.streams}: {args.video} has one stream (its whole frame); "
                          "--window X,Y,W,H gives crops, one stream each")
    workload = StudyWorkload(
        args.model, weights=weights, video=args.video, frames=args.frames, streams=streams,
        windows=tuple(str(w) for w in windows), start=args.start, labels=args.labels,
        joints="all" if args.all_joints else "present", fallback=args.fallback,
    )
    ranges = Ranges()
    if args.thr_range is not None:
        lo, hi = args.thr_range
        try:
            ranges = Ranges(lo=lo, hi=hi)
        except ConfigError:  # Ranges checks it; the message names the option
            raise ConfigError(f"--thr-range {lo:g} {hi:g}: need finite numbers 0 < LO < HI") from None
    if args.aggregate is not None and not (args.also_on or args.spread):
        raise ConfigError(f"--aggregate {args.aggregate}: applies only with --also-on or --spread (one clip "
                          "has nothing to aggregate over)")
    also_on = (*(_also_on(workload, t) for t in args.also_on), *_spread(workload, args.spread))
    return SearchSettings(
        workload=workload,
        trials=args.trials,
        strategy=args.strategy,
        space=args.space,
        budget=args.budget,
        speed=args.speed,
        study=args.study,
        storage=args.storage,
        jobs=args.jobs,
        seed=args.seed,
        tune_dilation=not args.no_dilation,
        modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
        ranges=ranges,
        finish=args.finish,
        heartbeat=args.heartbeat,
        train=train_space(args, workload, also_on),
        timeout=args.timeout,
        retime=args.retime,
        retime_repeats=args.retime_repeats,
        refit=args.refit,
        keyframes=_numbers(args.keyframes, "--keyframes", int),
        keyframe_changes=_fractions_or_none(args.keyframe_change, "--keyframe-change"),
        also_on=also_on,
        aggregate=args.aggregate or "worst",
    )


def _spread(workload: Any, count: int | None) -> tuple[Any, ...]:
    """``--spread N``: the workloads of N - 1 more stretches of the clip's video, their first frames
    evenly spaced from the clip's up to the last that leaves ``--frames`` frames (the clip is the first)."""
    from deltatune.data.video import count_frames, video_info
    from deltatune.errors import ConfigError
    from deltatune.search.study_workload import Segment

    if count is None:
        return ()
    if count < 2:
        raise ConfigError(f"--spread {count}: need at least 2 stretches (1 is the clip alone)")
    # a container that does not say its length (Matroska): its frames counted (--spread refused every .mkv)
    total = video_info(workload.video_path()).frames or count_frames(workload.video_path())
    last = total - workload.frames
    if last - workload.start < count - 1:
        raise ConfigError(f"--spread {count}: {workload.video} has {total} frames, too few for {count} "
                          f"stretches of --frames {workload.frames} from frame {workload.start}")
    starts = [round(workload.start + k * (last - workload.start) / (count - 1)) for k in range(1, count)]
    gap = min(b - a for a, b in zip([workload.start, *starts], starts, strict=False))
    if gap < workload.frames:  # one stretch's held-out frames are the next one's tuning frames
        log.warning(
            "--spread %d: stretches of --frames %d start as little as %d frames apart on %s's %d frames, so "
            "they overlap: some stretches' held-out frames are other stretches' tuning frames (fewer "
            "stretches, or fewer --frames)",
            count, workload.frames, gap, workload.video, total,
        )
    return tuple(workload.on_segment(Segment(workload.video, s)) for s in starts)


def _also_on(workload: Any, text: str) -> Any:
    """The workload on the ``--also-on`` segment ``text`` (``VIDEO@FIRST``); an error names the option."""
    from deltatune.errors import ConfigError
    from deltatune.search.study_workload import parse_segment, same_video

    try:
        segment = parse_segment(text)
    except ValueError as exc:
        raise ConfigError(f"--also-on {text!r}: {exc}") from None
    if workload.windows and not same_video(segment.video, workload.video):
        log.warning(
            "--also-on %s: another video than the clip's, so scored on its own crop windows (a video of your "
            "own: the whole frame), not on --window's", text,
        )
    return workload.on_segment(segment)


def _predict_command(args: argparse.Namespace, *, finetuned: bool = False) -> str:
    """The ``deltatune predict`` line that runs an exported setting on the searched video and crops
    (``finetuned``: with the fine-tuned weights ``export`` copies beside it)."""
    from deltatune.search.export import exported_weights, finetuned_model

    if finetuned:
        parts = ["deltatune", "predict", "--model", finetuned_model(args.model, str(args.weights)),
                 "--weights", str(exported_weights("thresholds.json"))]
    else:
        parts = ["deltatune", "predict", "--model", args.model]
        if str(args.weights) != "default":
            parts += ["--weights", str(args.weights)]
    if args.video is not None:
        parts += ["--video", str(args.video)]
    for w in args.window or []:
        parts += ["--window", str(w)]
    if args.fallback:
        parts.append("--fallback")
    parts += ["--thresholds", "thresholds.json", "-o", "predictions.csv"]
    return " ".join(shlex.quote(p) for p in parts)


def _fmt(v: Any, spec: str = ".3f") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if f != f else format(f, spec)


def front_table(front: Any, unit: str = "PCK points") -> str:
    """The Pareto front as a fixed-width text table (losses in ``unit``). Trials that tie with a listed one
    on every column (the same setting drawn again) are counted in a last line, not listed."""
    head = f"loss({unit.replace('points', 'pts')})"
    cols = ["accuracy_loss", "speedup", "heldout_accuracy_loss", "heldout_speedup"]
    listed = front.sort_values("trial").drop_duplicates(subset=cols, keep="first")
    listed = listed.sort_values(["speedup", "accuracy_loss"])
    ties = len(front) - len(listed)
    lines = [
        f"{'trial':>5}  {'strategy':<16} {head:>15} {'speedup':>8} {'held-out loss':>13} "
        f"{'held-out speedup':>16}"
    ]
    for r in listed.itertuples():
        lines.append(
            f"{int(r.trial):>5}  {str(r.strategy):<16} {_fmt(r.accuracy_loss):>15} "
            f"{_fmt(r.speedup, '.2f'):>8} {_fmt(r.heldout_accuracy_loss):>13} "
            f"{_fmt(r.heldout_speedup, '.2f'):>16}"
        )
    if ties:
        lines.append(f"(and {ties} more trial(s) with the same values as a listed one; "
                     "`deltatune pareto --csv FILE` lists every trial)")
    return "\n".join(lines)


def retimed_table(rows: list[dict[str, Any]]) -> str:
    """Re-timed front points as a fixed-width text table (measured speedup with its CI, prediction)."""
    head = (f"{'trial':>5} {'measured':>9} {'CI':>14} {'level':>6} {'predicted':>10} {'dense ms':>9} "
            f"{'delta ms':>9}")
    segments = any(r.get("segment") for r in rows)  # several segments: each point timed on its deciding one
    lines = [head + ("  timed on" if segments else "")]
    for r in rows:
        ci = f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        lv = r.get("ci_level", float("nan"))
        level = "-" if lv != lv else f"{lv:.1%}"  # NaN: a re-timing stored before levels were recorded
        lines.append(
            f"{int(r['trial']):>5} {r['measured']:>8.2f}x {ci:>14} {level:>6} {r['predicted']:>9.2f}x "
            f"{r['dense_ms']:>9.1f} {r['delta_ms']:>9.1f}"
            + (f"  {r.get('segment') or '-'}" if segments else "")
        )
    if segments:
        lines.append("(each point timed on the segment whose predicted speedup decided its own; predicted: "
                     "that segment's)")
    return "\n".join(lines)


def _speed_words(b: dict[str, Any], speed: str) -> str:
    """The recommendation's speed: measured (with CI and the search's estimate) when it was re-timed."""
    if b.get("measured_speedup") is None:
        return f"{speed} speedup {b['speedup']:.2f}x"
    lo, hi = b["measured_ci"]
    lv = b.get("measured_ci_level")
    level = f" ({lv:.1%} CI)" if lv is not None and lv == lv else ""
    return (f"measured speedup {b['measured_speedup']:.2f}x [{lo:.2f}, {hi:.2f}]{level} ({speed} estimate "
            f"{b['speedup']:.2f}x)")


def interrupted_advice(study: str, target: int, cause: str = "interrupted") -> str:
    """What a stopped search says: ``cause`` (interrupted, or a worker died), that its finished trials are
    kept, and the command that finishes the study to ``target``, the finished trials the stopped call aimed
    at (:func:`finish_target`): without ``--trials target``, ``--finish`` would count the call's
    ``--trials`` (new trials) as the total."""
    return (f"deltatune search: {cause}; finished trials are kept in study {study}. To finish to "
            f"{target} trials, run the same command with --study {shlex.quote(study)} --trials {target} "
            "--finish")


def run(args: argparse.Namespace) -> int:
    """Run the search and print the front, the recommendation and where the study is."""
    from deltatune.search.storage import removed_if_left_empty

    settings = build_settings(args)
    if args.plot:
        from deltatune.cli._common import PLOT_SUFFIXES, check_output_path, refuse_writing_the_input

        refuse_writing_the_input(args.video, {"--plot": args.plot})
        check_output_path(args.plot, "--plot", suffixes=PLOT_SUFFIXES)
    # checked before any model work and before the progress bar
    if settings.train is not None:
        settings.train.check(settings.workload, settings.also_on)
    spec = settings.storage_spec()
    with removed_if_left_empty(spec):
        spec.open(write=True)
        return _search(args, settings)


def _search(args: argparse.Namespace, settings: Any) -> int:
    """:func:`run` once the storage opened: check the videos, search, print."""
    from deltatune._workers import WorkerDied, died_words
    from deltatune.errors import ConfigError, DeltatuneError
    from deltatune.search import run_search
    from deltatune.search.runner import finish_target
    from deltatune.search.storage import shown_url

    settings.workload.check()
    for seg in settings.also_on:
        try:
            seg.check()
        except DeltatuneError as exc:  # a segment's start is written video@N, not given with --start
            said = str(exc).replace("from --start ", "from frame ")
            said = said.replace("an earlier --start", f"an earlier start ({seg.video}@N)")
            raise ConfigError(f"--also-on {seg.video}@{seg.start}: {said}") from None
    bar: Any = None
    show = not args.json and not args.no_progress

    def progress(n: int) -> None:
        nonlocal bar
        if not show:
            return
        if bar is None:  # from run_search's first call on: a study stored with other settings was refused
            from tqdm import tqdm

            bar = tqdm(total=settings.trials, desc=f"search {settings.study_name}", unit="trial",
                       file=sys.stderr)
        bar.n = min(n, settings.trials)
        bar.refresh()

    retime_bar: list[Any] = []

    def retime_progress(done: int, total: int) -> None:
        if args.json or args.no_progress:
            return
        if not retime_bar:
            from tqdm import tqdm

            if bar is not None:  # the trials are done: one bar at a time (no nested bars, no cursor moves)
                bar.close()
            retime_bar.append(tqdm(total=total, desc="re-time front", unit="point", file=sys.stderr))
        retime_bar[0].n = done
        retime_bar[0].refresh()

    said_early: list[str] = []  # the notices said as the search found them: once, not again at the end

    def notice_now(notice: str) -> None:
        said_early.append(notice)
        if bar is not None:  # above the bar, which stays whole
            bar.write(f"warning: {notice}", file=sys.stderr)
        else:
            print(f"warning: {notice}", file=sys.stderr)

    target = finish_target(settings)  # before the search adds trials
    try:
        result = run_search(
            settings, on_progress=progress, progress_training=show, on_retime=retime_progress,
            on_notice=notice_now,
        )
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(interrupted_advice(settings.study_name, target), file=sys.stderr)
        return 130
    except WorkerDied as exc:  # the out-of-memory killer, say: joblib stopped the other workers too
        if bar is not None:
            bar.close()
        cause = (f"a worker process died ({died_words(exc.codes)}); the trials the workers left running are "
                 "retried on the next run")
        print(interrupted_advice(settings.study_name, target, cause), file=sys.stderr)
        return 1
    except DeltatuneError:  # bad input found once the model ran: on a terminal, only the error line stays
        for b_ in [bar, *retime_bar]:
            if b_ is not None:
                b_.leave = False
        raise
    finally:
        for b_ in [bar, *retime_bar]:
            if b_ is not None:
                b_.close()
    if args.plot:
        from deltatune.cli.pareto import StudyView, save_study_plot
        from deltatune.search import open_study

        study = open_study(settings.storage_spec(), result.study, create=False)
        save_study_plot(study, StudyView.read(study), result.study, args.plot)
    if args.json:
        print(json_text({**result.to_dict(), "plot": args.plot}))
        return 0
    # with pruned trials, "N trials" would read as all of them: it counts the complete ones
    pruned = f", {result.pruned} pruned ({result.new_pruned} since this run began)" if result.pruned else ""
    complete = "complete " if result.pruned else ""
    print(
        f"study {result.study}: {result.n_trials} {complete}trials ({result.new_trials} new){pruned}, "
        f"storage {shown_url(result.storage)}"
    )
    w = settings.workload
    streams = result.streams or w.streams
    said = f"{streams} stream{'s' * (streams != 1)}"
    print(f"clip: {w.video} frames {w.start}..{w.start + w.frames - 1}, {said}; the first "
          f"{w.tune_frames} tune, the last {w.heldout_frames} are held out")
    from deltatune.search.objective import metric_of, model_loss_unit
    from deltatune_models import model_info

    task = model_info(w.model).task
    unit = model_loss_unit(w.model)
    reference = ("labels" if w.labels else "dense top-1 classes" if task != "pose" else
                 "dense, present keypoints" if w.joints == "present" else "dense, every keypoint")
    print(
        f"objectives: accuracy loss ({metric_of(task)} points vs {reference}, min) and {result.speed} "
        f"speedup (max); budget {result.budget} {unit}"
    )
    if settings.also_on:
        from deltatune.search.segments import scored_on_words

        print(scored_on_words((w, *settings.also_on), settings.aggregate))
    if result.front.empty and result.pruned and not result.n_trials:
        print("no feasible trial yet: every trial was pruned (the note below says why): add 0 to "
              "--train-steps (the original weights), lower --train-lr, or raise --budget")
    elif result.front.empty:
        print("no feasible trial yet: raise --budget, lower --thr-range, or run more --trials")
    else:
        print(
            f"\nPareto front of feasible trials (hypervolume {result.hypervolume:.3f}, "
            f"reference point loss={result.budget}, speedup=1):"
        )
        print(front_table(result.front, unit))
    if result.retimed:
        print(f"\nre-timed on this machine ({settings.retime_repeats} interleaved dense/delta rounds each, "
              "tuning frames; the median and the order-statistic CI of the median, at the confidence level "
              "that many rounds reach):")
        print(retimed_table(result.retimed))
    b = result.best_feasible
    if b is not None:
        print(
            f"\nrecommended: trial {b['trial']} ({b['strategy']}): {_speed_words(b, result.speed)} at "
            f"{b['accuracy_loss']:.3f} {unit} lost (held-out: {_fmt(b['heldout_speedup'], '.2f')}x "
            f"{result.speed} at {_fmt(b['heldout_accuracy_loss'])})"
        )
        if b.get("finetune"):
            ft = b["finetune"]
            print(
                f"             on weights fine-tuned with lr {ft['lr']}, weight decay {ft['weight_decay']}, "
                f"{ft['steps']} steps, penalty {ft['sparsity_penalty']}, truncation-aware "
                f"{'on' if ft['truncation_aware'] else 'off'} (export copies them next to the thresholds)"
            )
        print(
            f"export it:   deltatune export --study {shlex.quote(result.study)}"
            + (f" --storage {shlex.quote(shown_url(result.storage))}" if args.storage else "")
            + f" --trial {b['trial']} -o thresholds.json"
        )
        print(f"use it:      {_predict_command(args, finetuned=bool(b.get('finetune')))}")
    if args.plot:
        print(f"plot:        {args.plot}")
    else:
        print(
            f"inspect:     deltatune pareto --study {shlex.quote(result.study)}"
            + (f" --storage {shlex.quote(shown_url(result.storage))}" if args.storage else "")
            + " --plot front.png"
        )
    for notice in result.notices:  # after the commands, each on a line of its own
        if notice not in said_early:
            print(f"note: {notice}")
    return 0
