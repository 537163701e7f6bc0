"""Execution backends: how a delta op's linear work is computed.

A backend is an explicit object chosen at conversion time (``convert(..., backend=...)``). The
:class:`ReferenceBackend` computes every masked result densely (a convolution over the whole delta
tensor, which is exactly zero outside the updated region); it is the ground truth that faster sparse
kernels are checked against. The :class:`~deltatune.delta.sparse.SparseBackend` (``"sparse"``) computes
only the updated output pixels where that is measured to be faster.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from deltatune.errors import ConfigError

__all__ = ["Backend", "ReferenceBackend", "get_backend", "BACKENDS"]


class Backend:
    """Interface of an execution backend. Subclasses override the kernels they accelerate."""

    name: str = "base"
    #: Whether activations should be kept in channels-last memory (decided once per frame at the input).
    channels_last: bool = False
    #: Default of the network-wide dense fallback (``convert(dense_refresh="auto")``); ``None`` = off.
    dense_refresh: float | None = None

    def conv2d(self, delta: Tensor, mask: Tensor | None, conv: nn.Conv2d, out_mask: Tensor | None = None, *,
               name: str = "", count: int | None = None) -> Tensor:
        """Bias-free convolution of a delta tensor (zero outside ``mask``).

        ``out_mask`` (``[N, 1, H_out, W_out]`` bool, ``None`` = every pixel) marks the output pixels whose
        receptive field touches ``mask``; the result must be exact there and zero elsewhere. The calling op
        computes it anyway, so sparse kernels get it for free, with ``count``, its number of set pixels
        when known. ``name`` is the op's call-site name, for per-layer settings and statistics.
        """
        raise NotImplementedError

    def conv_transpose2d(self, delta: Tensor, mask: Tensor | None, conv: nn.ConvTranspose2d) -> Tensor:
        """Bias-free transposed convolution of a delta tensor."""
        raise NotImplementedError

    def linear(self, delta: Tensor, mask: Tensor | None, lin: nn.Linear) -> Tensor:
        """Bias-free linear layer on a delta tensor."""
        raise NotImplementedError


class ReferenceBackend(Backend):
    """Dense computation of the exact masked result (slow, exact)."""

    name = "reference"

    def conv2d(self, delta: Tensor, mask: Tensor | None, conv: nn.Conv2d, out_mask: Tensor | None = None, *,
               name: str = "", count: int | None = None) -> Tensor:
        return conv._conv_forward(delta, conv.weight, None)

    def conv_transpose2d(self, delta: Tensor, mask: Tensor | None, conv: nn.ConvTranspose2d) -> Tensor:
        return F.conv_transpose2d(
            delta, conv.weight, None, conv.stride, conv.padding, conv.output_padding, conv.groups,
            conv.dilation,
        )

    def linear(self, delta: Tensor, mask: Tensor | None, lin: nn.Linear) -> Tensor:
        return F.linear(delta, lin.weight, None)


def _sparse_backend() -> Backend:
    from deltatune.delta.sparse import SparseBackend  # lazy: keeps the engine import light

    return SparseBackend()


#: Backend factories by name.
BACKENDS: dict[str, Callable[[], Backend]] = {"reference": ReferenceBackend, "sparse": _sparse_backend}


def get_backend(backend: str | Backend) -> Backend:
    """Resolve a backend name (``reference``, ``sparse``) or pass a :class:`Backend` instance through."""
    if isinstance(backend, Backend):
        return backend
    try:
        factory = BACKENDS[backend]
    except KeyError:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}") from None
    return factory()
