"""What the pictures are (``--input-kind gray|lineart|auto``): shaded grayscale, whose luminance is kept, or line
art, coloured by the two-stage line-art models. ``auto`` tells binary line art from shaded grayscale on a few
sampled frames of each input (:func:`decide_input_kind`, one log line per input).

Line art is paper and ink: most pixels sit at the paper's white, and the rest are thin strokes (their
anti-aliased edges are the only mid-tones).  Shaded grayscale has large areas of intermediate tone.  Per
frame, on lightness L:

* ``paper``: the paper level is the 95th percentile of L; paper pixels are those within 10 L units of it.
  Line art needs a white paper (level >= 75) covering at least 60% of the frame.
* ``thick``: of the non-paper ("ink") pixels, the share lying farther than ``max(3, short side / 250)``
  pixels from any paper pixel (a Euclidean distance transform), i.e. inside a region wider than
  about 6-9 px at 720-1080p.  Strokes are thin, shading is not: line art needs ``thick <= 0.2``.
* a frame with almost no ink (below 0.005% of its pixels) is blank paper and casts no vote.

The frames vote; a tie or no vote at all gives "gray", the safe choice (it keeps the input's luminance).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np

from ..errors import UserError

log = logging.getLogger("framecolor")

INPUT_KINDS = ("auto", "gray", "lineart")
DETECT_FRAMES = 5  # frames sampled by --input-kind auto

PAPER_LEVEL = 75.0  # L of the paper at least (a white or near-white sheet)
PAPER_BAND = 10.0  # L units below the paper level that still count as paper
MIN_PAPER = 0.60  # share of pixels that must be paper
MAX_THICK = 0.20  # share of ink pixels allowed deep inside wide dark regions
BLANK_INK = 5e-5  # below this share of ink a frame is blank paper (no vote)


def _lightness(frame: np.ndarray) -> np.ndarray:
    from .. import color

    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3) or min(frame.shape[:2]) < 8:
        raise UserError(f"input-kind detection needs (H, W) or (H, W, 3) images of at least 8x8, "
                        f"got shape {frame.shape}")  # fmt: skip
    if frame.dtype not in (np.uint8, np.uint16):
        frame = np.clip(frame.astype(np.float32, copy=False), 0.0, 1.0)
    return color.luminance(frame)


def frame_features(frame: np.ndarray) -> dict:
    """The per-frame measurements the decision uses: paper level and share, ink share, thick share."""
    import cv2

    L = _lightness(frame)
    level = float(np.percentile(L, 95))
    paper = L >= level - PAPER_BAND
    ink_share = 1.0 - float(paper.mean())
    radius = max(3.0, min(L.shape) / 250.0)
    thick = 0.0
    if ink_share > 0:
        # distance of each ink pixel to the nearest paper pixel (paper pixels are the zeros)
        dist = cv2.distanceTransform((~paper).astype(np.uint8), cv2.DIST_L2, 3)
        thick = float((dist > radius).sum()) / float((~paper).sum())
    return {"paper_level": level, "paper": 1.0 - ink_share, "ink": ink_share, "thick": thick,
            "radius": radius}


def _vote(f: dict) -> str | None:
    if f["paper_level"] < PAPER_LEVEL or f["paper"] < MIN_PAPER:
        return "gray"
    if f["ink"] < BLANK_INK:
        return None
    return "lineart" if f["thick"] <= MAX_THICK else "gray"


def detect_input_kind(frames) -> tuple[str, str]:
    """("lineart" | "gray", reason) for a handful of frames (RGB or gray arrays, uint8/uint16/float).

    The reason is one line for the log, e.g. "line art: 5 of 5 frames are white paper (97%) with thin
    strokes (2% of ink in wide regions)".
    """
    frames = list(frames)
    if not frames:
        raise UserError("input-kind detection needs at least one frame")
    feats = [frame_features(f) for f in frames]
    votes = [_vote(f) for f in feats]
    n_line = votes.count("lineart")
    n_gray = votes.count("gray")
    n = len(frames)
    paper = float(np.median([f["paper"] for f in feats]))
    thick = float(np.median([f["thick"] for f in feats if f["ink"] >= BLANK_INK] or [0.0]))
    if n_line == 0 and n_gray == 0:
        return "gray", f"gray (default): all {n} sampled frames are blank"
    if n_line > n_gray:
        return "lineart", (f"line art: {n_line} of {n} frames are white paper ({paper:.0%} of pixels) "
                           f"with thin strokes ({thick:.0%} of ink in wide regions)")
    level = float(np.median([f["paper_level"] for f in feats]))
    return "gray", (f"shaded grayscale: {n_gray} of {n} frames have wide mid-tone or dark regions "
                    f"(paper {paper:.0%} of pixels at L {level:.0f}, {thick:.0%} of the rest in wide regions)")


def parse_input_kind(value) -> str:
    kind = str(value or "auto").strip().lower()
    if kind not in INPUT_KINDS:
        raise UserError(f"unknown --input-kind {value!r} (choose from {', '.join(INPUT_KINDS)})")
    return kind


def sample_frames(inp: Path, kind: str, n: int = DETECT_FRAMES, start=None, end=None) -> list[np.ndarray]:
    """Up to ``n`` frames of an input for the input-kind decision: spread over a frame folder; for a video,
    the first frames of the selected range a second apart-ish (every 12th), since the reader cannot seek."""
    from ..io import open_reader

    if kind == "folder":  # any frame of a folder can be read: spread the sample over the selection
        every = max(1, len(open_reader(inp, kind, start=start, end=end)) // n)
    else:  # a video is read from its start: its first frames, about half a second apart
        every = 12
    reader = open_reader(inp, kind, start=start, end=end, every=every, luma_only=True)
    try:
        return [f.image for f in itertools.islice(reader, n)]
    finally:
        reader.close()


def decide_input_kind(requested: str, name: str, frames) -> str:
    """'gray' or 'lineart' for ``--input-kind requested``; auto looks at ``frames`` (a callable giving the
    sampled frames, called only for auto) and logs its decision in one line."""
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
