"""Execution backends: how a delta op's linear work is computed.

A backend is an explicit object chosen at conversion time (``convert(..., backend=...)``). The
:class:`ReferenceBackend` computes every masked result densely (a convolution over the whole delta
tensor, which is exactly zero outside the updated region); it is the ground truth that faster sparse
kernels are checked against.
"""

from __future__ import annotations

import torch.nn.functional as F

from deltatune.errors import ConfigError
from torch import Tensor, nn

__all__ = ["Backend", "ReferenceBackend", "get_backend", "BACKENDS"]


class Backend:
    """Interface of an execution backend. Subclasses override the kernels they accelerate."""

    name: str = "base"

    def conv2d(self, delta: Tensor, mask: Tensor | None, conv: nn.Conv2d) -> Tensor:
        """Bias-free convolution of a delta tensor (zero outside ``mask``)."""
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

    def conv2d(self, delta: Tensor, mask: Tensor | None, conv: nn.Conv2d) -> Tensor:
        return conv._conv_forward(delta, conv.weight, None)

    def conv_transpose2d(self, delta: Tensor, mask: Tensor | None, conv: nn.ConvTranspose2d) -> Tensor:
        return F.conv_transpose2d(
            delta, conv.weight, None, conv.stride, conv.padding, conv.output_padding, conv.groups,
            conv.dilation,
        )

    def linear(self, delta: Tensor, mask: Tensor | None, lin: nn.Linear) -> Tensor:
        return F.linear(delta, lin.weight, None)


BACKENDS: dict[str, type[Backend]] = {"reference": ReferenceBackend}


def get_backend(backend: str | Backend) -> Backend:
    """Resolve a backend name (``reference``) or pass a :class:`Backend` instance through."""
    if isinstance(backend, Backend):
        return backend
    try:
        return BACKENDS[backend]()
    except KeyError:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}") from None
