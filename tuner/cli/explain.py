"""``deltatune explain``: how DeltaCNN processes a stream, step by step, on a tiny network."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

NAME = "explain"
HELP = "show step by step how a delta network processes a few frames (tiny example)"
DESCRIPTION = (
    "Runs a tiny network (conv 3x3 -> ReLU -> conv 1x1) on four 5x5 frames and prints, for every frame, "
    "the input change, which pixels pass the input threshold, which conv outputs are updated, the "
    "ReLU's residual buffer, what fired and what was held back, and the output next to the dense output."
)

#: Command lines shown at the end of ``--help`` (each parsed by a test).
EXAMPLES: tuple[str, ...] = (
    "deltatune explain",
    "deltatune explain --relu-threshold 0.2",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-threshold", type=float, default=0.05, metavar="T",
                   help="input sparsify threshold (default 0.05)")
    p.add_argument("--relu-threshold", type=float, default=0.1, metavar="T",
                   help="truncation threshold after the ReLU (default 0.1)")


def _grid(t: Tensor, fmt: str = "{:6.2f}") -> list[str]:
    t = t.detach()
    if t.dtype == __import__("torch").bool:
        return ["  " + " ".join(" X" if v else " ." for v in row) for row in t.tolist()]
    return ["  " + " ".join(fmt.format(v) for v in row) for row in t.tolist()]


def _block(title: str, t: Tensor, fmt: str = "{:6.2f}") -> list[str]:
    return [title, *_grid(t, fmt)]


def _side(blocks: list[list[str]], gap: int = 4) -> list[str]:
    width = [max(len(line) for line in b) for b in blocks]
    rows = max(len(b) for b in blocks)
    out = []
    for i in range(rows):
        parts = [(b[i] if i < len(b) else "").ljust(w) for b, w in zip(blocks, width, strict=True)]
        out.append((" " * gap).join(parts).rstrip())
    return out


def render(frames: list, input_threshold: float, relu_threshold: float) -> str:
    """The walkthrough as text."""
    lines = [
        "DeltaCNN in one page: a tiny network, conv3x3(1->2) -> ReLU -> conv1x1(2->1), on 5x5 frames.",
        f"Input threshold {input_threshold}, ReLU threshold {relu_threshold} "
        "(mode 'max': a pixel's change is",
        "the largest |change| over its channels). 'X' marks a pixel, '.' a skipped one.",
        "",
    ]
    for wf in frames:
        steps = {s["name"]: s for s in wf.steps}
        lines.append(f"=== frame {wf.index} " + "=" * 60)
        if wf.index == 0:
            lines += [
                "Frame 0 runs dense: every layer computes everything, and every buffer starts from the dense",
                "values (input reference = this frame; ReLU 'last propagated input' a = conv output, "
                "residual 0).",
                *_block("input frame:", wf.frame[0, 0]),
                *_block("output (delta network = dense network):", wf.output[0, 0]),
                "",
            ]
            continue
        inp = steps["input"]
        lines += _side([
            _block("input change (x - reference):", inp["diff"][0, 0]),
            _block(f"active (> {input_threshold}):", inp["mask"][0, 0]),
        ])
        n_act = int(inp["mask"].sum())
        where = "the reference is updated only there" if n_act else "the reference stays as it was"
        lines.append(f"-> {n_act} of 25 input pixels are sent on; {where}, so a small change stays visible "
                     "until it adds up.")
        if "0" not in steps or "1" not in steps:  # no pixel sent on: the layers behind it skip the frame
            lines.append("-> the conv and the ReLU do no work this frame: no change reaches them, and the "
                         "output is the last frame's.")
        else:
            lines += _layers(steps, relu_threshold)
        err = float((wf.output - wf.dense_output).abs().max())
        lines += _side([
            _block("delta network output:", wf.output[0, 0]),
            _block("dense network output:", wf.dense_output[0, 0]),
        ])
        lines.append(f"-> max |delta - dense| = {err:.4f}"
                     + ("  (the held-back changes, carried through the layers after them)" if err > 1e-6
                        else "  (exact)"))
        lines.append("")
    lines.append("With all thresholds 0 the delta network equals the dense one on every frame; "
                 "with thresholds > 0")
    lines.append("the error stays bounded because residuals are kept, never dropped.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from deltatune.cli._common import check_threshold
    from deltatune.delta.walkthrough import walkthrough

    for name in ("input_threshold", "relu_threshold"):
        check_threshold(getattr(args, name), "--" + name.replace("_", "-"))
    frames = walkthrough(input_threshold=args.input_threshold, relu_threshold=args.relu_threshold)
    print(render(frames, args.input_threshold, args.relu_threshold))
    return 0


#: The walkthrough conv's two output channels (deltatune.delta.walkthrough), as the text names them.
_CHANNELS = ("ch 1 (blur)", "ch 2 (centre-surround)")


def _layers(steps: dict, relu_threshold: float) -> list[str]:
    """The conv's and the ReLU's part of a frame's walkthrough, both channels: a pixel fires when either
    channel's accumulated change passes the threshold."""
    lines: list[str] = []
    conv = steps["0"]
    lines += _side([
        _block("conv 3x3 updates (receptive field):", conv["updated_out"][0, 0]),
        *(_block(f"its output delta, {name}:", conv["delta_out"][0, c]) for c, name in enumerate(_CHANNELS)),
    ])
    st = steps["1"]
    held = st["updated"] & ~st["fire"]
    for c, name in enumerate(_CHANNELS):
        lines += _side([
            _block(f"ReLU residual r, {name} (after):", st["r"][0, c]),
            _block(f"change f(a+r)-f(a), {name}:", st["d"][0, c]),
        ])
    lines += _block(f"fired (either channel's |change| > {relu_threshold}):", st["fire"][0, 0])
    fired = int(st["fire"].sum())
    lines.append(
        f"-> ReLU: {int(st['updated'].sum())} updated pixels, {fired} fired and emitted "
        f"{'its' if fired == 1 else 'their'} change, {int(held.sum())} held back (their residual r is kept "
        "and re-checked next frame, so "
        "a pixel can fire on a small new change that adds to an earlier held-back one)."
    )
    return lines
