"""Colourisation metrics of the evaluation protocol (design notes, "Evaluation protocol"), vectorised.

Every accuracy metric compares a predicted RGB frame with the true RGB frame, both (H, W, 3) uint8 (or
uint16 / float in [0, 1], brought to the 0..255 scale):

* CIEDE2000 (mean and median over pixels) on exact CIE Lab (:func:`framecolor.color.rgb_to_lab_torch`,
  D65) with :func:`framecolor.ciede2000.delta_e_ciede2000` (Sharma, Wu & Dalal 2005);
* SSIM on RGB, data_range 255: :func:`ssim_rgb` is scikit-image's ``structural_similarity(channel_axis=2,
  data_range=255)`` (Wang et al. 2004, 7x7 uniform window, sample covariance) computed with box filters
  on all channels at once; tested against scikit-image;
* PSNR over all pixels and channels;
* colourfulness M of Hasler & Suesstrunk, "Measuring colourfulness in natural images" (SPIE 2003), and
  the ratio prediction / truth.

Temporal metrics of a clip:

* CDC, colour distribution consistency: the mean Jensen-Shannon divergence (natural log) of the per-channel
  256-bin RGB histograms of frames 1, 2 and 4 apart, averaged over the three gaps and the three channels.
  This is the definition and reference code of Liu et al., "Temporally Consistent Video Colorization with
  Deep Feature Propagation and Self-regularization Learning" (TCVC, arXiv 2110.04562, 2021), where it
  was proposed (it is the NTIRE 2023 video colourisation challenge metric); that paper measures it on
  Lei & Chen, "Fully automatic video colorization with self-regularization and diversity" (CVPR 2019),
  among others.  Lower is steadier; compare it with the ground truth's own CDC.
* ab warp error: the previous frame's predicted ab is warped into the current frame along the optical
  flow of the TRUE luminance (OpenCV DIS, medium preset), and the mean Euclidean ab distance (Lab units)
  is taken over non-occluded pixels, found by the forward-backward consistency check of Sundaram, Brox
  & Keutzer, "Dense point trajectories by GPU-accelerated large displacement optical flow" (ECCV 2010),
  as in Lai et al., "Learning Blind Video Temporal Consistency" (ECCV 2018).  Pairs across a scene cut
  are skipped.

Baselines of the protocol: :func:`gray_baseline` (ab = 0) and :class:`FlowPropagation` (each shot's first
frame given in colour, its ab carried forward frame to frame by DIS flow on the true L).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from framecolor import color

JS_GAPS = (1, 2, 4)  # CDC: frame gaps, equally weighted (Liu et al. 2021)


# ------------------------------------------------------------------------------------------ helpers
def to_255(image: np.ndarray) -> np.ndarray:
    """RGB uint8 / uint16 / float [0, 1] -> float64 on the 0..255 scale (uint8 values unchanged)."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if image.dtype == np.uint16:
        return image.astype(np.float64) * (255.0 / 65535.0)
    return np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Any supported RGB frame -> uint8 (rounded), for histograms and pictures."""
    if image.dtype == np.uint8:
        return image
    return np.clip(to_255(image) + 0.5, 0, 255).astype(np.uint8)


def exact_lab(rgb: np.ndarray, dtype=None):
    """RGB frame (H, W, 3) -> exact CIE Lab as a torch tensor (3, H, W) (float64 unless ``dtype``)."""
    import torch

    dtype = dtype or torch.float64
    t = torch.from_numpy(np.ascontiguousarray(to_255(rgb))).to(dtype).permute(2, 0, 1) / 255.0
    return color.rgb_to_lab_torch(t)


def lab_to_uint8(lab: np.ndarray) -> np.ndarray:
    """float Lab (H, W, 3) -> RGB uint8 through the exact torch conversion (rounded)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(lab, dtype=np.float64)).permute(2, 0, 1)
    rgb = color.lab_to_rgb_torch(t).permute(1, 2, 0).numpy()
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------- accuracy
def ciede2000_map(pred: np.ndarray, truth: np.ndarray, truth_lab=None, dtype=None) -> np.ndarray:
    """Per-pixel CIEDE2000 (H, W) between two RGB frames, on exact Lab.

    ``truth_lab``: the truth's Lab tensor (3, H, W) when already computed (several methods, one truth);
    ``dtype``: torch dtype of the computation (float64 by default; float32 is about 4x faster and within
    about 1e-3 of it, which the bench uses on large frames).
    """
    import torch

    from framecolor.ciede2000 import delta_e_ciede2000

    _check_pair(pred, truth)
    dtype = dtype or torch.float64
    if truth_lab is None:
        truth_lab = exact_lab(truth, dtype)
    return delta_e_ciede2000(exact_lab(pred, dtype), truth_lab.to(dtype)).numpy()


def ciede2000_stats(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(mean, median) CIEDE2000 over the pixels of one frame."""
    d = ciede2000_map(pred, truth)
    return float(d.mean()), float(np.median(d))


def ssim_rgb(pred: np.ndarray, truth: np.ndarray, data_range: float = 255.0, win_size: int = 7) -> float:
    """Mean SSIM over pixels and RGB channels, equal to ``skimage.metrics.structural_similarity(pred,
    truth, channel_axis=2, data_range=255)`` (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004): 7x7
    uniform window, sample covariance (N / (N - 1)), K1 = 0.01, K2 = 0.03, the border of width 3 left out."""
    import cv2

    _check_pair(pred, truth)
    x, y = to_255(pred), to_255(truth)
    if min(x.shape[:2]) < win_size:
        raise ValueError(f"SSIM needs frames of at least {win_size}x{win_size} pixels, got {x.shape[:2]}")

    def box(img):
        # the border is cropped below, so its padding mode does not matter
        return cv2.boxFilter(img, cv2.CV_64F, (win_size, win_size), normalize=True,
                             borderType=cv2.BORDER_REFLECT)

    ux, uy = box(x), box(y)
    uxx, uyy, uxy = box(x * x), box(y * y), box(x * y)
    n = win_size * win_size
    cov_norm = n / (n - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def psnr(pred: np.ndarray, truth: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (inf for identical frames)."""
    _check_pair(pred, truth)
    mse = float(np.mean((to_255(pred) - to_255(truth)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M = sigma_rgyb + 0.3 mu_rgyb on the 0..255 scale,
    with rg = R - G and yb = (R + G) / 2 - B."""
    x = to_255(rgb)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    sigma = np.sqrt(rg.var() + yb.var())
    mu = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(sigma + 0.3 * mu)


NEUTRAL_CHROMA = 5.0          # truth pixels with chroma below this are "neutral"
NEUTRAL_LIGHT, NEUTRAL_DARK = 85.0, 15.0  # ... and very light or very dark (whites, blacks, lines, subtitles)


def neutral_chroma(pred: np.ndarray, truth_lab) -> tuple[float, int]:
    """Sum of the prediction's chroma (sqrt(a^2 + b^2), exact Lab) over the truth's near-neutral pixels that
    are very light or very dark, and their count: (sum, count), so that callers pool pixels over many frames.

    Anime's whites and blacks (eye whites, teeth, lines, subtitles) must stay neutral; a model that washes a
    frame in sepia tints exactly these pixels.
    """
    import torch

    t = truth_lab.to(torch.float64)
    chroma_t = torch.sqrt(t[1] ** 2 + t[2] ** 2)
    mask = (chroma_t < NEUTRAL_CHROMA) & ((t[0] > NEUTRAL_LIGHT) | (t[0] < NEUTRAL_DARK))
    count = int(mask.sum())
    if count == 0:
        return 0.0, 0
    p = exact_lab(pred, torch.float64)
    chroma_p = torch.sqrt(p[1] ** 2 + p[2] ** 2)
    return float(chroma_p[mask].sum()), count


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"need two RGB frames of one shape, got {pred.shape} and {truth.shape}")


# ----------------------------------------------------------------------------------------- temporal
def rgb_histograms(rgb: np.ndarray) -> np.ndarray:
    """Per-channel 256-bin histograms (3, 256), each normalised to sum 1 (as ``cv2.calcHist`` / (H W))."""
    x = to_uint8(rgb).reshape(-1, 3).astype(np.int64)
    flat = x + np.arange(3) * 256  # one bincount for the three channels
    counts = np.bincount(flat.ravel(), minlength=3 * 256).reshape(3, 256)
    return counts / float(x.shape[0])


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) along the last axis of two distributions."""
    m = 0.5 * (p + q)

    def kl(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log(a / np.where(m > 0, m, 1.0)), 0.0)
        return terms.sum(axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class CDCMeter:
    """Colour distribution consistency of one frame sequence, fed frame by frame (memory: 5 histograms).

    ``add(rgb)`` appends the next frame; ``reset()`` starts an unrelated sequence (a gap in the frames);
    ``value()`` is the CDC (Liu et al. 2021): for each gap g in (1, 2, 4), the mean over frame pairs
    (i, i + g) and channels of the JS divergence of the histograms, then the mean over the gaps.
    """

    def __init__(self, gaps=JS_GAPS):
        self.gaps = tuple(gaps)
        self._recent: deque = deque(maxlen=max(self.gaps) + 1)
        self._sums = {g: 0.0 for g in self.gaps}
        self._counts = {g: 0 for g in self.gaps}

    def reset(self) -> None:
        self._recent.clear()

    def add(self, rgb: np.ndarray) -> None:
        h = rgb_histograms(rgb)
        for g in self.gaps:
            if len(self._recent) >= g:
                self._sums[g] += float(js_divergence(self._recent[-g], h).mean())
                self._counts[g] += 1
        self._recent.append(h)

    def value(self) -> float:
        per_gap = [self._sums[g] / self._counts[g] for g in self.gaps if self._counts[g]]
        return float(np.mean(per_gap)) if per_gap else float("nan")


def cdc(frames) -> float:
    """CDC of a sequence of RGB frames (see :class:`CDCMeter`)."""
    meter = CDCMeter()
    for f in frames:
        meter.add(f)
    return meter.value()


def luminance_u8(L: np.ndarray) -> np.ndarray:
    """L in [0, 100] -> uint8 image for DIS."""
    return np.clip(L * 2.55 + 0.5, 0, 255).astype(np.uint8)


def make_dis():
    """The protocol's optical flow: OpenCV DIS, medium preset."""
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """out(x) = image(x + flow(x)), bilinear, border replicated."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent_flow(L_prev: np.ndarray, L_cur: np.ndarray, dis=None) -> tuple[np.ndarray, np.ndarray]:
    """Flow from the current to the previous frame (for backward warping of the previous frame) and the
    mask of non-occluded pixels: forward-backward consistent (Sundaram et al. 2010:
    |b + f(x + b)|^2 < 0.01 (|b|^2 + |f(x + b)|^2) + 0.5) and landing inside the previous frame."""
    dis = dis or make_dis()
    a, b = luminance_u8(L_prev), luminance_u8(L_cur)
    back = dis.calc(b, a, None)  # cur -> prev
    fwd = dis.calc(a, b, None)  # prev -> cur
    fwd_at = backward_warp(fwd, back)
    round_trip = back + fwd_at
    lhs = (round_trip**2).sum(-1)
    rhs = 0.01 * ((back**2).sum(-1) + (fwd_at**2).sum(-1)) + 0.5
    h, w = back.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = gx + back[..., 0], gy + back[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return back, (lhs < rhs) & inside


def warp_error(ab_prev: np.ndarray, ab_cur: np.ndarray, back_flow: np.ndarray, mask: np.ndarray) -> float:
    """Mean Euclidean ab distance (Lab units) between the current ab and the previous ab warped along
    ``back_flow``, over the pixels of ``mask`` (NaN when the mask is empty)."""
    if not mask.any():
        return float("nan")
    warped = backward_warp(ab_prev, back_flow)
    d = np.sqrt(((ab_cur.astype(np.float32) - warped) ** 2).sum(-1))
    return float(d[mask].mean())


# ---------------------------------------------------------------------------------------- baselines
def gray_baseline(rgb: np.ndarray) -> np.ndarray:
    """The protocol's "gray" prediction: ab = 0 with the frame's exact L, as RGB uint8.

    A neutral colour (R = G = B = v) has luminance Y = v_linear (the sRGB Y row sums to 1), so the gray of
    lightness L is v = sRGB(Y(L)) exactly; this avoids the faint tint that a round trip through the
    D65 matrices leaves after 8-bit rounding.
    """
    L = exact_lab(rgb).numpy()[0]
    fy = (L + 16.0) / 116.0
    Y = np.where(fy**3 > 216 / 24389, fy**3, L / (24389 / 27))
    v = np.where(Y <= 0.0031308, 12.92 * Y, 1.055 * np.clip(Y, 0, None) ** (1 / 2.4) - 0.055)
    g = np.clip(v * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


class FlowPropagation:
    """The protocol's "flow propagation" baseline for reference mode.

    ``process(rgb, key)``: ``rgb`` is the true frame, of which only L is used unless ``key`` is True
    (the first frame of a shot, given in colour).  Otherwise the previous output's ab is carried to this
    frame by backward warping along DIS flow (medium preset) computed on the true L from this frame to the
    previous one.  Returns the prediction as RGB uint8 (true L, propagated ab).  Lab conversion of the
    inputs is OpenCV's (as in the pipeline); the metrics use exact Lab of the output.
    """

    def __init__(self):
        self.dis = make_dis()
        self._L_prev: np.ndarray | None = None
        self._ab: np.ndarray | None = None

    def process(self, rgb: np.ndarray, key: bool) -> np.ndarray:
        lab = color.rgb_to_lab(rgb)
        L = lab[..., 0]
        if key or self._ab is None or self._L_prev is None or self._L_prev.shape != L.shape:
            self._ab = lab[..., 1:].copy()
        else:
            back = self.dis.calc(luminance_u8(L), luminance_u8(self._L_prev), None)
            self._ab = backward_warp(self._ab, back)
        self._L_prev = L
        out = color.lab_to_rgb(color.join_lab(L, self._ab))
        return color.from_float_rgb(out, np.uint8)
