"""One input, coloured: the options of a run, the choice of colouring mode, and the path from a file or frame
folder to its coloured copy.

* :class:`RunOptions`: every option of ``framecolor run`` (the command line and the Python API fill it), resolved
  and checked once by :meth:`RunOptions.validate`, before any input is read or model loaded;
* :func:`load_colorizer`: the run's model, loaded once for all its inputs;
* :func:`choose_colorizer`: the one switch over colouring modes for one input: automatic (gray), line art
  (``--input-kind``, decided per input for ``auto``), reference mode on either (``--reference``/``--hints``);
  the model is adapted to the show first with ``--adapt`` (in :func:`load_colorizer`);
* :func:`colour_input`: one video or frame folder through reader, colouring stream and writer; what the command
  line, :func:`framecolor.run` and each Ray worker call.

Several inputs (planning every output before the model loads, going on past a bad one) are
:mod:`framecolor.batch`'s.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .colorizers.base import InferStage, check_render_size, parse_batch
from .errors import UserError
from .stream import StreamStats, colorize_stream, luminance_pair
from .temporal import DEFAULT_SMOOTHER, make_smoother
from .temporal.smoothers import Smoother

log = logging.getLogger("framecolor")


@dataclass
class RunOptions:
    """What `framecolor run` takes, in one place (the CLI and the Python API fill it)."""

    model: Any = None
    device: str = "auto"
    backend: str = "auto"
    batch: int | str = 4  # or "auto"
    render_size: int | None = None
    temporal: str | None = None  # None: framecolor.temporal.DEFAULT_SMOOTHER (flow for video, off for folders)
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
    references: Any = field(default_factory=list)  # --reference values, Reference objects, or the API's forms
    hints: Any = None  # --hints FILE.json, or a list of point hints
    input_kind: str = "gray"  # --input-kind gray|lineart|auto (framecolor.colorizers.inputkind)
    draft_model: Any = None  # line art: drafting stage checkpoint (None: bundled)
    refine_model: Any = None  # line art: refinement stage checkpoint (None: bundled; "none": draft only)
    fps: Any = None  # --fps: frame rate of a video made from a frame folder (24, "24000/1001")
    progress: bool | None = None  # progress bar: None on a terminal only, True always, False never
    precision: str | None = "auto"  # --precision auto|fp32|bf16|fp16 (framecolor.backends.runtimes)
    adapt: bool = False  # --adapt: the references teach the generator first (framecolor.adaptation)
    adapt_minutes: float | None = None  # --adapt-minutes (None: the default budget)

    @property
    def keyed(self) -> bool:
        """Reference mode: keys or point hints were given."""
        return bool(self.references) or self.hints is not None

    def validate(self) -> RunOptions:
        """Resolve and check every option that does not depend on the input, in place, before anything is read
        or loaded: ``--input-kind`` lower-cased, ``--fps`` and ``--batch`` parsed; a missing backend extra,
        a bad ``--every``, ``--render-size``, ``--temporal`` or ``--cut-threshold``, and ``--adapt`` without
        keys or with line art are one-line UserErrors. Returns the options."""
        from .backends import check_backend
        from .colorizers.inputkind import parse_input_kind

        self.input_kind = parse_input_kind(self.input_kind)
        check_backend(self.backend, self.precision)  # a missing extra is one line before anything loads
        self.fps = parse_fps(self.fps)
        if self.adapt and not self.references:
            raise UserError("--adapt learns from the keys: give them with --reference")
        if self.adapt and self.input_kind == "lineart":
            raise UserError("--adapt adapts the grayscale generator; it does not apply to --input-kind lineart")
        if self.adapt_minutes is not None and not self.adapt:
            raise UserError("--adapt-minutes is for --adapt")
        self.batch = parse_batch(self.batch)
        if self.every < 1:
            raise UserError(f"--every must be at least 1 (got {self.every})")
        check_render_size(self.render_size)
        make_smoother(self.temporal or DEFAULT_SMOOTHER["video"], self.cut_threshold)
        return self


def parse_fps(text) -> Fraction | None:
    """``--fps``: 24, 23.976, 24000/1001."""
    if text is None:
        return None
    try:
        fps = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--fps {text!r}: not a frame rate (examples: 24, 23.976, 24000/1001)") from None
    if fps <= 0 or fps > 1000:
        raise UserError(f"--fps {text!r}: must be above 0 and at most 1000")
    return fps


# ------------------------------------------------------------------------------------ colouring modes
@dataclass
class Source:
    """What choosing a colouring mode needs of one input: its ``name`` for the log; ``again()``, a fresh
    iterator over its frames from the start (reference mode's first pass), or None for a stream that can be
    read once only; ``sample()``, a few of its frames (``--input-kind auto``)."""

    name: str
    again: Callable[[], Iterable] | None = None
    sample: Callable[[], list[np.ndarray]] = list


def file_source(inp: Path, kind: str, start=None, end=None, every: int = 1) -> Source:
    """A video or frame folder as a :class:`Source`; ``again()`` reads it as the colouring pass does (a
    video's luminance only), so both passes find the same cuts."""
    from .colorizers.inputkind import sample_frames
    from .io import open_reader

    def again():
        reader = open_reader(inp, kind, start=start, end=end, every=every, luma_only=True)
        try:
            yield from reader
        finally:
            reader.close()

    return Source(inp.name, again, lambda: sample_frames(inp, kind, start=start, end=end))


def load_colorizer(options: RunOptions, out: Path | None = None, announce: bool = False) -> InferStage:
    """The run's model, loaded once for all its inputs: the line-art stages for ``--input-kind lineart`` (the
    grayscale generator would never be used), else the automatic generator, first adapted on the keys with
    ``--adapt`` (cached in .framecolor/ beside ``out``). In reference mode without ``--model``, a missing
    bundled model is not an error yet: only a shot without a key needs it. ``announce``: log the model line."""
    from .colorizers.automatic import Colorizer, MissingModel

    if options.input_kind == "lineart":
        return _lineart_colorizer(options)
    if options.adapt:  # the keys teach the generator first (cached beside the output)
        options.model = adapted_model(options, out)
    try:
        colorizer = Colorizer(options.model, device=options.device, backend=options.backend, batch=options.batch,
                              render_size=options.render_size, precision=options.precision)
    except UserError as exc:
        if options.model is not None or not options.keyed or _default_model_installed():
            raise
        return MissingModel(exc, options.batch, options.render_size)
    if announce:
        log.info("%s", colorizer.describe())
    return colorizer


def _default_model_installed() -> bool:
    from .checkpoint import default_model_path

    try:
        default_model_path()
    except UserError:
        return False
    return True


def _lineart_colorizer(options: RunOptions) -> InferStage:
    from .colorizers.lineart import LineArtColorizer

    return LineArtColorizer(options.draft_model, options.refine_model, device=options.device,
                            backend=options.backend, batch=options.batch, render_size=options.render_size,
                            precision=options.precision)


def adapted_model(options: RunOptions, out: Path) -> Path:
    """--adapt: the model adapted on the run's --reference keys from ``options.model`` (the base), cached in
    .framecolor/ beside the output ``out`` (so a second run and other episodes reuse it)."""
    from .adaptation import AdaptSettings, adapted_for_run
    from .hints.references import parse_references

    settings = AdaptSettings() if options.adapt_minutes is None else AdaptSettings(minutes=options.adapt_minutes)
    return adapted_for_run(parse_references(options.references), options.model, out.parent / ".framecolor",
                           settings, progress=not options.quiet)


def choose_colorizer(source: Source, options: RunOptions, base: InferStage, applier=None) -> InferStage:
    """The colouring mode of one input, chosen here and nowhere else.

    * line art (``--input-kind lineart``, or ``auto`` deciding so on ``source.sample()``, one log line): the
      two-stage line-art colouriser (``base`` when it is one), in line-art reference mode with keys or hints;
    * gray with keys or point hints: reference mode at full resolution, ``base`` colouring what no key covers
      (``applier`` spreads point hints; default the edge-aware densifier);
    * gray without: ``base`` itself, the automatic (or adapted) generator.

    Reference mode reads the input twice when ``source.again`` allows (shots planned, bare keys placed first).
    """
    from .colorizers.inputkind import decide_input_kind
    from .hints.points import read_point_hints
    from .hints.references import parse_references

    if decide_input_kind(options.input_kind, source.name, source.sample) == "lineart":
        from .colorizers.lineart import LineArtColorizer

        stages = base if isinstance(base, LineArtColorizer) else _lineart_colorizer(options)
        log.info("%s: %s", source.name, stages.describe())
        if not options.keyed:
            return stages
        from .colorizers.lineart_reference import make_lineart_reference

        return make_lineart_reference(source.again, stages, parse_references(options.references),
                                      read_point_hints(options.hints), options.cut_threshold)
    if not options.keyed:
        return base
    from .colorizers.carrying import make_reference_colorizer
    from .hints.appliers import make_applier

    return make_reference_colorizer(source.again, base, applier or make_applier(),
                                    parse_references(options.references), read_point_hints(options.hints),
                                    base.render_size, options.cut_threshold, base.batch)


# ------------------------------------------------------------------------------------------ one input
def colour_input(inp: Path, out: Path, options: RunOptions, colorizer: InferStage,
                 stats: StreamStats | None = None) -> Path:
    """Colour one video or frame folder ``inp`` into ``out`` (planned and checked already, see
    :func:`framecolor.batch.plan_jobs`) with ``colorizer`` (from :func:`load_colorizer`): the reader and writer
    for the input (:func:`framecolor.io.open_reader` / :func:`~framecolor.io.open_writer`), the colouring mode
    for it (:func:`choose_colorizer`), the temporal smoother (``--temporal``, default by source kind), and the
    colouring stream between them, with a progress bar and the log lines of an input (cuts found, reference
    mode's shots, frames per second). ``stats`` receives the frame count and time.

    A video output appears only once complete; ``--skip-existing`` keeps an existing video and resumes a frame
    folder (:func:`_resumed_frames`). Returns the output path. The command line, :func:`framecolor.run` and each
    Ray worker colour every input through here."""
    from .io import open_reader, open_writer
    from .io.paths import parse_position, source_kind, writes_video

    kind = source_kind(inp)
    to_video = writes_video(kind, out)
    if to_video and options.skip_existing and out.is_file():
        # complete by construction: a video appears only once finished (temporary name, then renamed)
        log.info("%s: %s exists: skipped (--skip-existing)", inp.name, out)
        return out
    smoother = make_smoother(options.temporal or DEFAULT_SMOOTHER[kind], options.cut_threshold)
    start = parse_position(options.start) if isinstance(options.start, str) else options.start
    end = parse_position(options.end) if isinstance(options.end, str) else options.end
    if options.every < 1:
        raise UserError(f"--every must be at least 1 (got {options.every})")
    if kind == "folder" and (isinstance(start, float) or isinstance(end, float)):
        raise UserError("--start/--end for a frame folder are frame positions, not times")
    show_bar = progress_wanted(options)

    # Only the input's L is used (the output is built from it and the predicted ab), so gray-looking video
    # frames come straight from the Y plane; colour frames still go through RGB.
    reader = open_reader(inp, kind, start=start, end=end, every=options.every, luma_only=True)
    if kind == "video":  # the bar's total: counted from the packets where the container does not say
        total = reader.count_frames() if show_bar else None
    else:
        total = len(reader)
    # With a range, a video's audio and subtitles are cut to the span of the frames really written (exact for
    # variable frame rate too, where frame numbers do not map to times by the average rate).
    writer = open_writer(out, reader, codec=options.codec, crf=options.crf, preset=options.preset,
                         pix_fmt=options.pix_fmt, overwrite=options.overwrite, skip_existing=options.skip_existing,
                         fps=parse_fps(options.fps), trim_side_streams=start is not None or end is not None)
    frames = iter(reader)
    if kind == "folder" and not to_video and options.skip_existing:
        frames, total = _resumed_frames(reader, writer, out, smoother, colorizer)

    try:
        colorizer = choose_colorizer(file_source(inp, kind, start, end, options.every), options, colorizer)
    except BaseException:  # a bad key or hints file: no temporary output left behind
        writer.abort()
        reader.close()
        raise
    stats = stats if stats is not None else StreamStats()
    bar = progress_bar(total, inp.name, show_bar)
    try:
        with writer:
            for frame, image in colorize_stream(frames, colorizer, smoother, stats=stats):
                frame.image = image
                writer.write(frame)
                bar.update(1)
        if bar.total != bar.n:  # an estimated total: end the bar at what was really done
            bar.total = bar.n
            bar.refresh()
    finally:
        bar.close()
        reader.close()
    if smoother is not None:
        log.info("%s: %d scene cut(s) at frames %s", inp.name, len(stats.cuts), stats.cuts[:50])
    colorizer.log_summary(inp.name)
    if stats.frames == 0:
        log.warning("%s: no frames in the selected range", inp)
    log.debug("%s -> %s: %d frames in %.1f s (%.2f frames/s)", inp.name, out, stats.frames, stats.seconds,
              stats.frames / max(stats.seconds, 1e-9))
    return Path(writer.path)


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


def _resumed_frames(reader, writer, out: Path, smoother: Smoother | None, colorizer: InferStage
                    ) -> tuple[Iterator, int]:
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
    detector = copy.deepcopy(smoother.cut_detector)
    batch = max(1, int(colorizer.batch))
    shapes: dict = {}
    saved: dict[int, Any] = {}
    shot_start = 0
    for k, frame in enumerate(reader):
        if k >= first:
            break
        if k % batch == 0:
            saved[k] = copy.deepcopy(detector)
        _, L_small = luminance_pair(frame.image, colorizer.render_size, shapes)
        if detector.process(frame.index, L_small):
            shot_start = k
            saved = {j: d for j, d in saved.items() if j >= k - k % batch}
    restart = shot_start - shot_start % batch
    smoother.cut_detector = saved[restart]
    tail = copy.copy(reader)
    tail.start = selected[restart]  # same positions as selected[restart:] (same step and end)
    log.info("%s: resuming at %s; the temporal smoother is warmed up on the frames from %s (its shot's start)",
             out, reader.names[selected[first]], reader.names[selected[restart]])
    return iter(tail), len(selected) - restart
