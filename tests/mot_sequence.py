"""A real MOT16-format sequence cut from vtest, for tests of everything that reads MOT folders."""

from __future__ import annotations

from pathlib import Path

import torch

from deltatune.data import read_frames
from deltatune.data.pseudo_boxes import pseudo_person_boxes
from deltatune.train.persons import background_model

SEQINFO = """[Sequence]
name={name}
imDir=img1
frameRate=10
seqLength={n}
imWidth=384
imHeight=288
imExt=.jpg
"""


def write_mot_sequence(vtest_path: Path, root: Path, *, start: int = 40, count: int = 12) -> Path:
    """Write ``root`` as a MOT sequence: vtest frames ``start..start+count-1`` at half size (384x288) as
    ``img1/*.jpg``, their pseudo-label person boxes (background: median of every 3rd of the first 120
    frames) as ``gt/gt.txt`` rows of considered pedestrians, and ``seqinfo.ini``."""
    from PIL import Image

    (root / "img1").mkdir(parents=True)
    (root / "gt").mkdir()
    bg = background_model(
        torch.stack(
            [torch.from_numpy(f).permute(2, 0, 1) for f in read_frames(vtest_path, count=120, step=3)]
        )
    )
    rows = []
    for i, f in enumerate(read_frames(vtest_path, start=start, count=count)):
        Image.fromarray(f).resize((384, 288), Image.BILINEAR).save(root / "img1" / f"{i + 1:06d}.jpg")
        for j, (x1, y1, x2, y2) in enumerate(
            (pseudo_person_boxes(torch.from_numpy(f).permute(2, 0, 1), bg) / 2).tolist()
        ):
            rows.append(f"{i + 1},{j + 1},{x1 + 1:.1f},{y1 + 1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},1,1,1.0")
    (root / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    (root / "seqinfo.ini").write_text(SEQINFO.format(name=root.name, n=count))
    return root
