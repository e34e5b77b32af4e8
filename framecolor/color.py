"""CIE Lab (D65 white, sRGB primaries) conversions on numpy arrays and torch tensors.

Conventions used everywhere in framecolor:

* RGB images are float32 in [0, 1] (or uint8 / uint16, converted by :func:`to_float_rgb`), shape (H, W, 3).
* L is in [0, 100]; a and b are in roughly [-110, 110].
* The networks see ``L / 50 - 1`` (in [-1, 1]) and predict ``ab / AB_SCALE`` (tanh range [-1, 1]).

Both paths are the exact CIE formulas: numpy (look-up tables and OpenCV's matrix transform for speed) for
the pipeline, torch (differentiable) for GPU tensors and losses; both are tested against scikit-image's
``rgb2lab`` / ``lab2rgb``.
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
# Exact CIE formulas, made fast with look-up tables where the input is quantised anyway: sRGB decoding
# of uint8/uint16 input is a table of 256/65536 entries, and sRGB encoding of the output goes through a
# table of 2**16 linear steps (error below 0.05 of an 8-bit level).  OpenCV's float Lab conversion was
# tried first: since OpenCV 5 it is quantised to 1/64 Lab unit steps and can move L by half an 8-bit
# level, which would break the promise that the output keeps the input's luminance.
_ENCODE_STEPS = 1 << 16
_XYZ_TO_RGB_F32 = (_XYZ_TO_RGB * _D65_WHITE[None, :]).astype(np.float32)  # takes XYZ / white
_RGB_TO_XYZN_F32 = (_RGB_TO_XYZ / _D65_WHITE[:, None]).astype(np.float32)  # gives XYZ / white
_Y_ROW = _RGB_TO_XYZ[1].astype(np.float32)
_EPS = 216 / 24389
_KAPPA = 24389 / 27
_tables: dict[str, np.ndarray] = {}


def _srgb_decode(c: np.ndarray) -> np.ndarray:
    c = c.astype(np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _decode_table(dtype) -> np.ndarray:
    key = np.dtype(dtype).name
    if key not in _tables:
        top = 255 if key == "uint8" else 65535
        _tables[key] = _srgb_decode(np.arange(top + 1) / top).astype(np.float32)
    return _tables[key]


def _encode_table() -> np.ndarray:
    if "encode" not in _tables:
        lin = (np.arange(_ENCODE_STEPS + 1) / _ENCODE_STEPS).astype(np.float64)
        _tables["encode"] = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055).astype(np.float32)
    return _tables["encode"]


def linear_rgb(image: np.ndarray) -> np.ndarray:
    """sRGB image (uint8, uint16 or float in [0, 1]; (H, W, 3) or (H, W)) -> linear RGB float32."""
    if image.dtype in (np.uint8, np.uint16):
        return _decode_table(image.dtype)[image]
    return _srgb_decode(np.clip(image, 0, 1)).astype(np.float32)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16) / 116).astype(np.float32)


def _three_channels(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, 3), dtype kept (no float conversion)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """RGB or gray image as uint8, uint16 or float in [0, 1] -> float32 Lab (H, W, 3); exact CIE formula.

    Integer images go through the sRGB decoding table directly: no need to convert them to float first.
    """
    import cv2

    xyz = cv2.transform(linear_rgb(_three_channels(rgb)), _RGB_TO_XYZN_F32)
    f = _f(xyz)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 Lab (H, W, 3) -> float32 sRGB in [0, 1]; out-of-gamut colours lose chroma, never luminance."""
    import cv2

    lab = lab.astype(np.float32, copy=False)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f * f * f, (116 * f - 16) / _KAPPA).astype(np.float32)
    lin = cv2.transform(xyz, _XYZ_TO_RGB_F32)
    lin = _into_gamut_keeping_luminance(lin, xyz[..., 1])
    index = (np.clip(lin, 0, 1) * _ENCODE_STEPS + 0.5).astype(np.int32)
    return _encode_table()[index]


def _into_gamut_keeping_luminance(lin: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Bring out-of-gamut linear RGB into [0, 1] without changing luminance.

    Clipping each channel would change Y, and so the L the output promises to keep.  Instead each
    out-of-gamut pixel is moved in linear RGB towards the gray of the same Y (Y is linear in linear RGB
    and a gray (Y, Y, Y) has luminance Y, so every point on that segment has luminance Y), just far
    enough to enter the gamut: a pure loss of chroma, the smallest along that line.
    """
    outside = (lin.min(axis=-1) < 0) | (lin.max(axis=-1) > 1)
    if not outside.any():
        return lin
    c = lin[outside]
    y = np.clip(Y[outside], 0, 1)[:, None]
    d = c - y
    with np.errstate(divide="ignore", invalid="ignore"):
        s_high = np.where(c > 1, (1 - y) / d, np.inf)
        s_low = np.where(c < 0, -y / d, np.inf)
    s = np.clip(np.minimum(s_high, s_low).min(axis=-1, keepdims=True), 0, 1)
    lin = lin.copy()
    lin[outside] = y + s * d
    return lin


def luminance(image: np.ndarray) -> np.ndarray:
    """Any RGB or gray image (uint8, uint16 or float) -> its CIE L channel, float32 (H, W) in [0, 100].

    Only Y is needed for L, so this skips X and Z.  For a gray image (R = G = B) L depends on the gray
    value alone: exact for black-and-white input, and the "convert to L only" step of the protocol.
    """
    import cv2

    if image.ndim == 3 and image.shape[2] >= 3:
        Y = cv2.transform(linear_rgb(image[:, :, :3]), _Y_ROW[None, :])
        Y = Y[:, :, 0] if Y.ndim == 3 else Y
    else:
        Y = linear_rgb(image if image.ndim == 2 else image[:, :, 0])
    return 116 * _f(Y) - 16


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
