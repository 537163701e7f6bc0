"""Distil a top-down pose CNN (an HRNet) from BlazePose-full on real video: the default-weights recipe.

The teacher's COCO-17 keypoints on training frames are computed once and cached
(:func:`deltatune.train.teacher.teacher_targets`); each step draws jittered, mirrored, colour-jittered
crops of the training windows (:mod:`deltatune.train.samples`) and fits the student's heatmaps to σ = 2
Gaussians at the teacher's keypoints. Loss per joint, weighted by the teacher's presence:

``L = 1000 · ½ · mean_pixels (ŷ − y)²  +  λ · KL(y / Σy ‖ softmax(ŷ / τ))``

The first term is the official HRNet heatmap MSE (×1000 so it is O(1)); the second (λ = ``ce_weight``,
τ = ``ce_temperature``; 0 disables it) gives every pixel a gradient towards the right location, which
speeds up training from scratch. Both are minimised with the peak at the keypoint, so decoding is the
official argmax.

Training is seeded (student init from ``seed``; the sample order and every augmentation draw from
generators seeded by ``(seed, epoch, sample)``), so a run resumed from its checkpoint continues exactly.
The learning rate is warmed up, then decays (cosine) over the run's length (``epochs``, ``max_steps``):
a checkpoint resumes only at the length it was written with, the longer run would have had another
learning rate at every step after the warm-up.
Checkpoints (model, optimizer, position, loss history) are written atomically to ``<out>.ckpt`` every
``checkpoint_every`` steps and at the end of each epoch; the final weights go to ``out`` as an fp16
``state_dict`` (:func:`export_weights`).

Example::

    cfg = DistillConfig(student="hrnet_w18_small_v2", epochs=8)
    result = distill(cfg, out="models/weights/hrnet_w18_small_v2_blazepose.pt", progress=True)
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deltatune._atomic import atomic_torch_save
from deltatune.errors import ConfigError, at_least, check_ranges, non_negative, positive
from deltatune.train.checkpoints import checkpoint_path, load_checkpoint
from deltatune.train.seeds import derived_seed, seeded_generator
from deltatune.workload import preprocess

from .evaluate import FidelityResult, evaluate_fidelity
from .geometry import Box, person_box
from .samples import AugmentConfig, make_sample
from .teacher import TeacherTargets, check_static_ranges, load_frames, parse_frame_ranges, teacher_targets

__all__ = [
    "DistillConfig",
    "DistillResult",
    "build_student",
    "check_heldout_apart",
    "student_card",
    "distill",
    "distill_loss",
    "export_weights",
    "TEACHERS",
    "DEFAULT_TRAIN_FRAMES",
    "DEFAULT_HELDOUT_FRAMES",
]

log = logging.getLogger(__name__)

TEACHERS: tuple[str, ...] = ("blazepose",)
#: Which crops to train on (see :func:`training_samples`) or evaluate on (see :func:`evaluate_fidelity`).
CROP_MODES: tuple[str, ...] = ("windows", "persons", "both")
#: Training frames: vtest 0–599 every 2nd frame, carphone 0–89. Held out: vtest 650–794 (a 50-frame =
#: 5 s gap after the last training frame, so no held-out frame is a near-copy of a training frame).
DEFAULT_TRAIN_FRAMES = "vtest:0-599:2,carphone:0-89"
DEFAULT_HELDOUT_FRAMES = "vtest:650-794"


@dataclass(frozen=True)
class DistillConfig:
    """Everything that determines a distillation run (stored in every checkpoint).

    ``input_size`` is the student's: a registered ``student`` is distilled at its model card's size, the
    size every other command runs it at (:meth:`validate` refuses another); the default, 256x192, is the
    default student's. Only a ``width`` HRNet, which has no card, takes any size.
    """

    teacher: str = "blazepose"
    student: str = "hrnet_w18_small_v2"
    width: int | None = None
    input_size: tuple[int, int] = (256, 192)
    train_frames: str = DEFAULT_TRAIN_FRAMES
    heldout_frames: str | None = DEFAULT_HELDOUT_FRAMES
    epochs: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 8
    seed: int = 0
    sigma: float = 2.0
    ce_weight: float = 0.5
    ce_temperature: float = 0.1
    warmup_steps: int = 30
    checkpoint_every: int = 25
    max_steps: int | None = None
    bf16: bool = False
    crops: str = "both"
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values no run can use."""
        if self.teacher not in TEACHERS:
            raise ConfigError(f"teacher {self.teacher!r} is not supported (known: {', '.join(TEACHERS)})")
        h, w = self.input_size
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise ConfigError(f"input size {h}x{w}: HRNet needs positive multiples of 32")
        check_ranges("distillation settings", {
            "epochs": at_least(self.epochs, 1),
            "lr": positive(self.lr),
            "weight_decay": non_negative(self.weight_decay),
            "batch_size": at_least(self.batch_size, 1),
            "sigma": positive(self.sigma),
            "ce_weight": non_negative(self.ce_weight),
            "ce_temperature": positive(self.ce_temperature),
            "checkpoint_every": at_least(self.checkpoint_every, 1),
        })
        if self.crops not in CROP_MODES:
            raise ConfigError(f"crops={self.crops!r} must be one of {', '.join(CROP_MODES)}")
        if self.width is not None and self.width < 1:
            raise ConfigError(f"width={self.width} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps={self.max_steps} must be >= 1")
        if self.width is None:
            card = student_card(self)
            if tuple(card.input_size) != tuple(self.input_size):
                ch, cw = card.input_size
                raise ConfigError(
                    f"input size {h}x{w}: student {self.student} runs at {ch}x{cw} (its model card; bench, "
                    "search, predict and finetune feed it that size), so it is distilled at that size: give "
                    f"--input-size {ch}x{cw} or leave it out (--width builds an HRNet for any size)"
                )
        for frames in (self.train_frames, self.heldout_frames):
            if frames:
                check_static_ranges(parse_frame_ranges(frames))

    def to_json(self) -> str:
        """The config as JSON text (tuples become lists)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DistillConfig:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        raw["input_size"] = tuple(raw["input_size"])
        raw["augment"] = AugmentConfig(**raw["augment"])
        return cls(**raw)


def check_heldout_apart(cfg: DistillConfig) -> None:
    """Refuse held-out frames that are training frames too (the same frame of the same video, however
    each names it): a held-out PCK on frames the student learned from would say how well it remembers
    them. One line naming both options' ranges and the frames they share. ``deltatune distill`` checks
    it before any work; :func:`distill` itself does not (a test may score a student on its own frames)."""
    if not cfg.heldout_frames:
        return
    from deltatune.workload import resolve_video, shared_frames

    def video(source: str) -> Path:
        return resolve_video(source)[0].resolve()

    train = parse_frame_ranges(cfg.train_frames)
    for h in parse_frame_ranges(cfg.heldout_frames):
        for t in train:
            both = shared_frames(h.frames, t.frames) if video(h.source) == video(t.source) else range(0)
            if both:
                step = f":{both.step}" if both.step > 1 else ""
                said = (f"frame {both[0]} of {h.source} is" if len(both) == 1
                        else f"frames {both[0]}-{both[-1]}{step} of {h.source} are")
                raise ConfigError(f"--heldout {h} overlaps --frames {t}: {said} in both; hold out frames the "
                                  "student does not train on")


@dataclass(frozen=True)
class DistillResult:
    """What a run produced: the weights file, steps done, per-step losses, wall time, held-out PCK."""

    weights: Path
    checkpoint: Path
    steps: int
    losses: tuple[float, ...]
    wall_time_s: float
    heldout: FidelityResult | None


def build_student(name: str, *, width: int | None = None) -> nn.Module:
    """A randomly initialised 17-joint student: the registered model ``name``, or HRNet-W``width``
    (trained and evaluated on the input :func:`student_card` describes).

    With ``width`` the student is the official pose-HRNet structure (stem 64, 4 bottlenecks, stages of
    1/4/3 modules with 4 basic blocks per branch) at branch widths ``W, 2W, 4W, 8W``.
    """
    from deltatune_models import create_model, model_info

    if width is not None:
        from deltatune_models.hrnet import HRNetCfg, PoseHighResolutionNet, _stages

        return PoseHighResolutionNet(HRNetCfg(**_stages(width)))
    _check_student(name, model_info(name))
    return create_model(name, weights=None)


def _check_student(name: str, info: Any) -> None:
    if info.task != "pose" or info.num_joints != 17:
        raise ConfigError(
            f"student {name!r} must be a 17-joint (COCO) pose model, it is {info.task}/{info.num_joints}"
        )


def student_card(cfg: DistillConfig) -> Any:
    """The student's model card (a :class:`deltatune_models.ModelInfo`): its input size, colour order and
    mean/std, how bench, search, predict and finetune run it (:func:`deltatune.workload.preprocess`), so
    its distilled weights are trained and evaluated on the input they will see. A ``width`` HRNet has no
    card of its own: it takes the HRNet family's preprocessing (RGB, ImageNet mean/std; ``hrnet``'s card)."""
    if cfg.width is not None:
        from deltatune_models.hrnet import MODEL_CARDS

        return MODEL_CARDS["hrnet"]
    from deltatune_models import model_info

    info = model_info(cfg.student)
    _check_student(cfg.student, info)
    return info


def distill_loss(
    pred: Tensor, target: Tensor, weight: Tensor, *, ce_weight: float = 0.1, temperature: float = 0.1
) -> Tensor:
    """Weighted heatmap MSE (×1000) plus ``ce_weight`` × spatial KL (see the module docstring).

    ``pred``/``target`` ``[N, K, h, w]``, ``weight`` ``[N, K]``.
    """
    pred = pred.float()
    mse = 0.5 * (pred - target).pow(2).mean(dim=(2, 3))
    loss = 1000.0 * (mse * weight).mean()
    if ce_weight > 0:
        mass = target.sum(dim=(2, 3))
        use = (mass > 1e-3) & (weight > 0)
        if bool(use.any()):
            p = pred[use].flatten(1) / temperature
            t = target[use].flatten(1)
            t = t / t.sum(dim=1, keepdim=True)
            kl = (t * (t.clamp_min(1e-12).log() - F.log_softmax(p, dim=1))).sum(dim=1)
            loss = loss + ce_weight * (kl * weight[use]).sum() / weight.numel()
    return loss


def export_weights(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s state_dict as fp16 (floating tensors), minus ``num_batches_tracked``, atomically."""
    state = {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).clone()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = Path(path)
    atomic_torch_save(state, path)
    return path


def _lr_at(step: int, total: int, cfg: DistillConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _run_steps(epochs: int, max_steps: int | None, per_epoch: int) -> int:
    """The steps a run of ``epochs`` (``per_epoch`` steps each) stopped at ``max_steps`` takes: the span
    of its learning-rate schedule."""
    return epochs * per_epoch if max_steps is None else min(max_steps, epochs * per_epoch)


def _length_options(epochs: int, max_steps: int | None) -> str:
    """The options that set a run's length, as typed."""
    return f"--epochs {epochs} " + ("and no --max-steps" if max_steps is None else f"--max-steps {max_steps}")


def _resumed_checkpoint(path: Path, cfg: DistillConfig) -> dict[str, Any]:
    """The checkpoint at ``path`` that ``cfg`` continues, or one clear error before any work.

    Its settings must be ``cfg``'s, how often to save and the held-out frames aside. The run's length
    must be the same too: the learning rate decays over the whole run (:func:`_lr_at`), so a resume with
    another length would train on another schedule from the checkpoint's step on, which is neither the
    stored run continued nor the longer run. ``epochs`` and ``max_steps`` may differ where the steps they
    give are the same (the checkpoint records its steps per epoch; one written before it did must match
    both)."""
    exempt = ("epochs", "max_steps", "checkpoint_every", "heldout_frames")
    blob = load_checkpoint(path, cfg.to_json(), "distillation", may_differ=exempt)
    saved = json.loads(blob["config"])
    then = (int(saved["epochs"]), saved["max_steps"])
    now = (cfg.epochs, cfg.max_steps)
    per_epoch = blob.get("per_epoch")
    steps = None if per_epoch is None else (_run_steps(*then, per_epoch), _run_steps(*now, per_epoch))
    if now == then or (steps is not None and steps[0] == steps[1]):
        return blob
    was = _length_options(*then)
    if steps is None:
        said = f"a run with {was}; this one has {_length_options(*now)}"
    else:
        said = f"a {steps[0]}-step run ({was}); this one has {steps[1]} steps"
    raise ConfigError(
        f"{path}: checkpoint of {said}, and the learning rate decays over the run's length, so it cannot "
        f"be resumed at another length: resume with {was}, or remove the checkpoint to train from the start"
    )


def _sample_gen(seed: int, epoch: int, index: int) -> torch.Generator:
    return seeded_generator((seed * 1_000_003 + epoch) * 1_000_033 + index)


def training_samples(targets: TeacherTargets, *, crops: str = "both") -> list[tuple[int, int, Box]]:
    """(range, frame, crop box) triples to train on.

    ``windows``: each default window whose un-jittered crop has a reference person. ``persons``: the
    top-down box (:func:`~deltatune.train.geometry.person_box`) around every person the teacher accepts
    with at least 4 counted joints. ``both``: the union (the recipe of the shipped weights).
    """
    out: list[tuple[int, int, Box]] = []
    if crops in ("windows", "both"):
        out += [
            (ri, fi, targets.windows[ri][wi])
            for ri, fi, wi in targets.samples()
            if targets.primary(ri, fi, targets.windows[ri][wi]) is not None
        ]
    if crops in ("persons", "both"):
        counted = targets.counted()
        for p in range(len(targets.frame)):
            if int(counted[p].sum()) >= 4:
                box = person_box(targets.keypoints[p][counted[p]])
                out.append((int(targets.range_index[p]), int(targets.frame[p]), box))
    return out


def _batch(
    idx: Tensor,
    samples: list[tuple[int, int, Box]],
    targets: TeacherTargets,
    frames: dict[str, Tensor],
    cfg: DistillConfig,
    epoch: int,
    flip_pairs: tuple[tuple[int, int], ...],
) -> tuple[Tensor, Tensor, Tensor]:
    images, heat, weights = [], [], []
    for i in (int(j) for j in idx):
        ri, fi, box = samples[i]
        x, t, w = make_sample(
            frames[str(targets.ranges[ri])][fi],
            box,
            targets,
            ri,
            fi,
            size=cfg.input_size,
            gen=_sample_gen(cfg.seed, epoch, i),
            aug=cfg.augment,
            flip_pairs=flip_pairs,
            sigma=cfg.sigma,
        )
        images.append(x)
        heat.append(t)
        weights.append(w)
    return torch.stack(images), torch.stack(heat), torch.stack(weights)


def distill(
    cfg: DistillConfig,
    *,
    out: str | Path,
    resume: bool = False,
    progress: bool = False,
    cache_dir: str | Path | None = None,
    teacher: nn.Module | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> DistillResult:
    """Train a student on the teacher's keypoints; write ``<out>.ckpt`` while training and ``out`` at the end.

    ``resume=True`` continues from ``<out>.ckpt`` (the same settings required, the run's length ``epochs``
    and ``max_steps`` included: the learning rate's cosine decay spans the whole run; checked before any
    work).
    ``progress`` shows a tqdm bar on stderr. ``teacher`` replaces BlazePose-full (tests);
    ``cache_dir`` holds the teacher-target cache (default ``data_dir()/distill``). ``on_step(step, loss)``
    is called after every optimiser step.
    """
    cfg.validate()
    out = Path(out)
    ckpt_path = checkpoint_path(out)
    blob = _resumed_checkpoint(ckpt_path, cfg) if resume and ckpt_path.is_file() else None
    started = time.perf_counter()
    train_ranges = parse_frame_ranges(cfg.train_frames)
    frames = load_frames(train_ranges)
    targets = teacher_targets(train_ranges, frames=frames, cache_dir=cache_dir, teacher=teacher)

    torch.manual_seed(derived_seed(cfg.seed))
    student = build_student(cfg.student, width=cfg.width).train()
    card = student_card(cfg)
    from deltatune_models.hrnet import FLIP_PAIRS_COCO

    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    samples = training_samples(targets, crops=cfg.crops)
    if not samples:
        raise ConfigError(f"the teacher found no person in any training window of {cfg.train_frames}")
    n = len(samples)
    per_epoch = max(1, n // cfg.batch_size)
    total = _run_steps(cfg.epochs, cfg.max_steps, per_epoch)
    step, losses, elapsed_before = 0, [], 0.0
    if blob is not None:
        if int(blob.get("per_epoch", per_epoch)) != per_epoch:  # the teacher's targets changed since
            raise ConfigError(
                f"{ckpt_path}: checkpoint of a run with {blob['per_epoch']} steps an epoch, this one has "
                f"{per_epoch} (the teacher's persons on {cfg.train_frames} differ from that run's); remove "
                "the checkpoint to train from the start"
            )
        student.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        step = int(blob["step"])
        losses = [float(v) for v in blob["losses"]]
        elapsed_before = float(blob["wall_time_s"])
        log.info("resumed %s at step %d", ckpt_path, step)

    def save() -> None:
        atomic_torch_save(
            {
                "model": student.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "per_epoch": per_epoch,
                "losses": torch.tensor(losses, dtype=torch.float64),
                "wall_time_s": elapsed_before + time.perf_counter() - started,
                "config": cfg.to_json(),
            },
            ckpt_path,
        )

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=step, disable=not progress, desc="distill", unit="step")
    try:
        while step < total:
            epoch, k = divmod(step, per_epoch)
            perm = torch.randperm(n, generator=seeded_generator(cfg.seed * 7919 + epoch))
            images, heat, weight = _batch(
                perm[k * cfg.batch_size : (k + 1) * cfg.batch_size],
                samples,
                targets,
                frames,
                cfg,
                epoch,
                FLIP_PAIRS_COCO,
            )
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total, cfg)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                pred = student(preprocess(images, card))
            loss = distill_loss(pred, heat, weight, ce_weight=cfg.ce_weight, temperature=cfg.ce_temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            value = float(loss.detach())
            losses.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", epoch=epoch)
            if on_step is not None:
                on_step(step, value)
            if step % cfg.checkpoint_every == 0 or step % per_epoch == 0 or step == total:
                save()
    finally:
        bar.close()

    student.eval()
    export_weights(student, out)
    heldout = None
    if cfg.heldout_frames:
        heldout = evaluate_student(student, cfg, cache_dir=cache_dir, teacher=teacher)
    return DistillResult(
        weights=out,
        checkpoint=ckpt_path,
        steps=step,
        losses=tuple(losses),
        wall_time_s=elapsed_before + time.perf_counter() - started,
        heldout=heldout,
    )


def evaluate_student(
    model: nn.Module,
    cfg: DistillConfig,
    *,
    frames_spec: str | None = None,
    alpha: float = 0.2,
    crops: str = "windows",
    cache_dir: str | Path | None = None,
    teacher: nn.Module | None = None,
) -> FidelityResult:
    """Held-out PCK@``alpha`` of ``model`` vs the teacher on ``frames_spec`` (default ``cfg.heldout_frames``),
    on the default windows or on person boxes (``crops``, see :func:`evaluate_fidelity`)."""
    spec = frames_spec or cfg.heldout_frames
    if not spec:
        raise ConfigError("no held-out frames to evaluate on")
    ranges = parse_frame_ranges(spec)
    frames = load_frames(ranges)
    targets = teacher_targets(ranges, frames=frames, cache_dir=cache_dir, teacher=teacher)
    return evaluate_fidelity(
        model,
        targets,
        frames,
        input_size=cfg.input_size,
        preprocessing=student_card(cfg),
        alpha=alpha,
        crops=crops,
    )
