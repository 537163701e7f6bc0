"""A video with a network's predictions drawn on it (``deltatune predict --overlay``): what one looks at.

Each frame is the source frame with every stream's crop window outlined and, for pose models, the
present keypoints as dots (joined into a skeleton for the 17 COCO keypoints); for classifiers, each
window's top-1 class index and probability; for the detector, its boxes scoring 0.5 or more. Written as
H.264 MP4 with PyAV, at the source's frame rate.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COCO_LIMBS", "OverlayVideo"]

#: The COCO-17 skeleton: pairs of keypoint indices joined by a line (the pairs COCO's annotation format
#: lists, 0-based).
COCO_LIMBS: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9),
    (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
#: One colour per stream (RGB), repeated past the sixth.
_COLOURS = ((255, 64, 64), (64, 200, 255), (255, 220, 0), (120, 255, 120), (255, 120, 255), (255, 160, 60))


class OverlayVideo:
    """An MP4 being written frame by frame. ``width``/``height`` are the source's; an odd size is padded
    by one black pixel (H.264's 4:2:0 needs even sizes). Close it (or use it as a context manager)."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float | None) -> None:
        import av

        self.width, self.height = width, height
        self._container = av.open(str(path), mode="w", format="mp4")
        rate = Fraction(fps or 25.0).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self.frames = 0

    def write(
        self,
        frame: np.ndarray,
        windows: list[Any],
        *,
        keypoints: np.ndarray | None = None,
        visible: np.ndarray | None = None,
        classes: list[tuple[int, float]] | None = None,
        boxes: list[tuple[list[float], float]] | None = None,
        min_score: float = 0.5,
    ) -> None:
        """Draw one frame: ``frame`` RGB ``uint8 [H, W, 3]``; per stream ``b`` (window ``windows[b]``),
        ``keypoints[b]`` ``[K, 2]`` in frame pixels with ``visible[b]`` ``[K]``, or ``classes[b]`` =
        ``(class index, probability)``; or the detector's ``boxes`` (``([x1, y1, x2, y2], score)`` in
        frame pixels; those scoring at least ``min_score`` are drawn)."""
        import av
        from PIL import Image, ImageDraw

        img = Image.fromarray(frame)
        if img.size != (self._stream.width, self._stream.height):
            padded = Image.new("RGB", (self._stream.width, self._stream.height))
            padded.paste(img, (0, 0))
            img = padded
        draw = ImageDraw.Draw(img)
        r = max(2, round(min(self.width, self.height) / 160))
        for b, win in enumerate(windows):
            colour = _COLOURS[b % len(_COLOURS)]
            draw.rectangle((win.x, win.y, win.x + win.w - 1, win.y + win.h - 1), outline=(200, 200, 200))
            if keypoints is not None and visible is not None:
                kp, vis = keypoints[b], visible[b]
                if len(kp) == 17:
                    for i, j in COCO_LIMBS:
                        if vis[i] and vis[j]:
                            draw.line((*kp[i], *kp[j]), fill=colour, width=max(1, r // 2))
                for (x, y), v in zip(kp, vis, strict=True):
                    if v:
                        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(0, 0, 0))
            if classes is not None:
                cls, prob = classes[b]
                draw.text((win.x + 3, win.y + 2), f"class {cls}  {prob:.2f}", fill=colour)
        for box, score in boxes or []:
            if score >= min_score:
                draw.rectangle(box, outline=_COLOURS[0], width=2)
                draw.text((box[0] + 2, box[1] + 1), f"{score:.2f}", fill=_COLOURS[0])
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> OverlayVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
