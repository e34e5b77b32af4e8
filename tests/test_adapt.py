"""Per-show adaptation (framecolor.adaptation, `framecolor adapt`, `run --adapt`): the keys teach the
generator. Fast: a tiny U-Net base (conftest.tiny_base) and small synthetic scenes of flat-coloured
shapes whose colours the grey level alone pins down, so a few hundred small steps learn them."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from framecolor.adaptation import AdaptSettings, adapt_model, load_keys
from framecolor.cli import cli
from framecolor.errors import MediaError, UserError

W, H = 96, 64
SKY, SUN, BOX = (90, 150, 210), (235, 205, 40), (190, 35, 55)  # distinct L: about 59, 83, 43


def scene(shot: int, t: int) -> np.ndarray:
    """Frame t of shot 0 (a small sun and box drifting right) or shot 1 (a closer view: two of each, moved
    and 1.5x as large)."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = SKY
    if shot == 0:
        cv2.circle(img, (20 + 2 * t, 20), 7, SUN, -1)
        cv2.rectangle(img, (50 + t, 38), (60 + t, 46), BOX, -1)
    else:
        for dx, dy in ((0, 0), (36, 28)):
            cv2.circle(img, (44 - t + dx, 16 + dy), 10, SUN, -1)
            cv2.rectangle(img, (6 + t + dx, 34 - dy), (21 + t + dx, 46 - dy), BOX, -1)
    return img


def two_shot_clip(n: int = 10) -> list[np.ndarray]:
    return [scene(0, t) for t in range(n)] + [scene(1, t) for t in range(n)]


def mean_ciede(pred: np.ndarray, truth: np.ndarray) -> float:
    from benchmarks.metrics import ciede2000_map

    return float(ciede2000_map(pred, truth, dtype=torch.float32).mean())


SMALL = dict(steps=150, batch=4, crop=48, lr=3e-3)  # tiny model, small crops: a few seconds


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A tiny randomly initialised U-Net as the base model (the bundled one would take minutes to adapt)."""
    from framecolor.checkpoint import save_generator
    from framecolor.models.unet import UNet, UNetConfig

    torch.manual_seed(0)
    model = UNet(UNetConfig(base_channels=8, depth=3, max_channels=32, render_size=64)).eval()
    return save_generator(tmp_path_factory.mktemp("adapt") / "tiny.safetensors", model)


def _invoke(*args):
    return CliRunner().invoke(cli, ["--quiet", *map(str, args)], catch_exceptions=False)


def test_keyless_shot_is_coloured_by_the_model_adapted_on_the_other_shots_key(tiny_base, tmp_path, caplog):
    """A two-shot clip with a key in shot 1 only: with adapt=True, shot 2 (the shapes moved and scaled, never
    seen) comes out within CIEDE2000 3 of the truth; the bundled automatic model and the un-adapted base do not."""
    from framecolor import colorize_frames

    torch.set_num_threads(1)
    frames = two_shot_clip()
    with caplog.at_level(logging.INFO, logger="framecolor"):
        out = list(colorize_frames(frames, model=tiny_base, references={0: frames[0]}, hint_model="none",
                                   cut_threshold=1.0, adapt=AdaptSettings(**SMALL), adapt_cache=tmp_path / "cache"))
    assert "shot(s) starting at frames [0, 10]" in caplog.text  # the cut was found: shot 2 is keyless
    shot2 = range(10, 20)
    adapted = np.mean([mean_ciede(out[i], frames[i]) for i in shot2])
    assert adapted < 3.0, adapted
    automatic = list(colorize_frames([frames[i] for i in shot2]))  # the bundled model
    base = list(colorize_frames([frames[i] for i in shot2], model=tiny_base))
    assert np.mean([mean_ciede(o, frames[i]) for o, i in zip(automatic, shot2)]) > 3.0
    assert np.mean([mean_ciede(o, frames[i]) for o, i in zip(base, shot2)]) > 3.0


def test_adaptation_is_deterministic_with_a_seed(tiny_base):
    """The same keys, seed and step count give bit-identical weights; another seed gives other weights."""
    torch.set_num_threads(1)
    keys = load_keys([scene(0, 0)])
    runs = [adapt_model(keys, tiny_base, AdaptSettings(steps=12, batch=4, crop=48, seed=seed),
                        progress=False)[0] for seed in (3, 3, 4)]
    a, b, c = (m.state_dict() for m in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_adapt_command_writes_a_checkpoint_that_records_its_keys_and_run_uses_it(tiny_base, tmp_path):
    """`framecolor adapt KEY FOLDER -o show.safetensors` writes an ordinary checkpoint whose metadata names
    every key (folders expanded) with its sha256, the base model, steps and seed; `run --model` loads it."""
    import hashlib

    from framecolor.checkpoint import read_metadata
    from framecolor.colorizers.automatic import Colorizer

    key = tmp_path / "key.png"
    cv2.imwrite(str(key), cv2.cvtColor(scene(0, 0), cv2.COLOR_RGB2BGR))
    folder = tmp_path / "sheets"
    folder.mkdir()
    cv2.imwrite(str(folder / "sheet.png"), cv2.cvtColor(scene(1, 3), cv2.COLOR_RGB2BGR))
    out = tmp_path / "show.safetensors"
    result = _invoke("adapt", key, folder, "-o", out, "--model", tiny_base, "--steps", 5, "--seed", 7,
                     "--threads", 1)
    assert result.exit_code == 0, result.output
    _, info = read_metadata(out)
    meta = info["adapted"]
    assert [k["name"] for k in meta["keys"]] == ["key.png", "sheet.png"]
    assert meta["keys"][0]["sha256"] == hashlib.sha256(key.read_bytes()).hexdigest()
    assert meta["base_model"]["name"] == "tiny.safetensors" and meta["steps"] == 5 and meta["seed"] == 7
    assert Colorizer(out, device="cpu").model.checkpoint_info["adapted"]["steps"] == 5


def test_second_run_reuses_the_cached_adapted_model_without_training(tiny_base, tmp_path, caplog):
    """`run --reference keys/ --adapt` adapts once and caches the model beside the output; a second run (here
    another output in the same folder) logs "reusing adapted model" and runs no training step."""
    from clips import make_cut_clip

    import framecolor.adaptation as adaptation

    clip, starts = make_cut_clip(tmp_path / "ep.mp4", shot_lengths=(10, 10))
    keys = tmp_path / "keys"
    keys.mkdir()
    first = cv2.VideoCapture(str(clip)).read()[1]
    cv2.imwrite(str(keys / "0000.png"), first)
    args = ["--reference", keys, "--adapt", "--adapt-minutes", 0.02, "--model", tiny_base]
    with caplog.at_level(logging.INFO, logger="framecolor"):
        result = CliRunner().invoke(cli, [*map(str, ["run", clip, "-o", tmp_path / "a.mkv", *args])],
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    cached = list((tmp_path / ".framecolor").glob("adapted-*.safetensors"))
    assert len(cached) == 1 and "adapted on 1 key(s)" in caplog.text
    caplog.clear()
    steps = []
    original = adaptation.adapt_model
    adaptation.adapt_model = lambda *a, **k: steps.append(1) or original(*a, **k)  # counts, still trains
    try:
        with caplog.at_level(logging.INFO, logger="framecolor"):
            result = CliRunner().invoke(cli, [*map(str, ["run", clip, "-o", tmp_path / "b.mkv", *args])],
                                        catch_exceptions=False)
    finally:
        adaptation.adapt_model = original
    assert result.exit_code == 0, result.output
    assert f"reusing adapted model {cached[0]}" in caplog.text
    assert not steps and "adapted on" not in caplog.text
    assert (tmp_path / "b.mkv").is_file()


def test_bad_keys_are_one_line_errors_before_training(tmp_path, tiny_base):
    """A missing key, an unreadable one, a gray one, and --adapt without keys: one line, exit 2 (3 for an
    unreadable image), no output written."""
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(cv2.cvtColor(scene(0, 0), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2BGR))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    out = tmp_path / "show.safetensors"
    cases = [(tmp_path / "missing.png", 2, "no such key file"), (broken, 3, "broken.png"),
             (gray, 2, "has no colour in it")]
    for key, code, text in cases:
        result = _invoke("adapt", key, "-o", out, "--model", tiny_base, "--steps", 3)
        assert result.exit_code == code, result.output
        assert text in result.output and result.output.strip().count("\n") == 0
        assert not out.exists()
    from clips import make_shapes_clip

    clip = make_shapes_clip(tmp_path / "c.mp4", frames=4, audio=False)
    result = _invoke("run", clip, "-o", tmp_path / "o.mkv", "--adapt")
    assert result.exit_code == 2 and "--adapt learns from the keys" in result.output
    with pytest.raises(UserError, match="no colour"):
        load_keys([np.full((40, 40, 3), 128, np.uint8)])
    with pytest.raises(MediaError):
        load_keys([broken])


def test_a_budget_too_short_is_a_warning(tiny_base, caplog):
    """A time budget that allows fewer steps than adaptation needs logs a warning (and still writes a model)."""
    keys = load_keys([scene(0, 0)])
    with caplog.at_level(logging.WARNING, logger="framecolor"):
        model, info = adapt_model(keys, tiny_base, AdaptSettings(minutes=0.0001, batch=2, crop=32),
                                  progress=False)
    assert "give more --minutes" in caplog.text
    assert info["adapted"]["steps"] >= 1 and info["adapted"]["minutes"] == 0.0001


def test_neutral_fill_repaints_blank_paper_gray_and_keeps_its_target_colourless():
    """A key on white paper (a model sheet): with neutral_fill the paper reaches the model at other gray levels
    (some views darker than L 85 there) while its target ab stays neutral; the character keeps its colour."""
    from framecolor.adaptation import KeySampler
    from framecolor.color import denormalize_ab

    sheet = np.full((96, 96, 3), 255, np.uint8)
    cv2.circle(sheet, (48, 48), 20, SUN, -1)
    sampler = KeySampler(load_keys([sheet]), crop=64, render_size=96, neutral_fill=1.0, cutout=0.0)
    rng = np.random.default_rng(0)
    darkened = 0
    for _ in range(20):
        L, ab, _ = sampler.sample(rng)
        L100 = (L[0] + 1.0) * 50.0
        chroma = np.hypot(*denormalize_ab(ab.transpose(1, 2, 0)).transpose(2, 0, 1))
        paper = chroma < 2.0
        if paper.mean() > 0.2:
            darkened += float(np.median(L100[paper])) < 80.0
        assert chroma.max() > 40.0 or paper.all()  # the sun keeps its colour wherever it is in view
    assert darkened >= 5
    plain = KeySampler(load_keys([sheet]), crop=64, render_size=96, neutral_fill=0.0, cutout=0.0)
    L, ab, _ = plain.sample(np.random.default_rng(0))
    assert float(np.median(((L[0] + 1.0) * 50.0)[np.hypot(*ab) < 0.02])) > 90.0
