"""Audio, subtitles and attachments of the source, copied into the output beside the new video."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import av

from ..errors import MediaError
from .container import av_message, format_for, open_input, raise_if_storage
from .frame import VideoInfo

log = logging.getLogger("framecolor")


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


class SideStreams:
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
        self.input = open_input(source.path)
        self.routes: dict[int, tuple] = {}
        for s in self.input.streams:
            if s.type == "attachment":
                self._copy_attachment(s, out_path)
                continue
            if s.type not in ("audio", "subtitle"):
                continue
            name = s.codec_context.name if s.codec_context is not None else None
            label = f"{s.type} stream #{s.index} ({name})"
            if (codecs is None or name in codecs) and _muxer_takes(format_for(out_path), s, source.path):
                try:
                    self.routes[s.index] = ("copy", s, output.add_stream_from_template(s))
                    continue
                except (av.FFmpegError, ValueError) as e:
                    log.warning("%s: cannot copy %s (%s)", out_path, label, av_message(e))
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
        if format_for(out_path) != "matroska":
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
                                 f"({av_message(e)})") from None  # fmt: skip
            if packet is None:
                return
            if until is not None and self._time(packet) > until:
                self._pending = packet
                return
            if self._in_range(packet):
                try:
                    self._mux(packet)
                except av.FFmpegError as e:
                    raise_if_storage(e, f"{self.out_path}: writing {packet.stream.type} stream "
                                         f"#{packet.stream.index} failed")
                    raise MediaError(f"{self.out_path}: writing {packet.stream.type} stream "
                                     f"#{packet.stream.index} failed ({av_message(e)})") from None  # fmt: skip

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
