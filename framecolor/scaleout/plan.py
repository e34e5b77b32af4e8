"""What a run on Ray is asked to do and what it gives back: options, results, the plan of an episode's
segments, and the ``--ray`` address."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

MIN_SEGMENT_FRAMES = 8  # never cut an episode into pieces shorter than this (one x264 GOP start each)


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
