"""``deltatune bench``: measured wall-clock speed of dense PyTorch vs the delta network on real frames."""

from __future__ import annotations

import argparse
import sys

from deltatune._workers import busy_machine, oversubscribed
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

NAME = "bench"
HELP = "time dense PyTorch vs the delta network on real frames (ms/frame, speedup, accuracy loss)"
DESCRIPTION = (
    "Runs a registered model densely and as a delta network on the same real frames (default: the vtest "
    "sample, its first crop window; --batch N takes N of its windows as streams), with the same "
    "threads, interleaved repeats after a warm-up, and reports median ms/frame for both (dense: the "
    "faster of NCHW and channels-last, both shown), the measured speedup, the MAC speedup, the "
    "measured/MAC-ideal ratio, the accuracy loss against the dense model's own predictions (PCK@0.2 points "
    "over the keypoints the dense model finds present for pose models, the every-keypoint loss beside it; "
    "top-1 disagreement points for classifiers) and a per-layer table (active fraction, "
    "sparse/dense/skip choice, share of the delta time). Frame 0 of each stream runs dense and is not timed. "
    "Before timing, the sparse backend's layer costs are measured for the layer shapes this machine's "
    "calibration table lacks (see `deltatune calibrate`); --recalibrate measures them all again."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune bench --model hrnet --thresholds studies/thresholds/hrnet.json --frames 40 --batch 3",
    "deltatune bench --model hrnet --thresholds studies/thresholds/hrnet.json --start 650   # unseen frames",
    "deltatune bench --model mobilenet_v2 --threshold 0.05 --threads 1 --json",
    "deltatune bench --model blazepose --thresholds studies/thresholds/blazepose.json --plot time.png",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_clip_arguments(p, frames=20, frames_help="frames per stream, frame 0 included")
    add_start_argument(p)
    p.add_argument("--batch", type=int, default=None,
                   help="streams (crop windows) per batch (default: every --window given, else 1)")
    add_window_argument(p)
    p.add_argument("--device", default="cpu",
                   help="cpu (default) or cuda[:N]: on CUDA every timing synchronises the GPU, and the dense "
                        "model is also timed in fp16 beside the fp32 baseline")
    add_threshold_arguments(p)
    p.add_argument("--backend", choices=["sparse", "reference"], default="sparse",
                   help="delta execution backend (default sparse)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for both runs (default: torch's)")
    p.add_argument("--recalibrate", action="store_true",
                   help="measure this model's layer costs again instead of reading the calibration table")
    p.add_argument("--fallback", action="store_true", help="run unsupported ops densely instead of failing")
    p.add_argument("--all-joints", action="store_true",
                   help="pose: score fidelity over every dense keypoint, not only the present ones (heatmap "
                        "peak above the model's presence threshold, 0.2 for HRNet/SimpleBaselines)")
    p.add_argument("--layers", type=int, default=25, help="per-layer rows to print (default 25; 0 = none)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_no_progress(p)
    p.add_argument("--plot", default=None, metavar="F.png",
                   help="draw where a delta frame's time goes: dense vs delta ms (conv kernels and the "
                        "rest), and the heaviest conv layers' dense and delta times")


def run(args: argparse.Namespace) -> int:
    import torch

    from deltatune.bench import run_bench
    from deltatune.errors import ConfigError
    from deltatune.workload import refuse_detector

    refuse_detector(args.model, "`deltatune bench`")
    check_threshold_arguments(args)
    if args.frames < 2:
        raise ConfigError(f"--frames must be at least 2 (frame 0 is dense and untimed), got {args.frames}")
    if args.layers < 0:
        raise ConfigError(f"--layers must be >= 0 (0 prints no per-layer rows), got {args.layers}")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    windows = parse_windows(args.window)
    if args.plot:
        refuse_writing_the_input(args.video, {"--plot": args.plot})
        check_output_path(args.plot, "--plot", suffixes=PLOT_SUFFIXES)
    busy = busy_machine()  # said after the result, where it qualifies the numbers
    result = run_bench(
        args.model,
        video=args.video,
        weights=None if args.weights == "none" else args.weights,
        frames=args.frames,
        start=args.start,
        batch=args.batch,
        threshold=args.threshold,
        thresholds_file=args.thresholds,
        backend=args.backend,
        repeats=args.repeats,
        recalibrate=args.recalibrate,
        fallback=args.fallback,
        all_joints=args.all_joints,
        progress=not args.no_progress,  # on stderr, and only when it is a terminal
        device=args.device,
        windows=windows,
    )
    if args.plot:
        from deltatune.report.bench_plot import save_bench_figure

        save_bench_figure(result, args.plot)
    if args.json:
        print(json_text(result.to_dict()))
    else:
        print(result.render(max_layers=args.layers))
        if args.plot:
            print(f"plot: {args.plot}")
    if busy:
        print(f"warning: when the run started, {busy}", file=sys.stderr)
    if crowded := oversubscribed(args.threads):
        print(f"warning: {crowded}", file=sys.stderr)
    return 0
