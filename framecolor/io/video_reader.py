"""Reading video: :class:`VideoReader` decodes (threaded) into :class:`~framecolor.io.frame.Frame` objects
that keep the source's presentation timestamps.

Pixel conventions: ``Frame.image`` is (H, W, 3) RGB; uint8 for 8-bit sources, uint16 on the whole 16-bit
scale (0..65535) for deeper video (decoded as rgb48). The pixels are the stored (unrotated) picture:
rotation is metadata, copied by the writer, not applied. With ``luma_only`` a black-and-white frame is a 2-D
gray image read straight from its Y plane.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import MediaError, UserError
from .container import av_message, open_input, probe_video, yuv_matrix, yuv_range
from .frame import Frame
from .paths import parse_position


_PLANAR_GRAYISH = re.compile(r"^(?:yuvj?4[024][024]p|gray)(?:\d+le)?$")


class _LumaPath:
    """Gray frames straight from the Y plane, for frames whose chroma is neutral.

    A table maps each Y code to the gray value the RGB path gives for it (R = G = B). The table is
    made by the reader's own YUV -> RGB conversion (same swscale call, matrix and range) on a frame
    holding every Y code with neutral chroma, so the two paths agree exactly wherever the chroma is
    neutral.  A frame whose chroma planes stray more than ``tolerance`` 8-bit codes from neutral (a
    colour frame) is not taken: the reader converts it to RGB as usual.
    """

    def __init__(self, table: np.ndarray, bits: int, planes: int, tolerance: int):
        self.table = table
        self.dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
        self.planes = planes
        mid = 1 << (bits - 1)
        slack = tolerance << (bits - 8) if bits > 8 else tolerance
        self.low, self.high = mid - slack, mid + slack

    @staticmethod
    def build(frame, to_rgb, tolerance: int = 1) -> "_LumaPath | None":
        """The path for this frame's pixel format, or None where it does not apply."""
        fmt = frame.format
        if not _PLANAR_GRAYISH.match(fmt.name) or len(fmt.components) not in (1, 3):
            return None
        bits = fmt.components[0].bits
        if not 8 <= bits <= 16:
            return None
        codes = 1 << bits
        width = frame.width  # the same width as the video: swscale picks its code path by size
        rows = max(2, -(-codes // width))
        rows += rows % 2
        probe = av.VideoFrame(width, rows, fmt.name)
        dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
        values = (np.arange(rows * width) % codes).astype(dtype).reshape(rows, width)
        for i, plane in enumerate(probe.planes):
            view = _plane_array(plane, dtype)
            view[:] = values if i == 0 else (1 << (bits - 1))
        try:
            rgb = to_rgb(probe)
        except MediaError:
            return None
        if rgb.ndim != 3 or not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
            return None  # neutral chroma is not gray under this conversion: keep the RGB path
        table = np.zeros(codes, rgb.dtype)
        table[values.ravel()] = rgb[..., 1].ravel()
        if not np.array_equal(table[values], rgb[..., 1]):  # each code must always give the same gray
            return None
        return _LumaPath(table, bits, len(fmt.components), tolerance)

    def gray(self, frame) -> np.ndarray | None:
        for plane in frame.planes[1:3] if self.planes == 3 else ():
            low, high, _, _ = cv2.minMaxLoc(_plane_array(plane, self.dtype))
            if low < self.low or high > self.high:
                return None
        y = _plane_array(frame.planes[0], self.dtype)
        return cv2.LUT(y, self.table) if self.dtype == np.uint8 else self.table[y]


def _plane_array(plane, dtype: np.dtype) -> np.ndarray:
    """A frame plane as a (height, width) array view (the padding at each line's end left out)."""
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, : plane.width]


class VideoReader:
    """Decode a video file into :class:`Frame` objects (RGB), threaded, streaming.

    ``start``/``end``: a frame number (int) or a time in seconds (float) from the start of the video
    stream, or a string for :func:`parse_position`. Yields frames with ``start <= position < end``,
    every ``every``-th from the first selected. Frames before ``start`` are decoded (to count them
    exactly) but not converted.

    A decoding error raises MediaError naming the frame number. When the file ends early (it
    stops well short of the frame count or duration its container states, as a file cut in half
    does), MediaError says so after the last good frame.

    ``luma_only=True`` is for consumers that need only the luminance (the colouriser): a frame whose
    chroma planes are neutral (a gray or black-and-white source stored as YUV, or a gray pixel
    format) is yielded as a 2-D gray image (H, W), same dtype and values as each channel of the RGB
    path would give, read straight from the Y plane through a table (no YUV -> RGB conversion).
    Frames with colour are still converted to RGB, so the luminance is always the RGB path's.
    """

    kind = "video"

    def __init__(self, path, start=None, end=None, every=1, threads=True, luma_only=False):
        self.path = Path(path)
        self.start = parse_position(start) if start is not None else None
        self.end = parse_position(end) if end is not None else None
        if not isinstance(every, int) or every < 1:
            raise UserError(f"--every must be a positive whole number, not {every!r}")
        self.every = every
        if self.start is not None and self.end is not None and type(self.start) is type(self.end):
            if self.end <= self.start:
                raise UserError(f"end ({self.end}) must come after start ({self.start})")
        self.info = probe_video(self.path)
        self.threads = threads
        self.luma_only = luma_only
        self._luma_paths: dict[str, _LumaPath | None] = {}
        self._container = None
        self.frames_decoded = 0
        self.frames_yielded = 0
        self.frames_luma = 0  # frames that took the luma-only path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def estimated_count(self) -> int | None:
        """About how many frames iteration yields (for progress bars); None when unknown."""
        total = self.info.frame_count
        rate = float(self.info.average_rate) if self.info.average_rate else None

        def position(p, default):
            if p is None:
                return default
            if isinstance(p, int):
                return p
            return None if rate is None else int(math.ceil(p * rate - 1e-6))

        first = position(self.start, 0)
        last = position(self.end, total)
        if first is None or last is None:
            return None
        if total is not None:
            last = min(last, total)
        return max(0, -(-(last - first) // self.every))

    def count_frames(self) -> int | None:
        """How many frames iteration yields: exact from the container's frame count, else by reading the
        video packets (no decoding), which is right also for variable frame rate, where duration x average
        rate is not; None when even that fails."""
        info = self.info
        if info.frame_count_exact and not isinstance(self.start, float) and not isinstance(self.end, float):
            return self.estimated_count()
        try:
            container = open_input(self.path)
        except UserError:
            return None
        times = []
        try:
            with container:
                vs = container.streams[info.stream_index]
                for packet in container.demux(vs):
                    ts = packet.pts if packet.pts is not None else packet.dts
                    if ts is None:
                        continue  # the demuxer's end-of-stream packet
                    times.append(float(ts * info.time_base) - (info.start_time or 0.0))
        except av.FFmpegError:
            return None
        times.sort()
        keep = [i for i, t in enumerate(times)
                if self._position_ok_start(i, t) and not self._past_end(i, t)]
        return -(-len(keep) // self.every)

    @property
    def rgb_format(self) -> str:
        return "rgb48le" if self.info.bit_depth > 8 else "rgb24"

    def _position_ok_start(self, index: int, t: float) -> bool:
        if self.start is None:
            return True
        return index >= self.start if isinstance(self.start, int) else t >= self.start - 1e-9

    def _past_end(self, index: int, t: float) -> bool:
        if self.end is None:
            return False
        return index >= self.end if isinstance(self.end, int) else t >= self.end - 1e-9

    def __iter__(self) -> Iterator[Frame]:
        info = self.info
        self._container = container = open_input(self.path)
        vs = container.streams[info.stream_index]
        if self.threads is True:
            vs.thread_type = "AUTO"
        elif isinstance(self.threads, int) and self.threads > 1:
            vs.thread_type = "AUTO"
            vs.thread_count = self.threads
        tb = info.time_base
        t0 = info.start_time or 0.0
        step = (1 / info.average_rate / tb) if info.average_rate else None
        matrix, yrange, fmt = yuv_matrix(info), yuv_range(info), self.rgb_format
        index = 0
        first_selected = None
        last_pts = None
        reached_end = False
        frames = container.decode(vs)
        try:
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except av.FFmpegError as e:
                    raise MediaError(
                        f"{self.path}: decoding failed at frame {index} ({av_message(e)})"
                    ) from None
                pts = frame.pts
                if pts is None:  # rare (some AVI/raw streams): continue the previous frame's clock
                    pts = 0 if last_pts is None else last_pts + int(round(step or 1))
                last_pts = pts
                t = float(pts * tb) - t0
                if self._past_end(index, t):
                    reached_end = True
                    break
                if self._position_ok_start(index, t):
                    if first_selected is None:
                        first_selected = index
                    if (index - first_selected) % self.every == 0:
                        image = self._to_gray(frame, fmt, matrix, yrange) if self.luma_only else None
                        if image is None:
                            image = self._to_rgb(frame, fmt, matrix, yrange, index)
                        else:
                            self.frames_luma += 1
                        self.frames_yielded += 1
                        yield Frame(index=index, image=image, pts=pts, time_base=tb)
                index += 1
                self.frames_decoded = index
        finally:
            self.close()
        if not reached_end:
            self._check_complete(index, last_pts)

    def _to_rgb(self, frame, fmt, matrix, yrange, index, check_size=True) -> np.ndarray:
        try:
            if frame.format.name in ("rgb24", "rgb48le"):
                arr = frame.to_ndarray(format=fmt)
            elif frame.format.is_rgb:
                arr = frame.to_ndarray(format=fmt)
            else:
                arr = frame.to_ndarray(format=fmt, src_colorspace=matrix, src_color_range=yrange)
        except (av.FFmpegError, ValueError) as e:
            raise MediaError(f"{self.path}: cannot convert frame {index} to RGB ({e})") from None
        if check_size and arr.shape[:2] != (self.info.height, self.info.width):
            raise MediaError(
                f"{self.path}: frame {index} is {arr.shape[1]}x{arr.shape[0]}, the video is "
                f"{self.info.width}x{self.info.height} (size changes mid-stream are not supported)"
            )
        return np.ascontiguousarray(arr)

    def _to_gray(self, frame, fmt, matrix, yrange) -> np.ndarray | None:
        """The gray image of a frame with neutral chroma, from its Y plane; None for any other frame."""
        name = frame.format.name
        if name not in self._luma_paths:
            self._luma_paths[name] = _LumaPath.build(
                frame, lambda f: self._to_rgb(f, fmt, matrix, yrange, -1, check_size=False))
        path = self._luma_paths[name]
        if path is None or (frame.width, frame.height) != (self.info.width, self.info.height):
            return None
        return path.gray(frame)

    def _stopped_early(self, decoded: int, expected_text: str) -> MediaError:
        """The error for a stream that stopped short: a truncated file (the data ends) or a corrupt one (the
        demuxer gave up with much of the file unread, as Matroska does on damaged clusters)."""
        unread = self._unread_tail()
        if unread is not None:
            end, size = unread
            return MediaError(f"{self.path}: decoding failed at frame {decoded} of {expected_text}: the data "
                              f"after byte {end} of {size} cannot be read (corrupt file)")
        return MediaError(f"{self.path}: stream ends early at frame {decoded} of {expected_text} "
                          "(truncated file?)")

    def _unread_tail(self) -> tuple[int, int] | None:
        """(end of the last readable video packet, file size) when much of the file lies after it."""
        try:
            size = self.path.stat().st_size
            end = 0
            with av.open(str(self.path), metadata_errors="replace") as c:
                for packet in c.demux(c.streams[self.info.stream_index]):
                    if packet.pos is not None and packet.pos >= 0:
                        end = max(end, packet.pos + packet.size)
        except (OSError, av.FFmpegError):
            return None
        # a complete file ends with an index and tags (a few KB); a truncated one with at most a partial packet
        if end and size - end > max(4096, 0.02 * size):
            return end, size
        return None

    def _check_complete(self, decoded: int, last_pts: int | None) -> None:
        """Raise when the stream visibly stopped early (a truncated file decodes without error)."""
        info = self.info
        if info.frame_count_exact and info.frame_count:
            expected = info.frame_count
            if expected - decoded > max(2, 0.01 * expected):
                raise self._stopped_early(decoded, str(expected))
            return
        if info.duration is None or last_pts is None or not info.average_rate:
            return
        frame_dur = float(1 / info.average_rate)
        end_reached = float(last_pts * info.time_base) - (info.start_time or 0.0) + frame_dur
        missing = info.duration - end_reached
        # The container's duration spans all streams (audio may outlast video): trust it less.
        tolerance = max(2 * frame_dur, 0.02 * info.duration)
        if info.duration_source == "container":
            tolerance = max(2.0, 0.1 * info.duration)
        if missing > tolerance:
            expected = info.frame_count or int(round(info.duration / frame_dur))
            raise self._stopped_early(decoded, f"about {expected}")
