"""training.validate (checkpoint selection on held-out frames) and training.recipes.default_split."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import torch

from training.recipes import default_split
from training.validate import score


class _ConstantAB(torch.nn.Module):
    """A generator that predicts one ab everywhere (a stand-in network, not the scorer under test)."""

    class config:  # noqa: N801 - mirrors the generators' config attribute
        depth = 2

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0], 2, x.shape[2], x.shape[3]), self.value)


def _write_stills(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.full((40, 56, 3), 228, np.uint8)  # light paper (L about 90): a tint can show on it
        img[10:30, 10:40] = rng.integers(0, 255, 3)
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), img)


def test_a_model_predicting_no_colour_scores_exactly_gray_and_a_tint_scores_worse_and_tints_the_whites(tmp_path):
    """The scorer puts gray beside each model: ab = 0 must equal gray's CIEDE2000 and chroma; a constant tint
    must be worse than gray on paper-dominated stills and show up as chroma on the neutral whites."""
    _write_stills(tmp_path / "stills", 4)
    result = score({"zero": _ConstantAB(0.0), "tint": _ConstantAB(0.2)}, [str(tmp_path / "stills")], short_side=32)
    pooled = result["all"]
    assert pooled["zero"]["frames"] == pooled["gray"]["frames"] == 4
    assert abs(pooled["zero"]["ciede2000"] - pooled["gray"]["ciede2000"]) < 1e-6
    assert pooled["zero"]["neutral_chroma"] < 0.05
    assert pooled["tint"]["ciede2000"] > pooled["gray"]["ciede2000"] + 1
    assert pooled["tint"]["neutral_chroma"] > 5


def test_default_split_holds_out_every_tenth_still_and_splits_videos_by_time_with_a_gap(tmp_path):
    """No still is on both sides, every 10th (by name) is held out, and each video's validation range starts
    at least 20 frames after its training range ends."""
    root = tmp_path / "train"
    for name in default_split.STILL_SOURCES:
        _write_stills(root / name, 23)
    train, val = default_split.split(root, tmp_path / "split")
    for name in default_split.STILL_SOURCES:
        t = {p.name.split("_", 1)[1] for p in (tmp_path / "split" / "train" / name).iterdir()}
        v = {p.name.split("_", 1)[1] for p in (tmp_path / "split" / "val" / name).iterdir()}
        assert not t & v and len(t | v) == 23
        assert v == {f"img_{i:03d}.png" for i in (0, 10, 20)}
    for t_spec, v_spec in zip(train[len(default_split.STILL_SOURCES):], val[len(default_split.STILL_SOURCES):]):
        t_stop = int(re.search(r"@0:(\d+):", t_spec).group(1))
        v_start = int(re.search(r"@(\d+):", v_spec).group(1))
        assert v_start - t_stop >= 20
