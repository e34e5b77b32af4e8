"""Media containers through PyAV: opening and probing an input video, output container formats and the
codecs they take, the YUV matrix and range a source is decoded and encoded with, and FFmpeg's errors as one
line (:func:`av_message`; a full disk is a :class:`~framecolor.errors.StorageError`, not a media error).

This module imports ``av`` at the top: import it lazily from code that must stay light.
"""

from __future__ import annotations

import os
import re
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError, StorageError, UserError
from .frame import VideoInfo


def av_message(exc: BaseException) -> str:
    """The useful part of a PyAV error (strerror without the errno noise)."""
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).strip().rstrip(".")


def check_input_file(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: not readable (permission denied)")



def open_input(path: Path):
    check_input_file(path)
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as e:
        if _looks_like_isobmff(path):
            raise MediaError(f"{path}: an MP4/MOV file without its index (moov box): probably truncated (an "
                             f"interrupted download, copy or recording) ({av_message(e)})") from None
        raise MediaError(f"{path}: not a media file or unreadable ({av_message(e)})") from None


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
        raise MediaError(f"{path}: cannot decode the first frame ({av_message(e)})") from None
    raise MediaError(f"{path}: the video stream holds no frames")


def probe_video(path) -> VideoInfo:
    """Describe a video file (decodes its first frame to learn rotation and pixel format).

    Raises UserError for a missing path, MediaError for a file that is not media, has no video
    stream, or whose first frame cannot be decoded.
    """
    path = Path(path)
    container = open_input(path)
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
SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def yuv_matrix(info: VideoInfo) -> int:
    """The YUV<->RGB matrix used both to decode and to encode, so that a round trip is consistent.

    The source's tag when it has one; otherwise what players assume: BT.709 from 720 lines up,
    BT.601 below.
    """
    if info.colorspace in SWS_MATRIX:
        return SWS_MATRIX[info.colorspace]
    return 1 if info.height >= 720 else 5


def yuv_range(info: VideoInfo) -> int:
    """The source's range tag; untagged: full for yuvj and gray (scans, FFV1 archives), else limited."""
    if info.color_range in (1, 2):
        return info.color_range
    return 2 if info.pix_fmt.startswith(("yuvj", "gray")) else 1


def container_codecs(path: Path) -> set[str] | None:
    """Codecs the output container takes, or None when FFmpeg cannot say for this muxer."""
    try:
        probe = av.open(os.devnull, "w", format=format_for(path))
    except (av.FFmpegError, ValueError) as e:
        raise UserError(f"{path}: cannot write this container ({av_message(e)})") from None
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
    codecs = container_codecs(path)
    if codecs is not None and codec not in codecs:
        raise UserError(f"{path}: the {path.suffix} container cannot hold {codec} video")
    return codecs


def format_for(path: Path) -> str | None:
    return _FORMAT_BY_EXT.get(path.suffix.lower())



def raise_if_storage(exc: BaseException, what: str) -> None:
    """A write refused by the system (full disk, quota, I/O error) is not a media problem: StorageError."""
    import errno

    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS):
        raise StorageError(f"{what}: {av_message(exc)}") from None
