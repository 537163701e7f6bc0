"""The two search objectives: accuracy loss (minimise) and speedup (maximise) of one threshold setting.

Pose models: accuracy loss is ``100 · (1 − PCK@0.2(delta, reference))`` in PCK percentage points, where
the reference is the dense model's own decoded keypoints on the same frames ("fidelity",
docs/design.md#metrics): 1.0 means one PCK point lost. Only the dense keypoints that are present count
(heatmap peak above the model's presence threshold; :mod:`deltatune.metrics.fidelity`), unless the
workload says ``joints="all"``. With labels, the loss is dense PCK minus delta PCK against them, over the
labels' visible keypoints. Classifiers: accuracy loss is ``100 ·`` the share of samples whose top-1 class
differs from the dense model's, in top-1 points (:mod:`deltatune.metrics.classification`). Frame 0 of
every stream runs dense in a delta network and is exactly right, so it is left out of both the accuracy
and the speed numbers (they describe a running stream).

Speedup is, by ``speed``: ``macs`` the MAC speedup (dense MACs / delta MACs over the same frames);
``latency`` the wall-clock speedup predicted by the latency model (:mod:`deltatune.delta.latency`, fitted
once per model and machine on timed random configurations and cached in ``<data dir>/latency/``; no
timing per trial, so it is free of noise); ``measured`` the timed speedup of each trial (median of two
passes, noisy on a shared machine). Both wall-clock kinds run the ``sparse`` backend and compare against
the faster dense layout.

The latency model and the calibration table it prices with hold for one thread count: the evaluator's
``price_threads`` (default: this process's). ``search --jobs N`` workers run with fewer threads each
than the command that re-times the front and the user who deploys the setting, so they price at the
command's thread count: their per-trial runs are untimed, and only the table and the model differ.

Dense reference keypoints cost a full dense pass; they are cached per (model, weights, video, windows,
frames) in memory and on disk (``<data dir>/cache/reference/<key>.pt``) so trials and re-runs reuse them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from deltatune._atomic import atomic_torch_save, atomic_write_text
from deltatune.errors import ConfigError
from deltatune.search.study_workload import MIN_FRAMES, StudyWorkload, load_model

if TYPE_CHECKING:
    from deltatune.delta.thresholds import ThresholdFile

__all__ = [
    "Evaluation", "Evaluator", "SPEEDS", "SPEED_NAMES", "resolve_speed", "PCK_ALPHA", "metric_of",
    "loss_unit", "model_loss_unit",
]

log = logging.getLogger(__name__)

#: What each ``--speed`` prices a trial by, as an axis names it ("<name> speedup").
SPEED_NAMES = {"macs": "MAC", "latency": "predicted wall-clock", "measured": "measured wall-clock"}
SPEEDS = tuple(SPEED_NAMES)
PCK_ALPHA = 0.2
#: The largest MAC speedup a trial scores (``--speed macs``). A setting that does no multiply-adds at all
#: on the frames (a clip where almost nothing moves: every change truncated) has an unbounded one; counted
#: as 1 MAC it scored about 7.7e9x, and the front, its hypervolume and the exported file carried that.
#: No CPU run comes near this: the fixed per-frame costs bound the wall clock long before.
MAC_SPEEDUP_CAP = 100.0
Split = Literal["tune", "heldout", "all"]
#: The splits an :class:`Evaluator` scores: tuning frames, held-out frames, and the whole clip.
SPLITS = ("tune", "heldout", "all")


def metric_of(task: str) -> str:
    """The accuracy metric a search scores a ``task`` model by: ``PCK@0.2`` (pose) or ``top-1``."""
    return f"PCK@{PCK_ALPHA}" if task == "pose" else "top-1"


def loss_unit(task: str) -> str:
    """The unit of a ``task`` model's accuracy loss and budget: ``PCK points`` or ``top-1 points``."""
    return "PCK points" if task == "pose" else "top-1 points"


def model_loss_unit(model: str) -> str:
    """:func:`loss_unit` of a registered model (a study's ``model``); plain ``points`` for a name that is
    not registered in this installation."""
    from deltatune.errors import ModelNotFoundError
    from deltatune_models import model_info

    try:
        return loss_unit(model_info(model).task)
    except ModelNotFoundError:  # a model of another installation: the study still opens
        return "points"


def resolve_speed(speed: str) -> tuple[str, str | None]:
    """``(speed metric used, notice or None)``: a valid name is used as is."""
    if speed not in SPEEDS:
        raise ConfigError(f"--speed {speed!r} is unknown; choose one of {', '.join(SPEEDS)}")
    return speed, None


@dataclass(frozen=True)
class Evaluation:
    """Objective values of one threshold setting (a :class:`~deltatune.delta.thresholds.ThresholdFile`)
    on one split."""

    accuracy_loss: float
    speedup: float
    #: the metric's value: PCK (pose) or top-1 agreement with the dense model (classification)
    pck: float
    split: str
    frames: int
    streams: int
    extra: dict[str, Any] = field(default_factory=dict)
    #: read from the evaluator's memo: an earlier call scored the same setting on the same weights and
    #: split (see :meth:`Evaluator.evaluate`), so nothing ran
    repeated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy_loss": self.accuracy_loss,
            "speedup": self.speedup,
            "pck": self.pck,
            "split": self.split,
            "frames": self.frames,
            "streams": self.streams,
        }


def _heatmaps(out: Any) -> torch.Tensor:
    from deltatune.metrics import heatmaps_of

    try:
        return heatmaps_of(out)
    except TypeError as exc:
        raise ConfigError(f"cannot score this model: {exc}") from None


def _with_peaks(coords: torch.Tensor, peaks: torch.Tensor) -> torch.Tensor:
    """Decoded ``(coords [N, K, 2], peaks [N, K])`` as one ``[N, K, 3]`` tensor of ``(x, y, peak)``."""
    return torch.cat([coords, peaks.unsqueeze(-1).to(coords.dtype)], dim=-1)


def _cache_dir() -> Path:
    from deltatune.data.assets import data_dir

    return data_dir() / "cache" / "reference"


_MEMORY_CACHE: dict[str, torch.Tensor] = {}


def _costs_digest(costs: dict[str, Any]) -> str:
    """16 hex digits identifying the calibrated layer costs ``{signature: LayerCalibration}`` of a
    network: a latency model fitted on other costs (before a ``calibrate --force``) prices with stale
    coefficients (one conv's break-even moved from 0.27 to 0.17 in such a re-measurement)."""
    text = json.dumps({k: v.to_dict() for k, v in sorted(costs.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: unchanged), then restore."""
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


class Evaluator:
    """Builds one delta network for a :class:`StudyWorkload` and scores threshold settings on it.

    Build once per worker process (conversion of HRNet-W32 takes seconds), then call :meth:`evaluate`
    per trial; the network is reset and its statistics cleared every time.

    Example::

        from deltatune.delta import ThresholdFile

        ev = Evaluator(StudyWorkload("hrnet_tiny", weights=None, frames=8))
        cfg = ThresholdFile({n: 0.05 for n in ev.threshold_names})
        print(ev.evaluate(cfg).accuracy_loss)
    """

    def __init__(
        self,
        workload: StudyWorkload,
        *,
        use_disk_cache: bool = True,
        speed: str = "macs",
        require_keypoints: bool = True,
        price_threads: int | None = None,
        refit_latency: bool = False,
    ) -> None:
        from deltatune.data.video import load_clip
        from deltatune.workload import preprocess
        from deltatune_models import model_info

        workload.check_task()
        self.workload = workload
        self.info = model_info(workload.model)
        #: ``pose`` (scored by PCK) or ``classification`` (scored by top-1 agreement)
        self.task = self.info.task
        self.model, self.random_weights = load_model(workload)
        clip = load_clip(
            workload.video_path(),
            windows=workload.crop_windows() or None,
            size=tuple(self.info.input_size),
            start=workload.start,
            count=workload.frames,
        )
        if clip.shape[0] < workload.frames:  # a container that did not say how many frames it holds
            from deltatune.workload import short_clip

            n = workload.start + clip.shape[0]
            raise ConfigError(
                short_clip(workload.video, n, workload.start, workload.frames, min_frames=MIN_FRAMES)
            )
        x = preprocess(clip, self.info).contiguous()
        t = workload.tune_frames
        self.frames: dict[str, torch.Tensor] = {"tune": x[:t], "heldout": x[t:], "all": x}
        self._frame_prints: dict[str, str] = {}
        self._hm_size: tuple[int, int] | None = None  # the heatmap size (pose, with labels): _heatmap_size
        self.speed, _ = resolve_speed(speed)
        self._use_disk = use_disk_cache
        #: the dense model the network runs (the original, or fine-tuned weights: :meth:`use_weights`)
        self.active_model: torch.nn.Module = self.model
        self._weights_key: str | None = None
        self._timing: tuple[str | None, Any] | None = None  # (weights key, sparse network): _timing_net
        # the references first: a workload with nothing to score fails here, before the latency fit
        self.reference = {s: self._reference(s) for s in ("tune", "heldout")}  # "all": on first use
        self.labels = self._labels(workload.load_labels())
        #: PCK of the dense model against the labels per split (None without labels)
        self.dense_pck: dict[str, float] | None = None
        if self.labels is not None:
            self.dense_pck = {s: self._label_pck(self.reference[s][..., :2], s) for s in self.reference}
        #: presence threshold of fidelity scores (None: every dense keypoint counts)
        self.min_confidence = self.info.present_confidence if workload.joints == "present" else None
        if require_keypoints:  # a search needs them; an ablation scoring other video reports NaN instead
            self.check_scorable()
        self.net = self._convert(self.model)
        #: the thread count ``latency`` prices at (calibration table and latency model); ``measured``
        #: times at this process's own
        self.price_threads = price_threads if price_threads and self.speed == "latency" else None
        #: the cache file of the latency model in use (None: not cached)
        self._latency_file: Path | None = None
        #: fit the latency model on this clip now, whatever is cached (``search --refit``)
        self._refit = refit_latency
        if self.speed != "macs":
            from deltatune.delta.calibration import calibrate

            with _torch_threads(self.price_threads):  # the table is chosen by the thread count on first use
                costs = calibrate(self.net, x[0])  # measured once, then read from the table
                #: the layer costs a latency model is fitted on (a fit of other costs is not reused)
                self._calibration = _costs_digest(costs)
                self.latency = self._fitted_latency() if self.speed == "latency" else None
        else:
            self.latency = None
        self._dense_ms: float | None = None
        self._memo: dict[tuple[Any, ...], Evaluation] = {}

    def counted_keypoints(self, split: str = "tune") -> int | None:
        """How many keypoints the accuracy loss counts on ``split`` (frames 1..; frame 0 runs dense), for
        pose models; ``None`` for classifiers. One keypoint more or less moves the loss by ``100 / n``
        points. Counted are the present dense keypoints (or every one with ``--all-joints``, or the visible
        labels), of persons with at least two distinct such keypoints (PCK's box needs them)."""
        from deltatune.metrics import pck, present_joints

        if self.task != "pose":
            return None
        if self.labels is not None:
            coords, vis = self.labels[split]
            return pck(coords[1:], coords[1:], visible=vis[1:], alpha=PCK_ALPHA).n_keypoints
        ref = self.reference[split][1:]
        visible = present_joints(ref[..., 2], self.min_confidence)
        return pck(ref[..., :2], ref[..., :2], visible=visible, alpha=PCK_ALPHA).n_keypoints

    def check_scorable(self, where: str | None = None) -> None:
        """A pose workload whose tuning frames count no keypoint scores every setting at 0 points lost: a
        search on it would recommend any threshold. Refuse it with one line naming the input (a
        :class:`ConfigError`; ``where``, e.g. ``--also-on carphone``, names the option that gave the clip);
        done on construction unless ``require_keypoints=False``."""
        if self.counted_keypoints("tune") != 0:
            return
        w = self.workload
        frames = f"frames {w.start + 1}..{w.start + w.tune_frames - 1} of {w.video}"
        # a search's own clip starts at frame 0; a later start is a segment (--also-on, a study's units)
        where = where or (f"--video {w.video}" if w.start == 0 else f"segment {w.video}@{w.start}")
        if self.labels is not None:
            raise ConfigError(
                f"--labels {w.labels}: no visible keypoint on the tuning {frames}; nothing to score"
            )
        other = "score every keypoint (--all-joints) or " if self.min_confidence is not None else ""
        if self.random_weights:  # the likelier cause: random heatmaps rarely peak above the threshold
            raise ConfigError(
                f"--model {w.model}: with random weights the dense model "
                f"{self.no_keypoint_phrase().removeprefix(f'the dense {w.model} ')} on the tuning {frames}; "
                f"pass --weights FILE (a trained checkpoint), or {other}give --labels"
            )
        raise ConfigError(
            f"{where}: {self.no_keypoint_phrase()} on the tuning {frames}, so every setting would "
            f"lose 0 points; choose frames or crop windows with people in view, or {other}give --labels"
        )

    def no_keypoint_phrase(self) -> str:
        """How a search refusal and an ablation's NaN warning name the cause: the dense model finds no
        keypoint above its presence threshold or, where every keypoint counts (no threshold: BlazePose,
        ``--all-joints``), puts no person's keypoints at two distinct points, which PCK's box needs."""
        if self.min_confidence is None:
            return (f"the dense {self.workload.model} puts no person's keypoints at two distinct points "
                    "(PCK's box needs two)")
        return f"the dense {self.workload.model} finds no keypoint (heatmap peak above {self.min_confidence})"

    @property
    def metric(self) -> str:
        """The accuracy metric: ``PCK@0.2`` or ``top-1`` (:func:`metric_of`)."""
        return metric_of(self.task)

    def _predict(self, out: Any) -> torch.Tensor:
        """One frame's scored prediction from the model's output: decoded keypoints ``[B, K, 2]`` (pose)
        or top-1 classes ``[B]`` (classification)."""
        if self.task == "pose":
            from deltatune.metrics import decode_heatmaps

            return decode_heatmaps(_heatmaps(out))[0]
        return self._classes(out)

    def _reference_of(self, out: Any) -> torch.Tensor:
        """One frame's reference from the dense output: keypoints with their heatmap peaks ``[B, K, 3]``
        (pose), or top-1 classes ``[B]``."""
        if self.task == "pose":
            from deltatune.metrics import decode_heatmaps

            return _with_peaks(*decode_heatmaps(_heatmaps(out)))
        return self._classes(out)

    def _classes(self, out: Any) -> torch.Tensor:
        from deltatune.metrics import logits_of, top1_classes

        try:
            return top1_classes(logits_of(out))
        except ConfigError as exc:
            raise ConfigError(f"cannot score {self.workload.model}: {exc}") from None

    def _convert(self, model: torch.nn.Module, *, sparse: bool | None = None) -> Any:
        """``model`` as this search's delta network: the reference backend with statistics for a MAC
        search, else (or with ``sparse=True``, for timing) the sparse backend without them."""
        from deltatune.delta import convert

        x0 = self.frames["tune"][0]
        fallback = self.workload.fallback
        if sparse is None:
            sparse = self.speed != "macs"
        if not sparse:
            return convert(model, x0, fallback=fallback)
        from deltatune.delta.sparse import SparseBackend

        return convert(model, x0, backend=SparseBackend(), record_stats=False, fallback=fallback)

    def use_weights(self, state: dict[str, torch.Tensor] | None, key: str | None = None) -> None:
        """Score later settings on ``state`` (fine-tuned weights of the same architecture, identified by
        ``key``), or on the original weights (``None``). The reference stays the original model's dense
        output, so a fine-tune that drifts from it shows in the accuracy loss. Switching rebuilds the
        delta network (seconds); asking for the weights already in use does nothing."""
        if key == self._weights_key and (state is None) == (key is None):
            return
        if state is None:
            model = self.model
        else:
            import copy

            model = copy.deepcopy(self.model)
            try:
                model.load_state_dict(state, strict=False)
            except RuntimeError as exc:
                raise ConfigError(f"fine-tuned weights do not fit {self.workload.model}: {exc}") from None
            model.eval()
        if self._anonymous_weights() or (state is not None and key is None):
            self._memo.clear()  # scores on weights without a key cannot be told from the original's
        accumulate = self.net.accumulate
        self.net = self._convert(model)
        self.net.accumulate = accumulate
        self.active_model, self._weights_key = model, key

    def set_accumulate(self, on: bool) -> None:
        """Score later settings with the network keeping (``True``, DeltaCNN's default) or dropping the
        residuals of changes that did not fire; it stays so across :meth:`use_weights`."""
        self.net.accumulate = on

    def _anonymous_weights(self) -> bool:
        """Whether the network runs fine-tuned weights that came without a key."""
        return self._weights_key is None and self.active_model is not self.model

    def timed(
        self, config: ThresholdFile, split: Split = "tune", *, repeats: int
    ) -> list[tuple[float, float]]:
        """``repeats`` interleaved rounds of (dense ms/frame, delta ms/frame) of ``config`` on ``split``
        (:func:`~deltatune.delta.latency.time_interleaved`), on the weights in use, with the sparse backend
        calibrated for this machine. The dense side is the original model (same architecture: same cost)."""
        from deltatune.delta.latency import time_interleaved

        net = self._timing_net()
        net.apply_settings(config)
        net.accumulate = self.net.accumulate
        return time_interleaved(self.model, net, self.frames[split], repeats=repeats)

    def _timing_net(self) -> Any:
        """The sparse-backend network of the weights in use: ``self.net`` itself when the search prices
        wall clock (already sparse and calibrated), else one built (and calibrated) once per weights."""
        if self.speed != "macs":
            return self.net
        if self._timing is None or self._timing[0] != self._weights_key:
            from deltatune.delta.calibration import calibrate

            net = self._convert(self.active_model, sparse=True)
            calibrate(net, self.frames["tune"][0])  # this machine's layer costs, before anything is timed
            self._timing = (self._weights_key, net)
        return self._timing[1]

    @property
    def weights_key(self) -> str | None:
        """Key of the fine-tuned weights in use (``None``: the original weights)."""
        return self._weights_key

    def dense_loss(self, model: torch.nn.Module, split: Split = "tune") -> float:
        """Accuracy loss of a *dense* model (e.g. one being fine-tuned) against the original model's
        reference on ``split``: the loss every threshold setting on it starts from."""
        if split not in self.reference:
            self.reference[split] = self._reference(split)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            preds = [self._predict(model(f)) for f in self.frames[split]]
        model.train(was_training)
        return self._loss(torch.stack(preds), split)[0]

    @property
    def threshold_names(self) -> list[str]:
        return self.net.threshold_names

    @property
    def truncation_points(self) -> list[Any]:
        return self.net.truncation_points

    # -- reference ---------------------------------------------------------------------------------
    def frames_fingerprint(self, split: str = "tune") -> str:
        """``"sha256:<16 hex>"`` of the decoded, cropped frames of ``split``: what a trial is scored on.
        It changes with the video's content (and with a decoder that decodes it differently), not with
        its path or file date, so a study resumed on another machine with the same clip matches."""
        hit = self._frame_prints.get(split)
        if hit is None:
            t = self.frames[split].detach().cpu().contiguous()
            hit = self._frame_prints[split] = "sha256:" + hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]
        return hit

    def _cache_key(self, split: str) -> str:
        w = self.workload
        key = {
            "model": w.model,
            "weights": w.weights_identity(),
            # the decoded frames themselves, not the video's path: a clip re-exported under the same name
            # was scored against the old clip's cached reference (silently wrong losses)
            "frames_sha256": self.frames_fingerprint(split),
            "windows": [str(c) for c in w.crop_windows()],
            "start": w.start,
            "frames": w.frames,
            "heldout": w.heldout_frames,
            "split": split,
            "torch": torch.__version__,
            "payload": "xy+peak" if self.task == "pose" else "top1",
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]

    def _reference(self, split: str) -> torch.Tensor:
        """The dense model's reference on ``split`` (cached in memory and on disk): decoded keypoints and
        their heatmap peaks, ``[T, B, K, 3]`` as ``(x, y, peak)`` (pose), or top-1 classes ``[T, B]``."""
        key = self._cache_key(split)
        if key in _MEMORY_CACHE:
            return _MEMORY_CACHE[key]
        path = _cache_dir() / f"{key}.pt"
        if self._use_disk and path.is_file():
            try:
                ref = torch.load(path, weights_only=True)
                _MEMORY_CACHE[key] = ref
                return ref
            except Exception as exc:  # a corrupt cache file is recomputed, never fatal
                log.warning("reference cache %s unreadable (%s); recomputing", path, exc)
        with torch.no_grad():
            ref = torch.stack([self._reference_of(self.model(f)) for f in self.frames[split]])
        _MEMORY_CACHE[key] = ref
        if self._use_disk:
            try:
                atomic_torch_save(ref, path)
            except OSError as exc:
                log.warning("cannot write reference cache %s (%s)", path, exc)
        return ref

    # -- wall-clock speed --------------------------------------------------------------------------
    def _latency_key(self) -> dict[str, Any]:
        """What a fitted latency model holds for: this model and weights at this input shape on this
        machine. The shape includes the batch (the number of streams): per-call overheads and the dense
        time a speedup divides differ with it (on one carphone stream, a fit made on two vtest streams
        priced dense at 98.6 ms against a measured 58.7 ms)."""
        from deltatune.delta import native
        from deltatune.delta.calibration import KERNELS_VERSION

        w = self.workload
        # version: bumped when a kernel outside the calibration table changes what a frame costs (6: the
        # truncation step compiled per channel count; 7: zero pads folded into the convs that read them;
        # 8: no bounding-box conv path; 9: calibration tables kept per processor, so the costs a fit
        # was made on changed; 10: a fit records the layer costs it was made on), so that fits made before
        # are not reused
        return {"version": 10, "kernels": KERNELS_VERSION, "model": w.model, "weights": w.weights_identity(),
                "threads": self.price_threads or torch.get_num_threads(), "torch": torch.__version__,
                "native": native.available(), "cpu": native._cpu_tag(),
                "shape": list(self.frames["tune"][0].shape)}

    def latency_cache_path(self, clip: str | None = None) -> Path:
        """Where the latency model fitted on ``clip`` (an identity of the tuning frames; default: this
        evaluator's, :meth:`frames_fingerprint`, the decoded frames themselves, so that two videos of
        the same name are two clips) for :meth:`_latency_key` is cached:
        ``<data dir>/latency/<model>-<key digest>-<clip digest>.json``. One file per clip, so that
        searches on several clips of one input shape do not overwrite each other's fits; the key digest
        alone finds the fits of other clips (:meth:`_shape_fits`)."""
        from deltatune.data.assets import data_dir

        digest = hashlib.sha256(json.dumps(self._latency_key(), sort_keys=True).encode()).hexdigest()[:24]
        where = hashlib.sha256((clip or self.frames_fingerprint()).encode()).hexdigest()[:12]
        return data_dir() / "latency" / f"{self.workload.model}-{digest}-{where}.json"

    def _shape_fits(self) -> list[Path]:
        """Cached fits of this key made on other clips, the newest first."""
        own = self.latency_cache_path()
        prefix = own.name.rsplit("-", 1)[0] + "-"
        dated = []
        for p in own.parent.glob(f"{prefix}*.json") if own.parent.is_dir() else ():
            try:  # another process may remove or replace a file meanwhile
                dated.append((p.stat().st_mtime, p))
            except OSError:
                continue
        return [p for _, p in sorted(dated, reverse=True) if p != own]

    def clip_label(self) -> str:
        """The clip a latency fit is made on, as a search prints it (recorded in the fit's cache file,
        so that a poor prediction can name it)."""
        w = self.workload
        windows = f", windows {'; '.join(w.windows)}" if w.windows else ""
        return f"{w.video} frames {w.start}..{w.start + w.tune_frames - 1}{windows}"

    def latency_file(self) -> Path:
        """The cache file of the latency model in use: this clip's, or another clip's that passed the
        check on this one (see :meth:`_fitted_latency`)."""
        return self._latency_file or self.latency_cache_path()

    def latency_fitted_on(self) -> str | None:
        """The clip the latency model in use was fitted on (:meth:`clip_label`), None when unknown (no
        cache file, or one written before the clip was recorded)."""
        try:
            return str(json.loads(self.latency_file().read_text())["fitted_on"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _cached_fit(self, path: Path) -> Any:
        """The usable fit cached at ``path``, or None (no file, unreadable, or pricing no work)."""
        from deltatune.delta.latency import FittedLatency

        if not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text())
            cached = FittedLatency.from_dict(payload)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("latency model cache %s unreadable (%s); not used", path, exc)
            return None
        if not cached.prices_work:
            log.warning("latency model cache %s prices no conv work (fitted on frames that never "
                        "changed); not used", path)
            return None
        if payload.get("calibration") != self._calibration:  # said once: for this clip's own fit
            (log.warning if path == self.latency_cache_path() else log.info)(
                "latency model cache %s was fitted on other layer costs (the calibration table has been "
                "measured again since, e.g. `calibrate --force`); not used", path)
            return None
        return cached

    def _fitted_latency(self) -> Any:
        """The latency model: this clip's cached fit (:meth:`latency_cache_path`); else the newest fit of
        the same key made on another clip, once it has been checked on this one
        (:func:`~deltatune.delta.latency.check_latency`, three timed configurations) and is within
        :data:`~deltatune.delta.latency.PREDICTION_TOLERANCE`; else a fit made now on this clip (1-2
        minutes) and cached for it. With ``refit_latency`` no cached fit is read: this clip's is fitted
        again and replaces its cached one."""
        from deltatune.delta.latency import PREDICTION_TOLERANCE, check_latency, fit_latency

        w = self.workload
        path = self.latency_cache_path()
        if self._use_disk and not self._refit:
            own = self._cached_fit(path)
            if own is not None:
                self._latency_file = path
                return own
            for other in self._shape_fits():  # the newest usable one is checked; the others are older
                cached = self._cached_fit(other)
                if cached is None:
                    continue
                errors = check_latency(cached, self.net, list(self.frames["tune"]))
                if max(errors) <= PREDICTION_TOLERANCE:
                    self._latency_file = self._adopt_fit(other) or other
                    return cached
                log.info("the latency model of %s fitted on another clip (%s) is %.0f%% off on this one; "
                         "fitting it here", w.model, other, 100 * max(errors))
                break
        log.info("fitting the latency model of %s on this machine (once; cached in %s)", w.model, path)
        fitted = fit_latency(self.net, list(self.frames["tune"]))
        if not fitted.prices_work:
            log.warning("the tuning frames of %s hardly change: no fitting configuration did any conv work, "
                        "so the latency model prices every setting alike (not cached)", w.video_path())
        elif self._use_disk:
            try:
                payload = {"key": self._latency_key(), **fitted.to_dict(), "fitted_on": self.clip_label(),
                           "calibration": self._calibration}
                atomic_write_text(path, json.dumps(payload, indent=1))
                self._latency_file = path
            except OSError as exc:
                log.warning("cannot write latency model cache %s (%s)", path, exc)
        return fitted

    def _adopt_fit(self, other: Path) -> Path | None:
        """Cache another clip's fit that passed the check on this clip as this clip's own (its
        ``fitted_on`` kept, ``checked_on`` added), so that the next evaluator of this clip (a ``--jobs``
        worker, a later search) uses it without timing the check again; a check timed in a worker
        beside another would fail on the contention alone and start a fit of its own. Returns the
        file written, None when it cannot be."""
        path = self.latency_cache_path()
        try:
            payload = json.loads(other.read_text())
            payload["checked_on"] = self.clip_label()
            atomic_write_text(path, json.dumps(payload, indent=1))
        except (OSError, ValueError) as exc:
            log.warning("cannot write latency model cache %s (%s)", path, exc)
            return None
        return path

    def _measured_speedup(self, frames: torch.Tensor) -> float:
        import statistics

        from deltatune.delta.latency import best_dense_ms, channels_last_runner, time_delta

        if self._dense_ms is None:
            run_cl = channels_last_runner(self.model)
            with torch.no_grad():
                self._dense_ms = min(best_dense_ms(self.model, frames[1:], run_cl=run_cl) for _ in range(2))
        with torch.no_grad():
            ms = statistics.median(time_delta(self.net, list(frames)) for _ in range(2))
        return self._dense_ms / max(ms, 1e-9)

    # -- labels ------------------------------------------------------------------------------------
    def _labels(self, labels: Any) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
        """Per split ``(coords [T,B,K,2], visible [T,B,K])`` cut from labels of the whole video."""
        if labels is None:
            return None
        w = self.workload
        cut, visible = w.clip_labels(labels, self.info.num_joints)
        coords = torch.as_tensor(cut, dtype=torch.float32)
        vis = torch.as_tensor(visible)
        t = w.tune_frames
        return {"tune": (coords[:t], vis[:t]), "heldout": (coords[t:], vis[t:]), "all": (coords, vis)}

    def _to_frame_pixels(self, kp: torch.Tensor) -> torch.Tensor:
        """Heatmap-pixel keypoints ``[T,B,K,2]`` -> full-frame pixels (through each stream's window)."""
        from deltatune.metrics import heatmap_to_input_coords
        from deltatune.metrics.video import crop_to_frame

        h, w = self.info.input_size
        xy = heatmap_to_input_coords(kp, heatmap_size=self._heatmap_size(), input_size=(h, w))
        return crop_to_frame(xy, input_size=(h, w), windows=self.workload.crop_windows())

    def _heatmap_size(self) -> tuple[int, int]:
        """The model's heatmap ``(h, w)``, from one dense frame (a model of one's own need not have
        stride 4, as the zoo's pose models do)."""
        if self._hm_size is None:
            with torch.no_grad():
                hm = _heatmaps(self.model(self.frames["tune"][0]))
            self._hm_size = (int(hm.shape[-2]), int(hm.shape[-1]))
        return self._hm_size

    def _label_pck(self, kp: torch.Tensor, split: str) -> float:
        """PCK@0.2 of heatmap keypoints ``[T,B,K,2]`` (frames 1.. of ``split``) against the labels."""
        from deltatune.metrics import pck

        assert self.labels is not None
        coords, vis = self.labels[split]
        res = pck(self._to_frame_pixels(kp[1:]), coords[1:], visible=vis[1:], alpha=PCK_ALPHA)
        return res.value if not math.isnan(res.value) else 1.0

    # -- scoring -----------------------------------------------------------------------------------
    def _loss(self, preds: torch.Tensor, split: str) -> tuple[float, float]:
        """``(accuracy loss in points, metric value)`` of the predictions of ``split`` (:meth:`_predict`,
        stacked over frames; frame 0 left out: it is dense and exact in a delta network)."""
        from deltatune.metrics import pck, present_joints, top1_fidelity

        if self.task != "pose":
            score = top1_fidelity(preds[1:], self.reference[split][1:])
            return score.loss, score.agreement
        if self.dense_pck is not None:
            # against labels: loss = dense PCK - delta PCK (both vs the labels), in points
            value = self._label_pck(preds, split)
            return 100.0 * (self.dense_pck[split] - value), value
        ref = self.reference[split][1:]
        visible = present_joints(ref[..., 2], self.min_confidence)
        res = pck(preds[1:], ref[..., :2], visible=visible, alpha=PCK_ALPHA)
        value = res.value if not math.isnan(res.value) else 1.0
        return 100.0 * (1.0 - value), value

    def apply(self, config: ThresholdFile) -> None:
        """Put ``config`` on the network (thresholds, mode, input dilation, key-frame interval)."""
        self.net.apply_settings(config)

    def evaluate(self, config: ThresholdFile, *, split: Split = "tune") -> Evaluation:
        """Run the split's frames through the delta network with ``config``; return both objectives.

        ``split``: ``tune`` (the first frames), ``heldout`` (the last ones, a fresh stream) or ``all`` (the
        whole clip as one stream)."""
        if split not in self.frames:
            raise ConfigError(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
        key = self._memo_key(config, split)
        if key is not None and key in self._memo:
            hit = self._memo[key]
            return replace(hit, extra=dict(hit.extra), repeated=True)
        if split not in self.reference:
            self.reference[split] = self._reference(split)
            if self.dense_pck is not None:
                self.dense_pck[split] = self._label_pck(self.reference[split][..., :2], split)
        self.apply(config)
        self.net.reset()
        self.net.stats.clear()
        preds = []
        frames = self.frames[split]
        latency_speed = None
        if self.latency is not None:
            from deltatune.delta.latency import features

            outs: list[Any] = []
            latency_speed = self.latency.speedup(features(self.net, list(frames), outputs=outs))
            preds = [self._predict(o) for o in outs]
        else:
            with torch.no_grad():
                for f in frames:
                    preds.append(self._predict(self.net(f)))
        pred = torch.stack(preds)[1:]  # frame 0 is dense and exact: score the running stream only
        loss, value = self._loss(torch.stack(preds), split)
        if latency_speed is not None:
            speed = latency_speed
        elif self.speed == "measured":
            speed = self._measured_speedup(frames)
        else:
            summary = self.net.stats.summary()
            # nothing recomputed (everything truncated) would be an infinite speedup: capped
            speed = min(summary.mac_speedup, MAC_SPEEDUP_CAP)
        result = Evaluation(
            accuracy_loss=loss,
            speedup=speed,
            pck=value,
            split=split,
            frames=int(pred.shape[0]),
            streams=int(pred.shape[1]),
        )
        if key is not None:
            self._memo[key] = result
        return result

    def _memo_key(self, config: ThresholdFile, split: str) -> tuple[Any, ...] | None:
        """What determines an evaluation's result, or None when it is not determined (``--speed
        measured`` times the run, so a repeat is a new measurement).

        Samplers propose the same setting again once they have converged (TPE on a front of only
        thresholds 0 does so for most of its trials); scoring it again would cost a full pass over the
        frames and give the same numbers, because MAC counts, the latency model's prediction and the
        predictions are functions of the setting, the weights and the frames."""
        if self.speed == "measured":
            return None
        setting = json.dumps(config.to_attrs(), sort_keys=True)
        return (setting, split, self._weights_key, bool(self.net.accumulate))
