"""The interface every colouring mode offers the colouring stream (:func:`framecolor.stream.colorize_stream`).

An *infer stage* takes batches of prepared frames (:class:`~framecolor.stream.PreparedFrame`: the decoded frame,
its full-size L and its render-size L) and returns their ab. It may also change a frame on the way: line art
replaces the frame's L by the model's lightness; reference mode marks frames whose colour it carried at full
size (``full_size``), which the stream then neither smooths nor upsamples. Stages are stateful where the mode
needs it (reference mode follows shots), so frames arrive in order.

The batch size and the render size are validated here, once, for every stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import UserError

if TYPE_CHECKING:  # annotations only
    from ..stream import PreparedFrame

CPU_BATCH = 4  # --batch auto where no probe is made (CPU, line art, reference mode without a model)
MIN_RENDER_SIZE = 16


class InferStage(Protocol):
    """What :func:`framecolor.stream.colorize_stream` needs of a colouring mode.

    ``batch``: frames per call of :meth:`predict_frames` (the stream always fills a batch, only the last may be
    short: outputs depend on the grouping by float rounding). ``render_size``: short side of the render-size
    L the stream prepares. ``finish_device``: where upsampling and Lab -> RGB run, a CUDA torch device or None
    (numpy on the CPU).
    """

    batch: int
    render_size: int
    finish_device: Any

    def describe(self) -> str:
        """One line for the log: the model(s), backend, batch and render size."""
        ...

    def predict_frames(self, prepared: list[PreparedFrame]) -> list[np.ndarray]:
        """ab of each prepared frame, in order: (h, w, 2) at render size, or (H, W, 2) at full size for frames
        it marks ``full_size``."""
        ...

    def log_summary(self, name: str = "") -> None:
        """Log what the stage found over the whole input (reference mode: which shots had keys); called once
        at the end of an input."""
        ...


def parse_batch(batch) -> int | str:
    """--batch value: a whole number >= 1, or 'auto'."""
    if isinstance(batch, str):
        if batch.strip().lower() == "auto":
            return "auto"
        try:
            batch = int(batch)
        except ValueError:
            raise UserError(f"--batch must be a whole number or 'auto' (got {batch!r})") from None
    if not isinstance(batch, int) or batch < 1:
        raise UserError(f"--batch must be at least 1 (got {batch})")
    return batch


def check_render_size(size: int | None) -> int | None:
    """--render-size: None (the model's own) or a short side of at least 16 pixels."""
    if size is not None and size < MIN_RENDER_SIZE:
        raise UserError(f"--render-size must be at least {MIN_RENDER_SIZE} (got {size})")
    return size


def resolve_render_size(requested: int | None, default: int) -> int:
    """The render size a stage runs at: ``requested`` (checked), else the model's ``default`` (checked too:
    a checkpoint may carry a bad one)."""
    return check_render_size(check_render_size(requested) or default)
