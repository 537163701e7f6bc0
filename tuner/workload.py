"""A model plus a real clip, ready for the engine: what ``inspect``, ``search`` and ``bench`` run on.

:func:`load_workload` resolves a registered model (and its weights), decodes frames from a video (the
vtest sample by default), cuts the model's default crop windows (each window is one stream), resizes
them to the model's input size and applies the model's own preprocessing (colour order, mean/std).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deltatune.errors import ConfigError, WeightsError

__all__ = [
    "Workload",
    "WorkloadPlan",
    "build_model",
    "crop_windows",
    "load_workload",
    "plan_workload",
    "preprocess",
    "refuse_detector",
    "resolve_video",
    "shared_frames",
    "stream_windows",
    "warn_if_stretched",
]

log = logging.getLogger(__name__)


@dataclass
class Workload:
    """A model in eval mode and a preprocessed clip ``[T, B, 3, H, W]`` (B streams)."""

    model_name: str
    model: nn.Module
    info: Any  # deltatune_models.ModelInfo
    frames: Tensor
    video: str
    windows: list[str]
    weights: str
    random_weights: bool

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def n_streams(self) -> int:
        return int(self.frames.shape[1])


#: ITU-R BT.601 luma weights of R, G, B: a grayscale model's one input channel.
LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)


def preprocess(x: Tensor, info: Any) -> Tensor:
    """RGB frames in [0, 1] ``[..., 3, H, W]`` -> model input (colour order, then mean/std). A model
    with one mean value is grayscale: its input is ``[..., 1, H, W]``, the frames' luma."""
    channels = len(info.mean)
    if channels == 1:
        x = torch.tensordot(torch.tensor(LUMA, dtype=x.dtype), x.movedim(-3, 0), dims=1).unsqueeze(-3)
    elif getattr(info, "color_order", "RGB") == "BGR":
        x = x.flip(-3)
    mean = torch.tensor(info.mean, dtype=x.dtype).reshape(channels, 1, 1)
    std = torch.tensor(info.std, dtype=x.dtype).reshape(channels, 1, 1)
    return (x - mean) / std


def resolve_video(video: str | Path | None) -> tuple[Path, str]:
    """``(path, name)`` of a user path, a sample asset name (``vtest``, ``carphone``) or ``None`` (vtest);
    the name keys :data:`~deltatune.data.video.DEFAULT_WINDOWS`. A path keeps its own name unless it is a
    sample's downloaded file (or a link to it), or a folder named after a sample (its frames exported
    by ``benchmarks/export_frames.py``): a video of one's own called ``vtest.mp4`` is not given vtest's
    crops."""
    from deltatune.data.assets import ASSETS, data_dir
    from deltatune.data.video import DEFAULT_WINDOWS, resolve_source

    name = "vtest" if video is None else str(video)
    path = resolve_source(name, fetch=False)
    if Path(name) != path:  # a sample's name
        return path, name
    real = path.resolve()
    sample = next((n for n, spec in ASSETS.items() if (data_dir() / spec.filename).resolve() == real), None)
    if sample is None and path.is_dir() and path.name in DEFAULT_WINDOWS:
        sample = path.name
    return path, sample or name


#: Where a detector goes instead of a command that covers pose models and classifiers (inspect, bench,
#: calibrate): what such a command would say of it.
DETECTOR_COMMANDS = ("a detector from `deltatune detect train`: `deltatune detect eval` scores and times its "
                     "delta backbone, `deltatune predict` runs it over a video")


def crop_windows(n: int) -> str:
    """``n`` crop windows and their streams, counted as a message says them ("1 crop window (stream)",
    "3 crop windows (streams)")."""
    s = "s" * (n != 1)
    return f"{n} crop window{s} (stream{s})"


def refuse_detector(model: str, what: str, instead: str = DETECTOR_COMMANDS) -> None:
    """One line for a detector given to ``what`` (a command or step that covers pose models and
    classifiers: the detector's output is boxes per image, and its box head's data-dependent control
    flow cannot be traced), saying where it goes ``instead``. An unknown name passes: the command's own
    lookup names it."""
    from deltatune_models import list_models

    if model in list_models(include_tiny=True, task="detection"):
        raise ConfigError(f"--model {model}: a detector; {what} covers pose models and classifiers "
                          f"({instead})")


def shared_frames(a: range, b: range) -> range:
    """The frame indices two ranges of frames (positive steps) have in common, as a range (empty when
    none; two arithmetic progressions meet in one): the one test of whether frames a command trains on
    are frames it scores on (``search --train-frames``, ``distill --heldout``)."""
    common = sorted(set(a).intersection(b))
    if not common:
        return range(0)
    step = common[1] - common[0] if len(common) > 1 else 1
    return range(common[0], common[-1] + 1, step)


def short_clip(
    path: Path | str, n: int, start: int, frames: int, *, min_frames: int = 2, as_range: bool = False
) -> str:
    """Why a clip of ``frames`` frames from ``start`` does not fit a video of ``n`` frames, and what would:
    fewer frames, an earlier start, or (too short a video) another source. ``min_frames`` is the shortest
    clip the command takes (2 here: frame 0 and one delta frame; a search needs tuning and held-out
    frames too). ``as_range``: the command takes the clip as ``--frames A:B`` (fine-tuning) rather than
    ``--start A --frames N``. The one wording of this refusal for every command and study."""
    have = max(0, n - start)
    if as_range:
        flag = f"--frames {start}:{start + frames}"
        fits = f"--frames {start}:{n}" if have >= min_frames else f"--frames 0:{n}"
        hint = fits if n >= min_frames else ""
    else:
        flag = f"--frames {frames}"
        hint = ""
        if have >= min_frames:
            hint = f"--frames {have} or fewer" + (", or an earlier --start" if start else "")
        elif n >= min_frames:
            hint = "an earlier --start"
    if not hint:
        hint = f"a clip needs at least {min_frames} frames: give a longer video or a folder of frames"
    said = f", {have} from --start {start}" if start and not as_range else ""
    return f"{flag}: {path} has {n} frame(s){said}; need {frames} ({hint})"


#: How far (as a ratio) a crop's aspect may be from the model input's before the stretch is worth a word.
_STRETCH_TOLERANCE = 1.15
#: (video, crop, input size) already warned about in this process: an ablation or a search with held-out
#: segments loads the same clip many times, and one warning says it
_WARNED_STRETCH: set[tuple[str, str, int, int, int, int]] = set()


def warn_if_stretched(
    path: Path, width: int, height: int, windows: list[Any] | None, input_size: tuple[int, ...]
) -> None:
    """Log a warning when the crops are stretched to a clearly different aspect ratio: every crop is
    resized to the model's input without padding, so a 16:9 frame fed whole to a 3:4 pose model squeezes
    every person to under half their width, and accuracy and sparsity are then about distorted video.
    Said once per video, crop and input size in a process."""
    in_h, in_w = input_size[-2], input_size[-1]
    rects = [(f"window {w}", w.w, w.h) for w in windows] if windows else [("the whole frame", width, height)]

    def stretch(r: tuple[str, int, int]) -> float:
        return max(r[1] * in_h / (r[2] * in_w), r[2] * in_w / (r[1] * in_h))

    bad = [r for r in rects if stretch(r) > _STRETCH_TOLERANCE]
    key = (str(path), *(x for r in bad for x in r), in_w, in_h)
    if not bad or key in _WARNED_STRETCH:
        return
    _WARNED_STRETCH.add(key)
    named = "; ".join(f"{what} ({w}x{h}) {stretch((what, w, h)):.1f}x" for what, w, h in bad[:4])
    more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
    log.warning(
        "%s: stretched to the model's %dx%d input, distorting its aspect: %s%s; give %d:%d crop windows "
        "around what the model should see (--window X,Y,W,H; windows in a study file)",
        path, in_w, in_h, named, more, *_ratio(in_w, in_h),
    )


def _ratio(w: int, h: int) -> tuple[int, int]:
    g = math.gcd(w, h)
    return w // g, h // g


def weights_label(model: str, weights: str) -> str:
    """``weights`` as a reader should see it: a model whose default weights are another architecture's
    (``hrnet`` runs HRNet-W18-small-v2) says so, since that network, not the named one, ran."""
    from deltatune_models import model_info

    try:
        variant = model_info(model).default_variant
    except Exception:  # noqa: BLE001 - a name the registry does not know: shown as given
        return weights
    if weights == "default" and variant:
        return f"default, i.e. {variant}'s architecture and weights"
    return weights


def build_model(
    model: str, weights: str | Path | None = "default", *, allow_random: bool = True, seed: int = 0
) -> tuple[nn.Module, str, bool]:
    """``(model in eval mode, weights name, random?)``: ``weights`` as :func:`load_workload` takes them.

    ``weights=None`` builds random weights from ``seed`` (the same for the same seed, whatever the
    caller's random state, which is left as it was); ``"default"`` falls back to them (with a warning)
    when the model has no default weights and ``allow_random`` is true."""
    from deltatune_models import create_model

    def seeded_random() -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return create_model(model, weights=None)

    try:
        net = seeded_random() if weights is None else create_model(model, weights=weights)
        wname = "default" if weights == "default" else ("random" if weights is None else str(weights))
        return net.eval(), wname, weights is None
    except WeightsError:
        if weights != "default" or not allow_random:
            raise
        log.warning("%s has no default weights here; using seeded random weights (seed %d): thresholds "
                    "tuned on random weights describe nothing real", model, seed)
        return seeded_random().eval(), "random", True


def stream_windows(
    path: Path, name: str, windows: list[Any] | None, vinfo: Any, input_size: tuple[int, ...],
    *, warn: bool = True,
) -> list[Any] | None:
    """The crop windows of the streams: ``windows``, else a sample's own (3:4, people-sized), else
    ``None`` (the whole frame, one stream); warns when crops are stretched to the model's input (unless
    ``warn`` is false: the caller warns once the frames have been read)."""
    from deltatune.data.video import DEFAULT_WINDOWS

    if windows is None and name in DEFAULT_WINDOWS:
        return list(DEFAULT_WINDOWS[name])
    if warn:
        warn_if_stretched(path, vinfo.width, vinfo.height, windows, input_size)
    return windows


def first_streams(
    windows: list[Any] | None, streams: int, video: str, *, given: bool = False
) -> list[Any] | None:
    """The first ``streams`` of ``windows`` (``None``: the whole frame, one stream), or a one-line
    :class:`ConfigError` when there are fewer. ``given``: the windows are the user's ``--window``s, not
    the sample's own (the error said "vtest has 1 crop windows" of one ``--window``; vtest has 3)."""
    have = len(windows) if windows else 1
    if streams < 1:
        raise ConfigError(f"--streams {streams}: need at least one stream")
    if streams > have:
        if given:
            raise ConfigError(f"--streams {streams}: --window gives {have} crop window{'s' * (have != 1)}")
        what = f"{have} crop windows" if windows else "one stream (the whole frame; --window gives crops)"
        raise ConfigError(f"--streams {streams}: {video} has {what}")
    return windows[:streams] if windows else windows


@dataclass
class WorkloadPlan:
    """A workload checked and its model built, before any frame is read (:func:`plan_workload`), so that
    what needs no frames is checked first: a ``--batch`` beyond the streams, or a thresholds file made for
    another network (refused once :attr:`model` is converted, a fraction of a second, where a long clip
    takes seconds to decode). :meth:`decode` then reads the clip."""

    model_name: str
    model: nn.Module
    info: Any  # deltatune_models.ModelInfo
    path: Path
    vinfo: Any  # deltatune.data.video.VideoInfo
    windows: list[Any] | None  # the streams' crop windows; None: the whole frame, one stream
    given: bool  # the windows are the caller's, not a sample's own
    start: int
    frames: int
    frames_as_range: bool
    weights: str
    random_weights: bool

    @property
    def n_streams(self) -> int:
        """The streams the clip will have: one per crop window, or one (the whole frame)."""
        return len(self.windows) if self.windows else 1

    def decode(self) -> Workload:
        """Read the clip (a container that did not state its length and ends too soon is refused as a
        short clip) and preprocess it for :attr:`model`."""
        from deltatune.data.video import load_clip

        info, path, frames = self.info, self.path, self.frames
        clip = load_clip(path, windows=self.windows, size=tuple(info.input_size), start=self.start,
                         count=frames)
        if clip.shape[0] < frames:  # a container that did not say its length (the read refuses a damaged one)
            raise ConfigError(short_clip(path, self.start + clip.shape[0], self.start, frames,
                                         as_range=self.frames_as_range))
        # said once the frames are read (before an error about the file, the warning only got in its way);
        # a sample's own windows fit its models and are not warned about
        if self.given or self.windows is None:
            warn_if_stretched(path, self.vinfo.width, self.vinfo.height, self.windows, tuple(info.input_size))
        clip = preprocess(clip, info)
        return Workload(self.model_name, self.model.eval(), info, clip, str(path),
                        [str(w) for w in self.windows or []], self.weights, self.random_weights)


def plan_workload(
    model: str,
    *,
    weights: str | Path | None = "default",
    video: str | Path | None = None,
    frames: int = 30,
    start: int = 0,
    windows: list[Any] | None = None,
    allow_random: bool = True,
    seed: int = 0,
    frames_as_range: bool = False,
    streams: int | None = None,
) -> WorkloadPlan:
    """Check the clip :func:`load_workload` would read (the container's size and frame count, the crop
    windows) and build the model, reading no frame: :meth:`WorkloadPlan.decode` reads them. Takes
    :func:`load_workload`'s arguments."""
    from deltatune.data.video import as_window, video_info
    from deltatune_models import model_info

    if windows is not None:
        windows = [as_window(w) for w in windows]
    if frames < 2:
        raise ConfigError(f"--frames must be at least 2 (frame 0 is dense), got {frames}")
    if start < 0:
        raise ConfigError(f"--start {start}: must be >= 0")
    info = model_info(model)
    path, vname = resolve_video(video)
    vinfo = video_info(path)  # the container's size and count, checked before any model work
    n = vinfo.frames
    if n is not None and n < start + frames:
        raise ConfigError(short_clip(path, n, start, frames, as_range=frames_as_range))
    for w in windows or []:
        w.check(vinfo.width, vinfo.height, source=path)
    given = bool(windows)
    windows = stream_windows(path, vname, windows, vinfo, tuple(info.input_size), warn=False)
    if streams is not None:
        windows = first_streams(windows, streams, vname, given=given)
    net, wname, random_weights = build_model(model, weights, allow_random=allow_random, seed=seed)
    return WorkloadPlan(model, net, info, path, vinfo, windows, given, start, frames, frames_as_range, wname,
                        random_weights)


def load_workload(
    model: str,
    *,
    weights: str | Path | None = "default",
    video: str | Path | None = None,
    frames: int = 30,
    start: int = 0,
    windows: list[Any] | None = None,
    allow_random: bool = True,
    seed: int = 0,
    frames_as_range: bool = False,
    streams: int | None = None,
) -> Workload:
    """Build a model and decode ``frames`` frames of ``video`` as its input streams.

    ``windows``: crop windows, one stream each, as :class:`~deltatune.data.video.CropWindow`, ``"x,y,w,h"``
    or ``(x, y, w, h)``; ``None``: the sample's own windows, or the whole frame of other video.

    ``streams``: only the first this many crop windows (``windows``, else the sample's own), as
    ``search --streams`` takes them; ``None``: every one.

    ``frames_as_range``: a clip too long for the video is refused in the words of a command that takes
    it as ``--frames A:B`` (see :func:`short_clip`).

    ``weights=None`` builds random weights from ``seed`` (the same weights for the same seed, whatever
    the caller's random state, which is left as it was); ``weights="default"`` falls back to them (with a
    warning, recorded in the result) when the model has no default weights and ``allow_random`` is true.
    """
    return plan_workload(model, weights=weights, video=video, frames=frames, start=start, windows=windows,
                         allow_random=allow_random, seed=seed, frames_as_range=frames_as_range,
                         streams=streams).decode()
