"""Pseudo-label person boxes on real vtest frames: inside the image, plausible, tight, deterministic,
cached; the train/held-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deltatune.data import read_frames
from deltatune.data.pseudo_boxes import (
    PseudoLabelParams,
    pseudo_labels,
    pseudo_person_boxes,
    split_frames,
)
from deltatune.errors import ConfigError, VideoError
from deltatune.train.persons import background_model, foreground_blobs

W, H = 768, 576


@pytest.fixture(scope="module")
def clip(vtest_path: Path) -> torch.Tensor:
    """uint8 ``[40, 3, H, W]``: every 3rd of vtest's first 120 frames (pedestrians move between them)."""
    return torch.stack(
        [torch.from_numpy(f).permute(2, 0, 1) for f in read_frames(vtest_path, count=120, step=3)]
    )


@pytest.fixture(scope="module")
def background(clip: torch.Tensor) -> torch.Tensor:
    return background_model(clip)


def test_boxes_lie_inside_the_frame_and_have_plausible_person_shapes(clip, background) -> None:
    p = PseudoLabelParams()
    per_frame = [pseudo_person_boxes(clip[i], background, p) for i in range(0, 40, 4)]
    assert sum(1 for b in per_frame if len(b)) >= 8, [len(b) for b in per_frame]  # people in most frames
    boxes = torch.cat(per_frame)
    assert boxes.dtype == torch.float32 and boxes.shape[1] == 4
    assert bool((boxes[:, :2] >= 0).all() and (boxes[:, 2] <= W).all() and (boxes[:, 3] <= H).all())
    h, w = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    assert bool((h >= p.min_height).all() and (w >= p.min_width).all())
    assert bool(((h / w) >= p.min_aspect).all() and ((h / w) <= p.max_aspect).all())
    assert float(h.max()) < H / 2  # a pedestrian, not the whole scene


def test_each_box_is_a_tight_box_inside_a_foreground_blob(clip, background) -> None:
    p = PseudoLabelParams()
    frame = clip[20]
    blobs = torch.tensor(
        foreground_blobs(frame, background, threshold=p.threshold, cell=p.cell), dtype=torch.float32
    )
    boxes = pseudo_person_boxes(frame, background, p)
    assert len(boxes) >= 1
    diff = (frame.to(torch.int16) - background.to(torch.int16)).abs().amax(dim=0) > p.threshold
    for x1, y1, x2, y2 in boxes.int().tolist():
        box = boxes.new_tensor([x1, y1, x2, y2])
        inside = (blobs[:, :2] <= box[:2]).all(1) & (blobs[:, 2:] >= box[2:]).all(1)
        assert bool(inside.any())  # a blob, or a column run of one (pedestrians side by side)
        # tight: every edge row/column of the box holds a foreground pixel
        assert bool(diff[y1, x1:x2].any() and diff[y2 - 1, x1:x2].any())
        assert bool(diff[y1:y2, x1].any() and diff[y1:y2, x2 - 1].any())


def test_deterministic_and_filtered_by_the_parameters(clip, background) -> None:
    frame = clip[10]
    a = pseudo_person_boxes(frame, background)
    assert torch.equal(a, pseudo_person_boxes(frame.clone(), background.clone()))
    strict = pseudo_person_boxes(frame, background, PseudoLabelParams(min_height=10_000))
    assert strict.shape == (0, 4)


def test_cache_is_written_once_and_reused(clip, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(clip[i].permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")
    cache = tmp_path / "cache"
    first = pseudo_labels(folder, cache_dir=cache)
    files = list(cache.glob("*.pt"))
    assert len(first) == 12 and (first.width, first.height) == (W, H) and len(files) == 1
    assert any(len(b) for b in first.boxes)
    # the second call reads the file: change what it holds and see the change come back
    blob = torch.load(files[0], weights_only=True)
    blob["boxes"] = [torch.tensor([[1.0, 2.0, 3.0, 4.0]])] * 12
    torch.save(blob, files[0])
    again = pseudo_labels(folder, cache_dir=cache)
    assert torch.equal(again.boxes[5], torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    # fewer frames than the video holds (labels of the frames before a cut, as they were cached before a
    # cut video was refused): made again
    blob["boxes"] = blob["boxes"][:8]
    torch.save(blob, files[0])
    assert len(pseudo_labels(folder, cache_dir=cache)) == 12
    # other parameters: another file; a corrupt file is recomputed
    pseudo_labels(folder, PseudoLabelParams(min_height=50), cache_dir=cache)
    assert len(list(cache.glob("*.pt"))) == 2
    files[0].write_bytes(b"not a torch file")
    fresh = pseudo_labels(folder, cache_dir=cache)
    assert all(torch.equal(x, y) for x, y in zip(fresh.boxes, first.boxes, strict=True))


def test_split_has_a_gap_and_covers_the_end() -> None:
    s = split_frames(795)
    assert (s.train, s.held_out, s.gap) == (range(0, 600), range(650, 795), 50)
    s = split_frames(100)
    assert (s.train, s.held_out) == (range(0, 76), range(82, 100))
    assert split_frames(50, train_end=10, gap=0).held_out == range(10, 50)
    with pytest.raises(ConfigError, match="fewer than 2 held-out frames"):
        split_frames(3)


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        pseudo_labels("vtest", PseudoLabelParams(min_aspect=3.0, max_aspect=2.0))


@pytest.mark.slow
def test_whole_vtest_has_boxes_in_most_frames(vtest_path: Path, tmp_path: Path) -> None:
    labels = pseudo_labels(vtest_path, cache_dir=tmp_path)
    counts = np.array([len(b) for b in labels.boxes])
    assert len(labels) == 795 and (counts > 0).mean() > 0.9, np.bincount(counts)


def test_a_video_cut_short_is_refused_not_labelled_up_to_the_cut(vtest_path: Path, tmp_path: Path) -> None:
    """vtest cut at 400 kB: its header still states 795 frames, 25 decode. Those 25 were labelled (against a
    background of 4 of them) and cached as the video's labels, and `detect train --frames 0:10` trained on
    them without a word."""
    cut = tmp_path / "cut.avi"
    cut.write_bytes(vtest_path.read_bytes()[:400_000])
    with pytest.raises(VideoError) as exc:
        pseudo_labels(cut, cache_dir=tmp_path / "cache")
    assert str(exc.value) == (
        f"pseudo-labels are made from every frame of the video: video {cut} ends after frame 24, though its "
        "container states 795 frames (truncated or damaged); frames 0..792 (step 8) were asked for"
    )
    assert not (tmp_path / "cache").exists()
