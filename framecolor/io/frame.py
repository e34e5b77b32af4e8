"""The two records that travel between readers, the colouring stream and writers."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np


@dataclass
class Frame:
    """One picture on its way through the pipeline."""

    index: int  # frame number in the source (0-based over all decoded frames, before --every/--start)
    image: np.ndarray  # (H, W, 3) RGB, uint8 or uint16 (full 16-bit scale)
    pts: int | None = None  # presentation timestamp in time_base units (video); None for images
    time_base: Fraction | None = None
    name: str | None = None  # file name for frame folders

    @property
    def time(self) -> float | None:
        """Presentation time in seconds on the source's timeline, or None."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)


@dataclass
class VideoInfo:
    path: Path
    format_name: str
    codec_name: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    time_base: Fraction
    average_rate: Fraction | None
    frame_count: int | None  # exact when frame_count_exact, else an estimate from duration x rate
    duration: float | None  # seconds
    sample_aspect_ratio: Fraction | None
    rotation: int  # degrees counter-clockwise, from the display matrix
    audio_streams: int
    subtitle_streams: int
    # Extra details the writer needs to reproduce the picture faithfully.
    frame_count_exact: bool = False
    duration_source: str | None = None  # "stream", "tag" or "container": how much to trust duration
    start_time: float | None = None  # seconds: presentation time of the video stream's start
    display_matrix: tuple[int, ...] | None = None  # 9 int32 (FFmpeg layout), rotation and flips
    colorspace: int = 2  # AVColorSpace of the source (2: unspecified)
    color_range: int = 0  # AVColorRange (0 unspecified, 1 limited, 2 full)
    color_primaries: int = 2
    color_trc: int = 2
    stream_index: int = 0
    attachments: int = 0  # Matroska attachments (fonts for ASS subtitles)

    @property
    def display_aspect_ratio(self) -> Fraction:
        sar = self.sample_aspect_ratio or Fraction(1)
        return Fraction(self.width, self.height) * sar
