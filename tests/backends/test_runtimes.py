"""The CPU runtimes (OpenVINO, ONNX Runtime) behind the backend interface: agreement with torch, the
converted-model cache, --backend auto's choice and fallback, --precision, and the networks routed
through them (generator, line-art stages, hint network)."""

import copy
import logging
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from framecolor.backends import TorchBackend, check_backend, make_backend
from framecolor.backends import runtimes as R
from framecolor.errors import UserError
from framecolor.models.unet import UNet, UNetConfig

RUNTIMES = [pytest.param(name, marks=pytest.mark.skipif(not R.runtime_installed(name), reason=f"{name} absent"))
            for name in ("openvino", "onnxruntime")]


def randomised_unet(seed=1, **config):
    """A tiny U-Net with non-trivial batch-norm statistics (so conversion must carry them)."""
    torch.manual_seed(seed)
    model = UNet(UNetConfig(**{"base_channels": 8, "depth": 3, "max_channels": 32, "render_size": 64, **config}))
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.5)
    return model.eval()


def batch_input(n=3, c=1, h=48, w=80, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, c, h, w)).astype(np.float32)


def torch_fp32(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def absent(monkeypatch, *modules):
    """Make ``import MODULE`` fail as it does when the package is not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


# ----------------------------------------------------------------------------------------- agreement
@pytest.mark.parametrize("name", RUNTIMES)
def test_runtime_fp32_agrees_with_torch(name, tmp_path):
    """fp32 on the runtime gives torch's fp32 output (float rounding only), for several batch sizes and
    two shapes (one needs the U-Net's padding), and with a 4-channel input (the hint network's)."""
    for config in ({}, {"in_channels": 4}):
        model = randomised_unet(**config)
        backend = R.RUNTIME_CLASSES[name](copy.deepcopy(model), precision="fp32", threads=1, cache=tmp_path)
        c = model.config.in_channels
        for n, h, w in ((3, 48, 80), (1, 48, 80), (2, 50, 70)):
            x = batch_input(n, c, h, w, seed=n)
            y = backend(x)
            assert y.shape == (n, 2, h, w) and y.dtype == np.float32
            assert np.abs(y - torch_fp32(model, x)).max() < 1e-4


@pytest.mark.skipif(not R.runtime_installed("openvino"), reason="openvino absent")
def test_openvino_runs_a_short_last_batch_on_the_full_batch_model(tmp_path):
    """After batches of 4, a batch of 3 (a stream's last) is padded onto the batch-4 model: no new
    compiled model, and its frames get the same output as in a full batch."""
    model = randomised_unet()
    backend = R.OpenVINOBackend(model, precision="fp32", threads=1, cache=tmp_path)
    x = batch_input(4)
    full = backend(x)
    assert list(backend._runners) == [(4, 48, 80)]
    short = backend(x[:3])
    assert short.shape == (3, 2, 48, 80) and list(backend._runners) == [(4, 48, 80)]
    np.testing.assert_allclose(short, full[:3], atol=1e-6)
    assert np.abs(short - torch_fp32(model, x[:3])).max() < 1e-4


@pytest.mark.skipif(not (R.runtime_installed("openvino") and R.cpu_has_native_bf16()),
                    reason="OpenVINO or a CPU with native bf16 is absent")
def test_openvino_bf16_is_close_to_torch_fp32(tmp_path):
    """bf16 (8-bit mantissa, fp32 accumulation) stays within 0.02 of fp32 in tanh units (2.2 Lab units) on
    the tiny model, and is not bit-identical (it really ran bf16)."""
    model = randomised_unet()
    backend = R.OpenVINOBackend(model, precision="bf16", threads=1, cache=tmp_path)
    x = batch_input()
    diff = np.abs(backend(x) - torch_fp32(model, x)).max()
    assert 0 < diff < 2e-2


# -------------------------------------------------------------------------------------------- cache
@pytest.mark.parametrize("name", RUNTIMES)
def test_second_build_converts_nothing_and_a_changed_model_converts_again(name, tmp_path):
    """The converted model is cached per model hash and shape: a new backend for the same model (another
    run) reuses the file untouched; another shape, or one changed weight, converts again."""
    model = randomised_unet()
    x = batch_input()
    first = R.RUNTIME_CLASSES[name](copy.deepcopy(model), threads=1, cache=tmp_path)
    before = R.CONVERSIONS[name]
    y1 = first(x)
    assert R.CONVERSIONS[name] == before + 1
    path = first.cache_path((48, 80))
    assert path.is_file()
    mtime = path.stat().st_mtime_ns

    second = R.RUNTIME_CLASSES[name](copy.deepcopy(model), threads=1, cache=tmp_path)
    assert second.cache_path((48, 80)) == path
    np.testing.assert_array_equal(second(x), y1)
    assert R.CONVERSIONS[name] == before + 1 and path.stat().st_mtime_ns == mtime

    second(batch_input(2, 1, 32, 64))  # another render shape: its own file
    assert R.CONVERSIONS[name] == before + 2

    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.head[-2].bias.add_(0.1)
    third = R.RUNTIME_CLASSES[name](changed, threads=1, cache=tmp_path)
    assert third.cache_path((48, 80)) != path
    y3 = third(x)
    assert R.CONVERSIONS[name] == before + 3
    assert np.abs(y3 - torch_fp32(changed, x)).max() < 1e-4 and np.abs(y3 - y1).max() > 1e-3


# ---------------------------------------------------------------------------------------- choosing
def test_auto_on_cpu_takes_the_fastest_installed_runtime_and_falls_back(monkeypatch, caplog):
    """--backend auto on CPU: OpenVINO, else ONNX Runtime, else torch; each choice in one log line, and
    with neither runtime importable it still runs (torch)."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    model = randomised_unet()
    x = batch_input()
    expected = [name for name in ("openvino", "onnxruntime") if R.runtime_installed(name)]
    with caplog.at_level(logging.INFO, logger="framecolor"):
        backend = make_backend(copy.deepcopy(model), backend="auto", device="auto", precision="fp32")
    assert backend.name == (expected[0] if expected else "torch")
    if "openvino" in expected:
        absent(monkeypatch, "openvino")
        backend = make_backend(copy.deepcopy(model), backend="auto", precision="fp32")
        assert backend.name == ("onnxruntime" if "onnxruntime" in expected else "torch")
    absent(monkeypatch, "openvino", "onnxruntime")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="framecolor"):
        backend = make_backend(copy.deepcopy(model), backend="auto", precision="auto")
    assert isinstance(backend, TorchBackend) and backend.precision == "fp32"
    lines = [r.getMessage() for r in caplog.records if "backend auto" in r.getMessage()]
    assert len(lines) == 1 and "torch" in lines[0]
    assert np.abs(backend(x) - torch_fp32(model, x)).max() < 1e-4


@pytest.mark.parametrize("name,extra", [("openvino", "openvino"), ("onnxruntime", "onnxruntime")])
def test_explicit_runtime_without_its_package_is_one_line_naming_the_extra(name, extra, monkeypatch, tmp_path):
    absent(monkeypatch, name)
    with pytest.raises(UserError, match=rf"framecolor\[{extra}\]"):
        check_backend(name)
    with pytest.raises(UserError, match=rf"framecolor\[{extra}\]"):
        make_backend(randomised_unet(), backend=name)
    from framecolor.cli import cli

    clip = tmp_path / "in.mkv"
    clip.write_bytes(b"not a video: the backend check comes first")
    result = CliRunner().invoke(cli, ["run", str(clip), "--backend", name, "-o", str(tmp_path / "out.mkv")])
    assert result.exit_code == 2, result.output
    message = [line for line in result.output.splitlines() if line.strip()]
    assert len(message) == 1 and f"framecolor[{extra}]" in message[0]


def test_precision_rules(monkeypatch):
    """auto: bf16 for OpenVINO only where the CPU has native bf16, fp16 on CUDA; fp16 on CPU, bf16 on a
    CPU without it and bf16 on ONNX Runtime are one-line errors."""
    monkeypatch.setattr(R, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert R.resolve_precision("auto", "openvino", cuda=False) == "bf16"
    assert R.resolve_precision("auto", "onnxruntime", cuda=False) == "fp32"
    assert R.resolve_precision("auto", "torch", cuda=False) == "fp32"
    assert R.resolve_precision("bf16", "openvino", cuda=False) == "bf16"
    assert R.resolve_precision("auto", "torch", cuda=True) == "fp16"
    with pytest.raises(UserError, match="ONNX Runtime"):
        R.resolve_precision("bf16", "onnxruntime", cuda=False)
    with pytest.raises(UserError, match="CUDA only"):
        R.resolve_precision("fp16", "openvino", cuda=False)
    with pytest.raises(UserError, match="tensorrt"):
        R.resolve_precision("bf16", "tensorrt", cuda=True)
    with pytest.raises(UserError, match="--precision"):
        check_backend("torch", "int8")
    monkeypatch.setattr(R, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert R.resolve_precision("auto", "openvino", cuda=False) == "fp32"
    with pytest.raises(UserError, match="native bf16"):
        R.resolve_precision("bf16", "openvino", cuda=False)
    with pytest.raises(UserError, match="native bf16"):
        TorchBackend(randomised_unet(), device="cpu", precision="bf16")


def test_cpu_runtime_on_an_explicit_cuda_device_is_refused():
    with pytest.raises(UserError, match="runs on CPU"):
        make_backend(randomised_unet(), backend="onnxruntime", device="cuda")


# ------------------------------------------------------------------------------------ routed models
@pytest.mark.parametrize("name", RUNTIMES)
def test_lineart_stages_and_generator_run_through_the_runtime(name, tmp_path):
    """The line-art stages (3 output channels, 1 and 7 input channels) and the automatic colouriser built
    with backend=NAME run on that runtime and give torch's output."""
    from framecolor.colorizers.lineart import TwoStage
    from framecolor.colorizers.automatic import Colorizer

    torch.manual_seed(0)
    draft = UNet(UNetConfig(in_channels=1, out_channels=3, base_channels=4, depth=3, max_channels=16,
                            render_size=64)).eval()
    refine = UNet(UNetConfig(in_channels=7, out_channels=3, base_channels=4, depth=3, max_channels=16,
                             render_size=64)).eval()
    on_runtime = TwoStage(copy.deepcopy(draft), copy.deepcopy(refine), backend=name, precision="fp32")
    on_torch = TwoStage(copy.deepcopy(draft), copy.deepcopy(refine), backend="torch", device="cpu")
    assert on_runtime.draft.backend.name == name and on_runtime.refine.backend.name == name
    lines = [np.random.default_rng(i).uniform(0, 100, (48, 64)).astype(np.float32) for i in range(2)]
    for a, b in zip(on_runtime(lines), on_torch(lines)):
        assert np.abs(a - b).max() < 1e-2  # Lab units

    model = randomised_unet()
    colorizer = Colorizer(copy.deepcopy(model), device="cpu", backend=name, precision="fp32", batch=2)
    reference = Colorizer(copy.deepcopy(model), device="cpu", backend="torch", batch=2)
    assert colorizer.backend.name == name
    L = [np.random.default_rng(i).uniform(0, 100, (48, 80)).astype(np.float32) for i in range(3)]
    for a, b in zip(colorizer.predict(L), reference.predict(L)):
        assert np.abs(a - b).max() < 1e-2


@pytest.mark.parametrize("name", RUNTIMES)
def test_auto_falls_back_to_torch_when_the_runtime_cannot_take_the_model(name, monkeypatch, caplog, tmp_path):
    """A conversion failure (here the exporter raising, as for an operator ONNX lacks) under --backend auto
    runs the model on torch with one warning; an explicit --backend NAME fails with the error instead."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    for other in ("openvino", "onnxruntime"):
        if other != name:
            absent(monkeypatch, other)

    def fail(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::something' to ONNX opset 17 is not supported")

    monkeypatch.setattr(R, "export_onnx_file", fail)
    monkeypatch.setenv("FRAMECOLOR_CACHE", str(tmp_path))  # nothing converted earlier to reuse
    model = randomised_unet()
    x = batch_input()
    backend = make_backend(copy.deepcopy(model), backend="auto", precision="fp32")
    assert backend.name == name
    with caplog.at_level(logging.WARNING, logger="framecolor"):
        y = backend(x)
        y2 = backend(x)
    assert np.abs(y - torch_fp32(model, x)).max() < 1e-4 and np.array_equal(y, y2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "torch" in warnings[0] and "fell back" in backend.describe()
    explicit = make_backend(copy.deepcopy(model), backend=name, precision="fp32")
    with pytest.raises(RuntimeError, match="not supported"):
        explicit(x)
