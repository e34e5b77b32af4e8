"""Reference mode: keys govern their shots, colours follow the key along the shot, point hints, the CLI.

The propagation, key matching and the densifier (no network) are tested for accuracy on a synthetic clip
with known colours; the hint network path is tested for plumbing with a tiny random 4-channel model (a
trained model is too slow to make in a test).
"""

import json
import logging

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from clips import REF_H as H, REF_W as W, REF_WORLDS as WORLDS
from clips import reference_clip as _clip, reference_frame as shapes_frame
from framecolor import color
from framecolor.api import colorize_frames
from framecolor.colorizers.reference import ReferenceColorizer, scan
from framecolor.errors import UserError
from framecolor.hints.appliers import Densifier
from framecolor.hints.points import PointHint
from framecolor.hints.references import Reference
from framecolor.stream import luminance_pair


def _ciede(rgb_a, rgb_b) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    a = rgb2lab(np.array([[rgb_a]], np.float64) / 255.0)
    b = rgb2lab(np.array([[rgb_b]], np.float64) / 255.0)
    return float(deltaE_ciede2000(a, b)[0, 0])


def _shape_colours(rgb: np.ndarray, masks) -> list[np.ndarray]:
    """Mean colour of each shape's interior, averaged in Lab and brought back to sRGB."""
    lab = color.rgb_to_lab(rgb)
    out = []
    for m in masks:
        mean = lab[m].mean(0).astype(np.float32)
        out.append(np.clip(color.lab_to_rgb(mean[None, None])[0, 0] * 255, 0, 255))
    return out


def test_colours_follow_one_key_for_30_frames():
    """Key at frame 0 only (no network: propagation + key matching + densifier): at frame 30 every shape is
    within CIEDE2000 3 of its key colour."""
    frames, masks = _clip(31)
    out = list(colorize_frames(frames, references={0: frames[0]}, hint_model="none"))
    assert len(out) == 31
    for got, want in zip(_shape_colours(out[30], masks[30]), WORLDS[0][1]):
        assert _ciede(got, want) < 3.0, (got, want)
    # the input's L is kept
    assert np.abs(color.luminance(out[30]) - color.luminance(frames[30])).max() <= 100 / 255 + 1e-3


def test_hint_maps_carry_the_key_colours_and_mostly_cover_the_frame():
    """The propagation path alone: frame 20's hint map holds each shape's key colour (within 3 ab units on
    average over the shape) where the mask is set, and covers most of the frame."""
    frames, masks = _clip(21)
    rc = ReferenceColorizer(None, Densifier(), [Reference(0, image=frames[0])])
    for t, f in enumerate(frames):
        L_full, L = luminance_pair(f, 256)
        rc.process(t, L, L_full.shape)
    hint, mask = rc.last_hints
    assert (mask >= 0.5).mean() > 0.8
    for m, c in zip(masks[20], WORLDS[0][1]):
        want = color.rgb_to_lab(np.array([[c]], np.uint8))[0, 0, 1:]
        trusted = m & (mask >= 0.5)
        assert trusted.sum() > 0.5 * m.sum()
        assert np.sqrt(((hint[trusted] - want) ** 2).sum(-1)).mean() < 3.0


def test_two_shots_with_two_keys_do_not_mix():
    """A cut between two colour worlds, one key each: every frame of each shot has its own key's shape
    colours, and no shot takes the other's."""
    a, ma = _clip(14, world=0)
    b, mb = _clip(14, world=1)
    frames, masks = a + b, ma + mb
    out = list(colorize_frames(frames, references={0: a[0], 14: b[0]}, hint_model="none"))
    for t in (6, 13, 20, 27):
        world = 0 if t < 14 else 1
        got = _shape_colours(out[t], masks[t])
        for g, own, other in zip(got, WORLDS[world][1], WORLDS[1 - world][1]):
            assert _ciede(g, own) < 3.0 and _ciede(g, other) > 15.0


def test_a_mid_shot_key_governs_its_whole_shot_and_keyless_shots_are_automatic(tiny_model_path, caplog):
    """With the shots planned in a first pass, a key at frame 20 colours the earlier frames of its shot too
    (frame 14, the shot's first), and the first shot, without a key, is coloured by the automatic model;
    the log says which shots had keys."""
    a, _ = _clip(14, world=0)
    b, mb = _clip(14, world=1)
    frames = a + b
    with caplog.at_level(logging.INFO, logger="framecolor"):
        out = list(colorize_frames(frames, model=tiny_model_path, references={20: b[6]}, hint_model="none"))
    assert "keys for [14]; automatic colouring for [0]" in caplog.text
    for g, want in zip(_shape_colours(out[14], mb[0]), WORLDS[1][1]):
        assert _ciede(g, want) < 3.0
    auto = list(colorize_frames(a, model=tiny_model_path))
    for x, y in zip(out[:14], auto):
        d = np.abs(color.rgb_to_lab(x)[..., 1:] - color.rgb_to_lab(y)[..., 1:])
        assert d.max() < 1.5  # the same automatic colouring (batching may change the last float bits)


def test_one_pass_iterator_applies_keys_from_their_frame_on(tiny_model_path):
    """Frames given as a generator cannot be planned: a key governs from its own frame to the shot's end;
    a bare (unpinned) reference is refused with a clear error."""
    frames, masks = _clip(12)
    out = list(colorize_frames((f for f in frames), model=tiny_model_path, references={5: frames[5]},
                               hint_model="none"))
    for g, want in zip(_shape_colours(out[11], masks[11]), WORLDS[0][1]):
        assert _ciede(g, want) < 3.0
    with pytest.raises(UserError, match="needs an input that can be read twice"):
        list(colorize_frames((f for f in frames), model=tiny_model_path, references=[frames[5]],
                             hint_model="none"))


def test_bare_reference_is_placed_at_its_best_matching_frame():
    """A reference without a frame number lands on the frame it is a coloured copy of."""
    frames, _ = _clip(20)
    ref = Reference(None, image=frames[13], name="key.png")

    class F:
        def __init__(self, i, image):
            self.index, self.image = i, image

    plan = scan([F(i, f) for i, f in enumerate(frames)], 256, [ref])
    assert ref.frame == 13 and plan.placements["key.png"][0] == 13
    assert (plan.first, plan.last, plan.cuts, plan.frame_hw) == (0, 19, [], (H, W))


def test_point_hint_in_a_keyless_shot_recolours_its_region_and_follows_it(tiny_model_path):
    """A point hint on the disc at frame 3 of a shot with no key: from frame 3 on, the disc has the hint's
    colour (the automatic colouring corrected by the hint, then propagated); frame 2 is untouched."""
    frames, masks = _clip(12)
    cx, cy = 16 + int(1.5 * 3), 12 + int(0.1 * 3)
    hint = {"frame": 3, "x": cx, "y": cy, "rgb": [120, 220, 250]}
    out = list(colorize_frames(frames, model=tiny_model_path, hints=[hint], hint_model="none"))
    auto = list(colorize_frames(frames[:3], model=tiny_model_path))
    for t in (3, 11):
        disc = _shape_colours(out[t], masks[t])[0]
        assert _ciede(disc, hint["rgb"]) < 6.0, (t, disc)
    assert np.abs(out[2].astype(int) - auto[2].astype(int)).max() <= 2


def test_wrong_size_references_are_resized_or_refused(caplog):
    """A half-size key of the same aspect is resized with a warning and still colours the shot; a key of
    another aspect ratio is refused before any frame is coloured."""
    frames, masks = _clip(8)
    small = cv2.resize(frames[0], (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    with caplog.at_level(logging.WARNING, logger="framecolor"):
        out = list(colorize_frames(frames, references={0: small}, hint_model="none"))
    assert f"is {W // 2}x{H // 2}, the frames {W}x{H}: resized" in caplog.text
    for g, want in zip(_shape_colours(out[7], masks[7]), WORLDS[0][1]):
        assert _ciede(g, want) < 5.0
    with pytest.raises(UserError, match="different aspect ratio"):
        next(colorize_frames(frames, references={0: frames[0][:, : H]}, hint_model="none"))


def test_references_and_hints_beyond_the_clip_are_refused():
    frames, _ = _clip(5)
    with pytest.raises(UserError, match="frame 9, beyond the clip \\(last frame 4\\)"):
        next(colorize_frames(frames, references={9: frames[0]}, hint_model="none"))
    with pytest.raises(UserError, match="hint 0 is for frame 7, beyond the clip"):
        next(colorize_frames(frames, references={0: frames[0]}, hint_model="none",
                             hints=[{"frame": 7, "x": 1, "y": 1, "rgb": [1, 2, 3]}]))
    with pytest.raises(UserError, match="outside the 112x64 frame"):
        next(colorize_frames(frames, references={0: frames[0]}, hint_model="none",
                             hints=[PointHint(1, 200, 1, (1, 2, 3))]))


# -------------------------------------------------------------------------------------------------- CLI
def _invoke(*args):
    from framecolor.cli import cli

    return CliRunner().invoke(cli, ["--quiet", *map(str, args)], catch_exceptions=False)


def test_cli_run_with_reference_and_hints(tmp_path, tiny_model_path):
    """`framecolor run clip --reference FRAME=PNG --hints FILE` colours the keyed shot with the key's colours
    (through lossy encoding); a malformed hints file is a one-line error with exit code 2 and no output."""
    from clips import read_all_frames

    import av

    frames = [shapes_frame(t)[0] for t in range(12)]
    clip = tmp_path / "clip.mkv"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv444p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    decoded = [img for _, _, img in read_all_frames(clip)]
    key = tmp_path / "key.png"
    cv2.imwrite(str(key), cv2.cvtColor(decoded[0], cv2.COLOR_RGB2BGR))
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([{"frame": 4, "x": 10, "y": 10, "rgb": [200, 40, 40]}]))
    result = _invoke("run", clip, "-o", tmp_path / "out.mkv", "--model", tiny_model_path, "--reference",
                     f"0={key}", "--hints", hints, "--codec", "ffv1", "--temporal", "off")
    assert result.exit_code == 0, result.output
    got = [img for _, _, img in read_all_frames(tmp_path / "out.mkv")]
    assert len(got) == 12
    masks = shapes_frame(11)[1]
    for g, want in zip(_shape_colours(got[11], masks), WORLDS[0][1]):
        assert _ciede(g, want) < 4.0

    bad = tmp_path / "bad.json"
    bad.write_text('[{"frame": 1, "x": 5, "y": 5, "rgb": [1, 2]}]')
    result = _invoke("run", clip, "-o", tmp_path / "bad.mkv", "--model", tiny_model_path, "--reference",
                     f"0={key}", "--hints", bad)
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "rgb must be 3 integers 0-255" in result.output
    assert not (tmp_path / "bad.mkv").exists()


# ------------------------------------------------------------------------------- full resolution (issue 16)
def _stripe_clip(n=8, width=256, height=128):
    """A 2-pixel-wide dark magenta stripe (thinner than a render-size pixel at render size 32: 8 full pixels)
    painted on a gray textured picture that pans 1 px per frame."""
    rng = np.random.default_rng(5)
    tex = cv2.resize(rng.random((height // 8, (width + n) // 8)).astype(np.float32), (width + n, height),
                     interpolation=cv2.INTER_CUBIC)
    picture = np.repeat((100 + 80 * tex)[..., None], 3, 2)
    picture[:, 100:102] = (120, 0, 110)
    return [np.clip(picture[:, n - t:n - t + width], 0, 255).astype(np.uint8) for t in range(n)]


def test_a_stripe_thinner_than_a_render_pixel_keeps_its_colour():
    """Keys are carried at full resolution: at render size 32 a 2-px stripe is a quarter of a render pixel,
    yet 6 frames after the key it is within CIEDE2000 8 of its true colour (through the render size it is
    washed to gray) and the gray picture beside it stays gray."""
    frames = _stripe_clip()
    out = list(colorize_frames(frames, references={0: frames[0]}, render_size=32))
    t = 6
    x = 100 - 8 + t
    got = out[t][:, x:x + 2].reshape(-1, 3).mean(0)
    assert _ciede(got, (120, 0, 110)) < 8.0, got
    side = color.rgb_to_lab(out[t][:, 20:80])[..., 1:]
    assert np.abs(side).mean() < 3.0


def test_a_key_at_the_end_of_a_shot_colours_the_frames_before_it(tiny_model_path):
    """With the shots planned, a single key at the last frame of the shot gives the earlier frames its
    colours: frame 0, six frames before the key (the disc 9 px away), has every shape within CIEDE2000 3 of
    the key's colours, and so has frame 3."""
    frames, masks = _clip(7)
    out = list(colorize_frames(frames, model=tiny_model_path, references={6: frames[6]}))
    for t in (0, 3):
        for g, want in zip(_shape_colours(out[t], masks[t]), WORLDS[0][1]):
            assert _ciede(g, want) < 3.0, (t, g, want)
