"""``deltatune predict``: run a tuned delta network over a video and write its predictions as CSV."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from deltatune.cli._common import (
    add_model_clip_arguments,
    add_no_progress,
    add_start_argument,
    add_threshold_arguments,
    add_window_argument,
    check_output_path,
    check_threshold_arguments,
    json_text,
    parse_windows,
    refuse_writing_the_input,
)

if TYPE_CHECKING:
    from deltatune.predict import PredictResult

NAME = "predict"
HELP = "run a delta network with a tuned setting over a whole video and write its predictions (CSV)"
DESCRIPTION = (
    "Runs the model as a delta network (sparse backend, this machine's calibrated layer costs) with a "
    "thresholds file from `deltatune export` (or one --threshold) over the video, frame by frame (a long "
    "video is never held in memory), one stream per crop window, and writes every frame's predictions: "
    "pose models frame,stream,joint,x,y,visible,score in full-frame pixels (the CSV search --labels reads; "
    "visible: present, its heatmap peak above the model's presence threshold), "
    "classifiers frame,stream,class,probability, the detector (--weights from `deltatune detect train`; "
    "its backbone runs as the delta network) frame,stream,x1,y1,x2,y2,score,label, and with --mot a "
    "MOTChallenge det.txt of the same boxes. "
    "Prints the delta frames' ms/frame (frame 0, the dense key frame, timed apart) and MAC speedup. "
    "The files appear only when the run finishes."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune predict --model hrnet --thresholds t.json --video clip.mp4 --window 400,120,300,400 "
    "-o keypoints.csv",
    "deltatune predict --model mobilenet_v2 --thresholds studies/thresholds/mobilenet_v2.json -o classes.csv",
    "deltatune predict --model hrnet --thresholds studies/thresholds/hrnet.json --frames 200 -o kp.csv "
    "--overlay kp.mp4",
    "deltatune predict --model hrnet --thresholds studies/thresholds/hrnet.json --start 600 --frames 100 "
    "-o kp.csv --json",
    "deltatune predict --model fasterrcnn_mobilenet_v2 --weights det.pt --threshold 0.05 --video MOT16-04 "
    "-o boxes.csv --overlay boxes.mp4",
    "deltatune predict --model fasterrcnn_mobilenet_v2 --weights det.pt --threshold 0.05 --video MOT16-04 "
    "-o boxes.csv --mot MOT16-04.txt",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_clip_arguments(p, frames=None, frames_help="frames to run from --start")
    add_start_argument(p)
    add_window_argument(p)
    add_threshold_arguments(p)
    p.add_argument("--fallback", action="store_true", help="run unsupported ops densely instead of failing")
    p.add_argument("-o", "--output", required=True, metavar="OUT.csv", help="where the predictions go (CSV)")
    p.add_argument("--overlay", default=None, metavar="OUT.mp4",
                   help="also write the video with the predictions drawn on it (keypoints and skeleton, or "
                   "top-1 classes, in each crop window; the detector's boxes scoring 0.5 or more)")
    p.add_argument("--mot", default=None, metavar="OUT.txt",
                   help="the detector only: also write its boxes as a MOTChallenge detection file (frame,-1,"
                   "x,y,w,h,score,-1,-1,-1; frames and pixels 1-based), for the MOT devkit, TrackEval or a "
                   "tracker")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary line")
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from deltatune.errors import ConfigError
    from deltatune.predict import predict_video

    check_threshold_arguments(args)
    check_output_path(args.output, "-o", suffixes=(".csv",))
    if args.overlay:
        check_output_path(args.overlay, "--overlay", suffixes=(".mp4",))
    if args.mot:
        check_output_path(args.mot, "--mot", suffixes=(".txt",))
    refuse_writing_the_input(args.video, {"-o": args.output, "--overlay": args.overlay, "--mot": args.mot})
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads}: need at least 1")
        torch.set_num_threads(args.threads)
    weights = None if str(args.weights).lower() in ("none", "random") else args.weights
    bar = None
    show = not args.json and not args.no_progress

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if not show:
            return
        if bar is None:  # from the first frame on: the inputs were checked, the network built
            from tqdm import tqdm

            bar = tqdm(total=total, desc=f"predict {args.model}", unit="frame", file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        res = predict_video(
            args.model, args.output, weights=weights, video=args.video, windows=parse_windows(args.window),
            start=args.start, frames=args.frames, threshold=args.threshold, thresholds_file=args.thresholds,
            fallback=args.fallback, overlay=args.overlay, mot=args.mot, on_frame=progress,
            progress=show and sys.stderr.isatty(),
        )
    finally:
        if bar is not None:
            bar.close()
    cut = _cut_short(res)
    if args.json:  # the note in the object too: a script reading it is told the video ended early
        print(json_text({**res.to_dict(), "notes": [cut] if cut else []}))
        return 0
    what = {"pose": "keypoints", "classification": "top-1 classes"}.get(res.task, "boxes")
    print(f"{res.model} on {res.video}: frames {res.first_frame}..{res.first_frame + res.frames - 1} x "
          f"{res.streams} stream{'s' * (res.streams != 1)}; "
          + (f"delta network {res.ms_per_frame:.1f} ms a frame after the key frame"
             + (f" (all {res.streams} streams)" if res.streams > 1 else "") + ", "
             + (f"MAC speedup {res.mac_speedup:.2f}x" if math.isfinite(res.mac_speedup) else
                "no multiply-adds after frame 0 (nothing changed enough)")
             if res.frames > 1 else
             f"only the key frame, run densely ({res.key_frame_ms:.1f} ms with the first call's set-up): "
             "a delta network saves work from the second frame on")
          + f"; {res.rows} row{'s' * (res.rows != 1)} of {what} -> {res.output}"
          + (f"; drawn -> {args.overlay}" if args.overlay else "")
          + (f"; MOT detections -> {args.mot}" if args.mot else ""))
    if cut:
        print(f"note: {cut}")
    if args.threshold is None and args.thresholds is None:
        how = (f"tune a setting with `deltatune search --model {args.model}` and `deltatune export`, then "
               "pass --thresholds FILE") if res.task != "detection" else (
               "pass --threshold T (the seed study's delta backbone runs 0.05; `deltatune detect eval "
               "--threshold T` scores one)")
        print("note: no --thresholds: every threshold is 0, the exact delta network, which skips only what "
              f"did not change at all; {how}")
    return 0


def _cut_short(res: PredictResult) -> str | None:
    """Why the predictions cover fewer frames than the video's container announces (a video cut short or
    damaged), or ``None`` where they cover them all."""
    if res.expected_frames is not None and res.frames < res.expected_frames:
        return (f"the video ended after {res.frames} of the {res.expected_frames} frames its container "
                "announces (a truncated or damaged file?); the predictions cover the frames it had")
    if res.expected_frames is None and res.about_frames and res.frames < 0.9 * res.about_frames - 1:
        return (f"the video ended after {res.frames} frames, where its container's duration implies about "
                f"{res.about_frames} (a truncated or damaged file?); the predictions cover the frames it had")
    return None
