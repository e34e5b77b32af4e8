"""`framecolor sample`: pick frames of a video, to build training sets (every Nth) or to choose the key
frames worth painting for reference mode (``--scene-changes``: one per shot, plus frames where much new
content appears), with a contact sheet of the proposals."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .errors import UserError

log = logging.getLogger("framecolor")

NEW_CONTENT = 15.0  # percent of the picture new since the last proposed key: worth another key
MIN_GAP = 12  # frames between two new-content proposals of one shot
CUT_WAIT = 6  # a new-content proposal followed by a cut within this many frames is dropped (the cut's is kept)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    tmp = path.with_name(f".{path.name}.part.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
        raise UserError(f"{path}: could not write the frame")
    os.replace(tmp, path)


def contact_sheet_path(output: Path) -> Path:
    """Where ``sample --scene-changes`` puts the contact sheet: beside the keys folder (``keys.contact.png``
    for ``keys/``), so that ``--reference keys/`` sees only the keys."""
    output = Path(output).resolve()
    return output.parent / f"{output.name}.contact.png"


def write_contact_sheet(path: Path, thumbs: list[tuple[int, str, np.ndarray]], columns: int = 6) -> Path:
    """A PNG grid of the proposed keys: each thumbnail labelled with its frame number and why it was kept."""
    import cv2

    tiles = []
    for index, why, img in thumbs:
        t = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
        for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(t, f"{index} {why}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, width)
        tiles.append(t)
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = -(-len(tiles) // columns)
    cols = min(columns, len(tiles))
    sheet = np.full((rows * (h + 4), cols * (w + 4), 3), 32, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * (h + 4): r * (h + 4) + t.shape[0], c * (w + 4): c * (w + 4) + t.shape[1]] = t
    tmp = path.with_name(f".{path.name}.part.png")
    if not cv2.imwrite(str(tmp), sheet):
        raise UserError(f"{path}: could not write the contact sheet")
    os.replace(tmp, path)
    return path


def sample_frames(input, output, every: int = 60, scene_changes: bool = False,
                  cut_threshold: float | None = None, overwrite: bool = False,
                  new_content: float | None = NEW_CONTENT) -> int:
    """Write every ``every``-th frame as ``frame_NNNNNN.png`` (the source frame number) into ``output``.

    With ``scene_changes``: the frames worth painting as reference-mode keys instead, under the same names
    (``--reference output/`` reads a frame number from the last digits of each name): frame 0 and the first
    frame of every shot (:class:`framecolor.temporal.cuts.CutDetector`), plus, inside a shot, a frame where more
    than ``new_content`` percent of the picture is new since the last proposed key (a pan revealing new
    scenery, a character entering; :func:`framecolor.temporal.cuts.content_distance`, at least ``MIN_GAP`` frames
    apart, and not within ``CUT_WAIT`` frames before a cut; None: off). A contact sheet of the proposals is
    written beside the folder (:func:`contact_sheet_path`). Returns how many frames were written."""
    import cv2

    from . import color
    from .io.video_reader import VideoReader

    if every < 1:
        raise UserError(f"--every must be at least 1 (got {every})")
    if new_content is not None and not new_content > 0:
        raise UserError(f"--new-content must be a positive percentage (got {new_content})")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UserError(f"{output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise UserError(f"{output}: folder is not empty (use --overwrite to write into it)")
    output.mkdir(parents=True, exist_ok=True)
    if not os.access(output, os.W_OK):
        raise UserError(f"{output}: folder is not writable")

    detector = None
    if scene_changes:
        from .temporal.cuts import CutDetector, content_distance_thumbs, thumbnail

        detector = CutDetector(threshold=cut_threshold)
    written = 0
    proposals: list[tuple[int, str, np.ndarray]] = []
    last_key: tuple[int, np.ndarray] | None = None  # (frame, thumbnail) of the last proposed key
    pending = None  # a new-content proposal waits CUT_WAIT frames: a cut right after it makes it useless

    def keep(index: int, why: str, image: np.ndarray) -> None:
        nonlocal written
        if detector is not None:
            h, w = image.shape[:2]
            small = cv2.resize(color.to_float_rgb(image), (200, max(1, round(200 * h / w))),
                               interpolation=cv2.INTER_AREA)
            proposals.append((index, why, color.from_float_rgb(small, np.uint8)))
            log.info("frame %d: %s", index, why)
        _write_png(output / f"frame_{index:06d}.png", image)
        written += 1

    with VideoReader(input, every=1 if scene_changes else every) as reader:
        for frame in reader:
            if detector is None:
                keep(frame.index, "", frame.image)
                continue
            L = color.luminance(frame.image)
            is_cut = detector.process(frame.index, L)
            thumb = thumbnail(L)
            if pending is not None and (is_cut or frame.index - pending[0] >= CUT_WAIT):
                if not is_cut:
                    keep(*pending)
                pending = None
            if last_key is None or is_cut:
                keep(frame.index, "first" if last_key is None else "new shot", frame.image)
                last_key = (frame.index, thumb)
            elif (new_content is not None and frame.index - last_key[0] >= MIN_GAP
                  and last_key[1].shape == thumb.shape):
                d = content_distance_thumbs(last_key[1], thumb)
                if d > new_content:
                    pending = (frame.index, f"new content {d:.0f}%", frame.image.copy())
                    last_key = (frame.index, thumb)
    if pending is not None:
        keep(*pending)
    if proposals:
        sheet = write_contact_sheet(contact_sheet_path(output), proposals)
        log.info("contact sheet of the %d proposed keys: %s", len(proposals), sheet)
    return written
