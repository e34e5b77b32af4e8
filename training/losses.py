"""Training losses for ab prediction: L1, adversarial (BCE with logits or least squares), CIEDE2000.

* L1 on normalised ab (pix2pix, Isola et al. 2017, weight about 100 against the adversarial term).
* Adversarial: the original non-saturating GAN loss as BCE with logits (Goodfellow et al. 2014), or least
  squares (Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017), targets 1 real / 0 fake.
* CIEDE2000 (Sharma, Wu & Dalal 2005) between the predicted and true colours, both joined with the true L,
  computed by :func:`framecolor.ciede2000.delta_e_ciede2000`, whose square roots and hue angles are guarded
  so that gradients stay finite at identical and gray colours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from framecolor.color import AB_SCALE

GAN_LOSSES = ("bce", "lsgan")


def l1_loss(pred_ab: torch.Tensor, true_ab: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred_ab, true_ab)


class AdversarialLoss:
    """``d_loss(real_logits, fake_logits)`` for the discriminator, ``g_loss(fake_logits)`` for the generator."""

    def __init__(self, kind: str = "bce"):
        if kind not in GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {kind!r} (known: {', '.join(GAN_LOSSES)})")
        self.kind = kind

    def _against(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        logits = logits.float()
        t = torch.full_like(logits, target)
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(logits, t)
        return F.mse_loss(logits, t)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # Halved as in pix2pix, which slows the discriminator relative to the generator.
        return 0.5 * (self._against(real_logits, 1.0) + self._against(fake_logits, 0.0))

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return self._against(fake_logits, 1.0)


def to_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Network-scale L (B,1,H,W) and ab (B,2,H,W) in [-1, 1] -> Lab in Lab units (B,3,H,W), float32."""
    return torch.cat([(L.float() + 1.0) * 50.0, ab.float() * AB_SCALE], dim=1)


def ciede2000_loss(L: torch.Tensor, pred_ab: torch.Tensor, true_ab: torch.Tensor,
                   true_L: torch.Tensor | None = None) -> torch.Tensor:
    """Mean CIEDE2000 (in ΔE00 units) between (L, pred_ab) and (L, true_ab), all network-scaled; with
    ``true_L`` (models that predict L too, e.g. the line-art stages) the truth is (true_L, true_ab)."""
    from framecolor.ciede2000 import delta_e_ciede2000

    truth = to_lab(L if true_L is None else true_L, true_ab)
    return delta_e_ciede2000(to_lab(L, pred_ab), truth, channel_dim=-3).mean()
