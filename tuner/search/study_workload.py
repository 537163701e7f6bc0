"""What a search evaluates on: the model, its weights, the clip, and the tuning / held-out split.

A :class:`StudyWorkload` is a frozen, JSON-able description. It is stored in the study's user attributes so
that a resumed study (or ``deltatune pareto --heldout`` / ``deltatune export``) rebuilds exactly the same
evaluation, and so that resuming a study with a *different* workload is refused instead of silently mixing
two objectives in one front.

Frames are split in time: the first ``frames - heldout`` frames of every stream tune the thresholds, the
last ``heldout`` frames (a fresh stream that starts dense again) re-score the final front.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from deltatune.errors import ConfigError, missing_file

__all__ = [
    "StudyWorkload",
    "Segment",
    "parse_segment",
    "DEFAULT_FRAMES",
    "DEFAULT_STREAMS",
    "RANDOM_WEIGHTS_NOTICE",
    "load_model",
    "default_streams",
]

log = logging.getLogger(__name__)

#: Which dense keypoints a fidelity score counts (StudyWorkload.joints).
JOINTS = ("present", "all")
#: Model tasks a search can score (:meth:`StudyWorkload.check_task`).
SCORED_TASKS = ("pose", "classification")

#: Default clip length (tuning + held-out frames) and number of vtest crop windows (streams).
DEFAULT_FRAMES = 16
DEFAULT_STREAMS = 2

RANDOM_WEIGHTS_NOTICE = (
    "model {model!r} has no default weights: using random weights (torch seed {seed}); "
    "thresholds tuned on random weights describe nothing real — pass --weights FILE"
)


_SEGMENT = re.compile(r"^(?P<video>[^@]+?)(?:@(?P<start>\d+))?$")


#: the fewest frames a search clip can have: frame 0 (dense), tuning frames and held-out frames
MIN_FRAMES = 4


@dataclass(frozen=True)
class Segment:
    """A stretch of video: ``video`` (asset name or file) from frame ``start``; written ``video@start``."""

    video: str
    start: int = 0

    @property
    def label(self) -> str:
        return f"{self.video}@{self.start}"


def same_video(a: str, b: str) -> bool:
    """Whether two ``video`` strings name one video: the same sample name, or the same file path however
    written (``./clip.mp4`` and ``clip.mp4``)."""
    return a == b or Path(a) == Path(b)


def parse_segment(text: str) -> Segment:
    """``"vtest@160"`` -> ``Segment("vtest", 160)``; ``"carphone"`` -> start 0."""
    m = _SEGMENT.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f'expected "video@first-frame" (e.g. "vtest@160"), got {text!r}')
    return Segment(m.group("video"), int(m.group("start") or 0))


def heldout_frames(frames: int, heldout: int | None) -> int:
    """Held-out frames at the end of a clip of ``frames``: ``heldout``, else a quarter, at least 2."""
    return heldout if heldout is not None else max(2, round(frames / 4))


def split_error(frames: int, heldout: int | None) -> str | None:
    """What is wrong with splitting ``frames`` into tuning and held-out frames (``None``: nothing): each part
    needs 2 frames. Checked by the workload and, located at its field, by a study file's parser."""
    h = heldout_frames(frames, heldout)
    if h < 2 or frames - h < 2:
        return f"held-out frames {h} of {frames}: both tuning and held-out parts need >= 2 frames"
    return None


@dataclass(frozen=True)
class StudyWorkload:
    """Model + clip + split. ``weights``: ``"default"``, a checkpoint path, or ``None`` (random init with
    ``weights_seed``). ``video``: an asset name (``vtest``, ``carphone``) or a file / image folder.
    ``windows``: crop windows as ``"x,y,w,h"`` strings (default: the asset's first ``streams`` windows).
    ``joints``: without labels, which dense keypoints the fidelity score counts: ``"present"`` (heatmap peak
    above the model's presence threshold; :mod:`deltatune.metrics.fidelity`) or ``"all"``. Studies stored
    before this field existed were scored over every keypoint and load as ``"all"``. ``fallback``: run
    unsupported ops densely (studies stored before it load as ``False``, which is what they ran)."""

    model: str
    weights: str | None = "default"
    video: str = "vtest"
    frames: int = DEFAULT_FRAMES
    streams: int = DEFAULT_STREAMS
    windows: tuple[str, ...] = field(default_factory=tuple)
    start: int = 0
    heldout: int | None = None
    weights_seed: int = 0
    labels: str | None = None
    joints: str = "present"
    #: run ops the delta engine cannot convert densely (densify -> op -> sparsify) instead of refusing
    #: the model (``convert(..., fallback=True)``; CLI ``--fallback``)
    fallback: bool = False

    def __post_init__(self) -> None:
        if self.joints not in JOINTS:
            raise ConfigError(f"joints {self.joints!r}: choose one of {', '.join(JOINTS)}")
        if self.start < 0:
            raise ConfigError(f"--start {self.start}: must be >= 0")
        if self.frames < MIN_FRAMES:
            raise ConfigError(
                f"--frames {self.frames}: need at least {MIN_FRAMES} frames (tuning + held-out)"
            )
        if self.streams < 1:
            raise ConfigError(f"--streams {self.streams}: need at least one stream")
        problem = split_error(self.frames, self.heldout)
        if problem is not None:
            raise ConfigError(problem)

    @property
    def heldout_frames(self) -> int:
        """Held-out frames at the end of the clip (default: a quarter, at least 2)."""
        return heldout_frames(self.frames, self.heldout)

    @property
    def tune_frames(self) -> int:
        return self.frames - self.heldout_frames

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = list(self.windows)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyWorkload:
        d = dict(d)
        d["windows"] = tuple(d.get("windows") or ())
        d.setdefault("joints", "all")  # stored before fidelity counted present joints only
        if not d["windows"] and not sample_windows(d.get("video", "vtest")):
            d["streams"] = 1  # stored as 2 (the old default) where the whole frame, one stream, ran
        return cls(**d)

    def on_segment(self, segment: Segment) -> StudyWorkload:
        """The same model, weights, clip length and scoring on another stretch of video: the segment's
        video from its first frame, with that video's default crop windows (as many streams as it has, up
        to this workload's) unless it is this workload's own video. Labels belong to one video and do not
        carry over."""
        same = same_video(segment.video, self.video)
        streams = self.streams if same and self.windows else default_streams(segment.video, self.streams)
        return replace(
            self, video=segment.video, start=segment.start, windows=self.windows if same else (),
            streams=streams, labels=self.labels if same else None,
        )

    # -- resolution ------------------------------------------------------------------------------
    def resolve_weights(self) -> tuple[str | None, bool]:
        """``(weights argument for create_model, random?)``; ``default`` without default weights becomes
        random init (the caller shows :data:`RANDOM_WEIGHTS_NOTICE`)."""
        from deltatune_models import model_info

        info = model_info(self.model)  # ModelNotFoundError for unknown names
        if self.weights == "default":
            if info.default_weights is None or not info.weights.startswith("available"):
                return None, True
            return "default", False
        if self.weights is None:
            return None, True
        if not Path(self.weights).is_file():
            raise ConfigError(f"--weights {self.weights}: {missing_file(self.weights)}")
        return self.weights, False

    def weights_identity(self) -> str:
        """A string that changes when the weights change (for the reference cache key)."""
        w, random = self.resolve_weights()
        if random:
            return f"random:{self.weights_seed}"
        if w == "default":
            return "default"
        st = Path(str(w)).stat()
        return f"{Path(str(w)).resolve()}:{st.st_size}:{st.st_mtime_ns}"

    def video_path(self) -> Path:
        from deltatune.data.video import resolve_source

        return resolve_source(self.video, fetch=True)

    def load_labels(self) -> Any:
        """The reference labels (:class:`~deltatune.data.labels.KeypointLabels`) or ``None``.

        Labels are in full-frame pixels, indexed by absolute frame number and stream (= crop window), and
        number the model's own joints (:func:`~deltatune.data.labels.model_joint_names`, from its model
        card), as ``deltatune predict`` writes them: BlazePose's 39, hrnet_w32_mpii's 16, COCO's 17.
        """
        if self.labels is None:
            return None
        from deltatune.data.labels import load_coco_keypoints, load_keypoint_csv, model_joint_names
        from deltatune_models import model_info

        p = Path(self.labels)
        if not p.is_file():
            raise ConfigError(f"--labels {self.labels}: {missing_file(self.labels)}")
        names = model_joint_names(model_info(self.model))
        if p.suffix.lower() == ".json":
            return load_coco_keypoints(p, joint_names=names)
        return load_keypoint_csv(p, joint_names=names, model=self.model)

    def clip_labels(self, labels: Any, num_joints: int) -> tuple[Any, Any]:
        """``(coords [frames, streams, joints, 2], visible [frames, streams, joints])`` of this clip's
        frames and streams, cut from ``labels`` of the whole video (:meth:`load_labels`), or a one-line
        :class:`ConfigError` saying what does not fit. Labels of more streams than the clip has, made on
        a sample's own windows (``deltatune predict`` on vtest writes all three), give their first
        streams: the clip's windows are that sample's first windows, in the same order."""
        windows = self.crop_windows()
        n_streams = max(1, len(windows))
        f0, f1 = self.start, self.start + self.frames
        shape = tuple(labels.coords.shape)
        prefix = not self.windows and bool(windows)  # the sample's first windows, in order
        fits_streams = shape[1] == n_streams or (prefix and shape[1] > n_streams)
        if shape[0] >= f1 and fits_streams and shape[2] == num_joints:
            return labels.coords[f0:f1, :n_streams], labels.visible[f0:f1, :n_streams]
        hints = []
        if shape[0] < f1:
            hints.append(f"they end at frame {shape[0] - 1}: lower --frames or --start")
        if not fits_streams:
            hints.append(f"search with --streams {shape[1]}" if prefix
                         else "give one --window per labelled stream, in the labels' order")
        if shape[2] != num_joints:
            hints.append(f"{self.model} has {num_joints} joints")
        raise ConfigError(
            f"--labels {self.labels}: covers (frames, streams, joints) = {shape[:3]}, the search needs "
            f"frames {f0}..{f1 - 1}, {n_streams} stream(s) and {num_joints} joints ({'; '.join(hints)})"
        )

    def check(self) -> None:
        """Cheap checks before any model work: the model, the weights, the video, its frame count, the
        crop windows and the labels (each a one-line :class:`ConfigError`). The steps are separate
        methods so that a caller reading these inputs from a file can name the field each one checks."""
        self.check_task()
        self.resolve_weights()
        info = self.check_video()
        self.check_frames(info)
        self.check_windows(info)
        self.check_labels()

    def check_video(self) -> Any:
        """The video's :class:`~deltatune.data.video.VideoInfo` (size, frame count), or a one-line error
        for a video that is missing or unreadable."""
        from deltatune.data.video import video_info

        return video_info(self.video_path())

    def check_frames(self, info: Any) -> None:
        """Refuse a clip (``start``, ``frames``) that runs past the end of the video of ``info``."""
        from deltatune.workload import short_clip

        n = info.frames
        if n is not None and n < self.start + self.frames:
            raise ConfigError(short_clip(self.video, n, self.start, self.frames, min_frames=MIN_FRAMES))

    def check_windows(self, info: Any) -> None:
        """Refuse a crop window outside the frame of ``info``; warn when the crops stretch the picture."""
        from deltatune.data.video import DEFAULT_WINDOWS
        from deltatune.workload import warn_if_stretched
        from deltatune_models import model_info

        windows = self.crop_windows()
        for w in windows:
            w.check(info.width, info.height, source=info.source)
        if self.windows or self.video not in DEFAULT_WINDOWS:  # the samples' own windows fit their models
            size = tuple(model_info(self.model).input_size)
            warn_if_stretched(info.source, info.width, info.height, windows, size)

    def check_labels(self) -> None:
        """Refuse keypoint labels that are missing, malformed or do not cover the clip."""
        from deltatune_models import model_info

        labels = self.load_labels()
        if labels is not None:
            self.clip_labels(labels, model_info(self.model).num_joints)

    def check_task(self) -> None:
        """Refuse a model the search cannot score, and options that do not apply to its task: pose models
        are scored by PCK, classifiers by top-1 agreement, both against the dense model; keypoint labels
        and ``--all-joints`` are pose options."""
        from deltatune_models import model_info

        task = model_info(self.model).task  # ModelNotFoundError for unknown names
        if task not in SCORED_TASKS:
            raise ConfigError(f"--model {self.model}: threshold searches and studies score "
                              f"{' and '.join(SCORED_TASKS)} models; this is a {task} model")
        if task != "pose" and self.labels:
            raise ConfigError(f"--labels {self.labels}: keypoint labels apply to pose models; {self.model} "
                              f"is a {task} model, scored against its dense top-1 classes")
        if task != "pose" and self.joints != "present":
            raise ConfigError(f"--all-joints: applies to pose models; {self.model} is a {task} model")

    def crop_windows(self) -> list[Any]:
        from deltatune.data.video import parse_window

        if self.windows:
            return [parse_window(w) for w in self.windows]
        wins = sample_windows(self.video)
        if wins and self.streams > len(wins):
            raise ConfigError(f"--streams {self.streams}: {self.video} has only {len(wins)} default windows")
        return list(wins[: self.streams]) if wins else []


def default_streams(video: str, wanted: int = DEFAULT_STREAMS) -> int:
    """``wanted`` streams, or every default crop window of ``video`` when it has fewer (``carphone`` has
    one); a video without default windows is one stream, its whole frame. What ``search`` runs when no
    ``--streams`` is given, and what a segment of another video gets (:meth:`StudyWorkload.on_segment`)."""
    wins = sample_windows(video)
    return min(wanted, len(wins)) if wins else 1


def sample_windows(video: str) -> list[Any]:
    """The default crop windows of ``video`` when it is a sample, named or as the path of its downloaded
    file (as :func:`~deltatune.workload.resolve_video` reads it, so that search, bench and predict crop
    one file alike); ``[]`` for a video of one's own (its whole frame is the one stream)."""
    from deltatune.data.video import DEFAULT_WINDOWS
    from deltatune.errors import DeltatuneError
    from deltatune.workload import resolve_video

    if video in DEFAULT_WINDOWS:
        return list(DEFAULT_WINDOWS[video])
    try:
        name = resolve_video(video)[1]
    except (DeltatuneError, OSError):
        return []
    return list(DEFAULT_WINDOWS.get(name, []))


def load_model(workload: StudyWorkload) -> tuple[torch.nn.Module, bool]:
    """Build the workload's dense model in eval mode; returns ``(model, random_weights)``."""
    from deltatune_models import create_model

    weights, random = workload.resolve_weights()
    if random:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(workload.weights_seed)
            model = create_model(workload.model, weights=None)
    else:
        model = create_model(workload.model, weights=weights)
    return model.eval(), random
