"""CPU inference runtimes beside torch: OpenVINO (extra ``openvino``) and ONNX Runtime (extra ``onnxruntime``).

Both run the same network as :class:`framecolor.backends.TorchBackend`, converted in-process from the
loaded checkpoint: torch's ONNX exporter writes the module (fp32, eval mode) at a fixed render shape
(h, w) with a free batch axis, ONNX Runtime runs that file, and OpenVINO converts it to its own IR
(``ov.convert_model``; weights kept in fp32).  Converted files are cached on disk under a key made of
the model's hash, the shape and the library versions (:func:`framecolor.backends.engine_cache_key`, the
TensorRT engines' key), so a second run with the same checkpoint converts nothing; OpenVINO also keeps
its compiled blobs in the same folder (its ``CACHE_DIR``).

Precision: fp32 everywhere; bf16 on OpenVINO where the CPU has native bf16 instructions (AVX512-BF16 or
AMX), which the runtime then uses for convolutions with fp32 accumulation.  ONNX Runtime's CPU provider
has no bf16 convolution kernels, so it runs fp32 only.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import threading
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import UserError

log = logging.getLogger("framecolor")

# backend name -> (module to import, pip extra)
CPU_RUNTIMES = {"openvino": ("openvino", "openvino"), "onnxruntime": ("onnxruntime", "onnxruntime")}
# --backend auto on CPU takes the first installed, fastest first (benchmarks/RESULTS.md, issue 17)
CPU_PREFERENCE = ("openvino", "onnxruntime")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# How many times a model was converted (exported to ONNX / converted to OpenVINO IR) in this process,
# per runtime: the cache's effect is observable (a second build of the same model adds nothing).
CONVERSIONS: Counter = Counter()
_CONVERT_LOCK = threading.Lock()


def runtime_installed(name: str) -> bool:
    """True when the runtime's module can be imported, without importing it (a module set to None in
    sys.modules, as Python does for a failed import, counts as absent)."""
    module = CPU_RUNTIMES[name][0]
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def import_runtime(name: str):
    """The runtime's module, or a one-line UserError naming the extra to install."""
    module, extra = CPU_RUNTIMES[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"--backend {name}: {module} is not installed (pip install 'framecolor[{extra}]'), "
                        "or use --backend torch") from None


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 dot products in hardware (AVX512-BF16 or AMX-BF16); emulated bf16
    is slower than fp32 and is never chosen."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str | None, backend: str, cuda: bool) -> str:
    """--precision auto|fp32|bf16|fp16 for a backend on a device -> the precision it runs, or UserError.

    auto: fp16 on CUDA; on CPU bf16 for OpenVINO where the CPU has native bf16, else fp32."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if cuda:
        if precision == "auto":
            return "fp16"
        if backend == "tensorrt" and precision != "fp16":
            raise UserError(f"--backend tensorrt builds fp16 engines; --precision {precision} is not available")
        return precision
    native = cpu_has_native_bf16()
    if precision == "auto":
        return "bf16" if backend == "openvino" and native else "fp32"
    if precision == "fp16":
        raise UserError("--precision fp16 runs on CUDA only; on CPU use fp32 (or bf16 where the CPU has it)")
    if precision == "bf16":
        if not native:
            raise UserError("--precision bf16: this CPU has no native bf16 instructions (avx512_bf16/amx_bf16); "
                            "use fp32")
        if backend == "onnxruntime":
            raise UserError("--precision bf16: ONNX Runtime's CPU provider runs fp32 only; use --backend openvino")
    return precision


# ------------------------------------------------------------------------------------------ conversion
def export_onnx_file(model, shape: tuple[int, int], path: Path) -> None:
    """Write ``model`` (fp32, CPU, eval) as ONNX at render shape ``shape`` with a free batch axis; the file
    appears under ``path`` only once complete."""
    import copy

    import torch

    module = copy.deepcopy(model).float().cpu().eval()
    x = torch.zeros(1, module.config.in_channels, *shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # notes about Python branches on shapes (padding is fixed per render shape) and deprecations
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), str(tmp), input_names=["x"], output_names=["y"], opset_version=17,
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _CompiledRuntime:
    """Shared by the two runtimes: the cache key, conversion once per (model, shape), lazy per shape."""

    name = ""
    suffix = ""
    static_batch = False  # compiled per batch size (OpenVINO); ONNX Runtime takes any batch in one session

    def __init__(self, model, precision: str = "fp32", threads: int | None = None, cache: Path | None = None):
        import torch

        from .cache import cache_dir, model_hash

        self.module = import_runtime(self.name)
        self.model = model
        self.in_channels = model.config.in_channels
        self.precision = precision
        self.threads = threads
        self.device = torch.device("cpu")
        self.cache = Path(cache) if cache is not None else cache_dir(self.name)
        self._hash = model_hash(model)
        self._runners: dict[tuple, object] = {}
        # --backend auto sets this: a model the runtime cannot take (an operator it lacks) then runs on
        # torch, said in one warning, instead of failing the run at its first batch
        self.fallback = None
        self.fell_back: str | None = None

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__, self.name: str(self.module.__version__), "exporter": "onnx-opset17"}

    def cache_path(self, shape: tuple[int, int]) -> Path:
        from .cache import engine_cache_key

        key = engine_cache_key(self._hash, shape, 0, self.in_channels, self.versions(), "cpu", "fp32")
        return self.cache / f"{key}.{self.suffix}"

    def converted(self, shape: tuple[int, int]) -> Path:
        """The converted model file for a render shape: from the cache, else converted now and cached."""
        path = self.cache_path(shape)
        with _CONVERT_LOCK:
            if not path.is_file():
                log.info("%s: converting the model for %dx%d (once; cached in %s)", self.name, shape[1], shape[0],
                         self.cache)
                self._convert(shape, path)
                CONVERSIONS[self.name] += 1
        return path

    def _convert(self, shape, path: Path) -> None:
        raise NotImplementedError

    def _runner(self, batch: int, shape: tuple[int, int]):
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (B, C, h, w) float32 network input -> (B, C_out, h, w) float32 network output."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, shape = x.shape[0], tuple(x.shape[2:])
        if self.static_batch:
            # a stream's last, shorter batch runs padded on the model compiled for the full one (zeros,
            # their output dropped) rather than compiling a model for its size
            larger = sorted(b for b, *s in self._runners if tuple(s) == shape and b > n)
            if larger:
                pad = np.zeros((larger[0] - n, *x.shape[1:]), np.float32)
                return self(np.concatenate([x, pad]))[:n]
        key = (n, *shape)
        run = self._runners.get(key)
        if run is None:
            try:
                run = self._runner(x.shape[0], tuple(x.shape[2:]))
            except UserError:
                raise
            except Exception as exc:
                if self.fallback is None:
                    raise
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("%s could not convert or compile the model (%s); running it on torch instead",
                            self.name, reason[:200])
                self.fell_back = reason
                self.fallback, run = None, self.fallback()
            self._runners[key] = run
        return run(x)


class OpenVINOBackend(_CompiledRuntime):
    """The network on OpenVINO's CPU plugin, fp32 or (native) bf16, one compiled model per batch and shape
    (static shapes let the plugin pick its kernels once)."""

    name = "openvino"
    suffix = "xml"
    static_batch = True

    def __init__(self, model, precision: str = "fp32", threads: int | None = None, cache: Path | None = None):
        super().__init__(model, precision, threads, cache)
        self.core = self.module.Core()
        self.core.set_property({"CACHE_DIR": str(self.cache / "compiled")})
        self._ir: dict[tuple[int, int], object] = {}

    def describe(self) -> str:
        threads = f", {self.threads} threads" if self.threads else ""
        text = f"openvino {self.module.__version__.split('-')[0]} cpu {self.precision}{threads}"
        return text + (" (fell back to torch)" if self.fell_back else "")

    def _convert(self, shape, path: Path) -> None:
        ov = self.module
        onnx_path = path.with_suffix(".onnx")
        export_onnx_file(self.model, shape, onnx_path)
        try:
            ir = ov.convert_model(str(onnx_path))
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.xml")
            try:  # weights stay fp32 in the file: the run's precision is chosen when compiling
                ov.save_model(ir, str(tmp), compress_to_fp16=False)
                os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
                tmp.with_suffix(".bin").unlink(missing_ok=True)
        finally:
            onnx_path.unlink(missing_ok=True)

    def _runner(self, batch: int, shape: tuple[int, int]):
        ov = self.module
        ir = self._ir.get(shape)
        if ir is None:
            ir = self._ir[shape] = self.core.read_model(str(self.converted(shape)))
        model = ir.clone()
        model.reshape({model.inputs[0].get_any_name(): [batch, self.in_channels, *shape]})
        config = {"PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        request = self.core.compile_model(model, "CPU", config).create_infer_request()
        del ov

        def run(x: np.ndarray) -> np.ndarray:
            request.infer({0: x})
            return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

        return run


class ONNXRuntimeBackend(_CompiledRuntime):
    """The network on ONNX Runtime's CPU execution provider (fp32, all graph optimisations)."""

    name = "onnxruntime"
    suffix = "onnx"

    def __init__(self, model, precision: str = "fp32", threads: int | None = None, cache: Path | None = None):
        if precision != "fp32":
            raise UserError(f"--backend onnxruntime runs fp32 only (got --precision {precision})")
        super().__init__(model, precision, threads, cache)
        self._sessions: dict[tuple[int, int], object] = {}

    def describe(self) -> str:
        threads = f", {self.threads} threads" if self.threads else ""
        text = f"onnxruntime {self.module.__version__} cpu fp32{threads}"
        return text + (" (fell back to torch)" if self.fell_back else "")

    def _convert(self, shape, path: Path) -> None:
        export_onnx_file(self.model, shape, path)

    def _runner(self, batch: int, shape: tuple[int, int]):
        ort = self.module
        session = self._sessions.get(shape)
        if session is None:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self.threads:
                options.intra_op_num_threads = int(self.threads)
            session = self._sessions[shape] = ort.InferenceSession(str(self.converted(shape)), options,
                                                                   providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return session.run(None, {name: x})[0]

        return run


RUNTIME_CLASSES = {"openvino": OpenVINOBackend, "onnxruntime": ONNXRuntimeBackend}
