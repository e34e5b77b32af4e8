"""Golden outputs: each way of colouring gives, pixel for pixel, what it gave when the fixtures were made.

Property checked: a change meant to keep behaviour (the issue 15 restructure, later refactorings) changes
no output pixel of the product's main paths, each entered exactly as a user enters it:

* ``video``: a two-shot grayscale clip (FFV1 in Matroska, so decoding is exact) through ``framecolor run``
  (flow smoothing, its default for video; a scene cut resets it); the output's DECODED frames and their
  timestamps are compared, never the file's bytes;
* ``folder``: a frame folder through the Python API ``framecolor.run`` (frame names kept);
* ``frames_api``: in-memory frames through ``framecolor.colorize_frames``;
* ``reference``: the clip with ``--reference 0=KEY`` (the first shot carried from its key, the second
  coloured automatically) and ``--hints`` (a point hint in the keyless shot);
* ``reference_api``: reference mode through ``framecolor.colorize_frames(..., references={0: key})``;
* ``lineart``: a folder of line drawings with ``--input-kind lineart`` (draft + refinement stages);
* ``lineart_reference``: the same with a painted key (line-art reference mode, region fill).

The generators are tiny U-Nets whose weights are drawn from a fixed NumPy seed (not from torch's
initialisers, which may change between torch releases), run with ``--backend torch --device cpu`` in fp32
(OpenVINO's bf16 would tie the pixels to the CPU model). The inputs are drawn by the code below.

The comparison is exact: on this machine the same command gives the same pixels run after run (checked
by running each case twice in one session and in separate processes, with 1 and 2 torch threads, when the
fixtures were made). If another machine's BLAS or OpenCV rounds differently, the difference shows as a
few pixels one level apart: the assertion message gives the largest difference and how many pixels
differ, so such a case can be told from a real change.

Regenerate (only when a change of output is intended; say why in the commit):

    PYTHONPATH=. python tests/test_golden.py --regenerate

The fixtures in tests/golden/ were generated on the code before the issue 15 restructure, by the commit that
added them (``git log --diff-filter=A -- tests/golden/video.npz``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
W, H = 64, 48  # frame size of every input
RENDER = 32  # the generators' render size: smaller than the frames, so upsampling is exercised
CUT = 8  # the clip's second shot starts here (the cut detector's shortest shot is 8 frames)
FRAMES = 13


# ------------------------------------------------------------------------------------------- inputs
def scene(t: int, world: int) -> np.ndarray:
    """Frame ``t`` of a shot in ``world`` (0 or 1): flat-coloured, dark-outlined shapes moving over a
    gradient background, RGB uint8 (H, W, 3)."""
    bg, disc, box = [((60, 100, 170), (230, 200, 40), (200, 40, 60)),
                     ((40, 130, 60), (240, 120, 30), (130, 50, 180))][world]
    ramp = np.linspace(0.6, 1.0, H, dtype=np.float32)[:, None, None]
    img = np.clip(np.array(bg, np.float32) * ramp * np.ones((H, W, 1), np.float32), 0, 255).astype(np.uint8)
    cx, cy = 16 + 2 * t, 16 + (t % 3)
    cv2.circle(img, (cx, cy), 9, disc, -1)
    cv2.circle(img, (cx, cy), 9, (20, 20, 25), 1)
    bx = 44 - t
    cv2.rectangle(img, (bx, 26), (bx + 14, 40), box, -1)
    cv2.rectangle(img, (bx, 26), (bx + 14, 40), (20, 20, 25), 1)
    return img


def colour_frames() -> list[np.ndarray]:
    """The clip in colour: frames [0, CUT) in world 0, then world 1."""
    return [scene(t, 0) if t < CUT else scene(t - CUT, 1) for t in range(FRAMES)]


def gray(img: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def drawing(t: int) -> np.ndarray:
    """A line drawing: black outlines of a circle and a rectangle on white paper, moving with ``t``."""
    img = np.full((H, W, 3), 255, np.uint8)
    cv2.circle(img, (20 + t, 22), 12, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.rectangle(img, (36, 8 + t), (58, 36 + t), (0, 0, 0), 2)
    return img


def painted_key() -> np.ndarray:
    """Drawing 0 painted: paper inside the circle red, inside the rectangle blue, outside pale yellow."""
    img = drawing(0)
    fill = np.zeros((H, W), np.uint8)
    cv2.circle(fill, (20, 22), 11, 1, -1)
    paper = img[..., 0] > 128
    img[paper] = (245, 235, 190)
    img[paper & (fill > 0)] = (210, 60, 50)
    box = np.zeros((H, W), bool)
    box[10:35, 38:57] = True
    img[paper & box] = (60, 90, 210)
    return img


def write_clip(path: Path, images: list[np.ndarray]) -> Path:
    """A gray FFV1 clip (lossless, so the decoded input is exactly ``images``' luminance) at 25 frames/s."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "gray"
        s.time_base = Fraction(1, 25)
        for i, img in enumerate(images):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[..., 0]), format="gray")
            f.pts, f.time_base = i, Fraction(1, 25)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    return path


def write_folder(path: Path, images: list[np.ndarray]) -> Path:
    path.mkdir(parents=True)
    for i, img in enumerate(images):
        cv2.imwrite(str(path / f"f{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def write_png(path: Path, img: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


# ------------------------------------------------------------------------------------------- models
def tiny_generator(path: Path, in_channels: int, out_channels: int, seed: int) -> Path:
    """A tiny U-Net checkpoint whose weights come from ``np.random.default_rng(seed)``: uniform in
    +-1/sqrt(fan_in) (the scale of torch's default initialisation), biases in +-0.1, batch-norm statistics
    left at their defaults (mean 0, variance 1)."""
    import torch

    from framecolor.checkpoint import save_generator
    from framecolor.models.unet import UNet, UNetConfig

    model = UNet(UNetConfig(in_channels=in_channels, out_channels=out_channels, base_channels=4, depth=3,
                            max_channels=16, render_size=RENDER)).eval()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                bound = 1.0 / np.sqrt(p[0].numel())
                p.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(p.shape)).astype(np.float32)))
            elif name.endswith("bias"):
                p.copy_(torch.from_numpy(rng.uniform(-0.1, 0.1, tuple(p.shape)).astype(np.float32)))
    return save_generator(path, model, info={"purpose": "golden tests"})


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("golden_models")
    return {"gray": tiny_generator(folder / "gray.safetensors", 1, 2, seed=1),
            "draft": tiny_generator(folder / "draft.safetensors", 1, 3, seed=2),
            "refine": tiny_generator(folder / "refine.safetensors", 7, 3, seed=3)}


# ------------------------------------------------------------------------------------------- runs
TORCH = ["--backend", "torch", "--device", "cpu"]


def _cli(*args) -> None:
    from click.testing import CliRunner

    from framecolor.cli import cli

    result = CliRunner().invoke(cli, ["-q", *[str(a) for a in args]], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _read_video(path: Path) -> dict[str, np.ndarray]:
    import av

    frames, pts = [], []
    with av.open(str(path)) as c:
        for f in c.decode(c.streams.video[0]):
            frames.append(f.to_ndarray(format="rgb24"))
            pts.append(f.pts)
    return {"frames": np.stack(frames), "pts": np.array(pts, np.int64)}


def _read_folder(path: Path) -> dict[str, np.ndarray]:
    names = sorted(p.name for p in path.iterdir())
    frames = [cv2.cvtColor(cv2.imread(str(path / n)), cv2.COLOR_BGR2RGB) for n in names]
    return {"frames": np.stack(frames), "names": np.array(names)}


def run_video(tmp: Path, m) -> dict:
    clip = write_clip(tmp / "clip.mkv", [gray(f) for f in colour_frames()])
    _cli("run", clip, "-o", tmp / "out.mkv", "--model", m["gray"], "--codec", "ffv1", *TORCH)
    return _read_video(tmp / "out.mkv")


def run_folder(tmp: Path, m) -> dict:
    import framecolor

    folder = write_folder(tmp / "frames", [gray(f) for f in colour_frames()[:5]])
    out = framecolor.run(folder, tmp / "out", model=m["gray"], backend="torch", device="cpu", quiet=True)
    return _read_folder(out)


def run_frames_api(tmp: Path, m) -> dict:
    import framecolor

    frames = [gray(f)[..., 0] for f in colour_frames()[:5]]  # (H, W) gray arrays
    out = framecolor.colorize_frames(frames, model=m["gray"], batch=2, backend="torch", device="cpu")
    return {"frames": np.stack(list(out))}


def run_reference(tmp: Path, m) -> dict:
    colour = colour_frames()
    clip = write_clip(tmp / "clip.mkv", [gray(f) for f in colour])
    key = write_png(tmp / "key.png", colour[0])
    hints = tmp / "hints.json"
    hints.write_text(json.dumps([{"frame": CUT + 2, "x": 20, "y": 16, "rgb": [40, 200, 220]}]))
    _cli("run", clip, "-o", tmp / "out.mkv", "--model", m["gray"], "--codec", "ffv1", "--reference", f"0={key}",
         "--hints", hints, *TORCH)
    return _read_video(tmp / "out.mkv")


def run_reference_api(tmp: Path, m) -> dict:
    import framecolor

    colour = colour_frames()
    frames = [gray(f) for f in colour]
    out = framecolor.colorize_frames(frames, model=m["gray"], backend="torch", device="cpu", temporal="flow",
                                     references={CUT: colour[CUT]})
    return {"frames": np.stack(list(out))}


def _lineart(tmp: Path, m, reference: bool) -> dict:
    folder = write_folder(tmp / "drawings", [drawing(t) for t in range(5)])
    args = ["run", folder, "-o", tmp / "out", "--input-kind", "lineart", "--draft-model", m["draft"],
            "--refine-model", m["refine"], *TORCH]
    if reference:
        args += ["--reference", f"0={write_png(tmp / 'key.png', painted_key())}"]
    _cli(*args)
    return _read_folder(tmp / "out")


def run_lineart(tmp: Path, m) -> dict:
    return _lineart(tmp, m, reference=False)


def run_lineart_reference(tmp: Path, m) -> dict:
    return _lineart(tmp, m, reference=True)


CASES = {"video": run_video, "folder": run_folder, "frames_api": run_frames_api, "reference": run_reference,
         "reference_api": run_reference_api, "lineart": run_lineart, "lineart_reference": run_lineart_reference}


# ------------------------------------------------------------------------------------------- tests
def _compare(name: str, got: dict) -> None:
    want = np.load(GOLDEN / f"{name}.npz")
    assert set(want.files) == set(got), f"{name}: fields {sorted(got)} vs golden {sorted(want.files)}"
    for field in want.files:
        a, b = np.asarray(got[field]), want[field]
        assert a.shape == b.shape, f"{name}.{field}: shape {a.shape}, golden {b.shape}"
        if a.dtype.kind in "iu":
            diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
            assert diff.max(initial=0) == 0, (f"{name}.{field}: {int((diff > 0).sum())} values differ from the "
                                              f"golden output, by up to {int(diff.max())}")
        else:
            assert (a == b).all(), f"{name}.{field}: {a} != golden {b}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_equals_the_golden_pixels(name, models, tmp_path):
    """The case's output (decoded pixels, timestamps or frame names) equals tests/golden/NAME.npz exactly."""
    _compare(name, CASES[name](tmp_path, models))


def test_golden_cases_colour_something(models):
    """The fixtures are not trivially gray: a change that dropped colour everywhere would not match them by
    accident (each case's mean chroma is above 2 Lab units), and line art keeps its lines dark."""
    from framecolor import color

    for name in CASES:
        frames = np.load(GOLDEN / f"{name}.npz")["frames"]
        lab = color.rgb_to_lab(frames[0])
        assert float(np.hypot(lab[..., 1], lab[..., 2]).mean()) > 2.0, name


# ------------------------------------------------------------------------------------------- regenerate
def regenerate() -> None:
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        m = {"gray": tiny_generator(tmp / "gray.safetensors", 1, 2, seed=1),
             "draft": tiny_generator(tmp / "draft.safetensors", 1, 3, seed=2),
             "refine": tiny_generator(tmp / "refine.safetensors", 7, 3, seed=3)}
        for name, fn in CASES.items():
            where = tmp / name
            where.mkdir()
            got = fn(where, m)
            np.savez_compressed(GOLDEN / f"{name}.npz", **got)
            print(f"{name}: {got['frames'].shape} -> {GOLDEN / name}.npz "
                  f"({(GOLDEN / f'{name}.npz').stat().st_size} bytes)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: PYTHONPATH=. python tests/test_golden.py --regenerate")
    regenerate()
