"""The training loop: L1 warm-up, then conditional GAN training of a generator against a PatchGAN.

Following pix2pix (Isola et al., CVPR 2017): Adam (lr 2e-4, betas 0.5/0.999), generator loss
``l1_weight * L1 + adversarial`` (+ optionally ``ciede_weight * CIEDE2000``), discriminator loss halved.
A first phase of L1-only steps gives the adversarial phase a generator that already predicts plausible
colours; the adversarial phase then counters the desaturated, sepia-like average that L1 alone converges to.

Two levels of API:

* :func:`train_steps` runs S steps of given models and optimizers on a :class:`~training.data.PairDataset`
  with an explicit random generator: the reusable piece (e.g. a federated client's local round).
* :func:`train` is the whole run behind ``framecolor train``: builds everything from
  :class:`TrainOptions`, writes checkpoints (generator safetensors loadable by ``framecolor run --model``,
  a ``state_*.pt`` for ``--resume``, a PNG grid), ``losses.csv``, and returns the final model's path.

Reproducibility: the seed fixes the weight initialisation (torch), dropout (torch RNG) and the data
sampling (a numpy Generator); both RNG states are saved with every checkpoint, so a resumed run continues
exactly as an uninterrupted one would (same thread count and device assumed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from framecolor.checkpoint import save_generator
from framecolor.errors import UserError

from .data import PairDataset
from .discriminator import PatchGAN, PatchGANConfig
from .losses import AdversarialLoss, ColourRebalancing, ciede2000_loss, l1_loss

ARCHS = ("unet", "resnet34-unet")
REBALANCE_PRIOR_SAMPLES = 256  # crops whose colours estimate the training data's ab distribution
CSV_FIELDS = ("step", "phase", "l1", "g_adv", "d_loss", "ciede", "seconds")


@dataclass
class TrainOptions:
    """Everything a training run depends on (the CLI's options, one to one)."""

    data: Sequence[str]
    out: Path
    arch: str = "unet"
    base_channels: int = 32  # unet
    depth: int = 5  # unet
    width: int = 32  # resnet34-unet
    steps: int = 2000
    warmup_steps: int | None = None  # L1-only steps; None: 20% of steps
    batch: int = 8
    crop: int = 128
    short_side: int = 256  # frames are cached at this short side (the inference render size)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    l1_weight: float = 100.0
    gan_loss: str = "bce"
    gan_weight: float = 1.0
    ciede_weight: float = 0.0
    d_channels: int = 64
    d_layers: int = 3
    spectral_norm: bool = False
    seed: int = 0
    checkpoint_every: int = 500
    resume: bool = False
    device: str = "auto"
    threads: int | None = None
    grid_samples: int = 4
    progress: bool = True
    lineart: str | None = None  # "draft" or "refine": a line-art colouring stage (training/lineart_pairs.py)
    draft_model: str | None = None  # lineart="refine": a trained draft model, to train on its real drafts too
    real_draft_share: float = 0.5  # with draft_model: share of samples whose draft is that model's real draft
    hue_jitter: float = 0.0  # probability of rotating a sample's target hue (training/data.rotate_hue)
    hue_jitter_domain: str | None = "live-action"  # the domain it applies to (None: every sample)
    init: str | None = None  # a generator checkpoint to start from (weights only; its architecture must match)
    rebalance: float | None = None  # colour rebalancing's uniform share (losses.ColourRebalancing); None: off

    def __post_init__(self):
        self.out = Path(self.out)
        self.data = tuple(self.data)
        if self.arch not in ARCHS:
            raise UserError(f"unknown --arch {self.arch!r} (known: {', '.join(ARCHS)})")
        if self.steps < 1:
            raise UserError("--steps must be at least 1")
        if self.batch < 1:
            raise UserError("--batch must be at least 1")
        if self.crop < 16:
            raise UserError("--crop must be at least 16")
        if self.checkpoint_every < 1:
            raise UserError("--checkpoint-every must be at least 1")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise UserError("--warmup-steps must be >= 0")
        if self.gan_loss not in ("bce", "lsgan"):
            raise UserError(f"unknown --gan-loss {self.gan_loss!r} (known: bce, lsgan)")
        if self.lineart not in (None, "draft", "refine"):
            raise UserError(f"unknown --lineart {self.lineart!r} (known: draft, refine)")
        if self.draft_model is not None and self.lineart != "refine":
            raise UserError("--draft-model is for --lineart refine")
        if not 0.0 <= self.real_draft_share <= 1.0:
            raise UserError(f"--real-draft-share must be between 0 and 1 (got {self.real_draft_share})")
        if not 0.0 <= self.hue_jitter <= 1.0:
            raise UserError(f"--hue-jitter must be between 0 and 1 (got {self.hue_jitter})")
        if self.rebalance is not None and not 0.0 < self.rebalance <= 1.0:
            raise UserError(f"--rebalance must be above 0 and at most 1 (got {self.rebalance})")
        if self.init is not None and self.resume:
            raise UserError("--init starts a new run; --resume continues one: give one of them")
        if self.hue_jitter and self.lineart:
            # its inputs (hint colours, drafts) are made from the unrotated frame: a rotated target would
            # contradict them
            raise UserError("--hue-jitter does not combine with --lineart")

    def pair_dataset(self) -> PairDataset:
        """The (L, ab) pairs of ``data`` with these options' crop, cache size and colour augmentation: the one
        place every training (plain, line art, each federated client) builds its data from."""
        return PairDataset.from_specs(self.data, crop=self.crop, short_side=self.short_side,
                                      hue_jitter=self.hue_jitter, hue_jitter_domain=self.hue_jitter_domain)

    @property
    def warmup(self) -> int:
        return int(round(0.2 * self.steps)) if self.warmup_steps is None else self.warmup_steps

    def generator_config(self):
        if self.arch == "unet":
            from framecolor.models.unet import UNetConfig

            return UNetConfig(base_channels=self.base_channels, depth=self.depth, render_size=self.short_side,
                              in_channels=self.in_channels, out_channels=self.out_channels)
        from framecolor.models.resnet_unet import ResNetUNetConfig

        return ResNetUNetConfig(width=self.width, render_size=self.short_side, in_channels=self.in_channels,
                                out_channels=self.out_channels)

    @property
    def in_channels(self) -> int:
        if self.lineart:  # line art, or line art + draft Lab + hint ab + mask (framecolor.lineart.refine_input)
            return 1 if self.lineart == "draft" else 7
        return 1  # L

    @property
    def out_channels(self) -> int:
        return 3 if self.lineart else 2  # line art has no L to keep: the line-art stages predict Lab

    def discriminator_config(self) -> PatchGANConfig:
        # it sees the condition (L, or the line art) with the output
        return PatchGANConfig(in_channels=1 + self.out_channels, base_channels=self.d_channels,
                              n_layers=self.d_layers, spectral_norm=self.spectral_norm)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["data"] = list(self.data)
        d["betas"] = list(self.betas)
        return d


@dataclass
class Optimizers:
    """Adam for generator and discriminator, with their AMP gradient scalers (no-ops off CUDA)."""

    g: torch.optim.Optimizer
    d: torch.optim.Optimizer | None
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler

    def state_dict(self) -> dict:
        return {"g": self.g.state_dict(), "d": self.d.state_dict() if self.d else None,
                "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.g.load_state_dict(state["g"])
        if self.d is not None and state.get("d") is not None:
            self.d.load_state_dict(state["d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])


def make_optimizers(generator, discriminator=None, lr: float = 2e-4, betas=(0.5, 0.999),
                    device: str | torch.device = "cpu") -> Optimizers:
    amp = torch.device(device).type == "cuda"
    return Optimizers(
        g=torch.optim.Adam(generator.parameters(), lr=lr, betas=tuple(betas)),
        d=torch.optim.Adam(discriminator.parameters(), lr=lr, betas=tuple(betas)) if discriminator else None,
        scaler_g=torch.amp.GradScaler("cuda", enabled=amp),
        scaler_d=torch.amp.GradScaler("cuda", enabled=amp),
    )


def _set_requires_grad(module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def train_step(generator, discriminator, optimizers: Optimizers, L: torch.Tensor, ab: torch.Tensor, *,
               adversarial: bool, adv_loss: AdversarialLoss, l1_weight: float = 100.0, gan_weight: float = 1.0,
               ciede_weight: float = 0.0, rebalancing: ColourRebalancing | None = None) -> dict[str, float]:
    """One optimisation step on one batch (already on the models' device); returns the loss values.
    With ``rebalancing`` the L1 and CIEDE2000 terms weight each pixel by the rarity of its true colour."""
    device = L.device
    amp = device.type == "cuda"
    out = {"l1": float("nan"), "g_adv": float("nan"), "d_loss": float("nan"), "ciede": float("nan")}
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        fake = generator(L)
    L = L[:, :1]  # a hint-conditioned generator sees L + hints; the discriminator and the losses see L
    use_d = adversarial and discriminator is not None and optimizers.d is not None
    if use_d:
        # Discriminator: real (L, ab) vs generated (L, G(L)), generator frozen (detach).
        _set_requires_grad(discriminator, True)
        optimizers.d.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            d_loss = adv_loss.d_loss(discriminator(L, ab), discriminator(L, fake.detach()))
        optimizers.scaler_d.scale(d_loss).backward()
        optimizers.scaler_d.step(optimizers.d)
        optimizers.scaler_d.update()
        out["d_loss"] = d_loss.item()
        _set_requires_grad(discriminator, False)  # no D gradients from the generator's step
    optimizers.g.zero_grad(set_to_none=True)
    fake32 = fake.float()
    weight = rebalancing(ab[:, -2:]) if rebalancing is not None else None
    l1 = l1_loss(fake32, ab, weight)
    loss = l1_weight * l1
    out["l1"] = l1.item()
    if use_d:
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            g_adv = adv_loss.g_loss(discriminator(L, fake))
        loss = loss + gan_weight * g_adv
        out["g_adv"] = g_adv.item()
    if ciede_weight > 0:
        if fake32.shape[1] == 3:  # a line-art stage predicts Lab: its own L against the true L
            ciede = ciede2000_loss(fake32[:, :1], fake32[:, 1:], ab[:, 1:], true_L=ab[:, :1], weight=weight)
        else:
            ciede = ciede2000_loss(L, fake32, ab, weight=weight)
        loss = loss + ciede_weight * ciede
        out["ciede"] = ciede.item()
    optimizers.scaler_g.scale(loss).backward()
    optimizers.scaler_g.step(optimizers.g)
    optimizers.scaler_g.update()
    if discriminator is not None:
        _set_requires_grad(discriminator, True)
    return out


def train_steps(generator, discriminator, optimizers: Optimizers, data: PairDataset, steps: int, *,
                rng: np.random.Generator, batch: int = 8, start_step: int = 0, warmup_steps: int = 0,
                gan_loss: str | AdversarialLoss = "bce", l1_weight: float = 100.0, gan_weight: float = 1.0,
                ciede_weight: float = 0.0, rebalancing: ColourRebalancing | None = None,
                on_step: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Train ``generator`` (and ``discriminator``) for ``steps`` steps on batches drawn from ``data``.

    Steps numbered ``start_step + 1 .. start_step + steps``; those up to ``warmup_steps`` (counted from 0)
    are L1-only, later ones adversarial (when a discriminator is given; ``discriminator=None`` trains with
    L1 (+ CIEDE2000) only).  Batches come from ``data.batch(rng, batch)``, so the caller's ``rng`` decides
    the samples.  Models must already be on their device; batches are moved there.  ``on_step(step, losses)``
    is called after each step (logging, checkpoints).  Returns the per-step loss dicts, each with
    ``step`` and ``phase``.  Leaves the models in train mode.
    """
    adv = gan_loss if isinstance(gan_loss, AdversarialLoss) else AdversarialLoss(gan_loss)
    device = next(generator.parameters()).device
    generator.train()
    if discriminator is not None:
        discriminator.train()
    history = []
    for i in range(steps):
        step = start_step + i + 1
        L, ab, _ = data.batch(rng, batch)
        L, ab = L.to(device, non_blocking=True), ab.to(device, non_blocking=True)
        adversarial = step > warmup_steps and discriminator is not None
        losses = train_step(generator, discriminator, optimizers, L, ab, adversarial=adversarial, adv_loss=adv,
                            l1_weight=l1_weight, gan_weight=gan_weight, ciede_weight=ciede_weight,
                            rebalancing=rebalancing)
        losses.update(step=step, phase="gan" if adversarial else "l1")
        history.append(losses)
        if on_step is not None:
            on_step(step, losses)
    return history


# ------------------------------------------------------------------------------------------ run helpers
def _lineart_data(data: PairDataset, o: TrainOptions, device: torch.device):
    """The line-art stage's samples (training/lineart_pairs.py); the refine stage may draw real drafts from
    ``o.draft_model``."""
    from .lineart_pairs import DraftPairDataset, RefinePairDataset

    if o.lineart == "draft":
        return DraftPairDataset(data)
    draft = None
    if o.draft_model is not None:
        from framecolor.colorizers.lineart import load_stage_model

        draft = load_stage_model(o.draft_model, "draft").to(device).eval()
    return RefinePairDataset(data, draft_model=draft, real_draft_share=o.real_draft_share)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown --device {name!r} (known: auto, cpu, cuda)")
    return torch.device(name)


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def render_grid(generator, L: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """One row per sample: gray input | output | truth, RGB uint8 (line-art stages: line art | output Lab |
    true Lab)."""
    from framecolor.color import denormalize_ab, from_float_rgb, lab_to_rgb

    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        pred = generator(L.to(next(generator.parameters()).device)).float().cpu()
    generator.train(was_training)
    if ab.shape[1] == 3:
        from framecolor.colorizers.lineart import net_to_lab

        rows = []
        for i in range(L.shape[0]):
            line = np.repeat(((L[i, 0].numpy() + 1.0) * 127.5).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
            tiles = [line] + [from_float_rgb(lab_to_rgb(net_to_lab(y[i].numpy())), np.uint8) for y in (pred, ab)]
            rows.append(np.concatenate(tiles, axis=1))
        return np.concatenate(rows, axis=0)
    rows = []
    for i in range(L.shape[0]):
        Li = (L[i, 0].numpy() + 1.0) * 50.0
        tiles = []
        for ab_i in (np.zeros_like(ab[i].numpy()), pred[i].numpy(), ab[i].numpy()):
            lab = np.concatenate([Li[None], denormalize_ab(ab_i)], axis=0).transpose(1, 2, 0)
            tiles.append(from_float_rgb(lab_to_rgb(lab.astype(np.float32)), np.uint8))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"{path}: PNG encoding failed")
    _atomic_bytes(path, buf.tobytes())


def latest_state(out: Path) -> Path | None:
    states = sorted(out.glob("state_*.pt"))
    return states[-1] if states else None


class _LossLog:
    """losses.csv: one row per step; on resume, rows after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        rows = []
        if resume_step is not None and path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        tmp = path.with_name(f".{path.name}.part")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, path)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, CSV_FIELDS)

    def write(self, row: dict) -> None:
        self.writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in CSV_FIELDS})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _initial_generator(o: TrainOptions):
    """A new generator for ``o``: fresh weights, or with ``o.init`` that checkpoint's weights, whose
    architecture must be the one the options ask for (a mismatch is the user's to resolve, said in one line)."""
    from framecolor.models import build_generator

    wanted = o.generator_config()
    if o.init is None:
        return build_generator(wanted)
    from framecolor.checkpoint import load_generator

    model = load_generator(o.init)
    have = dataclasses.asdict(model.config)
    want = dataclasses.asdict(wanted)
    differ = [f"{k} {have.get(k)} (checkpoint) vs {want[k]} (options)" for k in want if have.get(k) != want[k]]
    if type(model.config) is not type(wanted) or differ:
        raise UserError(f"--init {o.init}: its architecture differs from the options: "
                        f"{'; '.join(differ) or type(model.config).__name__}")
    return model.train()


def train(options: TrainOptions) -> Path:
    """Run a whole training (or resume one) as described by ``options``; returns ``out/model.safetensors``."""
    from tqdm import tqdm

    o = options
    if o.threads:
        torch.set_num_threads(o.threads)
    device = resolve_device(o.device)
    out = o.out
    out.mkdir(parents=True, exist_ok=True)

    data = o.pair_dataset()
    if o.lineart:
        data = _lineart_data(data, o, device)
    torch.manual_seed(o.seed)
    rng = np.random.default_rng(o.seed)
    # Fixed grid samples from their own generator, so drawing them never shifts the training samples.
    grid_L, grid_ab, _ = data.batch(np.random.default_rng([o.seed, 1]), o.grid_samples)

    start_step, wall_before = 0, 0.0
    state_path = latest_state(out) if o.resume else None
    if o.resume and state_path is None:
        raise UserError(f"--resume: {out} holds no state_*.pt checkpoint to resume from")
    if state_path is not None:
        from framecolor.checkpoint import load_generator

        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"{state_path}: cannot be read as a training state ({exc})") from None
        start_step = int(state["step"])
        generator = load_generator(out / f"step_{start_step:06d}.safetensors").to(device).train()
        discriminator = PatchGAN(PatchGANConfig(**state["discriminator_config"])).to(device)
        discriminator.load_state_dict(state["discriminator"])
        optimizers = make_optimizers(generator, discriminator, o.lr, o.betas, device)
        optimizers.load_state_dict(state["optimizers"])
        for opt in (optimizers.g, optimizers.d):  # the Adam moments resume; --lr/--beta* may be changed
            for group in opt.param_groups:
                group["lr"], group["betas"] = o.lr, tuple(o.betas)
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        wall_before = float(state.get("wall_seconds", 0.0))
        if start_step >= o.steps:
            raise UserError(f"--resume: {state_path.name} is at step {start_step}; pass --steps above it")
    else:
        generator = _initial_generator(o).to(device)
        discriminator = PatchGAN(o.discriminator_config()).to(device)
        optimizers = make_optimizers(generator, discriminator, o.lr, o.betas, device)

    rebalancing = None
    if o.rebalance is not None:
        # The colour distribution is estimated once from its own sample stream (like the grid), so it is the
        # same on --resume and never shifts the training samples.
        _, prior_ab, _ = data.batch(np.random.default_rng([o.seed, 2]), REBALANCE_PRIOR_SAMPLES)
        rebalancing = ColourRebalancing(prior_ab[:, -2:], mix=o.rebalance)

    log = _LossLog(out / "losses.csv", start_step if state_path is not None else None)
    t0 = time.perf_counter()
    bar = tqdm(total=o.steps, initial=start_step, disable=not o.progress, unit="step", dynamic_ncols=True)

    def wall() -> float:
        return wall_before + time.perf_counter() - t0

    def checkpoint(step: int) -> None:
        info = {"data": list(o.data), "steps": step, "planned_steps": o.steps, "arch": o.arch, "seed": o.seed,
                "wall_seconds": round(wall(), 1), "warmup_steps": o.warmup, "batch": o.batch, "crop": o.crop,
                "gan_loss": o.gan_loss, "l1_weight": o.l1_weight, "ciede_weight": o.ciede_weight,
                "hue_jitter": o.hue_jitter, "hue_jitter_domain": o.hue_jitter_domain if o.hue_jitter else None,
                "device": device.type, "lineart": o.lineart, "draft_model": o.draft_model,
                "real_draft_share": o.real_draft_share if o.draft_model else None,
                "init": o.init, "rebalance": o.rebalance}
        save_generator(out / f"step_{step:06d}.safetensors", generator, info)
        state = {
            "step": step,
            "options": json.dumps(o.to_json()),
            "discriminator_config": dataclasses.asdict(discriminator.config),
            "discriminator": discriminator.state_dict(),
            "optimizers": optimizers.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "numpy_rng": json.dumps(rng.bit_generator.state),
            "wall_seconds": wall(),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        _atomic_bytes(out / f"state_{step:06d}.pt", buf.getvalue())
        _write_png(out / f"grid_{step:06d}.png", render_grid(generator, grid_L, grid_ab))
        save_generator(out / "model.safetensors", generator, info)

    def on_step(step: int, losses: dict) -> None:
        log.write({**losses, "seconds": wall()})
        bar.update(1)
        bar.set_postfix(phase=losses["phase"], l1=f"{losses['l1']:.4f}",
                        d=f"{losses['d_loss']:.3f}", refresh=False)
        if step % o.checkpoint_every == 0 or step == o.steps:
            checkpoint(step)

    try:
        train_steps(generator, discriminator, optimizers, data, o.steps - start_step, rng=rng, batch=o.batch,
                    start_step=start_step, warmup_steps=o.warmup, gan_loss=o.gan_loss, l1_weight=o.l1_weight,
                    gan_weight=o.gan_weight, ciede_weight=o.ciede_weight, rebalancing=rebalancing,
                    on_step=on_step)
    finally:
        bar.close()
        log.close()
    return out / "model.safetensors"
