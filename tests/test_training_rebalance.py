"""Colour rebalancing (``framecolor train --rebalance``) and starting a training from a checkpoint (``--init``)."""

from pathlib import Path

import pytest
import torch

from framecolor.errors import UserError
from training.losses import ColourRebalancing, ciede2000_loss, l1_loss


def _gray_with_red_stripe():
    ab = torch.zeros(4, 2, 32, 32)
    ab[:, 0, :4] = 0.5  # 1/8 of the pixels a saturated red-magenta, the rest neutral
    return ab


def test_rare_colours_weigh_more_than_common_ones_and_the_mean_weight_is_one():
    ab = _gray_with_red_stripe()
    weights = ColourRebalancing(ab, mix=0.5)(ab)
    assert weights.shape == (4, 1, 32, 32)
    assert weights[0, 0, 0, 0] > 3 * weights[0, 0, 10, 0]  # the rare colour counts several times the gray
    assert weights.mean().item() == pytest.approx(1.0, rel=1e-4)


def test_mix_one_gives_every_occurring_colour_the_same_weight():
    ab = _gray_with_red_stripe()
    weights = ColourRebalancing(ab, mix=1.0)(ab)
    assert torch.allclose(weights, torch.ones_like(weights), rtol=1e-4)


def test_weighted_losses_scale_each_pixel():
    pred, true = torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)
    pred[:, :, 0, 0] = 0.2  # the only wrong pixel
    weight = torch.ones(1, 1, 4, 4)
    weight[:, :, 0, 0] = 3.0
    assert l1_loss(pred, true, weight).item() == pytest.approx(3 * l1_loss(pred, true).item(), rel=1e-5)
    L = torch.zeros(1, 1, 4, 4)
    assert ciede2000_loss(L, pred, true, weight=weight).item() == pytest.approx(
        3 * ciede2000_loss(L, pred, true).item(), rel=1e-4)


def test_init_starts_from_the_checkpoint_weights_and_refuses_another_architecture(tmp_path: Path):
    from framecolor.checkpoint import load_generator, save_generator
    from framecolor.models import build_generator
    from framecolor.models.unet import UNetConfig
    from training.train import TrainOptions, _initial_generator

    config = UNetConfig(base_channels=8, depth=3, render_size=64)
    torch.manual_seed(3)
    source = build_generator(config)
    save_generator(tmp_path / "start.safetensors", source, {})
    options = TrainOptions(data=["synthetic:cartoon"], out=tmp_path / "run", base_channels=8, depth=3,
                           short_side=64, init=str(tmp_path / "start.safetensors"))
    started = _initial_generator(options)
    for name, tensor in load_generator(tmp_path / "start.safetensors").state_dict().items():
        assert torch.equal(started.state_dict()[name], tensor), name
    wider = TrainOptions(data=["synthetic:cartoon"], out=tmp_path / "run", base_channels=16, depth=3,
                         short_side=64, init=str(tmp_path / "start.safetensors"))
    with pytest.raises(UserError, match="base_channels 8 .checkpoint. vs 16"):
        _initial_generator(wider)


def test_init_and_resume_do_not_combine(tmp_path: Path):
    from training.train import TrainOptions

    with pytest.raises(UserError, match="--init starts a new run"):
        TrainOptions(data=["synthetic:cartoon"], out=tmp_path, init="x.safetensors", resume=True)
