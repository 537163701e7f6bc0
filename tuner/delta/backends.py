"""Execution backends: how a delta op's linear work is computed, and how a new one plugs in.

A backend is an explicit object chosen at conversion time (``convert(..., backend=...)``), registered by
name in :data:`BACKENDS`. The :class:`ReferenceBackend` computes every masked result densely (a
convolution over the whole delta tensor, which is exactly zero outside the updated region); it is the
ground truth that faster sparse kernels are checked against. The
:class:`~deltatune.delta.sparse.SparseBackend` (``"sparse"``) computes only the updated output pixels
where this machine's calibration table (:func:`deltatune.delta.calibration.calibrate`) says that is faster.

A backend receives :class:`~deltatune.delta.values.DeltaValue` inputs and declares what it can consume:
with :attr:`Backend.masked_io` (and :meth:`Backend.reads_masked` per conv) it reads
:attr:`~deltatune.delta.values.DeltaValue.buffer` (defined inside the mask only) and may leave its result
undefined outside the output mask; otherwise it reads :attr:`~deltatune.delta.values.DeltaValue.data`.
Conversion uses these declarations to decide which ops must write the zeros of their outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from deltatune.delta.values import DeltaValue
from deltatune.errors import ConfigError

__all__ = ["Backend", "ReferenceBackend", "get_backend", "BACKENDS"]


class Backend:
    """Interface of an execution backend. Subclasses override the kernels they accelerate."""

    name: str = "base"
    #: Whether activations should be kept in channels-last memory (decided once per frame at the input).
    channels_last: bool = False
    #: Default of the network-wide dense fallback (``convert(dense_refresh="auto")``); ``None`` = off.
    dense_refresh: float | None = None
    #: Whether :meth:`conv2d` can read a masked buffer (``x.buffer``, defined only inside ``x.mask``) and
    #: leave its result undefined outside ``out_mask`` when asked (``zero_fill=False``).
    masked_io: bool = False

    def reads_masked(self, conv: nn.Conv2d) -> bool:
        """Whether :meth:`conv2d` on ``conv`` reads its input inside the input mask only (usually; a call
        that needs every pixel reads ``x.data`` instead, which is always right). Decides at conversion
        whether the op feeding ``conv`` may leave the zeros of its output unwritten."""
        return self.masked_io

    def conv2d(
        self,
        x: DeltaValue,
        conv: nn.Conv2d,
        out_mask: Tensor | None = None,
        *,
        name: str = "",
        count: int | None = None,
        zero_fill: bool = True,
    ) -> Tensor:
        """Bias-free convolution of the delta ``x`` (a later frame's value).

        ``out_mask`` (``[N, 1, H_out, W_out]`` bool, ``None`` = every pixel) marks the output pixels whose
        receptive field touches ``x.mask``; the result must be exact there and zero elsewhere, or, with
        ``zero_fill=False`` (only asked of a backend with :attr:`masked_io`), anything elsewhere. The calling
        op computes the mask anyway, so sparse kernels get it for free, with ``count``, its number of set
        pixels when known. ``name`` is the op's call-site name, for per-layer settings and statistics.
        """
        raise NotImplementedError

    def conv_transpose2d(self, x: DeltaValue, conv: nn.ConvTranspose2d) -> Tensor:
        """Bias-free transposed convolution of the delta ``x``."""
        raise NotImplementedError

    def linear(self, x: DeltaValue, lin: nn.Linear) -> Tensor:
        """Bias-free linear layer on the delta ``x``."""
        raise NotImplementedError


class ReferenceBackend(Backend):
    """Dense computation of the exact masked result (slow, exact)."""

    name = "reference"

    def conv2d(
        self,
        x: DeltaValue,
        conv: nn.Conv2d,
        out_mask: Tensor | None = None,
        *,
        name: str = "",
        count: int | None = None,
        zero_fill: bool = True,
    ) -> Tensor:
        return conv._conv_forward(x.data, conv.weight, None)

    def conv_transpose2d(self, x: DeltaValue, conv: nn.ConvTranspose2d) -> Tensor:
        return F.conv_transpose2d(
            x.data,
            conv.weight,
            None,
            conv.stride,
            conv.padding,  # type: ignore[arg-type]  # a tuple: ConvTranspose2d takes no string padding
            conv.output_padding,
            conv.groups,
            conv.dilation,
        )

    def linear(self, x: DeltaValue, lin: nn.Linear) -> Tensor:
        return F.linear(x.data, lin.weight, None)


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
