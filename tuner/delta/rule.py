"""DeltaCNN's rule, defined once: how a change is truncated, and when a frame may run densely instead.

Semantics (docs/design.md#delta-semantics):

* **Input step** (:func:`input_step`): the input keeps a reference frame ``ref``. Per pixel
  ``c = reduce_channels |x - ref|`` (optionally max-pooled over a ``k x k`` window); the pixel is active
  iff ``c > t_in``. The delta is ``x - ref`` at active pixels, 0 elsewhere, and ``ref`` is overwritten at
  active pixels only.
* **Truncation step** (:func:`truncation_step`), at every pointwise non-linearity ``f``: per element, the
  last propagated input ``a`` and a residual ``r``. At updated pixels: ``r += d_in; s = a + r;
  d = f(s) - f(a)``; the pixel fires iff ``reduce_channels |d| > t``; firing emits ``d`` and sets
  ``a = s, r = 0``; otherwise it emits 0 and keeps ``r``.
* **Island step** (:func:`island_step`), at a non-pointwise non-linear op (max pooling, the opt-in dense
  fallback): the accumulated dense input ``acc`` and the last propagated output ``out``.
  ``acc += d_in; y = f(acc); d = y - out`` at the updated output pixels; firing pixels emit ``d`` and set
  ``out = y``. For a pointwise ``f`` this is the truncation step (``acc = a + r``, ``out = f(a)``).
* ``reduce_channels`` is :func:`pixel_score`: ``max`` (DeltaCNN), ``norm`` or ``rms``. A threshold of
  ``None`` never truncates. With ``accumulate=False`` (an ablation, not DeltaCNN) a change that does not
  fire is *dropped*: the residual is zeroed and ``ref``/``out`` take the new value everywhere.
* **Dense refresh** (:func:`refresh_exact`, :func:`refresh_due`): when every threshold after the input is 0
  (or ``None``) and accumulation is on, a frame whose input changed at a large enough share of its pixels
  may run the dense model on ``ref`` instead: that is exactly what the delta path computes (a pixel that
  does not fire at threshold 0 has ``f(a + r) == f(a)``), up to float rounding.
* **Key frames** (:func:`refresh_keyframe`; deltatune's addition, not DeltaCNN's): every ``interval``
  frames the stream restarts, so that frame runs dense like frame 0 and every buffer, residual and
  reference is re-initialised. Unlike the dense refresh this is not exact-preserving: it *removes* the
  accumulated truncation error, at the cost of one dense frame per interval.
* **Key frames on change** (:func:`refresh_due` with the network's ``keyframe_change``; deltatune's
  addition): when the dense refresh is not exact (a threshold after the input is above 0), a frame whose
  input changed at a large enough share of its pixels (counted as the input step counts them) restarts
  the stream: it runs dense like frame 0, on the frame itself, and is exact. On video where most of the
  picture moves, this bounds a frame's cost by a dense pass instead of a delta pass that updates nearly
  everything and pays the truncation work on top.
* **Several inputs** (:func:`frame_refresh_due`): a network with more than one frame input (a frame and a
  depth map, two views, a conditioning vector) decides the dense refresh and the key frame on change once
  per frame, for all its inputs: when any input changed at the fraction or more, every input runs the
  frame densely (on its ``ref``, or on its frame for a key frame). Decided per input, one branch would
  carry a dense value and another a delta into the same merge, which has no meaning.

Which body is which. The functions here are the definition; every other body is derived from them or held
to them by tests:

* ``PointwiseTruncation.forward`` (whole tensors) and ``PointwiseTruncation._forward_gathered`` (the
  updated pixels gathered into ``[1, C, P]`` columns) call :func:`truncation_step`.
* ``InputSparsify`` calls :func:`input_step`; ``DenseIsland`` calls :func:`island_step`.
* The compiled kernels ``truncate_pointwise`` and ``input_sparsify`` (``csrc/delta_cpu.cpp``, for
  piecewise-linear ``f`` on float32 CPU tensors) are a C++ re-implementation of the first two, held to
  these functions by ``tests/delta/test_native.py``
  (``test_compiled_truncation_equals_the_torch_step``, ``test_compiled_input_sparsify_equals_the_torch_step``)
  and ``tests/delta/test_rule.py``.
* ``DeltaNetwork.forward`` and ``InputSparsify`` decide dense refreshes and key frames on change with
  :func:`refresh_exact` and :func:`refresh_due` (several inputs: :func:`frame_refresh_due`);
  ``DeltaNetwork.forward`` decides key frames with :func:`refresh_keyframe`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MODES",
    "pixel_score",
    "fires",
    "TruncationStep",
    "truncation_step",
    "input_step",
    "island_step",
    "refresh_exact",
    "refresh_due",
    "frame_refresh_due",
    "refresh_keyframe",
    "is_keyframe_change",
    "is_keyframe_interval",
    "is_input_dilation",
]

#: The channel reductions a change's per-pixel magnitude can be measured with.
MODES: tuple[str, ...] = ("max", "norm", "rms")


def pixel_score(d: Tensor, mode: str) -> Tensor:
    """Per-pixel magnitude of a change ``d`` ``[N, C, *S]`` over its channels -> ``[N, 1, *S]``.

    ``max``: max |d| over channels (DeltaCNN's default); ``norm``: L2 norm over channels; ``rms``: root
    mean square over channels. A change with fewer than two dims (one value per sample ``[N]``, or a
    scalar) has no channels: each element is a pixel, scored ``|d|`` in every mode.
    """
    if d.dim() < 2 and mode in MODES:
        return d.abs()
    if mode == "max":
        return d.abs().amax(dim=1, keepdim=True)
    if mode == "norm":
        return torch.linalg.vector_norm(d, ord=2, dim=1, keepdim=True)
    if mode == "rms":
        return d.pow(2).mean(dim=1, keepdim=True).sqrt()
    raise ValueError(f"unknown truncation mode {mode!r}; expected one of {MODES}")


def fires(score: Tensor, updated: Tensor, threshold: float | None) -> Tensor:
    """Pixels that propagate: updated and (no threshold, or score above it)."""
    if threshold is None:
        return updated
    return updated & (score > threshold)


class TruncationStep(NamedTuple):
    """One truncation step's result: what propagates, the new state, and the intermediates (for logs)."""

    emitted: Tensor  #: ``d`` at firing pixels, 0 elsewhere
    fire: Tensor  #: firing pixels ``[N, 1, *S]``
    a: Tensor  #: new last propagated input
    r: Tensor  #: new residual
    s: Tensor  #: ``a + r`` after adding the incoming change
    d: Tensor  #: ``f(s) - f(a)``
    score: Tensor  #: ``pixel_score(d)``


def truncation_step(
    a: Tensor,
    r: Tensor,
    d_in: Tensor,
    updated: Tensor,
    fn: Callable[[Tensor], Tensor],
    threshold: float | None,
    mode: str,
    accumulate: bool = True,
) -> TruncationStep:
    """DeltaCNN's truncation step at a pointwise non-linearity ``fn`` (see the module doc).

    ``d_in`` is the incoming change (zero outside ``updated``), ``a`` and ``r`` the state; nothing is
    written into the arguments. Tensors are ``[N, C, *S]`` (``updated``: ``[N, 1, *S]``).
    """
    r_in = r + d_in
    s = a + r_in
    d = fn(s) - fn(a)
    score = pixel_score(d, mode)
    fire = fires(score, updated, threshold)
    emitted = d * fire
    a_new = torch.where(fire, s, a)
    zero = torch.zeros_like(r_in)
    r_new = torch.where(fire, zero, r_in) if accumulate else torch.where(updated, zero, r_in)
    return TruncationStep(emitted, fire, a_new, r_new, s, d, score)


def input_step(
    x: Tensor, ref: Tensor, threshold: float | None, mode: str, *, accumulate: bool = True, dilation: int = 1
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """DeltaCNN's input step: ``(diff, score, active, new_ref)`` for frame ``x`` against ``ref``.

    The delta that propagates is ``diff * active``.
    """
    diff = x - ref
    score = pixel_score(diff, mode) if x.dim() >= 2 else diff.abs()
    if dilation > 1 and score.dim() == 4:
        score = F.max_pool2d(score, dilation, stride=1, padding=dilation // 2)
    active = fires(score, torch.ones_like(score, dtype=torch.bool), threshold)
    new_ref = torch.where(active, x, ref) if accumulate else x.detach().clone()
    return diff, score, active, new_ref


def island_step(
    acc: list[Tensor],
    d_in: list[Tensor],
    out: Tensor,
    fn: Callable[..., Tensor],
    updated: Callable[[Tensor], Tensor],
    threshold: float | None,
    mode: str,
    accumulate: bool = True,
) -> tuple[Tensor, Tensor, list[Tensor], Tensor, Tensor, Tensor]:
    """DeltaCNN's step at a non-pointwise op ``fn``: ``(emitted, fire, new_acc, new_out, d, updated)``.

    ``acc`` are the accumulated dense inputs, ``out`` the last propagated output; ``updated(y)`` gives the
    output pixels that may have changed, as a bool mask of ``y``'s mask shape.
    """
    new_acc = [a + i for a, i in zip(acc, d_in, strict=True)]
    y = fn(*new_acc)
    d = y - out
    upd = updated(y)
    score = pixel_score(d, mode) if y.dim() >= 2 else d.abs()
    fire = fires(score, upd, threshold)
    emitted = d * fire
    new_out = torch.where(fire, y, out) if accumulate else torch.where(upd, y, out)
    return emitted, fire, new_acc, new_out, d, upd


def refresh_exact(later_thresholds: Iterable[float | None], accumulate: bool) -> bool:
    """Whether a dense refresh gives the delta path's result: accumulation on and every threshold after
    the input 0 (or ``None``)."""
    return accumulate and all(t is None or t == 0 for t in later_thresholds)


def refresh_due(count: int, total: int, fraction: float | None) -> bool:
    """Whether a frame whose input changed at ``count`` of ``total`` pixels runs densely (``fraction``:
    the network's ``dense_refresh`` setting; ``None`` never)."""
    return fraction is not None and count >= fraction * total


def frame_refresh_due(changed: Iterable[tuple[int, int]], fraction: float | None) -> bool:
    """Whether a frame of a network with several inputs runs densely: ``changed`` holds each input's
    ``(count, total)`` of changed pixels, and the frame is due when any input is (:func:`refresh_due`).
    One decision for every input, so that no merge meets a dense value and a delta."""
    return any(refresh_due(count, total, fraction) for count, total in changed)


def refresh_keyframe(frame: int, interval: int) -> bool:
    """Whether frame number ``frame`` (0-based, of the stream since its reset) is a key frame: with a
    key-frame interval ``interval`` > 0, frames ``interval``, ``2 * interval``, ... run dense like frame 0
    (a periodic refresh that bounds accumulated truncation error; not part of DeltaCNN)."""
    return interval > 0 and frame > 0 and frame % interval == 0


def is_keyframe_change(v: object) -> bool:
    """Whether ``v`` is a valid key-frame-on-change fraction: ``None`` (off) or a number in (0, 1]."""
    if v is None:
        return True
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return 0.0 < float(v) <= 1.0


def is_keyframe_interval(n: object) -> bool:
    """Whether ``n`` is a valid key-frame interval: an integer >= 0 (0: no key frames; not a bool)."""
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def is_input_dilation(k: object) -> bool:
    """Whether ``k`` is a valid input dilation: an odd integer >= 1 (the side of the square a changed
    input pixel marks as updated; not a bool)."""
    return isinstance(k, int) and not isinstance(k, bool) and k >= 1 and k % 2 == 1
