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
_THUMB_WIDTH = 128  # content distance works on thumbnails of this width: cheap and blind to grain/noise
_TOLERANCE_RADIUS = 2  # local motion tolerated on top of each global translation: +-2 thumbnail pixels
_RESIDUAL_L = 4.0  # a pixel is new content when it is this far (L units) outside every explanation
_TRANSLATIONS = 3  # global translations tried besides "no motion": the strongest phase-correlation peaks
_BLANK_STD = 1.5  # a thumbnail with less contrast than this (L units) is blank: black/white flash or fade end
_LOOKBACK = 2  # a frame is compared with this many earlier frames (the closest wins): twos, smear frames


def _thumbnail(L: np.ndarray) -> np.ndarray:
    import cv2

    L = np.asarray(L, dtype=np.float32)
    h, w = L.shape[:2]
    tw = min(_THUMB_WIDTH, w)
    th = max(1, round(h * tw / w))
    return cv2.resize(L, (tw, th), interpolation=cv2.INTER_AREA)


def _gain_matched(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both thumbnails at zero mean and the same contrast (the mean of their two): a fade or a global
    brightness change (gain/offset) leaves the pair equal, and frames of unchanged exposure keep their own
    contrast, so the residual tolerance means the same as on the raw pair. The std floor keeps near-black
    frames from amplifying noise into fake content."""
    sa, sb = float(a.std()), float(b.std())
    target = 0.5 * (sa + sb)
    return ((a - a.mean()) * np.float32(target / max(sa, 3.0)),
            (b - b.mean()) * np.float32(target / max(sb, 3.0)))


def _translations(a: np.ndarray, b: np.ndarray, count: int) -> list[tuple[float, float]]:
    """The ``count`` strongest peaks of the phase correlation of a and b (Kuglin & Hines, 1975): the global
    translations (dx, dy) that map a onto b, e.g. a panned background and a character moving across it."""
    import cv2

    win = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    fa = np.fft.rfft2((a - a.mean()) * win)
    fb = np.fft.rfft2((b - b.mean()) * win)
    cross = np.conj(fa) * fb
    corr = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-6), s=a.shape)
    h, w = corr.shape
    corr[np.ix_(np.arange(-1, 2) % h, np.arange(-1, 2) % w)] = -np.inf  # "no motion" is always tried anyway
    out = []
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(corr)), corr.shape)
        out.append((float(x if x <= w // 2 else x - w), float(y if y <= h // 2 else y - h)))
        ys, xs = np.arange(y - 3, y + 4) % h, np.arange(x - 3, x + 4) % w
        corr[np.ix_(ys, xs)] = -np.inf  # non-maximum suppression around the peak
    return out


def _unexplained(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel of b, how far (L units) it falls outside a's local min..max range under the best of: no
    motion and a's strongest global translations towards b."""
    import cv2

    k = np.ones((2 * _TOLERANCE_RADIUS + 1,) * 2, np.uint8)
    h, w = a.shape
    best = None
    for dx, dy in [(0.0, 0.0), *_translations(a, b, _TRANSLATIONS)]:
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        shifted = a if dx == dy == 0.0 else cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR,
                                                           borderMode=cv2.BORDER_REPLICATE)
        lo, hi = cv2.erode(shifted, k), cv2.dilate(shifted, k)
        d = np.maximum(0.0, np.maximum(b - hi, lo - b))
        best = d if best is None else np.minimum(best, d)
    return best


def _new_content(a: np.ndarray, b: np.ndarray) -> float:
    """Percentage of pixels that neither frame explains in the other (both ways round, averaged)."""
    return 50.0 * float((_unexplained(a, b) > _RESIDUAL_L).mean() + (_unexplained(b, a) > _RESIDUAL_L).mean())


def content_distance(L_a: np.ndarray, L_b: np.ndarray) -> float:
    """Motion-tolerant, fade-discounting content distance between two luminance frames: the percentage
    (0..100) of the picture that is new content, i.e. not explained by the other frame.

    On thumbnails 128 pixels wide, a pixel is explained when it lies within the local min..max range (+-2
    pixels) of the other frame, either in place or moved by one of the three strongest global translations
    between the frames (phase-correlation peaks): a camera pan, a character sliding across a held background and
    a background panned under a held character all score near zero, which a plain tolerant difference does
    not (limited animation moves whole layers by many pixels in one step). ``min(raw, normalised)``: the
    same on gain-matched thumbnails (zero mean, equal contrast), so a fade or a global brightness change
    is not new content.
    """
    ta, tb = _thumbnail(L_a), _thumbnail(L_b)
    if ta.shape != tb.shape:
        return float("inf")
    return content_distance_thumbs(ta, tb)


def content_distance_thumbs(ta: np.ndarray, tb: np.ndarray) -> float:
    """:func:`content_distance` on thumbnails already made (what the detector keeps between frames)."""
    if float(np.abs(ta - tb).max()) <= _RESIDUAL_L:
        return 0.0  # nothing moved further than the residual tolerance (held drawings): skip the FFTs
    raw = _new_content(ta, tb)
    if raw == 0.0:
        return 0.0
    return min(raw, _new_content(*_gain_matched(ta, tb)))


def _is_blank(thumb: np.ndarray) -> bool:
    return float(thumb.std()) < _BLANK_STD


class CutDetector:
    """Hard scene cuts from luminance only, robust to limited animation.

    A frame's score is its :func:`content_distance` (percentage of new content, motion- and
    fade-tolerant) to the closest of the ``lookback`` previous frames (default 2: an in-between or smear frame
    that differs from both neighbours does not end a shot when the next drawing matches the one before it).
    A frame starts a new shot when its score exceeds both ``threshold`` (absolute floor, the user's
    ``--cut-threshold``, default 2.0 percent of the picture) and ``adaptive_ratio`` times the median score of
    the previous ``window`` frames (so that a stretch of very fast motion raises the bar, as in
    PySceneDetect's AdaptiveDetector), and at least ``min_scene_len`` frames have passed since the last cut
    (or the start). Lower ``threshold`` finds more cuts.

    Held drawings (limited animation on twos and threes) score exactly 0 between the repeats, and the whole
    change lands on the frame where the next drawing appears; the global-translation model keeps pans and
    layer slides of any size below the floor. Blank frames (almost no contrast: a black or white flash, the
    bottom of a fade) are never cuts and are skipped as references, so the frame after a flash is compared
    with the last picture before it: the same shot continues, a different one starts.

    ``process(index, L)`` is called once per frame in order; ``cuts`` lists the frame numbers found so far
    (never the first frame); ``scores`` keeps the last scores for logging.
    """

    def __init__(
        self,
        threshold: float | None = None,
        min_scene_len: int = 8,
        adaptive_ratio: float = 8.0,
        window: int = 16,
        lookback: int = _LOOKBACK,
    ):
        threshold = 2.0 if threshold is None else float(threshold)
        if not threshold > 0:
            raise UserError(f"cut threshold must be positive, got {threshold}")
        if int(min_scene_len) < 1:
            raise UserError(f"minimum scene length must be at least 1 frame, got {min_scene_len}")
        if not adaptive_ratio >= 0:
            raise UserError(f"adaptive cut ratio must be >= 0, got {adaptive_ratio}")
        if int(lookback) < 1:
            raise UserError(f"cut lookback must be at least 1 frame, got {lookback}")
        self.threshold = threshold
        self.min_scene_len = int(min_scene_len)
        self.adaptive_ratio = float(adaptive_ratio)
        self.cuts: list[int] = []
        self.scores: deque[float] = deque(maxlen=max(1, int(window)))
        self._recent: deque[np.ndarray] = deque(maxlen=int(lookback))  # last non-blank thumbnails, newest last
        self._shot_start: int | None = None

    def reset(self) -> None:
        """Forget the previous frames (a new, unrelated stream follows); found cuts are kept."""
        self._recent.clear()
        self._shot_start = None
        self.scores.clear()

    def score(self, thumb: np.ndarray) -> float:
        """Score of a thumbnail against the frames kept: its distance to the closest of them."""
        best = float("inf")
        for prev in reversed(self._recent):
            if prev.shape == thumb.shape:  # a different picture size cannot be the same shot
                best = min(best, content_distance_thumbs(prev, thumb))
            if best == 0.0:
                break
        return best

    def process(self, index: int, L: np.ndarray) -> bool:
        """Feed frame ``index``; True when it starts a new shot (never for the first frame fed)."""
        thumb = _thumbnail(L)
        if self._shot_start is None:
            self._shot_start = index
            self._recent.append(thumb)
            return False
        if _is_blank(thumb):  # a flash or the bottom of a fade: no content to compare, nothing to keep
            return False
        score = self.score(thumb) if self._recent else 0.0
        self._recent.append(thumb)
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
_FILL_COARSE_SIGMA = 4.0  # the low-frequency fill's blur runs where its sigma is this many pixels


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
        # The blurs are wide (sigma 32 px at the default flow size: 190-tap kernels); their result has no
        # detail finer than sigma, so they run on a grid `step` times coarser (area-averaged inputs, sigma
        # / step, at least 4 coarse pixels) and the field is resized from there: about 20x less work,
        # within 1-2% of the full-grid result (tested).
        step = max(1, int(sigma // _FILL_COARSE_SIGMA))
        cw, ch = max(1, round(fw / step)), max(1, round(fh / step))
        weighted = cv2.resize(diff, small_size, interpolation=cv2.INTER_AREA) * conf[..., None]
        d = cv2.resize(weighted, (cw, ch), interpolation=cv2.INTER_AREA)
        c = cv2.resize(conf, (cw, ch), interpolation=cv2.INTER_AREA)
        coarse = sigma * cw / fw
        num = cv2.GaussianBlur(d, (0, 0), coarse, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(c, (0, 0), coarse, borderType=cv2.BORDER_REFLECT)
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
