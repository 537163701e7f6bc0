"""deltatune: DeltaCNN-faithful delta inference and threshold tuning for PyTorch CNNs.

Importing :mod:`deltatune` is cheap: it does not import optuna, matplotlib or seaborn. The engine lives in
:mod:`deltatune.delta`.
"""

from __future__ import annotations

from deltatune.errors import DeltatuneError

__all__ = ["DeltatuneError", "__version__"]

__version__ = "0.1.0"
