"""`framecolor info`: what this installation has (versions, devices, backends, bundled models)."""

from __future__ import annotations

import platform


def describe_system() -> str:
    lines = [f"framecolor {_version('framecolor')}", f"python {platform.python_version()} ({platform.machine()})"]
    try:
        import torch

        lines.append(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                lines.append(f"cuda:{i} {torch.cuda.get_device_name(i)}")
        else:
            lines.append("CUDA: no device visible")
    except ImportError:
        lines.append("torch: not installed")
    for module in ("av", "cv2", "skimage", "numpy"):
        lines.append(f"{module} {_module_version(module)}")
    from .backends import tensorrt_available

    from .backends.runtimes import cpu_has_native_bf16, runtime_installed

    have = ["torch"] + [name for name in ("openvino", "onnxruntime") if runtime_installed(name)]
    missing = [name for name in ("openvino", "onnxruntime") if name not in have]
    have += ["tensorrt"] if tensorrt_available() else []
    lines.append(f"backends: {', '.join(have)}" + (f" (not installed: {', '.join(missing)})" if missing else "")
                 + ("" if "tensorrt" in have else " (tensorrt: not available)"))
    lines.append(f"CPU bf16: {'native (--precision auto uses it with openvino)' if cpu_has_native_bf16() else 'no'}")
    from .checkpoint import bundled_models, read_metadata

    models = bundled_models()
    if not models:
        lines.append("bundled models: none (pass --model PATH)")
    for path in models:
        config, info = read_metadata(path)
        lines.append(f"bundled model: {path.name} ({config.get('arch')}, {path.stat().st_size / 1e6:.1f} MB)")
    return "\n".join(lines)


def _module_version(name: str) -> str:
    try:
        module = __import__(name)
    except ImportError:
        return "not installed"
    return getattr(module, "__version__", "?")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "(not installed)"
