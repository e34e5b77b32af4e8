"""Inference backends: one small interface, ``backend(L_batch) -> ab_batch`` on numpy arrays.

Every backend takes the network input (B, C, h, w) float32 and returns the network output (B, 2, h, w)
float32, and has ``describe()``:

* ``torch_backend``: :class:`~framecolor.backends.torch_backend.TorchBackend`. On CPU: fp32, inference mode,
  channels_last (faster than contiguous for the U-Net here, measured side by side), the U-Net rewritten for
  inference (batch norm folded, sub-pixel convolutions instead of upsample + concatenate: same outputs,
  faster), torch's intra-op threads as set by ``threads``. On CUDA: fp16 (or bf16), channels_last, pinned
  host buffers reused from call to call, non-blocking copies in both directions, one synchronisation per batch.
* ``tensorrt``: :class:`~framecolor.backends.tensorrt.TensorRTBackend` (extra ``tensorrt``), the generator
  compiled by torch-tensorrt in fp16 for a fixed batch and a fixed (h, w) per render-size bucket, saved under
  a key made of the model's hash, shape, batch, library versions and GPU name (``cache``), and loaded from
  there on the next run instead of being compiled again.
* ``runtimes``: :class:`~framecolor.backends.runtimes.OpenVINOBackend` (extra ``openvino``) and
  :class:`~framecolor.backends.runtimes.ONNXRuntimeBackend` (extra ``onnxruntime``): CPU runtimes, the model
  converted in-process and cached per model hash, shape and runtime version; OpenVINO also runs bf16 where
  the CPU has it natively.

This module chooses: ``make_backend(..., backend="auto")`` takes TensorRT where torch-tensorrt and a CUDA
device are both there; on CPU the fastest installed runtime (OpenVINO, then ONNX Runtime, then torch); and
says which in one log line.  An explicit backend that is not installed is a UserError naming its extra
(:func:`check_backend`, cheap enough to call before anything loads). To add a backend: a class with
``__call__`` and ``describe()`` in a module of its own, chosen in :func:`make_backend`.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import UserError
from .tensorrt import TensorRTBackend, tensorrt_available
from .torch_backend import TorchBackend

log = logging.getLogger("framecolor")

CPU_AUTO_BATCH = 4  # --batch auto on CPU: past 4 frames the U-Net's CPU throughput no longer grows
CUDA_AUTO_BATCH_START = 32  # --batch auto on CUDA: the probe starts here and halves on out-of-memory
TENSORRT_AUTO_BATCH = 16  # --batch auto with TensorRT: engines are built for one batch, no probe
BACKENDS = ("auto", "torch", "tensorrt", "openvino", "onnxruntime")


def resolve_device(device: str | None) -> str:
    """'auto' -> 'cuda' when a CUDA device is visible, else 'cpu'."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is visible to torch")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UserError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
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


def free_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def check_backend(backend: str = "auto", precision: str | None = "auto") -> None:
    """One-line UserErrors for a backend or precision that cannot run here, without loading anything heavy
    (called before the model loads; :func:`make_backend` checks again)."""
    from .runtimes import CPU_RUNTIMES, PRECISIONS, runtime_installed

    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if (precision or "auto").lower() not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if backend in CPU_RUNTIMES and not runtime_installed(backend):
        module, extra = CPU_RUNTIMES[backend]
        raise UserError(f"--backend {backend}: {module} is not installed (pip install 'framecolor[{extra}]'), "
                        "or use --backend torch")


def make_backend(model, backend: str = "auto", device: str = "auto", batch: int | None = None,
                 threads: int | None = None, precision: str | None = "auto"):
    """Pick the backend for a loaded network; returns an object with __call__ and describe().

    ``batch`` matters to TensorRT only (its engines have a fixed batch; None: TENSORRT_AUTO_BATCH);
    ``threads`` sets the CPU threads (None: the runtime's default, one per core); ``precision``
    auto|fp32|bf16|fp16 (see :func:`framecolor.backends.runtimes.resolve_precision`).
    """
    from .runtimes import CPU_PREFERENCE, CPU_RUNTIMES, RUNTIME_CLASSES, resolve_precision, runtime_installed

    check_backend(backend, precision)
    chosen_automatically = backend == "auto"
    batch = batch or TENSORRT_AUTO_BATCH
    if backend in CPU_RUNTIMES:  # CPU runtimes: an explicit CUDA device is a contradiction, auto means CPU
        if device not in (None, "auto", "cpu"):
            raise UserError(f"--backend {backend} runs on CPU; use --device cpu (or auto)")
        device = "cpu"
    device = resolve_device(device)
    cuda = device.startswith("cuda")
    if backend == "tensorrt":
        if not cuda:
            raise UserError("--backend tensorrt needs a CUDA device (none is visible to torch); "
                            "use --backend torch")
        if not tensorrt_available():
            raise UserError("--backend tensorrt: torch-tensorrt is not installed (pip install "
                            "'framecolor[tensorrt]' on an NVIDIA machine), or use --backend torch")
        resolve_precision(precision, "tensorrt", cuda)
        return TensorRTBackend(model, device=device, batch=batch)
    if backend == "auto":
        if cuda and tensorrt_available() and resolve_precision(precision, "torch", cuda) == "fp16":
            log.info("backend auto: TensorRT on %s", device)
            return TensorRTBackend(model, device=device, batch=batch)
        if cuda:
            log.info("backend auto: torch-tensorrt is not installed; using torch on %s", device)
        else:
            backend = next((name for name in CPU_PREFERENCE if runtime_installed(name)), "torch")
            if backend == "torch":
                log.info("backend auto: no CUDA device and neither OpenVINO nor ONNX Runtime is installed; "
                         "using torch on CPU (%d threads)", _cpu_threads(threads))
            else:
                log.info("backend auto: no CUDA device; using %s on CPU", backend)
    if backend in CPU_RUNTIMES:
        runtime = RUNTIME_CLASSES[backend](model, precision=resolve_precision(precision, backend, False),
                                           threads=threads)
        if chosen_automatically:
            runtime.fallback = lambda: TorchBackend(model, device="cpu", threads=threads)
        return runtime
    return TorchBackend(model, device=device, threads=threads, precision=resolve_precision(precision, "torch", cuda))


def _cpu_threads(threads: int | None) -> int:
    import torch

    return threads if threads else torch.get_num_threads()


def auto_batch(backend, shape: tuple[int, int], in_channels: int = 1, start: int = CUDA_AUTO_BATCH_START) -> int:
    """--batch auto: on CPU, CPU_AUTO_BATCH; on CUDA, the largest power of two from ``start`` down whose
    trial forward pass at the render ``shape`` fits in memory (halving on out-of-memory)."""
    device = getattr(backend, "device", None)
    if device is None or getattr(device, "type", "cpu") != "cuda":
        return CPU_AUTO_BATCH
    if isinstance(backend, TensorRTBackend):
        return backend.batch  # engines are built for one batch; memory is allotted at build time
    batch = start
    while batch > 1:
        try:
            backend(np.zeros((batch, in_channels, *shape), np.float32))
            break
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            batch //= 2
            free_cuda_cache()
    log.info("batch auto: %d frames per call at %dx%d", batch, shape[1], shape[0])
    return batch
