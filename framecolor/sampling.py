"""`framecolor sample`: pick frames of a video to build training sets (every Nth, or one per shot)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


def sample_frames(input, output, every: int = 60, scene_changes: bool = False,
                  cut_threshold: float | None = None, overwrite: bool = False) -> int:
    """Write every ``every``-th frame (or frame 0 and the first frame after each cut) as
    ``frame_NNNNNN.png`` (the source frame number) into ``output``; returns how many were written."""
    import cv2

    from . import color
    from .media import VideoReader

    if every < 1:
        raise UserError(f"--every must be at least 1 (got {every})")
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
        from .temporal import CutDetector

        detector = CutDetector(threshold=cut_threshold)
    written = 0
    with VideoReader(input, every=1 if scene_changes else every) as reader:
        for frame in reader:
            if detector is not None:
                is_cut = detector.process(frame.index, color.luminance(frame.image))
                if frame.index != 0 and not is_cut:
                    continue
            image = frame.image
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            final = output / f"frame_{frame.index:06d}.png"
            tmp = output / f".{final.name}.part.png"
            if not cv2.imwrite(str(tmp), bgr):
                raise UserError(f"{final}: could not write the frame")
            os.replace(tmp, final)
            written += 1
    return written
