"""Line-art colouring (``framecolor run --input-kind lineart``): a drafting stage, then a refinement stage.

The design is the two-stage sketch colourisation of Zhang, Li, Wong, Ji and Liu, "Two-stage Sketch
Colorization", ACM Transactions on Graphics 37(6) (SIGGRAPH Asia), 2018, as ``../shared/design.md`` and issue
9 describe it (the design notes name no paper or thesis of their own for it):

* :class:`DraftStage`: a U-Net (:mod:`framecolor.models`, ``in_channels`` 1, ``out_channels`` 3) from the
  line art to a colour draft.  Line art has no luminance to keep, so it predicts full Lab (L / 50 - 1,
  ab / 110), not only ab as the grayscale models do.
* :class:`RefineStage`: a U-Net (``in_channels`` 7: line art, the draft's Lab, hint ab, hint mask;
  ``out_channels`` 3) that corrects the draft.  It is trained on drafts made from the ground truth by
  simulated mistakes (``training/draft_errors.py``) and on real drafts, with simulated colour hints
  (``training/lineart_pairs.py``); without hints its hint channels are zero.
* :class:`LineArtColorizer`: the pipeline's infer stage for line art (a drop-in for
  :class:`framecolor.pipeline.Colorizer`).  The output's lightness is the model's L *multiplied* by the
  line art's (L_line / 100, a painter's "multiply" line layer), so the drawn lines stay as dark as drawn
  and only the paper between them takes the model's colour and shading.
* :class:`LineArtReferenceColorizer`: reference mode for line art (the paint-bucket workflow: one coloured
  key, then line frames).  It is :class:`framecolor.reference.ReferenceColorizer` (same shots, same key
  governance, same hint map: the key's colours and the previous frame's carried by consistent optical flow,
  :func:`framecolor.hints.consistent_warp`), with three changes: the flow runs between *line art* frames, blurred
  (:func:`flow_guide`; the key frame's own line drawing stands in for the painted key's L); the key's
  lightness is carried with its colours (line art has none to keep) and blended into the output's L by the
  hint confidence; the hint map goes to the refinement stage as its hint input instead of to a hint applier.

Inputs at render size: thin lines vanish when a large drawing is shrunk by area averaging, so the line art
is first eroded (a minimum filter about as wide as the shrink factor) and then shrunk (:func:`shrink_lines`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from . import color
from .errors import UserError
from .hints import check_point_hints, paint_points
from .reference import ReferenceColorizer

log = logging.getLogger("framecolor")

DRAFT_MODEL_NAME = "lineart_draft.safetensors"
REFINE_MODEL_NAME = "lineart_refine.safetensors"
INPUT_KINDS = ("auto", "gray", "lineart")
DETECT_FRAMES = 5  # frames sampled by --input-kind auto
FLOW_BLUR = 4.0  # px at render size, see flow_guide (0, 1, 2, 4 tried: 4 best on bigbuckbunny and paint bucket)
MASK_THRESHOLD = 0.5  # hint confidences at or above this are given to the network as hints


# ------------------------------------------------------------------------------------ encodings
def line_input(L_line: np.ndarray) -> np.ndarray:
    """Line art's lightness (H, W) in L units -> the network's line channel in [-1, 1]."""
    return color.normalize_L(np.asarray(L_line, np.float32)).astype(np.float32)


def lab_to_net(lab: np.ndarray) -> np.ndarray:
    """Lab (H, W, 3) -> network scale (3, H, W): L / 50 - 1, ab / 110 clipped to [-1, 1]."""
    lab = np.asarray(lab, np.float32)
    L = color.normalize_L(lab[..., 0])
    ab = np.clip(color.normalize_ab(lab[..., 1:]), -1, 1)
    return np.ascontiguousarray(np.concatenate([L[None], ab.transpose(2, 0, 1)], axis=0), np.float32)


def net_to_lab(y: np.ndarray) -> np.ndarray:
    """Network output (3, H, W) -> Lab (H, W, 3), L clipped to [0, 100]."""
    y = np.asarray(y, np.float32)
    L = np.clip((y[0] + 1.0) * 50.0, 0.0, 100.0)
    return np.concatenate([L[..., None], color.denormalize_ab(np.moveaxis(y[1:], 0, -1))], axis=-1).astype(np.float32)


def refine_input(L_line: np.ndarray, draft_lab: np.ndarray, hint_ab: np.ndarray | None = None,
                 mask: np.ndarray | None = None) -> np.ndarray:
    """The refinement network's input (7, H, W): line, draft Lab (3), hint ab (2, 0 where no hint), mask.
    One function for training and inference, so both see the same encoding."""
    h, w = np.shape(L_line)
    if hint_ab is None:
        hint_ab = np.zeros((h, w, 2), np.float32)
        mask = np.zeros((h, w), np.float32)
    m = np.asarray(mask, np.float32)
    ab = np.clip(color.normalize_ab(np.asarray(hint_ab, np.float32)), -1, 1) * m[..., None]
    return np.concatenate([line_input(L_line)[None], lab_to_net(draft_lab), ab.transpose(2, 0, 1), m[None]],
                          axis=0).astype(np.float32)


def shrink_lines(L_line: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Line art's L (H, W) brought to ``shape`` (h, w) so that thin lines survive: erode (minimum filter,
    as wide as the shrink factor) then area-average; enlarging is linear."""
    import cv2

    from .upsample import resize

    L_line = np.asarray(L_line, np.float32)
    H, W = L_line.shape
    h, w = shape
    factor = min(H / h, W / w)
    if factor >= 1.5:
        k = int(round(factor))
        L_line = cv2.erode(L_line, np.ones((k, k), np.uint8))
    return resize(L_line, w, h, "area" if factor >= 1 else "linear")


def flow_guide(L_line: np.ndarray, sigma: float = FLOW_BLUR) -> np.ndarray:
    """What optical flow sees of a drawing: its L blurred, so the paper near a line has a gradient to follow
    (on raw line art everything between lines is flat white and flow there is a guess)."""
    import cv2

    return cv2.GaussianBlur(np.asarray(L_line, np.float32), (0, 0), sigma) if sigma > 0 else L_line


def compose_lightness(L_model: np.ndarray, L_line: np.ndarray) -> np.ndarray:
    """Output lightness of a line-art frame: the model's L multiplied by the drawing's (paper 1, ink ~0), so
    lines keep their darkness and anti-aliasing and the paper takes the model's L."""
    return (np.asarray(L_model, np.float32) * np.clip(np.asarray(L_line, np.float32) / 100.0, 0.0, 1.0)
            ).astype(np.float32)


# ------------------------------------------------------------------------------------ models
def bundled_lineart_model(stage: str) -> Path | None:
    from .checkpoint import DATA_DIR

    p = DATA_DIR / (DRAFT_MODEL_NAME if stage == "draft" else REFINE_MODEL_NAME)
    return p if p.is_file() else None


def load_stage_model(model, stage: str):
    """A line-art stage's generator ("draft" or "refine"): a checkpoint path, a loaded model, or None for
    the bundled one; refused with a UserError if its channels do not fit the stage."""
    from .checkpoint import load_generator

    in_channels = 1 if stage == "draft" else 7
    if model is None:
        model = bundled_lineart_model(stage)
        if model is None:
            raise UserError(f"no line-art {stage} model is installed; pass --{stage}-model PATH "
                            f"(a checkpoint written by `framecolor train --lineart {stage}`)")
    if isinstance(model, (str, os.PathLike)):
        model = load_generator(model)
    cfg = model.config
    if cfg.in_channels != in_channels or getattr(cfg, "out_channels", 2) != 3:
        raise UserError(f"{getattr(model, 'checkpoint_path', 'model')}: not a line-art {stage} model (expects "
                        f"{cfg.in_channels} input / {cfg.out_channels} output channels; a {stage} model has "
                        f"{in_channels} / 3)")
    return model


class _Stage:
    in_channels = 1
    stage = ""

    def __init__(self, model=None, device: str = "auto", backend: str = "auto", threads: int | None = None):
        from .backends import make_backend

        self.model = load_stage_model(model, self.stage)
        self.backend = make_backend(self.model, backend=backend, device=device, threads=threads)

    @property
    def render_size(self) -> int:
        return self.model.config.render_size

    def describe(self) -> str:
        path = getattr(self.model, "checkpoint_path", None)
        return f"{self.stage} {Path(path).name if path else 'in-memory model'}"

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        return [net_to_lab(y) for y in self.backend(x)]


class DraftStage(_Stage):
    """Line art (render-size L images) -> colour drafts (Lab)."""

    in_channels = 1
    stage = "draft"

    def __call__(self, lines: list[np.ndarray]) -> list[np.ndarray]:
        return self._run(np.stack([line_input(L)[None] for L in lines]))


class RefineStage(_Stage):
    """Line art + drafts (+ hint maps) -> refined colour (Lab)."""

    in_channels = 7
    stage = "refine"

    def __call__(self, lines: list[np.ndarray], drafts: list[np.ndarray], hints: list | None = None
                 ) -> list[np.ndarray]:
        hints = hints or [None] * len(lines)
        xs = []
        for L, d, h in zip(lines, drafts, hints):
            hint_ab, mask = h if h is not None else (None, None)
            if mask is not None:  # the network was trained on binary masks
                mask = (np.asarray(mask, np.float32) >= MASK_THRESHOLD).astype(np.float32)
            xs.append(refine_input(L, d, hint_ab, mask))
        return self._run(np.stack(xs))


class TwoStage:
    """The drafting stage and (unless ``refine`` is "none") the refinement stage, run one after the other."""

    def __init__(self, draft=None, refine=None, device: str = "auto", backend: str = "auto",
                 threads: int | None = None):
        self.draft = draft if isinstance(draft, DraftStage) else DraftStage(draft, device, backend, threads)
        if isinstance(refine, str) and refine.lower() == "none":
            self.refine = None
        else:
            self.refine = refine if isinstance(refine, RefineStage) else RefineStage(refine, device, backend,
                                                                                     threads)

    @property
    def render_size(self) -> int:
        return (self.refine or self.draft).render_size

    def describe(self) -> str:
        stages = [self.draft.describe()] + ([self.refine.describe()] if self.refine else ["no refinement"])
        return f"line art: {' + '.join(stages)} on {self.draft.backend.describe()}"

    def __call__(self, lines: list[np.ndarray], hints: list | None = None) -> list[np.ndarray]:
        """Lab (h, w, 3) of each render-size line image; ``hints``: per image None or (hint ab, soft mask).
        Trusted hints are kept as given in the output's ab (as :class:`framecolor.hints.HintNetwork` does)."""
        drafts = self.draft(lines)
        out = self.refine(lines, drafts, hints) if self.refine is not None else drafts
        for lab, h in zip(out, hints or []):
            if h is not None:
                soft = np.clip(np.asarray(h[1], np.float32), 0, 1)[..., None]
                lab[..., 1:] = soft * h[0] + (1 - soft) * lab[..., 1:]
        return out


def _finish(p, lab: np.ndarray) -> np.ndarray:
    """Replace a prepared frame's L (the drawing's) by the output lightness, at full and render size, and
    return the render-size ab: the pipeline then upsamples ab guided by that L and keeps it as the output's."""
    from .upsample import resize

    H, W = p.L_full.shape
    h, w = p.L_small.shape
    L_model = resize(np.ascontiguousarray(lab[..., 0]), W, H, "linear")
    p.L_full = compose_lightness(L_model, p.L_full)
    p.L_small = resize(p.L_full, w, h, "area")
    return np.ascontiguousarray(lab[..., 1:], np.float32)


class LineArtColorizer:
    """Infer stage of the pipeline for line art (``batch``, ``render_size``, ``describe``, ``predict_frames``,
    like :class:`framecolor.pipeline.Colorizer`).  ``predict_frames`` sets each prepared frame's L to the
    output lightness (:func:`compose_lightness`) and returns its ab."""

    def __init__(self, draft=None, refine=None, device: str = "auto", backend: str = "auto", batch: int = 4,
                 render_size: int | None = None, threads: int | None = None):
        from .pipeline import parse_batch

        batch = parse_batch(batch)
        self.stages = draft if isinstance(draft, TwoStage) else TwoStage(draft, refine, device, backend, threads)
        self.batch = 4 if batch == "auto" else batch
        self.render_size = render_size or self.stages.render_size
        if self.render_size < 16:
            raise UserError(f"--render-size must be at least 16 (got {self.render_size})")
        self.finish_device = None  # upsampling runs on the CPU (the L replacement happens there anyway)

    def describe(self) -> str:
        return f"{self.stages.describe()}, batch {self.batch}, render size {self.render_size}"

    def lines_of(self, p) -> np.ndarray:
        return shrink_lines(p.L_full, p.L_small.shape)

    def predict_frames(self, prepared: list) -> list[np.ndarray]:
        labs = self.stages([self.lines_of(p) for p in prepared])
        return [_finish(p, lab) for p, lab in zip(prepared, labs)]


# ------------------------------------------------------------------------------------ reference mode
class LineArtReferenceColorizer(ReferenceColorizer):
    """Reference mode for line art (see the module docstring); built by :func:`make_lineart_reference`.
    ``key_lines``: frame number -> the input's full-size line L at that frame."""

    def __init__(self, colorizer: LineArtColorizer, references, points, plan, key_lines, cut_threshold=None):
        super().__init__(colorizer, None, references, points, plan, cut_threshold, colorizer.render_size,
                         colorizer.batch, texture=0.0)  # no texture term: between lines, line art is all paper
        self.colorizer = colorizer
        self.key_lines = key_lines

    def describe(self) -> str:
        return f"line-art reference mode ({self.colorizer.describe()})"

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

    def process(self, index: int, L: np.ndarray, frame_hw) -> np.ndarray:
        """Lab (h, w, 3) of frame ``index`` (render-size line art ``L``)."""
        L = np.asarray(L, np.float32)
        if not self._checked:
            check_point_hints([p for ps in self.points.values() for p in ps], frame_hw[1], frame_hw[0])
            self._checked = True
        if self.detector.process(index, L) or self._shot_start is None:
            self._shot_start, self._key, self._prev = index, None, None
            self.shots.append((index, None))
        ref = self._governing_reference(index)
        if ref is not None:
            self._key = self._load_key(ref, frame_hw, L)
            if self.shots[-1][1] is None:
                self.shots[-1] = (self._shot_start, ref.name)
        points = self.points.get(index, [])
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
            self._prev = (index, flow_guide(L), lab.copy())
        return lab

    def predict_frames(self, prepared: list) -> list[np.ndarray]:
        return [_finish(p, self.process(p.frame.index, self.colorizer.lines_of(p), p.L_full.shape))
                for p in prepared]


def make_lineart_reference(frames_again, colorizer: LineArtColorizer, references: list, points: list,
                           cut_threshold: float | None = None):
    """Reference mode for line art: a first pass (:func:`framecolor.reference.scan`) finds shots and places
    bare keys, and keeps the input's line drawing at each key's frame (the flow's anchor); then the
    colouriser is built.  ``frames_again()`` gives a fresh iterator of frames (objects with index, image)."""
    from .reference import scan, validate

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
    return LineArtReferenceColorizer(colorizer, references, points, plan, key_lines, cut_threshold)


# ------------------------------------------------------------------------------------ input kind
def parse_input_kind(value) -> str:
    kind = str(value or "auto").strip().lower()
    if kind not in INPUT_KINDS:
        raise UserError(f"unknown --input-kind {value!r} (choose from {', '.join(INPUT_KINDS)})")
    return kind


def sample_frames(inp: Path, kind: str, n: int = DETECT_FRAMES, start=None, end=None) -> list[np.ndarray]:
    """Up to ``n`` frames of an input for the input-kind decision: spread over a frame folder; for a video,
    the first frames of the selected range a second apart-ish (every 12th), since the reader cannot seek."""
    from .media import FrameFolderReader, VideoReader

    if kind == "folder":
        reader = FrameFolderReader(inp, start=start, end=end)
        selected = reader.selected()
        step = max(1, len(selected) // n)
        reader = FrameFolderReader(inp, start=start, end=end, every=step)
        frames = []
        for f in reader:
            frames.append(f.image)
            if len(frames) >= n:
                break
        return frames
    reader = VideoReader(inp, start=start, end=end, every=12, luma_only=True)
    try:
        frames = []
        for f in reader:
            frames.append(f.image)
            if len(frames) >= n:
                break
        return frames
    finally:
        reader.close()


def decide_input_kind(requested: str, name: str, frames) -> str:
    """'gray' or 'lineart' for ``--input-kind requested``; auto looks at ``frames`` (a callable giving the
    sampled frames, called only for auto) and logs its decision in one line."""
    from .inputkind import detect_input_kind

    requested = parse_input_kind(requested)
    if requested != "auto":
        return requested
    sample = frames()
    if not sample:
        log.info("%s: input kind gray (no frames to look at)", name)
        return "gray"
    kind, reason = detect_input_kind(sample)
    log.info("%s: input kind %s (auto: %s)", name, kind, reason)
    return kind
