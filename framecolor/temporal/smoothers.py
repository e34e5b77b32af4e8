"""Temporal smoothing of predicted ab: the :class:`Smoother` protocol the colouring stream drives, and
:class:`FlowSmoother`, the one smoother there is (``--temporal flow``; the registry of names is
:data:`framecolor.temporal.SMOOTHERS`).

A per-frame colouriser flickers: the same object gets a slightly different colour in every frame. A smoother
makes a stream of predictions stable without dragging colour across scene cuts (its
:class:`~framecolor.temporal.cuts.CutDetector` resets it) and without washing it out.

:class:`FlowSmoother` is a recursive (exponential) filter along motion paths. For frame t it computes
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

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import UserError
from .cuts import CutDetector
from .flow import DIS_PRESETS, flow_shape, make_dis, sample_grid, to_u8, warp


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


class Smoother(Protocol):
    """What the colouring stream needs of a temporal stage, in the manner of PySceneDetect's detectors:
    ``process`` per frame in order (returns the frames now ready, in order), ``pass_through`` for a frame
    coloured elsewhere (seen by the cut detector, not smoothed), ``flush`` at the end of the stream;
    ``cut_detector`` (a :class:`CutDetector`, replaceable: a resumed run restores its state) and the
    ``cuts`` it found."""

    cut_detector: CutDetector

    @property
    def cuts(self) -> list[int]: ...

    def process(self, item: TemporalItem) -> list[TemporalItem]: ...

    def pass_through(self, index: int, L: np.ndarray) -> None: ...

    def flush(self) -> list[TemporalItem]: ...


_FILL_COARSE_SIGMA = 4.0  # the low-frequency fill's blur runs where its sigma is this many pixels


class FlowSmoother:
    """Flow-guided recursive smoothing of predicted ab; state resets at every cut (see the module docstring).

    ``strength``: weight of the warped history where confidence is full (0 = off; the default 0.95 is an
    effective memory of about 20 frames along motion paths; flicker of independent per-frame errors falls to
    about (1 - s) / sqrt(1 + s) of its raw size, 0.036 at 0.95). ``flow_size``: longer side of the images
    the flow is computed on (the render size is at most 256 on its short side, so 320 is about full render
    resolution; a coarser flow leaves visible drift on thin moving detail). ``preset``: DIS preset,
    "ultrafast", "fast" or "medium" (the choice of size and preset is measured in benchmarks/RESULTS.md,
    "Temporal smoothing"). ``fb_sigma`` (flow-size pixels) and ``photo_sigma`` (L units)
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
        if preset not in DIS_PRESETS:
            raise UserError(f"unknown optical-flow preset {preset!r}; choose from {sorted(DIS_PRESETS)}")
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
            self._dis = make_dis(self.preset)
        return self._dis.calc(a, b, None)

    def _confidence(self, small: np.ndarray, back: np.ndarray) -> np.ndarray:
        """Confidence in [0, 1] at flow size that warped previous content is the same surface as now."""
        import cv2

        prev = self._prev_small
        fwd = self._flow(prev, small)  # previous -> current
        mx, my = sample_grid(back)
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
        fh, fw = flow_shape(h, w, self.flow_size)
        small = to_u8(cv2.resize(L, (fw, fh), interpolation=cv2.INTER_AREA))
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
