"""U-Net generator of the pix2pix family, predicting ab from L.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks" (CVPR 2017) gives the
encoder (strided 4x4 convolutions, LeakyReLU 0.2) and the skip connections by concatenation; the decoder
uses nearest upsampling followed by a 3x3 convolution instead of transposed convolutions, following Odena
et al., "Deconvolution and Checkerboard Artifacts" (Distill 2016), so flat cartoon regions stay flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F


@dataclass(frozen=True)
class UNetConfig:
    """Everything needed to rebuild a :class:`UNet`; stored as JSON inside every checkpoint."""

    arch: str = "unet"
    in_channels: int = 1  # L; hint-conditioned variants add ab hints + mask
    out_channels: int = 2  # ab, tanh-scaled to [-1, 1]
    base_channels: int = 32
    depth: int = 5  # number of stride-2 encoder blocks; inputs are padded to a multiple of 2**depth
    max_channels: int = 256
    dropout: float = 0.5  # in the first `dropout_blocks` decoder blocks (pix2pix)
    dropout_blocks: int = 2
    norm: str = "batch"  # "batch", "group" or "none"
    render_size: int = 256  # default short side the pipeline renders at


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


class DownBlock(nn.Module):
    """Strided 4x4 convolution, normalisation, LeakyReLU(0.2): halves the resolution."""

    def __init__(self, cin: int, cout: int, norm: str, first: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=first or norm == "none")
        self.norm = nn.Identity() if first else make_norm(norm, cout)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class UpBlock(nn.Module):
    """Nearest 2x upsampling, then 3x3 convolution, normalisation, ReLU, optional dropout."""

    def __init__(self, cin: int, cout: int, norm: str, dropout: float = 0.0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none")
        self.norm = make_norm(norm, cout)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.drop(self.act(self.norm(self.conv(x))))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad H and W up to a multiple; returns the padded tensor and the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class UNet(nn.Module):
    """L (B, C_in, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1]; any H, W (padded internally)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        c = config
        widths = [min(c.base_channels * 2**i, c.max_channels) for i in range(c.depth)]
        self.downs = nn.ModuleList()
        cin = c.in_channels
        for i, w in enumerate(widths):
            self.downs.append(DownBlock(cin, w, c.norm, first=i == 0))
            cin = w
        # Decoder: from the bottleneck back up; each block sees the previous output + the skip.
        self.ups = nn.ModuleList()
        for i in reversed(range(c.depth - 1)):
            skip = widths[i]
            out = widths[i]
            drop = c.dropout if len(self.ups) < c.dropout_blocks else 0.0
            self.ups.append(UpBlock(cin, out, c.norm, drop))
            cin = out + skip
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(cin + c.in_channels, c.base_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c.base_channels, c.out_channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2**self.config.depth)
        skips = [x]
        y = x
        for down in self.downs:
            y = down(y)
            skips.append(y)
        skips.pop()  # the bottleneck itself is not a skip
        for up in self.ups:
            y = up(y)
            y = torch.cat([y, skips.pop()], dim=1)
        # Last upsampling joins the full-resolution input, so fine lines guide the colour edges.
        y = self.head[0](y)
        y = torch.cat([y, skips.pop()], dim=1)
        for layer in list(self.head)[1:]:
            y = layer(y)
        return y[..., :h, :w]
