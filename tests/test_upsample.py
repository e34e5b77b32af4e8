"""Guided upsampling: colour edges follow the full-resolution lines better than bilinear resizing."""

import cv2
import numpy as np

from framecolor.upsample import bilinear_upsample, guided_upsample, joint_bilateral_upsample, resize


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
