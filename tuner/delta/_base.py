"""Base class of every delta operation."""

from __future__ import annotations

from typing import Any

from torch import nn

from deltatune.delta._context import RunContext

__all__ = ["DeltaOp", "TruncationOp"]


class DeltaOp(nn.Module):
    """One node of a converted network, processing :class:`DeltaTensor` values.

    ``name`` is the stable, readable call-site name (qualified module name, ``#k`` for the k-th reuse of a
    module, ``owner:function`` for functional calls); ``kind`` is a short op type used by threshold
    mappings and reports (``conv``, ``relu``, ``maxpool`` ...).
    """

    kind: str = "op"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._ctx: RunContext | None = None

    @property
    def ctx(self) -> RunContext:
        if self._ctx is None:  # pragma: no cover - set by convert()
            raise RuntimeError(f"delta op {self.name!r} is not attached to a network")
        return self._ctx

    def attach(self, ctx: RunContext) -> None:
        """Connect this op to its network's shared settings."""
        self._ctx = ctx

    def reset(self) -> None:
        """Drop per-stream state (no-op for stateless ops)."""

    def log(self, **fields: Any) -> None:
        """Append a step description for ``deltatune explain`` when logging is on."""
        if self._ctx is not None and self._ctx.log is not None:
            self._ctx.log.append({"name": self.name, "kind": self.kind, "frame": self._ctx.frame, **fields})

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class TruncationOp(DeltaOp):
    """A delta op with a threshold: the input sparsifier and every non-linear call site.

    ``threshold=None`` means "never truncate": every updated pixel propagates its change.
    ``is_point``: whether the op is one of the network's truncation points (named in threshold files and
    searched). Max pooling is not, as in DeltaCNN: it keeps threshold 0 (only changes of exactly zero are
    dropped, which is exact) unless the network was converted with ``truncate_maxpool=True``.
    """

    def __init__(self, name: str, threshold: float | None = 0.0) -> None:
        super().__init__(name)
        self.threshold: float | None = threshold
        self.is_point = True

    def extra_repr(self) -> str:
        return f"name={self.name!r}, threshold={self.threshold}"
