"""Reference mode at full resolution (issue 16), the reference mode of plain runs: the keys' own full-size colours
are carried along their shots by optical flow (:mod:`framecolor.hints.carry`), forwards and backwards in time;
only what no key covers goes to the automatic generator. :func:`make_reference_colorizer` plans the shots in a
first pass over the input (:func:`framecolor.colorizers.reference.scan`) and builds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..errors import UserError
from ..hints.points import PointHint, check_point_hints, paint_points
from ..hints.references import Reference, reference_lab
from .reference import ReferenceColorizer, scan, validate

log = logging.getLogger("framecolor")


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
            from ..temporal.flow import to_u8

            L, ab = reference_lab(ref.load(), frame_hw, frame_hw, ref.name)
            key = _FullKey(ref.frame, np.dstack([L, ab]).astype(np.float32), to_u8(L, flow_hw), ref.name)
        return key

    # ------------------------------------------------------------------------------------ per frame
    def process_full(self, index: int, L_small: np.ndarray, L_full: np.ndarray) -> np.ndarray | None:
        """Full-size ab (H, W, 2) of frame ``index``, or None when its shot has no key (automatic)."""
        from ..temporal.flow import flow_shape, to_u8

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
        from ..hints.carry import Candidate, FlowField, fb_confidence, grow_fill, match_cost, select, warp_lab

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
        from ..filters import normalized_fill
        from ..upsample import joint_bilateral_upsample, resize

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
        from ..upsample import joint_bilateral_upsample, resize

        h, w = L_small.shape
        base = resize(ab, w, h, "area")
        hint_ab = np.zeros((h, w, 2), np.float32)
        mask = np.zeros((h, w), np.float32)
        paint_points(hint_ab, mask, points, L_full.shape)
        fixed = self.applier(L_small, hint_ab, mask, base_ab=base)
        return (ab + joint_bilateral_upsample(fixed - base, L_small, L_full)).astype(np.float32)

    def _key_from_points(self, index, L_small, L_full, points) -> np.ndarray:
        """A keyless shot with point hints: the automatic colouring corrected by the hints becomes its key."""
        from ..temporal.flow import flow_shape, to_u8
        from ..upsample import joint_bilateral_upsample

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
