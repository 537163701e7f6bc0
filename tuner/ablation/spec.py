"""Study files: one TOML file declares a whole ablation (factors x repeats) and how to read it.

A study file has a ``[study]`` table, a ``[factors]`` table (each factor a list of levels), optionally
``[fixed]`` (settings every run shares) and ``[equivalence]`` (metric -> margin)::

    [study]
    name = "truncation-ablation"
    kind = "evaluate"                 # "evaluate": fixed thresholds scored per clip/segment
    model = "hrnet"                   # "search": one threshold search per design point and seed
                                      # "detection": one detector training per point and seed, scored
                                      #   with a classic (dense) or delta backbone
    units = ["vtest@0", "vtest@160"]  # evaluate: the repeated unit (clip@first frame)
    frames = 16
    primary = { factor = "accumulate", baseline = "on", metric = "accuracy_loss" }

    [fixed]
    thresholds = "studies/thresholds/hrnet.json"

    [factors]
    accumulate = ["on", "off"]
    mode = ["max", "norm", "rms"]

    [equivalence]
    accuracy_loss = 0.5               # PCK points

Every error names the file, the line and the field (``studies/x.toml:7: frames: expected an integer,
got 'sixteen'``), and is raised before any model is built.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltatune.delta.rule import is_input_dilation, is_keyframe_change, is_keyframe_interval
from deltatune.errors import ConfigError
from deltatune.search.storage import MAX_STUDY_NAME
from deltatune.search.study_workload import (
    Segment,
    default_streams,
    parse_segment,
    same_video,
    sample_windows,
    split_error,
)
from deltatune.train.detection import DETECTOR, DetectionTrainConfig
from deltatune.train.detection_eval import DEFAULT_SCORE_THRESHOLD

__all__ = [
    "StudySpec",
    "Segment",
    "DesignPoint",
    "Run",
    "load_study",
    "parse_study",
    "KINDS",
    "METRICS",
    "FACTORS",
    "parse_segment",
    "results_reader",
]

KINDS = ("search", "evaluate", "detection")

#: Metrics each kind of run records: name -> (label, higher is better).
METRICS: dict[str, dict[str, tuple[str, bool]]] = {
    "search": {
        "heldout_loss": ("accuracy loss on held-out frames (PCK or top-1 points)", False),
        "heldout_speedup": ("MAC speedup on held-out frames", True),
        "measured_speedup": ("measured speedup on held-out frames (dense ms / delta ms)", True),
        "tune_loss": ("accuracy loss on tuning frames (PCK or top-1 points)", False),
        "tune_speedup": ("MAC speedup on tuning frames", True),
        "hypervolume": ("hypervolume of the tuning front (points x speedup)", True),
        "feasible_trials": ("trials within the accuracy budget", True),
    },
    "evaluate": {
        "accuracy_loss": ("accuracy loss (PCK or top-1 points)", False),
        "mac_speedup": ("MAC speedup", True),
        "measured_speedup": ("measured speedup (dense ms / delta ms)", True),
    },
    "detection": {
        "avg_iou": ("average IoU on held-out frames (the seed's metric)", True),
        "map50": ("mAP@0.5 on held-out frames", True),
        "ms_per_frame": ("measured ms per frame, backbone + head", False),
        "fps": ("measured frames per second, backbone + head", True),
    },
}
#: Metrics of a search study that scores its result on several segments (``score_on``).
SCORED_METRICS = METRICS["evaluate"]
#: The metric a search or evaluate run measures only in its ``speed_repeats`` timed rounds.
UNTIMED = "measured_speedup"
_UNTIMED_WHY = (f"{UNTIMED} is measured in the speed_repeats timed rounds, and speed_repeats = 0 times no "
                "run: set speed_repeats >= 1, or leave it out")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    """A finite number: TOML's ``inf`` and ``nan`` and JSON's ``Infinity`` and ``NaN`` parse as floats, and an
    infinite weight decay or budget would run (into NaN weights, or admitting everything) without a word."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_strategy(v: Any) -> str | None:
    from deltatune.search.strategies import STRATEGIES

    if not isinstance(v, str) or v not in STRATEGIES:
        return f"expected one of {', '.join(STRATEGIES)}, got {v!r}"
    return None


def _check_space(v: Any) -> str | None:
    from deltatune.search.spaces import SPACES

    if not isinstance(v, str) or v not in SPACES:
        return f"expected one of {', '.join(SPACES)}, got {v!r}"
    return None


def _check_mode(v: Any) -> str | None:
    from deltatune.delta._context import MODES

    if not isinstance(v, str) or v not in MODES:
        return f"expected one of {', '.join(MODES)}, got {v!r}"
    return None


def _check_onoff(v: Any) -> str | None:
    if isinstance(v, bool) or v in ("on", "off"):
        return None
    return f'expected "on"/"off" (or true/false), got {v!r}'


def _check_int(lo: int) -> Any:
    def check(v: Any) -> str | None:
        return None if _is_int(v) and v >= lo else f"expected an integer >= {lo}, got {v!r}"

    return check


def _check_dilation(v: Any) -> str | None:
    return None if is_input_dilation(v) else f"expected an odd integer >= 1, got {v!r}"


def _quoted(v: Any) -> str:
    """A hint for a number written in quotes (``"1e-3"``): TOML reads it as text."""
    if not isinstance(v, str):
        return ""
    try:
        float(v)
    except ValueError:
        return ""
    return " (text: write the number without quotes)"


def _check_nonneg(v: Any) -> str | None:
    return None if _is_num(v) and v >= 0 else f"expected a finite number >= 0, got {v!r}{_quoted(v)}"


def _check_positive(v: Any) -> str | None:
    return None if _is_num(v) and v > 0 else f"expected a finite number > 0, got {v!r}{_quoted(v)}"


def _check_frames(v: Any) -> str | None:
    """``"A:B"``: video frames A..B-1 (at least 2), or ``""`` for the default."""
    if v == "":
        return None
    m = re.fullmatch(r"(\d+):(\d+)", v) if isinstance(v, str) else None
    if not m or int(m.group(2)) - int(m.group(1)) < 2:
        return f'expected "A:B" (video frames A..B-1, at least 2), got {v!r}'
    return None


def parse_frames(v: Any) -> range | None:
    """A checked ``"A:B"`` level as ``range(A, B)``; ``None`` for ``""`` (the default frames)."""
    if not v:
        return None
    a, b = (int(t) for t in str(v).split(":"))
    return range(a, b)


def _check_thresholds(v: Any) -> str | None:
    if _is_num(v) and v >= 0:
        return None
    if isinstance(v, str) and v:
        return None  # a threshold file: existence is checked relative to the study file
    return f"expected a threshold file path or a finite number >= 0, got {v!r}"


def _check_aggregate(v: Any) -> str | None:
    from deltatune.search.segments import aggregate_error

    if not isinstance(v, str) or aggregate_error(v) is not None:
        return f"expected worst, mean or qP (a quantile, 50 <= P < 100, e.g. q90), got {v!r}"
    return None


def _check_segments(v: Any) -> str | None:
    if not isinstance(v, str) or v in ("on", "off"):  # "off" would become a boolean, then a video "False"
        return f'expected a string of segments "video@first-frame" separated by commas, or "none", got {v!r}'
    for part in segment_list(v):
        try:
            parse_segment(part)
        except ValueError as exc:
            return str(exc)
    return None


def _check_keyframe(v: Any) -> str | None:
    if is_keyframe_interval(v):
        return None
    return f"expected a key-frame interval (an integer >= 0; 0: none), got {v!r}"


def keyframe_change_value(v: Any) -> float | None:
    """A study's ``keyframe_change`` setting as the network takes it: ``"none"`` -> ``None``."""
    return None if v == "none" else float(v)


def _check_keyframe_change(v: Any) -> str | None:
    if v == "none" or (not isinstance(v, str) and is_keyframe_change(v)):
        return None
    return f'expected a key-frame-on-change fraction in (0, 1] or "none", got {v!r}'


def _check_keyframes(v: Any) -> str | None:
    if _check_keyframe(v) is None:
        return None
    parts = split_list(v) if isinstance(v, str) else []
    if parts and all(p.isdigit() for p in parts):
        return None
    return f'expected key-frame intervals to search (an integer >= 0, or "0,16,32"), got {v!r}'


def _check_choice(*choices: str) -> Any:
    def check(v: Any) -> str | None:
        return None if v in choices else f"expected one of {', '.join(choices)}, got {v!r}"

    return check


def _check_size(v: Any) -> str | None:
    """An input size: ``"HxW"``, one integer (square), or ``""`` (the trainer's default)."""
    if v == "" or (_is_int(v) and v >= 32):
        return None
    m = re.fullmatch(r"(\d+)x(\d+)", v) if isinstance(v, str) else None
    if m and min(int(m.group(1)), int(m.group(2))) >= 32:
        return None
    return f'expected an input size "HxW" (each >= 32) or one integer >= 32, got {v!r}'


def _check_timed(v: Any) -> str | None:
    ok = _is_int(v) and (v == 0 or v >= 2)
    return None if ok else f"expected 0 (all frames) or an integer >= 2 (frame 0 runs dense), got {v!r}"


def parse_size(v: Any) -> tuple[int, int] | None:
    """A checked size level as ``(H, W)``; ``None`` for ``""`` (the trainer's default)."""
    if v == "":
        return None
    if _is_int(v):
        return (int(v), int(v))
    h, w = str(v).split("x")
    return (int(h), int(w))


def segment_list(v: Any) -> list[str]:
    """The segments of an ``also_on`` level: ``"vtest@300, carphone"``; ``""`` or ``"none"``: none."""
    return [] if str(v).strip().lower() in ("", "none") else split_list(v)


def split_list(v: Any) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``; an integer -> ``["n"]`` (study-file lists written as one string)."""
    return [t.strip() for t in str(v).split(",") if t.strip()]


#: The detector trainer's defaults: a detection study's unset settings.
_TRAIN = DetectionTrainConfig()

#: Factors (and [fixed] settings) each kind understands: name -> (validator, default).
FACTORS: dict[str, dict[str, tuple[Any, Any]]] = {
    "search": {
        "strategy": (_check_strategy, "tpe"),
        "trials": (_check_int(1), 12),
        "space": (_check_space, "group"),
        "budget": (_check_nonneg, 1.0),
        "mode": (_check_mode, "max"),
        "tune_dilation": (_check_onoff, True),
        "accumulate": (_check_onoff, True),
        # wall-clock budget of the inner search in seconds (0: none; trials is then a cap)
        "timeout": (_check_nonneg, 0),
        # training hyperparameters: "train" samples them with the thresholds (search --train); the
        # others fix one fine-tune (deltatune finetune, seeded by the run's seed) before the search
        "train": (_check_onoff, False),
        "train_frames": (_check_frames, ""),
        "finetune_steps": (_check_int(0), 0),
        # None: the model's own fine-tuning rate (deltatune.ablation.store.STUDY_LR_BEFORE: what it was)
        "lr": (_check_positive, None),
        "weight_decay": (_check_nonneg, 0.0),
        "sparsity_penalty": (_check_nonneg, 0.0),
        "truncation_aware": (_check_onoff, False),
        # further segments every trial is scored on, "video@start,...", and how (search --also-on)
        "also_on": (_check_segments, "none"),
        "aggregate": (_check_aggregate, "worst"),
        # key-frame intervals the search chooses from (search --keyframes)
        "keyframes": (_check_keyframes, 0),
    },
    "evaluate": {
        "thresholds": (_check_thresholds, 0.0),
        "scale": (_check_nonneg, 1.0),
        "mode": (_check_mode, "max"),
        "input_dilation": (_check_dilation, 1),
        "accumulate": (_check_onoff, True),
        "keyframe_interval": (_check_keyframe, 0),
        # key frames on change: input fraction that restarts the stream ("none": off)
        "keyframe_change": (_check_keyframe_change, "none"),
    },
    # the person detector (deltatune detect): one training run per design point and seed, then the
    # held-out frames scored and timed with the run's backbone (module docstring of ablation.detection)
    "detection": {
        "backbone": (_check_choice("classic", "delta"), "classic"),
        "head_features": (_check_choice("dense", "delta"), _TRAIN.head_features),
        "optimizer": (_check_choice("adam", "adamw", "sgd"), _TRAIN.optimizer),
        "lr": (_check_positive, _TRAIN.lr),
        "weight_decay": (_check_nonneg, _TRAIN.weight_decay),
        "epochs": (_check_int(1), _TRAIN.epochs),
        "batch_size": (_check_int(1), _TRAIN.batch_size),
        "size": (_check_size, ""),
        # the delta backbone's threshold at every truncation point (features and scoring)
        "threshold": (_check_nonneg, _TRAIN.threshold),
        "score_threshold": (_check_nonneg, DEFAULT_SCORE_THRESHOLD),
        "train_frames": (_check_frames, ""),
        "eval_frames": (_check_frames, ""),
        # frames of the scored stream that are timed (0: all of them)
        "timed_frames": (_check_timed, 0),
    },
}

_STUDY_KEYS = {
    "name": str,
    "description": str,
    "kind": str,
    "model": str,
    "weights": str,
    "video": str,
    "frames": int,
    "streams": int,
    "windows": list,
    "start": int,
    "heldout": int,
    "joints": str,
    "repeats": int,
    "seeds": list,
    "units": list,
    "score_on": list,
    "observe": list,
    "pairing": str,
    "speed_repeats": int,
    "metrics": list,
    "primary": dict,
}
_TABLES = {"study", "factors", "fixed", "equivalence"}
#: ``[study]`` fields of the crop workload (search and evaluate studies), which a detection study refuses
_CROP_ONLY = ("weights", "frames", "streams", "windows", "start", "heldout", "joints")
#: The observations a search run makes on its own frames (``observe``)
OWN_FRAMES = ("tuning", "held-out")
#: Hex digits of a run's key (:attr:`Run.key`).
RUN_KEY_CHARS = 12


def run_study_name(study: str, key: str) -> str:
    """The Optuna study a search run's inner search is stored as: ``<study>.<run key>``."""
    return f"{study}.{key}"


def max_name_length(kind: str) -> int:
    """The longest ``study.name`` a study of ``kind`` can have: a storage takes names of up to
    ``MAX_STUDY_NAME`` characters, and each run of a search study stores its inner search under
    :func:`run_study_name`, the name with a run key added."""
    if kind != "search":
        return MAX_STUDY_NAME
    return MAX_STUDY_NAME - len(run_study_name("", "0" * RUN_KEY_CHARS))


@dataclass(frozen=True)
class DesignPoint:
    """One combination of factor levels (plus the fixed settings): what a run varies."""

    levels: tuple[tuple[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.levels)


@dataclass(frozen=True)
class Run:
    """One design point on one repeated unit (a seed, or a segment): the unit of work and of storage."""

    point: DesignPoint
    factors: dict[str, str]  # factor -> level as text (what the report groups by)
    seed: int
    unit: str

    @property
    def key(self) -> str:
        """A stable identifier: the same run in a re-run has the same key."""
        payload = json.dumps(
            {"p": [list(x) for x in self.point.levels], "s": self.seed, "u": self.unit},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(payload.encode()).hexdigest()[:RUN_KEY_CHARS]


@dataclass(frozen=True)
class StudySpec:
    """A parsed, validated study file (see the module docstring)."""

    name: str
    kind: str
    model: str
    factors: dict[str, list[Any]]
    fixed: dict[str, Any]
    description: str = ""
    weights: str | None = "default"
    video: str = "vtest"
    frames: int = 16
    streams: int = 2
    #: crop windows ``"x,y,w,h"`` of ``video``, one stream each (default: the sample's own)
    windows: tuple[str, ...] = ()
    start: int = 0
    heldout: int | None = None
    joints: str = "present"
    seeds: tuple[int, ...] = (0, 1, 2)
    units: tuple[Segment, ...] = ()
    score_on: tuple[Segment, ...] = ()
    #: with ``score_on``: which of the run's own frames are observations too (``tuning``, ``held-out``)
    observe: tuple[str, ...] = OWN_FRAMES
    pairing: str = "unit"
    speed_repeats: int = 3
    metrics: tuple[str, ...] = ()
    primary: tuple[str, str, str] | None = None
    equivalence: dict[str, float] = field(default_factory=dict)
    path: str = ""

    # -- the design --------------------------------------------------------------------------------
    def setting(self, point: DesignPoint, name: str) -> Any:
        """The value of setting ``name`` at ``point``: its level, else the fixed value, else the default."""
        d = point.as_dict()
        if name in d:
            return d[name]
        if name in self.fixed:
            return self.fixed[name]
        return FACTORS[self.kind][name][1]

    def also_on(self, point: DesignPoint) -> list[Segment]:
        """The further segments a search run at ``point`` scores every trial on (``also_on``)."""
        return [parse_segment(t) for t in segment_list(self.setting(point, "also_on"))]

    def table_of(self, name: str) -> str | None:
        """The study file's table that sets ``name`` (``"factors"`` or ``"fixed"``; ``None``: its
        default), for an error located at the line that named it."""
        return "factors" if name in self.factors else "fixed" if name in self.fixed else None

    def points(self) -> list[DesignPoint]:
        """Every combination of factor levels, in declared order (the first factor varies slowest)."""
        names = list(self.factors)
        combos = itertools.product(*(self.factors[n] for n in names)) if names else [()]
        return [DesignPoint(tuple(zip(names, c, strict=True))) for c in combos]

    def local_path(self, value: str) -> str:
        """A file the study names (a video, weights, a thresholds file): ``value`` as written when it exists
        from the working directory, else relative to the study file when it exists there (a study kept
        beside its video runs from anywhere), else as written (a sample name, or a missing file that a
        check then names)."""
        base = Path(self.path).parent if self.path else Path(".")
        return str(base / value) if not Path(value).exists() and (base / value).exists() else value

    def local_segment(self, segment: Segment) -> Segment:
        """``segment`` with its video found as :meth:`local_path` finds files."""
        return Segment(self.local_path(segment.video), segment.start)

    @property
    def unit_name(self) -> str:
        return "segment" if self.kind == "evaluate" else "seed"

    def startup_notes(self) -> list[str]:
        """A search study's warnings of runs whose strategy never gets past its random startup trials at
        their number of trials (:func:`~deltatune.search.strategies.startup_warning`): such a "tpe" is
        random search, and a study comparing it with random search finds nothing to find. Empty for other
        kinds."""
        if self.kind != "search":
            return []
        from deltatune.search.strategies import startup_warning

        seen = dict.fromkeys((str(self.setting(p, "strategy")), int(self.setting(p, "trials")))
                             for p in self.points())
        return [w for name, trials in seen if (w := startup_warning(name, trials)) is not None]

    def setup_rows(self) -> list[tuple[str, str]]:
        """What every run of the study shares, as ``(setting, value)`` rows for a report: the kind, the
        model and weights, the video and its crops, the clip, the repeats and the fixed settings."""
        from deltatune.workload import weights_label

        per_segment = self.kind == "evaluate"  # each segment names its video and first frame
        weights = weights_label(self.model, str(self.weights or "random"))
        rows = [("kind", self.kind), ("model", self.model), ("weights", weights),
                ("video", "each segment's (below)" if per_segment else self.video)]
        if self.kind != "detection":
            crops = "; ".join(self.windows) or (
                f"up to {self.streams} of each video's default windows (a video of one's own: its whole "
                "frame)" if per_segment
                else f"{default_streams(self.local_path(self.video), self.streams)} of the video's default "
                "windows" if sample_windows(self.local_path(self.video))
                else "the whole frame (one stream)")
            if per_segment and self.windows and any(not same_video(u.video, self.video) for u in self.units):
                crops += f" of {self.video}; other videos' segments: their default windows"
            rows.append(("crop windows of the video (streams)", crops))
            clip = (f"{self.frames} per stream from each segment's first frame" if per_segment
                    else f"{self.frames} per stream from frame {self.start}")
            if self.kind == "search":
                from deltatune.search.study_workload import StudyWorkload

                split = StudyWorkload(self.model, frames=self.frames, heldout=self.heldout)
                clip += f" ({split.tune_frames} tuning, {split.heldout_frames} held out)"
            rows.append(("frames", clip))
        if self.kind == "evaluate":
            rows.append(("segments (repeats)", ", ".join(u.label for u in self.units)))
        else:
            rows.append(("seeds (repeats)", ", ".join(str(v) for v in self.seeds)))
        if self.score_on:
            rows.append(("also scored on", ", ".join(u.label for u in self.score_on)))
        rows.append(("timed rounds per run", str(self.speed_repeats)))
        rows += [(k, level_text(v)) for k, v in self.fixed.items()]
        return rows

    def runs(self) -> list[Run]:
        """The full design x repeats, one :class:`Run` each."""
        out = []
        for p in self.points():
            factors = {k: level_text(v) for k, v in p.levels}
            if self.kind == "evaluate":
                out += [Run(p, factors, 0, u.label) for u in self.units]
            else:
                out += [Run(p, factors, s, str(s)) for s in self.seeds]
        return out

    def observation_factors(self) -> dict[str, list[str]]:
        """Factors measured within a run (a search scored on several segments: ``scored_on``)."""
        if self.kind == "search" and self.score_on:
            return {"scored_on": [*self.observe, *(s.label for s in self.score_on)]}
        return {}

    def metric_names(self) -> tuple[str, ...]:
        return self.metrics or tuple(self.available_metrics())

    def available_metrics(self) -> dict[str, tuple[str, bool]]:
        """Metric name -> (label, higher is better); accuracy labels carry the study model's unit. A search
        or evaluate study with ``speed_repeats = 0`` times no run and has no ``measured_speedup`` (a
        detection study's runs are always timed)."""
        metrics = SCORED_METRICS if self.kind == "search" and self.score_on else METRICS[self.kind]
        if self.speed_repeats == 0 and UNTIMED in metrics:  # no run is timed: nothing would fill its section
            metrics = {k: v for k, v in metrics.items() if k != UNTIMED}
        from deltatune.search.objective import model_loss_unit

        unit = model_loss_unit(self.model) if self.model else None
        if unit is None or unit == "points":
            return metrics
        return {k: (label.replace("PCK or top-1 points", unit), hb) for k, (label, hb) in metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (stored in the study so that ``deltatune report`` needs no file)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["units"] = [u.label for u in self.units]
        d["score_on"] = [u.label for u in self.score_on]
        d["observe"] = list(self.observe)
        d["seeds"] = list(self.seeds)
        d["metrics"] = list(self.metrics)
        d["primary"] = list(self.primary) if self.primary else None
        d["windows"] = list(self.windows)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudySpec:
        d = dict(d)
        d["units"] = tuple(parse_segment(u) for u in d.get("units", ()))
        d["score_on"] = tuple(parse_segment(u) for u in d.get("score_on", ()))
        d["observe"] = tuple(d.get("observe", OWN_FRAMES))
        d["seeds"] = tuple(d.get("seeds", ()))
        d["metrics"] = tuple(d.get("metrics", ()))
        d["primary"] = tuple(d["primary"]) if d.get("primary") else None
        d["windows"] = tuple(d.get("windows", ()))
        return cls(**d)

    def _design(self) -> dict[str, Any]:
        d = self.to_dict()
        for k in ("description", "path", "metrics", "primary", "equivalence", "pairing"):
            d.pop(k)
        if tuple(d["observe"]) == OWN_FRAMES:  # studies stored before the field existed
            d.pop("observe")
        if not d["windows"]:  # likewise
            d.pop("windows")
        return d

    def fingerprint(self) -> str:
        """What must not change when a stored study is resumed: the runs and what each measures."""
        return hashlib.sha1(json.dumps(self._design(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _kept_design(self, other: StudySpec) -> dict[str, Any]:
        """What every run of this design and ``other`` measures alike, which must match for one to extend
        the other: the design less what adds runs (factors, seeds, units), and less ``video`` for two
        evaluate studies without windows: each unit names its own video, so ``video`` (taken from units
        that all come from one) crops nothing and no run reads it."""
        varying = {"factors", "seeds", "repeats", "units"}
        if self.kind == other.kind == "evaluate" and not self.windows and not other.windows:
            varying.add("video")
        return {k: v for k, v in self._design().items() if k not in varying}

    def extends(self, stored: StudySpec) -> bool:
        """Whether this design is ``stored``'s with runs added: more levels of its factors, more seeds or
        segments, everything each run measures unchanged. Its finished runs then stay valid (a run's key
        is its levels, seed and unit), and ``ablate`` runs only the new ones."""
        mine, theirs = self._kept_design(stored), stored._kept_design(self)
        if json.dumps(mine, sort_keys=True, default=str) != json.dumps(theirs, sort_keys=True, default=str):
            return False
        if list(self.factors) != list(stored.factors):
            return False
        return {r.key for r in stored.runs()} <= {r.key for r in self.runs()}

    def differences(self, stored: StudySpec) -> list[str]:
        """What keeps this design from extending ``stored`` (see :meth:`extends`), each as ``field old
        (now new)``: a changed model, data or fixed setting, another factor list, or runs taken away."""
        mine, theirs = self._kept_design(stored), stored._kept_design(self)
        said = []
        for k in sorted(mine.keys() | theirs.keys()):
            a, b = theirs.get(k), mine.get(k)
            if isinstance(a, dict) and isinstance(b, dict):  # [fixed]: name the setting, not the table
                said += [f"{k}.{kk} {a.get(kk)!r} (now {b.get(kk)!r})" for kk in sorted(a.keys() | b.keys())
                         if json.dumps(a.get(kk), default=str) != json.dumps(b.get(kk), default=str)]
            elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
                said.append(f"{k} {a!r} (now {b!r})")
        if list(self.factors) != list(stored.factors):
            said.append(f"factors {', '.join(stored.factors)} (now {', '.join(self.factors)})")
        elif not said:
            kept = {r.key for r in self.runs()}
            gone = [r for r in stored.runs() if r.key not in kept]
            if gone:
                first = ", ".join([*(f"{f}={v}" for f, v in gone[0].factors.items()), f"unit {gone[0].unit}"])
                said.append(f"{len(gone)} of its runs taken away (levels, seeds or segments), e.g. {first}")
                said += self._respelled(stored)
        return said

    def _respelled(self, stored: StudySpec) -> list[str]:
        """Levels written as another number type than the stored study wrote them (``1.0`` for ``1``): the
        same level to the parser, but a run's key is its levels as written."""
        out = []
        for f, levels in stored.factors.items():
            for old in levels:
                new = next((v for v in self.factors.get(f, []) if _level_key(v) == _level_key(old)), None)
                if new is not None and repr(new) != repr(old):
                    out.append(f"{f} level {new!r} was written {old!r}: write it as before to keep its runs")
        return out


def level_text(v: Any) -> str:
    """A level as the report shows it (``True`` -> ``on``)."""
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


def _level_key(v: Any) -> tuple[str, Any]:
    """What makes two levels of a study file the same: their value for numbers (``1`` and ``1.0``),
    their text otherwise."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return ("number", float(v))
    return ("text", level_text(v))


def matching_level(level: str, levels: list[str]) -> str:
    """``level`` as ``levels`` write it: ``1e-3`` names the level ``0.001``, ``1`` the level ``1.0``.
    Text that names no level, or several, or is not a number, is returned as it is."""
    if level in levels:
        return level
    try:
        value = float(level)
    except ValueError:
        return level
    same = []
    for candidate in levels:
        try:
            if float(candidate) == value:
                same.append(candidate)
        except ValueError:
            continue
    return same[0] if len(same) == 1 else level


class _Locator:
    """Line numbers of TOML keys (tomllib keeps none): the line of ``key =`` inside ``[table]``."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, table: str, key: str | None = None) -> int:
        current, header_line = "", 0
        for i, raw in enumerate(self.lines, 1):
            s = raw.strip()
            m = re.match(r"^\[\s*([^\]]+?)\s*\]", s)
            if m:
                current = m.group(1)
                if key is None and current == table:
                    return i
                header_line = i if current == table else header_line
                continue
            if key is not None and current == table and re.match(rf"^\"?{re.escape(key)}\"?\s*=", s):
                return i
        return header_line or 1


def field_location(spec: StudySpec, table: str, key: str) -> str:
    """``file:line: table.key`` of a field of ``spec``'s study file, for errors found after parsing (a
    video that is missing, a model that is not registered). The line is 1 when the file cannot be read."""
    try:
        line = _Locator(Path(spec.path).read_text(encoding="utf-8")).line(table, key)
    except (OSError, UnicodeDecodeError):
        line = 1
    return f"{spec.path}:{line}: {table}.{key}"


#: files of results, not designs: what each is, and the command that reads it
_RESULT_READERS = {
    ".csv": ("a table of runs", "deltatune report {}"),
    ".db": ("a results database", "deltatune report {}"),
    ".journal": ("a search study's journal", "deltatune pareto --storage {}"),
}


def results_reader(path: str | Path) -> tuple[str, str] | None:
    """``(what the file is, the command that reads it)`` for a file of results (a table of runs, a results
    database, a search's journal), by its suffix; ``None`` for any other file."""
    p = Path(path)
    found = _RESULT_READERS.get(p.suffix.lower())
    return None if found is None else (found[0], found[1].format(shlex.quote(str(p))))


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file; every error is one :class:`ConfigError` naming file:line: field."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a study file (.toml)")
    if not p.is_file():
        raise ConfigError(f"{p}: no such study file")
    reader = results_reader(p)
    if reader is not None:  # results, not a design: say which command reads them
        raise ConfigError(f"{p}: is {reader[0]}, not a study file (.toml); `{reader[1]}` reads it")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read ({exc})") from None
    return parse_study(text, path=str(p))


def parse_study(text: str, *, path: str = "<study>") -> StudySpec:
    """Parse the text of a study file (see :func:`load_study`).

    >>> s = parse_study('[study]\\nname = "x"\\nkind = "evaluate"\\nmodel = "hrnet_tiny"\\n'
    ...                 'units = ["vtest@0"]\\n[factors]\\nmode = ["max", "rms"]\\n')
    >>> [r.factors for r in s.runs()]
    [{'mode': 'max'}, {'mode': 'rms'}]
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"{path}:{m.group(1) if m else 1}: not valid TOML ({exc})") from None
    loc = _Locator(text)

    def fail(table: str, key: str | None, msg: str) -> ConfigError:
        where = f"{table}.{key}" if key else f"[{table}]"
        return ConfigError(f"{path}:{loc.line(table, key)}: {where}: {msg}")

    loose = [k for k, v in data.items() if not isinstance(v, dict)]  # in file order: the first one met
    if loose:
        raise ConfigError(
            f"{path}:{loc.line('', loose[0])}: {loose[0]}: a field outside any table; the study's fields go "
            f"under [study] (tables: {', '.join(sorted(_TABLES))})"
        )
    unknown = sorted(set(data) - _TABLES)
    if unknown:
        raise ConfigError(
            f"{path}:{loc.line(unknown[0])}: [{unknown[0]}]: unknown table; "
            f"allowed: {', '.join(sorted(_TABLES))}"
        )
    sec = data.get("study")
    if not isinstance(sec, dict):
        raise ConfigError(f"{path}:1: [study]: missing table (name, kind, model ...)")
    for key, value in sec.items():
        if key not in _STUDY_KEYS:
            raise fail("study", key, f"unknown field; allowed: {', '.join(sorted(_STUDY_KEYS))}")
        want = _STUDY_KEYS[key]
        ok = _is_int(value) if want is int else isinstance(value, want)
        if not ok:
            raise fail(
                "study", key, f"expected {'an integer' if want is int else want.__name__}, got {value!r}"
            )
    for key in ("name", "kind", "model"):
        if key not in sec:
            raise fail("study", None, f"missing field {key!r}")
    kind = sec["kind"]
    if kind not in KINDS:
        raise fail("study", "kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "detection" and sec["model"] != DETECTOR:
        raise fail("study", "model", f"a detection study trains {DETECTOR!r}, got {sec['model']!r}")
    if kind == "detection":  # fields of the crop workload a detection study never reads: refused, not ignored
        for key in _CROP_ONLY:
            if key in sec:
                raise fail("study", key, "a detection study trains on whole frames of its video "
                           "(train_frames, eval_frames and size under [fixed] or [factors]), with ImageNet "
                           f"MobileNetV2 weights; {key} applies to search and evaluate studies")
    name = sec["name"]
    longest = max_name_length(kind)
    if not re.fullmatch(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{longest - 1}}}", name):
        why = "" if longest == MAX_STUDY_NAME else (
            f"; each run's search is stored as NAME.<run key>, at most {MAX_STUDY_NAME} characters")
        shown = f"{name[:40]!r}{'...' if len(name) > 40 else ''} ({len(name)} characters)"
        raise fail("study", "name", f"use 1-{longest} letters, digits, - _ .{why} (got {shown})")
    for key, lo in (
        ("frames", 4),
        ("streams", 1),
        ("start", 0),
        ("heldout", 2),
        ("repeats", 1),
        ("speed_repeats", 0),
    ):
        if key in sec and sec[key] < lo:
            raise fail("study", key, f"expected an integer >= {lo}, got {sec[key]!r}")
    split = split_error(sec.get("frames", StudySpec.frames), sec.get("heldout"))
    if kind != "detection" and split is not None:  # tuning and held-out frames, before any run
        raise fail("study", "heldout" if "heldout" in sec else "frames", split)
    kw: dict[str, Any] = {
        k: v
        for k, v in sec.items()
        if k not in {"repeats", "seeds", "units", "score_on", "observe", "metrics", "primary"}
    }
    if kw.get("weights") == "none":
        kw["weights"] = None
    if "windows" in sec:
        kw["windows"] = _windows(sec["windows"], sec.get("streams"), lambda m: fail("study", "windows", m))
        kw["streams"] = len(kw["windows"])
    if sec.get("pairing", "unit") not in ("unit", "none"):
        raise fail("study", "pairing", f'expected "unit" or "none", got {sec["pairing"]!r}')
    if sec.get("joints", "present") not in ("present", "all"):
        raise fail("study", "joints", f'expected "present" or "all", got {sec["joints"]!r}')
    # repeats: seeds for a search or a detector training, segments for an evaluation
    if kind != "evaluate":
        if "units" in sec:
            raise fail(
                "study", "units", f"a {kind} study repeats over seeds: use repeats = N or seeds = [...]"
            )
        if "seeds" in sec:
            seeds = sec["seeds"]
            if not seeds or not all(_is_int(s) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
                raise fail("study", "seeds", f"expected distinct integers >= 0, got {seeds!r}")
            kw["seeds"] = tuple(seeds)
            if "repeats" in sec and sec["repeats"] != len(seeds):  # which one runs? neither silently
                raise fail("study", "repeats", f"{sec['repeats']!r}, but seeds lists {len(seeds)} "
                           f"({', '.join(str(v) for v in seeds)}); give one of them")
        else:
            kw["seeds"] = tuple(range(sec.get("repeats", 3)))
        for key in ("score_on", "observe"):
            if key in sec and kind == "detection":
                raise fail("study", key, "a detection study scores its own held-out frames (eval_frames)")
        for key in ("score_on",):
            if key in sec:
                kw[key] = _segments(sec[key], lambda m, k=key: fail("study", k, m))
                if len(set(kw[key])) != len(kw[key]):  # as units: one segment scored twice is one observation
                    raise fail("study", key, "lists a segment twice")
        if "observe" in sec:
            obs_ = sec["observe"]
            if "score_on" not in sec:
                raise fail("study", "observe", "only with score_on (it picks the observations besides it)")
            if any(v not in OWN_FRAMES for v in obs_) or len(set(obs_)) != len(obs_):
                raise fail("study", "observe", f'expected distinct "tuning", "held-out"; got {obs_!r}')
            kw["observe"] = tuple(v for v in OWN_FRAMES if v in obs_)
    else:
        for key in ("repeats", "seeds", "score_on", "observe"):
            if key in sec:
                raise fail("study", key, "an evaluate study repeats over units (segments): use units = [...]")
        if "units" not in sec:
            raise fail("study", None, "missing field 'units' (the clips/segments every setting is scored on)")
        kw["units"] = _segments(sec["units"], lambda m: fail("study", "units", m))
        if len(set(kw["units"])) != len(kw["units"]):
            raise fail("study", "units", "lists a segment twice")
        unit_videos: list[str] = []  # each video once, as first written (./clip.mp4 is clip.mp4)
        for u in kw["units"]:
            if not any(same_video(u.video, v) for v in unit_videos):
                unit_videos.append(u.video)
        if "video" in sec and "windows" not in sec:  # it would crop nothing and no run would read it
            raise fail("study", "video", f"an evaluate study scores each unit on its own video (units are "
                       f"from {', '.join(unit_videos)}); video names the one its windows crop, and this "
                       "study has no windows: drop it")
        if "video" not in sec and len(unit_videos) == 1:  # the one video the units are from
            kw["video"] = unit_videos[0]
        video = kw.get("video", StudySpec.video)
        if "windows" in sec and not any(same_video(v, video) for v in unit_videos):
            raise fail("study", "windows", f"they crop study.video ({video}), which no unit is from: "
                       f"set video to the one they crop (units are from {', '.join(unit_videos)})")
    # factors and fixed settings
    allowed = FACTORS[kind]
    factors: dict[str, list[Any]] = {}
    for fname, levels in (data.get("factors") or {}).items():
        if fname not in allowed:
            raise fail("factors", fname, f"unknown factor for {kind} studies; allowed: {', '.join(allowed)}")
        if not isinstance(levels, list) or not levels:
            raise fail("factors", fname, f"expected a non-empty list of levels, got {levels!r}")
        for v in levels:
            problem = allowed[fname][0](v)
            if problem:
                raise fail("factors", fname, problem)
        same = [_level_key(v) for v in levels]  # 1 and 1.0 are one level, as a report reads them
        if len(set(same)) != len(same):
            raise fail("factors", fname, f"lists a level twice: {levels!r}")
        factors[fname] = [_norm(v) for v in levels]
    fixed: dict[str, Any] = {}
    for fname, v in (data.get("fixed") or {}).items():
        if fname not in allowed:
            raise fail("fixed", fname, f"unknown setting for a {kind} study; allowed: {', '.join(allowed)}")
        if fname in factors:
            raise fail("fixed", fname, "is also a factor; keep it in one place")
        problem = allowed[fname][0](v)
        if problem:
            raise fail("fixed", fname, problem)
        fixed[fname] = _norm(v)
    base = Path(path).parent
    for table, values in (("fixed", {k: [v] for k, v in fixed.items()}), ("factors", factors)):
        files: dict[Path, str] = {}  # each file's resolved path -> its level as first written
        for v in values.get("thresholds", []):
            if not isinstance(v, str):
                continue
            found = Path(v) if Path(v).is_file() else base / v  # as StudySpec.local_path finds it
            if not found.is_file():
                raise fail(table, "thresholds", f"threshold file {v!r} not found")
            first = files.setdefault(found.resolve(), v)
            if first != v:  # two spellings of one file: two levels that are one setting
                raise fail(table, "thresholds", f"{first!r} and {v!r} are one threshold file; list it once")
    kw["factors"], kw["fixed"] = factors, fixed
    # metrics, primary comparison, equivalence margins
    probe = StudySpec(
        name=name,
        kind=kind,
        model=sec["model"],
        factors=factors,
        fixed=fixed,
        score_on=kw.get("score_on", ()),
        speed_repeats=kw.get("speed_repeats", StudySpec.speed_repeats),
    )
    available = probe.available_metrics()

    def untimed(metric: Any) -> bool:  # a metric of the kind that this study times no run for
        return metric == UNTIMED and kind != "detection" and probe.speed_repeats == 0

    if "metrics" in sec:
        if any(untimed(m) for m in sec["metrics"]):
            raise fail("study", "metrics", _UNTIMED_WHY)
        bad = [m for m in sec["metrics"] if m not in available]
        if bad or not sec["metrics"]:
            raise fail("study", "metrics", f"unknown metric(s) {bad}; available: {', '.join(available)}")
        kw["metrics"] = tuple(sec["metrics"])
    obs = probe.observation_factors()
    if "primary" in sec:
        pr = sec["primary"]
        if set(pr) != {"factor", "baseline", "metric"}:
            raise fail("study", "primary", "expected { factor = ..., baseline = ..., metric = ... }")
        levels = {**{k: [level_text(v) for v in vs] for k, vs in factors.items()}, **obs}
        if pr["factor"] not in levels:
            raise fail("study", "primary", f"factor {pr['factor']!r} is not a factor of this study")
        baseline = matching_level(level_text(pr["baseline"]), levels[pr["factor"]])
        if baseline not in levels[pr["factor"]]:
            raise fail(
                "study", "primary",
                f"baseline {pr['baseline']!r} is not a level of {pr['factor']!r} "
                f"(levels: {', '.join(levels[pr['factor']])})",
            )
        if untimed(pr["metric"]):
            raise fail("study", "primary", _UNTIMED_WHY)
        if pr["metric"] not in available:
            raise fail(
                "study", "primary", f"metric {pr['metric']!r} is unknown; available: {', '.join(available)}"
            )
        if "metrics" in kw and pr["metric"] not in kw["metrics"]:  # the report would never show it
            raise fail("study", "primary", f"metric {pr['metric']!r} is not in study.metrics "
                       f"({', '.join(kw['metrics'])}); add it there")
        if len(levels[pr["factor"]]) < 2:
            raise fail("study", "primary", f"factor {pr['factor']!r} has one level ({baseline}): a "
                       "comparison needs two or more")
        kw["primary"] = (pr["factor"], baseline, pr["metric"])
    eq: dict[str, float] = {}
    for m, margin in (data.get("equivalence") or {}).items():
        if untimed(m):
            raise fail("equivalence", m, _UNTIMED_WHY)
        if m not in available:
            raise fail("equivalence", m, f"unknown metric; available: {', '.join(available)}")
        if "metrics" in kw and m not in kw["metrics"]:
            raise fail("equivalence", m, f"not in study.metrics ({', '.join(kw['metrics'])}); add it there")
        if not _is_num(margin) or margin <= 0:
            raise fail("equivalence", m, f"expected a finite margin > 0, got {margin!r}")
        eq[m] = float(margin)
    kw["equivalence"] = eq
    try:
        spec = StudySpec(path=path, **kw)
    except TypeError as exc:  # pragma: no cover - every key is validated above
        raise ConfigError(f"{path}: {exc}") from None
    if kind == "search":
        for point in spec.points():
            if spec.setting(point, "train") and spec.setting(point, "finetune_steps"):
                table = "factors" if "finetune_steps" in factors else "fixed"
                raise fail(table, "finetune_steps", "train = on samples the fine-tune; it cannot also "
                           "fix finetune_steps (use 0 there)")
    return spec


def _norm(v: Any) -> Any:
    """Levels as stored: "on"/"off" become booleans, ints stay ints, floats floats."""
    if v in ("on", "off"):
        return v == "on"
    return v


def _windows(values: Any, streams: Any, fail: Any) -> tuple[str, ...]:
    """``windows = ["x,y,w,h", ...]`` (or ``[[x, y, w, h], ...]``, the same as integers): one stream each,
    so ``streams`` (when given) must agree. Stored as strings either way, so the two spellings of one
    window give the same study."""
    from deltatune.data.video import parse_window
    from deltatune.errors import VideoError

    def _text(v: Any) -> Any:
        if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            return ",".join(str(x) for x in v)
        return v

    written = values  # as the file writes them, for a message
    if isinstance(values, list):
        values = [_text(v) for v in values]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise fail(f'expected a non-empty list of "x,y,w,h" strings or [x, y, w, h] integer lists, got '
                   f"{values!r}")
    try:
        wins = tuple(str(parse_window(v)) for v in values)
    except VideoError as exc:
        raise fail(str(exc)) from None
    twice = next((i for i, w in enumerate(wins) if w in wins[:i]), None)
    if twice is not None:  # two identical crop streams: one stream scored twice, as if it were two
        first, again = written[wins.index(wins[twice])], written[twice]
        said = f"{first!r}" if first == again else f"{first!r} (again as {again!r})"
        raise fail(f"lists the crop window {said} twice; each window is one stream: list it once")
    if streams is not None and streams != len(wins):
        raise fail(f"{len(wins)} windows are {len(wins)} streams, but streams = {streams}; drop streams")
    return wins


def _segments(values: list[Any], fail: Any) -> tuple[Segment, ...]:
    if not values:
        raise fail('expected a non-empty list of "video@first-frame" segments')
    out = []
    for v in values:
        try:
            out.append(parse_segment(v))
        except ValueError as exc:
            raise fail(str(exc)) from None
    return tuple(out)
