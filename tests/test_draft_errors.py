"""Simulated draft errors (training/draft_errors.py): deterministic from a seed, different across seeds,
and changing only the pixels inside the mask they report."""

from __future__ import annotations

import numpy as np
import pytest

from framecolor.errors import UserError
from training.draft_errors import colour_spray, paste_region, random_warp, simulate_draft
from training.synthetic import make_frame

SIMULATORS = [paste_region, random_warp, colour_spray, simulate_draft]


@pytest.fixture(scope="module")
def image():
    return make_frame(5, (160, 224))


def _run(fn, img, seed):
    return fn(img, np.random.default_rng(seed))


@pytest.mark.parametrize("fn", SIMULATORS, ids=lambda f: f.__name__)
def test_same_seed_gives_identical_result(fn, image):
    a, ma = _run(fn, image, 11)
    b, mb = _run(fn, image, 11)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)


@pytest.mark.parametrize("fn", SIMULATORS, ids=lambda f: f.__name__)
def test_different_seeds_give_different_results(fn, image):
    results = [_run(fn, image, s) for s in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(results[i][1], results[j][1])
            assert not np.array_equal(results[i][0], results[j][0])


@pytest.mark.parametrize("fn", SIMULATORS, ids=lambda f: f.__name__)
def test_only_masked_pixels_change_and_the_mask_is_mostly_changed(fn, image):
    """Outside the reported mask the output is bit-identical to the input; inside, the mask is not a loose
    over-estimate (most masked pixels did change) and the input was not modified in place."""
    before = image.copy()
    for seed in range(8):
        out, mask = _run(fn, image, seed)
        assert out.shape == image.shape and out.dtype == image.dtype and mask.shape == image.shape[:2]
        assert mask.dtype == bool and mask.any()
        assert np.array_equal(out[~mask], image[~mask])
        changed = (out != image).any(axis=2)
        # a warp moves flat colour onto identical flat colour, so only its edges change
        assert changed[mask].mean() > (0.1 if fn is random_warp else 0.3), f"seed {seed}: only {changed[mask].mean():.0%} of the mask changed"
    assert np.array_equal(image, before)


def test_sizes_follow_the_issue():
    """Pasted patches are 16-128 px squares or ellipses inside them; spray strokes are 32-128 px wide."""
    img = make_frame(2, 400)
    for seed in range(10):
        _, mask = paste_region(img, np.random.default_rng(seed))
        ys, xs = np.nonzero(mask)
        side = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert 8 <= side <= 128
        _, spray = colour_spray(img, np.random.default_rng(seed))
        assert spray.mean() > 0.002  # a stroke of radius >= 16 px covers much more than a few pixels


def test_works_on_16_bit_and_float_images(image):
    img16 = image.astype(np.uint16) * 257
    out, mask = simulate_draft(img16, np.random.default_rng(3))
    assert out.dtype == np.uint16 and np.array_equal(out[~mask], img16[~mask])
    f = image.astype(np.float32) / 255
    out, mask = simulate_draft(f, np.random.default_rng(3))
    assert out.dtype == np.float32 and np.array_equal(out[~mask], f[~mask]) and 0 <= out.min() <= out.max() <= 1


def test_bad_input_is_a_user_error():
    with pytest.raises(UserError):
        simulate_draft(np.zeros((8, 8, 3), np.uint8), np.random.default_rng(0))
    with pytest.raises(UserError):
        paste_region(np.zeros((64, 64), np.uint8), np.random.default_rng(0))
