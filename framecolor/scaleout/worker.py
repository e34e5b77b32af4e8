"""The worker side: one Ray actor per worker loads the model once and colours whole inputs (through
:func:`framecolor.job.colour_input`, the single-process path), scans and colours an episode's segments and joins
them; a small actor gathers everyone's progress."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from ..errors import MediaError
from ..temporal import DEFAULT_SMOOTHER

log = logging.getLogger("framecolor")

REPORT_INTERVAL = 0.2  # seconds between a worker's progress messages


class _Reporter:
    """Adds a task's frame count to the progress actor, at most every REPORT_INTERVAL seconds."""

    def __init__(self, board, task: str, attempt: int):
        self.board, self.task, self.attempt = board, task, attempt
        self.pending = 0
        self.last = time.monotonic()

    def add(self, n: int) -> None:
        self.pending += n
        now = time.monotonic()
        if now - self.last >= REPORT_INTERVAL:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.pending:
            self.board.add.remote(self.task, self.attempt, self.pending)  # fire and forget
            self.pending = 0


def _reporting_colorizer(options, device: str, reporter_box: list):
    """A Colorizer whose predictions are counted for the cluster's progress bar (counted as the
    generator finishes them: a few frames ahead of the encoder)."""
    from ..colorizers.automatic import Colorizer

    class ReportingColorizer(Colorizer):
        def predict(self, L_smalls):
            out = super().predict(L_smalls)
            if reporter_box[0] is not None:
                reporter_box[0].add(len(out))
            return out

    return ReportingColorizer(options.model, device=device, backend=options.backend, batch=options.batch,
                              render_size=options.render_size, precision=getattr(options, "precision", "auto"))


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files that a dead worker left beside (video) or inside (frame folder) an output."""
    from ..io.paths import TMP_MARK

    if out.is_dir():
        pattern, where = f".*{TMP_MARK}-*", out
    else:
        pattern, where = f".{out.stem}{TMP_MARK}-*{out.suffix}", out.parent
    if where.is_dir():
        for p in where.glob(pattern):
            try:
                p.unlink()
            except OSError:
                pass


class ColorWorker:
    """One Ray actor: loads the model once, then colours whole inputs, segments, scans and joins.

    Made remote at run time (``ray.remote(ColorWorker).options(...)``) so that this module imports
    without Ray.
    """

    def __init__(self, name: str, options, board_name: str, cpus: float, gpus: float, log_level: int):
        import ray
        import torch

        logging.getLogger("framecolor").setLevel(log_level)
        torch.set_num_threads(max(1, int(cpus)))
        self.name = name
        # Looked up by name rather than passed as a handle: a restarted actor rebuilds from plain arguments.
        self.board = ray.get_actor(board_name)
        # A worker that holds no GPU must not use one (another worker holds it).
        device = options.device
        if gpus <= 0 and device == "auto":
            device = "cpu"
        self._reporter: list = [None]
        self.colorizer = _reporting_colorizer(options, device, self._reporter)

    def _begin(self, task: str) -> int:
        import ray

        node = ray.get_runtime_context().get_node_id()
        return ray.get(self.board.begin.remote(task, self.name, os.getpid(), node))

    def _run(self, task: str, fn):
        attempt = self._begin(task)
        self._reporter[0] = _Reporter(self.board, task, attempt)
        try:
            return fn()
        finally:
            self._reporter[0].flush()
            self._reporter[0] = None
            self.board.end.remote(self.name)

    def pid(self) -> int:
        return os.getpid()

    def colour_input(self, task: str, inp: str, out: str, options) -> str:
        """Colour one whole input with the single-process code path (its output complete or absent)."""
        from ..job import colour_input

        def work():
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            # The driver checked every output before starting; a retried attempt may find the output
            # of an attempt that died just after renaming it: that one is ours to replace.
            opts = replace(options, quiet=True, overwrite=True)
            return str(colour_input(Path(inp), Path(out), opts, self.colorizer))

        return self._run(task, work)

    def scan(self, task: str, inp: str, options) -> tuple[int, list[int]]:
        """(frame count, scene cuts) of a video, found on the render-size L exactly as the smoother sees
        it during colouring (same detector, same settings)."""
        from ..io.video_reader import VideoReader
        from ..stream import luminance_pair
        from ..temporal.cuts import CutDetector

        def work():
            detector = CutDetector(threshold=options.cut_threshold)
            n = 0
            shapes: dict = {}
            with VideoReader(inp) as reader:
                for frame in reader:
                    _, L_small = luminance_pair(frame.image, self.colorizer.render_size, shapes)
                    detector.process(frame.index, L_small)
                    n += 1
            return n, list(detector.cuts)

        self._begin(task)
        try:
            return work()
        finally:
            self.board.end.remote(self.name)

    def colour_segment(self, task: str, inp: str, seg_path: str, start: int, end: int, options,
                       expected_cuts: list[int]) -> int:
        """Colour frames ``[start, end)`` of a video into a video-only file (same codec, time base).

        The smoother starts fresh at ``start``, which is a scene cut (or frame 0), where the unsplit run's
        smoother resets too."""
        from ..io.video_reader import VideoReader
        from ..io.video_writer import VideoWriter
        from ..stream import StreamStats, colorize_stream
        from ..temporal import make_smoother

        def work():
            smoother = make_smoother(options.temporal or DEFAULT_SMOOTHER["video"], options.cut_threshold)
            stats = StreamStats()
            with VideoReader(inp, start=start, end=end) as reader:
                writer = VideoWriter(seg_path, source=reader.info, codec=options.codec, crf=options.crf,
                                     preset=options.preset, pix_fmt=options.pix_fmt, copy_streams=False,
                                     overwrite=True)
                with writer:
                    for frame, image in colorize_stream(iter(reader), self.colorizer, smoother, stats=stats):
                        frame.image = image
                        writer.write(frame)
            if stats.frames != end - start:
                raise MediaError(f"{inp}: segment {start}-{end} gave {stats.frames} frames, "
                                 f"expected {end - start}")
            if smoother is not None and sorted(stats.cuts) != sorted(expected_cuts):
                log.warning("%s: frames %d-%d: cuts %s while colouring, %s in the scan: frames near them "
                            "may differ slightly from an unsplit run", inp, start, end, stats.cuts,
                            expected_cuts)
            return stats.frames

        return self._run(task, work)

    def join(self, task: str, inp: str, seg_paths: list[str], out: str, expected_frames: int) -> str:
        self._begin(task)
        try:
            from ..io.segments import join_segments

            return str(join_segments(Path(inp), [Path(p) for p in seg_paths], Path(out), expected_frames))
        finally:
            self.board.end.remote(self.name)


class ProgressBoard:
    """Progress of every task, fed by the workers, read by the driver (a Ray actor holding no CPU)."""

    def __init__(self):
        self.attempts: dict[str, int] = {}
        self.frames: dict[str, int] = {}
        self.workers: dict[str, dict] = {}

    def begin(self, task: str, worker: str, pid: int, node: str) -> int:
        self.attempts[task] = self.attempts.get(task, 0) + 1
        self.frames[task] = 0  # frames of a lost attempt are redone: count them again
        self.workers[worker] = {"pid": pid, "node": node, "task": task}
        return self.attempts[task]

    def add(self, task: str, attempt: int, n: int) -> None:
        if self.attempts.get(task) == attempt:
            self.frames[task] = self.frames.get(task, 0) + n

    def end(self, worker: str) -> None:
        if worker in self.workers:
            self.workers[worker]["task"] = None

    def snapshot(self) -> tuple[dict, dict, dict]:
        return dict(self.attempts), dict(self.frames), {k: dict(v) for k, v in self.workers.items()}
