"""The driver side of a run on Ray: connect (or start a local instance), start the workers, hand out inputs,
scans, segments and joins as workers come free, retry what Ray retries, turn every failure into one line naming
its input, and draw one progress bar for the whole cluster."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError
from ..temporal import DEFAULT_SMOOTHER, smooths
from .plan import ClusterOptions, ClusterProgress, ClusterResult, JobsFailed, plan_segments
from .worker import ColorWorker, ProgressBoard, _remove_stale_temporaries

log = logging.getLogger("framecolor")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'framecolor[ray]'") from None
    return ray


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
    """Colour ``inputs`` into ``outputs`` (already planned, e.g. by :func:`framecolor.batch.plan_outputs`) on Ray.

    Returns a :class:`ClusterResult`: finished outputs and, per failed input, a one-line message (the
    others are finished regardless). ``on_progress`` is called on each poll (about 4 per second).
    """
    from tqdm import tqdm

    from ..io.paths import source_kind
    from ..job import progress_wanted

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
                kind = source_kind(inp)
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
    from ..io import open_reader

    reader = open_reader(inp, kind, start=options.start, end=options.end, every=options.every)
    return reader.estimated_count() if kind == "video" else len(reader)


def run_on_cluster(inputs, output=None, options=None, cluster: ClusterOptions | None = None,
                   on_progress=None, **kwargs) -> ClusterResult:
    """Python API: plan outputs like ``framecolor run`` and colour on Ray; raises :class:`JobsFailed`
    (after the other inputs are finished) when some input fails."""
    from ..batch import plan_outputs
    from ..job import RunOptions

    options = (options or RunOptions(**kwargs)).validate()
    inputs = [Path(p) for p in inputs]
    outputs = plan_outputs(inputs, Path(output) if output is not None else None, options.overwrite,
                           options.skip_existing)
    result = run_cluster(inputs, outputs, options, cluster, on_progress)
    if result.failures:
        raise JobsFailed({k: result.failures[k] for k in inputs if k in result.failures}, len(inputs))
    return result


def run_jobs_on_ray(jobs, options, cluster: ClusterOptions) -> None:
    """``framecolor run --ray``: colour the planned jobs (:func:`framecolor.batch.plan_jobs`) that can run on the
    cluster and record in each what became of it (done, or its failure, exit code 1)."""
    todo = [job for job in jobs if job.error is None and not job.skipped]
    if not todo:
        return
    result = run_cluster([job.inp for job in todo], [job.out for job in todo], options, cluster)
    for job in todo:
        if job.inp in result.outputs:
            job.done = True
        else:
            job.error = UserError(result.failures.get(job.inp, f"{job.inp}: not finished"))
            job.error.exit_code = 1
