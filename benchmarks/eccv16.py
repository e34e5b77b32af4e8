"""The ECCV16 colourisation network layout, in plain torch, as a speed yardstick only (random weights).

Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016): eight convolution blocks on L (64, 128,
256, 512, 512 dilated, 512 dilated, 512, then a 4x4 transposed convolution up to 1/4 resolution and 256
channels), batch normalisation after blocks 1-7, a 1x1 convolution to the 313 quantised ab bins, a
softmax with temperature (annealed mean) and a 1x1 convolution back to ab, upsampled x4.  About 32.2 M
parameters.  It is never trained here: `framecolor bench speed --yardstick` times its forward pass beside
ours at the same render size, so speed figures from different machines can be read against it.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _block(cin: int, cout: int, n: int, stride_last: int = 1, dilation: int = 1, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(n):
        stride = stride_last if k == n - 1 else 1
        layers += [nn.Conv2d(cin if k == 0 else cout, cout, 3, stride=stride, padding=dilation,
                             dilation=dilation), nn.ReLU(inplace=True)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class ECCV16Colorizer(nn.Module):
    """Input (B, 1, H, W) L normalised to about [-1, 1]; output (B, 2, H, W) ab / 110."""

    def __init__(self, bins: int = 313, temperature: float = 0.38):
        super().__init__()
        self.model1 = _block(1, 64, 2, stride_last=2)
        self.model2 = _block(64, 128, 2, stride_last=2)
        self.model3 = _block(128, 256, 3, stride_last=2)
        self.model4 = _block(256, 512, 3)
        self.model5 = _block(512, 512, 3, dilation=2)
        self.model6 = _block(512, 512, 3, dilation=2)
        self.model7 = _block(512, 512, 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, bins, 1),
        )
        self.out = nn.Conv2d(bins, 2, 1, bias=False)  # bin centres -> ab (annealed-mean readout)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = x
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6,
                      self.model7, self.model8):
            y = block(y)
        ab = self.out(F.softmax(y / self.temperature, dim=1))
        return F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
