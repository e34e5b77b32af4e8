"""Reference mode against the flow-propagation baseline (`framecolor bench reference`, issue 6).

Protocol (design notes, "Evaluation protocol", reference mode): the first frame of each shot is given in
colour as the key; every 10th *other* frame is scored in CIEDE2000 on exact Lab. Shots come from
:class:`framecolor.temporal.CutDetector` on the true L (on bikes it finds the design's shots 0, 30, 76, 137,
187, 242), or from ``--keys``. The baseline, :class:`benchmarks.metrics.FlowPropagation`, carries each key
forward by DIS optical flow from frame to frame; it sees the same keys and is scored on the same frames.

The clip is decoded twice (once to find shots and keys, once to colour and score), so memory stays flat in
its length: only the key frames are held.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from framecolor.errors import UserError

from . import metrics as M
from .quality import DataSpec, open_source

__all__ = ["ReferenceResult", "find_keys", "evaluate_reference", "markdown"]


@dataclass
class ReferenceResult:
    data: str
    name: str
    keys: list[int]
    scored: list[int]
    ours: list[float] = field(default_factory=list)  # mean CIEDE2000 per scored frame
    flow: list[float] = field(default_factory=list)
    applier: str = ""
    seconds: float = 0.0

    @property
    def ours_mean(self) -> float:
        return float(np.mean(self.ours))

    @property
    def flow_mean(self) -> float:
        return float(np.mean(self.flow))

    def to_json(self) -> dict:
        return {"data": self.data, "name": self.name, "keys": self.keys, "scored": self.scored,
                "applier": self.applier, "reference_mode": round(self.ours_mean, 3),
                "flow_propagation": round(self.flow_mean, 3),
                "per_frame": {"reference_mode": [round(x, 3) for x in self.ours],
                              "flow_propagation": [round(x, 3) for x in self.flow]},
                "seconds": round(self.seconds, 1)}


def find_keys(spec: DataSpec, keys: list[int] | None = None) -> dict[int, np.ndarray]:
    """Key frames {index: RGB} of the spec's range: ``keys`` (the range's first frame is always one), or the
    first frame and every cut the detector finds on the true L."""
    from framecolor import color
    from framecolor.temporal import CutDetector

    source, sequence, _ = open_source(spec)
    if not sequence:
        raise UserError(f"--data {spec.text!r}: reference mode needs a video or a folder of same-size frames")
    detector = CutDetector()
    wanted = set(keys or [])
    found: dict[int, np.ndarray] = {}
    for i, rgb in source:
        cut = detector.process(i, color.luminance(rgb)) if keys is None else False
        if i == spec.start or cut or i in wanted:
            found[i] = rgb.copy()
    if not found:
        raise UserError(f"--data {spec.text!r}: no frames in the selected range")
    return found


def evaluate_reference(spec: DataSpec, hint_model=None, keys: list[int] | None = None,
                       temporal: str = "off", progress=None) -> ReferenceResult:
    """Colour ``spec`` in reference mode (keys from :func:`find_keys`) and score it and the baseline."""
    from framecolor.hints import make_applier
    from framecolor.pipeline import colorize_frames

    key_images = find_keys(spec, keys)
    key_list = sorted(key_images)
    applier = make_applier(hint_model)
    source, _, _ = open_source(spec)
    pending: deque = deque()  # (index, true frame) in flight: the pipeline keeps order, its queues are bounded

    def feed():
        for i, rgb in source:
            pending.append((i, rgb))
            yield M.gray_baseline(rgb)  # the model sees L only; colour comes from the keys

    t0 = time.perf_counter()
    # colorize_frames numbers frames from 0; references are given by position in the stream
    offset = spec.start
    out = colorize_frames(feed(), references={k - offset: img for k, img in key_images.items()},
                          hint_model=applier, temporal=temporal, batch=1)
    baseline = M.FlowPropagation()
    result = ReferenceResult(data=spec.text or str(spec.path), name=spec.name, keys=key_list, scored=[],
                             applier=applier.describe())
    for pred in out:
        i, rgb = pending.popleft()
        is_key = i in key_images
        flow_pred = baseline.process(rgb, is_key)
        if not is_key and (i - spec.start) % spec.step == 0:
            result.scored.append(i)
            result.ours.append(M.ciede2000_stats(pred, rgb)[0])
            result.flow.append(M.ciede2000_stats(flow_pred, rgb)[0])
        if progress is not None:
            progress(1)
    if not result.scored:
        raise UserError(f"--data {spec.text!r}: no frame to score besides the keys (range too short?)")
    result.seconds = time.perf_counter() - t0
    return result


def markdown(results: list[ReferenceResult]) -> str:
    lines = ["| clip | keys | scored frames | reference mode CIEDE2000 | flow propagation CIEDE2000 | "
             "reference / flow |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r.name} | {', '.join(map(str, r.keys))} | {len(r.scored)} | {r.ours_mean:.2f} | "
                     f"{r.flow_mean:.2f} | {r.ours_mean / r.flow_mean:.2f} |")
    if results:
        lines.append("")
        lines.append(f"Applier: {results[0].applier}.")
    return "\n".join(lines)
