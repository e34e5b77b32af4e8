"""CIEDE2000 (framecolor.ciede2000) and the benchmark metrics (benchmarks.metrics) against references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000 as sk_ciede2000

from framecolor.ciede2000 import delta_e_ciede2000
from sharma_pairs import SHARMA_PAIRS


def _random_lab(rng, n):
    lab = np.empty((n, 3))
    lab[:, 0] = rng.uniform(0, 100, n)
    lab[:, 1:] = rng.uniform(-110, 110, (n, 2))
    return lab


# ------------------------------------------------------------------------------------------- CIEDE2000
def test_ciede2000_matches_sharma_published_pairs_to_1e4():
    lab1 = torch.tensor([p[0] for p in SHARMA_PAIRS], dtype=torch.float64)
    lab2 = torch.tensor([p[1] for p in SHARMA_PAIRS], dtype=torch.float64)
    expected = np.array([p[2] for p in SHARMA_PAIRS])
    assert len(SHARMA_PAIRS) == 34
    got = delta_e_ciede2000(lab1, lab2, channel_dim=-1).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_ciede2000_matches_skimage_on_random_pairs_float64_and_float32():
    rng = np.random.default_rng(0)
    lab1, lab2 = _random_lab(rng, 5000), _random_lab(rng, 5000)
    # include near pairs (small differences are where metrics live) and gray colours
    lab2[:1000] = lab1[:1000] + rng.normal(0, 1.0, (1000, 3))
    lab1[1000:1100, 1:] = 0
    ref = sk_ciede2000(lab1, lab2)
    got64 = delta_e_ciede2000(torch.from_numpy(lab1), torch.from_numpy(lab2), channel_dim=-1).numpy()
    np.testing.assert_allclose(got64, ref, rtol=0, atol=1e-4)
    got32 = delta_e_ciede2000(torch.from_numpy(lab1).float(), torch.from_numpy(lab2).float(), channel_dim=-1)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), ref, rtol=1e-3, atol=2e-3)


def test_ciede2000_on_images_channel_dim_minus3_matches_skimage():
    rng = np.random.default_rng(1)
    img1 = _random_lab(rng, 2 * 5 * 7).reshape(2, 5, 7, 3)
    img2 = _random_lab(rng, 2 * 5 * 7).reshape(2, 5, 7, 3)
    ref = sk_ciede2000(img1, img2)  # channel last
    t1 = torch.from_numpy(img1).permute(0, 3, 1, 2)
    t2 = torch.from_numpy(img2).permute(0, 3, 1, 2)
    got = delta_e_ciede2000(t1, t2)  # default channel_dim=-3
    assert got.shape == (2, 5, 7)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-4)


def test_ciede2000_identity_is_exactly_zero_and_symmetric():
    rng = np.random.default_rng(2)
    lab1 = torch.from_numpy(_random_lab(rng, 1000))
    lab1[:50, 1:] = 0  # gray
    lab2 = torch.from_numpy(_random_lab(rng, 1000))
    assert torch.all(delta_e_ciede2000(lab1, lab1, channel_dim=-1) == 0)
    assert torch.all(delta_e_ciede2000(lab1.float(), lab1.float(), channel_dim=-1) == 0)
    torch.testing.assert_close(delta_e_ciede2000(lab1, lab2, channel_dim=-1),
                               delta_e_ciede2000(lab2, lab1, channel_dim=-1), atol=1e-9, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ciede2000_gradient_finite_for_identical_gray_and_random_colours(dtype):
    rng = np.random.default_rng(3)
    lab2 = torch.from_numpy(_random_lab(rng, 64)).to(dtype)
    lab1 = lab2.clone()
    lab1[16:32] = torch.from_numpy(_random_lab(rng, 16)).to(dtype)  # different colours
    lab1[32:40, 1:] = 0  # gray prediction
    lab2[36:40, 1:] = 0  # gray vs gray, different L
    lab1[36:40, 0] += 5
    lab1[40:48] = lab2[40:48] + 1e-3  # nearly identical
    lab1.requires_grad_(True)
    loss = delta_e_ciede2000(lab1, lab2, channel_dim=-1).sum()
    loss.backward()
    assert torch.isfinite(lab1.grad).all()
    assert lab1.grad[16:32].abs().sum() > 0  # different colours do get a gradient


def test_ciede2000_gradient_matches_finite_differences_away_from_singularities():
    rng = np.random.default_rng(4)
    lab1 = torch.from_numpy(_random_lab(rng, 8)).requires_grad_(True)
    lab2 = torch.from_numpy(_random_lab(rng, 8))
    assert torch.autograd.gradcheck(lambda x: delta_e_ciede2000(x, lab2, channel_dim=-1), (lab1,))


# ------------------------------------------------------------------------------------ benchmark metrics
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from benchmarks import metrics as M  # noqa: E402


def _smooth_rgb(rng, h, w, noise=12.0):
    """A natural-ish image: smooth colour fields plus noise (SSIM is degenerate on pure noise)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in (0.0, 1.0, 2.0)], axis=-1)
    img = 127 + 100 * base + rng.normal(0, noise, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(48, 64), (37, 29), (7, 9)])
def test_ssim_rgb_equals_skimage_structural_similarity(shape):
    rng = np.random.default_rng(5)
    a = _smooth_rgb(rng, *shape)
    b = np.clip(a.astype(int) + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, channel_axis=2, data_range=255)
    assert M.ssim_rgb(a, b) == pytest.approx(ref, abs=1e-9)


def test_ssim_identity_is_one_and_psnr_matches_skimage():
    rng = np.random.default_rng(6)
    a = _smooth_rgb(rng, 40, 50)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    assert M.ssim_rgb(a, a) == pytest.approx(1.0, abs=1e-12)
    assert M.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    assert M.psnr(a, a) == float("inf")


def test_ciede2000_stats_identity_zero_and_gray_difference_matches_skimage():
    from skimage.color import rgb2lab

    rng = np.random.default_rng(7)
    a = _smooth_rgb(rng, 20, 30)
    assert M.ciede2000_stats(a, a) == (0.0, 0.0)
    g = M.gray_baseline(a)
    ref = sk_ciede2000(rgb2lab(g), rgb2lab(a))
    mean, median = M.ciede2000_stats(g, a)
    assert mean == pytest.approx(ref.mean(), abs=1e-3)
    assert median == pytest.approx(np.median(ref), abs=1e-3)


def test_gray_baseline_keeps_luminance_and_has_no_chroma():
    from skimage.color import rgb2lab

    rng = np.random.default_rng(8)
    a = _smooth_rgb(rng, 16, 16)
    g = M.gray_baseline(a)
    assert np.all(g[..., 0] == g[..., 1]) and np.all(g[..., 1] == g[..., 2])
    assert np.abs(rgb2lab(g)[..., 0] - rgb2lab(a)[..., 0]).max() < 0.5  # 8-bit rounding only


def test_colourfulness_hasler_susstrunk_closed_forms():
    gray = np.full((8, 8, 3), 100, np.uint8)
    assert M.colourfulness(gray) == 0.0
    # uniform red: rg = 255, yb = 127.5, no spread -> M = 0.3 * sqrt(255^2 + 127.5^2)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert M.colourfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))
    # half red, half green: rg = +-255 (sigma 255, mean 0), yb = 127.5 (sigma 0) -> M = 255 + 0.3 * 127.5
    rg = np.zeros((4, 4, 3), np.uint8)
    rg[:2, :, 0] = 255
    rg[2:, :, 1] = 255
    assert M.colourfulness(rg) == pytest.approx(255 + 0.3 * 127.5)


def _cdc_reference(frames):
    """CDC as in the TCVC reference code (Liu et al. 2021): cv2 histograms, scipy entropy."""
    import cv2
    from scipy.stats import entropy

    def js(p, q):
        m = (p + q) / 2
        return 0.5 * entropy(p, m) + 0.5 * entropy(q, m)

    hists = [[cv2.calcHist([f], [c], None, [256], [0, 256]).reshape(-1) / (f.shape[0] * f.shape[1]) for c in range(3)]
             for f in frames]
    per_gap = []
    for g in (1, 2, 4):
        chans = [np.mean([js(hists[i][c], hists[i + g][c]) for i in range(len(frames) - g)]) for c in range(3)]
        per_gap.append(np.mean(chans))
    return float(np.mean(per_gap))


def test_cdc_matches_reference_code_and_is_zero_for_a_still_clip():
    rng = np.random.default_rng(9)
    frames = [np.clip(_smooth_rgb(rng, 24, 32).astype(int) + 8 * k, 0, 255).astype(np.uint8) for k in range(9)]
    assert M.cdc(frames) == pytest.approx(_cdc_reference(frames), rel=1e-9, abs=1e-12)
    assert M.cdc([frames[0]] * 6) == 0.0


def test_js_divergence_bounds():
    p = np.array([1.0, 0, 0])
    q = np.array([0, 1.0, 0])
    assert M.js_divergence(p, p) == 0.0
    assert M.js_divergence(p, q) == pytest.approx(np.log(2))  # disjoint supports: the maximum


def _translated_pair(shift=3):
    rng = np.random.default_rng(10)
    big = _smooth_rgb(rng, 60, 90, noise=2.0)
    return big[10:58, 10:74], big[10:58, 10 + shift:74 + shift]


def test_warp_error_near_zero_along_true_motion_and_large_for_flicker():
    from framecolor import color

    a, b = _translated_pair()
    La, Lb = color.luminance(a), color.luminance(b)
    back, mask = M.consistent_flow(La, Lb)
    assert mask.mean() > 0.7  # a pure translation is mostly consistent
    assert np.median(back[mask][:, 0]) == pytest.approx(3, abs=0.5)  # b(x) = a(x + 3)
    ab_a = M.exact_lab(a).permute(1, 2, 0).numpy()[..., 1:]
    ab_b = M.exact_lab(b).permute(1, 2, 0).numpy()[..., 1:]
    steady = M.warp_error(ab_a, ab_b, back, mask)
    flicker = M.warp_error(ab_a, ab_b + 10.0, back, mask)
    assert steady < 1.0
    assert flicker > 8.0


def test_flow_propagation_copies_key_frame_and_follows_motion():
    a, b = _translated_pair()
    fp = M.FlowPropagation()
    out_a = fp.process(a, key=True)
    assert M.ciede2000_stats(out_a, a)[0] < 0.6  # the key frame is given (8-bit / OpenCV Lab rounding only)
    out_b = fp.process(b, key=False)
    gray_b = M.gray_baseline(b)
    assert M.ciede2000_stats(out_b, b)[0] < 0.3 * M.ciede2000_stats(gray_b, b)[0]


def test_neutral_chroma_counts_only_light_or_dark_neutral_truth_pixels_and_measures_the_tint_there():
    """White and black truth pixels are judged by the prediction's chroma there; coloured and mid-gray truth
    pixels are left out, so a sepia tint on whites scores its chroma and an exact copy scores 0."""
    import torch

    truth = np.zeros((4, 8, 3), np.uint8)
    truth[:, :2] = 255           # white: counted
    truth[:, 2:4] = 0            # black: counted
    truth[:, 4:6] = 128          # mid gray: neutral but not light or dark, left out
    truth[:, 6:] = (200, 30, 30)  # red: coloured, left out
    truth_lab = M.exact_lab(truth, torch.float32)
    total, count = M.neutral_chroma(truth, truth_lab)
    assert count == 4 * 4 and total < 0.01 * count  # white is (100, 0.002, 0.005) in exact Lab
    tinted = truth.copy()
    tinted[:, :2] = (255, 240, 200)  # sepia whites
    total, count = M.neutral_chroma(tinted, truth_lab)
    white_chroma = float(np.hypot(*M.exact_lab(tinted[:1, :1], torch.float64)[1:, 0, 0].numpy()))
    assert count == 16
    assert abs(total / count - white_chroma / 2) < 0.05  # half the counted pixels are tinted
