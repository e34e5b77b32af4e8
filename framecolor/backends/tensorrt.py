"""The TensorRT backend (extra ``tensorrt``): the generator compiled by torch-tensorrt in fp16, one engine per
render shape, cached on disk and reused by later runs. Never run on a GPU by this project yet."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .cache import cache_dir, engine_cache_key, library_versions, model_hash
from .torch_backend import _PinnedIO

log = logging.getLogger("framecolor")


def tensorrt_available() -> bool:
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import torch_tensorrt  # noqa: F401
    except Exception:
        return False
    return True


def gpu_name(device) -> str:
    import torch

    props = torch.cuda.get_device_properties(device)
    return f"{props.name} sm_{props.major}{props.minor}"


class TensorRTBackend:
    """The generator compiled by torch-tensorrt in fp16, one engine per render shape (h, w) for a fixed
    batch; engines are cached on disk (see :func:`engine_cache_key`) and reused by later runs.

    A shorter batch (the last of a stream) is padded to the engine's batch; a larger one is run in
    engine-sized pieces.
    """

    name = "tensorrt"

    def __init__(self, model, device: str = "cuda", batch: int = 8, cache: Path | None = None):
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device).eval().half()
        self.in_channels = model.config.in_channels
        self.batch = batch
        self.cache = Path(cache) if cache is not None else cache_dir()
        self._hash = model_hash(model)
        self._engines: dict[tuple[int, int], object] = {}
        self._io = _PinnedIO(self.device)

    def describe(self) -> str:
        return f"tensorrt fp16 batch {self.batch} (engines in {self.cache})"

    def engine_path(self, shape: tuple[int, int]) -> Path:
        key = engine_cache_key(self._hash, shape, self.batch, self.in_channels, library_versions(),
                               gpu_name(self.device))
        return self.cache / f"{key}.ep"

    def _engine(self, shape: tuple[int, int]):
        engine = self._engines.get(shape)
        if engine is None:
            engine = self._engines[shape] = self._load_or_compile(shape)
        return engine

    def _load_or_compile(self, shape: tuple[int, int]):
        import torch
        import torch_tensorrt

        path = self.engine_path(shape)
        if path.is_file():
            log.info("tensorrt: engine for %dx%d batch %d from %s", shape[1], shape[0], self.batch, path)
            return torch_tensorrt.load(str(path)).module()
        log.info("tensorrt: compiling the generator for %dx%d batch %d in fp16 (once; cached in %s)",
                 shape[1], shape[0], self.batch, self.cache)
        example = torch.zeros((self.batch, self.in_channels, *shape), dtype=torch.float16, device=self.device)
        compiled = torch_tensorrt.compile(self.model, ir="dynamo", arg_inputs=[example],
                                          enabled_precisions={torch.float16})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.ep")  # complete files only under the real name
        try:
            torch_tensorrt.save(compiled, str(tmp), arg_inputs=[example])
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return compiled

    def __call__(self, L_batch: np.ndarray) -> np.ndarray:
        import torch

        n = L_batch.shape[0]
        engine = self._engine(tuple(L_batch.shape[2:]))
        outs = []
        with torch.inference_mode():
            for i in range(0, n, self.batch):
                part = L_batch[i : i + self.batch]
                k = part.shape[0]
                if k < self.batch:  # the engine's batch is fixed: pad with zeros, drop their output
                    part = np.concatenate([part, np.zeros((self.batch - k, *part.shape[1:]), part.dtype)])
                x = self._io.upload(part, torch.float16, torch.contiguous_format)
                outs.append(self._io.download(engine(x))[:k])
        return np.concatenate(outs) if len(outs) > 1 else outs[0]
