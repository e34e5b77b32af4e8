"""Synthetic clips and frame folders for the tests, written with PyAV / OpenCV into a given folder.

Every maker writes a real file, small and fast (about 100x60 pixels, a few dozen frames), and returns
its Path (``make_cut_clip`` also returns the frame numbers where shots start). The content is
deterministic: moving coloured shapes over a gradient background, so colour, motion and luminance
are all present.

Helpers for assertions: ``read_all_frames`` (pts, time base, RGB array per frame) and
``read_packets`` (the bytes of each packet of one stream).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# -------------------------------------------------------------------------------------------------
# Pictures


def shapes_image(i: int, width: int, height: int, color: bool = True, palette: int = 0) -> np.ndarray:
    """Frame ``i`` of the moving-shapes animation: (height, width, 3) RGB uint8.

    ``palette`` picks one of several colour worlds (background hue and shape colours) for cut clips.
    """
    worlds = [
        ((40, 90, 160), (230, 200, 40), (200, 40, 60)),  # blue sky, yellow disc, red box
        ((30, 120, 40), (250, 130, 20), (120, 40, 170)),  # green field, orange, purple
        ((150, 60, 40), (40, 200, 220), (240, 240, 240)),  # rust, cyan, white
        ((20, 20, 30), (230, 60, 180), (60, 220, 80)),  # night, magenta, green
    ]
    bg, c1, c2 = worlds[palette % len(worlds)]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (0.6 + 0.4 * yy / max(height - 1, 1))[..., None]
    img = (np.array(bg, np.float32) * ramp).astype(np.uint8)
    r = max(3, min(width, height) // 5)
    cx = int((0.2 + 0.6 * (0.5 + 0.5 * math.sin(i * 0.3))) * width)
    cy = int((0.3 + 0.4 * (0.5 + 0.5 * math.cos(i * 0.2))) * height)
    cv2.circle(img, (cx, cy), r, c1, -1)
    bx = int((i * 3) % max(width - r, 1))
    by = height // 2
    cv2.rectangle(img, (bx, by), (bx + r, min(by + r, height - 1)), c2, -1)
    cv2.line(img, (0, (i * 2) % height), (width - 1, height - 1 - (i * 2) % height), (250, 250, 250), 1)
    if not color:
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        img = np.repeat(gray[..., None], 3, axis=2)
    return img


# -------------------------------------------------------------------------------------------------
# Writing


def _sine(n_samples: int, rate: int, start: int = 0, freq: float = 440.0) -> np.ndarray:
    t = (np.arange(n_samples) + start) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _add_audio(out, codec: str, rate: int = 44100):
    stream = out.add_stream(codec, rate=rate, layout="mono")
    return stream


def _write_audio(out, stream, seconds: float, rate: int = 44100) -> None:
    """Sine tone of ``seconds`` in chunks of 1024 samples, converted to the encoder's format."""
    fmt = stream.codec_context.codec.audio_formats[0].name
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
    total = int(round(seconds * rate))
    pos = 0
    while pos < total:
        n = min(1024, total - pos)
        frame = av.AudioFrame.from_ndarray(_sine(n, rate, pos)[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = pos
        frame.time_base = Fraction(1, rate)
        for rf in resampler.resample(frame):
            out.mux(stream.encode(rf))
        pos += n
    for rf in resampler.resample(None):
        out.mux(stream.encode(rf))
    out.mux(stream.encode(None))


def _default_audio_codec(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".mkv", ".mka"):
        return "flac"
    if ext in (".avi", ".wav", ".mov"):
        return "pcm_s16le"
    if ext == ".webm":
        return "libopus"
    return "aac"


def _video_stream(out, codec: str, width: int, height: int, fps, pix_fmt: str, time_base=None,
                  sar=None, rotation=None):  # fmt: skip
    opts = {"x265-params": "log-level=error"} if codec == "libx265" else {}
    if codec in ("libx264", "libx265"):
        opts["preset"] = "ultrafast"
    s = out.add_stream(codec, rate=Fraction(fps), options=opts)
    s.width, s.height = width, height
    s.pix_fmt = pix_fmt
    if time_base is not None:
        s.time_base = time_base
        s.codec_context.time_base = time_base
    if sar is not None:
        s.codec_context.sample_aspect_ratio = sar
    if rotation:
        s.set_display_rotation(rotation)
    return s


def _encode_frames(out, s, images, pts_list, time_base, fmt="rgb24"):
    for img, pts in zip(images, pts_list, strict=True):
        f = av.VideoFrame.from_ndarray(img, format=fmt)
        f.pts = pts
        f.time_base = time_base
        out.mux(s.encode(f.reformat(format=s.pix_fmt)))
    out.mux(s.encode(None))


def make_shapes_clip(path, frames: int = 24, size=(96, 64), fps=25, audio=True, color=True,
                     codec: str = "libx264", pix_fmt: str | None = None, audio_codec: str | None = None,
                     sar: Fraction | None = None, rotation: int | None = None) -> Path:  # fmt: skip
    """Moving coloured shapes (``size`` is width x height) at constant ``fps``, with a sine-wave
    audio track as long as the video (flac in mkv, pcm in avi/mov, aac in mp4 unless
    ``audio_codec``), optional sample aspect ratio and display rotation."""
    path = Path(path)
    w, h = size
    if pix_fmt is None:
        pix_fmt = "yuv444p" if (w % 2 or h % 2) else "yuv420p"
        if codec == "ffv1":
            pix_fmt = "yuv444p"
    tb = Fraction(1, int(fps)) if Fraction(fps).denominator == 1 else 1 / Fraction(fps)
    with av.open(str(path), "w") as out:
        vs = _video_stream(out, codec, w, h, fps, pix_fmt, time_base=tb, sar=sar, rotation=rotation)
        astream = _add_audio(out, audio_codec or _default_audio_codec(path)) if audio else None
        _encode_frames(out, vs, (shapes_image(i, w, h, color) for i in range(frames)), range(frames), tb)
        if astream is not None:
            _write_audio(out, astream, frames / float(fps))
    return path


def make_vfr_clip(path, frames: int = 24, size=(96, 64), audio=False, codec="libx264") -> Path:
    """Variable frame rate: irregular frame durations (20..120 ms) in a 1/1000 s time base."""
    path = Path(path)
    w, h = size
    tb = Fraction(1, 1000)
    durations = [40, 40, 20, 120, 33, 67, 40, 100, 25, 50]
    pts, t = [], 0
    for i in range(frames):
        pts.append(t)
        t += durations[i % len(durations)]
    with av.open(str(path), "w") as out:
        vs = _video_stream(out, codec, w, h, 25, "yuv420p", time_base=tb)
        astream = _add_audio(out, _default_audio_codec(path)) if audio else None
        _encode_frames(out, vs, (shapes_image(i, w, h) for i in range(frames)), pts, tb)
        if astream is not None:
            _write_audio(out, astream, t / 1000)
    return path


def make_odd_clip(path, frames: int = 12, size=(97, 55), audio=False) -> Path:
    """Odd width and height (4:4:4 H.264, as 4:2:0 needs even sides)."""
    return make_shapes_clip(path, frames=frames, size=size, audio=audio, pix_fmt="yuv444p")


def make_10bit_clip(path, frames: int = 12, size=(96, 64), codec: str = "libx264", audio=False) -> Path:
    """10-bit 4:2:0 clip (yuv420p10le) from a smooth 16-bit gradient plus shapes, so values between
    8-bit levels exist."""
    path = Path(path)
    w, h = size
    tb = Fraction(1, 25)
    pix = "yuv420p10le" if codec != "ffv1" else "yuv444p10le"

    def image(i):
        base = shapes_image(i, w, h).astype(np.uint16) * 257
        ramp = (np.linspace(0, 1023, w, dtype=np.float64)[None, :] * 64).astype(np.uint16)
        base[..., 1] = np.maximum(base[..., 1] // 2, ramp // 2 + np.uint16(i * 64))
        return base

    with av.open(str(path), "w") as out:
        vs = _video_stream(out, codec, w, h, 25, pix, time_base=tb)
        astream = _add_audio(out, _default_audio_codec(path)) if audio else None
        _encode_frames(out, vs, (image(i) for i in range(frames)), range(frames), tb, fmt="rgb48le")
        if astream is not None:
            _write_audio(out, astream, frames / 25)
    return path


def make_gray_clip(path, frames: int = 8, size=(96, 64), codec: str = "ffv1") -> Path:
    """A black-and-white clip stored as gray (luma only, full range, as film scans are): a
    horizontal ramp from 0 to 255 plus the moving shapes in gray."""
    path = Path(path)
    w, h = size
    tb = Fraction(1, 25)
    ramp = np.linspace(0, 255, w).round().astype(np.uint8)
    with av.open(str(path), "w") as out:
        vs = _video_stream(out, codec, w, h, 25, "gray", time_base=tb)
        for i in range(frames):
            g = shapes_image(i, w, h, color=False)[..., 0]
            g[: h // 4] = ramp  # the top quarter spans the whole 0..255 range
            f = av.VideoFrame.from_ndarray(g, format="gray")
            f.pts = i
            f.time_base = tb
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


SUBTITLES = [(0.0, 0.4, "Hello there."), (0.5, 0.9, "Second line, with a comma."), (1.0, 1.5, "The end")]


FONT_ATTACHMENT = ("demo-font.ttf", "font/ttf", b"\x00\x01\x00\x00 not a real font, just bytes" * 4)


def make_subtitle_mkv(path, frames: int = 40, size=(96, 64), audio=True, attachment=False) -> Path:
    """MKV with video, a flac audio track and a SubRip subtitle track of three cues (``SUBTITLES``),
    and with ``attachment`` a font-like attachment (``FONT_ATTACHMENT``), as anime releases carry.

    Subtitle packets are muxed directly: a SubRip packet in Matroska is the cue's plain text.
    """
    path = Path(path)
    w, h = size
    tb = Fraction(1, 25)
    with av.open(str(path), "w") as out:
        vs = _video_stream(out, "libx264", w, h, 25, "yuv420p", time_base=tb)
        astream = _add_audio(out, "flac") if audio else None
        sub = out.add_mux_stream("subrip")
        if attachment:
            out.add_attachment(*FONT_ATTACHMENT)
        sub.time_base = Fraction(1, 1000)
        sub.metadata["language"] = "eng"
        for start, end, text in SUBTITLES:
            p = av.Packet(text.encode())
            p.pts = p.dts = int(start * 1000)
            p.duration = int((end - start) * 1000)
            p.time_base = Fraction(1, 1000)
            p.stream = sub
            out.mux(p)
        _encode_frames(out, vs, (shapes_image(i, w, h) for i in range(frames)), range(frames), tb)
        if astream is not None:
            _write_audio(out, astream, frames / 25)
    return path


def make_cut_clip(path, shot_lengths=(10, 8, 12), size=(96, 64), fps=25, audio=False,
                  color=True) -> tuple[Path, list[int]]:  # fmt: skip
    """Shots separated by hard cuts, each in its own colour world and starting its own motion.

    Returns the path and the first frame index of every shot (``[0, 10, 18]`` by default).
    """
    path = Path(path)
    w, h = size
    tb = Fraction(1, fps)
    starts, images = [], []
    for shot, n in enumerate(shot_lengths):
        starts.append(len(images))
        images.extend(shapes_image(i + 17 * shot, w, h, color, palette=shot) for i in range(n))
    total = len(images)
    with av.open(str(path), "w") as out:
        vs = _video_stream(out, "libx264", w, h, fps, "yuv420p", time_base=tb)
        astream = _add_audio(out, _default_audio_codec(path)) if audio else None
        _encode_frames(out, vs, images, range(total), tb)
        if astream is not None:
            _write_audio(out, astream, total / fps)
    return path, starts


def make_audio_only(path, seconds: float = 0.5) -> Path:
    """A media file with an audio stream and no video (``.m4a``: AAC, ``.flac``/``.mka``: FLAC)."""
    path = Path(path)
    codec = "flac" if path.suffix.lower() in (".flac", ".mka") else "aac"
    with av.open(str(path), "w") as out:
        stream = _add_audio(out, codec)
        _write_audio(out, stream, seconds)
    return path


def frame_folder_numbers(n: int) -> list[int]:
    """The numbers in the names of ``make_frame_folder``'s files, in natural order: 1, 5, 9, 13, ...
    (text order would put 13 before 5)."""
    return [1 + 4 * i for i in range(n)]


def make_frame_folder(path, n: int = 5, bit_depth: int = 16, size=(64, 48), ext: str = ".png",
                      prefix: str = "f", color=True) -> Path:  # fmt: skip
    """A folder of ``n`` frames named ``f1.png, f5.png, f9.png, f13.png, ...`` (natural order differs
    from text order). Frame k in natural order has ``image[0, 0, 0] == k`` (in 8-bit units; times
    257 at 16 bits), so order can be checked from content. 16-bit frames hold values between
    8-bit levels."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    w, h = size
    for k, num in enumerate(frame_folder_numbers(n)):
        img = shapes_image(k, w, h, color)
        if bit_depth == 16:
            img16 = img.astype(np.uint16) * 257
            blue = img16[1:, :, 2]  # shift off the multiples of 257: true 16-bit values, no wrap-around
            img16[1:, :, 2] = np.where(blue < 60000, blue + (100 + k), blue - (100 + k))
            img16[0, 0, 0] = k * 257
            out = img16
        else:
            img[0, 0, 0] = k
            out = img
        ok = cv2.imwrite(str(path / f"{prefix}{num}{ext}"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        assert ok, f"could not write {path / f'{prefix}{num}{ext}'}"
    return path


# -------------------------------------------------------------------------------------------------
# Reference mode: flat-coloured, dark-outlined shapes in two colour worlds (tests of keys and carrying)


REF_W, REF_H = 112, 64
REF_WORLDS = [  # background tint, then three shape colours (sRGB)
    ((70, 110, 170), [(230, 200, 40), (200, 40, 60), (40, 170, 90)]),
    ((150, 90, 60), [(40, 200, 220), (150, 60, 200), (250, 140, 30)]),
]


def _background(world: int) -> np.ndarray:
    rng = np.random.default_rng(10 + world)
    noise = cv2.resize(rng.random((REF_H // 8, REF_W // 8)).astype(np.float32), (REF_W, REF_H),
                       interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(0.55, 1.0, REF_H, dtype=np.float32)[:, None]
    tint = np.array(REF_WORLDS[world][0], np.float32)
    return np.clip(tint * (ramp * (0.8 + 0.4 * noise))[..., None], 0, 255)


def reference_frame(t: int, world: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frame t of a clip of three flat-coloured, dark-outlined shapes moving 1-2 px per frame over a textured
    background; also each shape's interior mask (eroded, away from outlines and the other shapes)."""
    img = _background(world).copy()
    colours = REF_WORLDS[world][1]
    o = 3 * world  # the second world starts elsewhere
    specs = [  # one horizontal band each, so they never overlap
        ("disc", (int(16 + 1.5 * t + o), int(12 + 0.1 * t))),
        ("box", (int(92 - 1.0 * t - o), 36)),
        ("tri", (int(20 + 1.0 * t + o), 54)),
    ]
    masks = []
    for (kind, (cx, cy)), c in zip(specs, colours):
        m = np.zeros((REF_H, REF_W), np.uint8)
        if kind == "disc":
            cv2.circle(m, (cx, cy), 10, 1, -1)
        elif kind == "box":
            cv2.rectangle(m, (cx - 10, cy - 7), (cx + 10, cy + 7), 1, -1)
        else:
            cv2.fillPoly(m, [np.array([(cx - 12, cy + 9), (cx + 12, cy + 9), (cx, cy - 11)], np.int32)], 1)
        img[m > 0] = c
        edge = cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        img[edge > 0] = (25, 20, 20)
        for prev in masks:  # later shapes cover earlier ones
            prev &= (1 - m).astype(bool)
        masks.append(m.astype(bool))
    inner = [cv2.erode(m.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) for m in masks]
    return img.astype(np.uint8), inner


def reference_clip(n=31, world=0):
    """``n`` frames of :func:`reference_frame` and their shape masks."""
    frames, masks = zip(*(reference_frame(t, world) for t in range(n)))
    return list(frames), list(masks)


# -------------------------------------------------------------------------------------------------
# Reading, for assertions


def read_all_frames(path, fmt: str | None = None) -> list[tuple[int, Fraction, np.ndarray]]:
    """(pts, time_base, RGB array) of every frame of the first video stream (rgb48le for >8 bits)."""
    result = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        for frame in c.decode(vs):
            f = fmt
            if f is None:
                deep = max(comp.bits for comp in frame.format.components) > 8
                f = "rgb48le" if deep else "rgb24"
            result.append((frame.pts, frame.time_base or vs.time_base, frame.to_ndarray(format=f)))
    return result


def read_packets(path, kind: str = "audio", index: int = 0) -> list[bytes]:
    """Bytes of each packet of the ``index``-th stream of type ``kind`` (empty flush packets left out)."""
    with av.open(str(path)) as c:
        stream = getattr(c.streams, {"audio": "audio", "subtitle": "subtitles", "video": "video"}[kind])[index]
        return [bytes(p) for p in c.demux(stream) if p.size > 0]


def read_packet_times(path, kind: str = "audio", index: int = 0) -> list[Fraction]:
    """Presentation time (seconds, exact Fraction) of each non-empty packet of one stream."""
    with av.open(str(path)) as c:
        stream = getattr(c.streams, {"audio": "audio", "subtitle": "subtitles", "video": "video"}[kind])[index]
        return [p.pts * p.time_base for p in c.demux(stream) if p.size > 0 and p.pts is not None]
