"""MOT16/17 sequence loading: seqinfo.ini, the evaluation filter, coordinates, frames and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deltatune.data.mot import load_mot_sequence
from deltatune.data.video import video_info
from deltatune.errors import LabelError, VideoError

SEQINFO = """[Sequence]
name=TINY-01
imDir=img1
frameRate=25
seqLength=3
imWidth=32
imHeight=24
imExt=.jpg
"""
GT_ROWS = [
    "1,1,5,4,10,8,1,1,1.0",  # kept: (4, 3, 14, 11)
    "1,2,20,10,20,20,1,1,0.5",  # kept, reaches over the border: clipped to (19, 9, 32, 24)
    "1,3,1,1,5,5,0,1,1.0",  # conf 0 (not considered): dropped
    "2,1,6,4,10,8,1,1,0.1",  # kept unless min_visibility > 0.1
    "2,4,1,1,4,4,1,7,1.0",  # class 7 (static person): dropped
]
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _write_sequence(root: Path, rows: list[str] | None = None, seqinfo: str = SEQINFO) -> Path:
    (root / "gt").mkdir(parents=True)
    (root / "img1").mkdir()
    (root / "seqinfo.ini").write_text(seqinfo)
    (root / "gt" / "gt.txt").write_text("\n".join(GT_ROWS if rows is None else rows) + "\n")
    for i, colour in enumerate(COLOURS, start=1):
        Image.new("RGB", (32, 24), colour).save(root / "img1" / f"{i:06d}.jpg", quality=95)
    return root


def test_loads_seqinfo_and_filtered_boxes_in_xyxy(tmp_path):
    seq = load_mot_sequence(_write_sequence(tmp_path / "TINY-01"))
    assert (seq.name, seq.length, seq.width, seq.height, seq.frame_rate) == ("TINY-01", 3, 32, 24, 25.0)
    assert seq.boxes[0].tolist() == [[4.0, 3.0, 14.0, 11.0], [19.0, 9.0, 32.0, 24.0]]
    assert seq.ids[0].tolist() == [1, 2]
    assert seq.boxes[1].tolist() == [[5.0, 3.0, 15.0, 11.0]]
    assert seq.boxes[2].shape == (0, 4) and seq.boxes[2].dtype == torch.float32
    assert seq.frame_paths()[2] == tmp_path / "TINY-01" / "img1" / "000003.jpg"


def test_min_visibility_drops_occluded_pedestrians(tmp_path):
    seq = load_mot_sequence(_write_sequence(tmp_path / "s"), min_visibility=0.25)
    assert seq.boxes[1].shape == (0, 4)
    assert seq.boxes[0].shape == (2, 4)


def test_frames_are_decoded_rgb_at_the_declared_size(tmp_path):
    seq = load_mot_sequence(_write_sequence(tmp_path / "s"))
    frames = list(seq.frames(start=1))
    assert len(frames) == 2 and frames[0].shape == (24, 32, 3) and frames[0].dtype == np.uint8
    assert np.abs(frames[0].reshape(-1, 3).mean(0) - COLOURS[1]).max() < 4  # JPEG: nearly the colour


def test_frame_size_unlike_seqinfo_is_a_video_error(tmp_path):
    root = _write_sequence(tmp_path / "s", seqinfo=SEQINFO.replace("imWidth=32", "imWidth=40"))
    with pytest.raises(VideoError, match=r"frame 1 is 32x24, but seqinfo.ini says 40x24"):
        next(load_mot_sequence(root).frames())


def test_a_seq_length_unlike_the_image_count_names_both(tmp_path):
    root = _write_sequence(tmp_path / "s")
    (root / "img1" / "000003.jpg").unlink()
    with pytest.raises(LabelError, match=r"seqinfo.ini: seqLength=3 but img1/ holds 2 images$"):
        load_mot_sequence(root)


def test_missing_gt_txt(tmp_path):
    root = _write_sequence(tmp_path / "s")
    (root / "gt" / "gt.txt").unlink()
    with pytest.raises(LabelError, match=r"gt[/\\]gt.txt: ground-truth file gt.txt not found"):
        load_mot_sequence(root)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2,1,6,4,10,8,1,1", r"gt.txt:3: expected 9 comma-separated values .* got 8"),
        ("2,1,six,4,10,8,1,1,1", r"gt.txt:3: non-numeric value in '2,1,six,4,10,8,1,1,1'"),
        ("2,1,6,4,0,8,1,1,1", r"gt.txt:3: box w=0 h=8 is empty"),
        ("9,1,6,4,10,8,1,1,1", r"gt.txt:3: frame 9 outside 1..3"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    root = _write_sequence(tmp_path / "s", rows=[GT_ROWS[0], "", row])
    with pytest.raises(LabelError, match=message):
        load_mot_sequence(root)


def test_box_wholly_outside_the_image_names_file_line_and_box(tmp_path):
    root = _write_sequence(tmp_path / "s", rows=[GT_ROWS[0], "1,5,40,2,6,6,1,1,1"])
    with pytest.raises(
        LabelError, match=r"gt.txt:2: box x1,y1,x2,y2=\(39, 1, 45, 7\) lies wholly outside the 32x24"
    ):
        load_mot_sequence(root)


def test_missing_seqinfo_or_field(tmp_path):
    root = _write_sequence(tmp_path / "a")
    (root / "seqinfo.ini").unlink()
    with pytest.raises(LabelError, match=r"seqinfo.ini: seqinfo.ini not found"):
        load_mot_sequence(root)
    root = _write_sequence(tmp_path / "b", seqinfo=SEQINFO.replace("imHeight=24\n", ""))
    with pytest.raises(LabelError, match=r"seqinfo.ini: \[Sequence\] has no 'imHeight'"):
        load_mot_sequence(root)
    root = _write_sequence(tmp_path / "c", seqinfo=SEQINFO.replace("seqLength=3", "seqLength=three"))
    with pytest.raises(LabelError, match=r"seqinfo.ini: seqLength='three' is not an integer"):
        load_mot_sequence(root)


def test_a_sequence_image_folder_has_the_sequence_frame_rate(tmp_path):
    """``video_info`` of a sequence's ``img1/`` reads ``frameRate`` from the ``seqinfo.ini`` beside it (an
    overlay video of MOT frames was written at 25 fps, whatever the sequence's rate); a folder that is
    not the ini's ``imDir``, or beside a broken ini, has none."""
    root = _write_sequence(tmp_path / "s", seqinfo=SEQINFO.replace("frameRate=25", "frameRate=14"))
    assert video_info(root / "img1").fps == 14.0
    shutil.copytree(root / "img1", root / "other")
    assert video_info(root / "other").fps is None
    (root / "seqinfo.ini").write_text("not an ini")
    assert video_info(root / "img1").fps is None
