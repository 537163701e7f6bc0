"""Data input for deltatune: offline sample assets (video clips, weights) and video/image-folder streams.

``deltatune.data.assets`` fetches and verifies the sample files; ``deltatune.data.video`` decodes them
into RGB frames and batches of per-window streams for the delta engine.
"""

from __future__ import annotations

from deltatune.data.assets import ASSETS, AssetSpec, asset_path, asset_status, data_dir, fetch
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
