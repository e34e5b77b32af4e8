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
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from . import color

if TYPE_CHECKING:  # annotations only: the colourisers import this module
    from .colorizers.base import InferStage
    from .temporal.smoothers import Smoother

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


def luminance_pair(image: np.ndarray, render_size: int, shapes: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(full-size L, render-size L) of a frame: the one place a frame becomes the luminance the stages work on
    (the colouring stream's decode thread, reference mode's first pass, the Ray scan, a resumed run's cut
    detector all call it, so they see the same L). ``shapes``: a cache of render shapes by frame size."""
    from .upsample import resize

    L_full = frame_luminance(image)
    H, W = L_full.shape
    if shapes is None:
        h, w = render_shape(H, W, render_size)
    else:
        if (H, W) not in shapes:
            shapes[(H, W)] = render_shape(H, W, render_size)
        h, w = shapes[(H, W)]
    return L_full, resize(L_full, w, h, "area")


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


def _infer_worker(colorizer: InferStage, inp: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
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




@dataclass
class StreamStats:
    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    seconds: float = 0.0


def colorize_stream(frames: Iterable, colorizer: InferStage, smoother: Smoother | None = None, queue_size: int | None = None,
                    stats: StreamStats | None = None) -> Iterator[tuple[Any, np.ndarray]]:
    """Frames (objects with an ``image`` RGB array) -> (frame, coloured RGB image of the same dtype), in order.

    The generator runs decode and inference in threads; closing it early stops them.
    """
    from .upsample import upsample_to_rgb, upsample_to_rgb_torch

    queue_size = queue_size or max(2 * colorizer.batch, 4)
    decoded: queue.Queue = queue.Queue(maxsize=queue_size)
    inferred: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()
    shapes: dict[tuple[int, int], tuple[int, int]] = {}
    stats = stats if stats is not None else StreamStats()
    finish_device = colorizer.finish_device
    t0 = time.perf_counter()

    def prepare(frame) -> PreparedFrame:
        return PreparedFrame(frame, *luminance_pair(frame.image, colorizer.render_size, shapes))

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

