"""Writing video: :class:`VideoWriter` encodes frames back with the source's timestamps, size, aspect ratio
and rotation, copies its audio and subtitle packets unchanged, interleaved with the video in one pass (a
second demuxer on the source is advanced as video time advances, so nothing is held whole in memory), and
appears only complete: it is written under a temporary name beside the target and renamed at the end.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError, UserError
from .container import (SWS_MATRIX, av_message, container_codecs, format_for, raise_if_storage, yuv_matrix,
                        yuv_range)
from .frame import Frame, VideoInfo
from .paths import temporary_path
from .side_streams import SideStreams

log = logging.getLogger("framecolor")

VIDEO_CODECS = ("libx264", "libx265", "ffv1", "prores_ks")
# x264's own default ("medium") spent a third of the CPU of a 1080p frame on 2 cores; "faster" costs much less
# CPU for a few more bytes at the same CRF (benchmarks/RESULTS.md, issue 7).
DEFAULT_PRESETS = {"libx264": "faster"}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False



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
        self._matrix = yuv_matrix(source)
        self._range = yuv_range(source)

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

        self.tmp_path = temporary_path(self.path)
        self._closed = False
        self._out = None
        self._side = None
        try:
            fmt = format_for(self.path)
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
                cc.colorspace = source.colorspace if source.colorspace in SWS_MATRIX else self._matrix
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
                self._side = SideStreams(source, self._out, self.path, codecs,
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
            raise_if_storage(e, f"{self.path}: writing frame {frame.index} failed")
            raise MediaError(f"{self.path}: encoding frame {frame.index} failed "
                             f"({av_message(e)})") from None  # fmt: skip
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
            raise_if_storage(e, f"{self.path}: finishing the file failed")
            raise MediaError(f"{self.path}: finishing the file failed ({av_message(e)})") from None
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
