"""Reference mode for line art (``--input-kind lineart --reference``): the paint-bucket workflow, one coloured
key, then line frames.

:class:`LineArtReferenceColorizer` is :class:`framecolor.colorizers.reference.ReferenceColorizer` (same shots,
same key governance, same hint map: the key's colours and the previous frame's carried by consistent optical
flow, :func:`framecolor.hints.propagate.consistent_warp`), with three changes: the flow runs between *line art*
frames, blurred (:func:`~framecolor.colorizers.lineart.flow_guide`; the key frame's own line drawing stands in
for the painted key's L); the key's lightness is carried with its colours (line art has none to keep) and
blended into the output's L by the hint confidence; the hint map goes to the refinement stage as its hint input
instead of to a hint applier. With ``region_fill`` (the default), a fourth: paint-bucket region fill, below.

Region fill.  Line-art colouring tools colour whole regions enclosed by lines: the region-based fill of
Sýkora, Dingliana and Collins, "LazyBrush: Flexible Painting Tool for Hand-drawn Cartoons" (Computer Graphics
Forum 28(2), Eurographics 2009), and paint-bucket colourisation, which carries colours from a coloured key to
the next line frames by matching line-enclosed segments (Dai, Zhou, Li, Li and Loy, "Learning Inclusion
Matching for Animation Paint Bucket Colorization", CVPR 2024; ``benchmarks/lineart.py`` shows two shots of
their BasicPBC test data).  Here the carried hints vote per region: optical flow has nothing to follow in the
flat paper between lines, so the hints are patchy there and the network's guess would fill the holes.  The
frame's drawing is cut into regions (:func:`~framecolor.colorizers.regions.line_regions`: ink darker than
``REGION_LINE_L``, gaps of up to 2 px closed, 4-connected paper components, at the frame's full size); each
region whose trusted hints (confidence >= ``MASK_THRESHOLD``, away from its edges where it has enough there:
:func:`~framecolor.colorizers.regions.region_colours`) are numerous (at least ``REGION_MIN_HINTS`` render pixels
and ``REGION_MIN_SHARE`` of the region) and agree (at least ``REGION_AGREE_SHARE`` of them within
``REGION_AGREE`` Lab units of their per-channel median) is painted whole with that median Lab, lightness
included (its L set at full size, so it stops at the lines); other regions keep the network's colour.  Lines
stay dark (:func:`~framecolor.colorizers.lineart.compose_lightness`); the fill never crosses a line, since a
region ends at one.  With region fill the previous frame's colours are carried as hints only as far as they
rested on hints themselves (:meth:`LineArtReferenceColorizer.hint_map`), or a region painted from the
network's guess in one frame would keep that guess for the rest of the shot.
"""

from __future__ import annotations

import logging

import numpy as np

from .. import color
from ..hints.points import paint_points
from ..hints.propagate import consistent_warp
from .lineart import LineArtColorizer, finish_frame, flow_guide, shrink_lines
from .reference import ReferenceColorizer, scan, validate
from .regions import fill_regions, line_regions, region_colours, sample_labels

log = logging.getLogger("framecolor")


class LineArtReferenceColorizer(ReferenceColorizer):
    """Reference mode for line art (see the module docstring); built by :func:`make_lineart_reference`.
    ``key_lines``: frame number -> the input's full-size line L at that frame.

    ``region_fill`` (default True): paint each region of the drawing whose carried hints are many and agree
    with their median Lab, and carry the previous frame's colours only as far as they rest on hints (see the
    module docstring).  It is the default because it is built for line art that is truly flat-painted, the
    paint-bucket case (studio cels, the BasicPBC shots): there it turns the patchy hints of the flat paper into
    whole flat regions (white paper stays white, hair keeps its purple) and keeps the network's guesses out of
    them.  It is not free on line art extracted from shaded 3-D renders (XDoG of bigbuckbunny: open strokes,
    one leaked region over most of the frame): the fill itself then changes almost nothing (0.2-0.4% of the
    frame filled), but the stricter chain costs a little accuracy (benchmarks/RESULTS.md, "Line art (issue
    9)"); pass ``region_fill=False`` for such material.  Frames
    without a key (automatic colouring, point hints only) are never region-filled, nor is the key's own
    frame."""

    def __init__(self, colorizer: LineArtColorizer, references, points, plan, key_lines, cut_threshold=None,
                 region_fill: bool = True):
        super().__init__(colorizer, None, references, points, plan, cut_threshold, colorizer.render_size,
                         colorizer.batch, texture=0.0)  # no texture term: between lines, line art is all paper
        self.colorizer = colorizer
        self.key_lines = key_lines
        self.region_fill = bool(region_fill)
        self.grounded_chain = self.region_fill  # see hint_map
        self.last_regions: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # labels, colours, filled
        self._grounding: tuple[int, np.ndarray] | None = None  # (index, how far each colour rests on hints)

    def describe(self) -> str:
        fill = ", region fill" if self.region_fill else ""
        return f"line-art reference mode{fill} ({self.colorizer.describe()})"

    def _load_key(self, ref, frame_hw, L_small):
        import cv2

        fresh = not (self._key is not None and self._key.frame == ref.frame and self._key.name == ref.name)
        key = super()._load_key(ref, frame_hw, L_small)
        if not fresh:
            return key
        # The key's lightness is carried along with its ab (line art has no lightness of its own): the
        # painted L with its drawn lines lifted by a 3x3 maximum filter (the output multiplies the frame's
        # own lines back in; carried key lines would leave ghosts where the drawing moved).
        paint_L = cv2.dilate(np.ascontiguousarray(key.L, np.float32), np.ones((3, 3), np.uint8))
        key.ab = np.concatenate([paint_L[..., None], key.ab], axis=-1).astype(np.float32)
        lines = self.key_lines.get(ref.frame)
        if lines is not None:  # flow must match line art with line art, not with the painted key
            key.L = flow_guide(shrink_lines(lines, L_small.shape))
        return key

    def _start_shot(self, index: int) -> None:
        super()._start_shot(index)
        self._grounding = None

    def process(self, index: int, L: np.ndarray, frame_hw, L_full: np.ndarray | None = None) -> np.ndarray:
        """Lab (h, w, 3) of frame ``index`` (render-size line art ``L``).  ``L_full``: the frame's full-size
        drawing, where region fill finds its regions (without it, on ``L``); the regions of the last frame
        filled are left in ``last_regions`` (labels, colours, filled), else None."""
        L = np.asarray(L, np.float32)
        self.last_regions = None
        points = self._enter_frame(index, L, frame_hw)
        L_hint = None
        if self._key is not None:
            # carried Lab (h, w, 3) of the key and the previous frame, flow on the blurred drawings
            hint, mask = self.hint_map(index, flow_guide(L))
            L_hint, L_mask = hint[..., 0], np.clip(mask, 0, 1)
            hint_ab, mask = np.ascontiguousarray(hint[..., 1:]), mask.copy()
        elif points:
            hint_ab, mask = np.zeros(L.shape + (2,), np.float32), np.zeros(L.shape, np.float32)
        else:
            self._prev = None
            return self.colorizer.stages([L])[0]
        if points:  # points give colour (ab) only
            paint_points(hint_ab, mask, points, frame_hw)
        self.last_coverage = float((mask >= 0.5).mean())
        self.last_hints = (hint_ab, mask)
        lab = self.colorizer.stages([L], [(hint_ab, mask)])[0]
        if L_hint is not None:
            lab[..., 0] = L_mask * L_hint + (1 - L_mask) * lab[..., 0]
            grounding = np.clip(mask, 0, 1)
            if self.region_fill and mask.min() < 1.0:  # (mask all 1: the key's own frame, nothing to fill)
                labels = line_regions(L if L_full is None else L_full)
                small = sample_labels(labels, L.shape)
                hint_lab = np.concatenate([L_hint[..., None], hint_ab], axis=-1)
                colours, filled = region_colours(small, hint_lab, mask, n=int(labels.max()) + 1)
                lab = fill_regions(lab, small, colours, filled)
                self.last_regions = (labels, colours, filled)
                grounding = np.maximum(grounding, filled[small])
            self._prev = (index, flow_guide(L), lab.copy())
            self._grounding = (index, grounding.astype(np.float32))
        return lab

    def hint_map(self, index: int, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`ReferenceColorizer.hint_map`; with ``grounded_chain`` (on with region fill) the previous
        frame's colours are trusted only as far as they rested on hints there (its hint confidence, 1 in its
        filled regions), carried along with them: without it, the network's guesses in a frame without hints
        become trusted hints of the next frame, and region fill would then paint them over whole regions for
        the rest of the shot."""
        key, prev, g = self._key, self._prev, self._grounding
        if (not self.grounded_chain or key.frame == index or prev is None or g is None or g[0] != prev[0]):
            return super().hint_map(index, L)
        ab_k, conf_k = consistent_warp(key.ab, key.L, L, self._dis, self.fb_sigma, self.photo_sigma, self.texture)
        carried, conf_c = consistent_warp(np.concatenate([prev[2], g[1][..., None]], axis=-1), prev[1], L,
                                          self._dis, self.fb_sigma, self.photo_sigma)
        ab_c, conf_c = carried[..., :-1], conf_c * np.clip(carried[..., -1], 0, 1)
        # the rest as in ReferenceColorizer.hint_map: the key where trusted and (agreeing or the chain untrusted)
        trusted_k, trusted_c = conf_k >= self.key_confidence, conf_c >= self.key_confidence
        agree = np.sqrt(((ab_k - ab_c) ** 2).sum(-1)) <= self.agreement
        use_key = trusted_k & (agree | ~trusted_c)
        return (np.where(use_key[..., None], ab_k, ab_c).astype(np.float32),
                np.where(use_key, conf_k, conf_c).astype(np.float32))

    def predict_frames(self, prepared: list) -> list[np.ndarray]:
        out = []
        for p in prepared:
            lab = self.process(p.frame.index, self.colorizer.lines_of(p), p.L_full.shape, L_full=p.L_full)
            out.append(finish_frame(p, lab, self.last_regions))
        return out


def make_lineart_reference(frames_again, colorizer: LineArtColorizer, references: list, points: list,
                           cut_threshold: float | None = None, region_fill: bool | None = None):
    """Reference mode for line art: a first pass (:func:`framecolor.colorizers.reference.scan`) finds shots and places
    bare keys, and keeps the input's line drawing at each key's frame (the flow's anchor); then the
    colouriser is built.  ``frames_again()`` gives a fresh iterator of frames (objects with index, image).
    ``region_fill``: None takes the colouriser's setting (:class:`LineArtColorizer`, default True)."""
    pinned = {r.frame for r in references if r.frame is not None}
    key_lines: dict[int, np.ndarray] = {}

    def tapped(frames, wanted):
        for f in frames:
            if f.index in wanted and f.index not in key_lines:
                key_lines[f.index] = color.luminance(np.asarray(f.image))
            yield f

    plan = scan(tapped(frames_again(), pinned), colorizer.render_size, references, cut_threshold)
    validate(plan, references, points)
    missing = {r.frame for r in references} - set(key_lines)
    if any(r.frame is not None and plan.first <= r.frame <= plan.last for r in references if r.frame in missing):
        for _ in tapped(frames_again(), missing):  # bare keys, placed by the scan: fetch their drawings
            pass
    for r in references:
        if r.frame not in key_lines:
            log.warning("reference %s: frame %s is not in the input; its colours are matched by the key's own "
                        "lightness, which fits line art poorly", r.name, r.frame)
    keyed = sorted({plan.shot_of(max(r.frame, plan.first))[0] for r in references})
    log.info("line-art reference mode: %d shot(s) starting at frames %s; keys for %s", len(plan.cuts) + 1,
             plan.shot_starts()[:50], keyed[:50])
    if region_fill is None:
        region_fill = colorizer.region_fill
    return LineArtReferenceColorizer(colorizer, references, points, plan, key_lines, cut_threshold, region_fill)
