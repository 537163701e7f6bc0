"""Small real networks used by the engine tests (random weights, every supported op)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """A residual block that reuses one ReLU instance twice (two truncation points)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=2, dilation=2, groups=c, bias=False)  # depthwise, dilated
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class AllOps(nn.Module):
    """Exercises every op the engine supports, in module and functional forms."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 5, stride=2, padding=2)
        self.stem_bn = nn.BatchNorm2d(8)
        self.act1 = nn.LeakyReLU(0.1)
        self.block = Block(8)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.branch_a = nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU6())
        self.branch_b = nn.Sequential(
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.Hardswish(),
            nn.Upsample(scale_factor=2, mode="nearest"),
        )
        self.fuse = nn.Conv2d(16, 12, (3, 1), padding=(1, 0))
        self.lone_bn = nn.BatchNorm2d(12)  # follows an add: cannot be folded
        self.silu = nn.SiLU()
        self.avg = nn.AvgPool2d(2)
        self.deconv = nn.ConvTranspose2d(12, 6, 4, stride=2, padding=1, bias=False)
        self.deconv_bn = nn.BatchNorm2d(6)
        self.pad = nn.ZeroPad2d((1, 0, 1, 0))
        self.conv_valid = nn.Conv2d(6, 6, 2)
        self.sig = nn.Sigmoid()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6 + 12, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.act1(self.stem_bn(self.stem(x)))
        x = self.block(x)
        x = self.pool(x)
        a = self.branch_a(x)
        b = self.branch_b(x)
        y = self.fuse(torch.cat([a, b], dim=1))
        y = self.lone_bn(y + F.interpolate(a.mean(dim=1, keepdim=True), scale_factor=1.0) * 0.5)
        y = self.silu(y)
        z = self.avg(y)
        z = F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)
        z = F.relu(self.deconv_bn(self.deconv(z)))
        z = self.sig(self.conv_valid(self.pad(z)))
        z = F.max_pool2d(z, 2)
        feats = torch.cat([torch.flatten(self.gap(z), 1), y.mean(dim=(2, 3))], dim=1)
        logits = self.fc(feats)
        return torch.sigmoid(logits), F.pad(z, (1, 1, 1, 1), value=0.25)


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics so folding is really exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def diagonal_clip(first: torch.Tensor, frames: int, *, step: float = 0.5) -> list[torch.Tensor]:
    """``first``, then each frame changed at one more pixel of the diagonal (``[..., t, t] += step``): a
    small, growing change for exactness checks of one op or one layer."""
    out, x = [], first
    for t in range(frames):
        x = x.clone()
        x[..., t, t] += step
        out.append(x)
    return out


def moving_square_clip(
    frames: int, *, size: int = 32, seed: int = 0, noise: float = 0.002
) -> list[torch.Tensor]:
    """A deterministic clip: textured background, a square that moves, optional global noise."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.rand(1, 3, size, size, generator=g)
    out = []
    for t in range(frames):
        f = bg.clone()
        p = (2 + t) % (size - 8)
        f[:, :, p : p + 6, p : p + 6] = 0.9
        f += noise * torch.randn(f.shape, generator=g)
        out.append(f)
    return out
