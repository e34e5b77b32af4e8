"""`framecolor export`: the generator as an ONNX file or a serialized TensorRT engine, for other tools.

Both have a fixed input shape (batch, in_channels, height, width), float32 for ONNX and float16 for the
TensorRT engine. Input ``L`` is CIE L / 50 - 1 (in [-1, 1]); output ``ab`` is Lab a, b / 110 (tanh range),
at the same height and width; see framecolor.color (normalize_L, denormalize_ab).

* ONNX: torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), which needs no other
  package; where a later torch drops it, the dynamo exporter is used, which needs ``onnx`` and
  ``onnxscript`` (the error says so). When ``onnx`` is installed, the file is checked with
  ``onnx.checker`` and the model's config is stored in its metadata.
* TensorRT: ``torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine`` in fp16 (extra
  ``tensorrt``, NVIDIA GPU): the raw engine bytes that trtexec or the TensorRT runtime load. An engine
  only runs on the GPU model and TensorRT version that built it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path

from .errors import UserError

log = logging.getLogger("framecolor")

FORMATS = ("onnx", "tensorrt")


def export_shape(config, height: int | None, width: int | None) -> tuple[int, int]:
    """(height, width) to export at: given sides, else the model's render size for a 16:9 frame (256 ->
    256x448); each rounded up to a multiple of 2**depth so the U-Net needs no padding."""
    from .stream import render_shape

    size = config.render_size
    default_h, default_w = render_shape(size * 9, size * 16, size)
    h, w = height or default_h, width or default_w
    if h < 16 or w < 16:
        raise UserError(f"--height/--width must be at least 16 (got {h}x{w})")
    multiple = 2 ** getattr(config, "depth", 5)
    return -(-h // multiple) * multiple, -(-w // multiple) * multiple


def _prepare(model_path, height, width, batch):
    from .checkpoint import load_generator

    if batch < 1:
        raise UserError(f"--batch must be at least 1 (got {batch})")
    model = load_generator(model_path).eval()
    shape = export_shape(model.config, height, width)
    return model, shape


def _check_output(output: Path, overwrite: bool) -> Path:
    output = Path(output)
    if output.exists() and not overwrite:
        raise UserError(f"{output}: exists (use --overwrite to replace it)")
    if output.is_dir():
        raise UserError(f"{output}: is a folder; give a file name")
    output.parent.mkdir(parents=True, exist_ok=True)
    return output


def export_onnx(model_path, output, height: int | None = None, width: int | None = None, batch: int = 1,
                opset: int = 17, overwrite: bool = False) -> Path:
    """Write the generator as ONNX (fixed shape, float32). Returns the path, present only once complete."""
    import torch

    output = _check_output(output, overwrite)
    model, (h, w) = _prepare(model_path, height, width, batch)
    x = torch.zeros(batch, model.config.in_channels, h, w)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.part")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer's notes on Python branches (padding decided by shape) and the exporter's
            # deprecation notice are about torch internals, not about the exported file.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                torch.onnx.export(model, (x,), str(tmp), input_names=["L"], output_names=["ab"],
                                  opset_version=opset, dynamo=False)
            except TypeError:  # a torch without the TorchScript exporter: the dynamo one
                try:
                    torch.onnx.export(model, (x,), str(tmp), input_names=["L"], output_names=["ab"], dynamo=True)
                except ImportError as exc:
                    raise UserError(f"ONNX export needs the packages onnx and onnxscript with this torch "
                                    f"({exc}): pip install onnx onnxscript") from None
        _annotate(tmp, model)
        log.info("ONNX: %s, input L (%d, %d, %d, %d) float32, output ab", output, batch,
                 model.config.in_channels, h, w)
        os.replace(tmp, output)
        return output
    finally:
        tmp.unlink(missing_ok=True)


def _annotate(path: Path, model) -> None:
    """Check the file and store the model's config and the value conventions in it (needs onnx; without
    it the file is left as torch wrote it)."""
    try:
        import onnx
    except ImportError:
        log.info("onnx is not installed: the file is not checked (pip install onnx to check it)")
        return
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    meta = {
        "framecolor_config": json.dumps(dataclasses.asdict(model.config), sort_keys=True),
        "input_L": "CIE L / 50 - 1",
        "output_ab": "CIE a, b / 110",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def export_tensorrt(model_path, output, height: int | None = None, width: int | None = None, batch: int = 1,
                    device: str = "cuda", overwrite: bool = False) -> Path:
    """Write a serialized TensorRT engine (fp16, fixed shape). UserError where TensorRT cannot run here."""
    from .backends import tensorrt_available

    if not tensorrt_available():
        raise UserError("export --format tensorrt needs torch-tensorrt and a CUDA device (install the "
                        "'tensorrt' extra on an NVIDIA machine); --format onnx works anywhere")
    import torch
    import torch_tensorrt

    output = _check_output(output, overwrite)
    model, (h, w) = _prepare(model_path, height, width, batch)
    model = model.to(device).half()
    x = torch.zeros(batch, model.config.in_channels, h, w, dtype=torch.float16, device=device)
    with torch.no_grad():
        exported = torch.export.export(model, (x,))
        engine = torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine(
            exported, arg_inputs=[x], enabled_precisions={torch.float16})
    tmp = output.with_name(f".{output.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(bytes(engine))
        log.info("TensorRT engine: %s, input L (%d, %d, %d, %d) float16", output, batch,
                 model.config.in_channels, h, w)
        os.replace(tmp, output)
        return output
    finally:
        tmp.unlink(missing_ok=True)


def export_model(fmt: str, model_path, output, height=None, width=None, batch: int = 1,
                 overwrite: bool = False) -> Path:
    if fmt == "onnx":
        return export_onnx(model_path, output, height, width, batch, overwrite=overwrite)
    if fmt == "tensorrt":
        return export_tensorrt(model_path, output, height, width, batch, overwrite=overwrite)
    raise UserError(f"unknown export format {fmt!r} ({', '.join(FORMATS)})")
