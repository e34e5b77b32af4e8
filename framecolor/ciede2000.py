"""CIEDE2000 colour difference in torch: vectorised, differentiable, usable as a metric and as a loss.

The formula and its corner cases follow G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference
formula: implementation notes, supplementary test data, and mathematical observations", Color Research
and Application 30(1), 2005 (eqs. 1-22):

* the hue of an achromatic colour (a' = b = 0) is 0, and where C'1 C'2 = 0 the hue difference is 0 and
  the mean hue is h'1 + h'2 (the notes' handling, also scikit-image's);
* hue differences are wrapped to [-180, 180] degrees and the mean hue is taken the short way round.

Square roots and atan2 are guarded by the "double where" trick: the value is exact (CIEDE2000(x, x) is
exactly 0) while the gradient at the singular points (zero chroma, identical colours) is 0 instead of
NaN/inf, so a loss built on it trains even where prediction and target coincide or are gray.
"""

from __future__ import annotations

import math

import torch

_25_POW_7 = 25.0**7
_DEG = math.pi / 180.0


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with value 0 and gradient 0 at x <= 0 (instead of an infinite derivative at 0)."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def _safe_hue(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Hue angle atan2(b, a) in [0, 2*pi); 0 (with gradient 0) for an achromatic colour a = b = 0."""
    chromatic = (a != 0) | (b != 0)
    one = torch.ones_like(a)
    h = torch.atan2(torch.where(chromatic, b, one * 0), torch.where(chromatic, a, one))
    h = torch.where(h < 0, h + 2 * math.pi, h)
    return torch.where(chromatic, h, torch.zeros_like(h))


def delta_e_ciede2000(lab1: torch.Tensor, lab2: torch.Tensor, channel_dim: int = -3,
                      kL: float = 1.0, kC: float = 1.0, kH: float = 1.0) -> torch.Tensor:
    """CIEDE2000 difference between two Lab tensors (Sharma, Wu & Dalal 2005).

    ``lab1`` and ``lab2`` hold L, a, b along ``channel_dim`` (-3 for images (..., 3, H, W), -1 for
    colour lists (N, 3)); they broadcast against each other.  Returns the difference with that dimension
    removed, in the inputs' dtype.  kL, kC, kH are the parametric weights (1 for the reference conditions).
    """
    lab1 = torch.as_tensor(lab1)
    lab2 = torch.as_tensor(lab2)
    if not lab1.is_floating_point():
        lab1 = lab1.float()
    lab2 = lab2.to(dtype=lab1.dtype, device=lab1.device)
    if lab1.shape[channel_dim] != 3 or lab2.shape[channel_dim] != 3:
        raise ValueError(f"Lab tensors need 3 channels along dim {channel_dim}, got {tuple(lab1.shape)} "
                         f"and {tuple(lab2.shape)}")
    L1, a1, b1 = lab1.unbind(channel_dim)
    L2, a2, b2 = lab2.unbind(channel_dim)

    # Eqs. 2-7: a is stretched according to the mean chroma, then polar coordinates C', h'.
    c_bar = 0.5 * (_safe_sqrt(a1 * a1 + b1 * b1) + _safe_sqrt(a2 * a2 + b2 * b2))
    c_bar7 = c_bar**7
    G = 0.5 * (1 - _safe_sqrt(c_bar7 / (c_bar7 + _25_POW_7)))
    a1p = (1 + G) * a1
    a2p = (1 + G) * a2
    C1p = _safe_sqrt(a1p * a1p + b1 * b1)
    C2p = _safe_sqrt(a2p * a2p + b2 * b2)
    h1p = _safe_hue(b1, a1p)
    h2p = _safe_hue(b2, a2p)

    # Eqs. 8-12: differences; the hue difference is taken the short way round and is 0 when a colour is gray.
    dL = L2 - L1
    dC = C2p - C1p
    CC = C1p * C2p
    achromatic = CC == 0
    h_diff = h2p - h1p
    dh = torch.where(h_diff > math.pi, h_diff - 2 * math.pi, h_diff)
    dh = torch.where(h_diff < -math.pi, h_diff + 2 * math.pi, dh)
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)
    dH = 2 * _safe_sqrt(CC) * torch.sin(dh / 2)

    # Eqs. 13-22: means, weighting functions and the rotation term.
    L_bar = 0.5 * (L1 + L2)
    C_bar = 0.5 * (C1p + C2p)
    h_sum = h1p + h2p
    far = (~achromatic) & (h_diff.abs() > math.pi)
    h_bar = torch.where(far & (h_sum < 2 * math.pi), h_sum + 2 * math.pi, h_sum)
    h_bar = torch.where(far & (h_sum >= 2 * math.pi), h_sum - 2 * math.pi, h_bar)
    h_bar = torch.where(achromatic, h_bar, 0.5 * h_bar)  # gray: h_bar = h1' + h2' (Sharma eq. 14)

    T = (1 - 0.17 * torch.cos(h_bar - 30 * _DEG) + 0.24 * torch.cos(2 * h_bar)
         + 0.32 * torch.cos(3 * h_bar + 6 * _DEG) - 0.20 * torch.cos(4 * h_bar - 63 * _DEG))
    d_theta = 30 * _DEG * torch.exp(-(((h_bar / _DEG) - 275) / 25) ** 2)
    C_bar7 = C_bar**7
    R_C = 2 * _safe_sqrt(C_bar7 / (C_bar7 + _25_POW_7))
    L50 = (L_bar - 50) ** 2
    S_L = 1 + 0.015 * L50 / torch.sqrt(20 + L50)
    S_C = 1 + 0.045 * C_bar
    S_H = 1 + 0.015 * C_bar * T
    R_T = -torch.sin(2 * d_theta) * R_C

    tL = dL / (kL * S_L)
    tC = dC / (kC * S_C)
    tH = dH / (kH * S_H)
    # The quadratic form is positive semi-definite (|R_T| < 2); clamping removes rounding below 0.
    return _safe_sqrt((tL * tL + tC * tC + tH * tH + R_T * tC * tH).clamp_min(0))
