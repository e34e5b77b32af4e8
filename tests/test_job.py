"""framecolor.job: options checked once, the one switch over colouring modes, and reference mode's tolerance of a
missing bundled model (only a shot without a key needs it)."""

from __future__ import annotations

import numpy as np
import pytest

from clips import reference_clip
from framecolor import checkpoint
from framecolor.api import colorize_frames
from framecolor.colorizers.automatic import Colorizer
from framecolor.colorizers.carrying import CarryingColorizer
from framecolor.errors import UserError
from framecolor.job import RunOptions, Source, choose_colorizer


@pytest.mark.parametrize("options, message", [
    (dict(every=0), "--every must be at least 1"),
    (dict(render_size=8), "--render-size must be at least 16"),
    (dict(batch="many"), "--batch must be a whole number or 'auto'"),
    (dict(temporal="jitter"), "unknown --temporal 'jitter' (flow, off)"),
    (dict(input_kind="paint"), "unknown --input-kind 'paint'"),
    (dict(fps="fast"), "--fps 'fast': not a frame rate"),
    (dict(adapt=True), "--adapt learns from the keys"),
    (dict(adapt_minutes=2.0), "--adapt-minutes is for --adapt"),
])
def test_validate_refuses_bad_options_in_one_line(options, message):
    """RunOptions.validate: each bad option is one UserError line naming it, before anything loads."""
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        RunOptions(**options).validate()
    assert "\n" not in str(info.value)


def test_validate_resolves_options_in_place():
    """Resolved once: --input-kind lower-cased, --batch and --fps parsed."""
    options = RunOptions(input_kind="LineArt", batch="8", fps="24000/1001").validate()
    assert (options.input_kind, options.batch, float(options.fps)) == ("lineart", 8, 24000 / 1001)


def test_choose_colorizer_keeps_the_generator_without_keys_and_wraps_it_with_keys(tiny_model_path):
    """Gray input without keys: the loaded generator itself; with a key: full-resolution reference mode around
    it (its render size and batch)."""
    base = Colorizer(tiny_model_path, backend="torch", device="cpu", batch=3)
    frames, _ = reference_clip(4)
    assert choose_colorizer(Source("clip"), RunOptions(), base) is base
    keyed = choose_colorizer(Source("clip"), RunOptions(references={0: frames[0]}), base)
    assert isinstance(keyed, CarryingColorizer) and (keyed.render_size, keyed.batch) == (base.render_size, 3)


def test_reference_mode_without_a_bundled_model_needs_it_only_for_keyless_shots(monkeypatch, tmp_path):
    """With no bundled model and no --model, a clip whose every shot has a key is still coloured (from its key);
    a shot without a key is a one-line UserError saying it needs the automatic model."""
    monkeypatch.setattr(checkpoint, "DATA_DIR", tmp_path)  # no default model installed
    frames, _ = reference_clip(10)
    out = list(colorize_frames(frames, references={0: frames[0]}, backend="torch", device="cpu"))
    assert len(out) == 10 and np.abs(out[5].astype(int) - frames[5].astype(int)).mean() < 10
    two_shots = frames + reference_clip(10, world=1)[0]
    with pytest.raises(UserError, match="a shot has no key, so it needs the automatic model"):
        list(colorize_frames(two_shots, references={0: frames[0]}, backend="torch", device="cpu"))
    with pytest.raises(UserError, match="no default model"):  # without keys it is needed at once
        list(colorize_frames(frames, backend="torch", device="cpu"))
