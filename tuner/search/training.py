"""Training hyperparameters in the search: fine-tuned weights per trial, cached and stopped early.

``deltatune search --train`` samples, in every trial and next to the thresholds, a fine-tuning
configuration (:class:`TrainSpace`: learning rate, weight decay, steps, sparsity penalty,
truncation-aware on/off; ``steps = 0`` keeps the original weights). :class:`Trainer` turns a sampled
configuration into weights with :func:`deltatune.train.finetune.finetune` on frames of the search's video
that the search does not score (default: the 40 frames right after its clip), and caches them on disk
per configuration (``<data dir>/cache/finetune/<key>.pt``), so trials that share a configuration (and
re-runs) reuse them. Every trial is scored against the **original** model's dense predictions (the
evaluator's reference never changes), so a fine-tune that drifts from the original pays for it in the
accuracy objective.

Early stopping: Optuna's pruners need ``trial.report``, which Optuna does not support for
multi-objective studies. Instead a fine-tune is stopped as soon as it cannot give a feasible trial: at
half its steps and at the end, the *dense* fine-tuned model is scored against the original on the tuning
frames; truncation only adds to that loss, so when it already exceeds the accuracy budget (or the training
loss is not finite) the fine-tune stops, the configuration is remembered as hopeless, and the trial (and
every later trial with that configuration) is told ``PRUNED``. A search with a ``timeout`` also stops a
running fine-tune at the deadline (that trial is pruned too, and the fine-tune resumes from its
checkpoint when a later search asks for it), so a wall-clock budget holds for ``--train`` searches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deltatune._atomic import atomic_write_text
from deltatune.errors import ConfigError, Rule, at_least, check_ranges, non_negative, positive
from deltatune.train.finetune import FinetuneConfig

if TYPE_CHECKING:
    import optuna

    from deltatune.search.objective import Evaluator

__all__ = [
    "TrainSpace",
    "Trainer",
    "HopelessFinetune",
    "DivergedFinetune",
    "OutOfTime",
    "finetune_of_attrs",
    "cache_dir",
    "ATTR",
]

log = logging.getLogger(__name__)

#: Trial user attribute holding the trial's fine-tuning configuration (``None``: original weights).
ATTR = "finetune"
#: Default number of fine-tuning frames (taken right after the search's clip).
DEFAULT_TRAIN_FRAMES = 40


class HopelessFinetune(Exception):
    """A fine-tune that cannot give a feasible trial (its reason in the message)."""


class DivergedFinetune(HopelessFinetune):
    """A fine-tune whose objective blew up (:class:`~deltatune.train.finetune.FinetuneDiverged`): the one
    hopeless kind that a lower learning rate cures, so the search names it in its summary."""


class OutOfTime(HopelessFinetune):
    """A fine-tune stopped at the search's wall-clock deadline (not remembered: a later search with more
    time resumes it from its checkpoint)."""


#: Environment variable naming another folder for the fine-tuned weights cache.
CACHE_ENV = "DELTATUNE_FINETUNE_CACHE"


def cache_dir() -> Path:
    """Where fine-tuned weights are cached (one file per configuration): ``$DELTATUNE_FINETUNE_CACHE``, or
    ``<data dir>/cache/finetune``."""
    import os

    from deltatune.data.assets import data_dir

    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else data_dir() / "cache" / "finetune"


def _each(values: Sequence[Any], rule: Callable[[Any], Rule]) -> Rule:
    """``rule`` applied to every value of a list option: the values that break it, and what each must be."""
    bad = [v for v in values if not rule(v)[1]]
    return ",".join(map(str, bad)), not bad, rule(1)[2]


#: The default ``--train-lr`` levels, as multiples of the model's own fine-tuning rate (:func:`default_lrs`).
LR_LEVELS = (0.1, 0.3, 1.0)


def default_lrs(model: str, weights: str | None = "default") -> tuple[float, ...]:
    """The learning rates a ``--train`` search samples when none are given: :data:`LR_LEVELS` times the
    model's own fine-tuning rate (:func:`deltatune.train.finetune.default_lr`). That is 1e-5, 3e-5 and 1e-4
    for most models, and 1e-7, 3e-7 and 1e-6 for ``blazepose``, whose weights one step at 1e-5 or more
    wrecks (every trial of the general levels was pruned as a blown-up fine-tune)."""
    from deltatune.train.finetune import default_lr

    own = default_lr(model, str(weights))
    return tuple(float(f"{k * own:.12g}") for k in LR_LEVELS)  # 3e-05, not 2.9999999999999997e-05


@dataclass(frozen=True)
class TrainSpace:
    """The training hyperparameters a trial samples (categorical levels, so that trials share weights).

    ``start``/``frames``: the fine-tuning frames of the search's video. ``steps`` 0 keeps the original
    weights (the search can always fall back to thresholds only). ``threshold``: the truncation threshold
    of a truncation-aware fine-tune (one for every non-linearity). ``seed``: the fine-tune's seed (one
    per search, so equal configurations give equal weights).
    """

    start: int
    frames: int = DEFAULT_TRAIN_FRAMES
    lr: tuple[float, ...] = (1e-5, 3e-5, 1e-4)
    weight_decay: tuple[float, ...] = (0.0, 5e-4, 0.15, 1.0)
    steps: tuple[int, ...] = (0, 15, 30)
    sparsity_penalty: tuple[float, ...] = (0.0, 0.1, 1.0)
    truncation_aware: tuple[bool, ...] = (False, True)
    batch_size: int = 2
    threshold: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        check_ranges("training space", {
            "--train-lr": _each(self.lr, positive),
            "--train-weight-decay": _each(self.weight_decay, non_negative),
            "--train-steps": _each(self.steps, lambda v: at_least(v, 0)),
            "--train-penalty": _each(self.sparsity_penalty, non_negative),
        })
        for name in ("lr", "weight_decay", "steps", "sparsity_penalty", "truncation_aware"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"--train-{name.replace('_', '-')}: need distinct values, got {values}")
        if self.frames < 2 or self.start < 0:
            raise ConfigError(f"--train-frames {self.start}:{self.start + self.frames}: need >= 2 frames")
        if self.batch_size < 1:
            raise ConfigError(f"--train-batch {self.batch_size}: need at least 1")

    @classmethod
    def after(cls, workload: Any, others: Sequence[Any] = (), **kw: Any) -> TrainSpace:
        """The default space of a search on ``workload``: fine-tune on the first frames after its clip
        that overlap no further segment of the same video in ``others`` (each overlap moves the start to
        that segment's end)."""
        space = cls(start=workload.start + workload.frames, **kw)
        for w in sorted(others, key=lambda w: (w.start, w.start + w.frames)):
            if space._overlaps(workload, w):
                space = replace(space, start=max(space.start, w.start + w.frames))
        return space

    def _overlaps(self, workload: Any, w: Any) -> bool:
        """Whether the fine-tuning frames overlap the frames ``w`` scores on ``workload``'s video."""
        from deltatune.workload import shared_frames

        mine = range(self.start, self.start + self.frames)
        return w.video == workload.video and bool(shared_frames(mine, range(w.start, w.start + w.frames)))

    def check_disjoint(self, workload: Any, others: Sequence[Any] = ()) -> None:
        """Refuse fine-tuning frames that overlap the frames the search scores: the clip's (tuning or
        held-out), or those of any further segment on the same video (``others``: ``--also-on``, or an
        ablation's ``score_on``): a fine-tune that saw a stretch would be scored on it too kindly."""
        for w in (workload, *others):
            if self._overlaps(workload, w):
                whose = "the search's frames" if w is workload else f"segment {w.video}@{w.start}'s frames"
                raise ConfigError(
                    f"--train-frames {self.start}:{self.start + self.frames} overlap {whose} "
                    f"{w.start}:{w.start + w.frames}; fine-tune on frames the search does not score"
                )

    def check(self, workload: Any, others: Sequence[Any] = ()) -> None:
        """Cheap checks before any model work: disjoint from the frames the search scores, and the video
        is long enough for the fine-tuning frames."""
        from deltatune.data.video import video_info

        self.check_disjoint(workload, others)
        n = video_info(workload.video_path()).frames
        end = self.start + self.frames
        if n is not None and n < end:
            raise ConfigError(f"--train-frames {self.start}:{end}: {workload.video} has only {n} frames")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSpace:
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def suggest(self, trial: optuna.Trial, workload: Any) -> FinetuneConfig | None:
        """The trial's fine-tuning configuration (``None``: the original weights, when it draws 0 steps or
        a fine-tune that cannot move them)."""
        steps = int(trial.suggest_categorical("train.steps", list(self.steps)))
        lr = float(trial.suggest_categorical("train.lr", list(self.lr)))
        wd = float(trial.suggest_categorical("train.weight_decay", list(self.weight_decay)))
        penalty = float(trial.suggest_categorical("train.sparsity_penalty", list(self.sparsity_penalty)))
        aware = bool(trial.suggest_categorical("train.truncation_aware", list(self.truncation_aware)))
        if steps == 0:
            return None
        cfg = self.config(workload, lr=lr, weight_decay=wd, steps=steps, sparsity_penalty=penalty,
                          truncation_aware=aware)
        return cfg if cfg.moves_weights else None

    def anchor_params(self) -> dict[str, Any]:
        """The training parameters of the search's anchor trials: 0 steps (the original weights) when the
        space has it, so the anchors are the thresholds-only anchors (all 0 is then always feasible)."""
        return {
            "train.steps": 0 if 0 in self.steps else min(self.steps),
            "train.lr": self.lr[0],
            "train.weight_decay": self.weight_decay[0],
            "train.sparsity_penalty": self.sparsity_penalty[0],
            "train.truncation_aware": self.truncation_aware[0],
        }

    def config(self, workload: Any, **kw: Any) -> FinetuneConfig:
        """A :class:`FinetuneConfig` on this space's frames of ``workload``'s video, with ``kw`` set."""
        base = FinetuneConfig(
            model=workload.model,
            weights="none" if workload.weights is None else str(workload.weights),
            video=str(workload.video),
            start=self.start,
            frames=self.frames,
            batch_size=self.batch_size,
            threshold=self.threshold,
            seed=self.seed,
            checkpoint_every=10,
        )
        cfg = replace(base, **kw)
        cfg.validate()
        return cfg


def finetune_of_attrs(attrs: dict[str, Any]) -> FinetuneConfig | None:
    """The fine-tuning configuration recorded on a trial (``None``: it ran the original weights)."""
    d = attrs.get(ATTR)
    return FinetuneConfig(**d) if isinstance(d, dict) else None


@dataclass
class Trainer:
    """Fine-tuned weights for an :class:`~deltatune.search.objective.Evaluator`'s workload, per
    configuration: cached on disk, computed once, stopped when hopeless (see the module docstring).

    ``budget``: the accuracy budget in the model's points (``None``: never stop early). ``windows``: the crop
    windows are the evaluator's, so the fine-tune sees the streams the search scores, at other frames.
    """

    evaluator: Evaluator
    budget: float | None = None
    progress: bool = False
    use_disk_cache: bool = True
    #: ``time.monotonic()`` after which a running fine-tune stops (:class:`OutOfTime`); None: no limit
    deadline: float | None = None
    _frames: torch.Tensor | None = field(default=None, repr=False)
    #: seconds spent fine-tuning in this process, per configuration key
    seconds: dict[str, float] = field(default_factory=dict)
    #: fine-tunes run in this process (the weights not read from the cache)
    trained: int = 0
    #: how the user sets the learning rate of these fine-tunes: a blown-up fine-tune's reason tells them to
    #: lower it (``--train-lr`` in ``deltatune search --train``; a study file's fixed fine-tune: its ``lr``)
    lr_option: str = "--train-lr"

    def key(self, cfg: FinetuneConfig) -> str:
        """Cache key of ``cfg`` on this evaluator's weights and windows."""
        w = self.evaluator.workload
        payload = {"config": json.loads(cfg.to_json()), "weights": w.weights_identity(),
                   "windows": [str(c) for c in w.crop_windows()], "torch": torch.__version__}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]

    def path(self, cfg: FinetuneConfig) -> Path:
        return cache_dir() / f"{self.evaluator.workload.model}-{self.key(cfg)}.pt"

    def _training_frames(self, cfg: FinetuneConfig) -> torch.Tensor:
        if self._frames is None:
            from deltatune.data.video import load_clip, video_info
            from deltatune.workload import preprocess

            ev = self.evaluator
            path = ev.workload.video_path()
            n = video_info(path).frames
            end = cfg.start + cfg.frames
            if n is not None and n < end:
                raise ConfigError(
                    f"--train-frames {cfg.start}:{end}: {ev.workload.video} has only {n} frames"
                )
            clip = load_clip(path, windows=ev.workload.crop_windows() or None,
                             size=tuple(ev.info.input_size), start=cfg.start, count=cfg.frames)
            if clip.shape[0] < cfg.frames:
                raise ConfigError(f"--train-frames {cfg.start}:{end}: {ev.workload.video} has only "
                                  f"{cfg.start + clip.shape[0]} frames")
            self._frames = preprocess(clip, ev.info).contiguous()
        return self._frames

    def weights(self, cfg: FinetuneConfig | None) -> tuple[str | None, dict[str, torch.Tensor] | None]:
        """``(key, state dict)`` of ``cfg`` (``(None, None)``: the original weights).

        Raises :class:`HopelessFinetune` when the configuration cannot give a feasible trial."""
        if cfg is None:
            return None, None
        key, path = self.key(cfg), self.path(cfg)
        marker = path.with_suffix(f".hopeless-{self.budget}.json")
        if self.use_disk_cache and marker.is_file():
            said = json.loads(marker.read_text())
            kind = DivergedFinetune if said.get("diverged") else HopelessFinetune
            raise kind(said.get("reason", "hopeless"))
        if self.use_disk_cache and path.is_file():
            try:
                return key, torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - a corrupt cache entry is recomputed
                log.warning("fine-tuned weights %s unreadable (%s); fine-tuning again", path, exc)
        from deltatune.search.objective import loss_unit
        from deltatune.train.finetune import FinetuneDiverged, finetune
        from deltatune.workload import Workload

        ev = self.evaluator
        frames = self._training_frames(cfg)
        wl = Workload(ev.workload.model, ev.model, ev.info, frames, str(ev.workload.video), [], "", False)
        halfway = max(1, cfg.steps // 2)

        def check(step: int, loss: float, model: torch.nn.Module) -> None:
            if not math.isfinite(loss):
                raise HopelessFinetune(f"training loss {loss} at step {step}")
            if self.deadline is not None and time.monotonic() > self.deadline and step < cfg.steps:
                raise OutOfTime(f"the search's time ran out at fine-tuning step {step} of {cfg.steps}")
            if self.budget is not None and step in (halfway, cfg.steps):
                dense = ev.dense_loss(model)
                if dense > self.budget:
                    raise HopelessFinetune(
                        f"at step {step} the dense fine-tuned model already loses {dense:.2f} "
                        f"{loss_unit(ev.task)} (budget {self.budget})"
                    )

        path.parent.mkdir(parents=True, exist_ok=True)
        self.trained += 1
        t0 = time.perf_counter()
        try:
            try:
                finetune(cfg, path, resume=self.use_disk_cache, progress=self.progress, workload=wl,
                         on_step=check, lr_option=self.lr_option)
            except FinetuneDiverged as exc:  # as hopeless as a non-finite loss: the same seeds blow up again
                raise DivergedFinetune(str(exc)) from None
        except OutOfTime:
            self.seconds[key] = time.perf_counter() - t0
            raise
        except HopelessFinetune as exc:
            self.seconds[key] = time.perf_counter() - t0
            if self.use_disk_cache:
                said: dict[str, Any] = {"reason": str(exc)}
                if isinstance(exc, DivergedFinetune):
                    said["diverged"] = True
                atomic_write_text(marker, json.dumps(said))
                path.with_name(path.name + ".ckpt").unlink(missing_ok=True)
            raise
        self.seconds[key] = time.perf_counter() - t0
        path.with_name(path.name + ".ckpt").unlink(missing_ok=True)
        return key, torch.load(path, map_location="cpu", weights_only=True)

    def apply(self, attrs: dict[str, Any]) -> None:
        """Put the weights a stored trial ran with (its ``finetune`` attribute) on the evaluator."""
        key, state = self.weights(finetune_of_attrs(attrs))
        self.evaluator.use_weights(state, key)
