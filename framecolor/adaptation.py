"""Per-show adaptation: a few coloured keys of a show (frames, model sheets) teach the generator its colours.

``adapt(keys, output)`` fine-tunes a generator on the keys alone, on the CPU by default, within a time
budget, and writes an ordinary checkpoint (``framecolor run --model show.safetensors`` uses it for any
episode) whose metadata records what it was adapted on.

How a handful of images is stretched into a training set (one sample = one random view of one key):

* crops at several scales (the key scaled so its short side is 0.5x to 2x the render size: a model sheet's
  character appears at other sizes in the episode), horizontal flips and small affine warps (rotation,
  shear, aspect), in the spirit of the augmentations of few-shot GAN work (Karras et al., "Training
  Generative Adversarial Networks with Limited Data", NeurIPS 2020) but without a discriminator;
* lightness and contrast jitter on the input L only (the target ab is the key's), so the colour of a
  region does not hang on its exact gray level under other lighting;
* blank paper (white, colourless: a model sheet's background) repainted in half the views as a shaded
  gray surface of random lightness, target still neutral, so content the keys do not show is not painted
  in the nearest key colour (without it a character sheet's pink spread over a blue armchair);
* cut-outs (DeVries & Taylor, "Improved Regularization of Convolutional Neural Networks with Cutout",
  2017): rectangles of the input L replaced by a flat value and left out of the loss, so a region is
  coloured from its own content rather than from a neighbour that happens to sit beside it in the key.

The loss is L1 on ab (+ optionally CIEDE2000, Sharma, Wu & Dalal 2005, via :mod:`framecolor.ciede2000`).
The prior for what the keys do not show: training starts from the base model (the bundled one by default)
with its batch-norm statistics frozen, and the weights are pulled towards the base's by the L2-SP penalty
``alpha/2 * ||w - w0||^2`` (Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks", ICML 2018). The learning rate decays along a half cosine over the planned steps
(Loshchilov & Hutter, "SGDR", ICLR 2017). Measurements of these choices: benchmarks/RESULTS.md,
"Issue 16: adaptation".

Reproducibility: the seed fixes the samples, dropout and the order of everything; the same seed and the
same number of steps give the same weights. With a time budget the step count is set from the speed of the
first steps on this machine (recorded in the checkpoint; pass ``steps`` to repeat it exactly).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import MediaError, UserError
from .io.paths import KEY_IMAGE_EXTENSIONS

log = logging.getLogger("framecolor")

DEFAULT_MINUTES = 3.0
MIN_USEFUL_STEPS = 100  # below this the keys barely show in the output (RESULTS.md, issue 16: adaptation)
CALIBRATION_STEPS = 4  # steps timed to turn a budget in minutes into a step count
GRAY_CHROMA = 6.0  # Lab chroma: a key whose 99.5th percentile stays below this has no colour in it
STORE_SHORT_SIDE = 512  # keys are kept at most this large (short side): enough for 2x zoomed crops


@dataclass(frozen=True)
class AdaptSettings:
    """Everything an adaptation depends on besides the keys and the base model (part of the cache key)."""

    minutes: float = DEFAULT_MINUTES  # time budget; ignored when ``steps`` is given
    steps: int | None = None  # exact number of steps (reproducible across machines)
    seed: int = 0
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    l2sp: float = 0.01  # alpha of the L2-SP penalty towards the base weights (0: none)
    ciede_weight: float = 0.0  # weight of the CIEDE2000 loss beside L1 (0: L1 only)
    from_scratch: bool = False  # random initialisation with the base's architecture (no prior; measured only)
    min_scale: float = 0.5
    max_scale: float = 2.0
    cutout: float = 0.5  # probability of cut-outs in a sample
    jitter: float = 0.05  # L jitter: contrast 1 +- j, shift +- 40 j L units, gamma exp(+- j)
    generic: float = 0.0  # share of each batch that is generic content (KeySampler.generic)
    neutral_fill: float = 0.5  # probability of repainting a view's blank paper as a gray surface (KeySampler)

    def __post_init__(self):
        if self.steps is None and not self.minutes > 0:
            raise UserError(f"--minutes must be positive (got {self.minutes})")
        if self.steps is not None and self.steps < 1:
            raise UserError(f"--steps must be at least 1 (got {self.steps})")
        if self.batch < 1 or self.crop < 32:
            raise UserError("adaptation needs a batch of at least 1 and crops of at least 32 pixels")
        if self.l2sp < 0 or self.ciede_weight < 0:
            raise UserError("--l2sp and --ciede-weight must be >= 0")

    def to_json(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ keys
@dataclass
class Key:
    """A coloured key: its name (file name, or a label for in-memory images), sha256, and RGB uint8 image."""

    name: str
    sha256: str
    rgb: np.ndarray


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_array(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.shape}{a.dtype}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _to_uint8_rgb(img: np.ndarray, name: str) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise UserError(f"key {name}: expected an (H, W, 3) RGB image, got shape {img.shape}")
    img = img[..., :3]
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def check_colour(key: Key) -> None:
    """UserError when the key has no colour in it (a gray image teaches nothing but gray)."""
    import cv2

    from .color import rgb_to_lab

    small = key.rgb
    if min(small.shape[:2]) > 256:  # a thumbnail is enough to tell
        s = 256 / min(small.shape[:2])
        small = cv2.resize(small, (max(1, round(small.shape[1] * s)), max(1, round(small.shape[0] * s))),
                           interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab(small)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    if float(np.percentile(chroma, 99.5)) < GRAY_CHROMA:
        raise UserError(f"key {key.name} has no colour in it (a gray image): adaptation learns the show's "
                        "colours from coloured keys")
    if min(key.rgb.shape[:2]) < 32:
        raise UserError(f"key {key.name} is too small ({key.rgb.shape[1]}x{key.rgb.shape[0]}); keys need at "
                        "least 32 pixels on each side")


def _key_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in KEY_IMAGE_EXTENSIONS)
        if not files:
            raise UserError(f"{path}: folder holds no key images (png, jpg, tif, bmp, webp)")
        return files
    if path.is_file():
        return [path]
    raise UserError(f"{path}: no such key file or folder")


def load_keys(items: Iterable) -> list[Key]:
    """Keys from paths (images, or folders of them), in-memory RGB arrays, or framecolor.hints.references.Reference
    objects; every key read and checked for colour, so bad input stops here, before any training."""
    from .io.images import read_image

    keys: list[Key] = []
    for item in items:
        if hasattr(item, "load") and hasattr(item, "path"):  # hints.Reference
            if item.path is not None:
                item = item.path
            else:
                img = _to_uint8_rgb(item.load(), item.name)
                keys.append(Key(item.name, _sha256_array(img), img))
                continue
        if isinstance(item, (str, os.PathLike)):
            for f in _key_files(Path(item)):
                try:
                    img = read_image(f)
                except UserError:
                    raise
                except Exception as exc:  # decoders raise many types for broken files
                    raise MediaError(f"{f}: cannot read this key image ({exc})") from None
                keys.append(Key(f.name, _sha256_file(f), _to_uint8_rgb(img, f.name)))
        else:
            img = _to_uint8_rgb(item, f"#{len(keys)}")
            keys.append(Key(f"key {len(keys)}", _sha256_array(img), img))
    if not keys:
        raise UserError("adaptation needs at least one coloured key")
    for k in keys:
        check_colour(k)
    return keys


# ------------------------------------------------------------------------------------------ samples
class KeySampler:
    """Random augmented (L, ab, loss mask) views of the keys (see the module docstring), drawn with a numpy
    Generator the caller owns. L and ab are network-scaled float32 (1|2, crop, crop); the mask is 0 in
    cut-outs."""

    def __init__(self, keys: Sequence[Key], crop: int = 128, render_size: int = 256, min_scale: float = 0.5,
                 max_scale: float = 2.0, cutout: float = 0.5, jitter: float = 0.05, neutral_fill: float = 0.0):
        from .upsample import resize

        self.crop, self.render_size = crop, render_size
        self.min_scale, self.max_scale, self.cutout, self.jitter = min_scale, max_scale, cutout, jitter
        self.neutral_fill = neutral_fill
        self.images = []
        for k in keys:
            h, w = k.rgb.shape[:2]
            s = min(1.0, STORE_SHORT_SIDE / min(h, w))
            img = k.rgb if s == 1.0 else resize(k.rgb, max(1, round(w * s)), max(1, round(h * s)), "area")
            self.images.append(np.ascontiguousarray(img))

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import cv2

        from .color import normalize_ab, normalize_L, rgb_to_lab

        img = self.images[int(rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        # scale relative to the render size: 1 means the key is seen as a frame of the episode would be
        scale = math.exp(rng.uniform(math.log(self.min_scale), math.log(self.max_scale)))
        f = max(self.render_size * scale, self.crop) / min(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        scaled = cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        H, W = scaled.shape[:2]
        c = self.crop
        # small affine warp around a random centre: rotation +-10 degrees, shear +-0.1, aspect +-10%
        angle = math.radians(rng.uniform(-10, 10))
        shear = rng.uniform(-0.1, 0.1)
        aspect = math.exp(rng.uniform(-0.1, 0.1))
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        A = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([aspect, 1.0 / aspect])
        half = c / 2
        cx = rng.uniform(min(half, W / 2), max(W - half, W / 2))
        cy = rng.uniform(min(half, H / 2), max(H - half, H / 2))
        M = np.concatenate([A, (np.array([cx, cy]) - A @ np.array([half, half]))[:, None]], axis=1)
        view = cv2.warpAffine(scaled, M.astype(np.float64), (c, c), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT_101)
        if rng.random() < 0.5:
            view = view[:, ::-1]
        lab = rgb_to_lab(np.ascontiguousarray(view))
        L = lab[..., 0]
        # lightness and contrast jitter on the input only; the target keeps the key's colours
        # (mild: a cel colour keeps its gray level from frame to frame, and that level is the strongest cue)
        j = self.jitter
        contrast, shift, gamma = rng.uniform(1 - j, 1 + j), rng.uniform(-40 * j, 40 * j), math.exp(rng.uniform(-j, j))
        L = np.clip(50.0 + contrast * (L - 50.0) + shift, 0.0, 100.0)
        L = 100.0 * (L / 100.0) ** gamma
        if self.neutral_fill and rng.random() < self.neutral_fill:
            # the key's blank paper (white, no colour: a model sheet's background) repainted as a shaded gray
            # surface of random lightness, still colourless in the target: what the keys do not show is
            # taught to stay neutral instead of taking the nearest key colour
            paper = (L > 85) & (np.hypot(lab[..., 1], lab[..., 2]) < 4)
            if paper.mean() > 0.05:
                yy, xx = np.mgrid[0:c, 0:c].astype(np.float32) / c
                g = rng.uniform(-30, 30, 2)
                fill = rng.uniform(15, 90) + g[0] * (yy - 0.5) + g[1] * (xx - 0.5)
                L = np.where(paper, np.clip(fill, 0, 100), L)
        mask = np.ones((c, c), np.float32)
        if rng.random() < self.cutout:
            for _ in range(int(rng.integers(1, 3))):
                ch, cw = (int(rng.integers(c // 8, c // 3 + 1)) for _ in range(2))
                y0, x0 = int(rng.integers(0, c - ch + 1)), int(rng.integers(0, c - cw + 1))
                L[y0:y0 + ch, x0:x0 + cw] = rng.uniform(0, 100)
                mask[y0:y0 + ch, x0:x0 + cw] = 0.0
        L_in = normalize_L(L.astype(np.float32))[None]
        ab = np.clip(normalize_ab(lab[..., 1:]), -1, 1).transpose(2, 0, 1)
        return (np.ascontiguousarray(L_in, np.float32), np.ascontiguousarray(ab, np.float32), mask[None])

    def generic(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A generic cartoon-like view: flat shapes of random colours, shaded, some outlined. Their colours are
        random, so the best answer for content like them is the conditional median (near neutral): mixed into
        the batches, they teach the model not to paint what the keys do not show in the keys' colours."""
        import cv2

        from .color import normalize_ab, normalize_L, rgb_to_lab

        c = self.crop
        img = np.empty((c, c, 3), np.uint8)
        img[:] = rng.integers(0, 256, 3)
        for _ in range(int(rng.integers(3, 9))):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            centre = tuple(int(v) for v in rng.integers(0, c, 2))
            if rng.random() < 0.5:
                axes = tuple(int(v) for v in rng.integers(c // 16, c // 2, 2))
                cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
            else:
                pts = (rng.normal(0, c / 5, (int(rng.integers(3, 7)), 2)) + centre).astype(np.int32)
                cv2.fillPoly(img, [pts], colour)
                if rng.random() < 0.5:
                    cv2.polylines(img, [pts], True, (20, 20, 20), int(rng.integers(1, 3)))
        yy, xx = np.mgrid[0:c, 0:c].astype(np.float32) / c
        g = rng.uniform(-0.3, 0.3, 2)
        shade = np.clip(1.0 + g[0] * (yy - 0.5) + g[1] * (xx - 0.5), 0.5, 1.2)[..., None]
        img = np.clip(img * shade, 0, 255).astype(np.uint8)
        lab = rgb_to_lab(img)
        L = normalize_L(lab[..., 0])[None].astype(np.float32)
        ab = np.clip(normalize_ab(lab[..., 1:]), -1, 1).transpose(2, 0, 1).astype(np.float32)
        return np.ascontiguousarray(L), np.ascontiguousarray(ab), np.ones((1, c, c), np.float32)

    def batch(self, rng: np.random.Generator, size: int, generic: int = 0):
        """``size`` views; the last ``generic`` of them generic content (see :meth:`generic`)."""
        import torch

        items = [self.sample(rng) for _ in range(size - generic)] + [self.generic(rng) for _ in range(generic)]
        return tuple(torch.from_numpy(np.stack([it[i] for it in items])) for i in range(3))


# ------------------------------------------------------------------------------------------ training
def _freeze_batchnorm(model) -> None:
    """Batch norm layers keep the base model's statistics (eval mode); their scale and shift still train."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def model_sha256(path: Path) -> str:
    return _sha256_file(Path(path))


def adapt_model(keys: Sequence[Key], base=None, settings: AdaptSettings | None = None, progress: bool = True,
                threads: int | None = None):
    """Fine-tune a copy of ``base`` (checkpoint path, None: the bundled model) on ``keys``; returns
    (model in eval mode, info dict for the checkpoint)."""
    import torch

    s = settings or AdaptSettings()
    # default: half the cores. On the 2-core machine two threads made a step 3x slower than one whenever
    # anything else ran (benchmarks/RESULTS.md, issue 16: adaptation)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))
    try:
        return _adapt_model(keys, base, s, progress)
    finally:
        torch.set_num_threads(before)  # the colouring that follows keeps its own setting


def _adapt_model(keys: Sequence[Key], base, s: AdaptSettings, progress: bool):
    import torch

    from .checkpoint import load_generator, resolve_model_path
    from .ciede2000 import delta_e_ciede2000
    from .color import AB_SCALE
    from .models import build_generator

    base_path = resolve_model_path(base)
    base_model = load_generator(base_path)
    if base_model.config.in_channels != 1:
        raise UserError(f"{base_path}: adaptation needs an automatic (L -> ab) model, not a hint-conditioned one")
    torch.manual_seed(s.seed)
    model = build_generator(base_model.config) if s.from_scratch else base_model
    anchor = None
    if not s.from_scratch and s.l2sp > 0:
        anchor = [p.detach().clone() for p in model.parameters()]
    sampler = KeySampler(keys, crop=s.crop, render_size=model.config.render_size, min_scale=s.min_scale,
                         max_scale=s.max_scale, cutout=s.cutout, jitter=s.jitter,
                         neutral_fill=s.neutral_fill)
    rng = np.random.default_rng(s.seed)
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, betas=(0.5, 0.999))
    model.train()
    if not s.from_scratch:
        _freeze_batchnorm(model)

    planned = s.steps or CALIBRATION_STEPS  # with a budget: set once the first steps are timed
    budget = None if s.steps else s.minutes * 60.0
    from tqdm import tqdm

    bar = tqdm(total=planned, unit="step", desc="adapting", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    t_calib = None
    step = 0
    last = {}
    try:
        while step < planned:
            # constant while a budget is being timed, then a half-cosine decay to the planned end; the same in
            # both modes, so steps=N repeats a budgeted run that made N steps
            progress_ = max(0, step - CALIBRATION_STEPS) / max(1, planned - CALIBRATION_STEPS)
            for group in opt.param_groups:
                group["lr"] = s.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress_)))
            L, ab, mask = sampler.batch(rng, s.batch, generic=int(round(s.generic * s.batch)))
            pred = model(L)
            valid = mask.sum().clamp_min(1.0)
            l1 = ((pred - ab).abs() * mask).sum() / (2 * valid)
            loss = l1
            if s.ciede_weight > 0:
                lab = lambda x: torch.cat([(L + 1.0) * 50.0, x * AB_SCALE], dim=1)  # noqa: E731
                de = delta_e_ciede2000(lab(pred), lab(ab), channel_dim=-3)
                loss = loss + s.ciede_weight * (de * mask[:, 0]).sum() / valid
            if anchor is not None:
                sp = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
                loss = loss + 0.5 * s.l2sp * sp
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if budget is not None and step == 1:
                t_calib = time.perf_counter()  # the first step pays for allocations: time from the second
            if budget is not None and step == CALIBRATION_STEPS:
                per_step = (time.perf_counter() - t_calib) / (CALIBRATION_STEPS - 1)
                planned = max(CALIBRATION_STEPS, int((budget - (time.perf_counter() - t0)) / per_step) + step)
                bar.total = planned
                bar.refresh()
                if planned < MIN_USEFUL_STEPS:
                    log.warning("a budget of %.2g minute(s) allows only %d adaptation steps here; about %d are "
                                "needed for the keys to show in the output: give more --minutes", s.minutes,
                                planned, MIN_USEFUL_STEPS)
            last = {"l1": l1.item()}
            bar.update(1)
            bar.set_postfix(l1=f"{last['l1']:.4f}", refresh=False)
            # the budget is a promise: a machine that slows down mid-way stops at 1.5x (the step count is kept)
            if budget is not None and step > CALIBRATION_STEPS and time.perf_counter() - t0 > 1.5 * budget:
                log.warning("adaptation stopped after %d of %d steps: the machine slowed down", step, planned)
                break
    finally:
        bar.close()
    model.eval()
    wall = time.perf_counter() - t0
    info = {"adapted": {
        "keys": [{"name": k.name, "sha256": k.sha256} for k in keys],
        "base_model": None if s.from_scratch else {"name": base_path.name, "sha256": model_sha256(base_path)},
        "architecture_from": base_path.name,
        "steps": step, "minutes": None if s.steps else s.minutes, "seed": s.seed,
        "settings": s.to_json(), "wall_seconds": round(wall, 1), "final_l1": round(last.get("l1", float("nan")), 5),
    }}
    log.info("adapted on %d key(s): %d steps in %.1f s", len(keys), step, wall)
    return model, info


def adapt(keys, output, base=None, minutes: float = DEFAULT_MINUTES, steps: int | None = None, seed: int = 0,
          progress: bool = True, threads: int | None = None, **settings) -> Path:
    """Python API: adapt a generator to ``keys`` (image paths, folders of images, RGB arrays) and write it to
    ``output`` (.safetensors, atomically); returns the path. ``base``: the starting checkpoint (None: the
    bundled model). Further keyword arguments are :class:`AdaptSettings` fields."""
    from .checkpoint import save_generator

    s = AdaptSettings(minutes=minutes, steps=steps, seed=seed, **settings)
    output = Path(output)
    if output.suffix != ".safetensors":
        raise UserError(f"{output}: the adapted model is written as a .safetensors file")
    if output.is_dir():
        raise UserError(f"{output}: is a folder; give a file name ending in .safetensors")
    loaded = load_keys(keys if isinstance(keys, (list, tuple)) else [keys])
    log.info("adapting on %d key(s): %s", len(loaded), ", ".join(k.name for k in loaded[:10]))
    model, info = adapt_model(loaded, base, s, progress=progress, threads=threads)
    return save_generator(output, model, info)


# ------------------------------------------------------------------------------------------ cache
def cache_name(keys: Sequence[Key], base_path: Path, settings: AdaptSettings) -> str:
    """File name of the adapted model for these keys, base model and settings (order of keys ignored)."""
    ident = {"keys": sorted(k.sha256 for k in keys), "base": model_sha256(base_path),
             "settings": settings.to_json()}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"adapted-{digest}.safetensors"


def cached_adaptation(keys, cache_dir, base=None, settings: AdaptSettings | None = None, progress: bool = True,
                      threads: int | None = None) -> Path:
    """The adapted model for ``keys`` (anything :func:`load_keys` takes) from ``cache_dir``, adapting and
    writing it there first when absent. The file name hashes the keys, the base model and the settings, so
    every episode coloured with the same keys reuses it."""
    from .checkpoint import resolve_model_path, save_generator

    s = settings or AdaptSettings()
    loaded = load_keys(keys)
    base_path = resolve_model_path(base)
    path = Path(cache_dir) / cache_name(loaded, base_path, s)
    if path.is_file():
        log.info("reusing adapted model %s (%d key(s), base %s)", path, len(loaded), base_path.name)
        return path
    log.info("adapting on %d key(s) (base %s); the adapted model is cached as %s", len(loaded), base_path.name,
             path)
    model, info = adapt_model(loaded, base_path, s, progress=progress, threads=threads)
    return save_generator(path, model, info)


def default_cache_dir() -> Path:
    """Where the Python API caches adapted models: $XDG_CACHE_HOME/framecolor/adapted (~/.cache/...)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "framecolor" / "adapted"


def adapted_for_run(references: Sequence, base, cache_dir, settings: AdaptSettings | None = None,
                    progress: bool = True, threads: int | None = None) -> Path:
    """``run --adapt`` / ``colorize_frames(adapt=True)``: the model adapted on the run's keys (reference
    objects, paths or images), from ``cache_dir`` when it is there; it then colours whatever the keys do not
    cover (keyless shots) as the automatic model."""
    if not references:
        raise UserError("--adapt learns from the keys: give them with --reference (adapt=True needs references)")
    path = cached_adaptation(list(references), cache_dir, base, settings, progress=progress, threads=threads)
    log.info("automatic colouring (shots without a key) by the adapted model %s", path.name)
    return path
