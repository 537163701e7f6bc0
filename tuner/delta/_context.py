"""Per-network run settings shared by every delta operation of one converted network.

One :class:`RunContext` instance belongs to one :class:`~deltatune.delta.network.DeltaNetwork`; its ops
hold a reference to it, so switching ``accumulate`` or the truncation ``mode`` on the network applies
to all of them at once. Nothing here is global or class-level state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from deltatune.delta.rule import MODES, pixel_score

if TYPE_CHECKING:
    from deltatune.delta.backends import Backend
    from deltatune.delta.stats import StatsRecorder

__all__ = ["RunContext", "Mode", "MODES", "pixel_score"]

Mode = Literal["max", "norm", "rms"]


@dataclass
class RunContext:
    """Settings and sinks shared by the ops of one delta network."""

    backend: Backend
    mode: str = "max"
    accumulate: bool = True
    recorder: StatsRecorder | None = None
    #: When set, ops append a dict per call describing what they did (used by ``deltatune explain``).
    log: list[dict[str, Any]] | None = None
    frame: int = field(default=-1)
    #: Network-wide dense fallback: when every truncation point after the input has threshold 0 (or
    #: none) and accumulation is on, a frame whose updated input fraction reaches this value runs the
    #: dense path on the input reference instead (exactly what the delta path would compute, see
    #: ``InputSparsify``). ``None`` disables it.
    refresh_fraction: float | None = None
    #: Set by the network before each frame: whether the current settings allow that fallback.
    refresh_allowed: bool = False
    #: Key frames on change: when the dense fallback is not exact (a threshold after the input is above
    #: 0), a frame whose updated input fraction reaches this value restarts the stream instead: it runs
    #: dense like frame 0, at the frame itself (see ``InputSparsify``). ``None`` disables it.
    keyframe_change: float | None = None
    #: Set by the network before each frame: whether such a restart may happen on this frame.
    restart_allowed: bool = False
    #: Set by a network with several frame inputs before each frame (after comparing every input): whether
    #: this frame runs dense (the dense refresh, or a key frame on change), one decision for all inputs
    #: (``rule.frame_refresh_due``). ``None``: the one input decides itself (``InputSparsify``).
    frame_dense: bool | None = None
    #: Frames run through that fallback since the last reset.
    refreshed: int = 0

    @property
    def dense_fraction(self) -> float | None:
        """The changed-input fraction at which the current frame runs dense: the dense refresh's when it
        is allowed (exact), the key frame on change's when that is, else ``None`` (the two exclude each
        other: one needs the refresh exact, the other not)."""
        if self.refresh_allowed:
            return self.refresh_fraction
        return self.keyframe_change if self.restart_allowed else None
