"""Delta-aware fine-tuning: teach a pretrained network to change less between consecutive frames.

A delta network's speed depends on how much each non-linearity's output changes from frame to frame.
:func:`finetune` fine-tunes a pretrained zoo model on consecutive frames of the user's own video, with
no labels: the target is the *original* dense model's output on the same frames (distillation), so the
fine-tuned network stays close to what the user had. Two optional terms make it delta-friendly:

* ``sparsity_penalty`` (λ): a normalised L1 penalty on frame-to-frame changes at the non-linearities, as
  delta networks for RNNs do (Neil et al., 2017): for each non-linear module output ``y``,
  ``mean |y(t+1) - y(t)| / (mean |y(t)| + ε)``, averaged over the modules.
* ``truncation_aware``: the training forward pass truncates as the delta network will (DeltaCNN's rule
  at threshold ``threshold``, :func:`deltatune.delta.rule.pixel_score`): the second frame of each pair
  propagates, per pixel, only the changes whose score is above the threshold. The firing decision has no
  gradient (straight-through); the changes that fire do.

Loss per step, on a batch of ``(frame t, frame t+1)`` pairs from random streams::

    L = D(student(x), dense(x)) + λ · S

with ``D`` the heatmap MSE (×1000, pose) or the KL divergence of the class distributions (classifiers).
Batch-norm statistics stay frozen and dropout off (eval mode: a few frames of one video must not
re-estimate them, and every step is a function of the seed). Training is
seeded: the pairs of step ``k`` come from a generator seeded by ``(seed, k)``, so a run resumed from its
checkpoint gives the same weights as an uninterrupted one. Checkpoints (weights, optimizer, step,
losses) are written atomically to ``<out>.ckpt``; the final weights to ``out`` (float32 ``state_dict``,
loadable with ``--weights FILE``).

The learning rate defaults to the model's (:func:`default_lr`): 1e-4 (AdamW), and 1e-6 for ``blazepose``,
whose converted TFLite weights a 1e-4 step wrecks (0.0087 -> 2.4e4 in one step, 30-46 PCK points of its
own keypoints lost; gradient clipping does not help, as AdamW's step does not scale with the gradient).
A run that blows up stops with :class:`FinetuneDiverged` and writes no weights: a step whose objective is
not finite or whose distillation loss reaches :data:`EXPLODED_RATIO` times a constant output's
(:func:`constant_output_loss`), or final weights at :data:`LOST_RATIO` times it on step 1's frame pairs.
It removes the checkpoint it wrote or resumed from, too: resumed with the same settings, that checkpoint
repeats the same seeded steps into the same blow-up (or, with more ``--steps``, continues from lost
weights), and with a lower rate it is refused as another configuration, so it can only mislead.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deltatune._atomic import atomic_torch_save
from deltatune.errors import ConfigError, DeltatuneError, at_least, check_ranges, non_negative, positive
from deltatune.train.checkpoints import check_not_past, checkpoint_path, load_checkpoint
from deltatune.train.seeds import derived_seed, seeded_generator

__all__ = [
    "DEFAULT_LR",
    "FinetuneConfig",
    "FinetuneDiverged",
    "FinetuneResult",
    "constant_output_loss",
    "default_lr",
    "finetune",
    "output_loss",
    "nonlinear_modules",
    "temporal_change",
    "OPTIMIZERS",
]

log = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
#: The learning rate of a model whose card names none (:func:`default_lr`).
DEFAULT_LR = 1e-4
#: A step whose distillation loss is this many times that of a constant output (the teacher's mean, see
#: :func:`constant_output_loss`) on the same frames has blown up: the run stops there
#: (:class:`FinetuneDiverged`). Measured, the largest ratio of a run: 0.05 for the tests' random-weight
#: hrnet_tiny (AdamW 3e-3 and 1e-2, penalty 1), 0.89 for hrnet at AdamW 1e-4 (at step 1, recovering to
#: 0.02 by step 30), 1.2 for blazepose at AdamW 1e-4 (wrecked, but bounded: AdamW's steps are); SGD on
#: blazepose at 1e-5 and 1e-4 reached 334 and 2005 at step 3 and 1e19 later, AdamW 0.1 on hrnet_tiny 1.8e4
#: at step 2.
EXPLODED_RATIO = 10.0
#: Final weights whose distillation loss, on step 1's frame pairs, is at least this many times a constant
#: output's predict the original's output no better than a constant: they are not written. Runs that
#: recover end far below (hrnet at lr 1e-4: 0.02-0.12 after 10-30 steps, after 0.89 at step 1); blazepose
#: at AdamW 1e-4 ended at 1.29 after 2 steps (vtest frames 0-3, batch 1), its confident keypoints moved
#: 10 heatmap cells on average, half of them by more than one.
LOST_RATIO = 1.0


class FinetuneDiverged(DeltatuneError):
    """The fine-tuning objective blew up (not finite, or its distillation part far beyond a constant
    output's): the run stopped there, wrote no weights and removed its checkpoint."""


def default_lr(model: str, weights: str = "default") -> float:
    """The learning rate of a fine-tune of ``model`` when none is given: its card's ``finetune_lr`` (with
    ``weights="default"``, the card of the variant those weights are, where the model has one), else
    :data:`DEFAULT_LR`. An unknown model gets :data:`DEFAULT_LR`; loading it says what is wrong.

    Why a model may need its own: AdamW moves every weight by about the learning rate on every step,
    whatever the size of its gradient (gradient clipping changes nothing there), so what a rate does
    depends on how large the weights are against the activations they multiply. BlazePose's weights are
    a TFLite graph's, batch norm folded in, over activations averaging 26-66 (up to 285) at its 1x1
    expansion convolutions; at 1e-4 one step lost 46 PCK points of its own dense keypoints (see the
    ``blazepose`` card).
    """
    from deltatune_models import model_card

    try:
        card = model_card(model)
        if weights == "default" and card.default_variant and card.finetune_lr is None:
            card = model_card(card.default_variant)
    except DeltatuneError:
        return DEFAULT_LR
    return DEFAULT_LR if card.finetune_lr is None else float(card.finetune_lr)


#: The non-linear module types whose outputs are penalised and truncated (the truncation points a
#: converted network gets at module call sites).
NONLINEAR_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.Hardtanh,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Sigmoid,
    nn.Tanh,
)


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that determines a fine-tuning run (stored in its checkpoint)."""

    model: str = "hrnet"
    weights: str = "default"
    video: str | None = None
    #: crop windows of ``video`` ("x,y,w,h"), one stream each; empty: the video's default windows
    windows: tuple[str, ...] = ()
    start: int = 0
    frames: int = 40
    #: ``None``: the model's default, :func:`default_lr` (1e-4 for most; smaller where the weights need it)
    lr: float | None = None
    weight_decay: float = 0.0
    steps: int = 100
    batch_size: int = 4
    optimizer: str = "adam"
    sparsity_penalty: float = 0.0
    truncation_aware: bool = False
    threshold: float = 0.02
    seed: int = 0
    checkpoint_every: int = 25

    def __post_init__(self) -> None:
        if self.lr is None:  # resolved here, so a checkpoint and a cache key record the rate that ran
            object.__setattr__(self, "lr", default_lr(self.model, self.weights))

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values no run can use (before any model work)."""
        check_ranges("fine-tuning settings", {
            "--lr": positive(self.lr),
            "--weight-decay": non_negative(self.weight_decay),
            "--steps": at_least(self.steps, 1),
            "--batch-size": at_least(self.batch_size, 1),
            "--sparsity-penalty": non_negative(self.sparsity_penalty),
            "--threshold": non_negative(self.threshold),
            "--frames": at_least(self.frames, 2),
            "--start": at_least(self.start, 0),
            "checkpoint_every": at_least(self.checkpoint_every, 1),
        })
        from deltatune.data.video import parse_window

        for w in self.windows:
            parse_window(w)  # a malformed window is a one-line error naming it
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        from deltatune.workload import refuse_detector

        refuse_detector(self.model, "fine-tuning", "the detector's head trains with `deltatune detect train`")

    @property
    def moves_weights(self) -> bool:
        """Whether training can change the weights: without a sparsity penalty, truncation or weight decay
        the target is the model's own output, so the loss and its gradient are 0 from the first step on."""
        return self.sparsity_penalty > 0 or self.truncation_aware or self.weight_decay > 0

    def to_json(self) -> str:
        """The settings as JSON (a checkpoint's identity). ``windows`` is left out when empty, so runs and
        cached weights made before the field existed keep their identity."""
        d = asdict(self)
        d["windows"] = list(d["windows"])
        if not d["windows"]:
            del d["windows"]
        return json.dumps(d, sort_keys=True)


@dataclass(frozen=True)
class FinetuneResult:
    """What a run produced: the weights file, steps done, per-step losses and their parts, wall time."""

    weights: Path
    checkpoint: Path
    steps: int
    losses: tuple[float, ...]
    distill_losses: tuple[float, ...]
    sparsity: tuple[float, ...]
    wall_time_s: float
    #: the objective and the frame-to-frame change of the final weights on step 1's frame pairs, the
    #: pairs ``losses[0]`` and ``sparsity[0]`` were measured on (each step draws other pairs, so the last
    #: step's values against the first's compare frames, not weights); ``None`` when no step ran
    end_loss: float | None = None
    end_change: float | None = None
    #: the steps the checkpoint it resumed from held (0: a run from the start); ``steps`` counts them too,
    #: ``wall_time_s`` does not
    resumed_at: int = 0


def nonlinear_modules(model: nn.Module) -> list[nn.Module]:
    """The model's non-linear modules (each instance once; a reused instance is hooked once)."""
    return [m for m in model.modules() if isinstance(m, NONLINEAR_TYPES)]


def output_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Distillation loss against the dense model's output: heatmap MSE ×1000 (4-D outputs, as the pose
    distillation's), or KL(target ‖ pred) of the class distributions (2-D logits)."""
    if pred.dim() == 2:
        return F.kl_div(
            F.log_softmax(pred, dim=1), F.log_softmax(target, dim=1), log_target=True, reduction="batchmean"
        )
    return 1000.0 * 0.5 * (pred.float() - target.float()).pow(2).mean()


def constant_output_loss(target: Tensor) -> Tensor:
    """:func:`output_loss` of an output that carries no information, against ``target``: its mean
    everywhere (heatmaps: 500 × the target's variance; logits: the KL divergence from the uniform
    distribution). The scale a distillation loss is judged by: a student that scores worse than this has
    lost everything its teacher knew."""
    t = target.detach().float()
    return output_loss(t.mean().expand_as(t), t)


def temporal_change(y: Tensor, pairs: int) -> Tensor:
    """Normalised L1 change between the two halves of a batch ``[y(t); y(t+1)]`` (``pairs`` each)."""
    a, b = y[:pairs], y[pairs:]
    return (b - a).abs().mean() / (a.abs().mean().detach() + 1e-6)


@contextmanager
def _pair_hooks(
    model: nn.Module, pairs: int, *, truncate: float | None, mode: str, changes: list[Tensor]
) -> Iterator[None]:
    """Hooks on every non-linear module for a batch ``[x(t); x(t+1)]``: record the normalised change of
    its output (into ``changes``) and, with ``truncate``, replace the second half by DeltaCNN's
    truncated update (straight-through: the firing mask carries no gradient)."""
    from deltatune.delta.rule import pixel_score

    def hook(_m: nn.Module, _args: Any, y: Any) -> Any:
        if not isinstance(y, Tensor) or y.dim() < 2 or y.shape[0] != 2 * pairs:
            return None
        changes.append(temporal_change(y, pairs))
        if truncate is None:
            return None
        a, b = y[:pairs], y[pairs:]
        d = b - a
        fire = (pixel_score(d.detach(), mode) > truncate).to(d.dtype)
        return torch.cat([a, a + d * fire])

    handles = [m.register_forward_hook(hook) for m in nonlinear_modules(model)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _pair_indices(step: int, seed: int, n_frames: int, n_streams: int, batch: int) -> tuple[Tensor, Tensor]:
    """``(t, stream)`` of the batch's pairs at ``step``: a generator seeded by ``(seed, step)``."""
    g = seeded_generator(seed * 1_000_003 + step)
    t = torch.randint(0, n_frames - 1, (batch,), generator=g)
    s = torch.randint(0, n_streams, (batch,), generator=g)
    return t, s


def _make_optimizer(cfg: FinetuneConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def finetune(
    cfg: FinetuneConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    workload: Any = None,
    stop_after: int | None = None,
    on_step: Callable[[int, float, nn.Module], None] | None = None,
    lr_option: str = "--lr",
) -> FinetuneResult:
    """Fine-tune ``cfg.model`` on consecutive frames (see the module doc) and write the weights to ``out``.

    ``resume`` continues from ``<out>.ckpt`` (same config). ``workload`` (a loaded
    :class:`~deltatune.workload.Workload`) skips decoding. ``stop_after`` ends the run after that many
    steps in total without writing final weights (an interrupted run, for tests). ``on_step(step, loss,
    model)`` is called after every step with the model being trained; an exception it raises stops the run
    (the last checkpoint stays; no final weights are written). ``lr_option``: how the caller's user sets
    the learning rate (``--lr`` for ``deltatune finetune``, ``--train-lr`` for a ``--train`` search, a
    study file's ``lr``), named by :class:`FinetuneDiverged`'s message, which tells them to lower it.
    """
    from tqdm.auto import tqdm

    from deltatune.data.video import parse_window
    from deltatune.workload import load_workload

    cfg.validate()
    out = Path(out)
    ckpt = checkpoint_path(out)
    if workload is None:
        workload = load_workload(
            cfg.model,
            weights=None if cfg.weights == "none" else cfg.weights,
            video=cfg.video,
            frames=cfg.frames,
            start=cfg.start,
            windows=[parse_window(w) for w in cfg.windows] or None,
            frames_as_range=True,
        )
    frames: Tensor = workload.frames  # [T, S, C, H, W]
    n_frames, n_streams = int(frames.shape[0]), int(frames.shape[1])
    teacher = workload.model.eval()  # the original dense model: the target, never trained
    if not nonlinear_modules(teacher):
        raise ConfigError(
            f"--model {cfg.model}: has no non-linear modules, so a delta network has no truncation points "
            "to fine-tune for"
        )
    torch.manual_seed(derived_seed(cfg.seed))

    student = copy.deepcopy(teacher)
    params = list(student.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = _make_optimizer(cfg, params)
    step, losses, dl, sp = 0, [], [], []
    resumed_at = 0
    owns_ckpt = False  # whether ckpt holds this run's state (resumed from, or saved): a blow-up removes it
    if resume and ckpt.is_file():
        blob = load_checkpoint(ckpt, cfg.to_json(), "fine-tuning", may_differ=("steps", "checkpoint_every"))
        check_not_past(ckpt, int(blob["step"]), cfg.steps, "steps", "--steps")
        student.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        step = resumed_at = int(blob["step"])
        losses, dl, sp = list(blob["losses"]), list(blob["distill"]), list(blob["sparsity"])
        owns_ckpt = True

    def save() -> None:
        nonlocal owns_ckpt
        owns_ckpt = True
        atomic_torch_save(
            {
                "config": cfg.to_json(),
                "model": student.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "losses": losses,
                "distill": dl,
                "sparsity": sp,
            },
            ckpt,
        )

    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="finetune", unit="step",
               leave=False)
    mode = "max"
    student.eval()  # frozen batch-norm statistics, no dropout: gradients flow all the same
    def objective(k: int) -> tuple[Tensor, Tensor, Tensor, float]:
        """``(objective, distillation loss, change term, constant output's distillation loss)`` of the
        student on step ``k``'s frame pairs."""
        t, s = _pair_indices(k, cfg.seed, n_frames, n_streams, cfg.batch_size)
        x = torch.cat([frames[t, s], frames[t + 1, s]])  # [2B, C, H, W]: frame t, then frame t+1
        with torch.no_grad():
            target = teacher(x)
        changes: list[Tensor] = []
        with _pair_hooks(
            student,
            cfg.batch_size,
            truncate=cfg.threshold if cfg.truncation_aware else None,
            mode=mode,
            changes=changes,
        ):
            pred = student(x)
        d_loss = output_loss(pred, target)
        s_term = torch.stack(changes).mean() if changes else pred.new_zeros(())
        loss = d_loss + cfg.sparsity_penalty * s_term if cfg.sparsity_penalty > 0 else d_loss
        return loss, d_loss, s_term, float(constant_output_loss(target))

    def check(loss: float, d_loss: float, scale: float, limit: float, where: str) -> None:
        """Raise :class:`FinetuneDiverged` when ``loss`` (the objective, ``where``) is not finite or its
        distillation part ``d_loss`` reached ``limit`` times ``scale``, the constant output's on the same
        frames."""
        if math.isfinite(loss) and not (scale > 0 and d_loss >= limit * scale):
            return
        first = f" (step 1: {losses[0]:.3g})" if losses else ""
        what = (f"the objective is {loss}" if not math.isfinite(loss) else
                f"the objective is {loss:.3g}{first}, its distillation part {d_loss / scale:.3g}x that of a "
                "constant output")
        own = default_lr(cfg.model, cfg.weights)
        if not losses:  # no step taken: the weights are the original ones, the rate is not the cause
            hint = "that is the original weights' objective on these frames: check the video and --weights"
        else:
            hint = f"lower {lr_option}" + (f" ({cfg.model}'s default is {own:g})" if cfg.lr > own else "")
        removed = ""
        if owns_ckpt:  # see the module doc: no later run can use it
            ckpt.unlink(missing_ok=True)
            removed = f", and its checkpoint {ckpt} removed (a resume would repeat the blow-up)"
        raise FinetuneDiverged(
            f"fine-tuning {cfg.model} blew up {where} at {lr_option} {cfg.lr:g} ({cfg.optimizer}): {what}; "
            f"no weights written to {out}{removed}; {hint}"
        )

    try:
        while step < end:
            loss, d_loss, s_term, scale = objective(step)
            check(float(loss.detach()), float(d_loss.detach()), scale, EXPLODED_RATIO,
                  f"at step {step + 1} of {cfg.steps}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(float(loss.detach()))
            dl.append(float(d_loss.detach()))
            sp.append(float(s_term.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if on_step is not None:
                on_step(step, losses[-1], student)
            if step % cfg.checkpoint_every == 0 or step == end:
                save()
    finally:
        bar.close()
    end_loss = end_change = None
    if step >= cfg.steps:
        if losses:  # the final weights on step 1's pairs: a before/after on the same frames
            with torch.no_grad():
                last, last_d, change, scale = objective(0)
            end_loss, end_change = float(last), float(change)
            check(end_loss, float(last_d), scale, LOST_RATIO,
                  f"by the end of its {step} steps (the final weights on step 1's frame pairs)")
        state = {
            k: v.detach().clone()
            for k, v in student.state_dict().items()
            if not k.endswith("num_batches_tracked")
        }
        if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
            check(math.nan, math.nan, 0.0, LOST_RATIO, f"by the end of its {step} steps (weights not finite)")
        atomic_torch_save(state, out)
    return FinetuneResult(out, ckpt, step, tuple(losses), tuple(dl), tuple(sp), time.perf_counter() - t0,
                          end_loss, end_change, resumed_at)
