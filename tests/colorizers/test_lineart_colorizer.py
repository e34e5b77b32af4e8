"""Line-art colouring (issue 9): the two-stage models through the pipeline, --input-kind, reference mode,
`framecolor train --lineart`.  Tiny randomly initialised models and synthetic drawings: each test a few
seconds."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from framecolor import color
from framecolor.checkpoint import save_generator
from framecolor.cli import cli
from framecolor.errors import UserError
from framecolor.colorizers.lineart import LineArtColorizer, compose_lightness, load_stage_model, refine_input, shrink_lines
from framecolor.models.unet import UNet, UNetConfig
from framecolor.api import run
from framecolor.job import RunOptions

LINE_L = 30.0  # pixels of the drawing darker than this are "on a line"


@pytest.fixture(scope="module")
def stage_models(tmp_path_factory):
    """(draft, refine) checkpoints: tiny U-Nets with random weights, line art -> Lab."""
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("lineart_models")
    paths = []
    for name, cin in (("draft", 1), ("refine", 7)):
        model = UNet(UNetConfig(in_channels=cin, out_channels=3, base_channels=4, depth=3, max_channels=16,
                                render_size=64)).eval()
        paths.append(save_generator(folder / f"{name}.safetensors", model))
    return tuple(paths)


def drawing(i: int, size=(96, 64)) -> np.ndarray:
    """A line drawing (RGB uint8): black outlines of a circle and a rectangle on white paper, moving with i."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.circle(img, (30 + i, 32), 16, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.rectangle(img, (55, 12 + i), (85, 50 + i), (0, 0, 0), 2)
    return img


def shaded(i: int, size=(96, 64)) -> np.ndarray:
    """Shaded grayscale: a gradient background with filled gray shapes (no paper)."""
    w, h = size
    img = np.tile(np.linspace(60, 200, w, dtype=np.float32)[None, :], (h, 1))
    cv2.circle(img, (30 + i, 32), 16, 120.0, -1)
    cv2.rectangle(img, (55, 12), (85, 50), 30.0, -1)
    return np.repeat(img.astype(np.uint8)[..., None], 3, axis=2)


def folder_of(path, images):
    path.mkdir()
    for k, img in enumerate(images):
        cv2.imwrite(str(path / f"{k:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def read(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_lineart_output_keeps_lines_dark_and_frame_count(tmp_path, stage_models):
    """--input-kind lineart: as many frames out as in, same size; every pixel on a drawn line stays dark in the
    output (L < LINE_L), whatever an untrained model predicts; the paper between lines is not the input's L."""
    draft, refine = stage_models
    src = folder_of(tmp_path / "in", [drawing(i) for i in range(3)])
    out = run(src, tmp_path / "out", RunOptions(input_kind="lineart", draft_model=draft, refine_model=refine,
                                                device="cpu", quiet=True))
    outs = sorted(out.iterdir())
    assert [p.name for p in outs] == [p.name for p in sorted(src.iterdir())]
    for i, p in enumerate(outs):
        rgb = read(p)
        assert rgb.shape == (64, 96, 3)
        L_in = color.luminance(drawing(i))
        L_out = color.luminance(rgb)
        on_line = L_in < LINE_L
        assert on_line.sum() > 100
        assert L_out[on_line].max() < LINE_L + 1.0
        paper = L_in > 99
        assert np.abs(L_out[paper] - L_in[paper]).mean() > 1.0  # lightness comes from the model there


def test_compose_lightness_multiplies_the_lines_in():
    """Output L = model L x drawing L / 100: never lighter than the drawing, equal to the model on paper."""
    L_model = np.full((4, 4), 70.0, np.float32)
    L_line = np.array([[100, 50, 0, 100]] * 4, np.float32)
    out = compose_lightness(L_model, L_line)
    np.testing.assert_allclose(out[0], [70, 35, 0, 70])
    assert (out <= L_line + 1e-4).all()


def test_shrink_lines_keeps_thin_lines_visible():
    """A 1-px line in a 256-px drawing shrunk 4x is still clearly dark (area averaging alone gives ~75)."""
    L = np.full((256, 256), 100.0, np.float32)
    L[:, 128] = 0.0
    small = shrink_lines(L, (64, 64))
    assert small.min() < 30.0
    assert small[:, :16].min() == pytest.approx(100.0)


def test_auto_picks_lineart_for_drawings_and_gray_for_shading(tmp_path, stage_models, caplog):
    """--input-kind auto: a line-drawing clip is coloured as line art, a shaded clip as grayscale (its L kept),
    and each decision is logged in one line."""
    draft, refine = stage_models
    lines = folder_of(tmp_path / "lines", [drawing(i) for i in range(3)])
    gray = folder_of(tmp_path / "gray", [shaded(i) for i in range(3)])
    opts = dict(input_kind="auto", draft_model=draft, refine_model=refine, device="cpu", quiet=True)
    with caplog.at_level(logging.INFO, logger="framecolor"):
        run(lines, tmp_path / "lines_out", RunOptions(**opts))
        out_gray = run(gray, tmp_path / "gray_out", RunOptions(**opts))
    decisions = [r.getMessage() for r in caplog.records if "input kind" in r.getMessage()]
    assert len(decisions) == 2 and "\n" not in "".join(decisions)
    assert decisions[0].startswith("lines: input kind lineart")
    assert decisions[1].startswith("gray: input kind gray")
    L_in = color.luminance(shaded(0))
    L_out = color.luminance(read(out_gray / "0000.png"))
    assert np.abs(L_out - L_in).max() < 1.0  # grayscale path: the input's luminance is kept


def test_key_frame_colours_reach_the_other_frames(tmp_path, stage_models):
    """Reference mode on line art: with a painted key for frame 0, the paper regions of a later (same) drawing
    take the key's colours (mean CIEDE2000 below 5); without the key, an untrained model is far off."""
    from benchmarks.metrics import ciede2000_map

    draft, refine = stage_models
    src = folder_of(tmp_path / "in", [drawing(0)] * 3)
    key = drawing(0).copy()
    key[(key[..., 0] > 128)] = (200, 60, 60)  # paper painted red, lines left black
    cv2.imwrite(str(tmp_path / "key.png"), cv2.cvtColor(key, cv2.COLOR_RGB2BGR))
    opts = dict(input_kind="lineart", draft_model=draft, refine_model=refine, device="cpu", quiet=True)
    keyed = run(src, tmp_path / "keyed", RunOptions(references=[f"0={tmp_path / 'key.png'}"], **opts))
    plain = run(src, tmp_path / "plain", RunOptions(**opts))
    paper = color.luminance(drawing(0)) > 99
    paper = cv2.erode(paper.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    d_key = ciede2000_map(read(keyed / "0002.png"), key)[paper].mean()
    d_plain = ciede2000_map(read(plain / "0002.png"), key)[paper].mean()
    assert d_key < 5.0 < d_plain


def test_bad_input_kind_is_a_one_line_error(tmp_path):
    """--input-kind must be auto, gray or lineart: anything else is one line on stderr, exit code 2."""
    src = folder_of(tmp_path / "in", [drawing(0)])
    result = CliRunner().invoke(cli, ["--quiet", "run", str(src), "--input-kind", "sketch"],
                                catch_exceptions=False)
    assert result.exit_code == 2
    lines = [l for l in result.output.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("framecolor: error:") and "--input-kind" in lines[0]


def test_wrong_model_for_a_stage_is_refused(stage_models, tiny_model_path):
    """A grayscale model (1 in, 2 out) or the other stage's model is refused with a UserError."""
    draft, refine = stage_models
    with pytest.raises(UserError, match="not a line-art draft model"):
        LineArtColorizer(tiny_model_path, refine, device="cpu")
    with pytest.raises(UserError, match="not a line-art refine model"):
        load_stage_model(draft, "refine")


def test_refine_input_encoding():
    """The refinement input: line, draft Lab (3), hint ab (zero where the mask is 0), mask: 7 channels."""
    L = np.full((8, 8), 100.0, np.float32)
    draft = np.zeros((8, 8, 3), np.float32)
    hint = np.full((8, 8, 2), 55.0, np.float32)
    mask = np.zeros((8, 8), np.float32)
    mask[0, 0] = 1
    x = refine_input(L, draft, hint, mask)
    assert x.shape == (7, 8, 8)
    assert x[0].max() == pytest.approx(1.0) and x[1].min() == pytest.approx(-1.0)
    assert x[4, 0, 0] == pytest.approx(0.5) and x[4, 1, 1] == 0 and x[6].sum() == 1


def test_train_lineart_refine_two_steps_writes_a_loadable_checkpoint(tmp_path):
    """`framecolor train --lineart draft` then `--lineart refine --draft-model` for 2 steps each write
    checkpoints that load as line-art stages (1 -> 3 and 7 -> 3 channels)."""
    common = ["--data", "synthetic:cartoon", "--steps", "2", "--batch", "2", "--crop", "64", "--short-side", "64",
              "--base-channels", "4", "--depth", "3", "--d-channels", "8", "--threads", "1", "--warmup-steps", "1"]
    r = CliRunner().invoke(cli, ["--quiet", "train", "--lineart", "draft", *common, "--out", str(tmp_path / "d")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["--quiet", "train", "--lineart", "refine", "--draft-model",
                                 str(tmp_path / "d" / "model.safetensors"), *common, "--out", str(tmp_path / "r")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    draft = load_stage_model(tmp_path / "d" / "model.safetensors", "draft")
    refine = load_stage_model(tmp_path / "r" / "model.safetensors", "refine")
    assert (draft.config.in_channels, draft.config.out_channels) == (1, 3)
    assert (refine.config.in_channels, refine.config.out_channels) == (7, 3)
    assert refine.checkpoint_info["lineart"] == "refine" and refine.checkpoint_info["steps"] == 2


def test_refine_samples_carry_real_drafts_when_a_draft_model_is_given():
    """RefinePairDataset: 7-channel inputs, Lab targets; with a draft model, the draft channels of the chosen
    samples are exactly that model's output for the sample's line art."""
    import torch

    from training.data import PairDataset, load_source
    from training.lineart_pairs import RefinePairDataset

    torch.manual_seed(0)
    base = PairDataset([load_source("synthetic:cartoon", short_side=64)], crop=48)
    model = UNet(UNetConfig(in_channels=1, out_channels=3, base_channels=4, depth=2)).eval()
    data = RefinePairDataset(base, draft_model=model, real_draft_share=1.0)
    x, y, _ = data.batch(np.random.default_rng(0), 2)
    assert x.shape == (2, 7, 48, 48) and y.shape == (2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(x[:, 1:4], model(x[:, :1]))


# ------------------------------------------------------------------------------------ region fill
PAINT = {"circle": (200, 60, 60), "rect": (60, 120, 200), "inner": (240, 200, 40)}  # flat paint of each shape


def shapes(dx: int, painted: bool, size=(192, 128)):
    """(RGB drawing, {region name: full-size mask}): a circle, a rectangle and a circle inside the rectangle,
    black outlines on white paper, shifted right by ``dx``; ``painted``: each shape filled with its PAINT
    colour (the key), the paper left white."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    draws = {"circle": lambda im, c, t, aa: cv2.circle(im, (48 + dx, 64), 34, c, t, aa),
             "rect": lambda im, c, t, aa: cv2.rectangle(im, (100 + dx, 20), (176 + dx, 108), c, t, aa),
             "inner": lambda im, c, t, aa: cv2.circle(im, (138 + dx, 64), 18, c, t, aa)}
    regions = {}
    for name, draw in draws.items():
        m = np.zeros((h, w), np.uint8)
        draw(m, 1, -1, cv2.LINE_8)
        regions[name] = m.astype(bool)
        if painted:
            draw(img, PAINT[name], -1, cv2.LINE_8)
    for name, draw in draws.items():
        draw(img, (0, 0, 0), 2, cv2.LINE_AA)
    regions["rect"] &= ~regions["inner"]
    regions["paper"] = ~(regions["circle"] | regions["rect"] | regions["inner"])
    return img, regions


def test_region_fill_paints_each_shape_with_its_key_colour(tmp_path, stage_models):
    """Paint bucket: a key with flat-painted shapes, then the same drawing shifted 3 and 6 px.  With region fill
    (the default), every pixel 2 px or more inside each shape is within CIEDE2000 3 of the shape's key colour
    (so no colour crossed a line, the inner circle included), and the paper stays white (L > 95), whatever the
    untrained networks guess (without region fill the paper takes their gray: L down to ~54)."""
    from benchmarks.metrics import ciede2000_map

    draft, refine = stage_models
    src = folder_of(tmp_path / "in", [shapes(dx, False)[0] for dx in (0, 3, 6)])
    cv2.imwrite(str(tmp_path / "key.png"), cv2.cvtColor(shapes(0, True)[0], cv2.COLOR_RGB2BGR))
    colorizer = LineArtColorizer(draft, refine, device="cpu")
    assert colorizer.region_fill  # the default
    out = run(src, tmp_path / "out", RunOptions(input_kind="lineart", draft_model=draft, refine_model=refine,
                                                device="cpu", quiet=True, references=[f"0={tmp_path / 'key.png'}"]),
              colorizer=colorizer)
    for k, dx in ((1, 3), (2, 6)):
        rgb = read(out / f"{k:04d}.png")
        truth, regions = shapes(dx, True)
        L_drawing = color.luminance(shapes(dx, False)[0])
        d = ciede2000_map(rgb, truth)
        for name, mask in regions.items():  # 2 px in from the shape's edge, clear of the lines' anti-aliasing
            inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & (L_drawing > 99)
            assert inside.sum() > 300
            assert d[inside].max() < 3.0, (k, name, float(d[inside].max()))
            if name == "paper":
                assert color.luminance(rgb)[inside].min() > 95.0
        lines = L_drawing < LINE_L
        assert color.luminance(rgb)[lines].max() < LINE_L + 1.0  # the lines stay dark


def test_line_regions_closes_small_gaps_and_keeps_diagonal_lines_closed():
    """line_regions: a 1-px diagonal line (8-connected steps) splits the paper in two; a 2-px gap in a line is
    bridged by the closing, a 6-px gap is not (one region)."""
    from framecolor.colorizers.regions import line_regions

    L = np.full((40, 40), 100.0, np.float32)
    for i in range(40):
        L[i, i] = 0.0  # diagonal, one pixel per row
    labels = line_regions(L)
    assert labels[0, 39] != labels[39, 0] and labels[0, 39] > 0 and labels[39, 0] > 0
    for gap, regions in ((2, 2), (6, 1)):
        L = np.full((40, 40), 100.0, np.float32)
        L[:, 20] = 0.0
        L[10:10 + gap, 20] = 100.0
        labels = line_regions(L)
        assert len(np.unique(labels[labels > 0])) == regions, gap


def test_region_colours_needs_enough_agreeing_hints():
    """region_colours: a region with many agreeing trusted hints is filled with their median (an outlier
    ignored); one with hints split between two colours, or with too few trusted hints, is not."""
    from framecolor.colorizers.regions import region_colours

    labels = np.zeros((20, 60), np.int32)
    labels[:, :19], labels[:, 20:39], labels[:, 40:] = 1, 2, 3
    lab = np.zeros((20, 60, 3), np.float32)
    lab[:, :20] = (60, 40, -20)
    lab[3, 3] = (10, -80, 80)  # an outlier
    lab[:, 20:40] = (50, 0, 0)
    lab[:10, 20:40] = (80, 30, 30)  # two colours, half and half
    lab[:, 40:] = (70, 10, 10)
    mask = np.ones((20, 60), np.float32)
    mask[:, 40:] = 0.0
    mask[:2, 40:42] = 1.0  # 4 trusted hints in 400 pixels
    colours, filled = region_colours(labels, lab, mask)
    assert filled.tolist() == [False, True, False, False]
    np.testing.assert_allclose(colours[1], (60, 40, -20))
