"""Dense optical flow for every stage that carries colour along motion: OpenCV's DIS (Kroeger, Timofte, Dai
and Van Gool, "Fast Optical Flow using Dense Inverse Search", ECCV 2016) on luminance turned into 8-bit, and the
backward warp that samples an image along a flow. The temporal smoother, the hint maps of reference mode and
its full-size carrying all use these, so they agree on presets, scaling and rounding."""

from __future__ import annotations

import numpy as np

DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}  # OpenCV's DISOPTICAL_FLOW_PRESET_* values


def make_dis(preset: str = "medium"):
    """A DIS optical-flow object (``preset``: ultrafast, fast or medium)."""
    import cv2

    return cv2.DISOpticalFlow_create(DIS_PRESETS[preset])


def to_u8(L: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """L in [0, 100] -> uint8 for DIS (float32 arithmetic), area-resized to ``shape`` (h, w) when given."""
    import cv2

    L = np.asarray(L, np.float32)
    if shape is not None and L.shape != tuple(shape):
        L = cv2.resize(L, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return np.clip(L * np.float32(2.55) + np.float32(0.5), 0, 255).astype(np.uint8)


def flow_shape(height: int, width: int, flow_size: int) -> tuple[int, int]:
    """(h, w) of the reduced luminance the flow is computed on: longer side ``flow_size`` (never enlarged)."""
    s = min(1.0, flow_size / max(height, width))
    return max(8, round(height * s)), max(8, round(width * s))


def compute_flow(L_from: np.ndarray, L_to: np.ndarray, preset: str = "medium", dis=None) -> np.ndarray:
    """Dense flow (h, w, 2) from ``L_from`` to ``L_to`` (float L in [0, 100]) with DIS:
    pixel x of ``L_from`` moves to x + flow(x) in ``L_to``."""
    dis = dis or make_dis(preset)
    return dis.calc(to_u8(L_from), to_u8(L_to), None)


def sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap sampling maps (x + flow_x, y + flow_y) of a flow (h, w, 2)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx + flow[..., 0], gy + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(x) = image(x + flow(x)), bilinear, border replicated."""
    import cv2

    mx, my = sample_grid(flow)
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def fb_error(back: np.ndarray, fwd: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Forward-backward consistency of a flow pair (Sundaram, Brox and Keutzer, "Dense Point Trajectories by
    GPU-accelerated Large Displacement Optical Flow", ECCV 2010): ``back`` (destination -> source) and ``fwd``
    (source -> destination) should bring a pixel back where it started. Returns the squared round-trip error
    and its tolerance, ``sigma`` pixels squared plus a share growing with the motion; a confidence is
    ``exp(-error / tolerance)``."""
    fwd_at = warp(fwd, back)
    err2 = ((back + fwd_at) ** 2).sum(-1)
    tol2 = sigma**2 + 0.01 * ((back**2).sum(-1) + (fwd_at**2).sum(-1))
    return err2, tol2
