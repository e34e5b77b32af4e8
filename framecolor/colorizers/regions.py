"""Paint-bucket region fill for line art: the regions a drawing's lines enclose, the colour each region's carried
hints agree on, and the fill itself. Used by :mod:`framecolor.colorizers.lineart_reference` (see its docstring
for the method and its sources: LazyBrush, Sýkora et al. 2009; inclusion matching, Dai et al. 2024)."""

from __future__ import annotations

import numpy as np

from .lineart import MASK_THRESHOLD

# Chosen a priori (see framecolor.colorizers.lineart_reference), not tuned on the benchmark's scored frames:
REGION_LINE_L = 75.0  # drawing L below this is ink (paper ~100; black ink ~0, coloured construction lines 30-55)
REGION_CLOSE = 3  # px at full size: a closing of the ink with a 3x3 square bridges gaps of up to 2 px in lines
REGION_MIN_HINTS = 4  # trusted hint pixels (render size) a region needs at least...
REGION_MIN_SHARE = 0.25  # ...and at least this share of its render-size pixels
REGION_AGREE = 10.0  # Lab units (Euclidean): a trusted hint this close to the region's median agrees with it
REGION_AGREE_SHARE = 0.6  # share of a region's trusted hints that must agree: its colour is flat, not shaded


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
