"""Key frames (``--reference``): coloured pictures of frames of the input, each governing its shot.

:func:`parse_references` is the one reader of keys, for the command line and the Python API alike;
:func:`reference_lab` brings a key to a size as Lab (resized when its aspect ratio is the frames', refused
otherwise: :func:`fit_reference`); :func:`placement_thumbnail` is what a bare key is matched against to place it
at its best-matching frame.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import color
from ..errors import MediaError, UserError
from ..io.paths import KEY_IMAGE_EXTENSIONS

log = logging.getLogger("framecolor")

ASPECT_TOLERANCE = 0.02  # a key whose aspect ratio differs by more than this is refused, not resized
PLACEMENT_THUMB_WIDTH = 64  # a bare key is matched against thumbnails of this width


@dataclass
class Reference:
    """A key frame: where it comes from (``path`` or an in-memory ``image``) and the frame it is pinned to
    (``frame``; None until a bare path is placed at its best-matching frame)."""

    frame: int | None
    path: Path | None = None
    image: np.ndarray | None = None
    name: str = ""

    def load(self) -> np.ndarray:
        """The key as an RGB image (uint8 / uint16 / float)."""
        if self.image is not None:
            return np.asarray(self.image)
        from ..io.images import read_image

        try:
            return read_image(self.path)
        except UserError:
            raise
        except Exception as exc:  # decoders raise many types for broken files
            raise MediaError(f"--reference {self.path}: cannot be read as an image ({exc})") from None


_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last run of digits in a name


def frame_number_of(name: str) -> int | None:
    """Frame number of a key file named by frame number (``0120.png``, ``key_120.tif``): its last digits."""
    m = _NUMBER.search(Path(name).stem)
    return int(m.group(1)) if m else None


def _reference_folder(folder: Path, text: str, source: str) -> list[Reference]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in KEY_IMAGE_EXTENSIONS)
    if not files:
        raise UserError(f"{source} {text}: folder holds no images")
    refs = []
    for f in files:
        n = frame_number_of(f.name)
        if n is None:
            raise UserError(f"{source} {text}: {f.name} is not named by frame number (e.g. 0120.png)")
        refs.append(Reference(n, path=f, name=str(f)))
    return refs


def _from_text(text: str, source: str) -> list[Reference]:
    """The command-line forms: ``FRAME=PATH`` (pinned), a folder of keys named by frame number (each pinned),
    or a bare image ``PATH`` (frame None: placed at its best-matching frame later)."""
    head, sep, tail = text.partition("=")
    if sep and head.strip().isdigit() and not Path(text).exists():
        path = Path(tail)
        if not path.is_file():
            raise UserError(f"{source} {text}: {path} is not a file")
        return [Reference(int(head), path=path, name=str(path))]
    path = Path(text)
    if path.is_dir():
        return _reference_folder(path, text, source)
    if path.is_file():
        return [Reference(None, path=path, name=str(path))]
    raise UserError(f"{source} {text}: no such file or folder (forms: PATH, FRAME=PATH, FOLDER)")


def _is_frame_number(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse_references(values, source: str = "--reference") -> list[Reference]:
    """Key frames from what the command line or the Python API gives, in one reader:

    * ``None``: no keys;
    * a mapping ``{frame: image or path}``: each key pinned to its frame (a path must be a file);
    * an iterable of: :class:`Reference` objects (kept as they are), text or paths in the command-line forms
      (``FRAME=PATH`` pinned, a ``FOLDER`` of keys named by frame number, a bare ``PATH`` placed later at its
      best-matching frame), or (H, W, 3) RGB images (placed at their best-matching frame).

    Two keys pinned to one frame are refused. ``source`` names the option in messages (``--reference`` for
    the command line, ``references`` for the API)."""
    if values is None:
        return []
    items = values.items() if isinstance(values, Mapping) else ((None, v) for v in values)
    refs: list[Reference] = []
    for frame, value in items:
        if frame is not None and not _is_frame_number(frame):
            raise UserError(f"{source}: frame numbers must be non-negative integers, got {frame!r}")
        if isinstance(value, Reference):
            refs.append(value)
        elif isinstance(value, (str, os.PathLike)):
            if frame is None:
                refs.extend(_from_text(str(value), source))
                continue
            path = Path(value)
            if not path.is_file():
                raise UserError(f"{source}: {path} is not a file")
            refs.append(Reference(frame, path=path, name=str(path)))
        else:
            img = np.asarray(value)
            if img.ndim != 3 or img.shape[2] not in (3, 4):
                raise UserError(f"{source}: key for frame {frame} must be an (H, W, 3) RGB image, got {img.shape}")
            refs.append(Reference(frame, image=img, name=f"key {frame if frame is not None else len(refs)}"))
    pinned: dict[int, str] = {}
    for r in refs:
        if r.frame is not None:
            if r.frame in pinned:
                raise UserError(f"{source}: two keys for frame {r.frame} ({pinned[r.frame]} and {r.name})")
            pinned[r.frame] = r.name
    return refs


def fit_reference(image: np.ndarray, frame_hw: tuple[int, int], name: str) -> np.ndarray:
    """A key of another size than the frames: resized (with a warning) when its aspect ratio is within 2% of
    the frames', refused with a UserError otherwise (resizing would move colours off their objects; crop or
    pad the key to the frame's shape)."""
    from ..upsample import resize

    H, W = frame_hw
    h, w = image.shape[:2]
    if (h, w) == (H, W):
        return image
    if abs((w / h) / (W / H) - 1.0) > ASPECT_TOLERANCE:
        raise UserError(f"reference {name} is {w}x{h} but the frames are {W}x{H} (different aspect ratio); "
                        "crop or pad it to the frames' shape")
    log.warning("reference %s is %dx%d, the frames %dx%d: resized", name, w, h, W, H)
    rgb = color.to_float_rgb(image)
    return resize(rgb, W, H, "area" if w > W else "linear")


def reference_lab(image: np.ndarray, frame_hw: tuple[int, int], render_hw: tuple[int, int],
                  name: str = "reference") -> tuple[np.ndarray, np.ndarray]:
    """A key image -> (L, ab) at render size (L (h, w), ab (h, w, 2), float32 Lab), size policy applied."""
    from ..upsample import resize

    rgb = color.to_float_rgb(fit_reference(np.asarray(image), frame_hw, name))
    lab = color.rgb_to_lab(rgb)
    h, w = render_hw
    lab = resize(lab, w, h, "area")
    return np.ascontiguousarray(lab[..., 0]), np.ascontiguousarray(lab[..., 1:])


def placement_thumbnail(L: np.ndarray) -> np.ndarray:
    """What a bare key is matched against to place it: a small copy of L (the cut detector's thumbnail, at
    ``PLACEMENT_THUMB_WIDTH`` pixels)."""
    from ..temporal.cuts import thumbnail

    return thumbnail(L, PLACEMENT_THUMB_WIDTH)
