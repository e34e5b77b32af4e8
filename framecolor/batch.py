"""Several inputs in one run: checked before anything heavy loads, each tried, each reported.

``framecolor run a.mkv b.mkv frames/ -o out/`` plans every output first (:func:`plan_jobs`): the input
exists and is media (probed), the output can be written (its folder is a folder, writable, the container
takes the codec, nothing is overwritten without ``--overwrite``), and stale temporaries of killed runs in
the output folders are removed. This runs before the model loads, so bad input or a bad ``-o`` is one
line and exit 2 (3 for media) at once, not after the model has loaded.

With one input any problem is raised at once. With several, a problem with one input (at planning or while
colouring) is one ``error:`` line naming it, the other inputs are still coloured, and the run ends with
one summary line per input and :class:`InputsFailed`. ``--skip-existing`` skips a video whose output
exists (complete by construction: written under a temporary name, renamed when finished), so re-running
the same command finishes an interrupted or partly failed batch.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import UserError
from .io.paths import default_output_path, source_kind, writes_video

log = logging.getLogger("framecolor")


class InputsFailed(UserError):
    """Some inputs of a batch failed; the others were finished. Exit code: the failures' own when they all
    share one (2 bad input, 3 media), else 1."""

    def __init__(self, failures: dict[Path, BaseException], total: int):
        self.failures = dict(failures)
        codes = {getattr(e, "exit_code", 1) for e in failures.values()}
        self.exit_code = codes.pop() if len(codes) == 1 else 1
        names = ", ".join(str(p) for p in failures)
        super().__init__(f"{len(failures)} of {total} input(s) failed: {names}")


@dataclass
class Job:
    """One input of a run: where it goes, and what became of it."""

    inp: Path
    out: Path | None = None
    kind: str | None = None  # "video" or "folder" (the input)
    error: BaseException | None = None
    skipped: bool = False  # --skip-existing found the video output complete
    frames: int = 0
    seconds: float = 0.0
    done: bool = False

    @property
    def writes_video(self) -> bool:
        return self.out is not None and writes_video(self.kind, self.out)

    def summary(self) -> str:
        """The run's last word on this input: one line."""
        if self.error is not None:
            text = str(self.error)
            text = text[len(f"{self.inp}: "):] if text.startswith(f"{self.inp}: ") else text
            return f"{self.inp}: failed: {text}"
        if self.skipped:
            return f"{self.inp}: skipped, {self.out} exists (--skip-existing)"
        if not self.seconds:  # coloured on Ray: the workers count frames all together
            return f"{self.inp}: done -> {self.out}"
        rate = self.frames / self.seconds
        return f"{self.inp}: {self.frames} frames in {self.seconds:.1f} s ({rate:.2f} frames/s) -> {self.out}"


def _existing_ancestor(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_can_create(out: Path, folder: Path) -> None:
    """``folder`` (where ``out`` will be written, maybe not there yet) can be made and written."""
    anc = _existing_ancestor(folder)
    if not anc.is_dir():
        raise UserError(f"{out}: cannot be written: {anc} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"{anc}: output folder is not writable")


def plan_output(inp: Path, output: Path | None, many: bool, overwrite: bool, skip_existing: bool = False,
                output_dir: bool = False, fps=None) -> tuple[Path, str, bool]:
    """(output path, input kind, skip) for one input, or a UserError saying why it cannot be written.

    ``output_dir``: ``-o`` was written with a trailing slash, so it names a folder even when it does not
    exist yet. ``skip``: the video output exists and ``skip_existing`` asks to keep it."""
    kind = source_kind(inp)
    if output is None:
        out = default_output_path(inp)
    elif many or (kind == "video" and (output_dir or output.is_dir())):
        out = default_output_path(inp, output_dir=output)
    else:
        out = output
    if kind == "folder" and writes_video(kind, out) and fps is None:
        raise UserError(f"{out}: a video name for the frame folder {inp}: give --fps (frames have no rate) to "
                        "write a video, or a folder name for frames")
    if out.resolve() == inp.resolve():
        raise UserError(f"{out}: output would overwrite the input")
    skip = False
    if writes_video(kind, out):
        if out.is_dir():
            raise UserError(f"{out}: is a folder; give a file name for the video output")
        if out.exists():
            if skip_existing:
                skip = True
            elif not overwrite:
                raise UserError(f"{out}: output exists (use --overwrite to replace it, --skip-existing to keep it)")
        _check_can_create(out, out.parent)
    else:
        if out.exists() and not out.is_dir():
            raise UserError(f"{out}: exists and is not a folder (frames of {inp} go into a folder)")
        if out.exists() and not (overwrite or skip_existing) and any(out.iterdir()):
            raise UserError(f"{out}: output exists (use --overwrite to replace it)")
        _check_can_create(out, out)
    return out, kind, skip


def _naming(exc: BaseException, inp: Path) -> BaseException:
    """The error with the input's name in front when its message does not name it (a batch's error lines
    each say which input they are about)."""
    text = str(exc)
    if str(inp) in text or inp.name in text:
        return exc
    named = UserError(f"{inp}: {text}")
    named.exit_code = getattr(exc, "exit_code", 1)
    return named


def _same_outputs(jobs: list[Job]) -> None:
    seen: dict[Path, Job] = {}
    for job in jobs:
        if job.out is None:
            continue
        key = job.out.resolve()
        if key in seen:
            raise UserError(f"{seen[key].inp} and {job.inp} would both write {job.out}: give them different "
                            "names or separate runs")
        seen[key] = job


def _input_size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def _warn_if_disk_too_small(job: Job) -> None:
    """A warning at the start, not an error: the output's size is only guessed (a coloured output is
    usually at least as large as its gray input)."""
    folder = _existing_ancestor(job.out.parent if job.writes_video else job.out)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    need = _input_size(job.inp)
    if need and free < need:
        log.warning("%s: only %.1f MB free in %s, the input is %.1f MB: the output will probably not fit",
                    job.out, free / 1e6, folder, need / 1e6)


def _probe(job: Job, options) -> None:
    """Read what can be read without the model: a video's header and first frame, a folder's frame sizes;
    the output's container and codec."""
    from .io import open_reader
    from .io.video_writer import check_video_output

    open_reader(job.inp, job.kind, start=options.start, end=options.end, every=options.every)
    if job.writes_video and not job.skipped:
        check_video_output(job.out, options.codec)


def plan_jobs(inputs: list[Path], output: Path | None, options, output_dir: bool = False,
              probe: bool = True) -> list[Job]:
    """Plan and check every input before any work. One input: its problem is raised. Several: each problem
    is kept in its Job (and logged as one line), except those of the run as a whole (a file as ``-o`` for
    several inputs, two inputs writing the same output), which are raised."""
    from .signals import remove_stale_temporaries

    many = len(inputs) > 1
    if many and output is not None and output.exists() and not output.is_dir():
        raise UserError(f"{output}: with several inputs, -o must be a folder")
    fps = getattr(options, "fps", None)
    jobs = []
    for inp in inputs:
        job = Job(Path(inp))
        try:
            job.out, job.kind, job.skipped = plan_output(job.inp, output, many, options.overwrite,
                                                         options.skip_existing, output_dir, fps)
            if probe:
                _probe(job, options)
        except UserError as exc:
            if not many:
                raise
            job.error = _naming(exc, job.inp)
            log.error("error: %s", job.error)
        jobs.append(job)
    _same_outputs(jobs)
    cleaned: set[Path] = set()
    for job in jobs:
        if job.error is not None or job.out is None:
            continue
        folder = job.out.parent if job.writes_video else job.out
        if folder not in cleaned and folder.is_dir():
            cleaned.add(folder)
            remove_stale_temporaries(folder)
        if not job.skipped:
            _warn_if_disk_too_small(job)
    return jobs


def run_jobs(jobs: list[Job], options, make_colorizer: Callable[[], object], run_one: Callable) -> None:
    """Colour each runnable job in turn; the model loads once, when the first job needs it. With several
    jobs a failing input is logged and recorded, and the next is tried; Ctrl-C and signals stop the run."""
    from .stream import StreamStats

    many = len(jobs) > 1
    colorizer = None
    for job in jobs:
        if job.error is not None:
            continue
        if job.skipped:
            log.info("%s: %s exists: skipped (--skip-existing)", job.inp, job.out)
            continue
        if colorizer is None:
            colorizer = make_colorizer()  # a bad model fails the whole run, not one input
        try:
            if job.writes_video:
                job.out.parent.mkdir(parents=True, exist_ok=True)
            stats = StreamStats()
            run_one(job.inp, job.out, options, colorizer, stats=stats)
            job.frames, job.seconds, job.done = stats.frames, stats.seconds, True
        except (UserError, OSError) as exc:
            if not many:
                raise
            job.error = _naming(exc, job.inp)
            log.error("error: %s", job.error)


def plan_outputs(inputs: list[Path], output: Path | None, overwrite: bool, skip_existing: bool = False,
                 output_dir: bool = False, fps=None) -> list[Path]:
    """Output path of each input, checked before any work starts (so a batch does not fail half-way);
    the first problem is raised (:func:`plan_jobs` keeps each input's problem instead). For the Python API
    (:func:`framecolor.run`, Ray's ``run_on_cluster``)."""
    many = len(inputs) > 1
    if many and output is not None and output.exists() and not output.is_dir():
        raise UserError(f"{output}: with several inputs, -o must be a folder")
    jobs = [Job(Path(inp), plan_output(Path(inp), output, many, overwrite, skip_existing, output_dir, fps)[0])
            for inp in inputs]
    _same_outputs(jobs)
    return [job.out for job in jobs]


def raise_if_failed(jobs: list[Job]) -> None:
    failures = {job.inp: job.error for job in jobs if job.error is not None}
    if failures:
        raise InputsFailed(failures, len(jobs))
