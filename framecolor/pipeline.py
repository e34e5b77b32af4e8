"""The streaming colourisation loop: decode -> L -> batched generator -> smooth -> upsample -> encode.

Three threads joined by bounded queues, so decoding, inference and encoding overlap and memory does not
grow with the length of the episode:

    decode thread:  reader -> Frame -> full-size L and render-size L         -> queue (bounded)
    infer thread:   batches of render-size L -> generator -> render-size ab    -> queue (bounded)
    caller thread:  temporal smoothing (render size) -> guided upsampling to full size with the full L
                    -> Lab -> RGB (the input's L untouched) -> writer / caller

Videos are read luminance-only (VideoReader(luma_only=True)): a black-and-white frame's L comes from its
Y plane through a table, with no YUV -> RGB conversion.  Upsampling and Lab -> RGB run fused, strip by
strip on two threads (framecolor.upsample.upsample_to_rgb), or on the GPU beside a CUDA generator.

Errors raised in a worker thread travel down the queue and are raised again in the caller's thread; if
the caller stops early (an error, Ctrl-C, a closed generator), the workers are told to stop and joined.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import color
from .errors import UserError
from .temporal import DEFAULT_SMOOTHER, make_smoother

log = logging.getLogger("framecolor")

_END = object()  # end-of-stream marker in the queues


class _Failure:
    """An exception raised in a worker thread, carried to the caller's thread."""

    def __init__(self, exc: BaseException):
        self.exc = exc


@dataclass
class PreparedFrame:
    """A decoded frame with what the later stages need; `frame` is passed through to the writer."""

    frame: Any  # framecolor.io.frame.Frame
    L_full: np.ndarray  # (H, W) float32, the input's own L, kept untouched to the output
    L_small: np.ndarray  # (h, w) float32 at render size
    ab_small: np.ndarray | None = None  # (h, w, 2) float32 predicted ab, Lab units
    full_size: bool = False  # ab_small is already at full size and final (reference mode's carried colour)


def render_shape(height: int, width: int, render_size: int, multiple: int = 16) -> tuple[int, int]:
    """(h, w) at which the generator runs: short side = render_size (never enlarged), aspect kept,
    rounded to a multiple of 16 so the U-Net pads little."""
    short = min(height, width)
    scale = min(1.0, render_size / short)

    def rounded(x: float) -> int:
        return max(multiple, int(round(x * scale / multiple)) * multiple)

    return rounded(height), rounded(width)


def parse_batch(batch) -> int | str:
    """--batch value: a whole number >= 1, or 'auto'."""
    if isinstance(batch, str):
        if batch.strip().lower() == "auto":
            return "auto"
        try:
            batch = int(batch)
        except ValueError:
            raise UserError(f"--batch must be a whole number or 'auto' (got {batch!r})") from None
    if not isinstance(batch, int) or batch < 1:
        raise UserError(f"--batch must be at least 1 (got {batch})")
    return batch


class Colorizer:
    """A loaded generator behind a backend, with the batch size and render size it runs at.

    ``batch="auto"``: on CUDA the largest batch (from 32, halving) whose trial forward pass at a 16:9
    render shape fits in memory; on CPU 4 (see :func:`framecolor.backends.auto_batch`).

    ``predict`` never drops a frame: when the backend runs out of memory on a batch, the batch is halved
    and the same frames are run again (down to batch 1, after which the error is real).
    """

    def __init__(self, model=None, device: str = "auto", backend: str = "auto", batch: int | str = 4,
                 render_size: int | None = None, threads: int | None = None, precision: str | None = "auto"):
        from .backends import auto_batch, check_backend, make_backend
        from .checkpoint import load_generator

        check_backend(backend, precision)  # before the model loads
        batch = parse_batch(batch)
        if render_size is not None and render_size < 16:
            raise UserError(f"--render-size must be at least 16 (got {render_size})")
        if model is None or isinstance(model, (str, os.PathLike)):
            model = load_generator(model)
        self.model = model
        self.config = model.config
        if self.config.in_channels != 1:
            raise UserError(f"model expects {self.config.in_channels} input channels: it is a hint-conditioned "
                            "model, not an automatic colouriser")
        self.render_size = render_size or self.config.render_size
        if self.render_size < 16:
            raise UserError(f"--render-size must be at least 16 (got {self.render_size})")
        self.backend = make_backend(model, backend=backend, device=device,
                                    batch=None if batch == "auto" else batch, threads=threads, precision=precision)
        if batch == "auto":  # probed at the render shape of a 16:9 frame, the common case for episodes
            probe = render_shape(self.render_size * 9, self.render_size * 16, self.render_size)
            batch = auto_batch(self.backend, probe, self.config.in_channels)
        self.batch = batch

    @property
    def finish_device(self):
        """Where upsampling and Lab -> RGB run: the generator's CUDA device, or None (numpy on the CPU)."""
        device = getattr(self.backend, "device", None)
        return device if getattr(device, "type", None) == "cuda" else None

    def describe(self) -> str:
        path = getattr(self.model, "checkpoint_path", None)
        name = Path(path).name if path else "in-memory model"
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        return (f"backend {self.backend.describe()}, batch {self.batch}, render size {self.render_size}, "
                f"model {name} ({self.config.arch}, {params:.1f}M parameters)")

    def predict(self, L_smalls: list[np.ndarray]) -> list[np.ndarray]:
        """Render-size L frames (same shape) -> their ab (h, w, 2) in Lab units."""
        from .backends import free_cuda_cache, is_out_of_memory

        out: list[np.ndarray] = []
        i = 0
        while i < len(L_smalls):
            chunk = L_smalls[i : i + self.batch]
            x = color.normalize_L(np.stack(chunk)[:, None].astype(np.float32))
            try:
                y = self.backend(x)
            except Exception as exc:  # only out-of-memory is retried; anything else is a real error
                if not is_out_of_memory(exc) or self.batch == 1:
                    raise
                self.batch = max(1, self.batch // 2)
                log.warning("out of memory at batch %d: retrying the same frames at batch %d",
                            len(chunk), self.batch)
                free_cuda_cache()
                continue
            out.extend(color.denormalize_ab(np.moveaxis(y, 1, -1)).astype(np.float32))
            i += len(chunk)
        return out

    def predict_frames(self, prepared: list[PreparedFrame]) -> list[np.ndarray]:
        """ab of prepared frames (the infer stage's call; reference mode's colouriser also needs their
        frame numbers, see framecolor.reference.ReferenceColorizer)."""
        return self.predict([p.L_small for p in prepared])


# ------------------------------------------------------------------------------------------ threading
def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put with a timeout loop so a worker never blocks forever once the caller has stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue):
    return q.get()


def _decode_worker(frames: Iterable, prepare: Callable, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for frame in frames:
            if stop.is_set():
                return
            if not _put(out, prepare(frame), stop):
                return
        _put(out, _END, stop)
    except BaseException as exc:  # carried to the caller, raised there
        _put(out, _Failure(exc), stop)


def _infer_worker(colorizer: Colorizer, inp: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
    try:
        finished = False
        while not finished and not stop.is_set():
            batch: list[PreparedFrame] = []
            item = _get(inp)
            while True:
                if item is _END:
                    finished = True
                    break
                if isinstance(item, _Failure):
                    _put(out, item, stop)
                    return
                batch.append(item)
                if len(batch) >= colorizer.batch:
                    break
                # Always wait for a full batch (only the last may be short): the generator's output
                # depends, by float rounding, on how frames are grouped, and grouping by arrival time
                # made runs differ (and libx264 then encoded them differently).
                item = _get(inp)
            if batch:
                # Frames of one stream share a size; a new size (never within a video) starts a new batch.
                groups: dict[tuple, list[PreparedFrame]] = {}
                for p in batch:
                    groups.setdefault(p.L_small.shape, []).append(p)
                for group in groups.values():
                    for p, ab in zip(group, colorizer.predict_frames(group)):
                        p.ab_small = ab
                for p in batch:  # keep input order
                    if not _put(out, p, stop):
                        return
        _put(out, _END, stop)
    except BaseException as exc:
        _put(out, _Failure(exc), stop)


_GRAY_TO_L: dict[str, np.ndarray] = {}


def frame_luminance(image: np.ndarray) -> np.ndarray:
    """color.luminance(image); for a 2-D uint8/uint16 gray image (what VideoReader(luma_only=True)
    yields) through a table of L per gray level, so the decode stage does one look-up per pixel."""
    if image.ndim == 2 and image.dtype in (np.uint8, np.uint16):
        table = _GRAY_TO_L.get(image.dtype.name)
        if table is None:
            levels = np.arange(256 if image.dtype == np.uint8 else 65536).astype(image.dtype)
            table = _GRAY_TO_L[image.dtype.name] = color.luminance(levels[None, :])[0].astype(np.float32)
        if image.dtype == np.uint8:
            import cv2

            return cv2.LUT(image, table)
        return table[image]
    return color.luminance(image)


@dataclass
class StreamStats:
    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    seconds: float = 0.0


def colorize_stream(frames: Iterable, colorizer: Colorizer, smoother=None, queue_size: int | None = None,
                    stats: StreamStats | None = None) -> Iterator[tuple[Any, np.ndarray]]:
    """Frames (objects with an ``image`` RGB array) -> (frame, coloured RGB image of the same dtype), in order.

    The generator runs decode and inference in threads; closing it early stops them.
    """
    from .upsample import resize, upsample_to_rgb, upsample_to_rgb_torch

    queue_size = queue_size or max(2 * colorizer.batch, 4)
    decoded: queue.Queue = queue.Queue(maxsize=queue_size)
    inferred: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()
    shapes: dict[tuple[int, int], tuple[int, int]] = {}
    stats = stats if stats is not None else StreamStats()
    finish_device = getattr(colorizer, "finish_device", None)
    t0 = time.perf_counter()

    def prepare(frame) -> PreparedFrame:
        L_full = frame_luminance(frame.image)
        H, W = L_full.shape
        if (H, W) not in shapes:
            shapes[(H, W)] = render_shape(H, W, colorizer.render_size)
        h, w = shapes[(H, W)]
        return PreparedFrame(frame, L_full, resize(L_full, w, h, "area"))

    def finish(p: PreparedFrame, ab_small: np.ndarray) -> tuple[Any, np.ndarray]:
        # Joint bilateral upsampling (L_full as guide) and Lab -> RGB in one pass, strip by strip. Reference
        # mode gives full-size ab for the frames it carries: then Lab -> RGB only.
        image = p.frame.image
        dtype = image.dtype if image.dtype in (np.uint8, np.uint16) else np.dtype(np.float32)
        L_small = p.L_full if p.full_size else p.L_small
        if finish_device is not None:
            rgb = upsample_to_rgb_torch(ab_small, L_small, p.L_full, dtype, device=finish_device)
        else:
            rgb = upsample_to_rgb(ab_small, L_small, p.L_full, dtype)
        stats.frames += 1
        return p.frame, rgb

    def smoothed(p: PreparedFrame):
        if smoother is None:
            yield p, p.ab_small
            return
        from .temporal.smoothers import TemporalItem

        if p.full_size:  # carried at full size by reference mode: already coherent along the flow
            smoother.pass_through(p.frame.index, p.L_small)
            yield p, p.ab_small
            return
        for item in smoother.process(TemporalItem(index=p.frame.index, L=p.L_small, ab=p.ab_small, payload=p)):
            yield item.payload, item.ab

    workers = [
        threading.Thread(target=_decode_worker, args=(iter(frames), prepare, decoded, stop),
                         name="framecolor-decode", daemon=True),
        threading.Thread(target=_infer_worker, args=(colorizer, decoded, inferred, stop),
                         name="framecolor-infer", daemon=True),
    ]
    for t in workers:
        t.start()
    try:
        while True:
            item = inferred.get()
            if item is _END:
                break
            if isinstance(item, _Failure):
                raise item.exc
            for p, ab in smoothed(item):
                yield finish(p, ab)
        if smoother is not None:
            for item in smoother.flush():
                yield finish(item.payload, item.ab)
            stats.cuts = list(smoother.cuts)
    finally:
        stop.set()
        for q in (decoded, inferred):  # unblock a worker waiting on a full queue
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass
        for t in workers:
            t.join(timeout=5)
        stats.seconds = time.perf_counter() - t0


def colorize_frames(frames: Iterable[np.ndarray], model=None, batch: int = 4, render_size: int | None = None,
                    temporal: str = "off", device: str = "auto", backend: str = "auto",
                    cut_threshold: float | None = None, references=None, hints=None,
                    hint_model=None, precision: str | None = "auto", adapt=False,
                    adapt_cache=None) -> Iterator[np.ndarray]:
    """Python API: RGB (or gray) frames in, coloured RGB frames out, lazily and in order.

    ``frames`` is any iterable of (H, W, 3) or (H, W) uint8 / uint16 / float arrays; only their
    luminance is used.  ``model`` is a checkpoint path, a loaded generator, or None for the bundled model.
    Each output has the input's size, dtype and L.

    Reference mode (docs/reference-mode.md): ``references={frame: RGB image or path}`` (or a list of
    images, each placed at its best-matching frame) gives key frames that govern their shots; ``hints`` is a
    list of point hints ``{"frame", "x", "y", "rgb"}`` (or a JSON file path); ``hint_model``: how point hints
    are spread, None or "none" (the edge-aware :class:`~framecolor.hints.appliers.Densifier`) or a configured
    Densifier (hint networks are no longer used: issue 16). A list (or other re-iterable) of frames is read
    twice: first to find the shots and place the keys; keys are carried at full resolution.

    ``adapt=True`` (or a :class:`framecolor.adaptation.AdaptSettings`): the references also teach the generator
    the show first (``model`` is then the base, default the bundled one); the adapted model colours what the
    keys do not cover. It is cached in ``adapt_cache`` (default ``~/.cache/framecolor/adapted``) by the keys',
    base model's and settings' hashes.
    """
    from .io.frame import Frame

    if adapt:
        from .adaptation import AdaptSettings, adapted_for_run, default_cache_dir
        from .hints.references import parse_references

        model = adapted_for_run(parse_references(references, "references"), model, adapt_cache or default_cache_dir(),
                                adapt if isinstance(adapt, AdaptSettings) else None, progress=False)
    smoother = make_smoother(temporal, cut_threshold)
    if references is None and hints is None:
        colorizer = Colorizer(model, device=device, backend=backend, batch=batch, render_size=render_size,
                              precision=precision)
    else:
        colorizer = _api_reference_colorizer(frames, model, batch, render_size, device, backend, cut_threshold,
                                             references, hints, hint_model, precision)
    wrapped = (Frame(index=i, image=np.asarray(a)) for i, a in enumerate(frames))
    for _, image in colorize_stream(wrapped, colorizer, smoother):
        yield image
    if hasattr(colorizer, "log_summary"):
        colorizer.log_summary()


def _api_reference_colorizer(frames, model, batch, render_size, device, backend, cut_threshold, references,
                             hints, hint_model, precision="auto"):
    from .hints.appliers import make_applier
    from .hints.points import read_point_hints
    from .hints.references import parse_references
    from .io.frame import Frame
    from .reference import make_reference_colorizer

    refs = parse_references(references, "references")
    points = read_point_hints(hints)
    applier = make_applier(hint_model)
    size = render_size
    try:
        automatic = Colorizer(model, device=device, backend=backend, batch=batch, render_size=size,
                              precision=precision)
        size = automatic.render_size
    except UserError as exc:
        if model is not None:
            raise
        missing = exc  # no bundled model: fine while every shot has a key

        def automatic():
            raise UserError(f"a shot has no key, so it needs the automatic model: {missing}")

        size = size or 256
    again = None
    if iter(frames) is not frames:  # re-iterable: a first pass finds the shots and places the keys
        def again():
            return (Frame(index=i, image=np.asarray(a)) for i, a in enumerate(frames))

    return make_reference_colorizer(again, automatic, applier, refs, points, size, cut_threshold, batch)


# ------------------------------------------------------------------------------------- whole inputs
@dataclass
class RunOptions:
    """What `framecolor run` takes, in one place (the CLI and the Python API fill it)."""

    model: Any = None
    device: str = "auto"
    backend: str = "auto"
    batch: int | str = 4  # or "auto"
    render_size: int | None = None
    temporal: str | None = None  # None: flow for video, off for frame folders
    cut_threshold: float | None = None
    every: int = 1
    start: str | int | float | None = None
    end: str | int | float | None = None
    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None  # libx264/libx265 speed preset (None: io.video_writer.DEFAULT_PRESETS)
    pix_fmt: str | None = None
    overwrite: bool = False
    skip_existing: bool = False
    quiet: bool = False
    references: list = field(default_factory=list)  # --reference values (str) or hints.Reference objects
    hints: Any = None  # --hints FILE.json, or a list of point hints
    input_kind: str = "gray"  # --input-kind gray|lineart|auto (framecolor.lineart)
    draft_model: Any = None  # line art: drafting stage checkpoint (None: bundled)
    refine_model: Any = None  # line art: refinement stage checkpoint (None: bundled; "none": draft only)
    fps: Any = None  # --fps: frame rate of a video made from a frame folder (24, "24000/1001")
    progress: bool | None = None  # progress bar: None on a terminal only, True always, False never
    precision: str | None = "auto"  # --precision auto|fp32|bf16|fp16 (framecolor.backends.runtimes)
    adapt: bool = False  # --adapt: the references teach the generator first (framecolor.adaptation)
    adapt_minutes: float | None = None  # --adapt-minutes (None: the default budget)


def input_kind(path: Path) -> str:
    from .io.paths import source_kind

    return source_kind(path)


def plan_outputs(inputs: list[Path], output: Path | None, overwrite: bool, skip_existing: bool = False,
                 output_dir: bool = False, fps=None) -> list[Path]:
    """Output path of each input, checked before any work starts (so a batch does not fail half-way);
    the first problem is raised (framecolor.batch.plan_jobs keeps each input's problem instead)."""
    from .batch import Job, _same_outputs, plan_output

    many = len(inputs) > 1
    if many and output is not None and output.exists() and not output.is_dir():
        raise UserError(f"{output}: with several inputs, -o must be a folder")
    jobs = [Job(Path(inp), plan_output(Path(inp), output, many, overwrite, skip_existing, output_dir, fps)[0])
            for inp in inputs]
    _same_outputs(jobs)
    return [job.out for job in jobs]


def run(input, output=None, options: RunOptions | None = None, colorizer: Colorizer | None = None,
        **kwargs) -> Path:
    """Colour one video file or frame folder to ``output`` (default: beside the input).

    Keyword arguments are the fields of :class:`RunOptions`.  Returns the output path, which exists only
    once complete (a video is written under a temporary name and renamed at the end).
    """
    options = options or RunOptions(**kwargs)
    inp = Path(input)
    out = plan_outputs([inp], Path(output) if output is not None else None, options.overwrite,
                       options.skip_existing, fps=options.fps)[0]
    if options.adapt and colorizer is None:
        options.model = adapted_model(options, out)
    colorizer = colorizer or Colorizer(options.model, device=options.device, backend=options.backend,
                                       batch=options.batch, render_size=options.render_size,
                                       precision=options.precision)
    return _run_one(inp, out, options, colorizer)


def adapted_model(options: RunOptions, out: Path) -> Path:
    """--adapt: the model adapted on the run's --reference keys from ``options.model`` (the base), cached in
    .framecolor/ beside the output ``out`` (so a second run and other episodes reuse it)."""
    from .adaptation import AdaptSettings, adapted_for_run

    settings = AdaptSettings() if options.adapt_minutes is None else AdaptSettings(minutes=options.adapt_minutes)
    return adapted_for_run(_references(options), options.model, out.parent / ".framecolor", settings,
                           progress=not options.quiet)


def _run_one(inp: Path, out: Path, options: RunOptions, colorizer: Colorizer,
             stats: StreamStats | None = None) -> Path:
    from .batch import parse_fps, writes_video
    from .io.frame_folder import FrameFolderReader, FrameFolderWriter
    from .io.paths import parse_position
    from .io.video_reader import VideoReader
    from .io.video_writer import VideoWriter

    kind = input_kind(inp)
    to_video = writes_video(kind, out)
    if to_video and options.skip_existing and out.is_file():
        # complete by construction: a video appears only once finished (temporary name, then renamed)
        log.info("%s: %s exists: skipped (--skip-existing)", inp.name, out)
        return out
    temporal = options.temporal or DEFAULT_SMOOTHER[kind]
    smoother = make_smoother(temporal, options.cut_threshold)
    start = parse_position(options.start) if isinstance(options.start, str) else options.start
    end = parse_position(options.end) if isinstance(options.end, str) else options.end
    if options.every < 1:
        raise UserError(f"--every must be at least 1 (got {options.every})")
    show_bar = progress_wanted(options)

    if kind == "video":
        # Only the input's L is used (the output is built from it and the predicted ab), so gray-looking
        # frames come straight from the Y plane; colour frames still go through RGB.
        reader = VideoReader(inp, start=start, end=end, every=options.every, luma_only=True)
        info = reader.info
        # the bar's total: counted from the packets where the container does not say (variable frame rate)
        total = reader.count_frames() if show_bar else None
        # With a range, audio and subtitles are cut to the span of the frames really written (exact
        # for variable frame rate too, where frame numbers do not map to times by the average rate).
        writer = VideoWriter(out, source=info, codec=options.codec, crf=options.crf, pix_fmt=options.pix_fmt,
                             preset=options.preset, trim_side_streams=start is not None or end is not None,
                             overwrite=options.overwrite)
        frames = iter(reader)
    else:
        if isinstance(start, float) or isinstance(end, float):
            raise UserError("--start/--end for a frame folder are frame positions, not times")
        reader = FrameFolderReader(inp, start=start, end=end, every=options.every)
        total = len(reader)
        if to_video:  # frames into a video: --fps gives them their times
            fps = parse_fps(options.fps)
            if fps is None:
                raise UserError(f"{out}: a video from the frame folder {inp} needs --fps")
            writer = VideoWriter(out, source=reader.video_info(fps), codec=options.codec, crf=options.crf,
                                 pix_fmt=options.pix_fmt, preset=options.preset, overwrite=options.overwrite)
            frames = iter(reader)
        else:
            writer = FrameFolderWriter(out, overwrite=options.overwrite, skip_existing=options.skip_existing)
            frames, total = iter(reader), len(reader)
            if options.skip_existing:
                frames, total = _resumed_frames(reader, writer, out, smoother, colorizer)

    if _lineart_input(inp, kind, start, end, options):
        colorizer = _lineart_colorizer(inp, kind, start, end, options, colorizer)
    elif options.references or options.hints is not None:
        colorizer = _file_reference_colorizer(inp, kind, start, end, options, colorizer)
    stats = stats if stats is not None else StreamStats()
    bar = progress_bar(total, inp.name, show_bar)
    try:
        with writer:
            for frame, image in colorize_stream(frames, colorizer, smoother, stats=stats):
                frame.image = image
                writer.write(frame)
                bar.update(1)
        result = writer.path if hasattr(writer, "path") else out
        if bar.total != bar.n:  # an estimated total: end the bar at what was really done
            bar.total = bar.n
            bar.refresh()
    finally:
        bar.close()
        close = getattr(reader, "close", None)
        if close:
            close()
    if smoother is not None:
        log.info("%s: %d scene cut(s) at frames %s", inp.name, len(stats.cuts), stats.cuts[:50])
    if hasattr(colorizer, "log_summary"):
        colorizer.log_summary(inp.name)
    if stats.frames == 0:
        log.warning("%s: no frames in the selected range", inp)
    log.debug("%s -> %s: %d frames in %.1f s (%.2f frames/s)", inp.name, out, stats.frames, stats.seconds,
              stats.frames / max(stats.seconds, 1e-9))
    return Path(result)


def progress_wanted(options) -> bool:
    """A progress bar is drawn on a terminal (stderr), never in a log file unless asked (--progress)."""
    import sys

    forced = getattr(options, "progress", None)
    if getattr(options, "quiet", False) or forced is False:
        return False
    if forced:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(total, desc: str, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, disable=not show, dynamic_ncols=True, leave=True)


def _resumed_frames(reader, writer, out: Path, smoother, colorizer) -> tuple[Iterator, int]:
    """--skip-existing on a frame folder: (frames to run through the pipeline, how many).

    Without temporal smoothing, only the frames not yet written. With it, a resumed run must give what
    an uninterrupted run gives, and each smoothed frame depends on the frames before it in its shot: the
    pipeline is run again from the start of the shot holding the first missing frame (frames already
    written are recomputed for the smoother's history and not written again). The shots are those the
    smoother finds: its cut detector is first fed the frames before that point (luminance only, no
    generator). The restart falls on a multiple of the generator's batch from the first frame, so the
    generator groups frames as the uninterrupted run did (its output depends on the grouping by float
    rounding)."""
    selected = reader.selected()
    missing = [k for k, i in enumerate(selected) if not writer.exists(reader.names[i])]
    done = len(selected) - len(missing)
    if done:
        log.info("%s: %d frame(s) already coloured, skipped", out, done)
    if smoother is None or not missing or not done:
        return (f for f in reader if not writer.exists(f.name)), len(missing)
    first = missing[0]
    if first == 0:
        return iter(reader), len(selected)
    # Frames [0, first) through a copy of the smoother's cut detector (luminance only): the last cut before
    # `first` starts the shot to redo. A copy of the detector's state is kept at each batch boundary, so the
    # pipeline restarts with exactly the state the uninterrupted run had there.
    import copy

    from .upsample import resize

    detector = copy.deepcopy(smoother.cut_detector)
    batch = max(1, int(getattr(colorizer, "batch", 1)))
    shapes: dict = {}
    saved: dict[int, Any] = {}
    shot_start = 0
    for k, frame in enumerate(reader):
        if k >= first:
            break
        if k % batch == 0:
            saved[k] = copy.deepcopy(detector)
        L = frame_luminance(frame.image)
        if L.shape not in shapes:
            shapes[L.shape] = render_shape(*L.shape, colorizer.render_size)
        h, w = shapes[L.shape]
        if detector.process(frame.index, resize(L, w, h, "area")):
            shot_start = k
            saved = {j: d for j, d in saved.items() if j >= k - k % batch}
    restart = shot_start - shot_start % batch
    smoother.cut_detector = saved[restart]
    tail = copy.copy(reader)
    tail.start = selected[restart]  # same positions as selected[restart:] (same step and end)
    log.info("%s: resuming at %s; the temporal smoother is warmed up on the frames from %s (its shot's start)",
             out, reader.names[selected[first]], reader.names[selected[restart]])
    return iter(tail), len(selected) - restart


def _lineart_input(inp: Path, kind: str, start, end, options: RunOptions) -> bool:
    """--input-kind: True when this input is coloured as line art (auto: decided on a few sampled frames)."""
    from .lineart import decide_input_kind, sample_frames

    return decide_input_kind(options.input_kind, inp.name,
                             lambda: sample_frames(inp, kind, start=start, end=end)) == "lineart"


def _lineart_colorizer(inp: Path, kind: str, start, end, options: RunOptions, colorizer):
    """The two-stage line-art colouriser (framecolor.lineart), in reference mode with --reference/--hints."""
    from .lineart import LineArtColorizer

    if not isinstance(colorizer, LineArtColorizer):
        colorizer = LineArtColorizer(options.draft_model, options.refine_model, device=options.device,
                                     backend=options.backend, batch=options.batch, render_size=options.render_size,
                                     precision=options.precision)
    log.info("%s: %s", inp.name, colorizer.describe())
    if not (options.references or options.hints is not None):
        return colorizer
    from .hints.points import read_point_hints
    from .lineart import make_lineart_reference

    again = _reader_again(inp, kind, start, end, options.every)
    return make_lineart_reference(again, colorizer, _references(options), read_point_hints(options.hints),
                                  options.cut_threshold)


def _references(options: RunOptions) -> list:
    """--reference values (text) parsed, plus Reference objects given through the Python API."""
    from .hints.references import parse_references

    return parse_references(options.references)


def _reader_again(inp: Path, kind: str, start, end, every: int):
    """A function giving a fresh iterator over the same frames each call (the first pass of reference mode).
    Video is read as the main pass reads it (luminance only), so both passes find the same cuts."""
    from .io.frame_folder import FrameFolderReader
    from .io.video_reader import VideoReader

    def again():
        if kind == "video":
            reader = VideoReader(inp, start=start, end=end, every=every, luma_only=True)
            try:
                yield from reader
            finally:
                reader.close()
        else:
            yield from FrameFolderReader(inp, start=start, end=end, every=every)

    return again


def _file_reference_colorizer(inp: Path, kind: str, start, end, options: RunOptions, colorizer: Colorizer):
    """Reference mode for one input file or folder: a first pass over its frames (same range) finds the shots
    and places bare references; then the stateful reference colouriser replaces the automatic one."""
    from .hints.appliers import make_applier
    from .hints.points import read_point_hints
    from .reference import make_reference_colorizer

    refs = _references(options)
    points = read_point_hints(options.hints)
    applier = make_applier()
    again = _reader_again(inp, kind, start, end, options.every)
    return make_reference_colorizer(again, colorizer, applier, refs, points, colorizer.render_size,
                                    options.cut_threshold, colorizer.batch)
