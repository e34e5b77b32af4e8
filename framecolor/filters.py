"""Edge-aware filters guided by luminance.

* :func:`domain_transform`: the recursive-filter domain transform of Gastal and Oliveira, "Domain Transform
  for Edge-Aware Image and Video Processing" (SIGGRAPH 2011);
* :func:`normalized_fill`: normalised convolution (Knutsson and Westin, "Normalized and Differential
  Convolution", CVPR 1993) made edge-aware by the domain transform: sparse values spread within the lines;
* :func:`guided_upsample`: the fast guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010 /
  TPAMI 2013; He and Sun, "Fast Guided Filter", arXiv 2015) as an upsampler: ab modelled locally as a linear
  function of L, ``ab = A * L + B``, A and B fitted at render size with box filters, upsampled bilinearly
  (they are smooth) and applied to the full-size L, so colour edges snap to the full-resolution lines.
  Kept as the comparison for :func:`framecolor.upsample.joint_bilateral_upsample`, which the pipeline uses:
  a dark outline between two colours breaks the guided filter's local linear model.
"""

from __future__ import annotations

import math

import numpy as np


def _recursive_pass(x: np.ndarray, weights: np.ndarray) -> None:
    """In place, along axis 0 of x (n, m, c): causal then anti-causal first-order recursive filter with
    per-step feedback ``weights`` (n - 1, m) (Gastal & Oliveira 2011, eq. 21)."""
    n = x.shape[0]
    wts = weights[..., None]
    for i in range(1, n):
        x[i] += wts[i - 1] * (x[i - 1] - x[i])
    for i in range(n - 2, -1, -1):
        x[i] += wts[i] * (x[i + 1] - x[i])


def domain_transform(image: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float,
                     iterations: int = 3) -> np.ndarray:
    """Edge-aware smoothing of ``image`` (h, w, c) guided by ``guide`` (h, w): the recursive-filter domain
    transform of Gastal & Oliveira (SIGGRAPH 2011). ``sigma_s``: spatial reach in pixels; ``sigma_r``:
    range in guide units (an edge of ``sigma_r`` counts as ``sigma_s`` pixels of distance)."""
    g = np.asarray(guide, np.float32)
    dx = 1.0 + (sigma_s / sigma_r) * np.abs(np.diff(g, axis=1))  # (h, w - 1)
    dy = 1.0 + (sigma_s / sigma_r) * np.abs(np.diff(g, axis=0))  # (h - 1, w)
    rows = np.ascontiguousarray(np.asarray(image, np.float32).transpose(1, 0, 2))  # (w, h, c): x on axis 0
    for i in range(iterations):
        sigma_i = sigma_s * math.sqrt(3.0) * 2 ** (iterations - i - 1) / math.sqrt(4**iterations - 1)
        a = math.exp(-math.sqrt(2.0) / sigma_i)
        _recursive_pass(rows, np.power(a, dx).T)
        cols = np.ascontiguousarray(rows.transpose(1, 0, 2))  # (h, w, c): y on axis 0
        _recursive_pass(cols, np.power(a, dy))
        rows = np.ascontiguousarray(cols.transpose(1, 0, 2))
    return rows.transpose(1, 0, 2)


def normalized_fill(L: np.ndarray, values: np.ndarray, weight: np.ndarray, sigma_s: float, sigma_r: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Edge-aware normalised convolution (Knutsson & Westin 1993) of ``values`` (h, w, c) with certainty
    ``weight`` (h, w): returns (filled values, the filtered certainty). Where no certain pixel is reachable
    (filtered certainty ~0), the values fall back to a plain Gaussian normalised convolution."""
    import cv2

    w = np.asarray(weight, np.float32)
    stack = np.concatenate([values * w[..., None], w[..., None]], axis=2)
    f = domain_transform(stack, L, sigma_s, sigma_r)
    den = f[..., -1]
    out = f[..., :-1] / np.maximum(den, 1e-12)[..., None]
    weak = den < 1e-30  # nothing reachable along the image (float32 underflow): no edge-aware answer
    if weak.any():
        blur = max(L.shape) / 4
        g = cv2.GaussianBlur(stack, (0, 0), blur)
        g_out = g[..., :-1] / np.maximum(g[..., -1], 1e-12)[..., None]
        g_out[g[..., -1] < 1e-8] = 0.0
        out[weak] = g_out[weak]
    return out.astype(np.float32), den


def guided_upsample(
    ab_small: np.ndarray,
    L_small: np.ndarray,
    L_full: np.ndarray,
    radius: int = 2,
    eps: float = 4.0,
) -> np.ndarray:
    """Upsample ab (h, w, 2) to the size of ``L_full`` (H, W) with L as the guide.

    ``radius`` is the box radius at render size; ``eps`` (in L units squared) is the regulariser: where
    the local L variance is below eps the result is close to the local mean colour (flat regions stay
    flat); where L has an edge, colour follows it.
    """
    import cv2

    H, W = L_full.shape
    if ab_small.shape[:2] == (H, W):
        return ab_small.astype(np.float32, copy=False)
    I = L_small.astype(np.float32, copy=False)
    p = ab_small.astype(np.float32, copy=False)
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x):
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_I = box(I)
    var_I = box(I * I) - mean_I * mean_I
    mean_p = box(p)
    cov_Ip = box(p * I[:, :, None]) - mean_I[:, :, None] * mean_p
    A = cov_Ip / (var_I[:, :, None] + eps)
    B = mean_p - A * mean_I[:, :, None]
    # Averaging A and B over the windows (the "mean of coefficients" step) keeps the output smooth.
    A = box(A)
    B = box(B)
    A_full = cv2.resize(A, (W, H), interpolation=cv2.INTER_LINEAR)
    B_full = cv2.resize(B, (W, H), interpolation=cv2.INTER_LINEAR)
    return A_full * L_full.astype(np.float32, copy=False)[:, :, None] + B_full
