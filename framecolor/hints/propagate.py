"""Carrying colour from one frame to another along dense optical flow (DIS: Kroeger et al., ECCV 2016), kept
only where the flow can be trusted: forward-backward consistent (Sundaram, Brox and Keutzer, ECCV 2010), the
warped luminance matching the destination's (a photometric check), and optionally where the destination has
enough texture to constrain the flow at all."""

from __future__ import annotations

import numpy as np

from ..temporal.flow import fb_error, make_dis, sample_grid, to_u8


def texture_confidence(L: np.ndarray, texture: float, radius: int = 3) -> np.ndarray:
    """How well optical flow is constrained at each pixel, in [0, 1]: the local RMS luminance gradient
    (L units per pixel, over a (2 radius + 1)^2 window) over ``texture``, capped at 1. Inside a flat region
    any flow fits the pixels (the aperture problem), so flow there can drag colour across a line unseen."""
    import cv2

    L = np.asarray(L, np.float32)
    gx = cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    k = 2 * radius + 1
    energy = cv2.boxFilter(gx * gx + gy * gy, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    return np.minimum(1.0, np.sqrt(np.maximum(energy, 0.0)) / texture).astype(np.float32)


def consistent_warp(ab_src: np.ndarray, L_src: np.ndarray, L_dst: np.ndarray, dis=None, fb_sigma: float = 1.0,
                    photo_sigma: float = 8.0, texture: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Carry ``ab_src`` (colour of the frame with luminance ``L_src``) onto the frame with ``L_dst``.

    Returns ``(ab, confidence)`` at the size of ``L_dst``: ab backward-warped along DIS flow, and a
    confidence in [0, 1] that is the product of the forward-backward consistency term (Sundaram et al.
    2010: the round trip dst -> src -> dst should come back, with a tolerance growing with the motion),
    a photometric term (the warped source L against the destination L, ``photo_sigma`` L units),
    with ``texture`` > 0 the :func:`texture_confidence` of the destination, and 0 for pixels whose source
    lies outside the source frame.
    """
    import cv2

    from ..temporal.flow import warp

    dis = dis or make_dis()
    a, b = to_u8(L_src), to_u8(L_dst)
    back = dis.calc(b, a, None)  # dst -> src
    fwd = dis.calc(a, b, None)  # src -> dst
    err2, tol2 = fb_error(back, fwd, fb_sigma)
    L_w = warp(np.asarray(L_src, np.float32), back)
    dL = L_w - np.asarray(L_dst, np.float32)
    h, w = back.shape[:2]
    tx, ty = sample_grid(back)
    inside = (tx >= -0.5) & (tx <= w - 0.5) & (ty >= -0.5) & (ty <= h - 0.5)
    conf = np.exp(-err2 / tol2 - (dL * dL) / photo_sigma**2) * inside
    if texture > 0:
        conf *= texture_confidence(L_dst, texture)
    ab = cv2.remap(np.ascontiguousarray(ab_src, np.float32), tx, ty, cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    return ab, conf.astype(np.float32)
