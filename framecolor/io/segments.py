"""Joining video-only segment files (coloured in parallel, e.g. on Ray) into one video by packet copy, with
the source's audio, subtitles and attachments copied once."""

from __future__ import annotations

import os
from pathlib import Path

import av

from ..errors import MediaError
from .container import av_message, container_codecs, format_for, probe_video
from .paths import temporary_path
from .side_streams import SideStreams


def join_segments(source: Path, segments: list[Path], out: Path, expected_frames: int | None = None) -> Path:
    """Concatenate video-only segment files by packet copy into ``out``, with the source's audio and
    subtitle packets (and attachments) copied once, as :class:`~framecolor.io.video_writer.VideoWriter` copies them.

    The segments hold the source's own timestamps, so the joined stream's are continuous. Written under a
    hidden temporary name and renamed when complete.
    """
    info = probe_video(source)
    tmp = temporary_path(out)
    fmt = format_for(out)
    codecs = container_codecs(out)
    copts = {"avoid_negative_ts": "disabled"} if fmt in ("matroska", "webm") else {}
    output = av.open(str(tmp), "w", format=fmt, container_options=copts)
    side = None
    frames = 0
    try:
        with av.open(str(segments[0])) as first:
            template = first.streams.video[0]
            extradata = template.codec_context.extradata
            vs = output.add_stream_from_template(template)
        if info.display_matrix is not None:
            vs.set_display_matrix(info.display_matrix)
        if info.audio_streams or info.subtitle_streams or info.attachments:
            side = SideStreams(info, output, out, codecs, None, None)
        # Matroska stores no decode timestamps (a demuxer returns none for the first B-frame-delayed
        # packets), so they are rebuilt for the joined stream: the sorted presentation times shifted by
        # the smallest reorder delay that keeps every packet's dts <= pts. Monotonic across the joins,
        # as every segment starts with a key frame.
        tb = None
        order: list[int] = []
        for seg in segments:
            with av.open(str(seg)) as c:
                s = c.streams.video[0]
                if s.codec_context.extradata != extradata:
                    raise MediaError(f"{seg}: codec headers differ from the first segment's: "
                                     "cannot join without re-encoding")
                for packet in c.demux(s):
                    if packet.pts is None:
                        continue  # the demuxer's end-of-stream packet
                    if tb is None:
                        tb = packet.time_base
                    elif packet.time_base != tb:
                        raise MediaError(f"{seg}: time base differs from the first segment's")
                    order.append(packet.pts)
        dts = decode_timestamps(order)
        i = 0
        for seg in segments:
            with av.open(str(seg)) as c:
                for packet in c.demux(c.streams.video[0]):
                    if packet.pts is None:
                        continue
                    if side is not None:
                        side.advance(float(packet.pts * packet.time_base))
                    packet.dts = dts[i]
                    packet.stream = vs
                    output.mux(packet)
                    i += 1
        frames = i
        if expected_frames is not None and frames != expected_frames:
            raise MediaError(f"{out}: joined {frames} frames, expected {expected_frames}")
        if side is not None:
            side.finish()
            side = None
        output.close()
        output = None
        os.replace(tmp, out)
    except av.FFmpegError as e:
        raise MediaError(f"{out}: joining segments failed ({av_message(e)})") from None
    finally:
        if side is not None:
            side.close()
        if output is not None:
            try:
                output.close()
            except Exception:  # noqa: BLE001 - a half-written file may not close cleanly
                pass
        if tmp.exists():
            tmp.unlink()
    return out


def decode_timestamps(pts: list[int]) -> list[int]:
    """Decode timestamps for packets in decode order with presentation times ``pts``: the sorted
    presentation times delayed by as few packets as keep ``dts <= pts`` (what an encoder with B-frames
    gives); the first ones extrapolated back by the first frame interval. Strictly increasing when the
    presentation times are distinct."""
    if not pts:
        return []
    s = sorted(pts)
    step = (s[1] - s[0]) if len(s) > 1 else 1
    step = max(step, 1)

    def at(k: int) -> int:
        return s[k] if k >= 0 else s[0] + k * step

    delay = 0
    while any(at(i - delay) > p for i, p in enumerate(pts)):
        delay += 1
    return [at(i - delay) for i in range(len(pts))]
