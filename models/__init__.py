"""deltatune's model zoo: plain-torch architectures whose keys match the official checkpoints.

Families register themselves with :func:`register_model`; build models by name::

    from deltatune_models import create_model, list_models, model_info
    model = create_model("mobilenet_v2")                       # default (ImageNet) weights
    pose = create_model("hrnet", weights="pose_hrnet_w32_256x192.pth")
    tiny = create_model("hrnet_tiny", weights=None)            # random init

Installed as ``deltatune_models`` (the folder is ``models/``), so no top-level ``models`` package is
ever installed. Other families (e.g. ``blazepose``) are imported lazily by the registry.
"""

from __future__ import annotations

from . import faster_rcnn, hrnet, mobilenet_v2, pose_resnet
from ._checkpoint import check_state_dict, clean_state_dict, load_checkpoint, read_state_dict
from ._registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelCard,
    ModelInfo,
    count_dense_macs,
    create_model,
    is_model,
    list_models,
    model_card,
    model_info,
    register_model,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelCard",
    "ModelInfo",
    "check_state_dict",
    "clean_state_dict",
    "count_dense_macs",
    "create_model",
    "faster_rcnn",
    "hrnet",
    "is_model",
    "list_models",
    "load_checkpoint",
    "mobilenet_v2",
    "model_card",
    "model_info",
    "pose_resnet",
    "read_state_dict",
    "register_model",
]
