"""framecolor.hints (point hints, references, propagation, appliers) and the simulated hints of
line-art training (training.lineart_pairs)."""

import json

import numpy as np
import pytest

from framecolor import color
from framecolor.errors import UserError
from framecolor.hints.appliers import Densifier
from framecolor.hints.points import PointHint, check_point_hints, load_point_hints, paint_points
from framecolor.hints.propagate import consistent_warp
from framecolor.hints.references import fit_reference, frame_number_of, parse_references, reference_lab


# ------------------------------------------------------------------------------------------ point hints
def _write(tmp_path, data, raw=False):
    p = tmp_path / "hints.json"
    p.write_text(data if raw else json.dumps(data))
    return p


def test_valid_hint_file_reads_every_entry(tmp_path):
    """A well-formed file gives one PointHint per entry, numbers and colours as given."""
    p = _write(tmp_path, [{"frame": 120, "x": 312, "y": 88, "rgb": [200, 40, 40]},
                          {"frame": 0, "x": 1.5, "y": 0, "rgb": [0, 0, 255]}])
    hints = load_point_hints(p)
    assert hints == [PointHint(120, 312.0, 88.0, (200, 40, 40)), PointHint(0, 1.5, 0.0, (0, 0, 255))]


@pytest.mark.parametrize("data, message", [
    ("{not json", "not valid JSON (line 1"),
    ({"frame": 1}, "expected a JSON list"),
    (["x"], "hint 0: expected an object"),
    ([{"frame": 1, "x": 2, "rgb": [1, 2, 3]}], "hint 0: missing key(s) y"),
    ([{"frame": 1, "x": 2, "y": 3, "rgb": [1, 2, 3], "colour": 1}], "unknown key(s) colour"),
    ([{"frame": -1, "x": 2, "y": 3, "rgb": [1, 2, 3]}], "frame must be a non-negative integer"),
    ([{"frame": 1.5, "x": 2, "y": 3, "rgb": [1, 2, 3]}], "frame must be a non-negative integer"),
    ([{"frame": 1, "x": -2, "y": 3, "rgb": [1, 2, 3]}], "x must be a non-negative number"),
    ([{"frame": 1, "x": 2, "y": "3", "rgb": [1, 2, 3]}], "y must be a non-negative number"),
    ([{"frame": 1, "x": 2, "y": 3, "rgb": [1, 2]}], "rgb must be 3 integers 0-255"),
    ([{"frame": 1, "x": 2, "y": 3, "rgb": [1, 2, 256]}], "rgb must be 3 integers 0-255"),
    ([{"frame": 1, "x": 2, "y": 3, "rgb": [1.0, 2, 3]}], "rgb must be 3 integers 0-255"),
    ([{"frame": 0, "x": 0, "y": 0, "rgb": [1, 2, 3]}, {"frame": 1, "x": 2, "y": 3, "rgb": "red"}],
     "hint 1: rgb must be"),
])
def test_malformed_hint_files_give_one_line_errors(tmp_path, data, message):
    """Each malformed file is refused with a one-line UserError naming the file, the entry and the problem."""
    p = _write(tmp_path, data, raw=isinstance(data, str))
    with pytest.raises(UserError) as err:
        load_point_hints(p)
    text = str(err.value)
    assert message in text and str(p) in text and "\n" not in text


def test_missing_hint_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_point_hints(tmp_path / "absent.json")


def test_hint_positions_and_frames_are_checked_against_the_clip():
    """Coordinates outside the frame and frames after the last one are refused; the last pixel is fine."""
    ok = [PointHint(9, 99, 49, (1, 2, 3))]
    check_point_hints(ok, width=100, height=50, last_frame=9)
    with pytest.raises(UserError, match="outside the 100x50 frame"):
        check_point_hints([PointHint(0, 100, 10, (1, 2, 3))], 100, 50)
    with pytest.raises(UserError, match="outside the 100x50 frame"):
        check_point_hints([PointHint(0, 10, 50.5, (1, 2, 3))], 100, 50)
    with pytest.raises(UserError, match="frame 10, beyond the clip \\(last frame 9\\)"):
        check_point_hints([PointHint(10, 1, 1, (1, 2, 3))], 100, 50, last_frame=9)


def test_paint_points_scales_full_frame_coordinates_to_render_size():
    """A hint at full-frame (x, y) lands at the matching render-size pixel with its Lab ab and mask 1."""
    hint = np.zeros((25, 50, 2), np.float32)
    mask = np.zeros((25, 50), np.float32)
    paint_points(hint, mask, [PointHint(0, 199.0, 20.0, (200, 40, 40))], frame_size=(100, 200), radius=0)
    ys, xs = np.nonzero(mask)
    assert list(zip(ys, xs)) == [(5, 49)]
    expected = color.rgb_to_lab(np.array([[[200, 40, 40]]], np.uint8))[0, 0, 1:]
    np.testing.assert_allclose(hint[5, 49], expected, atol=1e-4)


# ------------------------------------------------------------------------------------------- references
def test_reference_arguments_pinned_bare_and_folder(tmp_path):
    """FRAME=PATH pins, a bare path is left to placement (frame None), a folder pins each key by its number."""
    import cv2

    img = np.zeros((8, 8, 3), np.uint8)
    a = tmp_path / "a.png"
    cv2.imwrite(str(a), img)
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("0000.png", "key_0120.png"):
        cv2.imwrite(str(keys / name), img)
    refs = parse_references([f"30={a}", str(a), str(keys)])
    assert [r.frame for r in refs] == [30, None, 0, 120]
    assert frame_number_of("shot3_frame0042.tif") == 42
    with pytest.raises(UserError, match="no such file or folder"):
        parse_references([str(tmp_path / "nope.png")])
    with pytest.raises(UserError, match="two keys for frame 30"):
        parse_references([f"30={a}", f"30={a}"])
    (keys / "cover.png").write_bytes((keys / "0000.png").read_bytes())
    with pytest.raises(UserError, match="not named by frame number"):
        parse_references([str(keys)])


def test_wrong_size_reference_same_aspect_is_resized_with_a_warning(caplog):
    """A key at twice the frame size (same aspect) is resized, and the log says so; its colour survives."""
    key = np.zeros((40, 60, 3), np.uint8)
    key[:] = (200, 40, 40)
    with caplog.at_level("WARNING", logger="framecolor"):
        L, ab = reference_lab(key, frame_hw=(20, 30), render_hw=(20, 30), name="big.png")
    assert "reference big.png is 60x40, the frames 30x20: resized" in caplog.text
    assert L.shape == (20, 30) and ab.shape == (20, 30, 2)
    np.testing.assert_allclose(ab.mean((0, 1)), color.rgb_to_lab(key)[0, 0, 1:], atol=0.5)


def test_wrong_aspect_reference_is_refused():
    """A key whose aspect ratio differs from the frames' is refused with a clear one-line error."""
    with pytest.raises(UserError, match=r"is 40x40 but the frames are 30x20 \(different aspect ratio\)"):
        fit_reference(np.zeros((40, 40, 3), np.uint8), (20, 30), "square.png")


# ------------------------------------------------------------------------------------------ propagation
def _textured(h=64, w=96, seed=0):
    """A smooth random texture with colour: flow is well defined everywhere."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((h // 4, w // 4, 3)).astype(np.float32)
    return (cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 200 + 30).astype(np.uint8)


def test_consistent_warp_carries_colour_along_a_translation():
    """Colour of frame A shifted by 3 pixels arrives at the right place in frame B where trusted, and most
    of the frame is trusted."""
    big = _textured(64, 110)
    a, b = big[:, 10:106], big[:, 7:103]  # content moves 3 px to the right from a to b
    lab_a, lab_b = color.rgb_to_lab(a), color.rgb_to_lab(b)
    ab, conf = consistent_warp(lab_a[..., 1:], lab_a[..., 0], lab_b[..., 0])
    trusted = conf >= 0.5
    assert trusted.mean() > 0.8
    err = np.sqrt(((ab - lab_b[..., 1:]) ** 2).sum(-1))
    assert err[trusted].mean() < 1.5
    assert not trusted[:, :2].all()  # the strip that entered from outside A has no history


def test_densifier_fills_holes_without_crossing_lines():
    """Hints on each side of a strong L edge fill their own side: the left half gets the left colour."""
    h, w = 32, 64
    L = np.full((h, w), 30.0, np.float32)
    L[:, w // 2:] = 80.0
    hint = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), np.float32)
    hint[10:12, 5:7] = (60, 40)
    mask[10:12, 5:7] = 1
    hint[20:22, 50:52] = (-40, -30)
    mask[20:22, 50:52] = 1
    ab = Densifier()(L, hint, mask)
    np.testing.assert_allclose(ab[:, : w // 2 - 1].reshape(-1, 2).mean(0), (60, 40), atol=3)
    np.testing.assert_allclose(ab[:, w // 2 + 1:].reshape(-1, 2).mean(0), (-40, -30), atol=3)
    np.testing.assert_allclose(ab[10, 5], (60, 40), atol=1e-4)  # hints are kept exactly


def test_densifier_with_a_prior_only_corrects_near_the_hints():
    """With a base colouring, a point hint recolours its own region and leaves the other side of a line alone."""
    h, w = 32, 64
    L = np.full((h, w), 30.0, np.float32)
    L[:, w // 2:] = 80.0
    base = np.full((h, w, 2), 10.0, np.float32)
    hint = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), np.float32)
    hint[15:17, 10:12] = (50, -20)
    mask[15:17, 10:12] = 1
    ab = Densifier()(L, hint, mask, base_ab=base)
    assert np.abs(ab[:, w // 2 + 2:] - 10).max() < 1.0
    np.testing.assert_allclose(ab[5:25, 2:25].reshape(-1, 2).mean(0), (50, -20), atol=6)


# -------------------------------------------------------------------------------------- training hints
def test_point_hints_are_patch_means_near_the_centre():
    """Zhang-style hints: each revealed patch holds one colour, the mean of the true ab over it."""
    from training.lineart_pairs import point_hints

    rng = np.random.default_rng(0)
    ab = rng.normal(0, 20, (64, 64, 2)).astype(np.float32)
    counts = []
    for _ in range(200):
        hint, mask = point_hints(ab, rng)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        counts.append(mask.sum())
        assert (hint[mask == 0] == 0).all()
    assert 4 * 4 <= np.median(counts)  # at least one 4x4 patch typically
    hint, mask = point_hints(ab, np.random.default_rng(3), p=1.0, patch_range=(8, 8))  # exactly one patch
    ys, xs = np.nonzero(mask)
    patch = ab[ys.min():ys.max() + 1, xs.min():xs.max() + 1].reshape(-1, 2).mean(0)
    np.testing.assert_allclose(hint[ys[0], xs[0]], patch, atol=1e-4)


def test_simulated_hints_cover_the_three_kinds():
    """Over many draws the mixture yields empty, sparse (points/dropout) and dense (propagated) hint maps,
    and dense hints hold the true colour where the warp is small."""
    from training.lineart_pairs import simulate_hints

    rgb = _textured(64, 64, seed=2)
    lab = color.rgb_to_lab(rgb)
    rng = np.random.default_rng(0)
    cover = [simulate_hints(lab[..., 0], lab[..., 1:], rng)[1].mean() for _ in range(60)]
    assert min(cover) == 0.0 and any(0 < c < 0.2 for c in cover) and max(cover) > 0.5
