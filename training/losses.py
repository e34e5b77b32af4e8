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


def l1_loss(pred_ab: torch.Tensor, true_ab: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error; with ``weight`` (B,1,H,W) each pixel's error is scaled by its weight."""
    if weight is None:
        return F.l1_loss(pred_ab, true_ab)
    return ((pred_ab - true_ab).abs() * weight).mean()


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
                   true_L: torch.Tensor | None = None, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean CIEDE2000 (in ΔE00 units) between (L, pred_ab) and (L, true_ab), all network-scaled; with
    ``true_L`` (models that predict L too, e.g. the line-art stages) the truth is (true_L, true_ab); with
    ``weight`` (B,1,H,W) each pixel's difference is scaled by its weight."""
    from framecolor.ciede2000 import delta_e_ciede2000

    truth = to_lab(L if true_L is None else true_L, true_ab)
    delta = delta_e_ciede2000(to_lab(L, pred_ab), truth, channel_dim=-3)
    if weight is not None:
        delta = delta * weight[:, 0]
    return delta.mean()


class ColourRebalancing:
    """Per-pixel weights that make rare colours count as much as common ones, after Zhang, Isola & Efros,
    "Colorful Image Colorization" (ECCV 2016), section 2.2: the ab plane is cut into bins of ``bin_size``
    Lab units, the empirical bin distribution p is smoothed with a Gaussian (sigma ``sigma`` units), mixed
    with a uniform distribution over the bins that occur (weight ``mix``, their lambda) and inverted; unlike
    the paper, the weights are scaled to a mean of 1 over the sampled pixels rather than under the smoothed p. Zhang et al. weight a classification loss; here the weights
    scale the per-pixel L1 and CIEDE2000 terms, which is what pushes an L1 regressor away from the
    desaturated median.
    """

    def __init__(self, ab_samples: torch.Tensor, mix: float = 0.5, bin_size: float = 10.0, sigma: float = 5.0):
        if not 0.0 < mix <= 1.0:
            raise ValueError(f"rebalancing mix must be in (0, 1] (got {mix})")
        self.bin_size = bin_size
        self.bins = int(2 * AB_SCALE // bin_size) + 1
        counts = torch.bincount(self._bin_index(ab_samples).flatten(), minlength=self.bins ** 2).double()
        p = counts.reshape(self.bins, self.bins)
        radius = max(1, int(3 * sigma / bin_size + 0.5))
        x = torch.arange(-radius, radius + 1, dtype=torch.float64) * bin_size
        g = torch.exp(-0.5 * (x / sigma) ** 2)
        g = g / g.sum()
        p = F.conv2d(p[None, None], (g[:, None] * g[None, :])[None, None], padding=radius)[0, 0]
        p = p / p.sum()
        occurring = p > 1e-6
        weights = torch.zeros_like(p)
        weights[occurring] = 1.0 / ((1.0 - mix) * p[occurring] + mix / int(occurring.sum()))
        # Scaled so that the mean weight over the sampled pixels is 1: the weighted losses keep the size of
        # the unweighted ones, and --l1-weight / --ciede-weight keep their meaning.
        weights = weights.flatten()
        weights = weights / (weights * counts).sum() * counts.sum()
        self.table = weights.float()

    def _bin_index(self, ab: torch.Tensor) -> torch.Tensor:
        """Network-scaled ab (B,2,H,W) -> bin index (B,H,W)."""
        idx = ((ab.float() * AB_SCALE + AB_SCALE) / self.bin_size).round().long().clamp(0, self.bins - 1)
        return idx[:, 0] * self.bins + idx[:, 1]

    def __call__(self, true_ab: torch.Tensor) -> torch.Tensor:
        """Weights (B,1,H,W) for the true colours of a batch."""
        table = self.table.to(true_ab.device)
        return table[self._bin_index(true_ab)][:, None]
