"""Backends (torch CPU/CUDA, TensorRT), the engine cache key, --batch auto, `framecolor export`, and the
decode stage's luminance-only fast path (VideoReader(luma_only=True))."""

import copy
import logging
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from clips import make_gray_clip, make_shapes_clip
from framecolor import color
from framecolor.backends import TorchBackend, auto_batch, make_backend, tensorrt_available
from framecolor.backends.cache import engine_cache_key, model_hash
from framecolor.errors import UserError
from framecolor.models.unet import UNet, UNetConfig

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
needs_tensorrt = pytest.mark.skipif(not tensorrt_available(), reason="torch-tensorrt or CUDA is absent")


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    return UNet(UNetConfig(base_channels=8, depth=3, max_channels=32, render_size=64)).eval()


def batch_input(n=3, h=48, w=80, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, h, w)).astype(np.float32)


# ------------------------------------------------------------------------------------------ torch
def test_cpu_channels_last_agrees_with_contiguous_and_plain_forward():
    """The CPU backend's channels_last and contiguous layouts, folded or not, give the model's own fp32
    output."""
    model = randomised_unet()
    x = batch_input()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    for channels_last, optimize in ((True, True), (False, True), (True, False), (False, False)):
        backend = TorchBackend(copy.deepcopy(model), device="cpu", channels_last=channels_last, optimize=optimize)
        assert backend.folded == optimize
        out = backend(x)
        assert out.shape == (3, 2, 48, 80) and out.dtype == np.float32
        assert np.abs(out - expected).max() < 1e-4


def randomised_unet(**config):
    """A U-Net whose batch-norm statistics and affine parameters are not the identity, so folding them
    is really exercised."""
    model = UNet(UNetConfig(**{"base_channels": 8, "depth": 3, "max_channels": 32, "render_size": 64, **config}))
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            for t, lo, hi in ((m.running_mean, -0.5, 0.5), (m.running_var, 0.5, 2.0), (m.weight, 0.5, 1.5),
                              (m.bias, -0.3, 0.3)):
                t.data.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)
    return model.eval()


@pytest.mark.parametrize("config", [{}, {"in_channels": 4}, {"norm": "none"}, {"depth": 4, "base_channels": 4}])
def test_folded_unet_computes_the_same_function(config):
    """The inference rewrite (batch norm folded, sub-pixel convolutions, per-part convolutions instead of
    concatenation) gives the trained U-Net's output, at padded and unpadded sizes."""
    from framecolor.backends.torch_backend import inference_module

    model = randomised_unet(**config)
    fast = inference_module(model)
    assert fast is not model
    c = model.config.in_channels
    for shape in ((2, c, 64, 96), (1, c, 50, 70)):
        x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
        with torch.no_grad():
            assert (fast(x) - model(x)).abs().max().item() < 1e-5


def test_models_the_rewrite_does_not_cover_run_as_they_are():
    from framecolor.backends.torch_backend import inference_module
    from framecolor.models.resnet_unet import ResNetUNet, ResNetUNetConfig

    group = randomised_unet(norm="group")
    assert inference_module(group) is group
    resnet = ResNetUNet(ResNetUNetConfig(width=8)).eval()
    assert inference_module(resnet) is resnet
    training = randomised_unet().train()
    assert inference_module(training) is training


def test_cpu_rejects_half_precision():
    with pytest.raises(UserError, match="CUDA only"):
        TorchBackend(tiny_unet(), device="cpu", precision="fp16")


@needs_cuda
def test_cuda_fp16_agrees_with_cpu_fp32():
    """fp16 + channels_last on CUDA through pinned buffers matches fp32 on CPU within fp16 tolerance,
    twice in a row (the reused buffers do not leak one batch into the next)."""
    model = tiny_unet()
    cpu = TorchBackend(copy.deepcopy(model), device="cpu")
    gpu = TorchBackend(copy.deepcopy(model), device="cuda")
    for seed in (0, 1):
        x = batch_input(seed=seed)
        assert np.abs(gpu(x) - cpu(x)).max() < 2e-2


def test_auto_backend_on_cpu_says_so_in_one_line(caplog, monkeypatch):
    """Without the optional CPU runtimes (imports made to fail), auto on CPU is torch, said in one line."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    import sys

    for module in ("openvino", "onnxruntime"):
        monkeypatch.setitem(sys.modules, module, None)
    with caplog.at_level(logging.INFO, logger="framecolor"):
        backend = make_backend(tiny_unet(), backend="auto", device="auto")
    assert isinstance(backend, TorchBackend) and backend.device.type == "cpu"
    lines = [r.getMessage() for r in caplog.records if "backend auto" in r.getMessage()]
    assert len(lines) == 1 and "CPU" in lines[0]


def test_explicit_tensorrt_without_it_is_a_user_error():
    if tensorrt_available():
        pytest.skip("TensorRT is available here")
    with pytest.raises(UserError, match="tensorrt"):
        make_backend(tiny_unet(), backend="tensorrt", device="auto")
    with pytest.raises(UserError, match="unknown backend"):
        make_backend(tiny_unet(), backend="onnx")


def test_batch_auto_on_cpu_is_the_stated_default(tiny_model_path):
    from framecolor.backends import CPU_AUTO_BATCH
    from framecolor.colorizers.automatic import Colorizer
    from framecolor.colorizers.base import parse_batch

    assert auto_batch(TorchBackend(tiny_unet(), device="cpu"), (64, 112)) == CPU_AUTO_BATCH == 4
    if not torch.cuda.is_available():
        assert Colorizer(tiny_model_path, device="cpu", batch="auto").batch == 4
    assert parse_batch("8") == 8 and parse_batch("AUTO") == "auto"
    for bad in ("0", "many", -2):
        with pytest.raises(UserError, match="--batch"):
            parse_batch(bad)


@needs_cuda
def test_batch_auto_on_cuda_fits_and_is_a_power_of_two():
    backend = TorchBackend(tiny_unet(), device="cuda")
    b = auto_batch(backend, (64, 112), start=32)
    assert 1 <= b <= 32 and b & (b - 1) == 0


# ------------------------------------------------------------------------------------ engine cache key
KEY_ARGS = dict(model_sha256="a" * 64, shape=(256, 448), batch=8, in_channels=1,
                versions={"torch": "2.13.0", "torch_tensorrt": "2.13.0", "tensorrt": "10.9"},
                gpu="NVIDIA H100 80GB HBM3 sm_90")


def test_engine_cache_key_is_stable_and_changes_with_each_input():
    """Same inputs, same key; a different model, shape, batch, channel count, library version, GPU or
    precision gives a different key (a stale engine is never reused)."""
    key = engine_cache_key(**KEY_ARGS)
    assert key == engine_cache_key(**copy.deepcopy(KEY_ARGS))
    assert key.startswith("framecolor-256x448-b8-")
    variants = [
        dict(model_sha256="b" * 64), dict(shape=(256, 464)), dict(shape=(448, 256)), dict(batch=16),
        dict(in_channels=4), dict(versions={**KEY_ARGS["versions"], "tensorrt": "10.10"}),
        dict(versions={**KEY_ARGS["versions"], "torch": "2.14.0"}), dict(gpu="NVIDIA H200 sm_90"),
    ]
    keys = {key}
    for change in variants:
        keys.add(engine_cache_key(**{**KEY_ARGS, **change}))
    keys.add(engine_cache_key(**KEY_ARGS, precision="fp32"))
    assert len(keys) == len(variants) + 2


def test_model_hash_follows_the_weights_and_config(tmp_path):
    """The model hash is the same for the same weights (also after a checkpoint round trip) and changes
    when one weight or the config changes."""
    from framecolor.checkpoint import load_generator, save_generator

    model = tiny_unet()
    h = model_hash(model)
    save_generator(tmp_path / "m.safetensors", model)
    assert model_hash(load_generator(tmp_path / "m.safetensors")) == h
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert model_hash(changed) != h
    other = UNet(UNetConfig(base_channels=8, depth=3, max_channels=32, render_size=128))
    other.load_state_dict(model.state_dict())
    assert model_hash(other) != h  # same weights, other config


def test_cache_folder_follows_environment(monkeypatch, tmp_path):
    from framecolor.backends.cache import cache_dir

    monkeypatch.setenv("FRAMECOLOR_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "trt"
    monkeypatch.delenv("FRAMECOLOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "framecolor" / "trt"


@needs_tensorrt
def test_tensorrt_engine_is_cached_and_reused(tmp_path):
    """The TensorRT backend compiles once, writes its engine under the cache key, loads it in a second
    backend without compiling, and agrees with torch fp32 within fp16 tolerance (short batch padded)."""
    from framecolor.backends import TensorRTBackend

    model = tiny_unet()
    x = batch_input(n=3, h=64, w=96)
    expected = TorchBackend(copy.deepcopy(model), device="cpu")(x)
    first = TensorRTBackend(copy.deepcopy(model), device="cuda", batch=4, cache=tmp_path)
    out = first(x)
    path = first.engine_path((64, 96))
    assert path.is_file() and np.abs(out - expected).max() < 2e-2
    mtime = path.stat().st_mtime_ns
    second = TensorRTBackend(copy.deepcopy(model), device="cuda", batch=4, cache=tmp_path)
    assert second.engine_path((64, 96)) == path
    assert np.abs(second(x) - out).max() < 1e-3 and path.stat().st_mtime_ns == mtime


# ------------------------------------------------------------------------------------------- export
def test_export_onnx_matches_torch(tmp_path, tiny_model_path):
    """`framecolor export --format onnx` writes a file whose output (onnxruntime) equals torch's."""
    ort = pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    from framecolor.checkpoint import load_generator
    from framecolor.cli import cli

    out = tmp_path / "g.onnx"
    result = CliRunner().invoke(cli, ["export", "--format", "onnx", "--model", str(tiny_model_path), "-o", str(out),
                                      "--height", "64", "--width", "96", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and not list(tmp_path.glob(".*part"))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["L"] and session.get_inputs()[0].shape == [2, 1, 64, 96]
    x = batch_input(n=2, h=64, w=96)
    with torch.no_grad():
        expected = load_generator(tiny_model_path).eval()(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"L": x})[0] - expected).max() < 1e-4
    again = CliRunner().invoke(cli, ["export", "--format", "onnx", "--model", str(tiny_model_path), "-o", str(out)])
    assert again.exit_code == 2 and "exists" in again.output


def test_export_shape_defaults_to_16_9_at_render_size():
    from framecolor.export import export_shape

    config = UNetConfig(depth=5, render_size=256)
    assert export_shape(config, None, None) == (256, 448)
    assert export_shape(config, 250, 300) == (256, 320)  # rounded up to multiples of 2**depth


def test_export_tensorrt_without_it_is_a_clear_error(tmp_path, tiny_model_path):
    if tensorrt_available():
        pytest.skip("TensorRT is available here")
    from click.testing import CliRunner

    from framecolor.cli import cli

    result = CliRunner().invoke(cli, ["export", "--format", "tensorrt", "--model", str(tiny_model_path),
                                      "-o", str(tmp_path / "g.engine")])
    assert result.exit_code == 2 and "torch-tensorrt" in result.output
    assert not (tmp_path / "g.engine").exists()


# -------------------------------------------------------------------------- luminance-only decoding
def make_gray10_clip(path, frames=4, size=(96, 64)):
    """A black-and-white 10-bit clip (yuv420p10le, neutral chroma) whose gray levels fall between
    8-bit levels: a full 16-bit ramp plus a moving pattern."""
    w, h = size
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p10le"
        s.time_base = Fraction(1, 25)
        for i in range(frames):
            g = np.repeat(np.linspace(0, 65535, w)[None, :], h, axis=0).astype(np.uint16)
            g[h // 2 :] = ((np.arange(w) * 613 + i * 4099) % 65536)[None, :]
            f = av.VideoFrame.from_ndarray(np.repeat(g[:, :, None], 3, axis=2), format="rgb48le")
            f.pts = i
            out.mux(s.encode(f.reformat(format="yuv420p10le")))
        out.mux(s.encode(None))
    return path


@pytest.mark.parametrize("kind", ["gray8_yuv", "gray8_plane", "gray10_yuv"])
def test_luma_only_frames_have_the_rgb_paths_luminance(tmp_path, kind):
    """For black-and-white clips (8-bit YUV with neutral chroma, a gray pixel format, 10-bit YUV) every
    frame takes the Y-plane path and its L equals the RGB path's L within 0.1."""
    from framecolor.io.video_reader import VideoReader
    from framecolor.stream import frame_luminance

    if kind == "gray8_yuv":
        path = make_shapes_clip(tmp_path / "g.mp4", frames=5, color=False, audio=False)
    elif kind == "gray8_plane":
        path = make_gray_clip(tmp_path / "g.mkv", frames=5)
    else:
        path = make_gray10_clip(tmp_path / "g10.mkv")
    rgb_reader, luma_reader = VideoReader(path), VideoReader(path, luma_only=True)
    n = 0
    for a, b in zip(rgb_reader, luma_reader):
        assert b.image.ndim == 2 and b.image.dtype == a.image.dtype and (a.index, a.pts) == (b.index, b.pts)
        assert np.abs(frame_luminance(b.image) - color.luminance(a.image)).max() < 0.1
        n += 1
    assert n == luma_reader.frames_yielded == luma_reader.frames_luma > 0


def test_colour_frames_keep_the_rgb_path(tmp_path):
    """A colour clip gives the same RGB frames with luma_only=True: no frame takes the Y-plane path."""
    from framecolor.io.video_reader import VideoReader

    path = make_shapes_clip(tmp_path / "c.mp4", frames=4, color=True, audio=False)
    luma = VideoReader(path, luma_only=True)
    for a, b in zip(VideoReader(path), luma):
        assert np.array_equal(a.image, b.image)
    assert luma.frames_luma == 0 and luma.frames_yielded == 4


def test_run_on_a_gray_clip_keeps_its_luminance(tmp_path, tiny_model_path):
    """End to end through the luma-only reader: the coloured output's L equals the gray input's L
    (within the encoder's loss on this tiny clip) and it has colour."""
    from framecolor.io.video_reader import VideoReader
    from framecolor.api import run

    src = make_shapes_clip(tmp_path / "g.mkv", frames=6, color=False, audio=False, codec="ffv1")
    out = run(src, tmp_path / "o.mkv", model=tiny_model_path, batch=2, codec="ffv1", quiet=True)
    frames = list(VideoReader(out))
    assert len(frames) == 6
    for a, b in zip(VideoReader(src), frames):
        assert np.abs(color.luminance(a.image) - color.luminance(b.image)).mean() < 1.0
    assert np.abs(color.rgb_to_lab(frames[-1].image)[..., 1:]).mean() > 2
