"""U-Net whose encoder is a ResNet-34 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

Written here in plain torch (no torchvision on these machines, and no pretrained weights can be fetched):
the encoder has the ResNet-34 layout (a 7x7 stem, then 3, 4, 6, 3 basic blocks), optionally narrowed by
``width``; the decoder is the same upsample + 3x3 convolution decoder as :mod:`framecolor.models.unet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from .unet import UpBlock, make_norm, pad_to_multiple


@dataclass(frozen=True)
class ResNetUNetConfig:
    arch: str = "resnet34-unet"
    in_channels: int = 1
    out_channels: int = 2
    width: int = 64  # 64 is the published ResNet-34; smaller widths make fast generators
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    dropout: float = 0.5
    dropout_blocks: int = 2
    norm: str = "batch"
    render_size: int = 256


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = make_norm(norm, cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), make_norm(norm, cout))

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)), inplace=True)
        y = self.norm2(self.conv2(y))
        return F.relu(y + self.shortcut(x), inplace=True)


def make_stage(cin: int, cout: int, blocks: int, stride: int, norm: str) -> nn.Sequential:
    layers = [BasicBlock(cin, cout, stride, norm)]
    layers += [BasicBlock(cout, cout, 1, norm) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetUNet(nn.Module):
    """L (B, C_in, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1]."""

    def __init__(self, config: ResNetUNetConfig):
        super().__init__()
        self.config = config
        c = config
        w = c.width
        self.stem = nn.Sequential(
            nn.Conv2d(c.in_channels, w, 7, stride=2, padding=3, bias=False), make_norm(c.norm, w), nn.ReLU(inplace=True)
        )  # 1/2
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)  # 1/4
        widths = [w, w * 2, w * 4, w * 8]
        self.stages = nn.ModuleList()
        cin = w
        for i, (cout, n) in enumerate(zip(widths, c.blocks)):
            self.stages.append(make_stage(cin, cout, n, 1 if i == 0 else 2, c.norm))  # 1/4, 1/8, 1/16, 1/32
            cin = cout
        skip_widths = [w, w, widths[0], widths[1], widths[2]]  # stem, (pool->stage0), stage1, stage2 ...
        # Decoder: 1/32 -> 1/16 -> 1/8 -> 1/4 -> 1/2 -> 1/1
        self.ups = nn.ModuleList()
        dec_in = widths[3]
        skips_needed = [widths[2], widths[1], widths[0], w]  # at 1/16, 1/8, 1/4, 1/2
        for i, skip in enumerate(skips_needed):
            out = max(skip, 16)
            drop = c.dropout if i < c.dropout_blocks else 0.0
            self.ups.append(UpBlock(dec_in, out, c.norm, drop))
            dec_in = out + skip
        del skip_widths
        self.head = nn.Sequential(
            nn.Conv2d(dec_in + c.in_channels, max(w // 2, 16), 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(max(w // 2, 16), c.out_channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 32)
        s_half = self.stem(x)
        y = self.stages[0](self.pool(s_half))
        s_quarter = y
        y = self.stages[1](y)
        s_eighth = y
        y = self.stages[2](y)
        s_sixteenth = y
        y = self.stages[3](y)
        for up, skip in zip(self.ups, [s_sixteenth, s_eighth, s_quarter, s_half]):
            y = torch.cat([up(y), skip], dim=1)
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = self.head(torch.cat([y, x], dim=1))
        return y[..., :h, :w]
