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
  :func:`framecolor.hints.propagate.consistent_warp`), with three changes: the flow runs between *line art* frames, blurred
  (:func:`flow_guide`; the key frame's own line drawing stands in for the painted key's L); the key's
  lightness is carried with its colours (line art has none to keep) and blended into the output's L by the
  hint confidence; the hint map goes to the refinement stage as its hint input instead of to a hint applier.
  With ``region_fill`` (the default), a fourth: paint-bucket region fill, below.

Region fill.  Line-art colouring tools colour whole regions enclosed by lines: the region-based fill of
Sýkora, Dingliana and Collins, "LazyBrush: Flexible Painting Tool for Hand-drawn Cartoons" (Computer Graphics
Forum 28(2), Eurographics 2009), and paint-bucket colourisation, which carries colours from a coloured key to
the next line frames by matching line-enclosed segments (Dai, Zhou, Li, Li and Loy, "Learning Inclusion
Matching for Animation Paint Bucket Colorization", CVPR 2024; ``benchmarks/lineart.py`` shows two shots of
their BasicPBC test data).  Here the carried hints vote per region: optical flow has nothing to follow in the
flat paper between lines, so the hints are patchy there and the network's guess would fill the holes.  The
frame's drawing is cut into regions (:func:`line_regions`: ink darker than ``REGION_LINE_L``, gaps of up to 2
px closed, 4-connected paper components, at the frame's full size); each region whose trusted hints
(confidence >= ``MASK_THRESHOLD``, away from its edges where it has enough there: :func:`region_colours`) are
numerous (at least ``REGION_MIN_HINTS`` render pixels and ``REGION_MIN_SHARE`` of the region) and agree (at
least ``REGION_AGREE_SHARE`` of them within ``REGION_AGREE`` Lab units of their per-channel median) is painted
whole with that median Lab, lightness included (its L set at full size, so it stops at the lines); other
regions keep the network's colour.  Lines stay dark (:func:`compose_lightness`); the fill never crosses a line,
since a region ends at one.  With region fill the previous frame's colours are carried as hints only as far
as they rested on hints themselves (:meth:`LineArtReferenceColorizer.hint_map`), or a region painted from the
network's guess in one frame would keep that guess for the rest of the shot.

Inputs at render size: thin lines vanish when a large drawing is shrunk by area averaging, so the line art
is first eroded (a minimum filter about as wide as the shrink factor) and then shrunk (:func:`shrink_lines`).
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path

import numpy as np

from . import color
from .errors import UserError
from .hints.points import paint_points
from .hints.propagate import consistent_warp
from .reference import ReferenceColorizer

log = logging.getLogger("framecolor")

DRAFT_MODEL_NAME = "lineart_draft.safetensors"
REFINE_MODEL_NAME = "lineart_refine.safetensors"
INPUT_KINDS = ("auto", "gray", "lineart")
DETECT_FRAMES = 5  # frames sampled by --input-kind auto
FLOW_BLUR = 4.0  # px at render size, see flow_guide (0, 1, 2, 4 tried: 4 best on bigbuckbunny and paint bucket)
MASK_THRESHOLD = 0.5  # hint confidences at or above this are given to the network as hints
# Region fill (see the module docstring; chosen a priori, not tuned on the benchmark's scored frames):
REGION_LINE_L = 75.0  # drawing L below this is ink (paper ~100; black ink ~0, coloured construction lines 30-55)
REGION_CLOSE = 3  # px at full size: a closing of the ink with a 3x3 square bridges gaps of up to 2 px in lines
REGION_MIN_HINTS = 4  # trusted hint pixels (render size) a region needs at least...
REGION_MIN_SHARE = 0.25  # ...and at least this share of its render-size pixels
REGION_AGREE = 10.0  # Lab units (Euclidean): a trusted hint this close to the region's median agrees with it
REGION_AGREE_SHARE = 0.6  # share of a region's trusted hints that must agree: its colour is flat, not shaded


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


# ------------------------------------------------------------------------------------ region fill
def line_regions(L_line: np.ndarray, line_L: float = REGION_LINE_L, close: int = REGION_CLOSE) -> np.ndarray:
    """The regions of a drawing (L units, (H, W)) as int32 labels: 0 on ink (pixels darker than ``line_L``,
    after a morphological closing with a ``close`` x ``close`` square, which bridges gaps of up to
    ``close`` - 1 px in the lines), 1..n on the connected components of the paper between the lines.  The
    components are 4-connected, so that a 1-px line drawn with diagonal steps still separates its two sides."""
    import cv2

    ink = (np.asarray(L_line, np.float32) < line_L).astype(np.uint8)
    if close > 1:
        ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((close, close), np.uint8))
    _, labels = cv2.connectedComponents(1 - ink, connectivity=4, ltype=cv2.CV_32S)
    return labels


def sample_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label map brought to ``shape`` (h, w) by nearest neighbour: each small pixel takes the label at its
    centre (so a small pixel whose centre lies on a line is a line pixel, 0)."""
    H, W = labels.shape
    h, w = shape
    if (H, W) == (h, w):
        return labels
    ys = np.minimum(((np.arange(h) + 0.5) * (H / h)).astype(np.intp), H - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * (W / w)).astype(np.intp), W - 1)
    return labels[ys[:, None], xs[None, :]]


def interior(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds one label only (their own): away from lines and region edges."""
    import cv2

    f = np.asarray(labels, np.float32)  # exact for labels below 2^24
    k = np.ones((3, 3), np.uint8)
    return (cv2.erode(f, k, borderType=cv2.BORDER_REPLICATE) == cv2.dilate(f, k, borderType=cv2.BORDER_REPLICATE))


def region_colours(labels: np.ndarray, hint_lab: np.ndarray, mask: np.ndarray, n: int | None = None,
                   threshold: float = MASK_THRESHOLD, min_hints: int = REGION_MIN_HINTS,
                   min_share: float = REGION_MIN_SHARE, agree: float = REGION_AGREE,
                   agree_share: float = REGION_AGREE_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Per region (``labels`` (h, w) at the hint map's size, 0 = lines): ``(colour (n, 3) Lab, filled (n,)
    bool)``.  A region is filled when it holds at least ``min_hints`` trusted hints (``mask`` >=
    ``threshold``), at least ``min_share`` of its pixels are trusted, and at least ``agree_share`` of its
    trusted hints lie within ``agree`` Lab units of their per-channel median, which is then its colour.  A
    region with at least ``min_hints`` trusted :func:`interior` pixels is judged on its interior pixels only."""
    labels = np.asarray(labels)
    n = int(labels.max()) + 1 if n is None else n
    trusted = (np.asarray(mask) >= threshold) & (labels > 0)
    # Pixels beside a line carry a mix of both sides' colours (the key was shrunk by area averaging, the
    # line itself is in it): a region with enough trusted pixels away from lines is judged on those alone.
    inner = interior(labels)
    use_inner = np.bincount(labels[trusted & inner], minlength=n) >= min_hints
    pool = inner | ~use_inner[labels]
    trusted &= pool
    g = labels[trusted].astype(np.intp)
    v = np.asarray(hint_lab, np.float32)[trusted]
    counts = np.bincount(g, minlength=n)
    area = np.bincount(labels[pool], minlength=n)
    colours = np.zeros((n, 3), np.float32)
    agreeing = np.zeros(n)
    if g.size:
        has = counts > 0
        starts = (np.cumsum(counts) - counts)[has]
        lo, hi = starts + (counts[has] - 1) // 2, starts + counts[has] // 2
        for c in range(3):  # per-channel median: sort by (region, value), take each region's middle
            vs = v[np.lexsort((v[:, c], g)), c]
            colours[has, c] = 0.5 * (vs[lo] + vs[hi])
        near = np.sqrt(((v - colours[g]) ** 2).sum(-1)) <= agree
        agreeing = np.bincount(g, weights=near, minlength=n)
    filled = (counts >= min_hints) & (counts >= min_share * area) & (agreeing >= agree_share * counts)
    filled[0] = False
    return colours, filled


def fill_regions(lab: np.ndarray, labels: np.ndarray, colours: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """``lab`` (h, w, 3) with every pixel of a filled region set to its region's colour (``labels`` at lab's
    size); pixels on a line (label 0) beside filled regions take the mean of their filled 3x3 neighbours, so
    that upsampling draws no other colour into the regions' edges.  Other pixels are left as they are."""
    import cv2

    out = np.array(lab, np.float32, copy=True)
    sel = filled[labels]
    if not sel.any():
        return out
    out[sel] = colours[labels[sel]]
    w = sel.astype(np.float32)
    num = cv2.boxFilter(out * w[..., None], -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    den = cv2.boxFilter(w, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    fix = (labels == 0) & (den > 0)
    out[fix] = num[fix] / den[fix][:, None]
    return out


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

    def __init__(self, model=None, device: str = "auto", backend: str = "auto", threads: int | None = None,
                 precision: str | None = "auto"):
        from .backends import make_backend

        self.model = load_stage_model(model, self.stage)
        self.backend = make_backend(self.model, backend=backend, device=device, threads=threads,
                                    precision=precision)

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
                 threads: int | None = None, precision: str | None = "auto"):
        self.draft = draft if isinstance(draft, DraftStage) else DraftStage(draft, device, backend, threads,
                                                                            precision)
        if isinstance(refine, str) and refine.lower() == "none":
            self.refine = None
        else:
            self.refine = refine if isinstance(refine, RefineStage) else RefineStage(refine, device, backend,
                                                                                     threads, precision)

    @property
    def render_size(self) -> int:
        return (self.refine or self.draft).render_size

    def describe(self) -> str:
        stages = [self.draft.describe()] + ([self.refine.describe()] if self.refine else ["no refinement"])
        return f"line art: {' + '.join(stages)} on {self.draft.backend.describe()}"

    def __call__(self, lines: list[np.ndarray], hints: list | None = None) -> list[np.ndarray]:
        """Lab (h, w, 3) of each render-size line image; ``hints``: per image None or (hint ab, soft mask).
        Trusted hints are kept as given in the output's ab."""
        drafts = self.draft(lines)
        out = self.refine(lines, drafts, hints) if self.refine is not None else drafts
        for lab, h in zip(out, hints or []):
            if h is not None:
                soft = np.clip(np.asarray(h[1], np.float32), 0, 1)[..., None]
                lab[..., 1:] = soft * h[0] + (1 - soft) * lab[..., 1:]
        return out


def _finish(p, lab: np.ndarray, regions=None) -> np.ndarray:
    """Replace a prepared frame's L (the drawing's) by the output lightness, at full and render size, and
    return the render-size ab: the pipeline then upsamples ab guided by that L and keeps it as the output's.
    ``regions``: None, or (full-size labels, colours, filled) of region fill: the filled regions' lightness
    is set at full size, so it stops exactly at the lines (upsampled, it would spill over them)."""
    from .upsample import resize

    H, W = p.L_full.shape
    h, w = p.L_small.shape
    L_model = resize(np.ascontiguousarray(lab[..., 0]), W, H, "linear")
    if regions is not None and regions[0].shape == (H, W):
        labels, colours, filled = regions
        region_L = np.where(filled, colours[:, 0], np.nan).astype(np.float32)[labels]
        L_model = np.where(np.isnan(region_L), L_model, region_L).astype(np.float32)
    p.L_full = compose_lightness(L_model, p.L_full)
    p.L_small = resize(p.L_full, w, h, "area")
    return np.ascontiguousarray(lab[..., 1:], np.float32)


class LineArtColorizer:
    """Infer stage of the pipeline for line art (``batch``, ``render_size``, ``describe``, ``predict_frames``,
    like :class:`framecolor.pipeline.Colorizer`).  ``predict_frames`` sets each prepared frame's L to the
    output lightness (:func:`compose_lightness`) and returns its ab."""

    def __init__(self, draft=None, refine=None, device: str = "auto", backend: str = "auto", batch: int = 4,
                 render_size: int | None = None, threads: int | None = None, region_fill: bool = True,
                 precision: str | None = "auto"):
        """``region_fill``: used in reference mode only (a key frame; see :class:`LineArtReferenceColorizer`)."""
        from .pipeline import parse_batch

        batch = parse_batch(batch)
        self.stages = draft if isinstance(draft, TwoStage) else TwoStage(draft, refine, device, backend, threads,
                                                                         precision)
        self.batch = 4 if batch == "auto" else batch
        self.render_size = render_size or self.stages.render_size
        if self.render_size < 16:
            raise UserError(f"--render-size must be at least 16 (got {self.render_size})")
        self.finish_device = None  # upsampling runs on the CPU (the L replacement happens there anyway)
        self.region_fill = bool(region_fill)

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
    ``key_lines``: frame number -> the input's full-size line L at that frame.

    ``region_fill`` (default True): paint each region of the drawing whose carried hints are many and agree
    with their median Lab, and carry the previous frame's colours only as far as they rest on hints (see the
    module docstring).  It is the default because it is built for line art that is truly flat-painted, the
    paint-bucket case (studio cels, the BasicPBC shots): there it turns the patchy hints of the flat paper into
    whole flat regions (white paper stays white, hair keeps its purple) and keeps the network's guesses out of
    them.  It is not free on line art extracted from shaded 3-D renders (XDoG of bigbuckbunny: open strokes,
    one leaked region over most of the frame): the fill itself then changes almost nothing (0.2-0.4% of the
    frame filled), but the stricter chain costs 1.6% CIEDE2000 (8.43 against 8.30 without region fill; see
    benchmarks/RESULTS.md, "Line art (issue 9)"); pass ``region_fill=False`` for such material.  Frames
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
            out.append(_finish(p, lab, self.last_regions))
        return out


def make_lineart_reference(frames_again, colorizer: LineArtColorizer, references: list, points: list,
                           cut_threshold: float | None = None, region_fill: bool | None = None):
    """Reference mode for line art: a first pass (:func:`framecolor.reference.scan`) finds shots and places
    bare keys, and keeps the input's line drawing at each key's frame (the flow's anchor); then the
    colouriser is built.  ``frames_again()`` gives a fresh iterator of frames (objects with index, image).
    ``region_fill``: None takes the colouriser's setting (:class:`LineArtColorizer`, default True)."""
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
    if region_fill is None:
        region_fill = getattr(colorizer, "region_fill", True)
    return LineArtReferenceColorizer(colorizer, references, points, plan, key_lines, cut_threshold, region_fill)


# ------------------------------------------------------------------------------------ input kind
def parse_input_kind(value) -> str:
    kind = str(value or "auto").strip().lower()
    if kind not in INPUT_KINDS:
        raise UserError(f"unknown --input-kind {value!r} (choose from {', '.join(INPUT_KINDS)})")
    return kind


def sample_frames(inp: Path, kind: str, n: int = DETECT_FRAMES, start=None, end=None) -> list[np.ndarray]:
    """Up to ``n`` frames of an input for the input-kind decision: spread over a frame folder; for a video,
    the first frames of the selected range a second apart-ish (every 12th), since the reader cannot seek."""
    from .io.frame_folder import FrameFolderReader
    from .io.video_reader import VideoReader

    if kind == "folder":
        reader = FrameFolderReader(inp, start=start, end=end)
        selected = reader.selected()
        step = max(1, len(selected) // n)
        return [f.image for f in itertools.islice(FrameFolderReader(inp, start=start, end=end, every=step), n)]
    reader = VideoReader(inp, start=start, end=end, every=12, luma_only=True)
    try:
        return [f.image for f in itertools.islice(reader, n)]
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
