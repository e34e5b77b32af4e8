"""framecolor.hints.carry: the per-pixel choice between carried candidates, and full-size frames through the
colouring stream."""

import numpy as np

from framecolor.hints.carry import Candidate, FlowField, grow_fill, select


def _cand(ab, cost, from_key, shape=(4, 6)):
    return Candidate(np.broadcast_to(np.asarray(ab, np.float32), shape + (2,)).copy(),
                     np.full(shape, cost, np.float32), from_key)


def test_select_takes_the_cheapest_candidate_and_breaks_ties_for_an_agreeing_key():
    """A key clearly cheaper wins; an agreeing key at equal cost wins (it stops the chain's drift); a
    disagreeing key at equal cost loses to the chain."""
    chain = _cand((10, 10), 2.0, False)
    ab, cost, w, _ = select([chain, _cand((40, -20), 0.5, True)], margin=0.5)
    assert np.allclose(ab, (40, -20)) and np.allclose(cost, 0.5)
    ab, _, _, _ = select([chain, _cand((11, 10), 2.0, True)], agreement=3.0, margin=0.5)
    assert np.allclose(ab, (11, 10))
    ab, _, _, _ = select([chain, _cand((40, -20), 2.0, True)], agreement=3.0, margin=0.5)
    assert np.allclose(ab, (10, 10))


def test_select_hands_misfits_to_the_generator_by_their_cost():
    """The generator's weight is 0 up to ``fit``, 1 from ``misfit``, linear between."""
    for cost, want in ((5.0, 0.0), (17.5, 0.5), (30.0, 1.0)):
        _, _, w, _ = select([_cand((0, 0), cost, True)], fit=10.0, misfit=25.0)
        assert np.allclose(w, want)


def test_flow_field_scales_reduced_flow_to_full_size():
    """A uniform reduced flow of 1 px at half size samples 2 px away at full size."""
    f = FlowField(np.ones((5, 8, 2), np.float32))
    mx, my = f.full_maps(10, 16)
    assert np.allclose(mx - np.arange(16)[None, :], 2.0) and np.allclose(my - np.arange(10)[:, None], 2.0)


def test_grow_fill_stays_on_its_side_of_a_line():
    """Untrusted pixels take a trusted neighbour's colour only across similar L: a dark line stops it."""
    L = np.full((5, 9), 60.0, np.float32)
    L[:, 4] = 5.0  # the line
    ab = np.zeros((5, 9, 2), np.float32)
    ab[:, :4] = (30, 0)
    ab[:, 5:] = (-30, 0)
    trusted = np.zeros((5, 9), bool)
    trusted[:, 0] = True  # only the left edge is trusted; the right side has no trusted pixel
    ab[:, 1:4] = (0, 0)
    out, ok = grow_fill(ab, trusted, L, iterations=8)
    assert np.allclose(out[:, :4], (30, 0)) and ok[:, :4].all()
    assert not ok[:, 5:].any() and np.allclose(out[:, 5:], (-30, 0))


def test_carried_frames_skip_temporal_smoothing_and_match_temporal_off():
    """Full-size carried ab goes through `--temporal flow` unchanged (no shape error, no smoothing):
    a keyed clip comes out the same with temporal smoothing on and off."""
    from clips import reference_clip as _clip

    from framecolor.api import colorize_frames

    frames, _ = _clip(6)
    on = list(colorize_frames(frames, references={0: frames[0]}, temporal="flow"))
    off = list(colorize_frames(frames, references={0: frames[0]}, temporal="off"))
    assert all(np.array_equal(a, b) for a, b in zip(on, off))
