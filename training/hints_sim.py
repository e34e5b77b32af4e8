"""Simulated colour hints for training the hint-conditioned ("colour & apply") generator.

At inference (framecolor.reference) a frame's hints are the shot's key and the previous coloured frame,
carried by optical flow and kept where the flow is consistent, plus the user's point hints. Training
hints are simulated from the ground truth so that the network sees all of these:

* **points** (Zhang et al., "Real-Time User-Guided Image Colorization with Learned Deep Priors",
  SIGGRAPH 2017, section 3.3): the number of points is drawn from a geometric distribution (p = 1/10),
  positions from a 2-D Gaussian around the centre (sigma = a quarter of the crop), and each hint is the mean
  colour of a square patch of 4x4 to 16x16 pixels, revealed over that patch;
* **pixel dropout**: the true ab of very sparse random pixels (keep probability about 0.01);
* **propagated**: a neighbouring frame's true ab warped onto this frame by DIS optical flow on L, kept where
  the flow is forward-backward consistent (:func:`framecolor.hints.consistent_warp`, the same function the
  pipeline uses), so the network learns to correct misaligned colour at lines and to fill occlusions. For
  still images (no neighbour), a small random affine warp of the true ab stands in for the motion, with
  random regions masked out as occlusions.

The mixture per sample: no hints (5%), points + dropout (40%), propagated (55%, half of them with points on
top). :class:`HintPairDataset` wraps :class:`training.data.PairDataset` and returns the network input
``(4, C, C)`` = (L, hint a, hint b, mask), encoded by :func:`framecolor.hints.hint_input`.
"""

from __future__ import annotations

import numpy as np

from framecolor import color
from framecolor.hints import consistent_warp, hint_input

from .data import DerivedPairDataset, random_crop

P_NONE, P_POINTS = 0.05, 0.40  # the rest: propagated
GEOMETRIC_P = 1 / 10
PATCH_RANGE = (4, 16)
DROPOUT_KEEP = 0.01
MAX_NEIGHBOUR_GAP = 4  # frames: neighbours are up to this far apart in the source


def point_hints(ab: np.ndarray, rng: np.random.Generator, p: float = GEOMETRIC_P,
                patch_range: tuple[int, int] = PATCH_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Zhang et al. 2017 point hints from true ``ab`` (H, W, 2, Lab units): (hint ab, mask (H, W))."""
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
    """Still images: the true ab moved by a small random affine warp (as if carried by slightly wrong
    flow), with random occlusion holes and the uncovered border masked out."""
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


def flow_propagated(ab_n: np.ndarray, L_n: np.ndarray, L: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A neighbouring frame's true ab carried onto this frame by DIS flow, kept where consistent
    (exactly the pipeline's propagation step), with a few extra occlusion holes."""
    ab, conf = consistent_warp(ab_n, L_n, L)
    mask = (conf >= 0.5).astype(np.float32) * random_occlusions(L.shape, rng, max_blobs=2)
    return ab * mask[..., None], mask


def simulate_hints(L: np.ndarray, ab: np.ndarray, rng: np.random.Generator,
                   neighbour: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hint map (hint ab (H, W, 2), mask (H, W)) for a frame with true ``L``/``ab`` (Lab units), drawn from the
    mixture in the module docstring. ``neighbour``: (L, ab) of a nearby frame of the same shot, if any."""
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
    if neighbour is not None:
        hint, mask = flow_propagated(neighbour[1], neighbour[0], L, rng)
    else:
        hint, mask = affine_propagated(ab, rng)
    if rng.random() < 0.5:  # the key's or the user's points on top
        h2, m2 = point_hints(ab, rng)
        hint = np.where(m2[..., None] > 0, h2, hint)
        mask = np.maximum(mask, m2)
    return hint.astype(np.float32), mask.astype(np.float32)


def _lab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = color.rgb_to_lab(rgb)
    return np.ascontiguousarray(lab[..., 0]), np.ascontiguousarray(lab[..., 1:])


class HintPairDataset(DerivedPairDataset):
    """Training samples for the hint-conditioned generator: ``batch`` returns (input (B, 4, C, C), target ab
    (B, 2, C, C), domains), the same form as :meth:`PairDataset.batch` with L replaced by the 4-channel input
    (the training loop gives the discriminator and the losses channel 0, L).

    Neighbouring frames: for video and frame-folder sources, a cached frame at most ``MAX_NEIGHBOUR_GAP``
    source frames away (same crop, same flip); for ``synthetic``, the same scene rendered a few time steps
    later (its layers move); for stills, none (an affine warp stands in).
    """

    describe_suffix = " + simulated hints"

    def _pair(self, source, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """A frame and (maybe) a neighbour, both RGB with short side >= crop."""
        from .data import resize_short_side

        if source.unlimited:
            from .synthetic import make_scene, render

            side = max(source.short_side or 256, self.crop)
            scene = make_scene(int(rng.integers(2**62)), side)
            dt = float(rng.integers(1, MAX_NEIGHBOUR_GAP + 1)) * (1 if rng.random() < 0.5 else -1)
            return render(scene, side, 0.0), render(scene, side, dt)
        n = len(source.frames)
        i = int(rng.integers(n))
        frame = source.frames[i]
        near = [j for j in range(max(0, i - MAX_NEIGHBOUR_GAP), min(n, i + MAX_NEIGHBOUR_GAP + 1))
                if j != i and abs(source.indices[j] - source.indices[i]) <= MAX_NEIGHBOUR_GAP
                and source.frames[j].shape == frame.shape]
        other = source.frames[near[int(rng.integers(len(near)))]] if near else None
        if min(frame.shape[:2]) < self.crop:
            frame = resize_short_side(frame, self.crop)
            other = resize_short_side(other, self.crop) if other is not None else None
        return frame, other

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str | None]:
        source = self.pick_source(rng)
        frame, other = self._pair(source, rng)
        if other is not None:
            # one crop window and flip for both frames: the neighbour is the same view, moved
            both = random_crop(np.concatenate([frame, other], axis=2), self.crop, rng, self.flip)
            frame, other = both[..., :3], both[..., 3:]
        else:
            frame = random_crop(frame, self.crop, rng, self.flip)
        L, ab = _lab(frame)
        neighbour = _lab(other) if other is not None else None
        hint, mask = simulate_hints(L, ab, rng, neighbour)
        x = hint_input(L, hint, mask)
        target = np.clip(color.normalize_ab(ab), -1, 1).transpose(2, 0, 1)
        return x, np.ascontiguousarray(target, np.float32), source.domain

