"""CIE Lab (D65 white, sRGB primaries) conversions on numpy arrays and torch tensors.

Conventions used everywhere in framecolor:

* RGB images are float32 in [0, 1] (or uint8 / uint16, converted by :func:`to_float_rgb`), shape (H, W, 3).
* L is in [0, 100]; a and b are in roughly [-110, 110].
* The networks see ``L / 50 - 1`` (in [-1, 1]) and predict ``ab / AB_SCALE`` (tanh range [-1, 1]).

The numpy path uses OpenCV (about 10x faster than scikit-image at 1080p and within 0.2 L / 0.4 ab of it:
right for the pipeline).  The torch path is the exact CIE formula, differentiable, for GPU tensors and
for losses; both are tested against scikit-image's ``rgb2lab`` / ``lab2rgb``.
"""

from __future__ import annotations

import numpy as np

AB_SCALE = 110.0  # ab / AB_SCALE is what the generator predicts (tanh output)

# sRGB -> XYZ (D65) matrix of IEC 61966-2-1, and the D65 reference white.
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)


def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float image (H, W, 3) or (H, W) -> float32 RGB in [0, 1], shape (H, W, 3)."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * np.float32(1.0 / 65535.0)
    return np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)


def from_float_rgb(rgb: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float RGB in [0, 1] -> uint8 or uint16 with rounding (no truncation bias)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(rgb * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    return rgb.astype(dtype)


# ----------------------------------------------------------------------------------------------- numpy
def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """float32 RGB in [0, 1] (H, W, 3) -> float32 Lab (H, W, 3), via OpenCV."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 Lab (H, W, 3) -> float32 RGB clipped to [0, 1], via OpenCV."""
    import cv2

    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def luminance(image: np.ndarray) -> np.ndarray:
    """Any RGB or gray image -> its CIE L channel, float32 (H, W) in [0, 100].

    For a gray image (R = G = B = v) L depends on v only, so this is exact for black-and-white input and
    is the "convert to L only" step of the evaluation protocol for colour input.
    """
    rgb = to_float_rgb(image)
    return rgb_to_lab(rgb)[:, :, 0]


def join_lab(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Stack L (H, W) and ab (H, W, 2) into Lab (H, W, 3) float32."""
    return np.concatenate([L[:, :, None].astype(np.float32), ab.astype(np.float32)], axis=2)


# ----------------------------------------------------------------------------------------------- torch
def _srgb_to_linear(c):
    import torch

    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055).clamp_min(1e-12) ** 2.4)


def _linear_to_srgb(c):
    import torch

    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def rgb_to_lab_torch(rgb):
    """Exact sRGB -> Lab for tensors (..., 3, H, W) in [0, 1]; differentiable."""
    import torch

    m = torch.as_tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    white = torch.as_tensor(_D65_WHITE, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    lin = _srgb_to_linear(rgb.clamp(0, 1))
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin) / white
    eps = 216 / 24389
    kappa = 24389 / 27
    f = torch.where(xyz > eps, xyz.clamp_min(1e-12) ** (1 / 3), (kappa * xyz + 16) / 116)
    fx, fy, fz = f.unbind(-3)
    L = 116 * fy - 16
    a = 500 * (fx - fy)
    b = 200 * (fy - fz)
    return torch.stack([L, a, b], dim=-3)


def lab_to_rgb_torch(lab):
    """Exact Lab -> sRGB for tensors (..., 3, H, W); result clipped to [0, 1]; differentiable."""
    import torch

    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    fx = fy + a / 500
    fz = fy - b / 200
    eps = 216 / 24389
    kappa = 24389 / 27
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(f**3 > eps, f**3, (116 * f - 16) / kappa)
    white = torch.as_tensor(_D65_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    m = torch.as_tensor(_XYZ_TO_RGB, dtype=lab.dtype, device=lab.device)
    lin = torch.einsum("ij,...jhw->...ihw", m, xyz * white)
    return _linear_to_srgb(lin.clamp(0, 1)).clamp(0, 1)


def normalize_L(L):
    """L in [0, 100] -> network input in [-1, 1] (numpy or torch)."""
    return L / 50.0 - 1.0


def denormalize_ab(ab):
    """Network output in [-1, 1] -> ab in Lab units (numpy or torch)."""
    return ab * AB_SCALE


def normalize_ab(ab):
    """ab in Lab units -> network target in [-1, 1] (numpy or torch)."""
    return ab / AB_SCALE
