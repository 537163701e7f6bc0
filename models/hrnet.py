"""HRNet for top-down pose estimation (Sun et al., CVPR 2019), in plain torch.

Re-written from the structure of the official ``pose_hrnet`` (leoxiaobin/deep-high-resolution-net.pytorch,
``lib/models/pose_hrnet.py``): same module tree, so the official checkpoints (``pose_hrnet_w32_256x192.pth``
and friends) load strictly; ``tests/models`` proves it against the key/shape fixtures. Differences that
change no key: ReLUs are non-inplace, the residual adds are written out-of-place, and the stage configs
are dataclasses instead of a yacs tree. ``torch.fx.symbolic_trace`` works: every branch in ``forward``
depends only on the configuration.

Input: RGB crop normalised with ImageNet mean/std, ``[N, 3, H, W]`` with H, W multiples of 32.
Output: heatmaps ``[N, num_joints, H/4, W/4]``; heatmap pixel ``i`` is input pixel ``4·i``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ._registry import IMAGENET_MEAN, IMAGENET_STD, PRESENT_CONFIDENCE, ModelCard, register_model

__all__ = [
    "BN_MOMENTUM",
    "FLIP_PAIRS_COCO",
    "FLIP_PAIRS_MPII",
    "COCO_KEYPOINTS",
    "MPII_KEYPOINTS",
    "BasicBlock",
    "Bottleneck",
    "HighResolutionModule",
    "PoseHighResolutionNet",
    "StageCfg",
    "HRNetCfg",
    "checkpoint_filter_fn",
    "hrnet",
    "hrnet_w48",
    "hrnet_w32_mpii",
    "hrnet_w18_small_v2",
    "hrnet_tiny",
]

BN_MOMENTUM = 0.1

#: Left/right joint pairs swapped by flip testing (tests/models/fixtures/official_keys/README.txt §6).
FLIP_PAIRS_COCO: tuple[tuple[int, int], ...] = (
    (1, 2),
    (3, 4),
    (5, 6),
    (7, 8),
    (9, 10),
    (11, 12),
    (13, 14),
    (15, 16),
)
FLIP_PAIRS_MPII: tuple[tuple[int, int], ...] = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
MPII_KEYPOINTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck",
    "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual (ResNet's basic block); ``relu`` is called twice, as in the original."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride here, "pytorch" style) → 1×1 ×4 with a residual."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def _downsample(inplanes: int, outplanes: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(
        nn.Conv2d(inplanes, outplanes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(outplanes, momentum=BN_MOMENTUM),
    )


def _make_layer(
    block: type[BasicBlock] | type[Bottleneck], inplanes: int, planes: int, blocks: int
) -> nn.Sequential:
    layers: list[nn.Module] = [block(inplanes, planes, 1, _downsample(inplanes, planes * block.expansion, 1))]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches (one per resolution) followed by all-to-all fusion by summation.

    ``fuse_layers[i][j]`` brings branch ``j`` to branch ``i``'s resolution: 1×1 conv + BN + nearest
    upsampling when ``j > i``; a chain of stride-2 3×3 convs when ``j < i``; ``None`` when ``j == i``.
    Without ``multi_scale_output`` only the highest resolution (``i = 0``) is produced.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: tuple[int, ...],
        in_channels: tuple[int, ...],
        num_channels: tuple[int, ...],
        multi_scale_output: bool = True,
    ) -> None:
        super().__init__()
        if not len(num_blocks) == len(in_channels) == len(num_channels):
            raise ValueError(
                f"HighResolutionModule: branch counts differ (blocks {len(num_blocks)}, "
                f"in_channels {len(in_channels)}, channels {len(num_channels)})"
            )
        self.num_branches = len(num_blocks)
        self.multi_scale_output = multi_scale_output
        self.branches = nn.ModuleList(
            _make_layer(block, in_channels[i], num_channels[i], num_blocks[i])
            for i in range(self.num_branches)
        )
        self.out_channels = tuple(c * block.expansion for c in num_channels)
        self.fuse_layers = self._make_fuse_layers() if self.num_branches > 1 else None
        self.relu = nn.ReLU()

    def _make_fuse_layers(self) -> nn.ModuleList:
        ch = self.out_channels
        fuse_layers = []
        for i in range(self.num_branches if self.multi_scale_output else 1):
            fuse_layer: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:
                    fuse_layer.append(
                        nn.Sequential(
                            nn.Conv2d(ch[j], ch[i], 1, 1, 0, bias=False),
                            nn.BatchNorm2d(ch[i]),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                elif j == i:
                    fuse_layer.append(None)
                else:
                    steps: list[nn.Module] = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out_ch = ch[i] if last else ch[j]
                        step: list[nn.Module] = [
                            nn.Conv2d(ch[j], out_ch, 3, 2, 1, bias=False),
                            nn.BatchNorm2d(out_ch),
                        ]
                        if not last:
                            step.append(nn.ReLU())
                        steps.append(nn.Sequential(*step))
                    fuse_layer.append(nn.Sequential(*steps))
            fuse_layers.append(nn.ModuleList(fuse_layer))
        return nn.ModuleList(fuse_layers)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(t) for branch, t in zip(self.branches, x, strict=True)]
        if self.fuse_layers is None:
            return xs
        fused = []
        for i, fuse_layer in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else fuse_layer[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + (xs[j] if i == j else fuse_layer[j](xs[j]))
            fused.append(self.relu(y))
        return fused


def _make_transition(pre: tuple[int, ...], cur: tuple[int, ...]) -> nn.ModuleList:
    """Adapt the previous stage's branches to the next: a 3×3 conv where widths differ, and new
    lower-resolution branches made from the last one by stride-2 3×3 convs."""
    layers: list[nn.Module | None] = []
    for i, out_ch in enumerate(cur):
        if i < len(pre):
            layers.append(
                None
                if out_ch == pre[i]
                else nn.Sequential(
                    nn.Conv2d(pre[i], out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU()
                )
            )
        else:
            steps = []
            for j in range(i + 1 - len(pre)):
                in_ch = pre[-1]
                o = out_ch if j == i - len(pre) else in_ch
                steps.append(
                    nn.Sequential(nn.Conv2d(in_ch, o, 3, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
                )
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class PoseHighResolutionNet(nn.Module):
    """HRNet pose network: stem (stride 4) → layer1 → stages 2–4 with transitions → 1×1 (or 3×3) head."""

    def __init__(self, cfg: HRNetCfg) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.stem_width
        self.conv1 = nn.Conv2d(3, w, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(w, w, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(w, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.layer1 = _make_layer(Bottleneck, w, cfg.layer1_planes, cfg.layer1_blocks)

        pre: tuple[int, ...] = (cfg.layer1_planes * Bottleneck.expansion,)
        for idx, stage in ((1, cfg.stage2), (2, cfg.stage3), (3, cfg.stage4)):
            block = BLOCKS[stage.block]
            cur = tuple(c * block.expansion for c in stage.num_channels)
            setattr(self, f"transition{idx}", _make_transition(pre, cur))
            modules = []
            in_ch = cur
            for m in range(stage.num_modules):
                last = m == stage.num_modules - 1
                mod = HighResolutionModule(
                    block,
                    stage.num_blocks,
                    in_ch,
                    stage.num_channels,
                    multi_scale_output=not (idx == 3 and last),
                )
                modules.append(mod)
                in_ch = mod.out_channels
            setattr(self, f"stage{idx + 1}", nn.Sequential(*modules))
            pre = in_ch
        k = cfg.final_conv_kernel
        self.final_layer = nn.Conv2d(
            pre[0], cfg.num_joints, kernel_size=k, stride=1, padding=1 if k == 3 else 0
        )

    @staticmethod
    def _transition(transition: nn.ModuleList, ys: list[torch.Tensor]) -> list[torch.Tensor]:
        # An existing branch is passed through (or through its width-changing conv); a new branch is
        # made from the lowest-resolution output of the previous stage, as in the official code. (The
        # official code feeds ys[-1] to *every* non-None transition of stages 3-4; no official config
        # has a width-changing conv there, so both agree on every released model.)
        out = []
        for i, layer in enumerate(transition):
            if layer is None:
                out.append(ys[i])
            else:
                out.append(layer(ys[i] if i < len(ys) else ys[-1]))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self.stage2(self._transition(self.transition1, [x]))
        ys = self.stage3(self._transition(self.transition2, ys))
        ys = self.stage4(self._transition(self.transition3, ys))
        return self.final_layer(ys[0])


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Key remap for official HRNet pose files: they already use our keys (``module.`` is stripped by the
    loader), so this is the identity; kept so every family has the same hook."""
    return state_dict


@dataclass(frozen=True)
class StageCfg:
    """One HRNet stage: ``num_modules`` HighResolutionModules of ``len(num_channels)`` branches."""

    num_modules: int
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]
    block: str = "BASIC"

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)


def _stages(width: int, blocks: int = 4, modules: tuple[int, int, int] = (1, 4, 3)) -> dict[str, StageCfg]:
    ch = (width, 2 * width, 4 * width, 8 * width)
    return {f"stage{s}": StageCfg(modules[s - 2], (blocks,) * s, ch[:s]) for s in (2, 3, 4)}


@dataclass(frozen=True)
class HRNetCfg:
    """HRNet architecture (the official yaml's ``MODEL.EXTRA`` plus joints); defaults are W32."""

    num_joints: int = 17
    stem_width: int = 64
    layer1_planes: int = 64
    layer1_blocks: int = 4
    stage2: StageCfg = field(default_factory=lambda: _stages(32)["stage2"])
    stage3: StageCfg = field(default_factory=lambda: _stages(32)["stage3"])
    stage4: StageCfg = field(default_factory=lambda: _stages(32)["stage4"])
    final_conv_kernel: int = 1


HRNET_W32 = HRNetCfg(**_stages(32))
HRNET_W48 = HRNetCfg(**_stages(48))
#: HRNet-W18-Small-v2 (HRNet-Image-Classification ``cls_hrnet_w18_small_v2``: 2 stem bottlenecks, stages
#: of 1/3/2 modules with 2 basic blocks per branch, widths 18/36/72/144) with the pose head.
HRNET_W18_SMALL_V2 = HRNetCfg(
    layer1_blocks=2,
    stage2=StageCfg(1, (2, 2), (18, 36)),
    stage3=StageCfg(3, (2, 2, 2), (18, 36, 72)),
    stage4=StageCfg(2, (2, 2, 2, 2), (18, 36, 72, 144)),
)
HRNET_TINY = HRNetCfg(
    stem_width=16, layer1_planes=8, layer1_blocks=1, **_stages(8, blocks=1, modules=(1, 1, 1))
)


def _create_hrnet(cfg: HRNetCfg, **kwargs: Any) -> PoseHighResolutionNet:
    for key in kwargs:
        if not hasattr(cfg, key):
            raise TypeError(f"hrnet: unknown argument {key!r}")
    return PoseHighResolutionNet(replace(cfg, **kwargs))


_HRNET_REPO = "leoxiaobin/deep-high-resolution-net.pytorch"
_HINT = (
    "pass an official checkpoint (--weights FILE), e.g. {file} from the HRNet model zoo ("
    + _HRNET_REPO
    + "), or use hrnet_w18_small_v2, whose default weights (distilled from BlazePose) ship with deltatune"
)


#: Threshold groups of a grouped search: one per branch of each stage (``stage3.b2``), and one for each
#: stage's fuse layers and other non-branch call sites (``stage3.fuse``); the stem, ``layer1``, the
#: transitions and the head take the generic groups (their first dotted component, ``stem``).
THRESHOLD_GROUPS: tuple[tuple[str, str], ...] = (
    ("{1}.b{2}", r"(stage\d+)\.\d+\.branches\.(\d+)\."),
    ("{1}.fuse", r"(stage\d+)\.\d+\."),
)


def _card(
    *,
    input_size: tuple[int, int],
    joints: int,
    hint_file: str,
    provenance: str,
    tiny: bool = False,
    default_weights: str | None = None,
    default_variant: str | None = None,
) -> ModelCard:
    h, w = input_size
    return ModelCard(
        family="hrnet",
        task="pose",
        input_size=input_size,
        outputs=f"heatmaps [N,{joints},{h // 4},{w // 4}] (stride 4)",
        num_joints=joints,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        color_order="RGB",
        default_weights=default_weights,
        weights_hint="pass a checkpoint of your own (a test-only variant)"
        if tiny
        else _HINT.format(file=hint_file),
        provenance=provenance,
        flip_pairs=FLIP_PAIRS_COCO if joints == 17 else FLIP_PAIRS_MPII,
        tiny=tiny,
        default_variant=default_variant,
        present_confidence=PRESENT_CONFIDENCE,
        threshold_groups=THRESHOLD_GROUPS,
        filter_fn=checkpoint_filter_fn,
    )


_PROV = (
    f"architecture of {_HRNET_REPO} lib/models/pose_hrnet.py (MIT); official weights: {{}} (user-supplied)"
)
#: The distilled default weights shipped in this package (see ``weights/PROVENANCE.md``).
DISTILLED_WEIGHTS = "package:weights/hrnet_w18_small_v2_blazepose.pt"
MODEL_CARDS: dict[str, ModelCard] = {
    "hrnet": _card(
        input_size=(256, 192), joints=17, hint_file="pose_coco/pose_hrnet_w32_256x192.pth",
        provenance=_PROV.format("pose_coco/pose_hrnet_w32_256x192.pth")
        + "; W32 has no default weights: weights='default' builds hrnet_w18_small_v2 with its weights "
        "distilled from BlazePose (W32 cannot be distilled on 2 CPU cores in reasonable time)",
        default_variant="hrnet_w18_small_v2",
    ),
    "hrnet_w48": _card(
        input_size=(256, 192), joints=17, hint_file="pose_coco/pose_hrnet_w48_256x192.pth",
        provenance=_PROV.format("pose_coco/pose_hrnet_w48_256x192.pth"),
    ),
    "hrnet_w32_mpii": _card(
        input_size=(256, 256), joints=16, hint_file="pose_mpii/pose_hrnet_w32_256x256.pth",
        provenance=_PROV.format("pose_mpii/pose_hrnet_w32_256x256.pth"),
    ),
    "hrnet_w18_small_v2": _card(
        input_size=(256, 192), joints=17, hint_file="",
        default_weights=DISTILLED_WEIGHTS,
        provenance=(
            "HRNet-W18-Small-v2 (HRNet-Image-Classification cls_hrnet_w18_small_v2) + pose head; default "
            "weights distilled from BlazePose-full on vtest/carphone crops (models/weights/PROVENANCE.md): "
            "they reproduce BlazePose's COCO-17 keypoints, not human labels"
        ),
    ),
    "hrnet_tiny": _card(
        input_size=(128, 96), joints=17, hint_file="",
        provenance="test-only miniature of the HRNet architecture (width 8, one block per branch)", tiny=True,
    ),
}  # fmt: skip


@register_model
def hrnet(**kwargs: Any) -> PoseHighResolutionNet:
    """HRNet-W32, COCO 17 keypoints, 256×192 RGB."""
    return _create_hrnet(HRNET_W32, **kwargs)


@register_model
def hrnet_w48(**kwargs: Any) -> PoseHighResolutionNet:
    """HRNet-W48, COCO 17 keypoints, 256×192 RGB."""
    return _create_hrnet(HRNET_W48, **kwargs)


@register_model
def hrnet_w32_mpii(**kwargs: Any) -> PoseHighResolutionNet:
    """HRNet-W32, MPII 16 keypoints, 256×256 RGB."""
    return _create_hrnet(replace(HRNET_W32, num_joints=16), **kwargs)


@register_model
def hrnet_w18_small_v2(**kwargs: Any) -> PoseHighResolutionNet:
    """HRNet-W18-Small-v2, COCO 17 keypoints, 256×192 RGB; default weights distilled from BlazePose."""
    return _create_hrnet(HRNET_W18_SMALL_V2, **kwargs)


@register_model
def hrnet_tiny(**kwargs: Any) -> PoseHighResolutionNet:
    """Tiny HRNet (width 8, 4 branches, 1 module per stage) for fast CPU tests, 128×96."""
    return _create_hrnet(HRNET_TINY, **kwargs)
