"""`framecolor bench speed INPUT`: throughput figures measured side by side in one run.

For each (backend, batch, render size) of the sweep, on the same input and the same frames:

* io-only frames/s: decode + encode with framecolor.io and no model (the floor the product can reach);
* model-only frames/s: the generator's forward pass on prepared tensors of the render shape;
  (both measured just before and just after each end-to-end run and averaged: on a shared machine the
  load drifts, and the runs are in the JSON);
* end-to-end frames/s: :func:`framecolor.run` (decode, L, generator, smoothing, upsampling, encode);
* the ratios end-to-end / io-only and end-to-end / min(io-only, model-only) (1.0 means the stages overlap
  perfectly), peak RSS, device name, backend, batch and render size;
* the largest and mean difference of the predicted ab (Lab units) against torch fp32 on real frames of
  the input (the first frames, at the render shape), so a faster runtime or a lower precision shows what
  it costs in colour;
* with ``stages``: CPU ms per frame of each pipeline stage (benchmarks/stages.py), one column per backend;
* for a video, once per input: the decode stage alone (decode, the input's L, the render-size L) through
  the RGB path and through the luminance-only path (VideoReader(luma_only=True)), and their ratio.

Optionally the ECCV16 network (benchmarks/eccv16.py, random weights) is timed on the same tensors as a
yardstick.  Timed runs are never part of the tests: these are figures to read, not assertions.
"""

from __future__ import annotations

import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from framecolor.errors import UserError


# ----------------------------------------------------------------------------------------- memory
def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux: clear_refs 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM (resettable) where /proc exists, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if platform.system() == "Darwin" else rss / 1024.0


def device_name(device: str) -> str:
    from framecolor.backends import resolve_device

    dev = resolve_device(device)
    if dev.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(dev))
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
            else:
                name = platform.processor() or platform.machine()
    except OSError:
        name = platform.processor() or platform.machine()
    return f"{name} ({os.cpu_count()} CPUs)"


# ------------------------------------------------------------------------------------------- parts
def _input_kind(path: Path) -> str:
    from framecolor.io.paths import source_kind

    return source_kind(path)


def io_only(path: Path, frames: int | None, workdir: Path) -> tuple[int, float]:
    """Decode + encode with the product's media code, no model: (frames, seconds)."""
    from framecolor.io import open_reader
    from framecolor.io.frame_folder import FrameFolderWriter
    from framecolor.io.video_writer import VideoWriter

    t0 = time.perf_counter()
    n = 0
    reader = open_reader(path, end=frames)
    if reader.kind == "video":
        out = workdir / f"io{path.suffix if path.suffix else '.mkv'}"
        with VideoWriter(out, source=reader.info, overwrite=True,
                               end_time=_end_time(reader.info, frames)) as writer:
            for frame in reader:
                writer.write(frame)
                n += 1
        reader.close()
    else:
        with FrameFolderWriter(workdir / "io_frames", overwrite=True) as writer:
            for frame in reader:
                writer.write(frame)
                n += 1
    return n, time.perf_counter() - t0


def decode_stage(path: Path, frames: int | None, render_size: int, luma_only: bool) -> tuple[int, float, int]:
    """The decode thread's work alone (decode, L at full size, L at render size): (frames, seconds,
    frames that took the luminance-only path)."""
    from framecolor.io.video_reader import VideoReader
    from framecolor.stream import luminance_pair

    reader = VideoReader(path, end=frames, luma_only=luma_only)
    n, t0, shapes = 0, time.perf_counter(), {}
    for frame in reader:
        luminance_pair(frame.image, render_size, shapes)
        n += 1
    return n, time.perf_counter() - t0, reader.frames_luma


def _end_time(info, frames):
    if frames is None or not info.average_rate:
        return None
    return float(frames / info.average_rate)


def frame_shape(path: Path) -> tuple[int, int]:
    """(H, W) of the input's frames."""
    from framecolor.io import open_reader

    reader = open_reader(path, end=1)
    if reader.kind == "video":
        return reader.info.height, reader.info.width
    return reader.height, reader.width


def model_only(forward, shape: tuple[int, int], batch: int, frames: int, min_seconds: float = 2.0,
               in_channels: int = 1) -> tuple[int, float, float]:
    """Time ``forward`` on prepared (batch, C, h, w) float32 batches: (frames, seconds, CPU seconds of
    this process) after a warm-up, at least ``frames`` frames and ``min_seconds`` seconds."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(batch, in_channels, *shape)).astype(np.float32)
    for _ in range(3):  # warm-up: allocations, oneDNN primitive caches, cudnn autotune
        forward(x)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while n < frames or time.perf_counter() - t0 < min_seconds:
        forward(x)
        n += batch
        if n >= 64 * batch and time.perf_counter() - t0 >= min_seconds:
            break
    return n, time.perf_counter() - t0, time.process_time() - c0


def end_to_end(path: Path, colorizer, frames: int | None, workdir: Path,
               temporal: str | None = None) -> tuple[int, float, float]:
    """:func:`framecolor.run` on the input: (frames written, seconds, CPU seconds of this process).
    ``temporal`` None is the product's default (flow for video, off for frame folders)."""
    from framecolor.api import run
    from framecolor.job import RunOptions

    kind = _input_kind(path)
    out = workdir / (f"e2e{path.suffix or '.mkv'}" if kind == "video" else "e2e_frames")
    options = RunOptions(model=colorizer.model, end=frames, overwrite=True, quiet=True, batch=colorizer.batch,
                         render_size=colorizer.render_size, temporal=temporal)
    t0, c0 = time.perf_counter(), time.process_time()
    run(path, out, options=options, colorizer=colorizer)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = _count_frames(out, kind)
    return n, seconds, cpu


def _count_frames(out: Path, kind: str) -> int:
    from framecolor.io import open_reader

    reader = open_reader(out, kind)
    return sum(1 for _ in reader) if kind == "video" else len(reader)


# ------------------------------------------------------------------------------------------ backends
def parse_backend_spec(spec: str) -> tuple[str, str]:
    """'openvino:bf16' -> ('openvino', 'bf16'); 'torch' -> ('torch', 'auto')."""
    from framecolor.backends import check_backend

    name, _, precision = spec.partition(":")
    check_backend(name, precision or "auto")
    return name, precision or "auto"


def installed_backends(device: str) -> list[str]:
    """Every backend (with each precision worth comparing) that can run on ``device`` here, torch fp32
    first (the reference)."""
    from framecolor.backends import tensorrt_available
    from framecolor.backends.runtimes import cpu_has_native_bf16, runtime_installed

    if device.startswith("cuda"):
        return ["torch:fp32", "torch:fp16"] + (["tensorrt:fp16"] if tensorrt_available() else [])
    specs = ["torch:fp32"]
    for name in ("onnxruntime", "openvino"):
        if runtime_installed(name):
            specs.append(f"{name}:fp32")
    if runtime_installed("openvino") and cpu_has_native_bf16():
        specs.append("openvino:bf16")
    return specs


def sample_L(path: Path, count: int, render_size: int) -> list[np.ndarray]:
    """Render-size L of the first ``count`` frames of the input, prepared as the colouring stream prepares them."""
    from framecolor.io import open_reader
    from framecolor.stream import luminance_pair

    with open_reader(path, end=count, luma_only=True) as reader:
        return [luminance_pair(frame.image, render_size)[1] for frame in reader]


def ab_difference(colorizer, reference: list[np.ndarray], L_small: list[np.ndarray]) -> tuple[float, float]:
    """(largest, mean) |ab - ab of torch fp32| in Lab units over the sample frames."""
    ab = colorizer.predict(L_small)
    diffs = [np.abs(a - r) for a, r in zip(ab, reference)]
    return float(max(d.max() for d in diffs)), float(np.mean([d.mean() for d in diffs]))


# --------------------------------------------------------------------------------------------- run
def run_speed(path: Path, model=None, backends=None, batches=(4,), render_sizes=(None,),
              device: str = "auto", frames: int | None = None, yardstick: bool = False,
              echo=print, temporals=(None,), stages: bool = True, diff_frames: int = 16,
              stage_frames: int = 24) -> dict:
    """The whole sweep; returns the JSON-able result (configs list + meta).

    ``backends``: specs 'NAME[:PRECISION]' (None: every installed one, :func:`installed_backends`)."""
    import torch

    from framecolor.backends import TorchBackend, resolve_device
    from framecolor.checkpoint import load_generator
    from framecolor.colorizers.automatic import Colorizer
    from framecolor.stream import render_shape

    path = Path(path)
    specs = [parse_backend_spec(b) for b in (backends or installed_backends(resolve_device(device)))]
    _input_kind(path)  # a clear error for a missing input before any work
    H, W = frame_shape(path)
    generator = load_generator(model) if model is None or isinstance(model, (str, os.PathLike)) else model
    dev = resolve_device(device)
    meta = {"input": str(path), "frame_size": [W, H], "device": dev, "device_name": device_name(dev),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "model": str(getattr(generator, "checkpoint_path", "in-memory")), "arch": generator.config.arch,
            "model_parameters_m": round(sum(p.numel() for p in generator.parameters()) / 1e6, 3)}
    configs, stage_rows = [], []
    video = _input_kind(path) == "video"
    reference_ab: dict[int, tuple] = {}  # render size -> (sample L, torch fp32 ab)

    def reference_for(size: int):
        if size not in reference_ab:
            L_small = sample_L(path, diff_frames, size)
            ref = Colorizer(generator, device="cpu", backend="torch", batch=4, render_size=size, precision="fp32")
            ref.backend = TorchBackend(generator, device="cpu", precision="fp32", optimize=False)  # as trained
            reference_ab[size] = (L_small, ref.predict(L_small))
        return reference_ab[size]

    with tempfile.TemporaryDirectory(prefix="framecolor-speed-") as tmp:
        workdir = Path(tmp)
        _reset_peak_rss()
        c0 = time.process_time()
        n_io, s_io = io_only(path, frames, workdir)
        io_cpu = (time.process_time() - c0) / max(n_io, 1)
        io_rss = peak_rss_mb()
        if n_io == 0:
            raise UserError(f"{path}: no frames decoded")
        io_fps = n_io / s_io
        echo(f"io-only: {n_io} frames in {s_io:.2f} s = {io_fps:.2f} frames/s")
        if _input_kind(path) == "video":
            size = render_sizes[0] or generator.config.render_size
            n_rgb, s_rgb, _ = decode_stage(path, frames, size, luma_only=False)
            n_luma, s_luma, via_luma = decode_stage(path, frames, size, luma_only=True)
            meta["decode_rgb_fps"], meta["decode_luma_fps"] = n_rgb / s_rgb, n_luma / s_luma
            meta["decode_luma_frames"] = via_luma
            echo(f"decode stage (decode + L + render-size L): RGB path {n_rgb / s_rgb:.1f} frames/s, "
                 f"luminance-only path {n_luma / s_luma:.1f} frames/s ({via_luma}/{n_luma} frames from the "
                 f"Y plane): x{s_rgb / n_rgb / (s_luma / n_luma):.2f}")
        for backend, precision in specs:
            for render_size in render_sizes:
                for batch, temporal in [(b, t) for b in batches for t in temporals]:
                    colorizer = Colorizer(generator, device=dev, backend=backend, batch=batch,
                                          render_size=render_size, precision=precision)
                    shape = render_shape(H, W, colorizer.render_size)

                    model_cpu = []

                    def model_fps_now():
                        n_m, s_m, c_m = model_only(colorizer.backend, shape, colorizer.batch,
                                                   frames=max(4 * colorizer.batch, 8))
                        model_cpu.append(c_m / n_m)
                        return n_m / s_m

                    # The reference figures are taken just before and just after the end-to-end run and
                    # averaged, so a change in the machine's load during the run biases neither side.
                    L_ref, ab_ref = reference_for(colorizer.render_size)
                    ab_max, ab_mean = ab_difference(colorizer, ab_ref, L_ref)
                    model_runs = [model_fps_now()]
                    _reset_peak_rss()
                    n_e, s_e, c_e = end_to_end(path, colorizer, frames, workdir, temporal)
                    e2e_cpu = c_e / max(n_e, 1)
                    e2e_rss = peak_rss_mb()
                    e2e_fps = n_e / s_e
                    model_runs.append(model_fps_now())
                    c_io = time.process_time()
                    n_io2, s_io2 = io_only(path, frames, workdir)
                    # the warm figure: the first call also paid for imports and codec set-up
                    io_cpu = (time.process_time() - c_io) / max(n_io2, 1)
                    io_runs = [io_fps, n_io2 / s_io2]
                    io_fps = n_io2 / s_io2  # the "before" figure of the next configuration
                    io_mean, model_mean = float(np.mean(io_runs)), float(np.mean(model_runs))
                    row = {
                        "backend": backend, "precision": getattr(colorizer.backend, "precision", precision),
                        "ab_max_diff": ab_max, "ab_mean_diff": ab_mean, "ab_diff_frames": len(L_ref),
                        "backend_detail": colorizer.backend.describe(), "batch": colorizer.batch,
                        "temporal": temporal or "default",
                        "render_size": colorizer.render_size, "render_shape": [shape[1], shape[0]],
                        "frames": n_e, "io_fps": io_mean, "model_fps": model_mean, "e2e_fps": e2e_fps,
                        "io_fps_runs": io_runs, "model_fps_runs": model_runs,
                        "e2e_over_io": e2e_fps / io_mean, "e2e_over_min": e2e_fps / min(io_mean, model_mean),
                        "peak_rss_mb": e2e_rss, "io_peak_rss_mb": io_rss, "e2e_seconds": s_e,
                        # CPU time of this process per frame: unlike frames/s it hardly depends on what
                        # else the machine runs.
                        "io_cpu_ms": 1000 * io_cpu, "model_cpu_ms": 1000 * float(np.mean(model_cpu)),
                        "e2e_cpu_ms": 1000 * e2e_cpu,
                    }
                    # Where decode+encode and the model share the same cores, end to end cannot beat the
                    # cores divided by their summed CPU time per frame, however well the stages overlap.
                    row["cpu_bound_fps"] = cpu_bound_fps(row["io_cpu_ms"], row["model_cpu_ms"], dev)
                    row["e2e_over_bound"] = e2e_fps / min(io_mean, model_mean, row["cpu_bound_fps"])
                    if yardstick:
                        row["eccv16_fps"] = eccv16_fps(dev, shape, colorizer.batch)
                        row["e2e_over_eccv16"] = e2e_fps / row["eccv16_fps"]
                    if stages and video:
                        from .stages import stage_costs

                        row["stages"] = stage_costs(path, colorizer, frames=min(stage_frames, frames or stage_frames),
                                                    temporal=temporal or "flow")
                        stage_rows.append((f"{backend} {row['precision']} b{colorizer.batch}", row["stages"]))
                    configs.append(row)
                    echo(format_row(row))
                    echo(f"  CPU per frame: io {row['io_cpu_ms']:.0f} ms, model {row['model_cpu_ms']:.0f} ms, "
                         f"end-to-end {row['e2e_cpu_ms']:.0f} ms ({os.cpu_count()} CPUs); CPU-bound ceiling "
                         f"{row['cpu_bound_fps']:.2f} frames/s, e2e / min(io, model, ceiling) "
                         f"{row['e2e_over_bound']:.2f}")
    if stage_rows:
        from .stages import format_stages

        echo(f"CPU ms per frame of each stage, one stage at a time over the first "
             f"{stage_rows[0][1]['frames']} frames ({W}x{H}, render {stage_rows[0][1]['render_shape'][0]}x"
             f"{stage_rows[0][1]['render_shape'][1]}):")
        echo(format_stages(stage_rows))
    return {"meta": meta, "configs": configs}


def eccv16_fps(device: str, shape: tuple[int, int], batch: int) -> float:
    """Model-only frames/s of the ECCV16 layout (random weights) at the same render shape and batch."""
    import torch

    from .eccv16 import ECCV16Colorizer

    net = ECCV16Colorizer().eval().to(device)

    def forward(x):
        with torch.inference_mode():
            return net(torch.from_numpy(x).to(device)).cpu()

    n, s, _ = model_only(forward, shape, batch, frames=2 * batch, min_seconds=2.0)
    return n / s


def cpu_bound_fps(io_cpu_ms: float, model_cpu_ms: float, device: str, cores: int | None = None) -> float:
    """Frames/s that end to end cannot exceed when every stage runs on the same CPU cores: the cores over
    the summed CPU time per frame of decode+encode and (on CPU) the model. On a GPU the model's CPU time is
    mostly waiting, so only decode+encode counts (inf when nothing was measured)."""
    cores = cores or os.cpu_count() or 1
    busy = io_cpu_ms + (model_cpu_ms if str(device).startswith("cpu") else 0.0)
    return float("inf") if busy <= 0 else 1000.0 * cores / busy


def format_row(row: dict) -> str:
    text = (f"{row['backend_detail']} batch {row['batch']} render {row['render_shape'][0]}x{row['render_shape'][1]} "
            f"temporal {row.get('temporal', 'default')}: "
            f"io {row['io_fps']:.2f} | model {row['model_fps']:.2f} | e2e {row['e2e_fps']:.2f} frames/s | "
            f"e2e/io {row['e2e_over_io']:.2f} | e2e/min {row['e2e_over_min']:.2f} | peak RSS {row['peak_rss_mb']:.0f} MB"
            f" | ab vs torch fp32 max {row['ab_max_diff']:.3f} mean {row['ab_mean_diff']:.4f}")
    if "eccv16_fps" in row:
        text += f" | ECCV16 yardstick {row['eccv16_fps']:.2f} frames/s | e2e/ECCV16 {row['e2e_over_eccv16']:.2f}"
    return text


def table(result: dict) -> str:
    """A plain-text table of the sweep."""
    head = ["backend", "batch", "render", "io fps", "model fps", "e2e fps", "model vs first", "e2e vs first",
            "model CPU ms", "e2e CPU ms", "ab max diff", "ab mean diff", "e2e/io", "peak RSS MB"]
    has_y = any("eccv16_fps" in r for r in result["configs"])
    if has_y:
        head += ["ECCV16 fps", "e2e/ECCV16"]
    lines = [f"{result['meta']['input']} ({result['meta']['frame_size'][0]}x{result['meta']['frame_size'][1]}) "
             f"on {result['meta']['device_name']} [{result['meta']['device']}], model {result['meta']['arch']} "
             f"{result['meta']['model_parameters_m']}M parameters",
             " | ".join(head)]
    first = result["configs"][0] if result["configs"] else None
    for r in result["configs"]:
        cells = [r["backend_detail"], str(r["batch"]), f"{r['render_shape'][0]}x{r['render_shape'][1]}",
                 f"{r['io_fps']:.2f}", f"{r['model_fps']:.2f}", f"{r['e2e_fps']:.2f}",
                 f"{r['model_fps'] / first['model_fps']:.2f}x", f"{r['e2e_fps'] / first['e2e_fps']:.2f}x",
                 f"{r['model_cpu_ms']:.0f}", f"{r['e2e_cpu_ms']:.0f}", f"{r['ab_max_diff']:.3f}",
                 f"{r['ab_mean_diff']:.4f}", f"{r['e2e_over_io']:.2f}", f"{r['peak_rss_mb']:.0f}"]
        if has_y:
            cells += [f"{r.get('eccv16_fps', float('nan')):.2f}", f"{r.get('e2e_over_eccv16', float('nan')):.2f}"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)
