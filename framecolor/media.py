"""Media in and out: video files through PyAV, folders of still frames through OpenCV.

Video: :class:`VideoReader` decodes (threaded) into RGB :class:`Frame` objects that keep the source's
presentation timestamps; :class:`VideoWriter` encodes them back with the same timestamps, size, aspect
ratio and rotation, and copies the source's audio and subtitle packets unchanged, interleaved with the
video in one pass (a second demuxer on the source is advanced as video time advances, so nothing is held
whole in memory). Output appears only complete: it is written under a temporary name beside the target
and renamed at the end.

Frame folders: :class:`FrameFolderReader` / :class:`FrameFolderWriter` (PNG, JPEG, TIFF, BMP; 8 or 16
bit), natural sort order, file names mirrored, each file written to a temporary name and renamed.

Pixel conventions: ``Frame.image`` is (H, W, 3) RGB. uint8 for 8-bit sources; uint16 using the whole
16-bit scale (0..65535) for >8-bit video (decoded as rgb48) and 16-bit images. The pixels are the stored
(unrotated) picture: rotation is metadata and is copied, not applied.

This module imports ``av`` and ``cv2`` at the top: import it lazily from code that must stay light.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from framecolor.errors import MediaError, StorageError, UserError

log = logging.getLogger("framecolor")

VIDEO_EXTENSIONS = {
    ".mkv", ".mp4", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts", ".mxf",
    ".wmv", ".flv", ".ogv", ".3gp", ".vob", ".y4m", ".dv", ".gif",
}  # fmt: skip
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}

TMP_MARK = ".framecolor-tmp"

VIDEO_CODECS = ("libx264", "libx265", "ffv1", "prores_ks")
# x264's own default ("medium") spent a third of the CPU of a 1080p frame on 2 cores; at CRF 18 "faster"
# took 45% less CPU for 1.4% more bytes on bigbuckbunny at 1080p (benchmarks/RESULTS.md, issue 7).
DEFAULT_PRESETS = {"libx264": "faster"}


# --------------------------------------------------------------------------------------------------
# Small helpers


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


def is_frame_folder(path) -> bool:
    """A directory is read as a folder of frames (whether it holds any is checked by the reader)."""
    return Path(path).is_dir()


def is_video_path(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def default_output_path(input_path, output_dir=None) -> Path:
    """``NAME.color.mkv`` for a video, ``NAME_color/`` for a frame folder, beside the input or in
    ``output_dir``."""
    p = Path(input_path)
    parent = Path(output_dir) if output_dir is not None else p.parent
    if p.is_dir():
        name = p.resolve().name if p.name in ("", ".", "..") else p.name
        return parent / f"{name}_color"
    return parent / f"{p.stem}.color.mkv"


def _av_message(exc: BaseException) -> str:
    """The useful part of a PyAV error (strerror without the errno noise)."""
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).strip().rstrip(".")


def _check_input_file(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: not readable (permission denied)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _tmp_path(final: Path) -> Path:
    """Hidden temporary name beside ``final`` that keeps its extension (the muxer is chosen by it)."""
    return final.with_name(f".{final.stem}{TMP_MARK}-{os.getpid()}{final.suffix}")


# --------------------------------------------------------------------------------------------------
# Data types


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


# --------------------------------------------------------------------------------------------------
# Probing


def _open_input(path: Path):
    _check_input_file(path)
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as e:
        if _looks_like_isobmff(path):
            raise MediaError(f"{path}: an MP4/MOV file without its index (moov box): probably truncated (an "
                             f"interrupted download, copy or recording) ({_av_message(e)})") from None
        raise MediaError(f"{path}: not a media file or unreadable ({_av_message(e)})") from None


def _looks_like_isobmff(path: Path) -> bool:
    """An MP4/MOV/3GP file starts with a box header: 4 bytes of size, then a type such as 'ftyp'."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"mdat", b"wide", b"free", b"skip", b"moov")


def _video_stream(container, path: Path):
    for s in container.streams.video:
        if not (s.disposition & av.stream.Disposition.attached_pic):
            return s
    raise MediaError(f"{path}: has no video stream")


def _parse_tag_duration(text: str | None) -> float | None:
    """Matroska per-track DURATION tag, e.g. ``00:00:01.600000000``."""
    if not text:
        return None
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _bit_depth(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError):
        return 8
    comps = fmt.components
    return max((c.bits for c in comps), default=8) if comps else 8


def _first_frame(container, stream, path: Path):
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as e:
        raise MediaError(f"{path}: cannot decode the first frame ({_av_message(e)})") from None
    raise MediaError(f"{path}: the video stream holds no frames")


def probe_video(path) -> VideoInfo:
    """Describe a video file (decodes its first frame to learn rotation and pixel format).

    Raises UserError for a missing path, MediaError for a file that is not media, has no video
    stream, or whose first frame cannot be decoded.
    """
    path = Path(path)
    container = _open_input(path)
    with container:
        vs = _video_stream(container, path)
        first = _first_frame(container, vs, path)
        tb = vs.time_base or Fraction(1, 90000)
        rate = vs.average_rate or vs.guessed_rate or None
        if rate is not None and rate <= 0:
            rate = None

        duration, duration_source = None, None
        if vs.duration:
            duration, duration_source = float(vs.duration * tb), "stream"
        elif (d := _parse_tag_duration(vs.metadata.get("DURATION"))) is not None:
            duration, duration_source = d, "tag"
        elif container.duration:
            duration, duration_source = container.duration / av.time_base, "container"

        frame_count, exact = None, False
        if vs.frames and vs.frames > 0:
            frame_count, exact = int(vs.frames), True
        elif duration is not None and rate is not None:
            frame_count = int(round(duration * float(rate)))

        matrix = None
        try:
            sd = first.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
        except (KeyError, AttributeError, ValueError):
            sd = None
        if sd is not None:
            raw = bytes(sd)
            if len(raw) == 36:
                matrix = struct.unpack("<9i" if np.little_endian else ">9i", raw)
        sar = vs.sample_aspect_ratio
        if not sar or sar <= 0:
            sar = None
        pix_fmt = first.format.name
        start_time = float(vs.start_time * tb) if vs.start_time is not None else None
        return VideoInfo(
            path=path,
            format_name=container.format.name,
            codec_name=vs.codec_context.name,
            width=first.width,
            height=first.height,
            pix_fmt=pix_fmt,
            bit_depth=_bit_depth(pix_fmt),
            time_base=tb,
            average_rate=rate,
            frame_count=frame_count,
            duration=duration,
            sample_aspect_ratio=sar,
            rotation=int(first.rotation) if matrix is not None else 0,
            audio_streams=len(container.streams.audio),
            subtitle_streams=len(container.streams.subtitles),
            frame_count_exact=exact,
            duration_source=duration_source,
            start_time=start_time,
            display_matrix=tuple(matrix) if matrix is not None else None,
            colorspace=int(first.colorspace),
            color_range=int(first.color_range),
            color_primaries=int(first.color_primaries),
            color_trc=int(first.color_trc),
            stream_index=vs.index,
            attachments=sum(1 for s in container.streams if s.type == "attachment"),
        )


# AVColorSpace -> the swscale matrix that decodes it (FFmpeg's SWS_CS_* numbering).
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def _yuv_matrix(info: VideoInfo) -> int:
    """The YUV<->RGB matrix used both to decode and to encode, so that a round trip is consistent.

    The source's tag when it has one; otherwise what players assume: BT.709 from 720 lines up,
    BT.601 below.
    """
    if info.colorspace in _SWS_MATRIX:
        return _SWS_MATRIX[info.colorspace]
    return 1 if info.height >= 720 else 5


def _yuv_range(info: VideoInfo) -> int:
    """The source's range tag; untagged: full for yuvj and gray (scans, FFV1 archives), else limited."""
    if info.color_range in (1, 2):
        return info.color_range
    return 2 if info.pix_fmt.startswith(("yuvj", "gray")) else 1


# --------------------------------------------------------------------------------------------------
# Reading video


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
            container = _open_input(self.path)
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
        self._container = container = _open_input(self.path)
        vs = container.streams[info.stream_index]
        if self.threads is True:
            vs.thread_type = "AUTO"
        elif isinstance(self.threads, int) and self.threads > 1:
            vs.thread_type = "AUTO"
            vs.thread_count = self.threads
        tb = info.time_base
        t0 = info.start_time or 0.0
        step = (1 / info.average_rate / tb) if info.average_rate else None
        matrix, yrange, fmt = _yuv_matrix(info), _yuv_range(info), self.rgb_format
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
                        f"{self.path}: decoding failed at frame {index} ({_av_message(e)})"
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


# --------------------------------------------------------------------------------------------------
# Writing video


def _container_codecs(path: Path) -> set[str] | None:
    """Codecs the output container takes, or None when FFmpeg cannot say for this muxer."""
    try:
        probe = av.open(os.devnull, "w", format=_format_for(path))
    except (av.FFmpegError, ValueError) as e:
        raise UserError(f"{path}: cannot write this container ({_av_message(e)})") from None
    try:
        codecs = probe.supported_codecs
    finally:
        probe.close()
    return codecs or None


_FORMAT_BY_EXT = {".mkv": "matroska", ".webm": "webm", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov",
                  ".avi": "avi", ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts", ".mxf": "mxf",
                  ".mpg": "mpeg", ".mpeg": "mpeg", ".flv": "flv", ".ogv": "ogg", ".3gp": "3gp",
                  ".wmv": "asf", ".vob": "vob", ".y4m": "yuv4mpegpipe", ".dv": "dv", ".gif": "gif"}  # fmt: skip


def check_video_output(path: Path, codec: str) -> set[str] | None:
    """Refuse, before any work, a video output that cannot be written: a folder's name, a container
    FFmpeg cannot write, or one that cannot hold ``codec``. Returns the container's codecs (None: unknown)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name for the video output")
    if not path.suffix:
        raise UserError(f"{path}: not a video file name (.mkv, .mp4, .mov...); end it with / to mean a folder")
    if codec not in av.codecs_available:
        raise UserError(f"video codec {codec!r} is not available in this PyAV build")
    codecs = _container_codecs(path)
    if codecs is not None and codec not in codecs:
        raise UserError(f"{path}: the {path.suffix} container cannot hold {codec} video")
    return codecs


def _format_for(path: Path) -> str | None:
    return _FORMAT_BY_EXT.get(path.suffix.lower())


def _subsamples(pix_fmt: str) -> tuple[bool, bool]:
    """(horizontal, vertical) chroma subsampling of a pixel format."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or len(fmt.components) < 3:
        return False, False
    return fmt.chroma_width(2) < 2, fmt.chroma_height(2) < 2


def choose_pix_fmt(codec: str, bit_depth: int, width: int, height: int) -> str:
    """Default pixel format for an encoder, given the source's depth and size.

    8-bit: yuv420p, or yuv444p when a side is odd (x264/x265 refuse 4:2:0 at odd sizes; 4:4:4 keeps
    the exact size without cropping, at the cost of needing a High 4:4:4 capable player).
    >8-bit: yuv420p10le / yuv444p10le. FFV1: lossless RGB (bgr0, gbrp10le/12le/16le). ProRes:
    yuv422p10le (4:2:2 HQ), yuv444p10le (4444) when the width is odd.
    """
    odd_w, odd_h = width % 2 == 1, height % 2 == 1
    deep = bit_depth > 8
    if codec == "ffv1":
        if not deep:
            return "bgr0"
        return "gbrp10le" if bit_depth <= 10 else "gbrp12le" if bit_depth <= 12 else "gbrp16le"
    if codec == "prores_ks":
        return "yuv444p10le" if odd_w else "yuv422p10le"
    if codec in ("libx264", "libx265"):
        if deep:
            return "yuv444p10le" if (odd_w or odd_h) else "yuv420p10le"
        return "yuv444p" if (odd_w or odd_h) else "yuv420p"
    # Any other encoder: its first format that keeps the size and, where possible, the depth.
    try:
        formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
    except (av.FFmpegError, ValueError):
        raise UserError(f"unknown video codec {codec!r}") from None
    prefs = ["yuv420p10le", "yuv444p10le"] if deep else []
    prefs += ["yuv420p", "yuv444p", "yuv422p", "gbrp", "bgr0", "rgb24"]
    for name in prefs + formats:
        if name in formats:
            h, v = _subsamples(name)
            if not ((h and odd_w) or (v and odd_h)):
                return name
    raise UserError(f"codec {codec} has no pixel format for a {width}x{height} picture")


def _transcode_target(codecs: set[str] | None) -> str | None:
    if codecs is None or "aac" in codecs:
        return "aac"
    for name in ("libopus", "opus", "flac", "pcm_s16le", "libvorbis", "mp3", "libmp3lame"):
        if name in codecs and name in av.codecs_available:
            return name
    return None


def _muxer_takes(fmt: str | None, stream, path: Path | None = None) -> bool:
    """Whether the muxer accepts a copy of ``stream``: a whole file written to memory tells for sure, with
    the stream's first packet when ``path`` (the source) is given. FFmpeg's codec query says yes to FLAC in
    MOV, whose header writer then refuses it, and to stereo PCM in MP4, which only the trailer refuses
    (after a whole episode was coloured)."""
    if fmt is None:
        return True
    try:
        packet = _first_packet(path, stream.index) if path is not None else None
        with av.open(io.BytesIO(), "w", format=fmt) as trial:
            copy = trial.add_stream_from_template(stream)
            trial.start_encoding()
            if packet is not None:
                packet.stream = copy
                trial.mux(packet)
        return True
    except (av.FFmpegError, ValueError):
        return False


def _first_packet(path: Path, index: int):
    """The first packet (with data) of stream ``index`` of a file, or None."""
    try:
        with av.open(str(path), metadata_errors="replace") as c:
            for packet in c.demux(c.streams[index]):
                if packet.size:
                    return packet
    except (av.FFmpegError, IndexError):
        return None
    return None


def _subtitle_target(codecs: set[str] | None) -> str | None:
    """Text subtitle codec to convert to when the container cannot take the source's."""
    for name in ("mov_text", "subrip", "webvtt", "ass"):
        if codecs and name in codecs:
            return name
    return None


_STANDARD_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}


def _raise_if_storage(exc: BaseException, what: str) -> None:
    """A write refused by the system (full disk, quota, I/O error) is not a media problem: StorageError."""
    import errno

    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS):
        raise StorageError(f"{what}: {_av_message(exc)}") from None


class _SideStreams:
    """Audio and subtitle streams of the source, copied packet for packet into the output.

    A second demuxer on the source is read only as far as the video written so far, so that packets
    are interleaved in one pass and memory stays flat. Streams the output container cannot take are
    transcoded (audio: AAC, or the container's own audio codec) or dropped (subtitles), with a warning.
    """

    def __init__(self, source: VideoInfo, output, out_path: Path, codecs: set[str] | None,
                 start_time: float | None, end_time: float | None):  # fmt: skip
        self.out = output
        self.out_path = out_path
        self.start_time = start_time
        self.end_time = end_time
        self.input = _open_input(source.path)
        self.routes: dict[int, tuple] = {}
        for s in self.input.streams:
            if s.type == "attachment":
                self._copy_attachment(s, out_path)
                continue
            if s.type not in ("audio", "subtitle"):
                continue
            name = s.codec_context.name if s.codec_context is not None else None
            label = f"{s.type} stream #{s.index} ({name})"
            if (codecs is None or name in codecs) and _muxer_takes(_format_for(out_path), s, source.path):
                try:
                    self.routes[s.index] = ("copy", s, output.add_stream_from_template(s))
                    continue
                except (av.FFmpegError, ValueError) as e:
                    log.warning("%s: cannot copy %s (%s)", out_path, label, _av_message(e))
            if s.type == "audio":
                target = _transcode_target(codecs)
                if target is None:
                    log.warning("%s: %s dropped: the container takes no audio codec we can encode",
                                out_path, label)  # fmt: skip
                    continue
                log.warning("%s: the %s container cannot hold %s audio: transcoding %s to %s",
                            out_path, out_path.suffix, name, label, target)  # fmt: skip
                self.routes[s.index] = ("transcode", s, self._audio_encoder(s, target))
            elif name in _TEXT_SUBTITLES and (target := _subtitle_target(codecs)) is not None:
                log.warning("%s: the %s container cannot hold %s subtitles: %s converted to %s",
                            out_path, out_path.suffix, name, label, target)  # fmt: skip
                enc = output.add_stream(target)
                enc.time_base = s.time_base
                s.codec_context.open()  # the text decoder builds the ASS header the encoder needs
                enc.codec_context.subtitle_header = s.codec_context.subtitle_header
                if s.language:
                    enc.metadata["language"] = s.language
                self.routes[s.index] = ("subtitle", s, enc)
            else:
                log.warning("%s: the %s container cannot hold %s subtitles: %s dropped",
                            out_path, out_path.suffix, name, label)  # fmt: skip
        self._packets = None
        if self.routes:
            wanted = [r[1] for r in self.routes.values()]
            self._packets = self.input.demux(wanted)
        self._pending = None
        self._done = not self.routes

    def _copy_attachment(self, s, out_path: Path) -> None:
        """Attachments (fonts that ASS subtitles are drawn with) go along where the container has them."""
        if _format_for(out_path) != "matroska":
            log.warning("%s: attachment %s dropped (only Matroska holds attachments)",
                        out_path, s.metadata.get("filename"))  # fmt: skip
            return
        name = s.metadata.get("filename") or f"attachment{s.index}"
        mimetype = s.metadata.get("mimetype") or "application/octet-stream"
        self.out.add_attachment(name, mimetype, s.data)

    def _audio_encoder(self, s, target: str):
        ctx = s.codec_context
        rate = ctx.sample_rate or 48000
        rates = av.Codec(target, "w").audio_rates
        if rates and rate not in rates:  # e.g. Opus: 48 kHz, never 44.1
            rate = min(rates, key=lambda r: (r < rate, abs(r - rate)))
        channels = ctx.layout.nb_channels if ctx.layout is not None else 0
        # The standard layout for the channel count: a source may have an unordered one ("1 channels").
        layout = _STANDARD_LAYOUTS.get(channels, "stereo")
        enc = self.out.add_stream(target, rate=rate, layout=layout)
        if s.language:
            enc.metadata["language"] = s.language
        fmt = enc.codec_context.codec.audio_formats
        resampler = av.AudioResampler(format=fmt[0].name if fmt else "fltp", layout=layout, rate=rate)
        return enc, resampler

    @property
    def empty(self) -> bool:
        return not self.routes

    def _next(self):
        if self._pending is not None:
            p, self._pending = self._pending, None
            return p
        if self._done:
            return None
        for packet in self._packets:
            if packet.dts is None and packet.pts is None:
                continue  # demuxer's end-of-stream flush packets
            return packet
        self._done = True
        return None

    @staticmethod
    def _time(packet) -> float:
        ts = packet.pts if packet.pts is not None else packet.dts
        return float(ts * packet.time_base)

    def _in_range(self, packet) -> bool:
        t = self._time(packet)
        dur = float(packet.duration * packet.time_base) if packet.duration else 0.0
        if self.start_time is not None and t + dur <= self.start_time:
            return False
        if self.end_time is not None and t >= self.end_time:
            return False
        return True

    def advance(self, until: float | None) -> None:
        """Mux every packet whose time is before ``until`` seconds (all when None)."""
        while True:
            try:
                packet = self._next()
            except av.FFmpegError as e:
                raise MediaError(f"{self.input.name}: reading audio/subtitle packets failed "
                                 f"({_av_message(e)})") from None  # fmt: skip
            if packet is None:
                return
            if until is not None and self._time(packet) > until:
                self._pending = packet
                return
            if self._in_range(packet):
                try:
                    self._mux(packet)
                except av.FFmpegError as e:
                    _raise_if_storage(e, f"{self.out_path}: writing {packet.stream.type} stream "
                                         f"#{packet.stream.index} failed")
                    raise MediaError(f"{self.out_path}: writing {packet.stream.type} stream "
                                     f"#{packet.stream.index} failed ({_av_message(e)})") from None  # fmt: skip

    def _mux(self, packet) -> None:
        route = self.routes.get(packet.stream.index)
        if route is None:
            return
        kind = route[0]
        if kind == "copy":
            packet.stream = route[2]
            self.out.mux(packet)
        elif kind == "transcode":
            (enc, resampler) = route[2]
            for frame in packet.decode():
                for rf in resampler.resample(frame):
                    self.out.mux(enc.encode(rf))
        elif kind == "subtitle":
            enc = route[2]
            subset = packet.stream.codec_context.decode2(packet)
            if subset is None or len(subset) == 0:  # e.g. the empty gap cues of mov_text
                return
            out_packet = enc.codec_context.encode_subtitle(subset)
            out_packet.pts = packet.pts
            out_packet.dts = packet.pts
            out_packet.duration = packet.duration
            out_packet.time_base = packet.time_base
            out_packet.stream = enc
            self.out.mux(out_packet)

    def finish(self) -> None:
        self.advance(None)
        for route in self.routes.values():
            if route[0] == "transcode":
                enc, resampler = route[2]
                for rf in resampler.resample(None):
                    self.out.mux(enc.encode(rf))
                self.out.mux(enc.encode(None))
        self.close()

    def close(self) -> None:
        if self.input is not None:
            self.input.close()
            self.input = None


class VideoWriter:
    """Encode RGB frames into a video file that mirrors its source.

    Same frame count and presentation timestamps (the source time base is asked of the muxer; where
    it imposes its own, e.g. Matroska's 1 ms, timestamps are rescaled), same size (odd sizes use
    4:4:4), same sample aspect ratio and display matrix (rotation). The source's audio and subtitle
    streams are copied packet for packet, interleaved with the video; ``start_time``/``end_time``
    (seconds from the start of the source's video stream, as VideoReader's ``start``/``end`` times)
    limit them to a range, and ``trim_side_streams=True`` limits them to the span of the frames
    actually written (exact, also for frame-number ranges and variable frame rate).

    The file is written as a hidden temporary beside the target and renamed by :meth:`close`;
    :meth:`abort` (called on any exception inside ``with``) removes it and never touches the target.
    """

    def __init__(self, path, source: VideoInfo, codec="libx264", crf=None, pix_fmt=None,
                 copy_streams=True, start_time=None, end_time=None, overwrite=False,
                 preset=None, options=None, trim_side_streams=False):  # fmt: skip
        self.path = Path(path)
        self.source = source
        if _same_file(self.path, source.path) or self.path.resolve() == Path(source.path).resolve():
            raise UserError(f"{self.path}: output path is the input file")
        if self.path.exists() and not overwrite and not self.path.is_dir():
            raise UserError(f"{self.path}: exists (use --overwrite to replace it)")
        parent = self.path.parent
        if not parent.exists():
            raise UserError(f"{parent}: output folder does not exist")
        if not os.access(parent, os.W_OK):
            raise UserError(f"{parent}: output folder is not writable")
        codecs = check_video_output(self.path, codec)

        width, height = source.width, source.height
        if pix_fmt is None:
            pix_fmt = choose_pix_fmt(codec, source.bit_depth, width, height)
        else:
            known = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
            if known and pix_fmt not in known:
                raise UserError(f"{codec} cannot encode pixel format {pix_fmt} "
                                f"(it takes: {', '.join(known)})")  # fmt: skip
            h, v = _subsamples(pix_fmt)
            if (h and width % 2) or (v and height % 2):
                raise UserError(f"pixel format {pix_fmt} needs even sizes; the video is "
                                f"{width}x{height} (use yuv444p)")  # fmt: skip
        self.pix_fmt = pix_fmt
        self.codec = codec
        self._rgb_out = av.VideoFormat(pix_fmt).is_rgb
        self._matrix = _yuv_matrix(source)
        self._range = _yuv_range(source)

        opts = dict(options or {})
        if codec in ("libx264", "libx265"):
            opts.setdefault("crf", str(18 if crf is None else crf))
            preset = preset or DEFAULT_PRESETS.get(codec)
            if preset:
                opts.setdefault("preset", preset)
            if codec == "libx265":
                opts.setdefault("x265-params", "log-level=error")
        else:
            if crf is not None:
                log.warning("%s: --crf applies to libx264/libx265 only; ignored for %s", self.path, codec)
            if preset is not None:
                log.warning("%s: --preset applies to libx264/libx265 only; ignored for %s", self.path, codec)
        if codec == "prores_ks":
            opts.setdefault("profile", "4" if pix_fmt.startswith("yuv444") else "3")

        self.tmp_path = _tmp_path(self.path)
        self._closed = False
        self._out = None
        self._side = None
        try:
            fmt = _format_for(self.path)
            # Matroska would otherwise shift every stream so that none starts below zero (MP4 AAC
            # priming starts at -23 ms): keep the source's timestamps as they are.
            copts = {"avoid_negative_ts": "disabled"} if fmt in ("matroska", "webm") else {}
            # Bytes reach the disk as packets come (not buffered until a 5 s Matroska cluster or the end
            # of the file): a full disk fails the run within seconds, not after the whole episode.
            copts["flush_packets"] = "1"
            if fmt in ("matroska", "webm"):
                copts["cluster_time_limit"] = "1000"  # ms
            self._out = av.open(str(self.tmp_path), "w", format=fmt, container_options=copts)
            rate = source.average_rate or Fraction(25)
            vs = self._out.add_stream(codec, rate=rate, options=opts)
            vs.width, vs.height = width, height
            vs.pix_fmt = pix_fmt
            vs.time_base = source.time_base  # muxers that allow it keep the source's time base
            cc = vs.codec_context
            cc.time_base = source.time_base
            if source.sample_aspect_ratio:
                cc.sample_aspect_ratio = source.sample_aspect_ratio
            if not self._rgb_out:
                cc.colorspace = source.colorspace if source.colorspace in _SWS_MATRIX else self._matrix
                cc.color_range = self._range
                if source.color_primaries not in (0, 2):
                    cc.color_primaries = source.color_primaries
                if source.color_trc not in (0, 2):
                    cc.color_trc = source.color_trc
            if source.display_matrix is not None:
                vs.set_display_matrix(source.display_matrix)
            self._vs = vs
            if copy_streams and (source.audio_streams or source.subtitle_streams or source.attachments):
                # start/end are seconds from the video stream's start, as VideoReader takes them;
                # packet times are absolute on the source timeline.
                t0 = source.start_time or 0.0
                self._side = _SideStreams(source, self._out, self.path, codecs,
                                          None if start_time is None else t0 + start_time,
                                          None if end_time is None else t0 + end_time)  # fmt: skip
        except BaseException:
            self.abort()
            raise
        self._trim = trim_side_streams
        self._last_pts = None
        self._frames = 0
        self._step = (1 / rate / source.time_base) if rate else 1
        self._warned_pts = False

    # -- context manager
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
            return False
        self.close()
        return False

    @property
    def frames_written(self) -> int:
        return self._frames

    def _to_video_frame(self, frame: Frame):
        img = frame.image
        if img.ndim != 3 or img.shape[2] != 3:
            raise UserError(f"frame {frame.index}: expected an (H, W, 3) RGB image, got {img.shape}")
        if img.shape[:2] != (self.source.height, self.source.width):
            raise UserError(f"frame {frame.index}: image is {img.shape[1]}x{img.shape[0]}, the "
                            f"output is {self.source.width}x{self.source.height}")  # fmt: skip
        if img.dtype == np.uint8 and self.pix_fmt != "rgb24":
            # The conversion below copies into the encoder's own frame, so the image can be read in place
            # (from_ndarray would copy it first: ~5 ms per 1080p frame; same output, tested).
            vf = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(img), format="rgb24")
        elif img.dtype == np.uint8:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        elif img.dtype == np.uint16:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img.astype("<u2", copy=False)),
                                            format="rgb48le")  # fmt: skip
        else:
            raise UserError(f"frame {frame.index}: image dtype {img.dtype}; expected uint8 or uint16")
        if self._rgb_out:
            return vf.reformat(format=self.pix_fmt)
        return vf.reformat(format=self.pix_fmt, src_colorspace=self._matrix,
                           dst_colorspace=self._matrix, dst_color_range=self._range)  # fmt: skip

    def write(self, frame: Frame) -> None:
        """Encode one frame. ``frame.pts`` is in the source time base (None: the next frame slot)."""
        if self._closed:
            raise RuntimeError("VideoWriter is closed")
        tb = self.source.time_base
        pts = frame.pts
        if pts is not None and frame.time_base is not None and frame.time_base != tb:
            pts = int(round(pts * frame.time_base / tb))
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + int(round(self._step))
        if self._last_pts is not None and pts <= self._last_pts:
            # Encoders refuse non-increasing timestamps; nudge by one tick rather than fail.
            if not self._warned_pts:
                log.warning("%s: non-increasing timestamp at frame %d (pts %d after %d): shifted by "
                            "one tick", self.path, frame.index, pts, self._last_pts)  # fmt: skip
                self._warned_pts = True
            pts = self._last_pts + 1
        if self._side is not None and self._last_pts is None and self._trim:
            if self._side.start_time is None:
                self._side.start_time = float(pts * tb)
        vf = self._to_video_frame(frame)
        vf.pts = pts
        vf.time_base = tb
        try:
            packets = self._vs.encode(vf)
            if self._side is not None:
                self._side.advance(float(pts * tb))
            self._out.mux(packets)
        except av.FFmpegError as e:
            _raise_if_storage(e, f"{self.path}: writing frame {frame.index} failed")
            raise MediaError(f"{self.path}: encoding frame {frame.index} failed "
                             f"({_av_message(e)})") from None  # fmt: skip
        self._last_pts = pts
        self._frames += 1

    def close(self) -> Path:
        """Flush the encoder, mux the remaining audio/subtitles, finish the file and rename it."""
        if self._closed:
            return self.path
        try:
            if self._frames == 0:
                raise MediaError(f"{self.path}: no frames to write")
            self._out.mux(self._vs.encode(None))
            if self._side is not None:
                if self._trim and self._side.end_time is None and self._last_pts is not None:
                    self._side.end_time = float(self._last_pts * self.source.time_base) + float(
                        self._step * self.source.time_base
                    )
                self._side.finish()
            self._out.close()
            self._out = None
            os.replace(self.tmp_path, self.path)
        except av.FFmpegError as e:
            self.abort()
            _raise_if_storage(e, f"{self.path}: finishing the file failed")
            raise MediaError(f"{self.path}: finishing the file failed ({_av_message(e)})") from None
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop everything written so far: the temporary file goes, the target is never touched."""
        self._closed = True
        if self._side is not None:
            try:
                self._side.close()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
            self._side = None
        if self._out is not None:
            try:
                self._out.close()
            except Exception:  # noqa: BLE001 - a half-written file may not close cleanly
                pass
            self._out = None
        try:
            self.tmp_path.unlink()
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------------------------------
# Frame folders


def _image_header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, bits per sample) from the file header, without decoding; None if unsure."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return w, h, 16 if head[24] == 16 else 8
            if head[:2] == b"BM" and len(head) >= 26:
                w, h = struct.unpack("<ii", head[18:26])
                return w, abs(h), 8
            if head[:2] in (b"II", b"MM"):
                return _tiff_header(f, head[:2])
            if head[:2] == b"\xff\xd8":
                return _jpeg_header(f)
    except (OSError, struct.error, IndexError, ValueError):
        return None
    return None


def _tiff_header(f, order: bytes):
    e = "<" if order == b"II" else ">"
    f.seek(2)
    magic, offset = struct.unpack(e + "HI", f.read(6))
    if magic != 42:
        return None
    f.seek(offset)
    (count,) = struct.unpack(e + "H", f.read(2))
    tags = {}
    for _ in range(count):
        tag, typ, n, value = struct.unpack(e + "HHI4s", f.read(12))
        if tag in (256, 257, 258):
            if typ == 3:  # SHORT: first value in the first two bytes
                tags[tag] = struct.unpack(e + "H", value[:2])[0]
                if tag == 258 and n > 2:  # several samples: the values live at an offset
                    here = f.tell()
                    f.seek(struct.unpack(e + "I", value)[0])
                    tags[tag] = struct.unpack(e + "H", f.read(2))[0]
                    f.seek(here)
            elif typ == 4:
                tags[tag] = struct.unpack(e + "I", value)[0]
    if 256 not in tags or 257 not in tags:
        return None
    return tags[256], tags[257], 16 if tags.get(258, 8) > 8 else 8


def _jpeg_header(f):
    f.seek(2)
    while True:
        b = f.read(1)
        while b and b != b"\xff":
            b = f.read(1)
        while b == b"\xff":
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        (length,) = struct.unpack(">H", f.read(2))
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            bits, h, w = struct.unpack(">BHH", f.read(5))
            return w, h, 8 if bits <= 8 else 16
        f.seek(length - 2, 1)


def _list_frames(path: Path) -> list[str]:
    names = [
        e.name
        for e in os.scandir(path)
        if e.is_file() and not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
    ]
    names.sort(key=natural_sort_key)
    return names


def read_image(path) -> np.ndarray:
    """Read an image as (H, W, 3) RGB uint8 or uint16: gray is repeated, alpha dropped."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8)  # also handles non-ASCII paths
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise MediaError(f"{path}: cannot read this image (corrupt or unsupported)")
    if img.dtype not in (np.uint8, np.uint16):
        raise MediaError(f"{path}: {img.dtype} samples are not supported (8 or 16 bit only)")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


class FrameFolderReader:
    """The images of a folder as :class:`Frame` objects, in natural sort order.

    Sizes and bit depths are checked on every file up front from headers (cheap), so that a folder
    with mixed sizes is refused before any output is written. ``start``/``end`` are positions in the
    sorted list; ``every`` keeps every N-th from ``start``.
    """

    def __init__(self, path, start=None, end=None, every=1):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such file or folder")
        if not self.path.is_dir():
            raise UserError(f"{self.path}: not a folder")
        try:
            self.names = _list_frames(self.path)
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
            header = _image_header(self.path / name)
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

    def selected(self) -> list[int]:
        """Positions (in natural order) of the frames this reader yields."""
        return list(range(len(self.names)))[self.start : self.end : self.every]

    def __len__(self) -> int:
        return len(self.selected())

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


def _encode_image(frame: Frame, ext: str) -> bytes:
    img = frame.image
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype not in (np.uint8, np.uint16):
        raise UserError(f"frame {frame.index}: expected an (H, W, 3) uint8/uint16 RGB image")
    params: list[int] = []
    if ext in (".jpg", ".jpeg", ".bmp"):
        if img.dtype == np.uint16:  # these formats are 8-bit only
            img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
        if ext != ".bmp":
            params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise MediaError(f"cannot encode frame {frame.index} as {ext}")
    return buf.tobytes()


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
        data = _encode_image(frame, final.suffix.lower())
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

    def close(self) -> None:
        """Nothing buffered: every file was complete when written. Removes stray temporaries."""
        for e in os.scandir(self.path):
            if e.name.startswith(".") and f"{TMP_MARK}-{os.getpid()}" in e.name:
                try:
                    os.unlink(e.path)
                except OSError:
                    pass
