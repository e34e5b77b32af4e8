"""Where converted and compiled models are kept, and the keys that say whether a cached one still fits: the
model's hash, the render shape, the batch, library versions, the GPU."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_dir(kind: str = "trt") -> Path:
    """Where compiled engines/models of one runtime are kept: $FRAMECOLOR_CACHE/KIND, else
    $XDG_CACHE_HOME (~/.cache)/framecolor/KIND (KIND: trt, openvino, onnxruntime)."""
    root = os.environ.get("FRAMECOLOR_CACHE")
    if root:
        return Path(root).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "framecolor" / kind


def model_hash(model) -> str:
    """sha256 of the generator's weights (every tensor of its state dict: name, dtype, shape, bytes) and
    of its frozen config: the same checkpoint always hashes the same, any changed weight changes it."""
    import dataclasses

    import torch

    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None and dataclasses.is_dataclass(config):
        h.update(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def engine_cache_key(model_sha256: str, shape: tuple[int, int], batch: int, in_channels: int,
                     versions: dict[str, str], gpu: str, precision: str = "fp16") -> str:
    """The name of a cached engine: a digest of everything that makes an engine valid or not.

    Pure (no torch, no TensorRT): the same inputs always give the same key, and changing any of the
    model hash, render shape (h, w), batch, input channels, library versions, GPU name or precision gives
    another one.
    """
    fields = {"model": model_sha256, "shape": [int(shape[0]), int(shape[1])], "batch": int(batch),
              "in_channels": int(in_channels), "versions": {k: str(v) for k, v in sorted(versions.items())},
              "gpu": gpu, "precision": precision, "format": 1}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
    return f"framecolor-{int(shape[0])}x{int(shape[1])}-b{int(batch)}-{digest}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a compiled engine depends on (those importable here)."""
    import importlib.metadata

    versions = {}
    for dist in ("torch", "torch_tensorrt", "tensorrt"):
        try:
            versions[dist] = importlib.metadata.version(dist.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                pass
    return versions
