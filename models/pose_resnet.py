"""SimpleBaselines Pose-ResNet (Xiao et al., ECCV 2018), in plain torch.

Re-written from the structure of microsoft/human-pose-estimation.pytorch ``lib/models/pose_resnet.py``
("pytorch" style: the stride sits on the 3×3 conv of a Bottleneck): a ResNet backbone, three
ConvTranspose2d(4×4, stride 2, no bias) + BN + ReLU upsampling layers and a 1×1 head. Keys equal the
official checkpoints' (``pose_resnet_50_256x192.pth.tar`` ...); ``tests/models`` proves it against the
fixtures. ReLUs are non-inplace (no key changes); ``torch.fx.symbolic_trace`` works.

Input: **BGR** crop (SimpleBaselines never converts cv2's BGR), normalised with ImageNet's RGB mean/std
applied to the B, G, R channels in that order. Output: heatmaps ``[N, num_joints, H/4, W/4]``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ._registry import IMAGENET_MEAN, IMAGENET_STD, PRESENT_CONFIDENCE, ModelCard, register_model
from .hrnet import BN_MOMENTUM, FLIP_PAIRS_COCO, Bottleneck

__all__ = ["PoseResNet", "PoseResNetCfg", "checkpoint_filter_fn", "pose_resnet50", "pose_resnet101",
           "pose_resnet152", "pose_resnet_tiny"]  # fmt: skip

_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}  # kernel -> (padding, output_padding), as upstream


class PoseResNet(nn.Module):
    """ResNet (Bottleneck) backbone → ``deconv_layers`` (×2 each) → ``final_layer`` heatmaps."""

    def __init__(self, cfg: PoseResNetCfg) -> None:
        super().__init__()
        if len(cfg.deconv_filters) != len(cfg.deconv_kernels):
            raise ValueError("PoseResNet: deconv_filters and deconv_kernels differ in length")
        bad = [k for k in cfg.deconv_kernels if k not in _DECONV_PADDING]
        if bad:
            raise ValueError(f"PoseResNet: deconv kernel {bad[0]} not supported (use 2, 3 or 4)")
        self.cfg = cfg
        w = cfg.base_width
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(w, cfg.layers[0])
        self.layer2 = self._make_layer(2 * w, cfg.layers[1], stride=2)
        self.layer3 = self._make_layer(4 * w, cfg.layers[2], stride=2)
        self.layer4 = self._make_layer(8 * w, cfg.layers[3], stride=2)

        deconv: list[nn.Module] = []
        for planes, kernel in zip(cfg.deconv_filters, cfg.deconv_kernels, strict=True):
            padding, output_padding = _DECONV_PADDING[kernel]
            deconv += [
                nn.ConvTranspose2d(self.inplanes, planes, kernel, stride=2, padding=padding,
                                   output_padding=output_padding, bias=cfg.deconv_with_bias),
                nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
                nn.ReLU(),
            ]  # fmt: skip
            self.inplanes = planes
        self.deconv_layers = nn.Sequential(*deconv)
        k = cfg.final_conv_kernel
        self.final_layer = nn.Conv2d(self.inplanes, cfg.num_joints, k, 1, padding=1 if k == 3 else 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(planes * Bottleneck.expansion, momentum=BN_MOMENTUM),
            )
        layers: list[nn.Module] = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_layer(self.deconv_layers(x))


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Key remap for SimpleBaselines files: keys already match (``module.`` from ``model_best.pth.tar`` is
    stripped by the loader, absent ``num_batches_tracked`` are tolerated), so this is the identity."""
    return state_dict


@dataclass(frozen=True)
class PoseResNetCfg:
    """Pose-ResNet architecture (the official yaml's ``MODEL.EXTRA`` plus depth and joints)."""

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    num_joints: int = 17
    base_width: int = 64
    deconv_filters: tuple[int, ...] = (256, 256, 256)
    deconv_kernels: tuple[int, ...] = (4, 4, 4)
    deconv_with_bias: bool = False
    final_conv_kernel: int = 1


POSE_RESNET50 = PoseResNetCfg(layers=(3, 4, 6, 3))
POSE_RESNET101 = PoseResNetCfg(layers=(3, 4, 23, 3))
POSE_RESNET152 = PoseResNetCfg(layers=(3, 8, 36, 3))
POSE_RESNET_TINY = PoseResNetCfg(layers=(1, 1, 1, 1), base_width=8, deconv_filters=(32, 32, 32))


def _create_pose_resnet(cfg: PoseResNetCfg, **kwargs: Any) -> PoseResNet:
    for key in kwargs:
        if not hasattr(cfg, key):
            raise TypeError(f"pose_resnet: unknown argument {key!r}")
    return PoseResNet(replace(cfg, **kwargs))


_REPO = "microsoft/human-pose-estimation.pytorch"


#: Threshold groups of a grouped search: one per ResNet stage (``layer1`` .. ``layer4``); the stem
#: (``stem``) and the deconvolution head (``deconv_layers``) take the generic groups.
THRESHOLD_GROUPS: tuple[tuple[str, str], ...] = (("{1}", r"(layer\d+)\."),)


def _card(depth: int | None) -> ModelCard:
    tiny = depth is None
    size = (128, 96) if tiny else (256, 192)
    file = f"pose_coco/pose_resnet_{depth}_256x192.pth.tar"
    return ModelCard(
        family="pose_resnet",
        task="pose",
        input_size=size,
        outputs=f"heatmaps [N,17,{size[0] // 4},{size[1] // 4}] (stride 4)",
        num_joints=17,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        color_order="BGR",
        default_weights=None,
        weights_hint=(
            f"pass an official checkpoint (--weights FILE), e.g. {file} "
            f"from the SimpleBaselines model zoo ({_REPO})"
            if not tiny
            else "pass a checkpoint of your own (a test-only variant)"
        ),
        provenance=(
            "test-only miniature of Pose-ResNet (width 8, one block per stage)"
            if tiny
            else f"architecture of {_REPO} lib/models/pose_resnet.py (MIT); "
            f"official weights: {file} (user-supplied)"
        ),
        flip_pairs=FLIP_PAIRS_COCO,
        tiny=tiny,
        present_confidence=PRESENT_CONFIDENCE,
        threshold_groups=THRESHOLD_GROUPS,
        filter_fn=checkpoint_filter_fn,
    )


MODEL_CARDS: dict[str, ModelCard] = {
    "pose_resnet50": _card(50),
    "pose_resnet101": _card(101),
    "pose_resnet152": _card(152),
    "pose_resnet_tiny": _card(None),
}


@register_model
def pose_resnet50(**kwargs: Any) -> PoseResNet:
    """SimpleBaselines Pose-ResNet-50, COCO 17 keypoints, 256×192 BGR."""
    return _create_pose_resnet(POSE_RESNET50, **kwargs)


@register_model
def pose_resnet101(**kwargs: Any) -> PoseResNet:
    """SimpleBaselines Pose-ResNet-101, COCO 17 keypoints, 256×192 BGR."""
    return _create_pose_resnet(POSE_RESNET101, **kwargs)


@register_model
def pose_resnet152(**kwargs: Any) -> PoseResNet:
    """SimpleBaselines Pose-ResNet-152, COCO 17 keypoints, 256×192 BGR."""
    return _create_pose_resnet(POSE_RESNET152, **kwargs)


@register_model
def pose_resnet_tiny(**kwargs: Any) -> PoseResNet:
    """Tiny Pose-ResNet (width 8, one Bottleneck per stage) for fast CPU tests, 128×96."""
    return _create_pose_resnet(POSE_RESNET_TINY, **kwargs)
