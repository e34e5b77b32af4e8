"""Media in and out: video files through PyAV, folders of still frames through OpenCV.

:func:`open_reader` and :func:`open_writer` are the one place that chooses between a video and a frame folder;
everything else takes the reader or writer they return. Importing this package is light: PyAV and OpenCV load
with the modules that need them.

* ``paths``: what a path is (:func:`~framecolor.io.paths.source_kind`: video or frame folder), default output
  names, ``--start``/``--end`` positions, temporary names (no heavy imports);
* ``frame``: :class:`~framecolor.io.frame.Frame` (one picture and its timestamp or name) and
  :class:`~framecolor.io.frame.VideoInfo` (what a probe learns of a video);
* ``container``: opening and probing a video, container formats and their codecs, FFmpeg errors as one line;
* ``video_reader`` / ``video_writer`` / ``side_streams``: decoding; encoding with the source's timestamps,
  size, aspect and rotation; its audio, subtitles and attachments copied in the same pass;
* ``images`` / ``frame_folder``: still images (8 or 16 bit) and folders of them, names kept;
* ``segments``: video-only segments joined by packet copy (scale-out's split episodes).
"""

from __future__ import annotations


def open_reader(path, kind: str | None = None, start=None, end=None, every: int = 1, luma_only: bool = False):
    """The frames of an input: a :class:`~framecolor.io.video_reader.VideoReader` for a video file, a
    :class:`~framecolor.io.frame_folder.FrameFolderReader` for a folder of frames (``kind``, "video" or
    "folder": :func:`~framecolor.io.paths.source_kind`'s answer when already known). ``start``/``end``/``every``
    select frames; ``luma_only`` lets a video give black-and-white frames as 2-D gray images (frame folders
    always give RGB)."""
    from .paths import source_kind

    kind = kind or source_kind(path)
    if kind == "video":
        from .video_reader import VideoReader

        return VideoReader(path, start=start, end=end, every=every, luma_only=luma_only)
    from .frame_folder import FrameFolderReader

    return FrameFolderReader(path, start=start, end=end, every=every)


def open_writer(path, reader, codec: str = "libx264", crf: int | None = None, preset: str | None = None,
                pix_fmt: str | None = None, overwrite: bool = False, skip_existing: bool = False, fps=None,
                trim_side_streams: bool = False):
    """Where the coloured frames of ``reader`` (from :func:`open_reader`) go: for a video, a
    :class:`~framecolor.io.video_writer.VideoWriter` mirroring it (timestamps, audio and subtitles kept;
    ``trim_side_streams`` cuts those to the frames written); for a frame folder, a
    :class:`~framecolor.io.frame_folder.FrameFolderWriter` (same names), or a ``VideoWriter`` at ``fps`` frames per
    second when ``path`` is a video name."""
    from .paths import writes_video
    from .video_writer import VideoWriter

    if reader.kind == "video":
        return VideoWriter(path, source=reader.info, codec=codec, crf=crf, pix_fmt=pix_fmt, preset=preset,
                           trim_side_streams=trim_side_streams, overwrite=overwrite)
    if writes_video(reader.kind, path):
        if fps is None:
            from ..errors import UserError

            raise UserError(f"{path}: a video from the frame folder {reader.path} needs --fps")
        return VideoWriter(path, source=reader.video_info(fps), codec=codec, crf=crf, pix_fmt=pix_fmt,
                           preset=preset, overwrite=overwrite)
    from .frame_folder import FrameFolderWriter

    return FrameFolderWriter(path, overwrite=overwrite, skip_existing=skip_existing)
