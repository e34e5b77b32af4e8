"""`framecolor bench quality`: models x data sets, scored by the protocol of the design notes, with the
gray and flow-propagation baselines on the same frames, and the tables, charts and contact sheets.

Data specs: ``PATH[:domain][@A:B:STEP]``.  PATH is a video, a frame folder or one image; ``domain`` a
label (cartoon, live-action, ...; default: the file's stem); ``@A:B:STEP`` keeps frames A <= i < B (B may
be empty: to the end) and scores accuracy on every STEP-th of them (default 10, the protocol's).

For video (and frame folders whose frames share one size) the temporal figures (CDC, ab warp error) are
measured on every frame of the range when a range is given, else on its first 30 frames; accuracy on every
STEP-th frame.  Reference frames of the flow-propagation baseline (each shot's first frame, shots found by
:class:`framecolor.temporal.cuts.CutDetector` on the true L) are left out of that baseline's accuracy.

One streaming pass per data set: frames are decoded once and shared by the models (run in lockstep),
the baselines and the metrics; the optical flow of the true L is computed once per frame pair.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framecolor.errors import UserError

from . import metrics as M

DEFAULT_STEP = 10
TEMPORAL_SPAN = 30
CONTACT_FRAMES = 4
GRAY, FLOW = "gray", "flow propagation"
TRUTH = "ground truth"
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}

_RANGE_RE = re.compile(r"^(\d*):(\d*)(?::(\d+))?$")
_DOMAIN_RE = re.compile(r"^[A-Za-z][\w.-]*$")


@dataclass
class DataSpec:
    path: Path
    domain: str
    start: int = 0
    end: int | None = None
    step: int = DEFAULT_STEP
    has_range: bool = False
    text: str = ""

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name


def parse_data_spec(text: str) -> DataSpec:
    """``PATH[:domain][@A:B:STEP]`` -> DataSpec; a UserError with a one-line reason when malformed."""
    original = text
    usage = "expected PATH[:domain][@A:B:STEP], e.g. clip.mp4:cartoon@200:400:10"
    if not text or not text.strip():
        raise UserError(f"--data: empty data spec ({usage})")
    start, end, step, has_range = 0, None, DEFAULT_STEP, False
    if "@" in text:
        text, rng = text.rsplit("@", 1)
        m = _RANGE_RE.match(rng.strip())
        if not m:
            raise UserError(f"--data {original!r}: frame range {rng!r} is not A:B or A:B:STEP ({usage})")
        start = int(m.group(1)) if m.group(1) else 0
        end = int(m.group(2)) if m.group(2) else None
        step = int(m.group(3)) if m.group(3) else DEFAULT_STEP
        if step < 1:
            raise UserError(f"--data {original!r}: STEP must be at least 1")
        if end is not None and end <= start:
            raise UserError(f"--data {original!r}: range end {end} must be after start {start}")
        has_range = True
    domain = None
    if ":" in text and not Path(text).exists():
        head, tail = text.rsplit(":", 1)
        if not _DOMAIN_RE.match(tail):
            raise UserError(f"--data {original!r}: domain {tail!r} must be a word (letters, digits, - _ .)")
        text, domain = head, tail
    if not text:
        raise UserError(f"--data {original!r}: no path ({usage})")
    path = Path(text)
    if not path.exists():
        raise UserError(f"--data {original!r}: {path} does not exist")
    spec = DataSpec(path=path, domain=domain or "", start=start, end=end, step=step, has_range=has_range,
                    text=original)
    if not spec.domain:
        spec.domain = spec.name
    return spec


# ------------------------------------------------------------------------------------------- sources
def _image_files(folder: Path) -> list[Path]:
    from framecolor.io.paths import natural_sort_key

    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def open_source(spec: DataSpec):
    """(iterator of (index, RGB frame), is_sequence, estimated frame count) for a data spec."""
    from framecolor.io.images import image_header, read_image
    from framecolor.io.video_reader import VideoReader

    path = spec.path
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise UserError(f"--data {spec.text!r}: {path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        end = len(files) if spec.end is None else min(spec.end, len(files))
        chosen = list(range(spec.start, end))
        # a folder of frames of one size is a sequence; stills of several sizes are scored one by one
        sizes = {image_header(files[i]) for i in chosen[:64]}
        sequence = len(sizes) == 1 and None not in sizes and len(chosen) > 1

        def gen():
            for i in chosen:
                yield i, read_image(files[i])

        return gen(), sequence, len(chosen)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return iter([(0, read_image(path))]), False, 1
    reader = VideoReader(path, start=spec.start, end=spec.end)
    count = reader.estimated_count()

    def gen_video():
        try:
            for frame in reader:
                yield frame.index, frame.image
        finally:
            reader.close()

    return gen_video(), True, count


class _Broadcast:
    """One source iterator read by several consumers (possibly in other threads): each consumer sees
    every item in order; items are kept only until every consumer has taken them."""

    def __init__(self, source, n: int):
        self._source = source
        self._lock = threading.Lock()
        self._queues = [deque() for _ in range(n)]
        self._done = False

    def consumer(self, k: int):
        while True:
            with self._lock:
                if not self._queues[k]:
                    if self._done:
                        return
                    try:
                        item = next(self._source)
                    except StopIteration:
                        self._done = True
                        return
                    for q in self._queues:
                        q.append(item)
                item = self._queues[k].popleft()
            yield item


# ------------------------------------------------------------------------------------------- scoring
@dataclass
class MethodScores:
    """Per-frame figures of one method on one data set, reduced by :meth:`summary`."""

    de_mean: list = field(default_factory=list)
    de_median: list = field(default_factory=list)
    ssim: list = field(default_factory=list)
    psnr: list = field(default_factory=list)
    colourfulness: list = field(default_factory=list)
    warp: list = field(default_factory=list)
    cdc: M.CDCMeter = field(default_factory=M.CDCMeter)
    frames: list = field(default_factory=list)
    neutral: list = field(default_factory=lambda: [0.0, 0])  # pooled (chroma sum, pixel count)
    has_temporal: bool = False

    def add_accuracy(self, index: int, pred: np.ndarray, truth: np.ndarray, truth_colourfulness: float,
                     truth_lab=None) -> None:
        import torch

        d = M.ciede2000_map(pred, truth, truth_lab=truth_lab, dtype=torch.float32)
        self.de_mean.append(float(d.mean()))
        self.de_median.append(float(np.median(d)))
        self.ssim.append(M.ssim_rgb(pred, truth) if min(pred.shape[:2]) >= 7 else float("nan"))
        self.psnr.append(M.psnr(pred, truth))
        self.colourfulness.append((M.colourfulness(pred), truth_colourfulness))
        if truth_lab is None:
            truth_lab = M.exact_lab(truth, torch.float32)
        total, count = M.neutral_chroma(pred, truth_lab)
        self.neutral[0] += total
        self.neutral[1] += count
        self.frames.append(index)

    def summary(self) -> dict:
        def mean(xs):
            xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
            return float(np.mean(xs)) if xs else float("nan")

        cf_pred = mean([c[0] for c in self.colourfulness])
        cf_true = mean([c[1] for c in self.colourfulness])
        out = {
            "ciede2000_mean": mean(self.de_mean),
            "ciede2000_median": mean(self.de_median),
            "ssim": mean(self.ssim),
            "psnr": mean([p for p in self.psnr if p != float("inf")]) if self.psnr else float("nan"),
            "colourfulness": cf_pred,
            "colourfulness_ratio": cf_pred / cf_true if cf_true > 0 else float("nan"),
            "accuracy_frames": len(self.frames),
            # mean chroma on the truth's near-neutral very light / very dark pixels, and how many there were
            "neutral_chroma": self.neutral[0] / self.neutral[1] if self.neutral[1] else float("nan"),
            "neutral_pixels": self.neutral[1],
        }
        if self.has_temporal:
            out["cdc"] = self.cdc.value()
            out["warp_error"] = mean(self.warp)
        return out


def _lab_ab(rgb: np.ndarray) -> np.ndarray:
    import torch

    # float32 is ample for a warp error in Lab units (and halves the cost at 720p and above)
    return M.exact_lab(rgb, dtype=torch.float32).permute(1, 2, 0).numpy()[..., 1:]


def _thumb(rgb: np.ndarray, height: int = 160) -> np.ndarray:
    import cv2

    img = M.to_uint8(rgb)
    h, w = img.shape[:2]
    scale = height / h
    return cv2.resize(img, (max(1, round(w * scale)), height), interpolation=cv2.INTER_AREA)


def evaluate_dataset(spec: DataSpec, models: list[tuple[str, object]], batch: int = 4,
                     render_size: int | None = None, device: str = "cpu", progress=None) -> dict:
    """Score every model and both baselines on one data set in one streaming pass.

    ``models``: (name, checkpoint path or loaded generator[, temporal "flow" | "off"[, backend[, precision]]]);
    the same model on several backends is scored side by side the same way; the same model
    with smoothing on and off gives two methods scored side by side on the same frames.  Returns a dict with per-method summaries,
    the frames used, the shot starts found, and a few contact-sheet thumbnails.
    """
    import torch

    from framecolor import color
    from framecolor.api import colorize_frames
    from framecolor.temporal.cuts import CutDetector

    source, sequence, count = open_source(spec)
    first = spec.start
    if not spec.has_range and sequence:
        temporal_range = (first, first + TEMPORAL_SPAN)
    else:
        temporal_range = (first, math.inf if spec.end is None else spec.end)

    def in_temporal(i: int) -> bool:
        return sequence and temporal_range[0] <= i < temporal_range[1]

    def is_accuracy(i: int) -> bool:
        return (i - first) % spec.step == 0

    # contact sheet: a few accuracy frames spread over the expected range
    accuracy_total = None if count is None else -(-count // spec.step)
    if accuracy_total:
        picks = sorted({first + spec.step * int(k * (accuracy_total - 1) / max(1, CONTACT_FRAMES - 1))
                        for k in range(min(CONTACT_FRAMES, accuracy_total))})
    else:
        picks = [first + spec.step * k for k in range(CONTACT_FRAMES)]

    # frames the models see: the L-only (gray) version of every frame they are scored on
    def needed(i: int) -> bool:
        return is_accuracy(i) or in_temporal(i)

    def decorated():
        for i, rgb in source:
            gray = M.gray_baseline(rgb)
            yield i, rgb, gray

    hub = _Broadcast(decorated(), len(models) + 1)
    streams = []
    for k, (_, model, *rest) in enumerate(models):
        feed = (gray for i, _, gray in hub.consumer(k) if needed(i))
        # defaults: no smoothing, torch fp32 (the reference the earlier figures were measured with)
        temporal, backend, precision = (list(rest) + ["off", "torch", "fp32"][len(rest):])[:3]
        streams.append(iter(colorize_frames(feed, model=model, batch=batch, render_size=render_size,
                                            temporal=temporal, device=device, backend=backend,
                                            precision=precision)))
    names = [name for name, *_ in models]
    methods = {name: MethodScores() for name in [GRAY, *([FLOW] if sequence else []), *names, TRUTH]}
    for s in methods.values():
        s.has_temporal = sequence
    flowprop = M.FlowPropagation() if sequence else None
    cuts = CutDetector()
    dis = M.make_dis()
    prev = None  # (index, L, {method: ab}) of the previous temporal frame
    shot_starts: list[int] = []
    sheet: list[dict] = []
    used_accuracy: list[int] = []
    for i, rgb, gray in hub.consumer(len(models)):
        L = color.luminance(rgb)
        cut = cuts.process(i, L) if sequence else False
        key = cut or i == first
        if sequence and key:
            shot_starts.append(i)
        preds = {GRAY: gray}
        if flowprop is not None:
            preds[FLOW] = flowprop.process(rgb, key)
        if needed(i):
            for name, stream in zip(names, streams):
                try:
                    preds[name] = next(stream)
                except StopIteration:
                    raise UserError(f"model {name} returned fewer frames than it was given") from None
        preds[TRUTH] = rgb
        if is_accuracy(i):
            used_accuracy.append(i)
            truth_cf = M.colourfulness(rgb)
            truth_lab = M.exact_lab(rgb, torch.float32)
            for name, pred in preds.items():
                if name == FLOW and key:
                    continue  # reference frames are given, not predicted
                methods[name].add_accuracy(i, pred, rgb, truth_cf, truth_lab)
            if i in picks:
                sheet.append({"index": i, **{n: _thumb(p) for n, p in preds.items()}})
        if in_temporal(i):
            abs_now = {n: _lab_ab(p) for n, p in preds.items() if n != GRAY}
            if prev is not None and prev[0] == i - 1 and not cut:
                back, mask = M.consistent_flow(prev[1], L, dis)
                for n, ab in abs_now.items():
                    methods[n].warp.append(M.warp_error(prev[2][n], ab, back, mask))
            for n, p in preds.items():
                if prev is None or prev[0] != i - 1:
                    methods[n].cdc.reset()
                methods[n].cdc.add(p)
            prev = (i, L, abs_now)
        if progress is not None:
            progress(1)
    for stream in streams:
        stream.close()
    if not used_accuracy:
        raise UserError(f"--data {spec.text!r}: no frames in the selected range")
    summaries = {n: s.summary() for n, s in methods.items()}
    # the gray baseline's ab is 0 everywhere: its warp error is 0 by construction, not informative
    if sequence:
        summaries[GRAY]["warp_error"] = 0.0
    summaries[TRUTH]["ciede2000_mean"] = 0.0
    return {
        "data": spec.text or str(spec.path),
        "name": spec.name,
        "domain": spec.domain,
        "sequence": sequence,
        "accuracy_frames": used_accuracy,
        "flow_reference_frames": shot_starts,
        "temporal_frames": [temporal_range[0], None if math.isinf(temporal_range[1]) else temporal_range[1]]
        if sequence else None,
        "methods": summaries,
        "models": names,
        "sheet": sheet,
    }
