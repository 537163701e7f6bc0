"""Data input for deltatune: offline sample assets (video clips, weights) and video/image-folder streams.

``deltatune.data.assets`` fetches and verifies the sample files; ``deltatune.data.video`` decodes them
into RGB frames and batches of per-window streams for the delta engine.

The video names are imported on first use (PEP 562): ``deltatune.data.video`` imports torch (about a
second), which ``deltatune --help``, ``data`` and a ``report`` of a CSV table never need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deltatune.data.assets import ASSETS, AssetSpec, asset_path, asset_status, data_dir, fetch

if TYPE_CHECKING:
    from deltatune.data.video import (
        DEFAULT_WINDOWS,
        CropWindow,
        FrameStreams,
        VideoInfo,
        load_clip,
        parse_window,
        read_frames,
        video_info,
    )

_VIDEO = frozenset(
    {"DEFAULT_WINDOWS", "CropWindow", "FrameStreams", "VideoInfo", "load_clip", "parse_window", "read_frames",
     "video_info"}
)


def __getattr__(name: str) -> Any:
    """The video names, imported from ``deltatune.data.video`` when first asked for."""
    if name in _VIDEO:
        from deltatune.data import video

        return getattr(video, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ASSETS",
    "AssetSpec",
    "asset_path",
    "asset_status",
    "data_dir",
    "fetch",
    "DEFAULT_WINDOWS",
    "CropWindow",
    "FrameStreams",
    "VideoInfo",
    "load_clip",
    "parse_window",
    "read_frames",
    "video_info",
]
