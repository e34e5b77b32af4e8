"""Synthetic cartoon generator: deterministic from a seed, varied across seeds, cartoon-like content."""

import numpy as np
import pytest

from training.synthetic import make_frame, make_sequence


def test_same_seed_gives_identical_frame():
    assert np.array_equal(make_frame(123, 96), make_frame(123, 96))


def test_different_seeds_give_different_frames():
    frames = [make_frame(s, 64) for s in range(6)]
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            assert np.abs(frames[i].astype(int) - frames[j].astype(int)).mean() > 5


def test_frame_shape_dtype_and_non_square_size():
    f = make_frame(1, (72, 120))
    assert f.shape == (72, 120, 3) and f.dtype == np.uint8


def test_frames_are_colourful_with_dark_outlines():
    """Cartoon statistics over several seeds: saturated colours present, and dark ink pixels present."""
    frames = np.stack([make_frame(s, 128) for s in range(8)]).astype(np.int16)
    chroma = frames.max(axis=3) - frames.min(axis=3)
    assert (chroma > 60).mean() > 0.2  # plenty of saturated pixels
    assert (frames.max(axis=3) < 60).mean() > 0.005  # outlines / text strokes


def test_sequence_deterministic_and_moving():
    a = make_sequence(7, 6, (64, 80))
    b = make_sequence(7, 6, (64, 80))
    assert len(a) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
    # Layers move: consecutive frames differ, but only a little (no cut).
    diffs = [np.abs(a[i + 1].astype(int) - a[i].astype(int)).mean() for i in range(5)]
    assert min(diffs) > 0 and max(diffs) < 20


def test_sequence_cuts_are_returned_and_are_hard_changes():
    frames, cuts = make_sequence(11, 30, 64, cuts=2, return_cuts=True)
    assert len(frames) == 30 and len(cuts) == 2 and all(3 <= c <= 27 for c in cuts)
    diff = [np.abs(frames[i].astype(int) - frames[i - 1].astype(int)).mean() for i in range(1, 30)]
    cut_diffs = [diff[c - 1] for c in cuts]
    other = [d for i, d in enumerate(diff, start=1) if i not in cuts]
    assert min(cut_diffs) > max(other)


def test_sequence_rejects_too_many_cuts():
    with pytest.raises(ValueError):
        make_sequence(0, 8, 32, cuts=5)
