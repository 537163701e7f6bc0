"""``deltatune inspect``: truncation points, per-layer sparsity, MAC speedup and error vs dense."""

from __future__ import annotations

import argparse

from deltatune.cli._common import (
    PLOT_SUFFIXES,
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

NAME = "inspect"
HELP = "convert a model and report its truncation points, sparsity, MAC speedup and error on a clip"
DESCRIPTION = (
    "Converts a registered model to a delta network, runs it on real frames (default: the vtest sample, "
    "the model's default crop windows as streams) and reports every truncation point (name, op, the dense "
    "MACs of the layers it feeds), per-layer sparsity, the MAC speedup over frames 1..N-1 and the maximum "
    "relative error of the delta output against the dense output, and the accuracy loss against the dense "
    "model (PCK@0.2 points over present keypoints for pose models, top-1 points for classifiers). --plot "
    "draws where the network does its work on the clip's last frame."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune inspect --model hrnet --threshold 0.05",
    "deltatune inspect --model mobilenet_v2 --thresholds studies/thresholds/mobilenet_v2.json --json",
    "deltatune inspect --model hrnet --video clip.mp4 --window 100,50,240,320 --start 300",
    "deltatune inspect --model hrnet --thresholds studies/thresholds/hrnet.json --plot where.png",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_clip_arguments(p, frames=30, frames_help="frames to process")
    add_start_argument(p)
    add_window_argument(p)
    p.add_argument("--streams", type=int, default=None, metavar="N",
                   help="only the first N crop windows (streams), as `search --streams N` takes them "
                        "(default: every one)")
    add_threshold_arguments(p)
    p.add_argument("--mode", choices=["max", "norm", "rms"], default=None,
                   help="truncation mode (default: the --thresholds file's, else max; one that differs "
                        "from the file's is noted)")
    p.add_argument("--fallback", action="store_true", help="run unsupported ops densely instead of failing")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_no_progress(p)
    p.add_argument("--plot", default=None, metavar="F.png",
                   help="draw the last frame of each stream (the pixels the input step passed on, dense and "
                        "delta keypoints or top-1 classes), the pixels that fired at the two busiest "
                        "truncation points, and every point's updated/fired share over the GMACs it feeds")


def run(args: argparse.Namespace) -> int:
    from deltatune.inspection import inspect_model
    from deltatune.workload import refuse_detector

    refuse_detector(args.model, "`deltatune inspect`")
    check_threshold_arguments(args)
    windows = parse_windows(args.window)
    if args.plot:
        refuse_writing_the_input(args.video, {"--plot": args.plot})
        check_output_path(args.plot, "--plot", suffixes=PLOT_SUFFIXES)
    report = inspect_model(
        args.model,
        weights=None if args.weights == "none" else args.weights,
        video=args.video,
        frames=args.frames,
        start=args.start,
        threshold=args.threshold,
        thresholds_file=args.thresholds,
        mode=args.mode,
        fallback=args.fallback,
        windows=windows,
        streams=args.streams,
        keep_last=bool(args.plot),
        progress=not (args.json or args.no_progress),  # on stderr, and only when it is a terminal
    )
    if args.plot:
        from deltatune.report.inspect_plot import save_inspection_figure

        save_inspection_figure(report, args.plot)
    if args.json:
        print(json_text(report.to_dict()))
        return 0
    print(report.render())
    if args.plot:
        print(f"plot: {args.plot}")
    return 0
