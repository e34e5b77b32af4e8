"""Properties of framecolor.io: what goes through a read -> write round trip comes out with the
same frames, timestamps, size, aspect, rotation, audio and subtitles; bad input gives a one-line
UserError/MediaError and leaves nothing behind."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from framecolor.errors import MediaError, UserError
from framecolor.io.container import probe_video
from framecolor.io.frame import Frame
from framecolor.io.frame_folder import FrameFolderReader, FrameFolderWriter
from framecolor.io.paths import default_output_path, natural_sort_key, parse_position
from framecolor.io.video_reader import VideoReader
from framecolor.io.video_writer import VideoWriter
import clips


@pytest.fixture(scope="module")
def clipdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def shapes_mkv(clipdir):
    return clips.make_shapes_clip(clipdir / "shapes.mkv", frames=24)


@pytest.fixture(scope="module")
def shapes_mp4(clipdir):
    return clips.make_shapes_clip(clipdir / "shapes.mp4", frames=24)


def roundtrip(src: Path, dst: Path, **writer_options) -> list[Frame]:
    """Decode ``src`` with VideoReader and encode every frame unchanged with VideoWriter."""
    frames = []
    with VideoReader(src) as reader:
        with VideoWriter(dst, reader.info, **writer_options) as writer:
            for frame in reader:
                writer.write(frame)
                frames.append(frame)
    return frames


def times(path: Path) -> list[Fraction]:
    return [pts * tb for pts, tb, _ in clips.read_all_frames(path)]


# -------------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_roundtrip_keeps_frame_count_and_timestamps_cfr(clipdir, shapes_mkv, shapes_mp4, ext):
    src = shapes_mkv if ext == ".mkv" else shapes_mp4
    out = clipdir / f"cfr_out{ext}"
    frames = roundtrip(src, out)
    assert len(frames) == 24
    assert [f.index for f in frames] == list(range(24))
    assert times(out) == times(src)
    assert probe_video(out).time_base == probe_video(src).time_base  # same container: same time base


def test_roundtrip_keeps_variable_frame_rate_timestamps(clipdir):
    for ext in (".mkv", ".mp4"):
        src = clips.make_vfr_clip(clipdir / f"vfr{ext}", frames=20)
        out = clipdir / f"vfr_out{ext}"
        roundtrip(src, out)
        src_times, out_times = times(src), times(out)
        assert len(out_times) == 20
        assert out_times == src_times
        gaps = {b - a for a, b in zip(src_times, src_times[1:])}
        assert len(gaps) > 3  # the clip really is variable rate


def test_mp4_to_mkv_keeps_video_timestamps_despite_aac_priming(clipdir, shapes_mp4):
    """MP4 AAC starts at -23 ms (priming); Matroska must not shift the video to make room."""
    out = clipdir / "mp4_to.mkv"
    roundtrip(shapes_mp4, out)
    assert times(out) == times(shapes_mp4)
    assert clips.read_packets(out, "audio") == clips.read_packets(shapes_mp4, "audio")


def test_pixels_survive_a_near_lossless_roundtrip(clipdir, shapes_mkv):
    """Same YUV matrix on the way in and out: at crf 0 and 4:4:4 the RGB differs by rounding only."""
    out = clipdir / "lossless.mkv"
    frames = roundtrip(shapes_mkv, out, crf=0, pix_fmt="yuv444p")
    decoded = clips.read_all_frames(out)
    diff = max(np.abs(f.image.astype(int) - d[2].astype(int)).max() for f, d in zip(frames, decoded))
    assert diff <= 3


def test_writer_reads_the_image_in_place_but_keeps_nothing_of_it(clipdir, shapes_mkv):
    """The writer converts each RGB image without copying it first; reusing the caller's buffer for the next
    frame straight after write() must not change frames already written (the encoder holds several)."""
    src = probe_video(shapes_mkv)
    buffer = np.empty((src.height, src.width, 3), np.uint8)
    levels = [40, 200, 90, 160, 20, 230] * 4  # as many frames as the source has
    out = clipdir / "reused_buffer.mkv"
    with VideoWriter(out, src, crf=0) as writer:
        for i, level in enumerate(levels):
            buffer[...] = level
            writer.write(Frame(index=i, image=buffer))
    got = [float(f.image.mean()) for f in VideoReader(out)]
    assert len(got) == len(levels)
    assert np.allclose(got, levels, atol=2)


def test_odd_size_is_kept(clipdir):
    src = clips.make_odd_clip(clipdir / "odd.mkv", frames=8, size=(97, 55))
    out = clipdir / "odd_out.mkv"
    frames = roundtrip(src, out)
    assert frames[0].image.shape == (55, 97, 3)
    info = probe_video(out)
    assert (info.width, info.height) == (97, 55)
    assert info.pix_fmt == "yuv444p"
    assert len(clips.read_all_frames(out)) == 8


def test_odd_size_refuses_a_subsampled_pix_fmt(clipdir):
    src = clips.make_odd_clip(clipdir / "odd2.mkv", frames=3, size=(97, 55))
    with pytest.raises(UserError, match="even"):
        VideoWriter(clipdir / "odd2_out.mkv", probe_video(src), pix_fmt="yuv420p")
    assert not (clipdir / "odd2_out.mkv").exists()


def test_10bit_is_read_as_uint16_and_written_as_10bit(clipdir):
    src = clips.make_10bit_clip(clipdir / "deep.mkv", frames=6)
    info = probe_video(src)
    assert info.bit_depth == 10
    out = clipdir / "deep_out.mkv"
    frames = roundtrip(src, out)
    img = frames[0].image
    assert img.dtype == np.uint16
    assert np.any(img % 257 != 0)  # values between 8-bit levels: the depth was not thrown away
    out_info = probe_video(out)
    assert out_info.pix_fmt == "yuv420p10le" and out_info.bit_depth == 10
    assert times(out) == times(src)


def test_gray_video_reads_as_equal_rgb_channels_with_full_range():
    """A gray (B&W scan) FFV1 clip: R = G = B = the stored luma, 0 and 255 kept (no range squeeze)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src = clips.make_gray_clip(Path(d) / "gray.mkv", frames=3)
        with av.open(str(src)) as c:
            stored = next(c.decode(video=0)).to_ndarray()
        with VideoReader(src) as r:
            frames = list(r)
    img = frames[0].image
    assert len(frames) == 3 and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    assert np.abs(img[..., 0].astype(int) - stored.astype(int)).max() <= 1
    assert img.min() == 0 and img.max() == 255


@pytest.mark.parametrize("codec,pix_fmt", [("ffv1", "bgr0"), ("prores_ks", "yuv422p10le"), ("libx265", "yuv420p")])
def test_other_codecs_write_playable_files(clipdir, shapes_mkv, codec, pix_fmt):
    ext = ".mov" if codec == "prores_ks" else ".mkv"
    out = clipdir / f"codec_{codec}{ext}"
    frames = roundtrip(shapes_mkv, out, codec=codec)
    info = probe_video(out)
    assert info.pix_fmt == pix_fmt
    decoded = clips.read_all_frames(out, fmt="rgb24")
    assert len(decoded) == len(frames)
    if codec == "ffv1":  # lossless RGB
        assert all(np.array_equal(f.image, d[2]) for f, d in zip(frames, decoded))


def test_audio_packets_are_byte_identical(clipdir, shapes_mkv, shapes_mp4):
    for src, ext in ((shapes_mkv, ".mkv"), (shapes_mp4, ".mp4")):
        out = clipdir / f"audio_out{ext}"
        roundtrip(src, out)
        src_packets = clips.read_packets(src, "audio")
        assert len(src_packets) > 5
        assert clips.read_packets(out, "audio") == src_packets
        assert clips.read_packet_times(out, "audio") == clips.read_packet_times(src, "audio")


def test_subtitles_are_kept_in_mkv(clipdir):
    src = clips.make_subtitle_mkv(clipdir / "subs.mkv", frames=30)
    out = clipdir / "subs_out.mkv"
    roundtrip(src, out)
    assert probe_video(out).subtitle_streams == 1
    assert clips.read_packets(out, "subtitle") == [t.encode() for _, _, t in clips.SUBTITLES]
    assert clips.read_packet_times(out, "subtitle") == clips.read_packet_times(src, "subtitle")
    assert clips.read_packets(out, "audio") == clips.read_packets(src, "audio")


def test_attachments_are_kept_in_mkv(clipdir):
    """Fonts attached for ASS subtitles travel with them."""
    src = clips.make_subtitle_mkv(clipdir / "attach.mkv", frames=10, audio=False, attachment=True)
    out = clipdir / "attach_out.mkv"
    roundtrip(src, out)
    with av.open(str(out)) as c:
        att = [s for s in c.streams if s.type == "attachment"]
        assert [(a.name, a.mimetype, a.data) for a in att] == [clips.FONT_ATTACHMENT]


def test_srt_into_mp4_becomes_mov_text_with_a_warning(clipdir, caplog):
    src = clips.make_subtitle_mkv(clipdir / "subs2.mkv", frames=30, audio=False)
    out = clipdir / "subs_out.mp4"
    with caplog.at_level(logging.WARNING, logger="framecolor"):
        roundtrip(src, out)
    assert any("mov_text" in r.getMessage() for r in caplog.records)
    with av.open(str(out)) as c:
        stream = c.streams.subtitles[0]
        assert stream.codec_context.name == "mov_text"
        texts = []
        for p in c.demux(stream):
            if p.size:
                subs = stream.codec_context.decode2(p)
                texts += [r.ass.decode() for r in subs or []]
    assert [t.split(",", 8)[-1] for t in texts if t] == [t for _, _, t in clips.SUBTITLES]


def test_mp4_output_with_unsupported_pcm_audio_warns_and_transcodes_to_aac(clipdir, caplog):
    """MP4 cannot hold unsigned 8-bit PCM: the writer says so and encodes AAC instead."""
    src = clips.make_shapes_clip(clipdir / "pcm.mkv", frames=12, audio_codec="pcm_u8")
    out = clipdir / "pcm_out.mp4"
    with caplog.at_level(logging.WARNING, logger="framecolor"):
        roundtrip(src, out)
    assert any("pcm_u8" in r.getMessage() and "aac" in r.getMessage() for r in caplog.records)
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "aac"
        samples = sum(f.samples for f in c.decode(audio))
    assert abs(samples - 12 / 25 * 44100) < 3 * 1024  # the whole tone, within encoder padding


def test_rotation_and_aspect_ratio_are_kept(clipdir):
    src = clips.make_shapes_clip(clipdir / "rot.mp4", frames=6, sar=Fraction(4, 3), rotation=90)
    info = probe_video(src)
    assert info.rotation == 90 and info.sample_aspect_ratio == Fraction(4, 3)
    for ext in (".mkv", ".mp4"):
        out = clipdir / f"rot_out{ext}"
        roundtrip(src, out)
        got = probe_video(out)
        assert got.rotation == 90
        assert got.display_matrix == info.display_matrix
        assert got.sample_aspect_ratio == Fraction(4, 3)
        assert (got.width, got.height) == (96, 64)


def test_start_end_every_select_frames_by_number_and_time(clipdir, shapes_mkv):
    with VideoReader(shapes_mkv, start=4, end=14, every=3) as r:
        assert r.estimated_count() == 4
        assert [f.index for f in r] == [4, 7, 10, 13]
    with VideoReader(shapes_mkv, start="0.2s", end="00:00:00.4") as r:  # 25 fps: frames 5..9
        assert [f.index for f in r] == [5, 6, 7, 8, 9]


def test_trimmed_output_copies_only_the_audio_in_range(clipdir, shapes_mkv):
    out = clipdir / "trim.mkv"
    with VideoReader(shapes_mkv, start=10, end=20) as reader:
        with VideoWriter(out, reader.info, trim_side_streams=True) as writer:
            for frame in reader:
                writer.write(frame)
    assert len(times(out)) == 10
    src_times = clips.read_packet_times(shapes_mkv, "audio")
    out_times = clips.read_packet_times(out, "audio")
    assert 0 < len(out_times) < len(src_times)
    assert min(out_times) >= Fraction(10, 25) - Fraction(1024, 44100) * 5  # flac blocks
    assert max(out_times) < Fraction(20, 25)


def test_cut_clip_changes_colour_world_at_the_stated_cuts(clipdir):
    """The shared cut clip: the mean colour jumps at each cut and moves little inside a shot."""
    path, cuts = clips.make_cut_clip(clipdir / "cuts.mkv")
    assert cuts == [0, 10, 18]
    means = [img.reshape(-1, 3).mean(axis=0) for _, _, img in clips.read_all_frames(path)]
    jumps = [float(np.abs(means[i] - means[i - 1]).sum()) for i in range(1, len(means))]
    at_cuts = [jumps[c - 1] for c in cuts[1:]]
    inside = [j for i, j in enumerate(jumps, start=1) if i not in cuts]
    assert min(at_cuts) > 5 * max(inside)


def test_explicit_time_range_limits_the_audio(clipdir, shapes_mkv):
    out = clipdir / "trim_time.mkv"
    with VideoReader(shapes_mkv, start=0.4, end=0.8) as reader:
        with VideoWriter(out, reader.info, start_time=0.4, end_time=0.8) as writer:
            for frame in reader:
                writer.write(frame)
    assert times(out) == [Fraction(i, 25) for i in range(10, 20)]
    out_times = clips.read_packet_times(out, "audio")
    assert out_times and min(out_times) > Fraction(2, 10) and max(out_times) < Fraction(8, 10)


def test_parse_position():
    assert parse_position("120") == 120 and isinstance(parse_position("120"), int)
    assert parse_position("12.5s") == 12.5
    assert parse_position("12.5") == 12.5
    assert parse_position("01:02.5") == 62.5
    assert parse_position("00:01:02.5") == 62.5
    assert parse_position("1:00:00") == 3600.0
    with pytest.raises(UserError):
        parse_position("soon")


def test_natural_sort():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame100.png", "a.png"]
    assert sorted(names, key=natural_sort_key) == [
        "a.png", "Frame1.png", "frame2.png", "frame10.png", "frame100.png"
    ]  # fmt: skip


def test_default_output_path(tmp_path):
    (tmp_path / "shots").mkdir()
    assert default_output_path(tmp_path / "ep1.mp4") == tmp_path / "ep1.color.mkv"
    assert default_output_path(tmp_path / "shots") == tmp_path / "shots_color"
    assert default_output_path(tmp_path / "ep1.mp4", tmp_path / "o") == tmp_path / "o" / "ep1.color.mkv"


# -------------------------------------------------------------------------------------------------
# Frame folders


def test_16bit_folder_roundtrip_stays_16bit_in_natural_order(tmp_path):
    src = clips.make_frame_folder(tmp_path / "in", n=5, bit_depth=16)
    reader = FrameFolderReader(src)
    assert reader.bit_depth == 16 and (reader.width, reader.height) == (64, 48)
    assert reader.names == [f"f{n}.png" for n in clips.frame_folder_numbers(5)]
    writer = FrameFolderWriter(tmp_path / "out")
    frames = list(reader)
    assert [int(f.image[0, 0, 0]) // 257 for f in frames] == list(range(5))
    for f in frames:
        writer.write(f)
    writer.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(reader.names)
    for f in frames:
        back = cv2.imread(str(tmp_path / "out" / f.name), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint16
        assert np.array_equal(back[..., ::-1], f.image)


def test_folder_reader_reads_gray_and_alpha_as_rgb_and_jpg_writes_8bit(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    cv2.imwrite(str(d / "a1.png"), np.full((8, 10), 77, np.uint8))
    cv2.imwrite(str(d / "a2.png"), np.dstack([np.full((8, 10), v, np.uint8) for v in (1, 2, 3, 4)]))
    cv2.imwrite(str(d / "a3.jpg"), np.full((8, 10, 3), 100, np.uint8))
    frames = list(FrameFolderReader(d))
    assert all(f.image.shape == (8, 10, 3) for f in frames)
    assert frames[0].image[0, 0].tolist() == [77, 77, 77]
    assert frames[1].image[0, 0].tolist() == [3, 2, 1]  # BGRA on disk -> RGB
    out = FrameFolderWriter(tmp_path / "o")
    deep = Frame(index=0, image=np.full((8, 10, 3), 40000, np.uint16), name="x.jpg")
    out.write(deep)
    back = cv2.imread(str(tmp_path / "o" / "x.jpg"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and abs(int(back[0, 0, 0]) - 40000 // 257) <= 2


def test_folder_reader_start_end_every(tmp_path):
    src = clips.make_frame_folder(tmp_path / "in", n=8, bit_depth=8)
    frames = list(FrameFolderReader(src, start=1, end=7, every=2))
    assert [f.index for f in frames] == [1, 3, 5]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 3, 5]


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no frames here")
    with pytest.raises(UserError, match="holds no frames"):
        FrameFolderReader(tmp_path / "empty")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".bmp"])
def test_folder_with_mixed_sizes_names_the_odd_file(tmp_path, ext):
    d = tmp_path / "sizes"
    d.mkdir()
    for i in (1, 2, 3):
        cv2.imwrite(str(d / f"s{i}{ext}"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(d / f"s10{ext}"), np.zeros((21, 30, 3), np.uint8))
    with pytest.raises(UserError, match=f"s10{ext}.*30x21"):
        FrameFolderReader(d)


def test_folder_writer_refuses_non_empty_folder_and_honours_skip_existing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "f1.png").write_bytes(b"old")
    with pytest.raises(UserError, match="not empty"):
        FrameFolderWriter(out)
    w = FrameFolderWriter(out, skip_existing=True)
    assert w.exists("f1.png") and not w.exists("f2.png")
    img = np.zeros((4, 4, 3), np.uint8)
    w.write(Frame(0, img, name="f1.png"))
    w.write(Frame(1, img, name="f2.png"))
    w.close()
    assert (out / "f1.png").read_bytes() == b"old"  # resumed, not redone
    assert (out / "f2.png").exists() and w.skipped == 1 and w.written == 1
    assert sorted(p.name for p in out.iterdir()) == ["f1.png", "f2.png"]  # no temporaries left


def test_folder_writer_refuses_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.access(ro, os.W_OK):  # running as root: permissions are not enforced
            pytest.skip("permissions are not enforced for this user")
        with pytest.raises(UserError, match="not writable|cannot create"):
            FrameFolderWriter(ro / "out")
    finally:
        ro.chmod(0o700)


# -------------------------------------------------------------------------------------------------
# Bad input


def _cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_truncated_mkv_raises_naming_the_frame_and_leaves_no_output(clipdir):
    src = clips.make_shapes_clip(clipdir / "long.mkv", frames=40, audio=False)
    cut = _cut_in_half(src, clipdir / "cut.mkv")
    out = clipdir / "cut_out.mkv"
    with pytest.raises(MediaError, match=r"ends early at frame \d+ of about 40"):
        roundtrip(cut, out)
    assert not out.exists()
    assert not list(clipdir.glob(".cut_out*"))


@pytest.mark.parametrize(
    "preset,threads,message",
    [
        ("ultrafast", True, r"ends early at frame \d+ of 40"),
        ("medium", True, r"decoding failed at frame \d+|ends early at frame \d+ of 40"),
        # Single-threaded, FFmpeg 8 raises on the cut packet: the error path that names the frame.
        ("medium", False, r"decoding failed at frame \d+ \("),
    ],
)
def test_truncated_mp4_raises_naming_the_frame(clipdir, preset, threads, message):
    """A faststart MP4 cut in half: FFmpeg either stops early (caught by the stated frame count) or
    fails to decode; both must raise a MediaError naming a frame."""
    src = clipdir / f"faststart_{preset}_{threads}.mp4"
    # moov first (faststart), so that the first half is still a readable file
    with av.open(str(src), "w", options={"movflags": "+faststart"}) as out:
        vs = out.add_stream("libx264", rate=25, options={"preset": preset})
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        rng = np.random.default_rng(1)
        for i in range(40):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), np.uint8), format="rgb24")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    cut = _cut_in_half(src, clipdir / f"cut_{preset}_{threads}.mp4")
    with pytest.raises(MediaError, match=message):
        with VideoReader(cut, threads=threads) as r:
            for _ in r:
                pass


def test_not_media_file(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(MediaError, match="not a media file"):
        probe_video(p)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        VideoReader(tmp_path / "nope.mkv")


def test_audio_only_file_has_no_video_stream(tmp_path):
    p = clips.make_audio_only(tmp_path / "sound.m4a")
    with pytest.raises(MediaError, match="has no video stream"):
        VideoReader(p)


def test_writer_leaves_no_file_when_aborted(clipdir, shapes_mkv):
    out = clipdir / "aborted.mkv"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoReader(shapes_mkv) as reader:
            with VideoWriter(out, reader.info) as writer:
                for i, frame in enumerate(reader):
                    writer.write(frame)
                    if i == 10:
                        assert writer.tmp_path.exists()
                        raise RuntimeError("boom")
    assert not out.exists()
    assert not writer.tmp_path.exists()


def test_existing_output_refused_unless_overwrite(clipdir, shapes_mkv):
    out = clipdir / "exists.mkv"
    out.write_bytes(b"precious")
    with pytest.raises(UserError, match="exists"):
        VideoWriter(out, probe_video(shapes_mkv))
    assert out.read_bytes() == b"precious"
    roundtrip(shapes_mkv, out, overwrite=True)
    assert len(times(out)) == 24


def test_output_equal_to_input_refused(clipdir, shapes_mkv):
    before = shapes_mkv.read_bytes()
    with pytest.raises(UserError, match="is the input"):
        VideoWriter(shapes_mkv, probe_video(shapes_mkv), overwrite=True)
    with pytest.raises(UserError, match="is the input"):
        VideoWriter(clipdir / "." / shapes_mkv.name, probe_video(shapes_mkv), overwrite=True)
    assert shapes_mkv.read_bytes() == before


def test_container_that_cannot_hold_the_codec_is_refused(clipdir, shapes_mkv):
    with pytest.raises(UserError, match="cannot hold libx264"):
        VideoWriter(clipdir / "x.webm", probe_video(shapes_mkv))


def _x264_settings(path: Path) -> str:
    """The option string libx264 writes into its first SEI (e.g. '... subme=4 ...')."""
    data = path.read_bytes()
    start = data.find(b"x264 - core")
    assert start >= 0, "no x264 SEI found"
    return data[start:data.find(b"\x00", start)].decode("ascii", "replace")


def test_x264_preset_reaches_the_encoder_and_defaults_to_faster(shapes_mp4, clipdir):
    """--preset picks x264's speed/size trade-off: the encoder's settings differ by preset (subme is 2 for
    veryfast, 4 for faster, 7 for medium in every x264 release), and the default is faster."""
    roundtrip(shapes_mp4, clipdir / "p_default.mp4")
    roundtrip(shapes_mp4, clipdir / "p_veryfast.mp4", preset="veryfast")
    roundtrip(shapes_mp4, clipdir / "p_medium.mp4", preset="medium")
    assert " subme=4 " in _x264_settings(clipdir / "p_default.mp4")
    assert " subme=2 " in _x264_settings(clipdir / "p_veryfast.mp4")
    assert " subme=7 " in _x264_settings(clipdir / "p_medium.mp4")


# ------------------------------------------------------------------------------- reliability (issue 18)
def _stereo_pcm_mkv(path: Path, frames: int = 10) -> Path:
    """An mkv with stereo 16-bit PCM audio (what MP4's muxer refuses only when finishing the file)."""
    tb = Fraction(1, 25)
    with av.open(str(path), "w") as out:
        vs = clips._video_stream(out, "libx264", 96, 64, 25, "yuv420p", time_base=tb)
        audio = out.add_stream("pcm_s16le", rate=48000, layout="stereo")
        clips._encode_frames(out, vs, (clips.shapes_image(i, 96, 64, False) for i in range(frames)),
                             range(frames), tb)
        n = 48000 * frames // 25
        tone = (3000 * np.sin(np.arange(n) * 0.05)).astype(np.int16)
        f = av.AudioFrame.from_ndarray(np.repeat(tone, 2)[None, :], format="s16", layout="stereo")
        f.sample_rate, f.pts = 48000, 0
        out.mux(audio.encode(f))
        out.mux(audio.encode(None))
    return path


def test_stereo_pcm_into_mp4_is_transcoded_to_aac_when_the_output_opens(clipdir, caplog):
    """MP4's muxer takes stereo PCM in its header and refuses it only in the trailer, after a whole episode:
    the writer finds out when the output is opened (before any frame), warns, and writes AAC."""
    src = _stereo_pcm_mkv(clipdir / "stereo_pcm.mkv")
    out = clipdir / "stereo_pcm_out.mp4"
    with caplog.at_level(logging.WARNING, logger="framecolor"):
        writer = VideoWriter(out, probe_video(src))
        assert any("pcm_s16le" in r.getMessage() and "aac" in r.getMessage() for r in caplog.records)
        with writer, VideoReader(src) as reader:
            for frame in reader:
                writer.write(frame)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.audio[0].codec_context.channels == 2
        assert sum(1 for _ in c.decode(c.streams.video[0])) == 10


@pytest.fixture()
def small_disk(tmpfs):
    return tmpfs(192)


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_full_disk_with_libx264_fails_within_a_few_frames(small_disk, ext):
    """Noise frames of about 100 KB each fill a 192 KB disk in two frames: the run must fail soon after
    (x264 holds back some frames for its look-ahead), not when the file is finished, and leave nothing."""
    info = probe_video(clips.make_shapes_clip(small_disk.parent / "src.mkv", frames=2, size=(320, 240),
                                              audio=False))
    rng = np.random.default_rng(0)
    written = 0
    with pytest.raises(UserError, match="No space left") as e:
        with VideoWriter(small_disk / f"out{ext}", info) as writer:
            for i in range(300):
                image = rng.integers(0, 256, (240, 320, 3), np.uint8)
                writer.write(Frame(index=i, image=image))  # the next frame slot at 25 fps
                written += 1
    assert written < 60, f"the full disk was noticed only after {written} frames"
    assert e.value.exit_code == 1  # the system refused a write: not a media problem (exit 3)
    assert list(small_disk.iterdir()) == []


def test_corrupt_full_length_mkv_says_decoding_failed_at_a_frame(clipdir):
    """Garbage over a stretch in the middle of an mkv (its length intact): the demuxer gives up there; the
    error says decoding failed at that frame (not 'truncated')."""
    src = clips.make_shapes_clip(clipdir / "to_corrupt.mkv", frames=60, audio=False, color=False)
    data = bytearray(src.read_bytes())
    n = len(data)
    data[n // 3: n // 3 + 2000] = np.random.default_rng(1).integers(0, 256, 2000, np.uint8).tobytes()
    bad = clipdir / "corrupt.mkv"
    bad.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"decoding failed at frame \d+ .*corrupt") as e:
        with VideoReader(bad) as r:
            for _ in r:
                pass
    assert "truncated" not in str(e.value)


def test_mp4_cut_before_its_index_says_it_may_be_truncated(clipdir):
    """An MP4 written index-last and cut in half has no moov box: 'probably truncated', not 'not a media file'."""
    src = clips.make_shapes_clip(clipdir / "index_last.mp4", frames=40, audio=False)
    cut = _cut_in_half(src, clipdir / "index_last_cut.mp4")
    with pytest.raises(MediaError, match="probably truncated"):
        probe_video(cut)


def test_frame_count_of_a_variable_frame_rate_clip_is_exact(clipdir):
    """The progress bar's total: exact for variable frame rate (duration x average rate is not), also with a
    time range."""
    src = clips.make_vfr_clip(clipdir / "vfr60.mkv", frames=60)
    with VideoReader(src) as r:
        assert r.count_frames() == 60
        times = [f.time for f in r]
    with VideoReader(src, start=times[10], end=times[30], every=3) as r:
        assert r.count_frames() == len(list(r)) == 7
