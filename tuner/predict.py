"""Run a tuned delta network over a whole video and write what it predicts: the end of the workflow.

``search`` tunes a setting and ``export`` writes it; :func:`predict_video` puts it to work. Frames are
decoded one at a time (a long video never sits in memory), each stream is one crop window, the network
runs with the sparse backend, and every frame's predictions go to a CSV:

pose models
    ``frame, stream, joint, x, y, visible, score``: full-frame pixel coordinates in the format
    ``search --labels`` reads (``visible`` is 1 where the keypoint is present, its heatmap peak above the
    model's presence threshold, or above 0 for a model without one: a peak of 0 or less has no position
    and is decoded at the crop's corner), and the peak ``score``.
classifiers
    ``frame, stream, class, probability``: the top-1 class and its softmax probability.
the detector
    ``frame, stream, x1, y1, x2, y2, score, label``: every box the detector (trained with ``deltatune
    detect train``; the whole frame, its backbone a delta network) returns, in full-frame pixels; and, with
    ``mot``, the same boxes as a MOTChallenge detection file (``det.txt``: ``frame, -1, x, y, w, h, score,
    -1, -1, -1``, no header; frames and pixel positions 1-based as MOT writes them, so ``x = x1 + 1`` and
    the video's frame 0 is frame 1), what the MOT devkit, TrackEval and trackers read.

The CSV is written to a temporary file and moved into place at the end, so a run that fails or is
interrupted leaves nothing half-written.
"""

from __future__ import annotations

import csv
import itertools
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from deltatune.delta.stats import StatsSummary
from deltatune.errors import ConfigError, VideoError

__all__ = ["PredictResult", "predict_video"]

log = logging.getLogger(__name__)

POSE_COLUMNS = ("frame", "stream", "joint", "x", "y", "visible", "score")
CLASS_COLUMNS = ("frame", "stream", "class", "probability")
BOX_COLUMNS = ("frame", "stream", "x1", "y1", "x2", "y2", "score", "label")


@dataclass(frozen=True)
class PredictResult:
    """What a run did: its frames and streams, the network's time per frame (decoding and writing
    excluded; frame 0 runs dense), the MAC speedup over the frames after the first, and where the rows
    went."""

    model: str
    video: str
    task: str
    frames: int
    streams: int
    first_frame: int
    #: the delta frames' mean (frame 1 on; the key frame's time where the run had only that frame)
    ms_per_frame: float
    mac_speedup: float
    rows: int
    output: str
    weights: str
    #: the frames asked for, or announced by the container from ``first_frame`` on (``None``: unknown);
    #: more than ``frames`` when decoding stopped early (a truncated or damaged file)
    expected_frames: int | None = None
    #: about how many frames from ``first_frame`` on the container's duration implies, where it does not
    #: say its frame count (Matroska); ``None``: not known
    about_frames: int | None = None
    #: frame 0's time: the key frame, run densely, with the first call's set-up (kept out of the mean)
    key_frame_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict_video(
    model: str,
    output: str | Path,
    *,
    weights: str | Path | None = "default",
    video: str | Path | None = None,
    windows: list[Any] | None = None,
    start: int = 0,
    frames: int | None = None,
    threshold: float | None = None,
    thresholds_file: str | Path | None = None,
    fallback: bool = False,
    overlay: str | Path | None = None,
    mot: str | Path | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    progress: bool = False,
) -> PredictResult:
    """Run ``model`` as a delta network over ``frames`` frames of ``video`` from ``start`` (default: to
    the end) and write its predictions to ``output`` (CSV; see the module docstring).

    The setting is ``thresholds_file`` (from ``export``: thresholds, mode, dilation, key frames) or one
    ``threshold`` everywhere (default 0: exact). ``on_frame(done, total)`` reports progress (``total``
    is ``None`` when the container does not state its frame count); ``progress`` shows a bar while
    this machine's layer costs are measured (once per model and input shape, a minute or two).
    ``overlay``: also write the video with the predictions drawn on it (MP4, see
    :mod:`deltatune.report.overlay`), moved into place with the CSV; ``mot``: also write the detector's
    boxes as a MOTChallenge ``det.txt`` (see the module docstring)."""
    from deltatune._atomic import atomic_write_all
    from deltatune.data.video import CropWindow, FrameStreams, as_window, read_frames, video_info
    from deltatune.delta import convert
    from deltatune.delta.calibration import calibrate
    from deltatune.workload import build_model, preprocess, resolve_video, short_clip, stream_windows
    from deltatune_models import model_info

    if start < 0:
        raise ConfigError(f"--start {start}: must be >= 0")
    if frames is not None and frames < 1:
        raise ConfigError(f"--frames {frames}: need at least 1")
    if threshold is not None and threshold < 0:
        raise ConfigError(f"--threshold {threshold}: must be >= 0")
    info = model_info(model)
    if info.task == "detection" and (weights is None or str(weights) == "default"):
        raise ConfigError(f"--model {model}: pass --weights with a detector from `deltatune detect train` "
                          "(its head is not trained otherwise)")
    if info.task == "detection" and windows:
        raise ConfigError("--window: the detector reads whole frames")
    if mot is not None and info.task != "detection":
        raise ConfigError(f"--mot {mot}: writes a detector's boxes; {model} is a {info.task} model")
    path, name = resolve_video(video)
    from deltatune.train.detection_data import is_mot_sequence

    if is_mot_sequence(path):  # a MOT sequence (what `detect train` reads): its frames are in imDir/
        from deltatune.data.mot import read_seqinfo

        path = path / str(read_seqinfo(path / "seqinfo.ini")["imDir"])  # img1/ in MOT16/17, as detect reads
    vinfo = video_info(path)
    if vinfo.frames is not None and start >= vinfo.frames:
        raise ConfigError(f"--start {start}: {path} has {vinfo.frames} frames")
    if vinfo.frames is not None and frames is not None and start + frames > vinfo.frames:
        raise ConfigError(f"--frames {frames}: {path} has {vinfo.frames} frames; frames {start}.."
                          f"{start + frames - 1} asked for (leave --frames out to run to the end)")
    windows = None if windows is None else [as_window(w) for w in windows]  # also "x,y,w,h" or a tuple
    for w in windows or []:
        w.check(vinfo.width, vinfo.height, source=path)
    detector: Any = None
    if info.task == "detection":
        from deltatune.train.detection_eval import load_detector

        detector, cfg = load_detector(weights)  # type: ignore[arg-type]
        size, wins, wname = tuple(int(v) for v in cfg.size), None, str(weights)
        net_dense = detector.backbone
    else:
        size = tuple(int(v) for v in info.input_size)
        wins = stream_windows(path, name, windows, vinfo, size)
        net_dense, wname, _ = build_model(model, weights, allow_random=False)
    streams = FrameStreams(path, windows=wins, size=(size[0], size[1]), start=start, count=frames)
    try:
        total: int | None = len(streams)
    except TypeError:
        total = None

    def prepare(raw: Any) -> torch.Tensor:
        if detector is None:
            return preprocess(streams.convert(raw), info)
        from deltatune.train.detection_data import _resize, normalize

        # the detector's own preprocessing (what it was trained on): uint8 resize, then ImageNet statistics
        frame = torch.from_numpy(raw).permute(2, 0, 1)
        return normalize(_resize(frame, (size[0], size[1]))[None])

    net = convert(net_dense, thresholds=0.0 if threshold is None else threshold, backend="sparse",
                  fallback=fallback)
    if thresholds_file is not None:  # a file for another network fails here, before any frame is decoded
        net.load_thresholds(thresholds_file)
    raw_iter = read_frames(path, start=start, count=frames)
    try:
        first_raw = next(raw_iter, None)
    except VideoError as exc:  # a container that did not say its length, read past its end
        raise ConfigError(f"--start {start}: {exc}") from None
    if first_raw is None:
        raise ConfigError(f"{path}: no decodable frame from --start {start}")
    x0 = prepare(first_raw)
    calibrate(net, x0, progress=progress)  # this machine's layer costs (measured once per shape)
    full = [CropWindow(0, 0, vinfo.width, vinfo.height)] if not wins else list(wins)
    writer: Any
    if detector is not None:
        writer = _BoxRows(detector, size, (vinfo.height, vinfo.width))
    else:
        writer = _PoseRows(info, size, full) if info.task == "pose" else _ClassRows()
    spent, key, done = 0.0, 0.0, 0
    # the work done, totalled frame by frame: the recorder's per-op records are emptied after each frame,
    # or an hour of video would keep millions of them in memory
    work = StatsSummary(0, 0, 0)

    def run(csv_path: Path, video_path: Path | None, mot_path: Path | None) -> None:
        nonlocal spent, key, done, work
        from deltatune.report.overlay import OverlayVideo

        drawn = OverlayVideo(video_path, vinfo.width, vinfo.height, vinfo.fps) if video_path else None
        try:
            mot_file = mot_path.open("w") if mot_path is not None else nullcontext()
            with csv_path.open("w", newline="") as f, mot_file as motf:
                out = csv.writer(f)
                out.writerow(writer.columns)
                net.reset()
                with torch.no_grad():
                    for raw in itertools.chain([first_raw], raw_iter):
                        x = prepare(raw)
                        t0 = time.perf_counter()
                        y = net(x)
                        if done:
                            spent += time.perf_counter() - t0
                        else:  # the dense key frame and the first call's set-up: not a delta frame
                            key = time.perf_counter() - t0
                        work += net.stats.take()  # frame 0 (dense) left out, as mac_speedup() does
                        out.writerows(writer.rows(start + done, y))
                        if motf is not None:
                            motf.writelines(writer.mot_lines(start + done + 1))
                        if drawn is not None:
                            drawn.write(raw, full, **writer.drawing())
                        done += 1
                        if on_frame is not None:
                            on_frame(done, total)
            if frames is not None and done < frames:  # a container that said no length: as search refuses
                raise ConfigError(short_clip(path, start + done, start, frames))
        finally:
            if drawn is not None:
                drawn.close()

    # every file is written to a temporary and moved into place only when the run finished
    atomic_write_all([output, overlay, mot], lambda tmp: run(*tmp))
    return PredictResult(
        model=model, video=str(path), task=info.task, frames=done, streams=len(full), first_frame=start,
        ms_per_frame=spent * 1e3 / (done - 1) if done > 1 else key * 1e3, key_frame_ms=key * 1e3,
        mac_speedup=work.mac_speedup if done > 1 else 1.0,
        rows=writer.count, output=str(output), weights=wname,
        expected_frames=frames if frames is not None or vinfo.frames is None else vinfo.frames - start,
        about_frames=None if vinfo.frames_about is None else vinfo.frames_about - start,
    )


class _PoseRows:
    """Keypoints of one frame's heatmaps as CSV rows, in full-frame pixels."""

    columns = POSE_COLUMNS

    def __init__(self, info: Any, input_size: tuple[int, ...], windows: list[Any]) -> None:
        self.input_size, self.windows = input_size, windows
        self.present = info.present_confidence
        self.count = 0

    def rows(self, frame: int, out: Any) -> list[tuple[Any, ...]]:
        from deltatune.metrics.decode import decode_heatmaps, heatmap_to_input_coords
        from deltatune.metrics.video import crop_to_frame, heatmaps_of

        hm = heatmaps_of(out)
        xy, peak = decode_heatmaps(hm)
        xy = heatmap_to_input_coords(xy, heatmap_size=hm.shape[-2:], input_size=self.input_size)
        xy = crop_to_frame(xy.unsqueeze(0), input_size=self.input_size, windows=self.windows)[0]
        rows = []
        self._xy = xy.numpy()
        # a peak <= 0 has no position (decoded at the crop's corner): never visible, whatever the model
        self._visible = (peak > (self.present if self.present is not None else 0.0)).numpy()
        for s in range(xy.shape[0]):
            for j in range(xy.shape[1]):
                score = float(peak[s, j])
                present = int(self._visible[s, j])
                rows.append((frame, s, j, round(float(xy[s, j, 0]), 2), round(float(xy[s, j, 1]), 2),
                             present, round(score, 4)))
        self.count += len(rows)
        return rows

    def drawing(self) -> dict[str, Any]:
        """The last frame's keypoints, for :meth:`OverlayVideo.write`."""
        return {"keypoints": self._xy, "visible": self._visible}


class _ClassRows:
    """The top-1 class of one frame's logits per stream, with its softmax probability."""

    columns = CLASS_COLUMNS

    def __init__(self) -> None:
        self.count = 0

    def rows(self, frame: int, out: Any) -> list[tuple[Any, ...]]:
        from deltatune.metrics import logits_of

        out = logits_of(out)
        p = torch.softmax(out.reshape(out.shape[0], -1).float(), dim=1)
        prob, cls = p.max(dim=1)
        rows = [(frame, s, int(cls[s]), round(float(prob[s]), 4)) for s in range(out.shape[0])]
        self._classes = [(int(c), float(p)) for c, p in zip(cls, prob, strict=True)]
        self.count += len(rows)
        return rows

    def drawing(self) -> dict[str, Any]:
        """The last frame's classes, for :meth:`OverlayVideo.write`."""
        return {"classes": self._classes}


class _BoxRows:
    """The detector's boxes of one frame (from the delta backbone's features), in full-frame pixels."""

    columns = BOX_COLUMNS

    def __init__(self, detector: Any, size: tuple[int, ...], frame_hw: tuple[int, int]) -> None:
        self.detector, self.size = detector, (int(size[0]), int(size[1]))
        self.scale = torch.tensor([frame_hw[1] / size[1], frame_hw[0] / size[0]] * 2)
        self.count = 0

    def rows(self, frame: int, features: Any) -> list[tuple[Any, ...]]:
        det = self.detector.detect_from_features(features, self.size)[0]
        boxes = det["boxes"].reshape(-1, 4) * self.scale
        self._boxes = [(b.tolist(), float(sc)) for b, sc in zip(boxes, det["scores"], strict=True)]
        rows = [
            (frame, 0, *(round(float(v), 1) for v in b), round(float(sc), 4), int(lb))
            for b, sc, lb in zip(boxes, det["scores"], det["labels"], strict=True)
        ]
        self.count += len(rows)
        return rows

    def drawing(self) -> dict[str, Any]:
        """The last frame's boxes, for :meth:`OverlayVideo.write`."""
        return {"boxes": self._boxes}

    def mot_lines(self, mot_frame: int) -> list[str]:
        """The last frame's boxes as MOTChallenge detection lines (``mot_frame`` and positions 1-based)."""
        return [
            f"{mot_frame},-1,{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n"
            for (x1, y1, x2, y2), score in self._boxes
        ]
