"""Lab conversions agree with scikit-image (the reference) and keep luminance."""

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from framecolor import color


def random_rgb(seed=0, shape=(32, 48, 3)):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_numpy_lab_matches_skimage():
    rgb = random_rgb()
    ours, ref = color.rgb_to_lab(rgb), rgb2lab(rgb)
    assert np.abs(ours - ref).max() < 2e-3
    u8 = (rgb * 255).astype(np.uint8)
    assert np.abs(color.rgb_to_lab(u8) - rgb2lab(u8)).max() < 2e-3
    assert np.abs(color.luminance(u8) - rgb2lab(u8)[..., 0]).max() < 2e-3
    assert np.abs(color.lab_to_rgb(ref.astype(np.float32)) - lab2rgb(ref)).max() < 2e-4


def test_torch_lab_is_exact_against_skimage_both_ways():
    rgb = random_rgb(1).astype(np.float64)
    lab_t = color.rgb_to_lab_torch(torch.from_numpy(rgb).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(lab_t - rgb2lab(rgb)).max() < 1e-3
    back = color.lab_to_rgb_torch(torch.from_numpy(rgb2lab(rgb)).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(back - rgb).max() < 1e-4
    assert np.abs(back - lab2rgb(rgb2lab(rgb))).max() < 1e-4


def test_torch_lab_is_differentiable_with_finite_gradients():
    rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    color.rgb_to_lab_torch(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()


@pytest.mark.parametrize("dtype,scale", [(np.uint8, 255), (np.uint16, 65535)])
def test_luminance_kept_when_ab_is_replaced(dtype, scale):
    """Replacing ab and going back to RGB keeps L within one 8-bit level (gray levels 25%..85%, where a
    chroma of 6 is inside the sRGB gamut, so no channel is clipped)."""
    gray = (np.linspace(0.25, 0.85, 64 * 48).reshape(48, 64) * scale).astype(dtype)
    L = color.luminance(gray)
    ab = np.full(L.shape + (2,), 6.0, dtype=np.float32)
    rgb = color.lab_to_rgb(color.join_lab(L, ab))
    out8 = color.from_float_rgb(rgb, dtype)
    L2 = color.luminance(out8)
    assert np.abs(L2 - L).max() < 100 / 255 * 1.0  # within one 8-bit level
    assert np.abs(color.rgb_to_lab(rgb)[..., 1:] - 6.0).max() < 0.05


def test_gray_image_has_zero_ab_and_roundtrips_dtype():
    gray = np.full((4, 4), 77, np.uint8)
    lab = color.rgb_to_lab(color.to_float_rgb(gray))
    assert np.abs(lab[..., 1:]).max() < 5e-3  # the sRGB matrix's white is D65 to 4 digits
    assert (color.from_float_rgb(color.to_float_rgb(gray), np.uint8) == 77).all()


def test_out_of_gamut_colours_keep_their_luminance():
    """A strong chroma on dark and light grays cannot be shown in sRGB: it is reduced, L is not."""
    L = np.linspace(2, 98, 200, dtype=np.float32).reshape(10, 20)
    for ab in [(80.0, -60.0), (-90.0, 90.0), (60.0, 60.0)]:
        lab = color.join_lab(L, np.broadcast_to(np.float32(ab), L.shape + (2,)))
        rgb = color.lab_to_rgb(lab)
        assert np.abs(color.rgb_to_lab(rgb)[..., 0] - L).max() < 0.02
        assert (rgb >= 0).all() and (rgb <= 1).all()
