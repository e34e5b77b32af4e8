"""Conditional PatchGAN discriminator (Isola et al., "Image-to-Image Translation with Conditional
Adversarial Networks", CVPR 2017, appendix 6.1.2).

The discriminator sees the condition and the colours together, concat(L, ab) (3 channels), and classifies
every overlapping patch as real or fake: its output is a map of logits.  The layout is the paper's
C64-C128-C256-C512: ``n_layers`` strided 4x4 convolutions (the first without normalisation), one 4x4
stride-1 convolution, then a 4x4 stride-1 convolution to one channel.  With ``n_layers=3`` each output
logit sees a 70x70 input patch.  Spectral normalisation (Miyato et al., "Spectral Normalization for
Generative Adversarial Networks", ICLR 2018) can replace the normalisation layers to stabilise training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class PatchGANConfig:
    in_channels: int = 3  # L + ab
    base_channels: int = 64
    n_layers: int = 3  # strided layers; 3 gives the 70x70 PatchGAN
    max_channels: int = 512
    norm: str = "batch"  # "batch", "instance" or "none"
    spectral_norm: bool = False


def receptive_field(n_layers: int) -> int:
    """Input patch side seen by one output logit: 4x4 kernels, n_layers of stride 2, then two of stride 1."""
    strides = [2] * n_layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = (rf - 1) * s + 4
    return rf


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


class PatchGAN(nn.Module):
    """(L (B,1,H,W), ab (B,2,H,W)) in [-1, 1] -> patch logits (B, 1, H', W')."""

    def __init__(self, config: PatchGANConfig = PatchGANConfig()):
        super().__init__()
        self.config = c = config
        wrap = nn.utils.spectral_norm if c.spectral_norm else (lambda m: m)
        norm = "none" if c.spectral_norm else c.norm
        layers: list[nn.Module] = []
        cin = c.in_channels
        cout = c.base_channels
        for i in range(c.n_layers + 1):
            stride = 2 if i < c.n_layers else 1
            layers.append(wrap(nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=i == 0 or norm == "none")))
            if i > 0:
                layers.append(_norm(norm, cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin, cout = cout, min(cout * 2, c.max_channels)
        layers.append(wrap(nn.Conv2d(cin, 1, 4, stride=1, padding=1)))
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.config.n_layers)

    def forward(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([L, ab], dim=1))
