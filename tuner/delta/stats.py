"""Per-layer, per-frame work statistics of a delta network.

Every compute layer (conv, transposed conv, linear) records its dense and delta multiply-accumulates
(MACs) and the fraction of updated input/output pixels; every truncation point records the fraction of
updated pixels reaching it and the fraction that fired. Frame 0 runs dense and is recorded too (its
delta MACs equal its dense MACs); summaries exclude it by default because it is not representative of a
running stream.

MAC counting follows DeltaCNN: a conv's dense MACs are ``H_out*W_out*C_out*(C_in/groups)*k_h*k_w``
per sample; its delta MACs replace ``H_out*W_out`` by the number of *updated* output pixels (pixels whose
receptive field touches an updated input pixel). A transposed conv is counted per updated *input* pixel
(each input pixel scatters ``C_out/groups*k_h*k_w`` products per input channel). A linear layer costs its
dense MACs for every sample whose input changed at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StatsRecorder", "LayerRecord", "StatsSummary"]


@dataclass(frozen=True)
class LayerRecord:
    """What one op did on one frame (counts summed over the batch)."""

    frame: int
    name: str
    kind: str
    dense_macs: int = 0
    delta_macs: int = 0
    pixels_in: int = 0
    active_in: int = 0
    pixels_out: int = 0
    active_out: int = 0


@dataclass(frozen=True)
class StatsSummary:
    """Totals over the recorded frames (frame 0 excluded unless asked)."""

    frames: int
    dense_macs: int
    delta_macs: int

    @property
    def mac_speedup(self) -> float:
        """Dense MACs / delta MACs (``inf`` when nothing had to be computed)."""
        if self.delta_macs == 0:
            return float("inf") if self.dense_macs else 1.0
        return self.dense_macs / self.delta_macs

    def __add__(self, other: StatsSummary) -> StatsSummary:
        """The totals of two disjoint sets of frames (running totals of a long stream)."""
        return StatsSummary(
            self.frames + other.frames, self.dense_macs + other.dense_macs, self.delta_macs + other.delta_macs
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "dense_macs": self.dense_macs,
            "delta_macs": self.delta_macs,
            "mac_speedup": self.mac_speedup,
        }


class StatsRecorder:
    """Collects :class:`LayerRecord` rows; cheap enough to leave on, switchable off for timing."""

    def __init__(self) -> None:
        self.records: list[LayerRecord] = []
        self.enabled = True

    def clear(self) -> None:
        """Forget every record."""
        self.records.clear()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Record nothing inside the block (timed runs, internal passes); the previous state comes back."""
        was = self.enabled
        self.enabled = False
        try:
            yield
        finally:
            self.enabled = was

    def add(self, record: LayerRecord) -> None:
        if self.enabled:
            self.records.append(record)

    def summary(self, *, include_first: bool = False) -> StatsSummary:
        """Total dense/delta MACs over the recorded frames."""
        rows = [r for r in self.records if include_first or r.frame > 0]
        frames = len({r.frame for r in rows})
        return StatsSummary(
            frames=frames,
            dense_macs=sum(r.dense_macs for r in rows),
            delta_macs=sum(r.delta_macs for r in rows),
        )

    def take(self, *, include_first: bool = False) -> StatsSummary:
        """:meth:`summary`, then forget the records: running totals over a stream of any length without
        one record per op and frame piling up (``predict`` over an hour of video; add the summaries)."""
        out = self.summary(include_first=include_first)
        self.clear()
        return out

    def per_frame_speedup(self) -> dict[int, float]:
        """MAC speedup of each recorded frame."""
        dense: dict[int, int] = {}
        delta: dict[int, int] = {}
        for r in self.records:
            dense[r.frame] = dense.get(r.frame, 0) + r.dense_macs
            delta[r.frame] = delta.get(r.frame, 0) + r.delta_macs
        return {f: (dense[f] / delta[f] if delta[f] else float("inf")) for f in sorted(dense)}

    def to_frame(self) -> pd.DataFrame:
        """All records as a tidy DataFrame (one row per op and frame)."""
        import pandas as pd

        return pd.DataFrame([r.__dict__ for r in self.records])

    def per_layer(self, *, include_first: bool = False) -> pd.DataFrame:
        """One row per op: mean active fractions and summed MACs over the frames."""
        df = self.to_frame()
        if df.empty:
            return df
        if not include_first:
            df = df[df["frame"] > 0]
        g = df.groupby(["name", "kind"], sort=False)
        out = g[["dense_macs", "delta_macs", "pixels_in", "active_in", "pixels_out", "active_out"]].sum()
        out["frac_in"] = out["active_in"] / out["pixels_in"].where(out["pixels_in"] > 0)
        out["frac_out"] = out["active_out"] / out["pixels_out"].where(out["pixels_out"] > 0)
        out["mac_speedup"] = out["dense_macs"] / out["delta_macs"].where(out["delta_macs"] > 0)
        return out.reset_index()
