"""Automatic colouring: one generator behind a backend predicts ab from L, frame by frame (in batches).

:class:`Colorizer` is the infer stage of plain runs, and the automatic model that reference mode falls back on
for what no key covers. :class:`MissingModel` stands in for it where no model could be loaded but reference mode
might not need one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .. import color
from ..errors import UserError
from ..stream import PreparedFrame, render_shape
from .base import CPU_BATCH, check_render_size, parse_batch, resolve_render_size

log = logging.getLogger("framecolor")


class Colorizer:
    """A loaded generator behind a backend, with the batch size and render size it runs at.

    ``batch="auto"``: on CUDA the largest batch (from 32, halving) whose trial forward pass at a 16:9
    render shape fits in memory; on CPU 4 (see :func:`framecolor.backends.auto_batch`).

    ``predict`` never drops a frame: when the backend runs out of memory on a batch, the batch is halved
    and the same frames are run again (down to batch 1, after which the error is real).
    """

    def __init__(self, model=None, device: str = "auto", backend: str = "auto", batch: int | str = 4,
                 render_size: int | None = None, threads: int | None = None, precision: str | None = "auto"):
        from ..backends import auto_batch, check_backend, make_backend
        from ..checkpoint import load_generator

        check_backend(backend, precision)  # before the model loads
        batch = parse_batch(batch)
        check_render_size(render_size)
        if model is None or isinstance(model, (str, os.PathLike)):
            model = load_generator(model)
        self.model = model
        self.config = model.config
        if self.config.in_channels != 1:
            raise UserError(f"model expects {self.config.in_channels} input channels: it is a hint-conditioned "
                            "model, not an automatic colouriser")
        self.render_size = resolve_render_size(render_size, self.config.render_size)
        self.backend = make_backend(model, backend=backend, device=device,
                                    batch=None if batch == "auto" else batch, threads=threads, precision=precision)
        if batch == "auto":  # probed at the render shape of a 16:9 frame, the common case for episodes
            probe = render_shape(self.render_size * 9, self.render_size * 16, self.render_size)
            batch = auto_batch(self.backend, probe, self.config.in_channels)
        self.batch = batch

    @property
    def finish_device(self):
        """Where upsampling and Lab -> RGB run: the generator's CUDA device, or None (numpy on the CPU)."""
        device = getattr(self.backend, "device", None)
        return device if getattr(device, "type", None) == "cuda" else None

    def describe(self) -> str:
        path = getattr(self.model, "checkpoint_path", None)
        name = Path(path).name if path else "in-memory model"
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        return (f"backend {self.backend.describe()}, batch {self.batch}, render size {self.render_size}, "
                f"model {name} ({self.config.arch}, {params:.1f}M parameters)")

    def predict(self, L_smalls: list[np.ndarray]) -> list[np.ndarray]:
        """Render-size L frames (same shape) -> their ab (h, w, 2) in Lab units."""
        from ..backends import free_cuda_cache, is_out_of_memory

        out: list[np.ndarray] = []
        i = 0
        while i < len(L_smalls):
            chunk = L_smalls[i : i + self.batch]
            x = color.normalize_L(np.stack(chunk)[:, None].astype(np.float32))
            try:
                y = self.backend(x)
            except Exception as exc:  # only out-of-memory is retried; anything else is a real error
                if not is_out_of_memory(exc) or self.batch == 1:
                    raise
                self.batch = max(1, self.batch // 2)
                log.warning("out of memory at batch %d: retrying the same frames at batch %d",
                            len(chunk), self.batch)
                free_cuda_cache()
                continue
            out.extend(color.denormalize_ab(np.moveaxis(y, 1, -1)).astype(np.float32))
            i += len(chunk)
        return out

    def predict_frames(self, prepared: list[PreparedFrame]) -> list[np.ndarray]:
        """ab of prepared frames (the infer stage's call)."""
        return self.predict([p.L_small for p in prepared])

    def log_summary(self, name: str = "") -> None:
        """Nothing to add: the stream logs frames and cuts."""


class MissingModel:
    """In place of the automatic :class:`Colorizer` where none could be loaded (no bundled model, no
    ``--model``) but reference mode may not need one: every shot keyed. Reference mode calls it on the first
    frame it cannot colour from a key, which raises the loading error then."""

    finish_device = None

    def __init__(self, error: UserError, batch, render_size: int | None = None):
        self.error = error
        self.batch = CPU_BATCH if parse_batch(batch) == "auto" else parse_batch(batch)
        self.render_size = render_size or 256

    def __call__(self):
        raise UserError(f"a shot has no key, so it needs the automatic model: {self.error}")

    def describe(self) -> str:
        return f"no automatic model ({self.error})"
