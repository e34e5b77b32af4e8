"""Guided upsampling: colour edges follow the full-resolution lines better than bilinear resizing."""

import cv2
import numpy as np

from framecolor.filters import guided_upsample
from framecolor.upsample import bilinear_upsample, joint_bilateral_upsample, resize


def line_drawing(size=256):
    """Two flat-coloured regions split by a dark diagonal outline; returns L (H, W) and true ab (H, W, 2)."""
    L = np.full((size, size), 80.0, np.float32)
    yy, xx = np.mgrid[:size, :size]
    left = xx + 0.4 * yy < size * 0.6
    L[left] = 60.0
    outline = np.abs(xx + 0.4 * yy - size * 0.6) < 2
    L[outline] = 10.0
    ab = np.zeros((size, size, 2), np.float32)
    ab[left] = (40.0, 30.0)
    ab[~left] = (-30.0, -20.0)
    ab[outline] = 0.0
    return L, ab


def edge_errors(method):
    """Mean ab error within 4 px of the lines, and over the whole image, after 4x upsampling."""
    L, ab = line_drawing()
    L_small, ab_small = resize(L, 64, 64), resize(ab, 64, 64)
    out = method(ab_small, L_small, L)
    edge_zone = cv2.dilate((np.abs(np.gradient(L)[1]) > 1).astype(np.uint8), np.ones((9, 9))) > 0
    return np.abs(out - ab)[edge_zone].mean(), np.abs(out - ab).mean()


def test_joint_bilateral_beats_bilinear_on_colour_edges():
    """The pipeline's upsampler keeps colour on its side of the lines: under half of bilinear's error."""
    jbu_edge, jbu_all = edge_errors(joint_bilateral_upsample)
    bil_edge, bil_all = edge_errors(lambda ab, Ls, L: bilinear_upsample(ab, *L.shape[::-1]))
    assert jbu_edge < 0.5 * bil_edge, (jbu_edge, bil_edge)
    assert jbu_all < bil_all


def test_flat_colour_stays_flat():
    L = np.full((64, 64), 50.0, np.float32)
    ab = np.full((16, 16, 2), 12.0, np.float32)
    for method in (guided_upsample, joint_bilateral_upsample):
        out = method(ab, resize(L, 16, 16), L)
        assert out.shape == (64, 64, 2)
        assert np.allclose(out, 12.0, atol=1e-3)


def direct_jbu(ab_small, L_small, L_full, sigma_L=6.0):
    """Kopf et al. (2007) joint bilateral upsampling written directly (2x2 neighbours, bilinear weight
    times the range weight on L), the reference for the strip implementation."""
    h, w = L_small.shape
    H, W = L_full.shape
    yc = (np.arange(H) + 0.5) * (h / H) - 0.5
    xc = (np.arange(W) + 0.5) * (w / W) - 0.5
    y0, x0 = np.floor(yc).astype(int), np.floor(xc).astype(int)
    fy, fx = (yc - y0)[:, None], (xc - x0)[None, :]
    num = np.zeros((H, W, 2))
    den = np.full((H, W), 1e-6)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            ys = np.clip(y0 + dy, 0, h - 1)[:, None]
            xs = np.clip(x0 + dx, 0, w - 1)[None, :]
            weight = wy * wx * np.exp(-((L_full - L_small[ys, xs]) ** 2) / (2 * sigma_L**2))
            num += ab_small[ys, xs] * weight[:, :, None]
            den += weight
    return num / den[:, :, None]


def random_scene(H, W, h, w, seed=0, chroma=60.0):
    rng = np.random.default_rng(seed)
    L = cv2.GaussianBlur(rng.uniform(0, 100, (H, W)).astype(np.float32), (0, 0), 2)
    L[H // 3 : H // 3 + 2] = 5.0  # a thin dark line, thinner than a render-size pixel
    L = np.clip((L - L.mean()) * 8 + 50, 0, 100).astype(np.float32)
    ab = rng.uniform(-chroma, chroma, (h, w, 2)).astype(np.float32)
    return L, resize(L, w, h), ab


def test_strip_implementation_equals_the_direct_formula():
    """The fast (strips, row gathers, threads) upsampler computes Kopf et al.'s formula: equal to a
    direct implementation within float32 rounding, with one or two threads, across many strips."""
    L, L_small, ab = random_scene(157, 203, 40, 52)
    ref = direct_jbu(ab, L_small, L)
    for workers in (1, 2):
        out = joint_bilateral_upsample(ab, L_small, L, workers=workers)
        assert out.shape == (157, 203, 2) and out.dtype == np.float32
        assert np.abs(out - ref).max() < 2e-3


def test_fused_upsampling_and_lab_to_rgb_equal_the_separate_steps():
    """upsample_to_rgb gives the codes of lab_to_rgb(join_lab(L, JBU(ab))) rounded to the output dtype
    (on a few pixels one step of lab_to_rgb's 2**16-step encoding table apart: one 8-bit code, or up to
    13 16-bit codes near black), out-of-gamut colours included, and keeps L."""
    from framecolor import color
    from framecolor.upsample import upsample_to_rgb

    L, L_small, ab = random_scene(150, 190, 38, 48, seed=1, chroma=110.0)  # many colours out of gamut
    ab_full = joint_bilateral_upsample(ab, L_small, L)
    rgb = color.lab_to_rgb(color.join_lab(L, ab_full))
    for dtype, top, codes in ((np.uint8, 255, 1), (np.uint16, 65535, 16)):
        expected = color.from_float_rgb(rgb, dtype).astype(np.int64)
        out = upsample_to_rgb(ab, L_small, L, dtype, workers=2)
        assert out.dtype == dtype and out.shape == (150, 190, 3)
        diff = np.abs(out.astype(np.int64) - expected)
        assert diff.max() <= codes and (diff > 0).mean() < 1e-3
        assert np.abs(color.luminance(out) - L).max() < 100 / top + 0.05
    out = upsample_to_rgb(ab, L_small, L, np.float32)
    assert out.dtype == np.float32 and np.abs(out - rgb).max() < 16 / 65535



def test_torch_finish_equals_the_numpy_one():
    """The torch version of upsampling + Lab -> RGB (what runs on the GPU beside a CUDA generator) gives
    the numpy version's codes (run here on CPU tensors; on CUDA where there is one)."""
    import torch

    from framecolor.upsample import upsample_to_rgb, upsample_to_rgb_torch

    L, L_small, ab = random_scene(150, 190, 38, 48, seed=3, chroma=110.0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype, codes in ((np.uint8, 1), (np.uint16, 16)):
            expected = upsample_to_rgb(ab, L_small, L, dtype).astype(np.int64)
            out = upsample_to_rgb_torch(ab, L_small, L, dtype, device=device)
            assert out.dtype == dtype and out.shape == (150, 190, 3)
            diff = np.abs(out.astype(np.int64) - expected)
            assert diff.max() <= codes and (diff > 0).mean() < 1e-3, (device, dtype, diff.max())
        ab_full = joint_bilateral_upsample(ab, L_small, L)  # same size: Lab -> RGB only
        same = upsample_to_rgb_torch(ab_full, L, L, np.float32, device=device)
        assert np.abs(same - upsample_to_rgb(ab_full, L, L, np.float32)).max() < 16 / 65535
