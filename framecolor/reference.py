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
* the applier (the hint network, or the edge-aware densifier) turns the hint map into frame t's ab; the
  pipeline then smooths and upsamples it like any other prediction.

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
from typing import Callable, Iterable

import numpy as np

from . import color
from .errors import UserError
from .hints.points import PointHint, check_point_hints, hints_by_frame, paint_points
from .hints.propagate import consistent_warp
from .hints.references import Reference, fit_reference, placement_thumbnail, reference_lab
from .temporal.flow import make_dis

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


def render_L(image: np.ndarray, render_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(full-size L, render-size L) of a frame, exactly as the pipeline prepares them."""
    from .pipeline import render_shape
    from .upsample import resize

    L_full = color.luminance(image)
    H, W = L_full.shape
    h, w = render_shape(H, W, render_size)
    return L_full, resize(L_full, w, h, "area")


def scan(frames: Iterable, render_size: int, references: list[Reference], cut_threshold: float | None = None
         ) -> ShotPlan:
    """First pass: shot cuts on the render-size L (the detector of the main pass, so the same cuts), the
    frame range and size, and the placement of every reference without a frame number at the frame whose
    L thumbnail is closest (mean absolute difference, L units). ``frames``: objects with ``index`` and
    ``image`` (framecolor.io.frame.Frame)."""
    from .temporal.cuts import CutDetector

    detector = CutDetector(threshold=cut_threshold)
    unplaced = [r for r in references if r.frame is None]
    thumbs: list[np.ndarray] | None = None
    best: list[tuple[float, int]] = [(np.inf, -1)] * len(unplaced)
    first = last = None
    frame_hw = None
    for f in frames:
        L_full, L_small = render_L(f.image, render_size)
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
    """The infer stage of reference mode, a drop-in for :class:`framecolor.pipeline.Colorizer` in
    :func:`framecolor.pipeline.colorize_stream` (it has ``batch``, ``render_size``, ``describe`` and
    ``predict_frames``). Frames must arrive in order: it is stateful (see the module docstring).

    ``automatic``: the automatic :class:`~framecolor.pipeline.Colorizer` for keyless shots, or a zero-argument
    factory called on first need (None: keyless shots are refused). ``applier``: the
    :class:`~framecolor.hints.appliers.Densifier` that spreads point hints. ``plan``: a
    :class:`ShotPlan` from :func:`scan`, or None to find shots online.
    """

    def __init__(self, automatic, applier, references: list[Reference], points: list[PointHint] | None = None,
                 plan: ShotPlan | None = None, cut_threshold: float | None = None, render_size: int | None = None,
                 batch: int = 4, fb_sigma: float = 1.0, photo_sigma: float = 8.0, key_confidence: float = 0.5,
                 texture: float = 1.0, agreement: float = 30.0):
        from .temporal.cuts import CutDetector

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

    # ----------------------------------------------------------------------------- Colorizer interface
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


def make_reference_colorizer(frames_again: Callable[[], Iterable] | None, automatic, applier,
                             references: list[Reference], points: list[PointHint], render_size: int,
                             cut_threshold: float | None = None, batch: int = 4) -> ReferenceColorizer:
    """Plan (when the input can be read again: ``frames_again()`` gives a fresh iterator of frames), validate,
    log which shots have keys, and build the :class:`ReferenceColorizer`."""
    plan = None
    if frames_again is not None:
        plan = scan(frames_again(), render_size, references, cut_threshold)
        validate(plan, references, points)
        keyed = sorted({plan.shot_of(max(r.frame, plan.first))[0] for r in references})
        hinted = sorted({plan.shot_of(max(p.frame, plan.first))[0] for p in points} - set(keyed))
        keyless = [s for s in plan.shot_starts() if s not in keyed and s not in hinted]
        hints_part = (f"point hints only for {hinted[:50]} (automatic until the shot's first hinted frame, which "
                      "then serves as its key); " if hinted else "")
        log.info("reference mode: %d shot(s) starting at frames %s; keys for %s; %sautomatic colouring for %s",
                 len(plan.cuts) + 1, plan.shot_starts()[:50], keyed[:50], hints_part,
                 keyless[:50] if keyless else "none")
    return CarryingColorizer(automatic, applier, references, points, plan, cut_threshold, render_size, batch)


@dataclass
class _FullKey:
    """A key at full size: its Lab (H, W, 3) and its L reduced for the flow."""

    frame: int
    lab: np.ndarray
    L_flow: np.ndarray
    name: str


class CarryingColorizer(ReferenceColorizer):
    """Reference mode at full resolution (issue 16; :mod:`framecolor.hints.carry`): the keys' own full-size
    colours are carried to every frame of their shot, forwards and backwards in time, and only what no key
    covers goes to the automatic generator.

    For frame t of a keyed shot the candidates are the previous coloured frame carried one step and the
    shot's nearest keys on either side of t (the last key at or before t, the first after it: a key at the
    end of a shot colours the frames before it), each warped directly to t; flow is computed at
    ``flow_size`` and applied at full size. :func:`framecolor.hints.carry.select` picks per pixel; where no
    candidate fits, the automatic colouring (render size, brought up with the frame's L) is blended in by
    the selection's weight. ``predict_frames`` returns full-size ab for keyed frames (the pipeline then
    skips upsampling for them) and render-size ab for automatic ones.

    Point hints on a keyed frame correct the carried colour: the correction is spread at render size by the
    densifier (within the lines around each hint) and brought up to full size. A point hint in a keyless
    shot makes that frame the shot's key, as in :class:`ReferenceColorizer`.
    """

    def __init__(self, automatic, applier, references, points=None, plan=None, cut_threshold=None,
                 render_size=None, batch: int = 4, flow_size: int = 640, cost_radius: int = 2,
                 agreement: float = 3.0, margin: float = 0.5, fit: float = 10.0, misfit: float = 25.0,
                 nearest: bool = True, finest_scale: int | None = 0, grow: int = 0, grow_tolerance: float = 3.0, fill_reach: float = 0.05,
                 fill_sigma_r: float = 8.0):
        super().__init__(automatic, applier, references, points, plan, cut_threshold, render_size, batch)
        self.flow_size = int(flow_size)
        if finest_scale is not None:  # DIS's finest pyramid level (the medium preset stops at half size)
            self._dis.setFinestScale(int(finest_scale))
        self.cost_radius = int(cost_radius)
        self.nearest = nearest
        self.grow, self.grow_tolerance = int(grow), float(grow_tolerance)
        self.fill_reach, self.fill_sigma_r = fill_reach, fill_sigma_r
        self.select_args = dict(agreement=agreement, margin=margin, fit=fit, misfit=misfit)
        self._keys: dict[int, _FullKey] = {}  # the keys of the current shot in use (at most two)
        self._hint_key: _FullKey | None = None  # a keyless shot turned keyed by point hints
        self._prev_full: tuple[int, np.ndarray, np.ndarray] | None = None  # (index, Lab, L at flow size)
        self.last_generator_share: float | None = None  # share of the last keyed frame given to the generator

    def describe(self) -> str:
        return f"reference mode (keys carried at full size, flow at {self.flow_size} px), render size " \
               f"{self.render_size} for the automatic colouring"

    def predict_frames(self, prepared: list) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [self.process_full(p.frame.index, p.L_small, p.L_full) for p in prepared]
        for p, ab in zip(prepared, out):
            p.full_size = ab is not None  # the pipeline neither upsamples nor smooths these
        todo = [i for i, ab in enumerate(out) if ab is None]
        if todo:
            for i, ab in zip(todo, self.automatic.predict([prepared[i].L_small for i in todo])):
                out[i] = ab
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------ keys
    def _start_shot(self, index: int) -> None:
        super()._start_shot(index)
        self._keys = {}
        self._hint_key = None
        self._prev_full = None

    def _near_references(self, index: int) -> list[Reference]:
        """The shot's last key at or before ``index`` and its first key after it (with a plan; online only
        keys already met apply)."""
        cands = self._shot_references(index)
        before = [r for r in cands if r.frame <= index]
        after = [r for r in cands if r.frame > index]
        out = []
        if before:
            out.append(max(before, key=lambda r: r.frame))
        if after:
            out.append(min(after, key=lambda r: r.frame))
        return out

    def _full_key(self, ref: Reference, frame_hw, flow_hw) -> _FullKey:
        key = self._keys.get(ref.frame)
        if key is None:
            from .temporal.flow import to_u8

            L, ab = reference_lab(ref.load(), frame_hw, frame_hw, ref.name)
            key = _FullKey(ref.frame, np.dstack([L, ab]).astype(np.float32), to_u8(L, flow_hw), ref.name)
        return key

    # ------------------------------------------------------------------------------------ per frame
    def process_full(self, index: int, L_small: np.ndarray, L_full: np.ndarray) -> np.ndarray | None:
        """Full-size ab (H, W, 2) of frame ``index``, or None when its shot has no key (automatic)."""
        from .temporal.flow import flow_shape, to_u8

        L_small = np.asarray(L_small, np.float32)
        L_full = np.asarray(L_full, np.float32)
        frame_hw = L_full.shape
        if not self._checked:
            check_point_hints([p for ps in self.points.values() for p in ps], frame_hw[1], frame_hw[0])
            self._checked = True
        if self.detector.process(index, L_small) or self._shot_start is None:
            self._start_shot(index)
        flow_hw = flow_shape(*frame_hw, self.flow_size)
        refs = self._near_references(index)
        self._keys = {r.frame: self._full_key(r, frame_hw, flow_hw) for r in refs}
        if refs and self.shots[-1][1] is None:
            self.shots[-1] = (self._shot_start, refs[0].name)
        points = self.points.get(index, [])
        L_flow = to_u8(L_full, flow_hw)
        keys = list(self._keys.values()) or ([self._hint_key] if self._hint_key is not None else [])
        if not keys:
            if not points:
                self._prev_full = None
                return None
            ab = self._key_from_points(index, L_small, L_full, points)
            self._prev_full = (index, np.dstack([L_full, ab]), L_flow)
            return ab
        own = next((k for k in keys if k.frame == index), None)
        if own is not None:
            # the key frame itself: the key's colours, matched from now on with the input's own L
            own.lab = np.dstack([L_full, own.lab[..., 1:]]).astype(np.float32)
            own.L_flow = L_flow
            ab = np.ascontiguousarray(own.lab[..., 1:])
            self.last_generator_share = 0.0
        else:
            ab = self._carry(index, L_small, L_full, L_flow, keys)
        if points:
            ab = self._apply_points(ab, L_small, L_full, points)
        self._prev_full = (index, np.dstack([L_full, ab]).astype(np.float32), L_flow)
        return ab

    def _carry(self, index, L_small, L_full, L_flow, keys: list[_FullKey]) -> np.ndarray:
        from .hints.carry import Candidate, FlowField, fb_confidence, grow_fill, match_cost, select, warp_lab

        H, W = L_full.shape
        cands = []
        sources = [(k.lab, k.L_flow, True) for k in keys]
        if self._prev_full is not None and self._prev_full[0] == index - 1:
            sources.append((self._prev_full[1], self._prev_full[2], False))
        for lab, L_src, from_key in sources:
            back = self._dis.calc(L_flow, L_src, None)  # this frame -> the source
            warped = warp_lab(lab, FlowField(back).full_maps(H, W), nearest=self.nearest and not from_key)
            cost = match_cost(warped[..., 0], L_full, self.cost_radius)
            fb = None
            if self.grow > 0:  # forward-backward consistency marks colour to regrow from trusted neighbours
                fwd = self._dis.calc(L_src, L_flow, None)
                fb = fb_confidence(back, fwd, (H, W), self.fb_sigma) >= 0.5
            cands.append(Candidate(np.ascontiguousarray(warped[..., 1:]), cost, from_key, fb))
        ab, _, weight, consistent = select(cands, **self.select_args)
        if consistent is not None and not consistent.all():
            ab, _ = grow_fill(ab, consistent, L_full, self.grow, self.grow_tolerance)
        share = float(weight.mean())
        self.last_generator_share = share
        self.last_coverage = 1.0 - share
        if share > 1e-4:
            ab += weight[..., None] * (self._fill(ab, weight, L_small, L_full) - ab)
        return ab

    def _fill(self, ab, weight, L_small, L_full) -> np.ndarray:
        """Colour for pixels no candidate fits: the trusted carried colour spread within the lines around
        (edge-aware normalised convolution at render size, :func:`framecolor.filters.normalized_fill`), and
        beyond its reach (new content) the automatic colouring."""
        from .filters import normalized_fill
        from .upsample import joint_bilateral_upsample, resize

        h, w = L_small.shape
        trusted = resize(1.0 - weight, w, h, "area")
        trusted = np.where(trusted >= 0.9, trusted, 0.0).astype(np.float32)
        ab_small = resize(ab, w, h, "area")
        sigma = self.fill_reach * max(h, w)
        filled, den = normalized_fill(L_small, ab_small, trusted, sigma, self.fill_sigma_r)
        at = float(den[trusted > 0].mean()) if (trusted > 0).any() else 0.0
        reach = np.clip(den / max(0.5 * at, 1e-30), 0.0, 1.0)[..., None] if at > 0 else np.zeros((h, w, 1), np.float32)
        fill_small = filled * reach
        auto = self._automatic_small(L_small)
        if auto is not None:
            fill_small = fill_small + (1.0 - reach) * auto
        return joint_bilateral_upsample(fill_small.astype(np.float32), L_small, L_full)

    def _automatic_small(self, L_small) -> np.ndarray | None:
        """The automatic colouring of this frame at render size, or None when no automatic model is available."""
        try:
            auto = self.automatic
        except UserError:
            return None
        return auto.predict([L_small])[0]

    def _apply_points(self, ab, L_small, L_full, points) -> np.ndarray:
        """Point hints correct the carried colour: spread at render size within the lines, added at full size."""
        from .upsample import joint_bilateral_upsample, resize

        h, w = L_small.shape
        base = resize(ab, w, h, "area")
        hint_ab = np.zeros((h, w, 2), np.float32)
        mask = np.zeros((h, w), np.float32)
        paint_points(hint_ab, mask, points, L_full.shape)
        fixed = self.applier(L_small, hint_ab, mask, base_ab=base)
        return (ab + joint_bilateral_upsample(fixed - base, L_small, L_full)).astype(np.float32)

    def _key_from_points(self, index, L_small, L_full, points) -> np.ndarray:
        """A keyless shot with point hints: the automatic colouring corrected by the hints becomes its key."""
        from .temporal.flow import flow_shape, to_u8
        from .upsample import joint_bilateral_upsample

        base = self.automatic.predict([L_small])[0]
        hint_ab = np.zeros(L_small.shape + (2,), np.float32)
        mask = np.zeros(L_small.shape, np.float32)
        paint_points(hint_ab, mask, points, L_full.shape)
        ab_small = self.applier(L_small, hint_ab, mask, base_ab=base)
        ab = joint_bilateral_upsample(ab_small, L_small, L_full)
        name = f"hints of frame {index}"
        self._hint_key = _FullKey(index, np.dstack([L_full, ab]).astype(np.float32),
                                  to_u8(L_full, flow_shape(*L_full.shape, self.flow_size)), name)
        self.shots[-1] = (self._shot_start, name)
        return ab
