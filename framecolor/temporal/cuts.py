"""Scene cuts from luminance alone, made for limited animation.

:class:`CutDetector` finds hard cuts from luminance alone (the input is black and white). Its content
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
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

import numpy as np

from ..errors import UserError

THUMB_WIDTH = 128  # content distance works on thumbnails of this width: cheap and blind to grain/noise
_TOLERANCE_RADIUS = 2  # local motion tolerated on top of each global translation: +-2 thumbnail pixels
_RESIDUAL_L = 4.0  # a pixel is new content when it is this far (L units) outside every explanation
_TRANSLATIONS = 3  # global translations tried besides "no motion": the strongest phase-correlation peaks
_BLANK_STD = 1.5  # a thumbnail with less contrast than this (L units) is blank: black/white flash or fade end
_LOOKBACK = 2  # a frame is compared with this many earlier frames (the closest wins): twos, smear frames


def thumbnail(L: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """A small copy of a luminance image, ``width`` pixels wide (never enlarged), area-averaged: what the cut
    detector compares, and what reference mode matches a bare key against to place it."""
    import cv2

    L = np.asarray(L, dtype=np.float32)
    h, w = L.shape[:2]
    tw = min(width, w)
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
    ta, tb = thumbnail(L_a), thumbnail(L_b)
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
        thumb = thumbnail(L)
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

