"""Inference backends: one small interface, ``backend(L_batch) -> ab_batch`` on numpy arrays.

Every backend takes the network input (B, C, h, w) float32 and returns the network output (B, 2, h, w)
float32, and has ``describe()``.  Three of them:

* :class:`TorchBackend` on CPU: fp32, inference mode, channels_last (about 10% faster than contiguous
  for the U-Net here, measured side by side), the U-Net rewritten for inference (batch norm folded,
  sub-pixel convolutions instead of upsample + concatenate: same outputs, about 25% faster; see
  :func:`inference_module`), torch's intra-op threads as set by ``threads``.
* :class:`TorchBackend` on CUDA: fp16 (or bf16), channels_last, pinned host buffers reused from call to
  call, non-blocking copies in both directions and one synchronisation per batch.
* :class:`TensorRTBackend` (extra ``tensorrt``): the generator compiled by torch-tensorrt in fp16 for a
  fixed batch and a fixed (h, w) per render-size bucket, saved in a cache folder under a key made of the
  model's hash, shape, batch, library versions and GPU name (:func:`engine_cache_key`), and loaded from
  there on the next run instead of being compiled again.

* :class:`~framecolor.backends.runtimes.OpenVINOBackend` (extra ``openvino``) and
  :class:`~framecolor.backends.runtimes.ONNXRuntimeBackend` (extra ``onnxruntime``): CPU runtimes, the
  model converted in-process and cached per model hash, shape and runtime version
  (:mod:`framecolor.backends.runtimes`); OpenVINO also runs bf16 where the CPU has it natively.

``make_backend(..., backend="auto")`` takes TensorRT where torch-tensorrt and a CUDA device are both
there; on CPU the fastest installed runtime (OpenVINO, then ONNX Runtime, then torch); and says which in
one log line.  An explicit backend that is not installed is a UserError naming its extra
(:func:`check_backend`, cheap enough to call before anything loads).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import UserError

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


# ------------------------------------------------------------------------------------------------ torch
class _PinnedIO:
    """Host <-> CUDA transfers through page-locked buffers kept from call to call (one per shape)."""

    def __init__(self, device):
        self.device = device
        self._host: dict[tuple, object] = {}

    def _buffer(self, key: tuple, shape: tuple, dtype):
        import torch

        buf = self._host.get(key)
        if buf is None or tuple(buf.shape) != shape:
            buf = torch.empty(shape, dtype=dtype, pin_memory=True)
            self._host[key] = buf
        return buf

    def upload(self, array: np.ndarray, dtype, memory_format):
        import torch

        host = self._buffer(("in",), array.shape, torch.float32)
        host.numpy()[...] = array
        x = host.to(self.device, non_blocking=True)
        return x.to(dtype).contiguous(memory_format=memory_format)

    def download(self, y) -> np.ndarray:
        import torch

        y = y.float()
        host = self._buffer(("out",), tuple(y.shape), torch.float32)
        host.copy_(y, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy().copy()  # the buffer is overwritten by the next batch


# ------------------------------------------------------------------------------ inference-only U-Net
# The U-Net's decoder spends more CPU time on memory traffic than on convolutions: each block upsamples
# (nearest) and concatenates full-size tensors before a 3x3 convolution, and batch norm and the
# activations are passes of their own.  For inference the same function is computed with
#   * batch norm folded into the convolution before it (eval mode: a fixed affine map per channel);
#   * "nearest 2x upsampling, then 3x3 convolution" as one 3x3 convolution at the low resolution with 4x
#     the output channels, one per output phase, followed by a pixel shuffle (the sub-pixel convolution
#     of Shi et al., CVPR 2016: each phase's kernel is the sum of the 3x3 taps that read the same
#     low-resolution pixel);
#   * a convolution of a concatenation as the sum of one convolution per part (no concatenated copy).
# Same outputs up to float rounding (tested); about 25% less time on the 2-core CPU at batch 4, 256x448.
_PHASE_TAPS = {0: (0, 1, 1), 1: (1, 1, 2)}  # per output phase: low-res offset index of taps -1, 0, +1


def _folded(conv, norm):
    """(weight, bias) of ``norm(conv(x))`` as one convolution, or None for a norm that cannot fold."""
    import torch
    from torch import nn

    w = conv.weight.detach().clone()
    b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    if isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats and norm.running_var is not None:
        scale = (norm.weight.detach() if norm.affine else torch.ones_like(b)) / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias.detach() if norm.affine else torch.zeros_like(b)
        return w * scale[:, None, None, None], (b - norm.running_mean) * scale + shift
    if isinstance(norm, nn.Identity):
        return w, b
    return None


def _subpixel_weight(w):
    """(Cout, Cin, 3, 3) applied after nearest 2x upsampling -> (4 Cout, Cin, 3, 3) applied at low
    resolution; pixel-shuffled (factor 2), its output is the same."""
    cout, cin = w.shape[:2]
    big = w.new_zeros(cout, 2, 2, cin, 3, 3)
    for a in (0, 1):
        for b in (0, 1):
            for dy in range(3):
                for dx in range(3):
                    big[:, a, b, :, _PHASE_TAPS[a][dy], _PHASE_TAPS[b][dx]] += w[:, :, dy, dx]
    return big.reshape(cout * 4, cin, 3, 3)


def _conv_from(weight, bias, stride: int = 1):
    from torch import nn

    k = weight.shape[-1]
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], k, stride=stride, padding=1, bias=bias is not None)
    conv.weight.data.copy_(weight)
    if bias is not None:
        conv.bias.data.copy_(bias)
    return conv


def _make_fast_unet(unet):
    import torch
    import torch.nn.functional as F
    from torch import nn

    from ..models.unet import pad_to_multiple

    class UpsampleConv(nn.Module):
        """conv3x3(nearest_up2(cat(parts))) as per-part sub-pixel convolutions, summed and shuffled."""

        def __init__(self, weight, bias, part_channels):
            super().__init__()
            big, start = _subpixel_weight(weight), 0
            self.convs = nn.ModuleList()
            for i, c in enumerate(part_channels):
                self.convs.append(_conv_from(big[:, start : start + c], bias.repeat_interleave(4) if i == 0 else None))
                start += c

        def forward(self, parts):
            y = self.convs[0](parts[0])
            for conv, part in zip(self.convs[1:], parts[1:]):
                y.add_(conv(part))
            return F.pixel_shuffle(y, 2)

    class FastUNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = self.config = unet.config
            self.downs = nn.ModuleList()
            for block in unet.downs:
                self.downs.append(_conv_from(*_folded(block.conv, block.norm), stride=2))
            widths = [min(c.base_channels * 2**i, c.max_channels) for i in range(c.depth)]
            parts = [widths[-1]]
            self.ups = nn.ModuleList()
            for k, block in enumerate(unet.ups):
                weight, bias = _folded(block.conv, block.norm)
                self.ups.append(UpsampleConv(weight, bias, parts))
                parts = [weight.shape[0], widths[c.depth - 2 - k]]
            conv = unet.head[1]
            self.head_up = UpsampleConv(conv.weight.detach()[:, : sum(parts)], conv.bias.detach(), parts)
            self.head_input = _conv_from(conv.weight.detach()[:, sum(parts) :], None)
            self.head_out = unet.head[3]

        def forward(self, x):
            x, (h, w) = pad_to_multiple(x, 2**self.config.depth)
            skips, y = [x], x
            for conv in self.downs:
                y = F.leaky_relu(conv(y), 0.2, inplace=True)
                skips.append(y)
            skips.pop()
            parts = [y]
            for up in self.ups:
                parts = [F.relu(up(parts), inplace=True), skips.pop()]
            y = self.head_up(parts).add_(self.head_input(skips.pop()))
            return torch.tanh(self.head_out(F.relu(y, inplace=True)))[..., :h, :w]

    return FastUNet().eval()


def inference_module(model):
    """An inference-only equivalent of ``model`` that runs faster on CPU (see above) where the model is
    the plain U-Net with batch norm (or none); the model itself otherwise."""
    from torch import nn

    from ..models.unet import DownBlock, UNet, UpBlock

    if type(model) is not UNet or model.training:
        return model
    blocks_ok = all(type(b) is DownBlock and _folded(b.conv, b.norm) is not None for b in model.downs) and all(
        type(b) is UpBlock and _folded(b.conv, b.norm) is not None and b.conv.kernel_size == (3, 3)
        for b in model.ups)
    head = list(model.head)
    head_ok = (len(head) == 5 and isinstance(head[0], nn.Upsample) and head[0].mode == "nearest"
               and isinstance(head[1], nn.Conv2d) and isinstance(head[2], nn.ReLU)
               and isinstance(head[3], nn.Conv2d) and isinstance(head[4], nn.Tanh))
    if not (blocks_ok and head_ok):
        return model
    return _make_fast_unet(model)


class TorchBackend:
    """Runs a generator with torch: fp32 on CPU, fp16 (or bf16) on CUDA; channels_last by default."""

    name = "torch"

    def __init__(self, model, device: str = "cpu", precision: str | None = None, channels_last: bool = True,
                 threads: int | None = None, optimize: bool | None = None):
        import torch

        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        precision = precision or ("fp16" if cuda else "fp32")
        if precision not in ("fp32", "fp16", "bf16"):
            raise UserError(f"unknown precision {precision!r} (fp32, fp16, bf16)")
        if precision == "fp16" and not cuda:
            raise UserError("fp16 runs on CUDA only; on CPU the generator runs in fp32 (or bf16 where the CPU has it)")
        if precision == "bf16" and not cuda:
            from .runtimes import cpu_has_native_bf16

            if not cpu_has_native_bf16():
                raise UserError("bf16 on CPU needs native bf16 instructions (avx512_bf16/amx_bf16); use fp32")
        if threads is not None and not cuda:
            torch.set_num_threads(max(1, threads))
        self.precision = precision
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(self.device).eval()
        # The folded U-Net is measured on CPU only; CUDA keeps the module as trained (cuDNN fuses anyway).
        self.folded = False
        if optimize if optimize is not None else not cuda:
            with torch.no_grad():
                fast = inference_module(model)
            self.folded, model = fast is not model, fast
        self.model = model.to(self.dtype).to(memory_format=self.memory_format)
        self._io = _PinnedIO(self.device) if cuda else None
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes per run: let cuDNN pick its kernels once

    @property
    def half(self) -> bool:
        return self.precision != "fp32"

    def describe(self) -> str:
        return (f"torch {self.device.type} {self.precision}{' channels_last' if self.channels_last else ''}"
                f"{' folded U-Net' if self.folded else ''}")

    def __call__(self, L_batch: np.ndarray) -> np.ndarray:
        """L_batch (B, C, h, w) float32 network input -> (B, 2, h, w) float32 network output."""
        import torch

        with torch.inference_mode():
            if self._io is not None:
                return self._io.download(self.model(self._io.upload(L_batch, self.dtype, self.memory_format)))
            x = torch.from_numpy(np.ascontiguousarray(L_batch, dtype=np.float32)).to(self.dtype)
            return self.model(x.contiguous(memory_format=self.memory_format)).float().numpy()


# ------------------------------------------------------------------------------------------- tensorrt
def tensorrt_available() -> bool:
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import torch_tensorrt  # noqa: F401
    except Exception:
        return False
    return True


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


# ------------------------------------------------------------------------------------------- choosing
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
