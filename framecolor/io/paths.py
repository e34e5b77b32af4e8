"""What a path is and where output goes: video or frame folder, default output names, frame positions.

Light on purpose (no PyAV, OpenCV or NumPy): the command line and the planning of a run use it before anything
heavy loads. ``source_kind`` is the one place that tells a video input from a frame folder.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from ..errors import UserError

VIDEO_EXTENSIONS = {
    ".mkv", ".mp4", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts", ".mxf",
    ".wmv", ".flv", ".ogv", ".3gp", ".vob", ".y4m", ".dv", ".gif",
}  # fmt: skip
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}

TMP_MARK = ".framecolor-tmp"
KEY_IMAGE_EXTENSIONS = IMAGE_EXTENSIONS | {".webp"}  # key frames and model sheets (read by OpenCV, never written)


def natural_sort_key(name: str):
    """Sort key that orders embedded numbers by value: ``frame2`` before ``frame10``.

    Case-insensitive; the name itself breaks ties so that the order is total and deterministic.
    """
    parts = re.split(r"(\d+)", name)
    # Even positions are text, odd positions are digit runs: types line up between any two keys.
    key = tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))
    return key, name


_TIME_RE = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_position(text) -> int | float:
    """Parse a ``--start``/``--end`` value: an int is a frame number, a float is seconds.

    Accepted strings: ``"120"`` (frame 120), ``"12.5"`` or ``"12.5s"`` (seconds),
    ``"01:02.5"`` and ``"00:01:02.5"`` (minutes:seconds, hours:minutes:seconds).
    """
    if isinstance(text, bool):
        raise UserError(f"{text!r}: not a frame number or a time")
    if isinstance(text, int | float):
        if text < 0 or (isinstance(text, float) and not math.isfinite(text)):
            raise UserError(f"{text!r}: a position must be a non-negative frame number or time")
        return text
    s = str(text).strip()
    if re.fullmatch(r"\d+", s):
        return int(s)
    if re.fullmatch(r"\d+(\.\d*)?|\.\d+", s):
        return float(s)
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*s", s)
    if m:
        return float(m.group(1))
    m = _TIME_RE.match(s)
    if m:
        hours = int(m.group(1) or 0)
        minutes = int(m.group(2))
        seconds = float(m.group(3))
        if seconds >= 60 or (m.group(1) is not None and minutes >= 60):
            raise UserError(f"{text!r}: not a valid time (minutes and seconds must be below 60)")
        return hours * 3600 + minutes * 60 + seconds
    raise UserError(
        f"{text!r}: not a frame number or a time (examples: 120, 12.5s, 01:02.5, 00:01:02.5)"
    )


def is_video_path(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def source_kind(path) -> str:
    """'video' or 'folder' for an input path (a folder is read as a folder of frames), or a UserError saying
    why it is neither. (Not to be confused with ``--input-kind``, what the pictures are: gray or line art.)"""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return "folder"  # whether it holds frames is the reader's to say
    return "video"


def writes_video(kind: str | None, out: Path) -> bool:
    """Whether this output is a video file: always for a video input; for a frame folder when ``-o`` has a
    video extension (and is not an existing folder)."""
    if kind == "video":
        return True
    return kind == "folder" and is_video_path(out) and not Path(out).is_dir()


def default_output_path(input_path, output_dir=None) -> Path:
    """``NAME.color.mkv`` for a video, ``NAME_color/`` for a frame folder, beside the input or in
    ``output_dir``."""
    p = Path(input_path)
    parent = Path(output_dir) if output_dir is not None else p.parent
    if p.is_dir():
        name = p.resolve().name if p.name in ("", ".", "..") else p.name
        return parent / f"{name}_color"
    return parent / f"{p.stem}.color.mkv"



def temporary_path(final: Path) -> Path:
    """Hidden temporary name beside ``final`` that keeps its extension (the muxer is chosen by it)."""
    return final.with_name(f".{final.stem}{TMP_MARK}-{os.getpid()}{final.suffix}")

