"""Simulated colouring mistakes, to train a refinement network on drafts made from ground truth.

The two-stage line-art colouring of Zhang, Li, Wong, Ji and Liu, "Two-stage Sketch Colorization", ACM
Transactions on Graphics 37(6) (SIGGRAPH Asia), 2018, trains its refinement stage on drafts corrupted by
random region proposal and pasting, random deformation and random colour spray; these are those three,
as this project's issue 9 specifies them:

* :func:`paste_region`: a patch (16-128 px) copied from elsewhere in the image, through a random
  perspective distortion, onto a random place (colour in the wrong region).
* :func:`random_warp`: a smooth random displacement field inside a soft round window (colour
  sliding off the lines).
* :func:`colour_spray`: 1-3 strokes of one random colour along random smooth paths, radius 16-64 px,
  with soft edges (a splash of wrong colour).

Each takes an RGB image (H, W, 3; uint8, uint16 or float) and a ``numpy.random.Generator`` and returns
``(corrupted, mask)``: the corrupted image (same shape and dtype) and a bool (H, W) mask of the region the
simulator wrote, computed from its geometry (patch shape, window where the displacement is at least
1/8 px, stroke footprint).  Outside the mask the output is bit-identical to the input; inside, pixels change
unless the new content happens to equal the old (flat colour pasted or slid onto the same flat colour).
The same generator state gives the same result.  :func:`simulate_draft` draws a random mix of them.
"""

from __future__ import annotations

import numpy as np

from framecolor.errors import UserError


def _check(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise UserError(f"expected an RGB image (H, W, 3), got {getattr(rgb, 'shape', type(rgb))}")
    if min(rgb.shape[:2]) < 16:
        raise UserError(f"image {rgb.shape[1]}x{rgb.shape[0]} is too small for draft errors (16 px at least)")


def _full_scale(dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    return 1.0


def _cast(x: np.ndarray, dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        return np.clip(np.rint(x), 0, _full_scale(dtype)).astype(dtype)
    return x.astype(dtype)


def paste_region(rgb: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = (16, 128),
                 distortion: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Random region pasting: a patch of side ``size[0]..size[1]`` px, taken from a random place through a
    random perspective distortion (each corner of the source square moved by up to ``distortion`` of the
    side), pasted at another random place with a random shape (a square or an ellipse).
    """
    import cv2

    _check(rgb)
    h, w = rgb.shape[:2]
    s = int(rng.integers(size[0], size[1] + 1))
    s = max(4, min(s, h // 2, w // 2))
    # source square (corners jittered) and target square, both inside the image
    sx, sy = rng.integers(0, w - s + 1), rng.integers(0, h - s + 1)
    tx, ty = rng.integers(0, w - s + 1), rng.integers(0, h - s + 1)
    square = np.array([[0, 0], [s, 0], [s, s], [0, s]], np.float32)
    src = square + np.array([sx, sy], np.float32) + rng.uniform(-distortion, distortion, (4, 2)).astype(np.float32) * s
    dst = square  # local coordinates of the target patch
    matrix = cv2.getPerspectiveTransform(src, dst)
    patch = cv2.warpPerspective(rgb, matrix, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    shape = np.zeros((s, s), np.uint8)
    if rng.random() < 0.5:
        shape[:] = 1
    else:
        cv2.ellipse(shape, (s // 2, s // 2), (max(1, s // 2 - 1), max(1, int(s * rng.uniform(0.25, 0.5)))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
    local = shape.astype(bool)
    out = rgb.copy()
    region = out[ty : ty + s, tx : tx + s]
    region[local] = patch[local]
    mask = np.zeros((h, w), bool)
    mask[ty : ty + s, tx : tx + s] = local
    return out, mask


def random_warp(rgb: np.ndarray, rng: np.random.Generator, radius: tuple[int, int] = (32, 128),
                amplitude: tuple[float, float] = (3.0, 12.0), grid: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Random warp: a smooth displacement field (random vectors on a ``grid`` x ``grid`` lattice,
    bicubically interpolated) of peak ``amplitude`` px, faded out by a Gaussian-shaped window of
    ``radius`` px around a random centre; the image is resampled along it (bilinear).
    """
    import cv2

    _check(rgb)
    h, w = rgb.shape[:2]
    r = float(rng.uniform(*radius))
    amp = float(rng.uniform(*amplitude))
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    x0, x1 = int(max(0, np.floor(cx - r))), int(min(w, np.ceil(cx + r)))
    y0, y1 = int(max(0, np.floor(cy - r))), int(min(h, np.ceil(cy + r)))
    bw, bh = x1 - x0, y1 - y0
    coarse = rng.normal(0.0, 1.0, (grid, grid, 2)).astype(np.float32)
    field = cv2.resize(coarse, (bw, bh), interpolation=cv2.INTER_CUBIC)
    field *= amp / max(1e-6, float(np.abs(coarse).max()))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (r * r)
    window = np.where(d2 < 1.0, (1.0 - d2) ** 2, 0.0).astype(np.float32)  # smooth, zero at the rim
    field *= window[:, :, None]
    local = np.hypot(field[..., 0], field[..., 1]) >= 0.125  # smaller shifts are invisible: left as is
    map_x = xx + field[..., 0]
    map_y = yy + field[..., 1]
    src = rgb if rgb.dtype != np.float64 else rgb.astype(np.float32)
    warped = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = rgb.copy()
    region = out[y0:y1, x0:x1]
    region[local] = warped[local].astype(rgb.dtype)
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = local
    return out, mask


def _random_path(rng: np.random.Generator, h: int, w: int, n: int = 6) -> np.ndarray:
    """A smooth random path: a random walk of ``n`` control points, densified by a Catmull-Rom-like blur."""
    start = rng.uniform([0, 0], [w, h])
    step = max(8.0, min(h, w) * 0.15)
    heading = rng.uniform(0, 2 * np.pi)
    pts = [start]
    for _ in range(n - 1):
        heading += rng.normal(0, 0.6)
        pts.append(pts[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    pts = np.array(pts)
    t = np.linspace(0, n - 1, 8 * n)
    return np.stack([np.interp(t, np.arange(n), pts[:, 0]), np.interp(t, np.arange(n), pts[:, 1])], axis=1)


def colour_spray(rgb: np.ndarray, rng: np.random.Generator, radius: tuple[int, int] = (16, 64),
                 strokes: tuple[int, int] = (1, 3), opacity: tuple[float, float] = (0.6, 1.0)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Random colour spray: 1-3 strokes (``strokes``) of one random colour, each a thick line of radius
    ``radius[0]..radius[1]`` px along a random smooth path, with a soft edge and ``opacity``.
    """
    import cv2

    _check(rgb)
    h, w = rgb.shape[:2]
    scale = _full_scale(rgb.dtype)
    colour = rng.uniform(0.0, 1.0, 3) * scale
    alpha = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        rad = int(rng.integers(radius[0], radius[1] + 1))
        path = np.rint(_random_path(rng, h, w) * 16).astype(np.int32)  # 4 fractional bits
        stroke = np.zeros((h, w), np.float32)
        cv2.polylines(stroke, [path], False, 1.0, thickness=2 * rad, lineType=cv2.LINE_AA, shift=4)
        np.maximum(alpha, stroke, out=alpha)
    soft = max(1.0, 0.15 * radius[0])
    alpha = cv2.GaussianBlur(alpha, (0, 0), soft) * np.float32(rng.uniform(*opacity))
    alpha[alpha < 1.0 / 512] = 0.0  # the blur's far tail moves no pixel by even half an 8-bit level
    mask = alpha > 0
    out = rgb.copy()
    a = alpha[mask][:, None]
    out[mask] = _cast(rgb[mask].astype(np.float32) * (1 - a) + colour[None, :].astype(np.float32) * a, rgb.dtype)
    return out, mask


SIMULATORS = {"paste": paste_region, "warp": random_warp, "spray": colour_spray}


def simulate_draft(rgb: np.ndarray, rng: np.random.Generator, n_paste: tuple[int, int] = (0, 3),
                   n_warp: tuple[int, int] = (0, 2), n_spray: tuple[int, int] = (0, 2)
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A draft with a random mix of mistakes: ``n_paste``, ``n_warp``, ``n_spray`` (inclusive ranges) of
    each kind, applied in a random order; at least one mistake in all.  Returns (draft, union mask)."""
    _check(rgb)
    kinds = (["paste"] * int(rng.integers(n_paste[0], n_paste[1] + 1))
             + ["warp"] * int(rng.integers(n_warp[0], n_warp[1] + 1))
             + ["spray"] * int(rng.integers(n_spray[0], n_spray[1] + 1)))
    if not kinds:
        kinds = [str(rng.choice(sorted(SIMULATORS)))]
    out = rgb
    mask = np.zeros(rgb.shape[:2], bool)
    for kind in rng.permutation(kinds):
        out, m = SIMULATORS[str(kind)](out, rng)
        mask |= m
    if out is rgb:
        out = rgb.copy()
    return out, mask
