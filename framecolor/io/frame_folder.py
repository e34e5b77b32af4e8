"""Frame folders: :class:`FrameFolderReader` / :class:`FrameFolderWriter` (PNG, JPEG, TIFF, BMP; 8 or 16 bit),
natural sort order, file names mirrored, each file written to a temporary name and renamed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from .frame import Frame, VideoInfo
from .images import encode_image, image_header, read_image
from .paths import IMAGE_EXTENSIONS, TMP_MARK, natural_sort_key, parse_position


def list_frames(path: Path) -> list[str]:
    names = [
        e.name
        for e in os.scandir(path)
        if e.is_file() and not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
    ]
    names.sort(key=natural_sort_key)
    return names


class FrameFolderReader:
    """The images of a folder as :class:`Frame` objects, in natural sort order.

    Sizes and bit depths are checked on every file up front from headers (cheap), so that a folder
    with mixed sizes is refused before any output is written. ``start``/``end`` are positions in the
    sorted list; ``every`` keeps every N-th from ``start``.
    """

    kind = "folder"

    def __init__(self, path, start=None, end=None, every=1):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such file or folder")
        if not self.path.is_dir():
            raise UserError(f"{self.path}: not a folder")
        try:
            self.names = list_frames(self.path)
        except PermissionError:
            raise UserError(f"{self.path}: folder is not readable (permission denied)") from None
        if not self.names:
            raise UserError(f"{self.path}: folder holds no frames (png, jpg, tif, bmp)")
        start = parse_position(start) if isinstance(start, str) else start
        end = parse_position(end) if isinstance(end, str) else end
        for name, value in (("start", start), ("end", end)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise UserError(f"{name} for a frame folder must be a frame position (whole number), "
                                f"not {value!r}")  # fmt: skip
        if not isinstance(every, int) or every < 1:
            raise UserError(f"--every must be a positive whole number, not {every!r}")
        self.start, self.end, self.every = start, end, every
        first = read_image(self.path / self.names[0])
        self.height, self.width = first.shape[:2]
        self.bit_depth = 16 if first.dtype == np.uint16 else 8
        self._check_sizes()

    def _check_sizes(self) -> None:
        for name in self.names[1:]:
            header = image_header(self.path / name)
            if header is None:
                img = read_image(self.path / name)
                w, h, depth = img.shape[1], img.shape[0], 16 if img.dtype == np.uint16 else 8
            else:
                w, h, depth = header
            if (w, h) != (self.width, self.height):
                raise UserError(f"{self.path / name}: frame is {w}x{h}, the first frame "
                                f"({self.names[0]}) is {self.width}x{self.height}")  # fmt: skip
            if depth != self.bit_depth:
                raise UserError(f"{self.path / name}: {depth}-bit frame in a folder of "
                                f"{self.bit_depth}-bit frames")  # fmt: skip

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        """Nothing held open between frames (as a video reader's container is): here for a uniform reader."""

    def selected(self) -> list[int]:
        """Positions (in natural order) of the frames this reader yields."""
        return list(range(len(self.names)))[self.start : self.end : self.every]

    def __len__(self) -> int:
        return len(self.selected())

    def video_info(self, fps) -> VideoInfo:
        """The frames written as a video: a :class:`VideoInfo` at ``fps`` frames per second, from time 0."""
        fps = Fraction(fps)
        n = len(self)
        return VideoInfo(path=self.path, format_name="image2", codec_name="image", width=self.width,
                         height=self.height, pix_fmt="rgb48le" if self.bit_depth > 8 else "rgb24",
                         bit_depth=self.bit_depth, time_base=1 / fps, average_rate=fps, frame_count=n,
                         duration=float(n / fps), sample_aspect_ratio=None, rotation=0, audio_streams=0,
                         subtitle_streams=0, frame_count_exact=True, start_time=0.0)

    def __iter__(self) -> Iterator[Frame]:
        for i in self.selected():
            name = self.names[i]
            img = read_image(self.path / name)
            if img.shape[:2] != (self.height, self.width):  # changed since the header check
                raise UserError(f"{self.path / name}: frame is {img.shape[1]}x{img.shape[0]}, "
                                f"expected {self.width}x{self.height}")  # fmt: skip
            if (img.dtype == np.uint16) != (self.bit_depth == 16):
                raise UserError(f"{self.path / name}: bit depth differs from the first frame")
            yield Frame(index=i, image=img, name=name)


class FrameFolderWriter:
    """Writes frames into a folder under their own names; each file appears complete (temp + rename).

    16-bit frames stay 16-bit in PNG and TIFF; JPEG and BMP are 8-bit.
    """

    def __init__(self, path, overwrite=False, skip_existing=False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.skip_existing = skip_existing
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: exists and is not a folder")
        if self.path.is_dir():
            try:
                busy = any(True for _ in os.scandir(self.path))
            except PermissionError:
                raise UserError(f"{self.path}: output folder is not readable") from None
            if busy and not (overwrite or skip_existing):
                raise UserError(f"{self.path}: output folder exists and is not empty "
                                "(use --overwrite or --skip-existing)")  # fmt: skip
        else:
            try:
                self.path.mkdir(parents=True)
            except OSError as e:
                raise UserError(f"{self.path}: cannot create output folder ({e.strerror})") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise UserError(f"{self.path}: output folder is not writable")
        self.written = 0
        self.skipped = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def exists(self, name) -> bool:
        return (self.path / name).is_file()

    def write(self, frame: Frame) -> None:
        if not frame.name:
            raise UserError(f"frame {frame.index}: has no file name for a folder output")
        final = self.path / frame.name
        if self.skip_existing and final.exists():
            self.skipped += 1
            return
        data = encode_image(frame, final.suffix.lower())
        tmp = self.path / f".{final.name}{TMP_MARK}-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, final)
        except OSError as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise UserError(f"{final}: cannot write ({e.strerror})") from None
        self.written += 1

    def abort(self) -> None:
        """Stop writing (frames already written stay: each is complete); stray temporaries are removed."""
        self.close()

    def close(self) -> None:
        """Nothing buffered: every file was complete when written. Removes stray temporaries."""
        for e in os.scandir(self.path):
            if e.name.startswith(".") and f"{TMP_MARK}-{os.getpid()}" in e.name:
                try:
                    os.unlink(e.path)
                except OSError:
                    pass
