"""Point hints (``--hints FILE.json``): ``[{"frame": 120, "x": 312, "y": 88, "rgb": [200, 40, 40]}, ...]`` in
full-frame pixel coordinates, validated with one-line :class:`~framecolor.errors.UserError` messages, and
painted into a render-size hint map."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .. import color
from ..errors import UserError

HINT_KEYS = ("frame", "x", "y", "rgb")


@dataclass(frozen=True)
class PointHint:
    """One user colour hint: frame number (of the source), pixel position (full frame), sRGB colour."""

    frame: int
    x: float
    y: float
    rgb: tuple[int, int, int]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def parse_point_hints(data: Any, source: str = "hints") -> list[PointHint]:
    """A decoded JSON value -> point hints; a one-line UserError naming the first problem otherwise."""
    if not isinstance(data, list):
        raise UserError(f"{source}: expected a JSON list of hints like "
                        '[{"frame": 120, "x": 312, "y": 88, "rgb": [200, 40, 40]}]')
    hints = []
    for i, item in enumerate(data):
        where = f"{source}: hint {i}"
        if not isinstance(item, dict):
            raise UserError(f"{where}: expected an object with keys frame, x, y, rgb")
        missing = [k for k in HINT_KEYS if k not in item]
        if missing:
            raise UserError(f"{where}: missing key(s) {', '.join(missing)}")
        unknown = sorted(set(item) - set(HINT_KEYS))
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(HINT_KEYS)})")
        frame, x, y, rgb = (item[k] for k in HINT_KEYS)
        if not _is_int(frame) or frame < 0:
            raise UserError(f"{where}: frame must be a non-negative integer, got {frame!r}")
        for name, v in (("x", x), ("y", y)):
            if not _is_number(v) or v < 0:
                raise UserError(f"{where}: {name} must be a non-negative number of pixels, got {v!r}")
        if (not isinstance(rgb, list) or len(rgb) != 3
                or not all(_is_int(c) and 0 <= c <= 255 for c in rgb)):
            raise UserError(f"{where}: rgb must be 3 integers 0-255, got {rgb!r}")
        hints.append(PointHint(frame, float(x), float(y), (int(rgb[0]), int(rgb[1]), int(rgb[2]))))
    return hints


def load_point_hints(path: str | os.PathLike) -> list[PointHint]:
    """Read and validate a ``--hints`` JSON file (structure only; positions are checked against the
    frames by :func:`check_point_hints` once their size is known)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--hints {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--hints {p}: cannot be read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--hints {p}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    return parse_point_hints(data, source=f"--hints {p}")


def check_point_hints(hints: Iterable[PointHint], width: int, height: int, last_frame: int | None = None,
                      source: str = "--hints") -> None:
    """Positions inside a ``width`` x ``height`` frame and frames not after ``last_frame`` (when known)."""
    for i, h in enumerate(hints):
        if not (h.x <= width - 1 and h.y <= height - 1):
            raise UserError(f"{source}: hint {i} at x={h.x:g}, y={h.y:g} is outside the {width}x{height} frame "
                            f"(x 0..{width - 1}, y 0..{height - 1})")
        if last_frame is not None and h.frame > last_frame:
            raise UserError(f"{source}: hint {i} is for frame {h.frame}, beyond the clip (last frame {last_frame})")


def hints_by_frame(hints: Iterable[PointHint]) -> dict[int, list[PointHint]]:
    out: dict[int, list[PointHint]] = {}
    for h in hints:
        out.setdefault(h.frame, []).append(h)
    return out


def rgb_to_ab(rgb: tuple[int, int, int]) -> np.ndarray:
    """sRGB uint8 triple -> its (a, b) in Lab units."""
    lab = color.rgb_to_lab(np.array([[rgb]], np.uint8))
    return lab[0, 0, 1:].astype(np.float32)


def paint_points(hint_ab: np.ndarray, mask: np.ndarray, points: Iterable[PointHint], frame_size: tuple[int, int],
                 radius: int = 1) -> None:
    """Write point hints (full-frame coordinates, ``frame_size`` = (H, W)) into a render-size hint map, in
    place: a (2 radius + 1)^2 square of the hint colour with mask 1 (Zhang et al. 2017 reveal small patches
    rather than single pixels; the network was trained on such patches)."""
    h, w = mask.shape
    H, W = frame_size
    for p in points:
        cx = int(round((p.x + 0.5) * w / W - 0.5))
        cy = int(round((p.y + 0.5) * h / H - 0.5))
        cx, cy = min(max(cx, 0), w - 1), min(max(cy, 0), h - 1)
        ys, xs = slice(max(cy - radius, 0), cy + radius + 1), slice(max(cx - radius, 0), cx + radius + 1)
        hint_ab[ys, xs] = rgb_to_ab(p.rgb)
        mask[ys, xs] = 1.0


def read_point_hints(hints) -> list[PointHint]:
    """Point hints given as a JSON file path (``--hints``), PointHint objects or plain dicts (the Python API),
    validated; None gives none."""
    if hints is None:
        return []
    if isinstance(hints, (str, os.PathLike)):
        return load_point_hints(hints)
    if all(isinstance(h, PointHint) for h in hints):
        return list(hints)
    return parse_point_hints(list(hints))
