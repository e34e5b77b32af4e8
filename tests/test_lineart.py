"""Line extraction (training/lineart.py): recovers the outlines of a synthetic drawing, leaves no speckle,
and writes (line, colour) pairs from a video or a frame folder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from framecolor.errors import UserError
from training.lineart import clean_lines, extract_lines, highpass_lines, write_pairs, xdog

# Dilated-outline IoU the extractors must reach on the drawing below.  Measured: xdog 0.990, highpass 0.982
# (256x256, OpenCV 4.x).  Both masks are dilated by 2 px because an extractor traces the dark side of each
# edge and rounds anti-aliased corners, so its ink may sit a pixel or two off the drawn stroke.  The
# outlines total about 1100 px; losing one side of the rectangle (90 px) costs about 0.08 of IoU, so 0.93
# fails on a missing side or on interior speckle while leaving room for anti-aliasing differences.
IOU_THRESHOLD = 0.93


def drawing(size: int = 256):
    """Filled shapes with dark 3-px outlines on a pale background: (rgb, true outline mask)."""
    rgb = np.empty((size, size, 3), np.uint8)
    rgb[:] = (205, 225, 240)
    outline = np.zeros((size, size), np.uint8)
    shapes = [
        ("rect", ((30, 40), (120, 150)), (220, 60, 50)),
        ("circle", ((175, 90), 50), (60, 150, 70)),
        ("poly", np.array([[140, 170], [230, 200], [170, 240]], np.int32), (240, 200, 60)),
        ("circle", ((75, 200), 30), (70, 90, 200)),
    ]
    ink = (25, 20, 30)
    for kind, geom, fill in shapes:
        for target, colour, line in ((rgb, fill, cv2.LINE_AA), (outline, 0, cv2.LINE_8)):
            if kind == "rect":
                if target is rgb:
                    cv2.rectangle(rgb, geom[0], geom[1], fill, -1)
                cv2.rectangle(target, geom[0], geom[1], ink if target is rgb else 1, 3, line)
            elif kind == "circle":
                if target is rgb:
                    cv2.circle(rgb, geom[0], geom[1], fill, -1, cv2.LINE_AA)
                else:  # a later filled shape hides the outlines below it
                    cv2.circle(outline, geom[0], geom[1], 0, -1)
                cv2.circle(target, geom[0], geom[1], ink if target is rgb else 1, 3, line)
            else:
                if target is rgb:
                    cv2.fillPoly(rgb, [geom], fill, cv2.LINE_AA)
                else:
                    cv2.fillPoly(outline, [geom], 0)
                cv2.polylines(target, [geom], True, ink if target is rgb else 1, 3, line)
    return rgb, outline.astype(bool)


def dilated_iou(a: np.ndarray, b: np.ndarray, radius: int = 2) -> float:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    da = cv2.dilate(a.astype(np.uint8), k).astype(bool)
    db = cv2.dilate(b.astype(np.uint8), k).astype(bool)
    return float((da & db).sum() / (da | db).sum())


@pytest.mark.parametrize("method", ["xdog", "highpass"])
def test_extracted_lines_recover_the_drawn_outlines(method):
    """IoU of dilated extracted ink vs dilated true outlines is above IOU_THRESHOLD."""
    rgb, outline = drawing()
    lines = extract_lines(rgb, method)
    assert lines.dtype == np.uint8 and lines.shape == outline.shape
    iou = dilated_iou(lines < 128, outline)
    assert iou > IOU_THRESHOLD, f"{method}: IoU {iou:.3f}"


@pytest.mark.parametrize("method", ["xdog", "highpass"])
def test_output_is_white_paper_with_dark_lines_and_flat_fills_stay_paper(method):
    """Paper is 255 away from edges (inside flat fills of any tone, dark blue included); lines reach black."""
    rgb, outline = drawing()
    lines = extract_lines(rgb, method)
    far = ~cv2.dilate(outline.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert (lines[far] == 255).mean() > 0.995
    assert lines.min() < 40


def _tiny_components(lines: np.ndarray, max_area: int = 6) -> int:
    n, _, stats, _ = cv2.connectedComponentsWithStats((lines < 128).astype(np.uint8), connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] <= max_area).sum())


@pytest.mark.parametrize("method", ["xdog", "highpass"])
def test_no_speckle_on_a_noisy_drawing(method):
    """With strong sensor-like noise (sigma 14 levels: the raw XDoG response of it has speckle), the
    cleaned output has no ink component of 6 px or less, and the outlines survive."""
    rgb, outline = drawing()
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 14, rgb.shape), 0, 255).astype(np.uint8)
    assert _tiny_components(xdog(noisy, clean=False)) > 10  # the noise does make speckle
    cleaned = extract_lines(noisy, method)
    assert _tiny_components(cleaned) == 0
    assert dilated_iou(cleaned < 128, outline) > IOU_THRESHOLD


def test_clean_lines_drops_faint_ghosts_and_fills_pinholes():
    """A faint stroke with no dark core goes; a dark stroke with a 1-px hole is kept and the hole filled."""
    img = np.full((40, 40), 255, np.uint8)
    img[5:8, 5:35] = 180  # faint ghost: never darker than the core level
    img[20:25, 5:35] = 0  # a real stroke...
    img[22, 20] = 255  # ...with a pin-hole
    out = clean_lines(img, min_area=8)
    assert (out[5:8, 5:35] == 255).all()
    assert (out[20:25, 5:35] == 0).all()


def test_lines_vary_in_weight_with_edge_contrast():
    """A strong edge gives a wider dark stroke than a weak one (drawn-looking weight, xdog)."""
    img = np.full((64, 128, 3), 230, np.uint8)
    img[:, 32:64] = 30  # strong step
    img[:, 96:] = 170  # weak step
    lines = xdog(img, clean=False)
    strong = (lines[32, 16:48] < 128).sum()
    weak = (lines[32, 80:112] < 128).sum()
    assert strong > weak >= 1


def test_unknown_method_is_a_user_error():
    with pytest.raises(UserError, match="unknown line-art method"):
        extract_lines(np.zeros((16, 16, 3), np.uint8), "canny")


def test_write_pairs_from_frame_folder(tmp_path):
    """Every 2nd of 5 frames gives 3 pairs named by frame number, colour identical to the input."""
    src = tmp_path / "frames"
    src.mkdir()
    rgb, _ = drawing(64)
    for i in range(5):
        cv2.imwrite(str(src / f"f{i}.png"), cv2.cvtColor(np.roll(rgb, 3 * i, axis=1), cv2.COLOR_RGB2BGR))
    out = tmp_path / "pairs"
    assert write_pairs(src, out, every=2, method="highpass") == 3
    names = ["000000.png", "000002.png", "000004.png"]
    assert sorted(p.name for p in (out / "line").iterdir()) == names
    assert sorted(p.name for p in (out / "color").iterdir()) == names
    col = cv2.cvtColor(cv2.imread(str(out / "color" / "000002.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(col, np.roll(rgb, 6, axis=1))
    line = cv2.imread(str(out / "line" / "000002.png"), cv2.IMREAD_UNCHANGED)
    assert line.ndim == 2 and np.array_equal(line, highpass_lines(col))
    with pytest.raises(UserError, match="not empty"):
        write_pairs(src, out, every=2)


def test_write_pairs_from_video(tmp_path):
    """A synthetic clip of 6 frames, every 3rd: pairs 000000 and 000003, line art has ink."""
    from clips import make_shapes_clip

    clip = make_shapes_clip(tmp_path / "clip.mp4", frames=6, size=(64, 48), audio=False)
    out = tmp_path / "pairs"
    assert write_pairs(clip, out, every=3) == 2
    assert sorted(p.name for p in (out / "line").iterdir()) == ["000000.png", "000003.png"]
