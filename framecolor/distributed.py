"""Scale-out on Ray: many inputs, or one long episode split at scene cuts, across workers and machines.

``framecolor run INPUT... --ray [ADDRESS]`` hands the work to a Ray cluster (the optional extra ``ray``):

* One **worker actor** per GPU (``--gpus-per-worker``) or per N CPU cores (``--cpus-per-worker``) loads the
  model once (:class:`framecolor.pipeline.Colorizer`) and colours whole inputs through the very code of the
  single-process run (:func:`framecolor.pipeline._run_one`), so several episodes and frame folders progress
  at once.
* **Splitting** (``--split-episodes``): a video is first scanned for hard cuts on L with the same detector
  the temporal smoother uses (:class:`framecolor.temporal.cuts.CutDetector`, on the same render-size L), its
  shots grouped into segments of roughly equal length that start at cuts, each segment coloured into a
  video-only file, and the segments joined by packet copy (no re-encode) into one file, with the source's
  audio and subtitle packets copied once. The smoother resets at every cut, so a segment that starts at a
  cut is coloured exactly as in the unsplit run (Lai et al., ECCV 2018, and this project's
  ``temporal.py``: history never crosses a cut). Every segment starts with a key frame, so the packet
  concatenation is a valid stream; timestamps are the source's own, hence continuous.
* **Progress** of the whole cluster in one tqdm bar: workers add their frame counts to a small progress
  actor that the driver polls.
* **Faults**: a worker process that dies is restarted by Ray (``max_restarts``) and its task is run again
  (``max_task_retries``), on whichever node has room; a transient ``OSError`` (shared storage) is retried
  (``retry_exceptions``). A bad input (``UserError``/``MediaError``: truncated, not media...) is not
  retried: that input fails with its one-line message while the others finish. Outputs are complete or
  absent: videos are written under a hidden temporary name and renamed; temporaries of dead workers and
  segment folders are removed.

Inputs, outputs and the model must be on **shared storage** (the same path on every node): workers read
and write the files themselves; only small messages travel through Ray.

``ray`` is imported inside functions: importing this module does not need it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .errors import MediaError, UserError
from .temporal import DEFAULT_SMOOTHER, smooths

log = logging.getLogger("framecolor")

MIN_SEGMENT_FRAMES = 8  # never cut an episode into pieces shorter than this (one x264 GOP start each)
REPORT_INTERVAL = 0.2  # seconds between a worker's progress messages


class JobsFailed(UserError):
    """Some inputs could not be coloured; the others were. ``failures`` maps input -> message."""

    exit_code = 1

    def __init__(self, failures: dict[Path, str], total: int):
        self.failures = dict(failures)
        detail = "; ".join(failures.values())
        super().__init__(f"{len(failures)} of {total} input(s) failed: {detail}")


@dataclass
class ClusterOptions:
    """How to run on Ray (the CLI's ``--ray``, ``--workers``, ``--gpus-per-worker``...)."""

    address: str | None = None  # None/"local": start a local Ray instance for this run; "auto", "ray://h:p"
    workers: int | None = None  # default: as many as the cluster's CPUs (or GPUs) allow
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    split: bool = False  # split each video at scene cuts into segments coloured in parallel
    segments_per_worker: int = 1  # segments per worker and episode when splitting
    max_restarts: int = 2  # how often a dead worker is restarted (its task is retried as often)
    local_cpus: int | None = None  # num_cpus of a local instance (None: all)


@dataclass
class ClusterResult:
    outputs: dict[Path, Path] = field(default_factory=dict)  # input -> finished output
    failures: dict[Path, str] = field(default_factory=dict)  # input -> one-line message
    attempts: dict[Path, int] = field(default_factory=dict)  # input -> most attempts of one task
    segments: dict[Path, list[tuple[int, int]]] = field(default_factory=dict)  # split inputs
    frames: int = 0
    seconds: float = 0.0


@dataclass
class ClusterProgress:
    """What ``on_progress`` is given on every poll of the driver."""

    frames: int  # frames coloured so far, all workers together (lost attempts not counted)
    total: int | None
    attempts: dict[str, int]  # task key -> number of times it was started
    frames_by_task: dict[str, int]
    workers: dict[str, dict]  # worker name -> {"pid", "node", "task"}: the task it runs now


# ------------------------------------------------------------------------------------------ planning
def plan_segments(total: int, cuts: list[int], parts: int, at_cuts: bool = True,
                  min_frames: int = MIN_SEGMENT_FRAMES) -> list[tuple[int, int]]:
    """Split frames ``[0, total)`` into at most ``parts`` segments of roughly equal length.

    With ``at_cuts`` every boundary is a scene cut (a cut nearest each ideal boundary ``k * total / parts``,
    none closer than ``min_frames`` to another boundary); when there is no usable cut, or without
    ``at_cuts``, boundaries fall at fixed positions. Returns ``(start, end)`` frame ranges covering
    ``[0, total)`` in order.
    """
    parts = max(1, min(int(parts), total // max(1, min_frames)))
    if parts <= 1 or total <= 0:
        return [(0, max(total, 0))]
    usable = sorted({c for c in cuts if min_frames <= c <= total - min_frames})
    bounds: list[int] = []
    if at_cuts and usable:
        for k in range(1, parts):
            ideal = k * total / parts
            last = bounds[-1] if bounds else 0
            choices = [c for c in usable if c - last >= min_frames]
            if not choices:
                break
            best = min(choices, key=lambda c: (abs(c - ideal), c))
            if best not in bounds:
                bounds.append(best)
    else:
        bounds = [round(k * total / parts) for k in range(1, parts)]
    edges = [0, *bounds, total]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


# --------------------------------------------------------------------------------- worker-side code
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
    from .pipeline import Colorizer

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
    from .io.paths import TMP_MARK

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
        from .pipeline import _run_one

        def work():
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            # The driver checked every output before starting; a retried attempt may find the output
            # of an attempt that died just after renaming it: that one is ours to replace.
            opts = replace(options, quiet=True, overwrite=True)
            return str(_run_one(Path(inp), Path(out), opts, self.colorizer))

        return self._run(task, work)

    def scan(self, task: str, inp: str, options) -> tuple[int, list[int]]:
        """(frame count, scene cuts) of a video, found on the render-size L exactly as the smoother sees
        it during colouring (same detector, same settings)."""
        from . import color
        from .io.video_reader import VideoReader
        from .pipeline import render_shape
        from .temporal.cuts import CutDetector
        from .upsample import resize

        def work():
            detector = CutDetector(threshold=options.cut_threshold)
            n = 0
            with VideoReader(inp) as reader:
                H, W = reader.info.height, reader.info.width
                h, w = render_shape(H, W, self.colorizer.render_size)
                for frame in reader:
                    detector.process(frame.index, resize(color.luminance(frame.image), w, h, "area"))
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
        from .io.video_reader import VideoReader
        from .io.video_writer import VideoWriter
        from .pipeline import StreamStats, colorize_stream
        from .temporal import make_smoother

        def work():
            smoother = make_smoother(options.temporal or DEFAULT_SMOOTHER["video"], options.cut_threshold)
            stats = StreamStats()
            with VideoReader(inp, start=start, end=end) as reader:
                writer = VideoWriter(seg_path, source=reader.info, codec=options.codec, crf=options.crf,
                                     preset=options.preset, pix_fmt=options.pix_fmt, copy_streams=False, overwrite=True)
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
            from .io.segments import join_segments

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


# ----------------------------------------------------------------------------------------- driver
def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'framecolor[ray]'") from None
    return ray


def parse_address(text: str | None) -> str | None:
    """``--ray`` value: None/"local" (start a local instance), "auto", "ray://host:port" or "host:port".

    Anything else is refused: most likely an input file swallowed as the address (``--ray ep.mkv``)."""
    if text in (None, "", "local"):
        return None
    t = text.strip()
    if t == "auto" or t.startswith("ray://"):
        return t
    host, sep, port = t.rpartition(":")
    if sep and host and port.isdigit():
        return t
    raise UserError(f"--ray {text!r}: not a Ray address (auto, ray://host:port, host:port); give inputs "
                    "before --ray, or write --ray=local")


def _connect(ray, cluster: ClusterOptions) -> bool:
    """Start or join Ray; True when this call started a local instance (to be stopped at the end)."""
    if ray.is_initialized():
        return False
    address = cluster.address
    try:
        if address in (None, "", "local"):
            ray.init(num_cpus=cluster.local_cpus, include_dashboard=False, log_to_driver=True)
            return True
        ray.init(address=address, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"cannot connect to the Ray cluster at {address} ({e})") from None
    return False


def _worker_count(ray, cluster: ClusterOptions, started_here: bool) -> int:
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if cluster.gpus_per_worker > 0:
        fit = int(gpus // cluster.gpus_per_worker) if gpus else 0
        kind = f"{gpus:g} GPU(s) for {cluster.gpus_per_worker:g} per worker"
    else:
        fit = int(cpus // cluster.cpus_per_worker) if cluster.cpus_per_worker > 0 else int(cpus)
        kind = f"{cpus:g} CPU(s) for {cluster.cpus_per_worker:g} per worker"
    workers = cluster.workers or max(1, fit)
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers})")
    if workers > fit:
        msg = f"{workers} worker(s) asked, the cluster has room for {fit} ({kind})"
        if started_here:
            raise UserError(msg)
        log.warning("%s: the others wait until nodes join", msg)
    return workers


def _failure_message(inp: Path, exc: BaseException) -> str:
    import ray.exceptions as rex

    if isinstance(exc, rex.ActorDiedError) or isinstance(exc, rex.RayActorError):
        text = "its worker died on every attempt (crash or out of memory)"
    elif isinstance(exc, rex.RayTaskError):
        cause = getattr(exc, "cause", None)
        text = str(cause) if cause is not None else str(exc).strip().splitlines()[-1]
    else:
        text = str(exc)
    text = " ".join(text.split())
    return text if str(inp) in text else f"{inp}: {text}"


@dataclass
class _Item:
    kind: str  # "input", "scan", "segment", "join"
    inp: Path
    key: str
    args: tuple = ()


def run_cluster(inputs, outputs, options, cluster: ClusterOptions | None = None,
                on_progress: Callable[[ClusterProgress], Any] | None = None) -> ClusterResult:
    """Colour ``inputs`` into ``outputs`` (already planned, e.g. by ``pipeline.plan_outputs``) on Ray.

    Returns a :class:`ClusterResult`: finished outputs and, per failed input, a one-line message (the
    others are finished regardless). ``on_progress`` is called on each poll (about 4 per second).
    """
    from tqdm import tqdm

    from .pipeline import input_kind, progress_wanted

    cluster = cluster or ClusterOptions()
    ray = _import_ray()
    inputs = [Path(p) for p in inputs]
    outputs = [Path(p) for p in outputs]
    result = ClusterResult()
    t0 = time.perf_counter()
    started_here = _connect(ray, cluster)
    actors: list = []
    board = None
    seg_dirs: dict[Path, Path] = {}
    try:
        n_workers = _worker_count(ray, cluster, started_here)
        n_workers = min(n_workers, max(1, len(inputs))) if not cluster.split else n_workers
        board_name = f"framecolor-progress-{uuid.uuid4().hex}"
        board = ray.remote(num_cpus=0)(ProgressBoard).options(name=board_name).remote()
        Worker = ray.remote(ColorWorker)
        worker_opts = dict(num_cpus=cluster.cpus_per_worker, num_gpus=cluster.gpus_per_worker,
                           max_restarts=cluster.max_restarts, max_task_retries=cluster.max_restarts)
        level = log.getEffectiveLevel()
        actors = [Worker.options(**worker_opts).remote(f"worker-{i}", options, board_name,
                                                       cluster.cpus_per_worker, cluster.gpus_per_worker,
                                                       max(level, logging.WARNING))
                  for i in range(n_workers)]

        out_of = dict(zip(inputs, outputs))
        totals: dict[Path, int | None] = {}
        pending: deque[_Item] = deque()
        for inp in inputs:
            try:
                kind = input_kind(inp)
                totals[inp] = _estimate_frames(inp, kind, options)
            except UserError as e:
                result.failures[inp] = str(e)
                continue
            whole = (not cluster.split or kind != "video" or options.every != 1
                     or options.start is not None or options.end is not None)
            if whole:
                pending.append(_Item("input", inp, f"{inp}"))
            else:
                pending.append(_Item("scan", inp, f"{inp} (scan)"))
        total = sum(t for t in totals.values() if t) or None
        bar = tqdm(total=total, unit="frame", desc=f"{len(inputs)} input(s) on {n_workers} worker(s)",
                   disable=not progress_wanted(options), dynamic_ncols=True)
        segments_left: dict[Path, set[str]] = {}
        seg_files: dict[Path, list[Path]] = {}
        seg_frames: dict[Path, int] = {}
        idle = list(actors)
        running: dict = {}  # ObjectRef -> (actor, item)
        frames_done = 0

        def submit(actor, item: _Item):
            if item.kind == "input":
                ref = actor.colour_input.options(retry_exceptions=[OSError]).remote(
                    item.key, str(item.inp), str(out_of[item.inp]), options)
            elif item.kind == "scan":
                ref = actor.scan.options(retry_exceptions=[OSError]).remote(item.key, str(item.inp), options)
            elif item.kind == "segment":
                seg_path, start, end, cuts = item.args
                ref = actor.colour_segment.options(retry_exceptions=[OSError]).remote(
                    item.key, str(item.inp), str(seg_path), start, end, options, cuts)
            else:
                ref = actor.join.options(retry_exceptions=[OSError]).remote(
                    item.key, str(item.inp), [str(p) for p in seg_files[item.inp]], str(out_of[item.inp]),
                    seg_frames[item.inp])
            running[ref] = (actor, item)

        def fail(inp: Path, exc: BaseException) -> None:
            if inp in result.failures:
                return
            result.failures[inp] = _failure_message(inp, exc)
            log.error("%s", result.failures[inp])
            # Drop what is still queued for this input; what runs finishes and is thrown away.
            for it in [it for it in pending if it.inp == inp]:
                pending.remove(it)
            segments_left.pop(inp, None)

        def finished(item: _Item, value) -> None:
            inp = item.inp
            if inp in result.failures:
                return
            if item.kind in ("input", "join"):
                result.outputs[inp] = Path(value)
            elif item.kind == "scan":
                n, cuts = value
                smoothed = smooths(options.temporal or DEFAULT_SMOOTHER["video"])
                plan = plan_segments(n, cuts, n_workers * cluster.segments_per_worker, at_cuts=smoothed)
                if n == 0 or len(plan) < 2:  # too short to split: coloured whole, audio and all
                    pending.appendleft(_Item("input", inp, f"{inp}"))
                    return
                if smoothed and len(plan) > 1 and not cuts:
                    log.warning("%s: no scene cuts: split at fixed frames, where temporal smoothing starts "
                                "afresh (frames there may differ slightly from an unsplit run)", inp)
                result.segments[inp] = plan
                out = out_of[inp]
                seg_dirs[inp] = d = out.parent / f".{out.name}.framecolor-segments-{uuid.uuid4().hex[:8]}"
                d.mkdir(parents=True)
                seg_files[inp] = [d / f"segment{i:04d}{out.suffix}" for i in range(len(plan))]
                seg_frames[inp] = n
                segments_left[inp] = set()
                for i, (a, b) in enumerate(plan):
                    key = f"{inp} [{a}:{b}]"
                    segments_left[inp].add(key)
                    inner = [c for c in cuts if a < c < b]
                    pending.append(_Item("segment", inp, key, (seg_files[inp][i], a, b, inner)))
                log.info("%s: %d frames, %d cut(s), %d segment(s) %s", inp.name, n, len(cuts), len(plan), plan)
            elif item.kind == "segment":
                segments_left[inp].discard(item.key)
                if not segments_left[inp]:
                    pending.appendleft(_Item("join", inp, f"{inp} (join)"))

        last_poll = 0.0
        while pending or running:
            while pending and idle:
                submit(idle.pop(0), pending.popleft())
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.25)
            for ref in ready:
                actor, item = running.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.ActorDiedError as e:  # restarts used up: this worker is gone
                    fail(item.inp, e)
                    continue
                except (ray.exceptions.RayError, UserError) as e:
                    fail(item.inp, e)
                else:
                    finished(item, value)
                idle.append(actor)
            if time.monotonic() - last_poll >= 0.25 or not running:
                last_poll = time.monotonic()
                attempts, frames, workers = ray.get(board.snapshot.remote())
                frames_done = sum(frames.values())
                if frames_done != bar.n:  # may go down: frames of a lost attempt are redone
                    bar.n = frames_done
                    bar.refresh()
                if on_progress is not None:
                    on_progress(ClusterProgress(frames_done, total, attempts, frames, workers))
            if not idle and not running and pending:
                for it in list(pending):
                    fail(it.inp, RuntimeError("no worker left (every worker died)"))
                break
        bar.close()
        attempts, frames, _ = ray.get(board.snapshot.remote())
        for inp in inputs:
            mine = [a for k, a in attempts.items() if k == str(inp) or k.startswith(f"{inp} ")]
            result.attempts[inp] = max(mine, default=0)
        result.frames = sum(frames.values())
        for inp in inputs:  # anything planned but never finished (should not happen) is a failure
            if inp not in result.outputs and inp not in result.failures:
                result.failures[inp] = f"{inp}: not finished"
    finally:
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - a dead actor is fine
                pass
        if board is not None:
            try:
                ray.kill(board)
            except Exception:  # noqa: BLE001
                pass
        for d in seg_dirs.values():
            shutil.rmtree(d, ignore_errors=True)
        for out in outputs:
            _remove_stale_temporaries(out)
        if started_here:
            ray.shutdown()
    result.seconds = time.perf_counter() - t0
    return result


def _estimate_frames(inp: Path, kind: str, options) -> int | None:
    """Frames an input should give (for the bar); probing also refuses a non-media file up front."""
    from .io import open_reader

    reader = open_reader(inp, kind, start=options.start, end=options.end, every=options.every)
    return reader.estimated_count() if kind == "video" else len(reader)


def run_on_cluster(inputs, output=None, options=None, cluster: ClusterOptions | None = None,
                   on_progress=None, **kwargs) -> ClusterResult:
    """Python API: plan outputs like ``framecolor run`` and colour on Ray; raises :class:`JobsFailed`
    (after the other inputs are finished) when some input fails."""
    from .pipeline import RunOptions, plan_outputs

    options = options or RunOptions(**kwargs)
    inputs = [Path(p) for p in inputs]
    outputs = plan_outputs(inputs, Path(output) if output is not None else None, options.overwrite,
                           options.skip_existing)
    result = run_cluster(inputs, outputs, options, cluster, on_progress)
    if result.failures:
        raise JobsFailed({k: result.failures[k] for k in inputs if k in result.failures}, len(inputs))
    return result


__all__ = ["parse_address", "ClusterOptions", "ClusterResult", "ClusterProgress", "JobsFailed", "plan_segments",
           "run_cluster", "run_on_cluster", "MIN_SEGMENT_FRAMES"]
