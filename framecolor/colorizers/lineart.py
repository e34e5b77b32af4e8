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
* :class:`LineArtColorizer`: the infer stage for line art (an :class:`~framecolor.colorizers.base.InferStage`).
  The output's lightness is the model's L *multiplied* by the line art's (L_line / 100, a painter's
  "multiply" line layer), so the drawn lines stay as dark as drawn and only the paper between them takes
  the model's colour and shading.

Reference mode for line art (one painted key, then line frames) is
:mod:`framecolor.colorizers.lineart_reference`; its region fill is :mod:`framecolor.colorizers.regions`.

Inputs at render size: thin lines vanish when a large drawing is shrunk by area averaging, so the line art
is first eroded (a minimum filter about as wide as the shrink factor) and then shrunk (:func:`shrink_lines`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import color
from ..errors import UserError
from .base import CPU_BATCH, parse_batch, resolve_render_size

DRAFT_MODEL_NAME = "lineart_draft.safetensors"
REFINE_MODEL_NAME = "lineart_refine.safetensors"
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

    from ..upsample import resize

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
    from ..checkpoint import DATA_DIR

    p = DATA_DIR / (DRAFT_MODEL_NAME if stage == "draft" else REFINE_MODEL_NAME)
    return p if p.is_file() else None


def load_stage_model(model, stage: str):
    """A line-art stage's generator ("draft" or "refine"): a checkpoint path, a loaded model, or None for
    the bundled one; refused with a UserError if its channels do not fit the stage."""
    from ..checkpoint import load_generator

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
        from ..backends import make_backend

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


def finish_frame(p, lab: np.ndarray, regions=None) -> np.ndarray:
    """Replace a prepared frame's L (the drawing's) by the output lightness, at full and render size, and
    return the render-size ab: the pipeline then upsamples ab guided by that L and keeps it as the output's.
    ``regions``: None, or (full-size labels, colours, filled) of region fill: the filled regions' lightness
    is set at full size, so it stops exactly at the lines (upsampled, it would spill over them)."""
    from ..upsample import resize

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
    """The infer stage for line art (an :class:`~framecolor.colorizers.base.InferStage`): ``predict_frames``
    sets each prepared frame's L to the output lightness (:func:`compose_lightness`) and returns its ab."""

    def __init__(self, draft=None, refine=None, device: str = "auto", backend: str = "auto", batch: int = 4,
                 render_size: int | None = None, threads: int | None = None, region_fill: bool = True,
                 precision: str | None = "auto"):
        """``region_fill``: used in reference mode only (a key frame; see
        :class:`~framecolor.colorizers.lineart_reference.LineArtReferenceColorizer`)."""
        batch = parse_batch(batch)
        self.stages = draft if isinstance(draft, TwoStage) else TwoStage(draft, refine, device, backend, threads,
                                                                         precision)
        self.batch = CPU_BATCH if batch == "auto" else batch
        self.render_size = resolve_render_size(render_size, self.stages.render_size)
        self.finish_device = None  # upsampling runs on the CPU (the L replacement happens there anyway)
        self.region_fill = bool(region_fill)

    def describe(self) -> str:
        return f"{self.stages.describe()}, batch {self.batch}, render size {self.render_size}"

    def lines_of(self, p) -> np.ndarray:
        return shrink_lines(p.L_full, p.L_small.shape)

    def predict_frames(self, prepared: list) -> list[np.ndarray]:
        labs = self.stages([self.lines_of(p) for p in prepared])
        return [finish_frame(p, lab) for p, lab in zip(prepared, labs)]

    def log_summary(self, name: str = "") -> None:
        """Nothing to add: the stream logs frames and cuts."""
