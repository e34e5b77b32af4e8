"""Training data: sources of colour frames -> random (L, ab) pairs for colourisation training.

A source is given by a spec string ``PATH[:domain][@A:B:STEP][*WEIGHT]``:

* ``PATH``: a video file (decoded with PyAV), a folder of frames (PNG/JPEG/TIFF/BMP, 8 or 16 bit, sorted by
  name) or one still image;
* ``domain``: ``cartoon`` or ``live-action`` (the tag is carried with every sample; default: untagged);
* ``@A:B:STEP``: frames ``A`` up to ``B`` exclusive (Python slice rules; each part may be empty), every
  ``STEP``-th; ``STEP`` may also be ``changes`` to keep a frame only when its content differs enough from
  the last kept one (sampling at scene changes and large motion rather than every N frames);
* ``*WEIGHT``: how often this source is drawn relative to the others (default 1; sources are drawn by
  weight, not by size, so a short clip is not drowned by a long one).

Special sources: ``synthetic[:domain]`` (unlimited cartoons from :mod:`training.synthetic`, domain
``cartoon``) and ``skimage[:domain]`` (scikit-image's bundled colour photographs, ``live-action``).

Memory: the frames of file sources are decoded once, resized so that the short side is ``short_side``
pixels (the scale the inference pipeline renders at) and kept in memory as uint8.  These training sets are
small (a 1280x720 clip of 100 frames is ~35 MB at short side 256); a source over ``max_cache_bytes`` is
refused with a message suggesting a frame step.  Crops, flips and the Lab conversion happen per sample.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from framecolor.color import normalize_ab, normalize_L, rgb_to_lab
from framecolor.errors import MediaError, UserError

DOMAINS = ("cartoon", "live-action")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".y4m", ".gif"}
# scikit-image's colour photographs that ship with the package (no download needed).
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DEFAULT_MAX_CACHE_BYTES = 2 << 30

_RANGE = re.compile(r"^(\d*)(?::(\d*)(?::(\d+|changes))?)?$")
_WEIGHT = re.compile(r"^(.*)\*(\d+(?:\.\d*)?|\.\d+)$")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--data`` spec.  ``kind`` is 'synthetic', 'skimage' or 'path' (video/folder/image)."""

    kind: str
    path: str | None = None
    domain: str | None = None
    start: int | None = None
    stop: int | None = None
    step: int | str = 1  # int, or "changes"
    weight: float = 1.0
    text: str = ""  # the spec as given, for logs and checkpoint info

    def frame_indices(self, n_frames: int) -> list[int]:
        step = self.step if isinstance(self.step, int) else 1
        return list(range(n_frames))[slice(self.start, self.stop, step)]


def parse_spec(text: str) -> SourceSpec:
    """``PATH[:domain][@A:B:STEP][*WEIGHT]`` -> :class:`SourceSpec`; UserError naming the problem otherwise."""
    original = text
    if not text or not text.strip():
        raise UserError("empty --data spec")
    weight = 1.0
    m = _WEIGHT.match(text)
    if m:
        text, weight = m.group(1), float(m.group(2))
        if weight <= 0:
            raise UserError(f"--data {original!r}: weight must be positive")
    start = stop = None
    step: int | str = 1
    has_range = False
    if "@" in text:
        head, _, rng_text = text.rpartition("@")
        r = _RANGE.match(rng_text)
        if r is None:
            if not os.path.exists(text):
                raise UserError(f"--data {original!r}: malformed frame range {rng_text!r} "
                                "(expected @A:B or @A:B:STEP, STEP an integer or 'changes')")
        else:
            text, has_range = head, True
            start = int(r.group(1)) if r.group(1) else None
            stop = int(r.group(2)) if r.group(2) else None
            if r.group(3) == "changes":
                step = "changes"
            elif r.group(3):
                step = int(r.group(3))
                if step < 1:
                    raise UserError(f"--data {original!r}: frame step must be at least 1")
            if start is not None and stop is not None and stop <= start:
                raise UserError(f"--data {original!r}: empty frame range {start}:{stop}")
    domain = None
    head, sep, tail = text.rpartition(":")
    # A trailing ':word' (no path separator in it) is a domain; 'C:\\x' style drive letters are not.
    if sep and tail and "/" not in tail and "\\" not in tail and not os.path.exists(text):
        if tail not in DOMAINS:
            raise UserError(f"--data {original!r}: unknown domain {tail!r} (known: {', '.join(DOMAINS)})")
        text, domain = head, tail
    if not text:
        raise UserError(f"--data {original!r}: missing path")
    if text in ("synthetic", "skimage"):
        if has_range:
            raise UserError(f"--data {original!r}: a frame range applies to videos and frame folders only")
        default = "cartoon" if text == "synthetic" else "live-action"
        return SourceSpec(kind=text, domain=domain or default, weight=weight, text=original)
    return SourceSpec(kind="path", path=text, domain=domain, start=start, stop=stop, step=step,
                      weight=weight, text=original)


# ------------------------------------------------------------------------------------------ reading frames
def resize_short_side(rgb: np.ndarray, short_side: int | None) -> np.ndarray:
    """Resize so that min(H, W) == short_side (area filter down, cubic up); None keeps the size."""
    if short_side is None:
        return rgb
    import cv2

    h, w = rgb.shape[:2]
    s = short_side / min(h, w)
    if abs(s - 1) < 1e-9:
        return rgb
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Any 8/16-bit gray/RGB/RGBA image file -> RGB uint8 (H, W, 3)."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise MediaError(f"{path}: cannot be read as an image")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)


def _change_score(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of 32x32 thumbnails (0..255): large at cuts and fast motion."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _thumb(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA)


class _FrameCollector:
    """Keeps selected frames (resized, uint8) and enforces the memory bound."""

    def __init__(self, spec: SourceSpec, short_side: int | None, max_bytes: int, change_threshold: float):
        self.spec, self.short_side, self.max_bytes = spec, short_side, max_bytes
        self.change_threshold = change_threshold
        self.frames: list[np.ndarray] = []
        self.indices: list[int] = []
        self.nbytes = 0
        self._last_thumb = None

    def wanted(self, index: int) -> bool:
        s = self.spec
        if s.start is not None and index < s.start:
            return False
        if s.stop is not None and index >= s.stop:
            return False
        if isinstance(s.step, int):
            return (index - (s.start or 0)) % s.step == 0
        return True

    def done(self, index: int) -> bool:
        return self.spec.stop is not None and index >= self.spec.stop

    def add(self, index: int, rgb: np.ndarray) -> None:
        if self.spec.step == "changes":
            thumb = _thumb(rgb)
            if self._last_thumb is not None and _change_score(thumb, self._last_thumb) < self.change_threshold:
                return
            self._last_thumb = thumb
        frame = np.ascontiguousarray(resize_short_side(rgb, self.short_side))
        self.nbytes += frame.nbytes
        if self.nbytes > self.max_bytes:
            raise UserError(f"--data {self.spec.text!r}: frames exceed the {self.max_bytes >> 20} MiB cache; "
                            "select fewer frames (@A:B:STEP) or a smaller short side")
        self.frames.append(frame)
        self.indices.append(index)


def _read_video(c: _FrameCollector, path: Path) -> None:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot be opened as a video ({exc})") from None
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads in the decoder
        index = 0
        try:
            for frame in container.decode(stream):
                if c.done(index):
                    break
                if c.wanted(index):
                    c.add(index, frame.to_ndarray(format="rgb24"))
                index += 1
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: decoding failed at frame {index} ({exc})") from None


def _folder_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@dataclass
class FrameSource:
    """Cached colour frames of one spec (or an unlimited generator for ``synthetic``)."""

    spec: SourceSpec
    frames: list[np.ndarray] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)  # original frame numbers of the cached frames
    short_side: int | None = 256

    @property
    def domain(self) -> str | None:
        return self.spec.domain

    @property
    def unlimited(self) -> bool:
        return self.spec.kind == "synthetic"

    def __len__(self) -> int:
        return len(self.frames)

    def draw(self, rng: np.random.Generator, min_size: int) -> np.ndarray:
        """One RGB uint8 frame with short side >= min_size."""
        if self.unlimited:
            from .synthetic import make_frame

            side = max(self.short_side or 256, min_size)
            return make_frame(int(rng.integers(2**62)), (side, side))
        frame = self.frames[int(rng.integers(len(self.frames)))]
        if min(frame.shape[:2]) < min_size:
            frame = resize_short_side(frame, min_size)
        return frame


def load_source(spec: SourceSpec | str, short_side: int | None = 256,
                max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES, change_threshold: float = 12.0) -> FrameSource:
    """Decode (once) and cache the frames of a spec.  Videos use PyAV with threaded decoding."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    if spec.kind == "synthetic":
        return FrameSource(spec, short_side=short_side)
    c = _FrameCollector(spec, short_side, max_cache_bytes, change_threshold)
    if spec.kind == "skimage":
        import skimage.data

        for i, name in enumerate(SKIMAGE_PHOTOS):
            c.add(i, getattr(skimage.data, name)()[:, :, :3])
    else:
        path = Path(spec.path)
        if not path.exists():
            raise UserError(f"--data {spec.text!r}: {path} does not exist")
        if path.is_dir():
            files = _folder_files(path)
            if not files:
                raise UserError(f"--data {spec.text!r}: folder holds no image files")
            for i, f in enumerate(files):
                if c.done(i):
                    break
                if c.wanted(i):
                    c.add(i, read_image(f))
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            if spec.start not in (None, 0):
                raise UserError(f"--data {spec.text!r}: a still image has only frame 0")
            c.add(0, read_image(path))
        else:
            _read_video(c, path)
    if not c.frames:
        raise UserError(f"--data {spec.text!r}: the frame range selects no frames")
    return FrameSource(spec, c.frames, c.indices, short_side)


# ------------------------------------------------------------------------------------------ pairs
def rgb_to_pair(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB (H, W, 3) -> network input L (1, H, W) and target ab (2, H, W), both float32 in [-1, 1]."""
    lab = rgb_to_lab(rgb)
    L = normalize_L(lab[:, :, 0])[None]
    ab = np.clip(normalize_ab(lab[:, :, 1:]), -1, 1).transpose(2, 0, 1)
    return np.ascontiguousarray(L, np.float32), np.ascontiguousarray(ab, np.float32)


def rotate_hue(ab: np.ndarray, angle: float) -> np.ndarray:
    """Rotate the target's hue by ``angle`` radians in the ab plane (chroma and L unchanged; clipped to [-1, 1]).

    Colour augmentation of the target only: for a material whose grey level does not tell its hue (paving,
    walls, clothes), hue-rotated copies make the L1-optimal answer (the per-pixel median) move towards
    neutral, while colours the grey level does pin down (sky, skin, foliage in the unrotated samples) stay.
    """
    c, s = np.cos(angle), np.sin(angle)
    a, b = ab[0], ab[1]
    out = np.stack([c * a - s * b, s * a + c * b])
    return np.ascontiguousarray(np.clip(out, -1, 1), np.float32)


def random_crop(rgb: np.ndarray, crop: int, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
    h, w = rgb.shape[:2]
    y = int(rng.integers(h - crop + 1))
    x = int(rng.integers(w - crop + 1))
    out = rgb[y:y + crop, x:x + crop]
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def stack_samples(items: list[tuple[np.ndarray, np.ndarray, str | None]]):
    """(input, target, domain) samples -> (inputs, targets) as batched float32 torch tensors, and the domains:
    the batch form every training data set (plain, hints, line art) hands to the training loop."""
    import torch

    x = torch.from_numpy(np.stack([i[0] for i in items]))
    y = torch.from_numpy(np.stack([i[1] for i in items]))
    return x, y, [i[2] for i in items]


class PairDataset:
    """Random (L, ab) training pairs drawn from several sources by weight.

    Sampling is driven by an explicit ``numpy.random.Generator`` that the caller owns (and saves with a
    checkpoint), so a run is reproducible and resumable without epoch bookkeeping.
    """

    def __init__(self, sources: Sequence[FrameSource], crop: int = 256, flip: bool = True,
                 hue_jitter: float = 0.0, hue_jitter_domain: str | None = "live-action"):
        if not sources:
            raise UserError("no training data: give at least one --data spec")
        self.sources = list(sources)
        self.crop = int(crop)
        self.flip = flip
        self.hue_jitter = float(hue_jitter)
        self.hue_jitter_domain = hue_jitter_domain
        w = np.array([s.spec.weight for s in self.sources], np.float64)
        self.probabilities = w / w.sum()

    @classmethod
    def from_specs(cls, specs: Sequence[str], crop: int = 256, flip: bool = True, short_side: int | None = 256,
                   max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES, hue_jitter: float = 0.0,
                   hue_jitter_domain: str | None = "live-action") -> "PairDataset":
        if short_side is not None and crop > short_side:
            raise UserError(f"crop {crop} is larger than the frames' short side {short_side}")
        return cls([load_source(s, short_side, max_cache_bytes) for s in specs], crop, flip,
                   hue_jitter, hue_jitter_domain)

    def pick_source(self, rng: np.random.Generator) -> FrameSource:
        """One source, drawn by weight."""
        return self.sources[int(rng.choice(len(self.sources), p=self.probabilities))]

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str | None]:
        """One pair: L (1, crop, crop), ab (2, crop, crop), domain."""
        source = self.pick_source(rng)
        rgb = random_crop(source.draw(rng, self.crop), self.crop, rng, self.flip)
        L, ab = rgb_to_pair(rgb)
        # Drawn only when enabled, so runs without it keep their exact sample sequence.
        if self.hue_jitter > 0 and self.hue_jitter_domain in (None, source.domain) and rng.random() < self.hue_jitter:
            ab = rotate_hue(ab, float(rng.uniform(0.0, 2.0 * np.pi)))
        return L, ab, source.domain

    def batch(self, rng: np.random.Generator, size: int):
        """(L (B,1,C,C), ab (B,2,C,C)) float32 torch tensors and the list of domains."""
        return stack_samples([self.sample(rng) for _ in range(size)])

    def describe(self) -> list[str]:
        out = []
        for s in self.sources:
            n = "unlimited" if s.unlimited else f"{len(s)} frames"
            out.append(f"{s.spec.text} ({s.domain or 'untagged'}, {n})")
        return out


class DerivedPairDataset:
    """Samples built from a :class:`PairDataset`'s frames (hint maps, line art...): the same sources, weights,
    crop and flip, and the same ``batch(rng, size)`` form, so the training loop takes any of them.
    Subclasses define ``sample(rng)`` -> (input, target, domain) and the suffix ``describe`` adds."""

    describe_suffix = ""

    def __init__(self, base: PairDataset):
        self.base = base
        self.sources = base.sources
        self.crop = base.crop
        self.flip = base.flip
        self.probabilities = base.probabilities

    def pick_source(self, rng: np.random.Generator) -> FrameSource:
        return self.base.pick_source(rng)

    def batch(self, rng: np.random.Generator, size: int):
        return stack_samples([self.sample(rng) for _ in range(size)])

    def describe(self) -> list[str]:
        return [f"{d}{self.describe_suffix}" for d in self.base.describe()]


def time_split(n_frames: int, parts: Sequence[float] = (0.8, 0.2), gap: int = 20) -> list[range]:
    """Split frames 0..n_frames-1 by time into consecutive ranges, proportional to ``parts``.

    ``gap`` frames are left unused between consecutive parts, so any frame of one part is more than
    ``gap`` frames away from every frame of another (no evaluated frame or its near neighbours is
    trained on).  Example: ``time_split(132, (0.75, 0.25), gap=20)`` -> [range(0, 84), range(104, 132)].
    """
    if gap < 0:
        raise ValueError("gap must be >= 0")
    if not parts or any(p <= 0 for p in parts):
        raise ValueError("parts must be positive")
    usable = n_frames - gap * (len(parts) - 1)
    if usable < len(parts):
        raise ValueError(f"{n_frames} frames cannot be split into {len(parts)} parts with gap {gap}")
    total = float(sum(parts))
    bounds = np.rint(np.cumsum([0.0, *parts]) / total * usable).astype(int)
    ranges = []
    for i in range(len(parts)):
        a, b = bounds[i] + i * gap, bounds[i + 1] + i * gap
        if b <= a:
            raise ValueError(f"part {i} of the split is empty")
        ranges.append(range(int(a), int(b)))
    return ranges
