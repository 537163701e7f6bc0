"""Reference keypoints for a clip: COCO keypoints JSON and a simple per-keypoint CSV.

Both loaders return :class:`KeypointLabels`, arrays laid out ``[frame, stream, joint]`` so that frame ``f``
of stream ``s`` lines up with the ``f``-th frame the delta network sees in batch entry ``s``. Slots without a
label (a frame with fewer persons than the clip's maximum, or a keypoint not labelled) hold NaN coordinates
and ``visible = False``; PCK counts only visible keypoints.

**COCO keypoints JSON** (``load_coco_keypoints``)

- ``images``: each needs an integer ``id``. Frame rule: if *every* image has an integer ``frame_index``
  (>= 0, unique) that is its frame; otherwise (no image has one) frames are the images sorted by ``id``, so
  frame 0 is the smallest id. Mixing the two is an error. With ``frame_index`` the clip has
  ``max(frame_index) + 1`` frames; frames without an image have no labels.
- ``annotations``: each needs ``image_id`` (a known image) and ``keypoints``, a flat list
  ``[x1, y1, v1, x2, y2, v2, ...]`` of ``3 K`` numbers with ``v`` in {0, 1, 2}. ``visible = v > 0``
  (labelled, possibly occluded, as COCO's OKS counts them); coordinates with ``v = 0`` become NaN.
  Optional ``bbox`` ``[x, y, w, h]`` is stored as ``(x1, y1, x2, y2)``.
- Stream rule: if *every* annotation has an integer ``track_id``, stream = rank of its ``track_id`` among the
  file's sorted distinct track ids (one track per stream; a track twice in one frame is an error); otherwise
  stream = the annotation's position among its image's annotations, in file order.
- Joint names come from the first category that lists ``keypoints``; without one, ``joint_names`` (the
  17 COCO names unless the caller gives its model's, :func:`model_joint_names`).

**CSV** (``load_keypoint_csv``): a header and one row per keypoint with the columns
``frame,stream,joint,x,y,visible`` (others are ignored). ``frame`` and ``stream`` are integers >= 0;
``joint`` is an index into ``joint_names`` (the model's joints, :func:`model_joint_names`: what ``deltatune
predict`` numbers them by) or one of the names; ``visible`` is 0/1/2 (``> 0`` = visible) or
true/false; ``x``/``y`` may be empty only where ``visible`` is false. Each (frame, stream, joint) appears at
most once; missing rows mean "not labelled". The clip has ``max(frame) + 1`` frames and ``max(stream) + 1``
streams. Example::

    frame,stream,joint,x,y,visible
    0,0,nose,120.5,80.0,1
    0,0,5,101.0,130.0,1

**Size.** Both loaders hold the labels as dense arrays of frames x streams x joints, so a file may ask
for at most :data:`MAX_LABEL_SLOTS` slots (2^26: an hour at 30 fps of 17 joints in 36 streams, ten hours
in 3): a larger frame number (a millisecond timestamp in the frame column, say) or stream number is
refused naming the file, its line or image and the value, instead of asking for terabytes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deltatune.errors import LabelError

__all__ = [
    "COCO_KEYPOINT_NAMES",
    "MPII_JOINT_NAMES",
    "KeypointLabels",
    "load_coco_keypoints",
    "load_keypoint_csv",
    "model_joint_names",
    "MAX_LABEL_SLOTS",
]

#: The 17 COCO keypoints in dataset order.
COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

#: The 16 MPII joints in dataset order (as the official HRNet ``mpii.py``).
MPII_JOINT_NAMES: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck",
    "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip

_CSV_COLUMNS = ("frame", "stream", "joint", "x", "y", "visible")
#: The most frame x stream x joint slots a labels file may ask for (see the module docstring): 1 GiB of
#: float64 coordinates.
MAX_LABEL_SLOTS = 2**26


def model_joint_names(info: Any) -> tuple[str, ...]:
    """The joints of the pose model ``info`` (its :class:`deltatune_models.ModelInfo`) in its output order,
    the order ``deltatune predict`` numbers them in: the names its labels may use.

    The model card gives the count (``num_joints``): 17 are COCO's keypoints and 16 MPII's joints (the
    two layouts of the HRNet family, whose flip pairs follow the same rule), BlazePose's 39 rows its
    ``LANDMARK_NAMES``; another count gets the names ``joint_0`` ... ``joint_{K-1}``.
    """
    k = int(info.num_joints)
    if info.family == "blazepose":
        from deltatune_models.blazepose import LANDMARK_NAMES

        if len(LANDMARK_NAMES) == k:
            return LANDMARK_NAMES
    for names in (COCO_KEYPOINT_NAMES, MPII_JOINT_NAMES):
        if len(names) == k:
            return names
    return tuple(f"joint_{j}" for j in range(k))
_TRUE = {"1", "2", "1.0", "2.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


@dataclass(frozen=True, eq=False)
class KeypointLabels:
    """Reference keypoints of a clip.

    Attributes:
        coords: ``[F, S, K, 2]`` float64 ``(x, y)`` in image pixels; NaN where not labelled.
        visible: ``[F, S, K]`` bool; True where the keypoint is labelled and should be counted.
        joint_names: the ``K`` joint names.
        boxes: ``[F, S, 4]`` person boxes ``(x1, y1, x2, y2)`` (NaN where absent), or None when the file
            has none.

    Example:
        >>> lab = KeypointLabels(np.zeros((2, 1, 3, 2)), np.ones((2, 1, 3), bool), ("a", "b", "c"))
        >>> lab.n_frames, lab.n_streams, lab.n_joints
        (2, 1, 3)
    """

    coords: np.ndarray
    visible: np.ndarray
    joint_names: tuple[str, ...]
    boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        c, v = np.asarray(self.coords), np.asarray(self.visible)
        if c.ndim != 4 or c.shape[-1] != 2:
            raise LabelError(f"KeypointLabels.coords: expected shape [F, S, K, 2], got {list(c.shape)}")
        if v.shape != c.shape[:-1] or v.dtype != bool:
            raise LabelError(
                f"KeypointLabels.visible: expected bool of shape {list(c.shape[:-1])}, "
                f"got {v.dtype} {list(v.shape)}"
            )
        if len(self.joint_names) != c.shape[2]:
            raise LabelError(
                f"KeypointLabels.joint_names: expected {c.shape[2]} names, got {len(self.joint_names)}"
            )
        if self.boxes is not None and np.shape(self.boxes) != (*c.shape[:2], 4):
            raise LabelError(
                f"KeypointLabels.boxes: expected shape {[*c.shape[:2], 4]}, got {list(np.shape(self.boxes))}"
            )

    @property
    def n_frames(self) -> int:
        """Number of frames ``F``."""
        return int(self.coords.shape[0])

    @property
    def n_streams(self) -> int:
        """Number of streams (person slots) ``S``."""
        return int(self.coords.shape[1])

    @property
    def n_joints(self) -> int:
        """Number of joints ``K``."""
        return int(self.coords.shape[2])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (nested lists; NaN becomes ``None``)."""

        def clean(a: np.ndarray) -> Any:
            return [clean(x) for x in a] if a.ndim else (None if math.isnan(a) else float(a))

        return {
            "joint_names": list(self.joint_names),
            "coords": clean(np.asarray(self.coords, dtype=np.float64)),
            "visible": np.asarray(self.visible).tolist(),
            "boxes": None if self.boxes is None else clean(np.asarray(self.boxes, dtype=np.float64)),
        }


def _check_slots(path: str, where: str, column: str, value: str, n: int, per: int, per_what: str) -> None:
    """Refuse ``n`` frames or streams (``column`` ``value`` at ``where`` the largest) of ``per`` slots each
    when they pass :data:`MAX_LABEL_SLOTS`, before any array is made."""
    last = MAX_LABEL_SLOTS // per - 1
    if n - 1 > last:
        hint = "frames number the video's frames from 0: is it a timestamp?" if column == "frame" else (
            "streams number the crop windows (or persons) from 0"
        )
        raise LabelError(
            f"{path}: {where}: {column} {value} is past the last {column} a labels file {per_what} may have, "
            f"{last:,} (its labels are dense arrays of at most {MAX_LABEL_SLOTS:,} frame x stream x joint "
            f"slots); {hint}"
        )


# --------------------------------------------------------------------------------------------- COCO JSON


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise LabelError(f"{path}: label file not found") from None
    except json.JSONDecodeError as exc:
        raise LabelError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read label file ({exc})") from None


def _coco_joint_names(path: str, data: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    categories = data.get("categories", [])
    if not isinstance(categories, list):
        raise LabelError(f"{path}: 'categories' must be a list")
    for cat in categories:
        if isinstance(cat, dict) and "keypoints" in cat:
            names = cat["keypoints"]
            if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
                raise LabelError(f"{path}: category 'keypoints' must be a non-empty list of names")
            return tuple(names)
    return default


def _coco_frames(path: str, images: list[Any]) -> tuple[dict[int, int], int]:
    """Map image id -> frame index, and the number of frames."""
    ids: list[int] = []
    for i, img in enumerate(images):
        if not isinstance(img, dict) or not _is_int(img.get("id")):
            raise LabelError(f"{path}: image {i} has no integer 'id'")
        ids.append(img["id"])
    if len(set(ids)) != len(ids):
        raise LabelError(f"{path}: duplicate image ids")
    with_index = [("frame_index" in img) for img in images]
    if any(with_index) and not all(with_index):
        raise LabelError(f"{path}: some images have 'frame_index' and some do not; give it for all or none")
    if not any(with_index):
        return {img_id: f for f, img_id in enumerate(sorted(ids))}, len(ids)
    frames: dict[int, int] = {}
    for img in images:
        f = img["frame_index"]
        if not _is_int(f) or f < 0:
            raise LabelError(f"{path}: image {img['id']} has frame_index {f!r}; expected an integer >= 0")
        frames[img["id"]] = f
    if len(set(frames.values())) != len(frames):
        raise LabelError(f"{path}: two images share one frame_index")
    return frames, (max(frames.values()) + 1 if frames else 0)


def _coco_annotation(path: str, i: int, ann: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Parse one annotation into coords [K, 2], visible [K] and an xyxy box (or None)."""
    kps = ann.get("keypoints")
    if not isinstance(kps, list) or len(kps) != 3 * k:
        got = len(kps) if isinstance(kps, list) else type(kps).__name__
        raise LabelError(
            f"{path}: annotation {i}: expected {3 * k} keypoint values ({k} joints x 3), got {got}"
        )
    if not all(_is_number(v) for v in kps):
        raise LabelError(f"{path}: annotation {i}: keypoints must all be numbers")
    arr = np.asarray(kps, dtype=np.float64).reshape(k, 3)
    if not np.isin(arr[:, 2], (0, 1, 2)).all():
        raise LabelError(f"{path}: annotation {i}: visibility flags must be 0, 1 or 2")
    visible = arr[:, 2] > 0
    coords = np.where(visible[:, None], arr[:, :2], np.nan)
    box = None
    if "bbox" in ann:
        b = ann["bbox"]
        if not (
            isinstance(b, list) and len(b) == 4 and all(_is_number(v) for v in b) and b[2] >= 0 and b[3] >= 0
        ):
            raise LabelError(f"{path}: annotation {i}: bbox must be [x, y, w, h] with w, h >= 0")
        box = np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]], dtype=np.float64)
    return coords, visible, box


def _coco_streams(path: str, annotations: list[dict[str, Any]], frames: dict[int, int]) -> list[int]:
    """Stream slot of each annotation (see the module docstring for the rule)."""
    has_track = [_is_int(a.get("track_id")) for a in annotations]
    if annotations and all(has_track):
        rank = {t: s for s, t in enumerate(sorted({a["track_id"] for a in annotations}))}
        streams = [rank[a["track_id"]] for a in annotations]
        seen: set[tuple[int, int]] = set()
        for a, s in zip(annotations, streams, strict=True):
            key = (frames[a["image_id"]], s)
            if key in seen:
                raise LabelError(f"{path}: track_id {a['track_id']} appears twice in image {a['image_id']}")
            seen.add(key)
        return streams
    counts: dict[int, int] = {}
    streams = []
    for a in annotations:
        streams.append(counts.get(a["image_id"], 0))
        counts[a["image_id"]] = streams[-1] + 1
    return streams


def load_coco_keypoints(
    path: str | os.PathLike[str], *, joint_names: Sequence[str] = COCO_KEYPOINT_NAMES
) -> KeypointLabels:
    """Load a COCO keypoints JSON of one clip into ``[frame, stream, joint]`` arrays.

    Frames follow ``frame_index`` when every image has one, else the images sorted by ``id``; streams follow
    ``track_id`` when every annotation has one, else the order of annotations within each image (full rules
    in the module docstring). The joints are the first category's ``keypoints``, else ``joint_names``
    (default: the 17 COCO names). Raises :class:`~deltatune.errors.LabelError` on a malformed file.

    Example:
        >>> import json, tempfile, pathlib
        >>> doc = {"images": [{"id": 7, "file_name": "f7.jpg"}],
        ...        "annotations": [{"image_id": 7, "keypoints": [10, 20, 2] + [0, 0, 0] * 16}]}
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "clip.json"; _ = p.write_text(json.dumps(doc))
        >>> lab = load_coco_keypoints(p)
        >>> lab.coords.shape, lab.coords[0, 0, 0].tolist(), int(lab.visible.sum())
        ((1, 1, 17, 2), [10.0, 20.0], 1)
    """
    p = os.fspath(path)
    data = _read_json(p)
    if not isinstance(data, dict):
        raise LabelError(f"{p}: expected a JSON object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise LabelError(f"{p}: missing or non-list '{key}'")
    names = _coco_joint_names(p, data, tuple(joint_names))
    k = len(names)
    frames, n_frames = _coco_frames(p, data["images"])
    annotations = data["annotations"]
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise LabelError(f"{p}: annotation {i} is not an object")
        if not _is_int(ann.get("image_id")) or ann["image_id"] not in frames:
            raise LabelError(f"{p}: annotation {i} refers to unknown image_id {ann.get('image_id')!r}")
    parsed = [_coco_annotation(p, i, ann, k) for i, ann in enumerate(annotations)]
    streams = _coco_streams(p, annotations, frames)
    n_streams = max(streams) + 1 if streams else 0
    if frames and "frame_index" in data["images"][0]:  # numbered by the file, not by counting its images
        last = max(frames, key=lambda img_id: frames[img_id])
        slots = max(1, n_streams) * k
        _check_slots(p, f"image {last}", "frame", f"{frames[last]} (its frame_index)", n_frames, slots,
                     f"of {max(1, n_streams)} stream(s) of {k} joints")
    coords = np.full((n_frames, n_streams, k, 2), np.nan)
    visible = np.zeros((n_frames, n_streams, k), dtype=bool)
    any_box = any(box is not None for _, _, box in parsed)
    boxes = np.full((n_frames, n_streams, 4), np.nan) if any_box else None
    for ann, s, (c, v, box) in zip(annotations, streams, parsed, strict=True):
        f = frames[ann["image_id"]]
        coords[f, s], visible[f, s] = c, v
        if boxes is not None and box is not None:
            boxes[f, s] = box
    return KeypointLabels(coords=coords, visible=visible, joint_names=names, boxes=boxes)


# --------------------------------------------------------------------------------------------- CSV


def _read_csv(path: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise LabelError(f"{path}: label file not found") from None
    except pd.errors.EmptyDataError:
        raise LabelError(f"{path}: CSV file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabelError(f"{path}: cannot parse CSV ({first})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in _CSV_COLUMNS if c not in df.columns]
    if missing:
        raise LabelError(f"{path}: missing CSV columns {missing}; expected {list(_CSV_COLUMNS)}")
    if df.empty:
        raise LabelError(f"{path}: CSV has a header but no rows")
    return df


def _csv_ints(path: str, df: pd.DataFrame, column: str) -> np.ndarray:
    """The integers >= 0 of ``column``, as float64 (exact up to 2^53; no int64 overflow before
    :func:`_check_slots` bounds them)."""
    values = pd.to_numeric(df[column].str.strip(), errors="coerce")
    bad = values.isna() | (values % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise LabelError(f"{path}: line {i + 2}: {column} {df[column].iloc[i]!r} is not an integer")
    neg = values < 0
    if neg.any():
        i = int(np.flatnonzero(neg.to_numpy())[0])
        raise LabelError(f"{path}: line {i + 2}: {column} {int(values.iloc[i])} is negative")
    return values.to_numpy(dtype=np.float64)


def _csv_joints(path: str, df: pd.DataFrame, joint_names: Sequence[str], model: str | None) -> np.ndarray:
    lookup = {name: j for j, name in enumerate(joint_names)}
    whose = f"{model}'s {len(joint_names)}" if model else str(len(joint_names))
    out = np.empty(len(df), dtype=np.int64)
    for i, raw in enumerate(df["joint"].str.strip()):
        if raw.isdecimal():
            j = int(raw)
            if j >= len(joint_names):  # labels of another skeleton (BlazePose's 33 landmarks, say)?
                top = max(int(r) for r in df["joint"].str.strip() if r.isdecimal())
                raise LabelError(
                    f"{path}: line {i + 2}: joint {j} is out of range for {whose} joints (the "
                    f"file numbers joints up to {top}): labels must number the model's own joints, 0-"
                    f"{len(joint_names) - 1} in its order ({', '.join(joint_names[:3])}, ...)"
                )
        elif raw in lookup:
            j = lookup[raw]
        else:
            raise LabelError(f"{path}: line {i + 2}: unknown joint {raw!r}")
        out[i] = j
    return out


def _csv_visible(path: str, df: pd.DataFrame) -> np.ndarray:
    out = np.empty(len(df), dtype=bool)
    for i, raw in enumerate(df["visible"].str.strip().str.lower()):
        if raw not in _TRUE and raw not in _FALSE:
            raise LabelError(f"{path}: line {i + 2}: visible {raw!r} is not 0/1/2 or true/false")
        out[i] = raw in _TRUE
    return out


def _csv_coord(path: str, df: pd.DataFrame, column: str, visible: np.ndarray) -> np.ndarray:
    raw = df[column].str.strip()
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = (np.isnan(values) & (raw != "").to_numpy()) | np.isinf(values)
    bad |= visible & np.isnan(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LabelError(
            f"{path}: line {i + 2}: {column} {df[column].iloc[i]!r} is not a finite number"
            + (" (required for a visible keypoint)" if visible[i] else "")
        )
    return values


def load_keypoint_csv(
    path: str | os.PathLike[str],
    *,
    joint_names: Sequence[str] = COCO_KEYPOINT_NAMES,
    model: str | None = None,
) -> KeypointLabels:
    """Load a per-keypoint CSV (``frame,stream,joint,x,y,visible``) into ``[frame, stream, joint]`` arrays.

    ``joint_names`` fixes ``K`` and the names the ``joint`` column may use (default: the 17 COCO names; a
    model's own are :func:`model_joint_names`); ``model`` names the model they are in an error. The schema
    is in the module docstring. Raises :class:`~deltatune.errors.LabelError` naming the file (and line)
    on a malformed file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "clip.csv"
        >>> _ = p.write_text("frame,stream,joint,x,y,visible\\n1,0,nose,3.5,4,1\\n")
        >>> lab = load_keypoint_csv(p)
        >>> lab.coords.shape, lab.coords[1, 0, 0].tolist(), bool(lab.visible[0, 0, 0])
        ((2, 1, 17, 2), [3.5, 4.0], False)
    """
    p = os.fspath(path)
    names = tuple(joint_names)
    if not names or len(set(names)) != len(names):
        raise LabelError(f"{p}: joint_names must be non-empty and unique")
    df = _read_csv(p)
    frame = _csv_ints(p, df, "frame")
    stream = _csv_ints(p, df, "stream")
    k = len(names)
    for column, ints in (("stream", stream), ("frame", frame)):  # the frames' slots depend on the streams
        i = int(np.argmax(ints))
        per, per_what = (k, f"of {k} joints") if column == "stream" else (
            (int(stream.max()) + 1) * k, f"of {int(stream.max()) + 1} stream(s) of {k} joints"
        )
        _check_slots(p, f"line {i + 2}", column, df[column].iloc[i].strip(), int(ints[i]) + 1, per, per_what)
    frame, stream = frame.astype(np.int64), stream.astype(np.int64)
    joint = _csv_joints(p, df, names, model)
    vis = _csv_visible(p, df)
    x = _csv_coord(p, df, "x", vis)
    y = _csv_coord(p, df, "y", vis)
    keys = pd.DataFrame({"f": frame, "s": stream, "j": joint})
    dup = keys.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise LabelError(
            f"{p}: line {i + 2}: frame {frame[i]}, stream {stream[i]}, joint {joint[i]} appears twice"
        )
    coords = np.full((int(frame.max()) + 1, int(stream.max()) + 1, len(names), 2), np.nan)
    visible = np.zeros(coords.shape[:-1], dtype=bool)
    coords[frame, stream, joint, 0] = x
    coords[frame, stream, joint, 1] = y
    visible[frame, stream, joint] = vis
    return KeypointLabels(coords=coords, visible=visible, joint_names=names)
