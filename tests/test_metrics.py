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
