"""Line extraction from colour frames, to make (line art, colour) training pairs.

Two methods share one output convention: uint8 (H, W), white paper (255) and dark, anti-aliased lines.

* :func:`xdog`: the eXtended Difference of Gaussians of Winnemoeller, Kyprianidis and Olsen, "XDoG: An
  eXtended difference-of-Gaussians compendium including advanced image stylization", Computers &
  Graphics 36(6), 2012.  The sharpened image ``S = (1 + p) G_sigma - p G_{k sigma}`` is passed through
  the soft threshold ``T(u) = 1 if u >= epsilon else 1 + tanh(phi (u - epsilon))`` (their eqs. 5-7, the
  p-parameterisation).  With ``epsilon`` at 0 every flat region, of any tone, stays paper white (there
  ``S`` equals the tone, which is >= 0) and only the dark side of edges turns to ink: lines, no tonal
  fill.  Because the soft threshold grows with edge contrast, strong edges give darker and wider strokes
  than weak ones: the varying weight of a drawn line.
* :func:`highpass_lines`: the "gray divided by blurred gray" high-pass (the colour-dodge sketch filter
  that anime line-art colourisation data sets are commonly made with): a pixel darker than its
  neighbourhood becomes ink, its darkness set by how much darker, then levels are stretched.

Both work on CIE lightness (L / 100), so edge strength follows perceived contrast.  Both are cleaned by
:func:`clean_lines`: hysteresis (a stroke must contain a dark core, faint ghosts with none are dropped),
removal of small connected components (speckle), and a light fill of pin-holes inside strokes.

:func:`write_pairs` turns a video or a folder of frames into ``line/NNNNNN.png`` and ``color/NNNNNN.png``
(NNNNNN: the source frame number) for training the line-art colouring networks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from framecolor.errors import UserError

METHODS = ("xdog", "highpass")


def _lightness(rgb: np.ndarray) -> np.ndarray:
    """Any RGB / gray image (uint8, uint16, float in [0, 1]) -> CIE L / 100 as float32 (H, W)."""
    from framecolor import color

    rgb = np.asarray(rgb)
    if rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] not in (1, 3, 4)):
        raise UserError(f"expected an image (H, W) or (H, W, 3), got shape {rgb.shape}")
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = rgb[:, :, 0]
    if rgb.dtype not in (np.uint8, np.uint16):
        rgb = np.clip(rgb.astype(np.float32, copy=False), 0.0, 1.0)
    return color.luminance(rgb) * np.float32(0.01)


def _to_uint8(t: np.ndarray) -> np.ndarray:
    return np.clip(t * 255.0 + 0.5, 0, 255).astype(np.uint8)


def clean_lines(lines: np.ndarray, min_area: int | None = None, core: int = 96, faint: int = 235,
                fill_holes: int = 2) -> np.ndarray:
    """Remove speckle from uint8 line art (white paper, dark lines) and return a cleaned copy.

    * Strokes are the 8-connected components of pixels darker than ``faint``.  A stroke is kept only if
      it holds at least one pixel darker than ``core`` (hysteresis, as in Canny's edge linking: faint
      ghosts of weak edges vanish, the soft fringe of a real stroke stays) and at least ``min_area``
      visibly dark pixels (< 128; default: 1/40000 of the frame, at least 8: about 50 px at 1080p).
    * Pin-holes: enclosed paper components of at most ``fill_holes`` pixels take the darkness of their
      surroundings, so strokes read as solid ink.
    Removed strokes become paper (255); nothing else changes.
    """
    import cv2

    if lines.dtype != np.uint8 or lines.ndim != 2:
        raise UserError("clean_lines expects uint8 (H, W) line art")
    h, w = lines.shape
    if min_area is None:
        min_area = max(8, int(round(h * w / 40000)))
    out = lines.copy()
    ink = (lines < faint).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n > 1:
        dark = np.bincount(labels[lines < 128], minlength=n)  # visibly dark pixels of each stroke
        has_core = np.bincount(labels[lines < core], minlength=n) > 0
        keep = (dark >= min_area) & has_core
        keep[0] = True  # label 0 is the paper
        out[~keep[labels]] = 255
    if fill_holes > 0:
        paper = (out >= faint).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
        small = stats[:, cv2.CC_STAT_AREA] <= fill_holes
        small[0] = False  # label 0 is ink here
        holes = small[labels]
        if holes.any():
            eroded = cv2.erode(out, np.ones((3, 3), np.uint8))  # darkest neighbour of each pixel
            out[holes] = eroded[holes]
    return out


def xdog(rgb: np.ndarray, sigma: float = 1.0, k: float = 1.6, p: float = 40.0, epsilon: float = 0.0,
         phi: float = 10.0, clean: bool = True, min_area: int | None = None) -> np.ndarray:
    """eXtended Difference of Gaussians line art (Winnemoeller, Kyprianidis, Olsen, C&G 2012).

    ``S = (1 + p) G_sigma * I - p G_{k sigma} * I`` on lightness I in [0, 1], then ``T = 1`` where
    ``S >= epsilon`` and ``1 + tanh(phi (S - epsilon))`` elsewhere.  ``sigma`` sets the finest line
    width (pixels: scale it with the frame, about 0.9 at 720-1080p), ``k`` the surround (1.6
    approximates a Laplacian of Gaussian), ``p`` the edge emphasis, ``phi`` the softness (lower: more
    gray, wider strokes on strong edges).  Returns uint8 (H, W): 255 paper, dark lines.
    """
    import cv2

    if sigma <= 0 or k <= 1:
        raise UserError(f"xdog needs sigma > 0 and k > 1 (got sigma={sigma}, k={k})")
    lum = _lightness(rgb)
    g1 = cv2.GaussianBlur(lum, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    g2 = cv2.GaussianBlur(lum, (0, 0), sigma * k, borderType=cv2.BORDER_REPLICATE)
    s = (1.0 + p) * g1 - p * g2
    t = np.ones_like(s)
    below = s < epsilon  # tanh only where it is needed (the ink is a small part of a frame)
    t[below] = 1.0 + np.tanh(phi * (s[below] - epsilon))
    lines = _to_uint8(t)
    return clean_lines(lines, min_area=min_area) if clean else lines


def highpass_lines(rgb: np.ndarray, sigma: float = 2.0, low: float = 0.80, high: float = 0.97,
                   presmooth: float = 0.7, clean: bool = True, min_area: int | None = None) -> np.ndarray:
    """High-pass line art: ``r = I / (G_sigma * I)`` (gray over blurred gray, the colour-dodge sketch).

    Flat regions give r = 1 (paper) whatever their tone; the dark side of an edge gives r < 1.  Levels
    map r <= ``low`` to black and r >= ``high`` to white, linearly between (a drawn line's soft edge).
    ``sigma`` (pixels) sets how far a pixel is compared with its surround (line width grows with it);
    ``presmooth`` (pixels, 0 for none) blurs the lightness a little first, against grain.
    Returns uint8 (H, W): 255 paper, dark lines.
    """
    import cv2

    if sigma <= 0 or not 0 <= low < high <= 1:
        raise UserError(f"highpass_lines needs sigma > 0 and 0 <= low < high <= 1 (got {sigma}, {low}, {high})")
    lum = _lightness(rgb)
    if presmooth > 0:  # a pixel-level ratio would turn sensor noise and grain into speckle
        lum = cv2.GaussianBlur(lum, (0, 0), presmooth, borderType=cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(lum, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    ratio = (lum + 0.02) / (blurred + 0.02)  # the offset keeps noise in near-black areas from exploding
    t = np.clip((ratio - low) / (high - low), 0.0, 1.0)
    lines = _to_uint8(t)
    return clean_lines(lines, min_area=min_area) if clean else lines


def extract_lines(rgb: np.ndarray, method: str = "xdog", **params) -> np.ndarray:
    """Line art of a colour (or gray) frame by ``method`` ("xdog" or "highpass"); ``params`` go to it."""
    if method == "xdog":
        return xdog(rgb, **params)
    if method == "highpass":
        return highpass_lines(rgb, **params)
    raise UserError(f"unknown line-art method {method!r} (choose from {', '.join(METHODS)})")


def _write_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically (temporary name in the same folder, then os.replace)."""
    import cv2

    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    tmp = path.with_name(f".{path.name}.part.png")
    if not cv2.imwrite(str(tmp), image):
        tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: could not write the image")
    os.replace(tmp, path)


def write_pairs(input, output_dir, every: int = 60, method: str = "xdog", overwrite: bool = False,
                **params) -> int:
    """Write (line art, colour) training pairs from a video or a folder of frames.

    Every ``every``-th frame of ``input`` is written as ``output_dir/color/NNNNNN.png`` (the frame as
    decoded: RGB, 8 or 16 bit) and its line art as ``output_dir/line/NNNNNN.png`` (uint8 gray), NNNNNN
    the frame's number in the source.  ``params`` go to the line-art method.  Frames stream one at a
    time; each file appears complete or not at all.  Returns the number of pairs written.
    """
    from framecolor.io import open_reader

    if method not in METHODS:
        raise UserError(f"unknown line-art method {method!r} (choose from {', '.join(METHODS)})")
    if not isinstance(every, int) or every < 1:
        raise UserError(f"--every must be a positive whole number, not {every!r}")
    input, output_dir = Path(input), Path(output_dir)
    if not input.exists():
        raise UserError(f"{input}: no such file or folder")
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"{output_dir}: exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise UserError(f"{output_dir}: folder is not empty (use --overwrite to write into it)")
    line_dir, color_dir = output_dir / "line", output_dir / "color"
    line_dir.mkdir(parents=True, exist_ok=True)
    color_dir.mkdir(parents=True, exist_ok=True)

    reader = open_reader(input, every=every)
    written = 0
    try:
        for frame in reader:
            name = f"{frame.index:06d}.png"
            lines = extract_lines(frame.image, method, **params)
            _write_png(color_dir / name, frame.image)
            _write_png(line_dir / name, lines)  # the line file last: a pair is complete once it exists
            written += 1
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    return written
