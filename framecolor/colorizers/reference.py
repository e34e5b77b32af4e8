"""Reference mode: key frames govern their shots; each frame's hints are propagated and applied.

Per shot (shots from :class:`framecolor.temporal.cuts.CutDetector`, the same detector the smoother uses):

* the shot's key (the reference whose frame number lies in the shot; with several, the nearest in time) is
  brought to render size as Lab;
* for every frame t of the shot, the hint map is built from two sources, both carried by dense optical flow
  and kept only where the flow is forward-backward consistent and the luminance matches
  (:func:`framecolor.hints.propagate.consistent_warp`):

  1. the key's own colours, warped directly from the key to frame t (no drift, but long-range flow fails
     under large motion), and
  2. the previous coloured frame (t - 1) warped to t (short-range flow almost always holds; errors can
     accumulate, which source 1 corrects wherever it is trusted);

  where both are trusted the key wins; point hints of frame t are painted over the result;
* the applier (the edge-aware densifier) turns the hint map into frame t's ab; the colouring stream then
  smooths and upsamples it like any other prediction.

This render-size method is the base of the line-art reference mode; ``framecolor run --reference`` on gray input
carries the keys at full resolution instead (:mod:`framecolor.colorizers.carrying`), on the same plan.

A shot without a key is coloured automatically by the default model. A point hint on a frame of a keyless
shot turns that frame into the shot's key from there on: the automatic colouring of the frame corrected by
the hints.

Shots are known in advance when the input can be read twice (files, lists of frames): :func:`scan` makes a
:class:`ShotPlan` in a first pass over the luminance (memory stays flat: a thumbnail per unplaced reference),
which also places bare references at their best-matching frame. With a one-pass iterator the plan is made
online: a key then applies from its own frame to the end of its shot.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .. import color
from ..errors import UserError
from ..hints.points import PointHint, check_point_hints, hints_by_frame, paint_points
from ..hints.propagate import consistent_warp
from ..hints.references import Reference, fit_reference, placement_thumbnail, reference_lab
from ..stream import luminance_pair
from ..temporal.flow import make_dis

log = logging.getLogger("framecolor")

MATCH_WARN = 6.0  # L units: a bare reference whose best frame differs more than this is suspicious


@dataclass
class ShotPlan:
    """What a first pass over the input found: shot starts, frame range, frame size, placed references."""

    cuts: list[int]  # frame numbers where a shot starts (the first frame excluded)
    first: int
    last: int
    frame_hw: tuple[int, int]
    placements: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (frame, L difference)

    def shot_of(self, index: int) -> tuple[int, int | None]:
        """(start, end exclusive or None for the last shot) of the shot holding frame ``index``."""
        k = bisect.bisect_right(self.cuts, index)
        start = self.cuts[k - 1] if k > 0 else self.first
        end = self.cuts[k] if k < len(self.cuts) else None
        return start, end

    def shot_starts(self) -> list[int]:
        return [self.first, *self.cuts]



def scan(frames: Iterable, render_size: int, references: list[Reference], cut_threshold: float | None = None
         ) -> ShotPlan:
    """First pass: shot cuts on the render-size L (the detector of the main pass, so the same cuts), the
    frame range and size, and the placement of every reference without a frame number at the frame whose
    L thumbnail is closest (mean absolute difference, L units). ``frames``: objects with ``index`` and
    ``image`` (framecolor.io.frame.Frame)."""
    from ..temporal.cuts import CutDetector

    detector = CutDetector(threshold=cut_threshold)
    unplaced = [r for r in references if r.frame is None]
    thumbs: list[np.ndarray] | None = None
    best: list[tuple[float, int]] = [(np.inf, -1)] * len(unplaced)
    first = last = None
    frame_hw = None
    for f in frames:
        L_full, L_small = luminance_pair(f.image, render_size)
        if frame_hw is None:
            frame_hw = L_full.shape
            first = f.index
            thumbs = [placement_thumbnail(color.luminance(np.asarray(fit_reference(r.load(), frame_hw, r.name))))
                      for r in unplaced]
        elif L_full.shape != frame_hw:
            raise UserError(f"frame {f.index}: size changes within the input ({L_full.shape[1]}x{L_full.shape[0]}"
                            f" after {frame_hw[1]}x{frame_hw[0]}); reference mode needs one frame size")
        detector.process(f.index, L_small)
        last = f.index
        if unplaced:
            t = placement_thumbnail(L_full)
            for i, th in enumerate(thumbs):
                d = float(np.abs(th - t).mean())
                if d < best[i][0]:
                    best[i] = (d, f.index)
    if frame_hw is None:
        raise UserError("reference mode: the input has no frames in the selected range")
    plan = ShotPlan(list(detector.cuts), first, last, tuple(frame_hw))
    for r, (d, index) in zip(unplaced, best):
        r.frame = index
        plan.placements[r.name] = (index, d)
        if d > MATCH_WARN:
            log.warning("reference %s matches no frame well: placed at frame %d (mean L difference %.1f)",
                        r.name, index, d)
        else:
            log.info("reference %s placed at frame %d (mean L difference %.2f)", r.name, index, d)
    return plan


def validate(plan: ShotPlan, references: list[Reference], points: list[PointHint]) -> None:
    """Everything the user gave refers to frames and positions of this input (UserError otherwise)."""
    H, W = plan.frame_hw
    check_point_hints(points, W, H, plan.last)
    for r in references:
        if r.frame is not None and r.frame > plan.last:
            raise UserError(f"reference {r.name} is for frame {r.frame}, beyond the clip (last frame {plan.last})")
        if r.frame is not None and r.frame < plan.first:
            log.warning("reference %s is for frame %d, before the first selected frame %d: it still governs "
                        "the first shot", r.name, r.frame, plan.first)
    seen: dict[tuple[int, int | None], str] = {}
    for r in references:
        if r.frame is None:
            continue
        shot = plan.shot_of(max(r.frame, plan.first))
        if shot in seen:
            log.info("shot at frame %d has two keys (%s, %s): each frame follows the nearer one",
                     shot[0], seen[shot], r.name)
        seen[shot] = r.name


@dataclass
class _Key:
    frame: int
    L: np.ndarray
    ab: np.ndarray
    name: str


class ReferenceColorizer:
    """The infer stage of reference mode at render size (an :class:`~framecolor.colorizers.base.InferStage`):
    each frame's hint map is applied by ``applier``. Frames must arrive in order: it is stateful (see the module
    docstring). :class:`~framecolor.colorizers.carrying.CarryingColorizer` (the reference mode of plain runs)
    and the line-art reference mode build on it.

    ``automatic``: the automatic :class:`~framecolor.colorizers.automatic.Colorizer` for keyless shots, or a zero-argument
    factory called on first need (None: keyless shots are refused). ``applier``: the
    :class:`~framecolor.hints.appliers.Densifier` that spreads point hints. ``plan``: a
    :class:`ShotPlan` from :func:`scan`, or None to find shots online.
    """

    def __init__(self, automatic, applier, references: list[Reference], points: list[PointHint] | None = None,
                 plan: ShotPlan | None = None, cut_threshold: float | None = None, render_size: int | None = None,
                 batch: int = 4, fb_sigma: float = 1.0, photo_sigma: float = 8.0, key_confidence: float = 0.5,
                 texture: float = 1.0, agreement: float = 30.0):
        from ..temporal.cuts import CutDetector

        if plan is None and any(r.frame is None for r in references):
            raise UserError("a reference without a frame number is placed by matching, which needs an input that "
                            "can be read twice (a file, or a list of frames); give FRAME=PATH instead")
        self._automatic = automatic
        self.applier = applier
        self.references = sorted(references, key=lambda r: r.frame)
        self.key_frames = [r.frame for r in self.references]
        self.points = hints_by_frame(points or [])
        self.plan = plan
        self.detector = CutDetector(threshold=cut_threshold)
        self.render_size = render_size or getattr(automatic, "render_size", None) or 256
        self.batch = getattr(automatic, "batch", batch)
        self.fb_sigma, self.photo_sigma, self.key_confidence = fb_sigma, photo_sigma, key_confidence
        self.texture, self.agreement = texture, agreement
        self._dis = make_dis()
        self._shot_start: int | None = None
        self._key: _Key | None = None
        self._prev: tuple[int, np.ndarray, np.ndarray] | None = None  # (index, L, ab) of the last hinted frame
        self._checked = False
        self.shots: list[tuple[int, str | None]] = []  # (shot start, key name or None) as met
        self.last_coverage: float | None = None  # share of the last frame's pixels with a trusted hint
        self.last_hints: tuple[np.ndarray, np.ndarray] | None = None  # (hint ab, mask) of the last hinted frame

    finish_device = None  # upsampling and Lab -> RGB on the CPU

    # ----------------------------------------------------------------------------- infer stage
    @property
    def automatic(self):
        if callable(self._automatic) and not hasattr(self._automatic, "predict"):
            self._automatic = self._automatic()
        if self._automatic is None:
            raise UserError("a shot has no key and no automatic model was given")
        return self._automatic

    def describe(self) -> str:
        return f"reference mode ({self.applier.describe()}), render size {self.render_size}"

    def predict_frames(self, prepared: list) -> list[np.ndarray]:
        """Render-size ab of each prepared frame (objects with ``frame.index``, ``L_small``, ``L_full``)."""
        out: list[np.ndarray | None] = []
        for p in prepared:
            out.append(self.process(p.frame.index, p.L_small, p.L_full.shape))
        todo = [i for i, ab in enumerate(out) if ab is None]
        if todo:  # keyless frames are independent: one batched call of the automatic model
            for i, ab in zip(todo, self.automatic.predict([prepared[i].L_small for i in todo])):
                out[i] = ab
        return out  # type: ignore[return-value]

    def predict(self, L_smalls):  # pragma: no cover - the pipeline calls predict_frames
        raise TypeError("ReferenceColorizer needs frame numbers: use predict_frames")

    # ------------------------------------------------------------------------------------ per frame
    def _shot_references(self, index: int) -> list[Reference]:
        """The keys of the shot holding ``index``: with a plan, every key of the shot (a key pinned before the
        first selected frame belongs to the first shot); online, only the keys met so far."""
        start = self._shot_start
        if self.plan is not None:
            _, end = self.plan.shot_of(index)
            lo = -np.inf if start == self.plan.first else start
            hi = np.inf if end is None else end
            return [r for r in self.references if lo <= r.frame < hi]
        return [r for r in self.references if start <= r.frame <= index]

    def _governing_reference(self, index: int) -> Reference | None:
        candidates = self._shot_references(index)
        if not candidates:
            return None
        return min(candidates, key=lambda r: (abs(r.frame - index), r.frame))

    def _load_key(self, ref: Reference, frame_hw, L_small) -> _Key:
        if self._key is not None and self._key.frame == ref.frame and self._key.name == ref.name:
            return self._key
        L, ab = reference_lab(ref.load(), frame_hw, L_small.shape, ref.name)
        return _Key(ref.frame, L, ab, ref.name)

    def _start_shot(self, index: int) -> None:
        """Forget the previous shot's key and history: a new shot starts at ``index``."""
        self._shot_start = index
        self._key = None
        self._prev = None
        self.shots.append((index, None))

    def _enter_frame(self, index: int, L: np.ndarray, frame_hw: tuple[int, int]) -> list[PointHint]:
        """Per-frame bookkeeping shared by every reference colouriser: validate the point hints once, start a
        shot at a cut, load the governing key; returns the frame's point hints."""
        if not self._checked:
            check_point_hints([p for ps in self.points.values() for p in ps], frame_hw[1], frame_hw[0])
            self._checked = True
        if self.detector.process(index, L) or self._shot_start is None:
            self._start_shot(index)
        ref = self._governing_reference(index)
        if ref is not None:
            self._key = self._load_key(ref, frame_hw, L)
            if self.shots[-1][1] is None:
                self.shots[-1] = (self._shot_start, ref.name)
        return self.points.get(index, [])

    def process(self, index: int, L: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray | None:
        """ab (h, w, 2) of frame ``index`` from its hints, or None when its shot has no key (automatic)."""
        L = np.asarray(L, np.float32)
        points = self._enter_frame(index, L, frame_hw)
        if self._key is None:
            if not points:
                self._prev = None
                return None
            # a keyless shot with point hints: the automatic colouring corrected by the hints becomes the key
            base = self.automatic.predict([L])[0]
            hint_ab = np.zeros(L.shape + (2,), np.float32)
            mask = np.zeros(L.shape, np.float32)
            paint_points(hint_ab, mask, points, frame_hw)
            ab = self.applier(L, hint_ab, mask, base_ab=base)
            self._key = _Key(index, L, ab, f"{_HINTS_KEY}{index}")
            self.shots[-1] = (self._shot_start, self._key.name)
            self._prev = (index, L, ab)
            return ab
        hint_ab, mask = self.hint_map(index, L)
        if points:
            paint_points(hint_ab, mask, points, frame_hw)
        self.last_coverage = float((mask >= 0.5).mean())
        self.last_hints = (hint_ab, mask)
        if mask.min() >= 1.0:
            ab = hint_ab  # the key frame itself: nothing to fill
        else:
            ab = self.applier(L, hint_ab, mask)
        self._prev = (index, L, ab)
        return ab

    def hint_map(self, index: int, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hint ab, confidence mask) of frame ``index`` from the shot's key and the previous coloured frame."""
        key = self._key
        if key.frame == index:
            # from here on the key is matched with the input's own L of its frame (a painted key's L may
            # differ a little from the input's; flow and the photometric check need the input's)
            key.L = L
            return key.ab.copy(), np.ones(L.shape, np.float32)
        ab_k, conf_k = consistent_warp(key.ab, key.L, L, self._dis, self.fb_sigma, self.photo_sigma, self.texture)
        if self._prev is None:
            return ab_k * (conf_k[..., None] > 0), conf_k
        _, L_prev, ab_prev = self._prev
        ab_c, conf_c = consistent_warp(ab_prev, L_prev, L, self._dis, self.fb_sigma, self.photo_sigma)
        # The key corrects the chain's drift where the two roughly agree; where they disagree a lot, the
        # long-range key flow is the likelier to be wrong (consistent but wrong flow in flat regions of
        # equal luminance), so the chain wins; where the chain has nothing (occlusion), the key fills in.
        trusted_k = conf_k >= self.key_confidence
        trusted_c = conf_c >= self.key_confidence
        agree = np.sqrt(((ab_k - ab_c) ** 2).sum(-1)) <= self.agreement
        use_key = trusted_k & (agree | ~trusted_c)
        hint = np.where(use_key[..., None], ab_k, ab_c).astype(np.float32)
        mask = np.where(use_key, conf_k, conf_c).astype(np.float32)
        return hint, mask

    def log_summary(self, name: str = "") -> None:
        # a keyless shot with point hints gets a key made from its first hinted frame ("hints of frame N"):
        # reported as hinted, as the plan reported it, not as a shot with a key
        keyed = [s for s, k in self.shots if k is not None and not k.startswith(_HINTS_KEY)]
        hinted = [s for s, k in self.shots if k is not None and k.startswith(_HINTS_KEY)]
        keyless = [s for s, k in self.shots if k is None]
        prefix = f"{name}: " if name else ""
        hints_part = f"with point hints only: starting at frames {hinted[:50]}; " if hinted else ""
        log.info("%sreference mode: %d shot(s); with a key: starting at frames %s; %sautomatic (no key): %s",
                 prefix, len(self.shots), keyed[:50], hints_part, keyless[:50] if keyless else "none")



_HINTS_KEY = "hints of frame "  # name of the key made from a keyless shot's first hinted frame
