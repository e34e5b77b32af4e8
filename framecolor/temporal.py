"""Temporal consistency: scene-cut detection and flow-guided smoothing of predicted ab.

A per-frame colouriser flickers: the same object gets a slightly different colour in every frame. This module
makes a stream of predictions stable without dragging colour across scene cuts and without washing it out.

Two stateful per-frame processors, in the style of PySceneDetect's detectors (``process`` per frame, ``flush``
at the end of the stream):

* :class:`CutDetector` finds hard cuts from luminance alone (the input is black and white). Its content
  distance is a *motion-tolerant* difference of small luminance thumbnails: a pixel of frame B counts only by
  how far it falls outside the min..max range of frame A in a small neighbourhood (and symmetrically), so
  moving content scores almost nothing while a new shot scores high. A change that is explained by a global
  gain/offset of brightness (a fade) is discounted. The threshold adapts to the recent level of the distance
  (ratio to the rolling median, in the spirit of PySceneDetect's ``AdaptiveDetector``) above an absolute
  floor, and a minimum shot length suppresses double triggers (flashes).

  Fades and dissolves are *not* hard cuts: their per-frame change is gradual and scores below the floor, so
  they produce no cut (a fade through black into a different shot may give one cut where the new shot comes
  up from black). The smoother's photometric confidence keeps colour from leaking through a gradual
  transition anyway: where the warped previous frame no longer matches, the new prediction wins.

* :class:`FlowSmoother` is a recursive (exponential) filter along motion paths. For frame t it computes
  dense optical flow between L_t and L_{t-1} at reduced size (OpenCV DIS, Kroeger et al., ECCV 2016), warps
  the previous *smoothed* ab onto frame t, and blends it with the new prediction with a per-pixel weight
  ``strength * confidence``. Confidence is the product of a forward-backward flow consistency term
  (occlusions, Sundaram et al., ECCV 2010) and a photometric term (the warped previous L against the current
  L). This is the short-term temporal loss of Lai et al., "Learning Blind Video Temporal Consistency"
  (ECCV 2018) applied as a filter instead of a trained network, and the warped-previous-output data term of
  Bonneel et al., "Blind Video Temporal Consistency" (SIGGRAPH Asia 2015) without their gradient-domain
  solve (the predictions' detail lives in L, which is never touched; ab is low-frequency).

  Averaging two different guesses of a hue gives a greyer colour (wash-out). After blending, the chroma
  magnitude is restored towards the blend of the two *magnitudes* (``chroma_keep``), so smoothing decides
  the hue and keeps the saturation; the boost is capped so that opposite guesses do not create colour out
  of nothing. State resets at every cut: the first frame of a shot is output exactly as predicted.

The filter is causal: latency 0 (every ``process`` call returns the frame it was given). Where the flow is
not trusted (occlusions, new content), a low-frequency correction (normalised convolution of the trusted
pixels' correction) still removes the global part of the flicker (global colour casts are what a
colouriser's flicker mostly is).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .errors import UserError

__all__ = [
    "TemporalItem",
    "CutDetector",
    "detect_cuts",
    "FlowSmoother",
    "content_distance",
    "compute_flow",
    "warp",
]


@dataclass
class TemporalItem:
    """One frame flowing through the smoother.

    ``L``: (h, w) float32 in [0, 100] at the size the smoothing works at (the render size).
    ``ab``: (h, w, 2) float32 predicted ab (Lab units) at that size; replaced by the smoothed ab on output.
    ``payload``: opaque to this module, passed through unchanged.
    """

    index: int
    L: np.ndarray
    ab: np.ndarray
    payload: object = None


# ------------------------------------------------------------------------------------------- cut detection
_THUMB_WIDTH = 64  # content distance works on thumbnails of this width: cheap and blind to grain/noise
_TOLERANCE_RADIUS = 2  # motion tolerated by the distance: +-2 thumbnail pixels (~3% of the width) per frame


def _thumbnail(L: np.ndarray) -> np.ndarray:
    import cv2

    L = np.asarray(L, dtype=np.float32)
    h, w = L.shape[:2]
    tw = min(_THUMB_WIDTH, w)
    th = max(1, round(h * tw / w))
    return cv2.resize(L, (tw, th), interpolation=cv2.INTER_AREA)


def _tolerant_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of how far each pixel of b falls outside a's local min..max range, both ways round."""
    import cv2

    k = np.ones((2 * _TOLERANCE_RADIUS + 1,) * 2, np.uint8)

    def one_way(x, y):
        lo, hi = cv2.erode(x, k), cv2.dilate(x, k)
        return float(np.maximum(0.0, np.maximum(y - hi, lo - y)).mean())

    return 0.5 * (one_way(a, b) + one_way(b, a))


def _gain_normalised(t: np.ndarray) -> np.ndarray:
    # Zero mean, fixed contrast: a fade (global gain/offset) leaves this unchanged. The std floor keeps
    # near-black frames from amplifying noise into fake content.
    return (t - t.mean()) * np.float32(15.0 / max(float(t.std()), 3.0))


def content_distance(L_a: np.ndarray, L_b: np.ndarray) -> float:
    """Motion-tolerant, fade-discounting content distance between two luminance frames (L units, 0..~100).

    ``min(raw, 2 * normalised)``: the raw tolerant difference of the thumbnails, unless the change almost
    vanishes once both frames are brought to the same mean and contrast (then it was a fade, not new content).
    On bikes.mp4 (thumbnails of the 640x272 frames) hard cuts score 5.9..19.6 and the fastest motion 2.4 (at
    5x its recent median, cuts at 55x..1500x); on bigbuckbunny nothing scores above 0.1.
    """
    ta, tb = _thumbnail(L_a), _thumbnail(L_b)
    if ta.shape != tb.shape:
        return float("inf")
    return content_distance_thumbs(ta, tb)


class CutDetector:
    """Hard scene cuts from luminance only.

    A frame starts a new shot when its content distance to the previous frame (:func:`content_distance`)
    exceeds both ``threshold`` (absolute floor, the user's ``--cut-threshold``, default 2.0 L units) and
    ``adaptive_ratio`` times the median distance of the previous ``window`` frames (so that a stretch of very
    fast motion raises the bar, as in PySceneDetect's AdaptiveDetector), and at least ``min_scene_len`` frames
    have passed since the last cut (or the start). Lower ``threshold`` finds more cuts.

    ``process(index, L)`` is called once per frame in order; ``cuts`` lists the frame numbers found so far
    (never the first frame); ``scores`` keeps the last distances for logging.
    """

    def __init__(
        self,
        threshold: float | None = None,
        min_scene_len: int = 8,
        adaptive_ratio: float = 8.0,
        window: int = 16,
    ):
        threshold = 2.0 if threshold is None else float(threshold)
        if not threshold > 0:
            raise UserError(f"cut threshold must be positive, got {threshold}")
        if int(min_scene_len) < 1:
            raise UserError(f"minimum scene length must be at least 1 frame, got {min_scene_len}")
        if not adaptive_ratio >= 0:
            raise UserError(f"adaptive cut ratio must be >= 0, got {adaptive_ratio}")
        self.threshold = threshold
        self.min_scene_len = int(min_scene_len)
        self.adaptive_ratio = float(adaptive_ratio)
        self.cuts: list[int] = []
        self.scores: deque[float] = deque(maxlen=max(1, int(window)))
        self._prev: np.ndarray | None = None
        self._shot_start: int | None = None

    def reset(self) -> None:
        """Forget the previous frame (a new, unrelated stream follows); found cuts are kept."""
        self._prev = None
        self._shot_start = None
        self.scores.clear()

    def process(self, index: int, L: np.ndarray) -> bool:
        """Feed frame ``index``; True when it starts a new shot (never for the first frame fed)."""
        thumb = _thumbnail(L)
        prev, self._prev = self._prev, thumb
        if prev is None or self._shot_start is None:
            self._shot_start = index
            return False
        if prev.shape != thumb.shape:  # a different picture size cannot be the same shot
            score = float("inf")
        else:
            score = content_distance_thumbs(prev, thumb)
        baseline = float(np.median(self.scores)) if self.scores else 0.0
        self.scores.append(min(score, 1e6))
        is_cut = (
            score > self.threshold
            and score > self.adaptive_ratio * baseline
            and index - self._shot_start >= self.min_scene_len
        )
        if is_cut:
            self.cuts.append(index)
            self._shot_start = index
        return is_cut


def content_distance_thumbs(ta: np.ndarray, tb: np.ndarray) -> float:
    """:func:`content_distance` on thumbnails already made (what the detector keeps between frames)."""
    raw = _tolerant_difference(ta, tb)
    if raw == 0.0:
        return 0.0
    return min(raw, 2.0 * _tolerant_difference(_gain_normalised(ta), _gain_normalised(tb)))


def detect_cuts(
    L_frames: Iterable[np.ndarray], threshold: float | None = None, min_scene_len: int = 8, **kwargs
) -> list[int]:
    """Frame numbers (0-based, in iteration order) where a new shot starts, first frame excluded."""
    det = CutDetector(threshold=threshold, min_scene_len=min_scene_len, **kwargs)
    for i, L in enumerate(L_frames):
        det.process(i, L)
    return list(det.cuts)


# ------------------------------------------------------------------------------------------------ flow
_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def _to_u8(L: np.ndarray) -> np.ndarray:
    return np.clip(L * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _flow_shape(h: int, w: int, flow_size: int) -> tuple[int, int]:
    s = min(1.0, flow_size / max(h, w))
    return max(8, round(h * s)), max(8, round(w * s))


def compute_flow(L_from: np.ndarray, L_to: np.ndarray, preset: str = "medium", dis=None) -> np.ndarray:
    """Dense flow (h, w, 2) from ``L_from`` to ``L_to`` (float L in [0, 100]) with OpenCV DIS:
    pixel x of ``L_from`` moves to x + flow(x) in ``L_to``."""
    import cv2

    if dis is None:
        dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
    return dis.calc(_to_u8(L_from), _to_u8(L_to), None)


def _sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx + flow[..., 0], gy + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(x) = image(x + flow(x)), bilinear, border replicated."""
    import cv2

    mx, my = _sample_grid(flow)
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# -------------------------------------------------------------------------------------------- smoother
class FlowSmoother:
    """Flow-guided recursive smoothing of predicted ab; state resets at every cut (see the module docstring).

    ``strength``: weight of the warped history where confidence is full (0 = off; the default 0.95 is an
    effective memory of about 20 frames along motion paths; flicker of independent per-frame errors falls to
    about (1 - s) / sqrt(1 + s) of its raw size, 0.036 at 0.95). ``flow_size``: longer side of the images
    the flow is computed on (the render size is at most 256 on its short side, so 320 is about full render
    resolution; at 160 the coarser flow left visible drift on thin moving detail: bigbuckbunny's ab warp
    error 0.129 at 160, 0.109 at 320, for about 5 ms more per frame on one core). ``preset``: DIS preset, "ultrafast", "fast" or "medium" (medium: lower warp
    error on bikes for ~2 ms more per frame). ``fb_sigma`` (flow-size pixels) and ``photo_sigma`` (L units)
    set how quickly confidence falls with round-trip flow error and with brightness mismatch.
    ``chroma_keep`` in [0, 1]: how much of the chroma magnitude lost by averaging is put back, at most
    ``max_chroma_gain`` times. ``fill_sigma``: reach of the low-frequency correction in untrusted pixels, as
    a fraction of the flow image's longer side (0 = off).
    ``cut_detector``: a :class:`CutDetector` (one with default settings when None).
    """

    latency = 0

    def __init__(
        self,
        strength: float = 0.95,
        flow_size: int = 320,
        cut_detector: CutDetector | None = None,
        preset: str = "medium",
        fb_sigma: float = 2.0,
        photo_sigma: float = 10.0,
        chroma_keep: float = 1.0,
        max_chroma_gain: float = 1.5,
        fill_sigma: float = 0.1,
    ):
        if not 0.0 <= strength < 1.0:
            raise UserError(f"temporal strength must be in [0, 1), got {strength}")
        if int(flow_size) < 16:
            raise UserError(f"flow size must be at least 16 pixels, got {flow_size}")
        if preset not in _PRESETS:
            raise UserError(f"unknown optical-flow preset {preset!r}; choose from {sorted(_PRESETS)}")
        if not 0.0 <= chroma_keep <= 1.0:
            raise UserError(f"chroma_keep must be in [0, 1], got {chroma_keep}")
        self.strength = float(strength)
        self.flow_size = int(flow_size)
        self.preset = preset
        self.fb_sigma = float(fb_sigma)
        self.photo_sigma = float(photo_sigma)
        self.chroma_keep = float(chroma_keep)
        self.max_chroma_gain = float(max_chroma_gain)
        self.fill_sigma = float(fill_sigma)
        self.cut_detector = cut_detector if cut_detector is not None else CutDetector()
        self._dis = None
        self._prev_small: np.ndarray | None = None  # previous L at flow size
        self._prev_ab: np.ndarray | None = None  # previous *smoothed* ab at render size
        self.last_confidence: np.ndarray | None = None  # per-pixel confidence of the last frame (flow size)

    @property
    def cuts(self) -> list[int]:
        return self.cut_detector.cuts

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self._dis is None:
            import cv2

            self._dis = cv2.DISOpticalFlow_create(_PRESETS[self.preset])
        return self._dis.calc(a, b, None)

    def _confidence(self, small: np.ndarray, back: np.ndarray) -> np.ndarray:
        """Confidence in [0, 1] at flow size that warped previous content is the same surface as now."""
        import cv2

        prev = self._prev_small
        fwd = self._flow(prev, small)  # previous -> current
        mx, my = _sample_grid(back)
        h, w = back.shape[:2]
        # round trip: x -> x + back(x) in the previous frame -> + fwd(there) should land on x again
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err2 = _chroma(back + fwd_at) ** 2
        # tolerance grows with the motion, as in Sundaram et al.'s consistency test
        tol2 = self.fb_sigma**2 + 0.01 * (_chroma(back) ** 2 + _chroma(fwd_at) ** 2)
        prev_w = cv2.remap(prev, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        dL = (prev_w.astype(np.float32) - small.astype(np.float32)) * np.float32(1 / 2.55)
        conf = np.exp(-err2 / tol2 - (dL * dL) / self.photo_sigma**2)
        # content that came from outside the previous frame has no history
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        conf *= inside
        return conf.astype(np.float32)

    def _low_frequency_fill(self, diff, conf, small_size, full_size):
        """Smooth correction field for pixels without a trusted history (occlusions, new content).

        Normalised convolution (Knutsson & Westin, CVPR 1993) of the confident pixels' correction
        ``warped history - prediction``: the low-frequency part of the temporal correction, which is where a
        colouriser's flicker lives (global casts, slowly varying tints), carried into the pixels around. Its
        reach fades where few confident pixels are near (after a missed cut nothing is confident: no fill).
        """
        import cv2

        fw, fh = small_size
        sigma = self.fill_sigma * max(fw, fh)
        d = cv2.resize(diff, small_size, interpolation=cv2.INTER_AREA)
        num = cv2.GaussianBlur(d * conf[..., None], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(conf, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        field = num / np.maximum(den, 1e-3)[..., None]
        field *= np.minimum(1.0, den * 2.0)[..., None]
        return cv2.resize(field, full_size, interpolation=cv2.INTER_LINEAR)

    def reset(self) -> None:
        """Drop the history (next frame is output as predicted)."""
        self._prev_small = None
        self._prev_ab = None

    def process(self, item: TemporalItem) -> list[TemporalItem]:
        """Smooth one frame; returns the frames now ready (with latency 0: exactly this one)."""
        import cv2

        L = np.asarray(item.L, dtype=np.float32)
        ab = np.asarray(item.ab, dtype=np.float32)
        if L.ndim != 2 or ab.shape != L.shape + (2,):
            raise UserError(f"temporal smoothing needs L (h, w) and ab (h, w, 2); got {L.shape} and {ab.shape}")
        h, w = L.shape
        fh, fw = _flow_shape(h, w, self.flow_size)
        small = _to_u8(cv2.resize(L, (fw, fh), interpolation=cv2.INTER_AREA))
        cut = self.cut_detector.process(item.index, L)
        prev_ab = self._prev_ab
        if cut or prev_ab is None or prev_ab.shape != ab.shape or self.strength == 0.0:
            out = ab.copy()
            self.last_confidence = None
        else:
            back = self._flow(small, self._prev_small)  # current -> previous
            conf = self._confidence(small, back)
            self.last_confidence = conf
            # flow and confidence up to render size; flow vectors scale with the image
            scale = np.array([w / fw, h / fh], np.float32)
            back_full = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR) * scale
            weight = cv2.resize(conf, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(self.strength)
            hist = warp(prev_ab, back_full)
            fill = None
            if self.fill_sigma > 0:
                fill = self._low_frequency_fill(hist - ab, conf, (fw, fh), (w, h))
            out = blend_ab(ab, hist, weight, self.chroma_keep, self.max_chroma_gain, fill, self.strength)
        self._prev_small = small
        self._prev_ab = out
        return [TemporalItem(item.index, item.L, out, item.payload)]

    def pass_through(self, index: int, L: np.ndarray) -> None:
        """A frame coloured elsewhere and not smoothed (reference mode's colour carried at full size, already
        coherent along the flow): the cut detector still sees it; the history is dropped, so the next smoothed
        frame starts afresh."""
        self.cut_detector.process(index, np.asarray(L, dtype=np.float32))
        self.reset()

    def flush(self) -> list[TemporalItem]:
        """End of stream: nothing is held back by this causal filter; the state is reset."""
        self.reset()
        return []


def _chroma(v: np.ndarray) -> np.ndarray:
    """Length of the 2-vectors of an (h, w, 2) array (chroma of ab, length of a flow vector)."""
    import cv2

    return cv2.magnitude(np.ascontiguousarray(v[..., 0]), np.ascontiguousarray(v[..., 1]))


def blend_ab(
    pred: np.ndarray,
    hist: np.ndarray,
    weight: np.ndarray,
    chroma_keep: float = 1.0,
    max_gain: float = 2.0,
    fill: np.ndarray | None = None,
    strength: float = 1.0,
) -> np.ndarray:
    """``pred + weight * (hist - pred)`` with the chroma magnitude pulled back towards the blend of the two
    magnitudes, so averaging two different hues does not grey them out. The gain is capped at ``max_gain``
    (opposite guesses whose mean is nearly grey stay nearly grey rather than getting an invented hue)."""
    w = weight[..., None]
    out = pred + w * (hist - pred)
    if fill is not None:  # where the history is not trusted, take its low-frequency correction instead
        out += (strength - w) * fill
    if chroma_keep > 0:
        c_pred, c_hist, c_out = _chroma(pred), _chroma(hist), _chroma(out)
        # saturation is filtered like the colour itself, but as a magnitude: the average of two saturated
        # guesses of different hue stays as saturated as they are
        target = c_pred + weight * (c_hist - c_pred)
        gain = np.minimum(target / np.maximum(c_out, 1e-3), max_gain)
        gain = 1.0 + chroma_keep * (np.maximum(gain, 1.0) - 1.0)
        out *= gain[..., None]
    return out.astype(np.float32)
