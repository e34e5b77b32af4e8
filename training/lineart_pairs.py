"""Training samples for the two line-art colouring stages, built on the fly from colour frames.

The design is the two-stage sketch colourisation of Zhang, Li, Wong, Ji and Liu, "Two-stage Sketch
Colorization", ACM Transactions on Graphics 37(6) (SIGGRAPH Asia), 2018: a drafting network splashes
colour over the line art, then a refinement network, trained on drafts corrupted by simulated mistakes and
optionally guided by colour hints, corrects them.  Both stages predict full Lab (line art has no
luminance to keep), see :mod:`framecolor.colorizers.lineart`.

Every sample starts from a random colour crop (from the same ``--data`` sources as ordinary training,
:class:`training.data.PairDataset`); its line art is extracted on the spot (:func:`training.lineart.xdog`
mostly, the high-pass method sometimes, with a random line width) so every crop gives a fresh drawing.

* :class:`DraftPairDataset`: input (1, C, C) = line art; target (3, C, C) = Lab of the crop.
* :class:`RefinePairDataset`: input (7, C, C) = line art, a draft (Lab, 3), hint ab (2) and hint mask (1);
  target the same Lab.  The draft is the ground truth corrupted by :func:`training.draft_errors.simulate_draft`
  (region pasting, warps, colour spray), applied on a window of twice the crop's side so that one mistake
  covers a part of the crop, not all of it.  With ``draft_model`` (a trained drafting generator), a share
  ``real_draft_share`` of the batch gets that network's real draft instead: its mistakes (washed-out,
  blurred colour) are not among the simulated ones, and the refinement must learn to fix them too.
  Hints: none for half of the samples (the automatic case), else the mixture of :func:`simulate_hints`
  (points, pixel dropout, an affinely moved copy of the true colours standing in for a key frame carried by
  optical flow).

Network scalings are those of :mod:`framecolor.color` (L / 50 - 1, ab / 110), shared with inference through
:func:`framecolor.colorizers.lineart.line_input`, :func:`~framecolor.colorizers.lineart.lab_to_net` and
:func:`~framecolor.colorizers.lineart.refine_input`.
"""

from __future__ import annotations

import numpy as np

from framecolor import color
from framecolor.colorizers.lineart import lab_to_net, line_input, refine_input

from .data import DerivedPairDataset, PairDataset, random_crop
from .draft_errors import simulate_draft
from .lineart import highpass_lines, xdog

P_NO_HINTS = 0.5  # share of refinement samples without hints (running without a key is the common case)
P_NONE, P_POINTS = 0.05, 0.40  # simulate_hints: empty, points (+ dropout); the rest: a moved copy of the truth
GEOMETRIC_P = 1 / 10
PATCH_RANGE = (4, 16)
DROPOUT_KEEP = 0.01
P_HIGHPASS = 0.25  # share of drawings made by the high-pass method instead of XDoG
REAL_DRAFT_SHARE = 0.5


def random_lines(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Line art (uint8, white paper) of an RGB crop, by a randomly chosen method and line width."""
    if rng.random() < P_HIGHPASS:
        return highpass_lines(rgb, sigma=float(rng.uniform(1.5, 2.5)))
    return xdog(rgb, sigma=float(rng.uniform(0.8, 1.3)))


def _lines_L(lines: np.ndarray) -> np.ndarray:
    return color.luminance(lines)  # uint8 gray -> CIE L (H, W)


class DraftPairDataset(DerivedPairDataset):
    """(line art (B, 1, C, C), true Lab (B, 3, C, C), domains): samples for the drafting stage.  Same
    interface as :class:`training.data.PairDataset` (``batch(rng, size)``), so the training loop is unchanged."""

    in_channels = 1
    describe_suffix = " -> line art"

    def _draw(self, rng: np.random.Generator, side: int):
        source = self.pick_source(rng)
        return source, source.draw(rng, side)

    def sample(self, rng: np.random.Generator):
        source, frame = self._draw(rng, self.crop)
        rgb = np.ascontiguousarray(random_crop(frame, self.crop, rng, self.flip))
        x = line_input(_lines_L(random_lines(rgb, rng)))[None]
        return x, lab_to_net(color.rgb_to_lab(rgb)), source.domain



class RefinePairDataset(DraftPairDataset):
    """(line art + draft + hints (B, 7, C, C), true Lab (B, 3, C, C), domains) for the refinement stage."""

    in_channels = 7

    def __init__(self, base: PairDataset, draft_model=None, real_draft_share: float = REAL_DRAFT_SHARE):
        super().__init__(base)
        self.draft_model = draft_model
        self.real_draft_share = real_draft_share if draft_model is not None else 0.0

    def sample(self, rng: np.random.Generator):
        source, frame = self._draw(rng, self.crop)
        # mistakes are made on a window twice the crop's side (as large as the frame allows), then the crop
        # is cut from it: a mistake then covers part of the crop, as in a draft of a whole frame
        side = min(2 * self.crop, *frame.shape[:2])
        window = np.ascontiguousarray(random_crop(frame, side, rng, self.flip))
        draft, _ = simulate_draft(window, rng)
        both = random_crop(np.concatenate([window, draft], axis=2), self.crop, rng, flip=False)
        rgb, draft = np.ascontiguousarray(both[..., :3]), np.ascontiguousarray(both[..., 3:])
        lab = color.rgb_to_lab(rgb)
        if rng.random() < P_NO_HINTS:
            hint_ab = np.zeros(lab.shape[:2] + (2,), np.float32)
            mask = np.zeros(lab.shape[:2], np.float32)
        else:
            hint_ab, mask = simulate_hints(lab[..., 0], lab[..., 1:], rng)
        lines_L = _lines_L(random_lines(rgb, rng))
        x = refine_input(lines_L, color.rgb_to_lab(draft), hint_ab, mask)
        return x, lab_to_net(lab), source.domain

    def batch(self, rng: np.random.Generator, size: int):
        x, y, domains = super().batch(rng, size)
        if self.draft_model is not None and self.real_draft_share > 0:
            import torch

            real = rng.random(size) < self.real_draft_share
            if real.any():
                idx = torch.from_numpy(np.flatnonzero(real))
                with torch.no_grad():
                    device = next(self.draft_model.parameters()).device
                    drafts = self.draft_model(x[idx, :1].to(device)).float().cpu()
                x[idx, 1:4] = drafts  # the drafting network's own draft of the same line art
        return x, y, domains

    def describe(self) -> list[str]:
        real = f", {self.real_draft_share:.0%} real drafts" if self.draft_model is not None else ""
        return [f"{d} -> line art + simulated drafts{real} + simulated hints" for d in self.base.describe()]



# ------------------------------------------------------------------------------------ simulated hints
# The refinement stage's hints at inference are a key frame's colours carried by optical flow (line-art
# reference mode) and the user's point hints; in training they are simulated from the ground truth.
def point_hints(ab: np.ndarray, rng: np.random.Generator, p: float = GEOMETRIC_P,
                patch_range: tuple[int, int] = PATCH_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Point hints from true ``ab`` (H, W, 2, Lab units) as Zhang et al., "Real-Time User-Guided Image
    Colorization with Learned Deep Priors" (SIGGRAPH 2017, section 3.3) simulate them: the number of points
    from a geometric distribution (``p``), positions from a 2-D Gaussian around the centre (sigma a quarter of
    the image), each hint the mean colour of a square patch of ``patch_range`` pixels. Returns (hint ab, mask)."""
    H, W = ab.shape[:2]
    hint = np.zeros_like(ab, dtype=np.float32)
    mask = np.zeros((H, W), np.float32)
    n = int(rng.geometric(p))
    for _ in range(n):
        size = int(rng.integers(patch_range[0], patch_range[1] + 1))
        cy = int(np.clip(rng.normal(H / 2, H / 4), 0, H - 1))
        cx = int(np.clip(rng.normal(W / 2, W / 4), 0, W - 1))
        y0, x0 = max(0, cy - size // 2), max(0, cx - size // 2)
        y1, x1 = min(H, y0 + size), min(W, x0 + size)
        hint[y0:y1, x0:x1] = ab[y0:y1, x0:x1].reshape(-1, 2).mean(0)
        mask[y0:y1, x0:x1] = 1.0
    return hint, mask


def pixel_dropout(ab: np.ndarray, rng: np.random.Generator, keep: float = DROPOUT_KEEP
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The true ab of a random ``keep`` share of the pixels."""
    mask = (rng.random(ab.shape[:2]) < keep).astype(np.float32)
    return ab * mask[..., None], mask


def random_occlusions(shape: tuple[int, int], rng: np.random.Generator, max_blobs: int = 4) -> np.ndarray:
    """A keep-mask (H, W) with 0..max_blobs random ellipses cut out (regions with no trusted history)."""
    import cv2

    H, W = shape
    keep = np.ones((H, W), np.uint8)
    for _ in range(int(rng.integers(0, max_blobs + 1))):
        centre = (int(rng.integers(W)), int(rng.integers(H)))
        axes = (int(rng.integers(3, max(4, W // 4))), int(rng.integers(3, max(4, H // 4))))
        cv2.ellipse(keep, centre, axes, float(rng.uniform(0, 180)), 0, 360, 0, -1)
    return keep.astype(np.float32)


def affine_propagated(ab: np.ndarray, rng: np.random.Generator, max_shift: float = 4.0, max_rot: float = 3.0,
                      max_scale: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """The true ab moved by a small random affine warp (as if carried by slightly wrong flow), with random
    occlusion holes and the uncovered border masked out."""
    import cv2

    H, W = ab.shape[:2]
    angle = rng.uniform(-max_rot, max_rot)
    scale = 1.0 + rng.uniform(-max_scale, max_scale)
    m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, scale)
    m[:, 2] += rng.uniform(-max_shift, max_shift, size=2)
    warped = cv2.warpAffine(np.ascontiguousarray(ab, np.float32), m, (W, H), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = cv2.warpAffine(np.ones((H, W), np.float32), m, (W, H), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = valid * random_occlusions((H, W), rng)
    return warped * mask[..., None], mask


def simulate_hints(L: np.ndarray, ab: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hint map (hint ab (H, W, 2), mask (H, W)) for a crop with true ``L``/``ab`` (Lab units): empty
    (``P_NONE``), points with pixel dropout half the time (``P_POINTS``), else a moved copy of the true colours
    (:func:`affine_propagated`, a key carried by flow), with points on top half the time."""
    u = rng.random()
    if u < P_NONE:
        return np.zeros_like(ab, dtype=np.float32), np.zeros(L.shape, np.float32)
    if u < P_NONE + P_POINTS:
        hint, mask = point_hints(ab, rng)
        if rng.random() < 0.5:
            h2, m2 = pixel_dropout(ab, rng)
            hint = np.where(m2[..., None] > 0, h2, hint)
            mask = np.maximum(mask, m2)
        return hint.astype(np.float32), mask
    hint, mask = affine_propagated(ab, rng)
    if rng.random() < 0.5:  # the key's or the user's points on top
        h2, m2 = point_hints(ab, rng)
        hint = np.where(m2[..., None] > 0, h2, hint)
        mask = np.maximum(mask, m2)
    return hint.astype(np.float32), mask.astype(np.float32)
