"""Losses and discriminator: CIEDE2000 loss agrees with the metric and has finite gradients; GAN losses;
PatchGAN receptive field and output layout."""

import numpy as np
import pytest
import torch

from training.discriminator import PatchGAN, PatchGANConfig, receptive_field
from training.losses import AdversarialLoss, ciede2000_loss, to_lab


def test_ciede_loss_matches_scikit_image_metric():
    from skimage.color import deltaE_ciede2000

    g = torch.Generator().manual_seed(0)
    L = torch.rand(2, 1, 8, 8, generator=g) * 2 - 1
    a1 = torch.rand(2, 2, 8, 8, generator=g) * 1.6 - 0.8
    a2 = torch.rand(2, 2, 8, 8, generator=g) * 1.6 - 0.8
    loss = ciede2000_loss(L, a1, a2).item()
    lab1 = to_lab(L, a1).permute(0, 2, 3, 1).double().numpy()
    lab2 = to_lab(L, a2).permute(0, 2, 3, 1).double().numpy()
    ref = deltaE_ciede2000(lab1, lab2).mean()
    assert loss == pytest.approx(ref, rel=1e-4)


def test_ciede_loss_zero_and_finite_gradient_on_identical_and_gray_inputs():
    L = torch.zeros(1, 1, 4, 4)
    ab = torch.rand(1, 2, 4, 4) * 0.5
    ab[..., :2, :] = 0  # gray pixels too (hue angle singularity)
    pred = ab.clone().requires_grad_(True)
    loss = ciede2000_loss(L, pred, ab)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pred.grad).all()


def test_ciede_loss_gradient_descends():
    L = torch.zeros(1, 1, 4, 4)
    target = torch.full((1, 2, 4, 4), 0.3)
    # Exactly gray predictions get a zero (sub)gradient from the guarded chroma sqrt; start just off gray,
    # as a tanh output practically always is.
    pred = torch.full((1, 2, 4, 4), 0.01, requires_grad=True)
    opt = torch.optim.SGD([pred], lr=0.01)
    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = ciede2000_loss(L, pred, target)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert torch.isfinite(pred.grad).all() and loss.item() < 0.5 * first


@pytest.mark.parametrize("kind", ["bce", "lsgan"])
def test_adversarial_losses_order_good_and_bad_discriminators(kind):
    adv = AdversarialLoss(kind)
    confident = adv.d_loss(torch.full((4,), 5.0), torch.full((4,), -5.0))
    fooled = adv.d_loss(torch.full((4,), -5.0), torch.full((4,), 5.0))
    assert confident < fooled
    assert adv.g_loss(torch.full((4,), 5.0)) < adv.g_loss(torch.full((4,), -5.0))


def test_unknown_gan_loss_rejected():
    with pytest.raises(ValueError):
        AdversarialLoss("wgan")


def test_patchgan_has_70x70_receptive_field_and_patch_output():
    assert receptive_field(3) == 70
    d = PatchGAN(PatchGANConfig(base_channels=8))
    out = d(torch.zeros(2, 1, 64, 64), torch.zeros(2, 2, 64, 64))
    assert out.shape == (2, 1, 6, 6)


def test_patchgan_output_depends_only_on_its_receptive_field():
    """Changing input outside one logit's 70x70 window leaves that logit unchanged (patch-wise judging)."""
    torch.manual_seed(0)
    d = PatchGAN(PatchGANConfig(base_channels=4, norm="none")).eval()
    L, ab = torch.randn(1, 1, 160, 160), torch.randn(1, 2, 160, 160)
    ref = d(L, ab)
    L2 = L.clone()
    L2[..., 100:, 100:] = 0  # far from the top-left window
    out = d(L2, ab)
    assert torch.equal(out[..., 0, 0], ref[..., 0, 0])
    assert not torch.equal(out, ref)


def test_spectral_norm_option_trains_a_step():
    d = PatchGAN(PatchGANConfig(base_channels=4, spectral_norm=True))
    out = d(torch.zeros(1, 1, 64, 64), torch.zeros(1, 2, 64, 64))
    out.mean().backward()
    assert any("weight_orig" in n for n, _ in d.named_parameters())
