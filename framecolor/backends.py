"""Inference backends: one small interface, ``backend(L_batch) -> ab_batch`` on numpy arrays.

* ``TorchBackend``: torch on CPU (inference mode, channels_last) or CUDA (fp16, channels_last).
* torch-tensorrt is optional (extra ``tensorrt``); ``auto`` picks it only when it is importable and a
  CUDA device is present, and otherwise falls back to torch, saying so in one log line.
"""

from __future__ import annotations

import logging

import numpy as np

from .errors import UserError

log = logging.getLogger("framecolor")


def resolve_device(device: str | None) -> str:
    """'auto' -> 'cuda' when a CUDA device is visible, else 'cpu'."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is visible to torch")
    return device


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the errors that a smaller batch can cure (CUDA OOM, or CPU allocation failure)."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    if isinstance(exc, (RuntimeError, MemoryError)):
        text = str(exc).lower()
        return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text
    return False


class TorchBackend:
    """Runs a generator with torch; fp16 + channels_last on CUDA, fp32 (channels_last optional) on CPU."""

    name = "torch"

    def __init__(self, model, device: str = "cpu", half: bool | None = None, channels_last: bool = True):
        import torch

        self.device = torch.device(device)
        self.half = (self.device.type == "cuda") if half is None else half
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(self.device).eval()
        if self.half:
            model = model.half()
        self.model = model.to(memory_format=self.memory_format)
        self.dtype = torch.float16 if self.half else torch.float32

    def describe(self) -> str:
        precision = "fp16" if self.half else "fp32"
        return f"torch {self.device.type} {precision}{' channels_last' if self.channels_last else ''}"

    def __call__(self, L_batch: np.ndarray) -> np.ndarray:
        """L_batch (B, C, h, w) float32 network input -> (B, 2, h, w) float32 network output."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(L_batch))
            x = x.to(self.device, non_blocking=True).to(self.dtype).contiguous(memory_format=self.memory_format)
            y = self.model(x)
            return y.float().cpu().numpy()


def tensorrt_available() -> bool:
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import torch_tensorrt  # noqa: F401
    except Exception:
        return False
    return True


def make_backend(model, backend: str = "auto", device: str = "auto"):
    """Pick the backend for a loaded generator; returns an object with __call__ and describe()."""
    device = resolve_device(device)
    if backend == "tensorrt":
        if not tensorrt_available():
            raise UserError("--backend tensorrt: torch-tensorrt or a CUDA device is missing "
                            "(install the 'tensorrt' extra on an NVIDIA machine, or use --backend torch)")
        raise UserError("--backend tensorrt: the TensorRT backend is not built yet; use --backend torch")
    if backend == "auto" and device.startswith("cuda") and not tensorrt_available():
        log.info("backend auto: torch-tensorrt not installed, using torch on CUDA")
    if backend not in ("auto", "torch", "tensorrt"):
        raise UserError(f"unknown backend {backend!r} (auto, torch, tensorrt)")
    return TorchBackend(model, device=device)
