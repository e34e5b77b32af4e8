"""Synthetic cartoons: unlimited colour frames and moving-layer sequences, deterministic from a seed.

Each scene is a sky gradient, a few hills, flat-coloured shapes (polygons, ellipses, smooth blobs) with
dark anti-aliased outlines of varying weight, cel-shading bands and soft gradients inside some shapes, and
sometimes a white speech bubble with dark text strokes.  A sequence moves the layers over the background
at their own speeds (far layers slower: parallax) and may contain hard cuts to new scenes.

Everything is drawn with OpenCV polygon filling on the bounding box of each shape (a 256x256 frame takes a
few milliseconds), and every random choice comes from one ``numpy.random.Generator`` seeded by the caller,
so ``make_frame(seed)`` is the same image on every machine with the same OpenCV.  The palettes are the
flat, saturated-but-not-neon colours of cel animation: skin tones, foliage greens, sky and cloth blues,
warm reds, yellows, browns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Base colours (sRGB uint8) grouped by what they usually paint; jittered per scene.
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "skin": ((255, 224, 189), (241, 194, 150), (224, 172, 105), (198, 134, 66), (141, 85, 36)),
    "green": ((106, 168, 79), (56, 118, 29), (147, 196, 125), (76, 153, 40), (34, 120, 60)),
    "blue": ((61, 133, 198), (31, 78, 121), (111, 168, 220), (30, 100, 190), (70, 130, 180)),
    "red": ((204, 51, 51), (225, 85, 60), (170, 40, 50)),
    "yellow": ((241, 194, 50), (250, 215, 100), (225, 175, 35)),
    "orange": ((230, 145, 56), (240, 120, 40)),
    "purple": ((142, 124, 195), (103, 78, 167), (160, 90, 160)),
    "brown": ((120, 80, 40), (153, 102, 51), (95, 62, 35)),
    "pink": ((234, 153, 153), (213, 100, 150)),
    "gray": ((205, 205, 210), (125, 125, 130)),
}
# How often each group is drawn for an object (foliage, sky-ish blues and skin dominate cartoons).
_GROUP_WEIGHTS = {"skin": 3, "green": 3, "blue": 3, "red": 2, "yellow": 2, "orange": 1, "purple": 1,
                  "brown": 2, "pink": 1, "gray": 1}
# Sky gradients: (top, horizon).
_SKIES = (
    ((70, 130, 205), (185, 220, 245)),
    ((40, 90, 170), (150, 200, 235)),
    ((95, 75, 150), (245, 165, 95)),  # dusk
    ((120, 170, 220), (230, 235, 215)),  # hazy
    ((25, 35, 80), (80, 70, 130)),  # night
)
_GROUND = ("green", "green", "brown", "yellow", "gray")

_SHIFT = 4  # fixed-point bits for sub-pixel polygon coordinates in cv2 drawing
_ONE = 1 << _SHIFT


@dataclass
class Layer:
    """One outlined shape: polygon vertices relative to ``centre`` (pixels), drawn at ``centre + t * velocity``."""

    points: np.ndarray  # (N, 2) float32, x/y relative to the centre
    centre: np.ndarray  # (2,) float32
    velocity: np.ndarray  # (2,) pixels per frame
    colour: np.ndarray  # (3,) float32 RGB 0..255
    outline: tuple[int, int, int]
    outline_width: int  # 0: no outline
    shade_offset: np.ndarray | None = None  # cel band: the part of the shape not covered by itself shifted
    shade_factor: float = 0.7
    gradient: np.ndarray | None = None  # (dx, dy) unit direction of a soft light ramp
    gradient_strength: float = 0.0
    strokes: list[np.ndarray] = field(default_factory=list)  # text strokes (relative polylines), bubbles only
    stroke_width: int = 1


@dataclass
class Scene:
    sky_top: np.ndarray
    sky_bottom: np.ndarray
    horizon: float  # fraction of the height where the sky gradient ends
    layers: list[Layer]


def _size_hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _jitter(rng: np.random.Generator, rgb) -> np.ndarray:
    """Small per-scene variation of a palette colour: brightness and per-channel offsets."""
    c = np.asarray(rgb, np.float32) * rng.uniform(0.88, 1.08) + rng.normal(0.0, 6.0, 3)
    return np.clip(c, 0, 255).astype(np.float32)


def _pick_colour(rng: np.random.Generator, group: str | None = None) -> np.ndarray:
    if group is None:
        names = list(_GROUP_WEIGHTS)
        p = np.array([_GROUP_WEIGHTS[n] for n in names], np.float64)
        group = names[rng.choice(len(names), p=p / p.sum())]
    choices = PALETTES[group]
    return _jitter(rng, choices[rng.integers(len(choices))])


def _dark_outline(rng: np.random.Generator, colour: np.ndarray) -> tuple[int, int, int]:
    """Ink lines: near-black, or a dark version of the fill (coloured line art)."""
    if rng.random() < 0.7:
        v = int(rng.integers(10, 45))
        return (v, v, v)
    dark = colour * rng.uniform(0.2, 0.4)
    return tuple(int(x) for x in dark)


def _ellipse_points(rx: float, ry: float, angle: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = np.cos(angle), np.sin(angle)
    return np.stack([x * ca - y * sa, x * sa + y * ca], axis=1).astype(np.float32)


def _blob_points(rng: np.random.Generator, r: float, n: int = 64) -> np.ndarray:
    """A smooth closed blob: radius modulated by a few low harmonics."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = np.ones_like(t)
    for k in range(2, 5):
        rad += rng.uniform(0.0, 0.25 / (k - 1)) * np.sin(k * t + rng.uniform(0, 2 * np.pi))
    rad *= r * rng.uniform(0.7, 1.0)
    aspect = rng.uniform(0.6, 1.4)
    return np.stack([rad * np.cos(t) * aspect, rad * np.sin(t) / aspect], axis=1).astype(np.float32)


def _polygon_points(rng: np.random.Generator, r: float) -> np.ndarray:
    """A convex-ish polygon (3 to 8 corners) or an axis-tilted rectangle (buildings, boxes)."""
    if rng.random() < 0.4:
        w, h = r * rng.uniform(0.5, 1.2), r * rng.uniform(0.5, 1.5)
        pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], np.float32)
        a = rng.uniform(-0.3, 0.3)
    else:
        n = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.6, 1.0, n)
        pts = np.stack([rad * np.cos(angles), rad * np.sin(angles)], axis=1).astype(np.float32)
        a = 0.0
    ca, sa = np.cos(a), np.sin(a)
    return (pts @ np.array([[ca, sa], [-sa, ca]], np.float32)).astype(np.float32)


def _shape_layer(rng: np.random.Generator, h: int, w: int, scale: float, speed: float,
                 group: str | None = None, kind: str | None = None) -> Layer:
    s = min(h, w)
    r = s * scale * rng.uniform(0.5, 1.0)
    kind = kind or ("polygon", "ellipse", "blob")[rng.integers(3)]
    if kind == "polygon":
        pts = _polygon_points(rng, r)
    elif kind == "ellipse":
        pts = _ellipse_points(r * rng.uniform(0.5, 1.0), r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi))
    else:
        pts = _blob_points(rng, r)
    colour = _pick_colour(rng, group)
    layer = Layer(
        points=pts,
        centre=np.array([rng.uniform(0, w), rng.uniform(0.15 * h, h)], np.float32),
        velocity=(rng.normal(0, 1, 2) * speed * s / 256).astype(np.float32),
        colour=colour,
        outline=_dark_outline(rng, colour),
        outline_width=int(rng.choice([0, 1, 1, 2, 2, 3, 4]) * max(1, s // 256)),
    )
    if rng.random() < 0.5:  # cel shading band on the side away from the light
        d = rng.normal(0, 1, 2)
        layer.shade_offset = (d / (np.linalg.norm(d) + 1e-6) * r * rng.uniform(0.15, 0.4)).astype(np.float32)
        layer.shade_factor = float(rng.uniform(0.6, 0.82))
    if rng.random() < 0.4:  # soft light ramp (airbrushed shading)
        d = rng.normal(0, 1, 2)
        layer.gradient = (d / (np.linalg.norm(d) + 1e-6)).astype(np.float32)
        layer.gradient_strength = float(rng.uniform(0.1, 0.3))
    return layer


def _bubble_layer(rng: np.random.Generator, h: int, w: int) -> Layer:
    """White speech bubble (ellipse + tail) with rows of dark text strokes."""
    s = min(h, w)
    rx, ry = s * rng.uniform(0.15, 0.3), s * rng.uniform(0.08, 0.16)
    ell = _ellipse_points(rx, ry, 0.0, 56)
    # Tail: splice a spike into the lower half of the ellipse outline.
    i = int(rng.integers(8, 20))
    tip = np.array([ell[i, 0] + rng.uniform(-0.3, 0.3) * rx, ry * rng.uniform(1.5, 2.0)], np.float32)
    pts = np.concatenate([ell[: i - 2], tip[None], ell[i + 2:]], axis=0)
    strokes = []
    rows = int(rng.integers(1, 4))
    for k in range(rows):
        y = (k - (rows - 1) / 2) * ry * 0.45
        half = rx * 0.65 * np.sqrt(max(0.0, 1 - (y / ry) ** 2))
        x = -half
        while x < half:  # words: segments separated by gaps, with small glyph ticks
            length = rng.uniform(0.1, 0.35) * rx
            x_end = min(half, x + length)
            strokes.append(np.array([[x, y], [x_end, y]], np.float32))
            if rng.random() < 0.5:
                xt = rng.uniform(x, x_end)
                strokes.append(np.array([[xt, y - ry * 0.12], [xt, y + ry * 0.12]], np.float32))
            x = x_end + rng.uniform(0.05, 0.15) * rx
    white = np.full(3, rng.uniform(240, 255), np.float32)
    v = int(rng.integers(0, 30))
    return Layer(
        points=pts,
        centre=np.array([rng.uniform(rx, w - rx), rng.uniform(ry, h * 0.5)], np.float32),
        velocity=np.zeros(2, np.float32),  # bubbles stay put like overlays
        colour=white,
        outline=(v, v, v),
        outline_width=int(rng.integers(1, 3) * max(1, s // 256)),
        strokes=strokes,
        stroke_width=max(1, int(rng.integers(1, 3)) * max(1, s // 256)),
    )


def make_scene(seed: int | np.random.Generator, size=256) -> Scene:
    """Random scene description (no pixels yet) for ``size`` = int or (height, width)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    h, w = _size_hw(size)
    top, bottom = _SKIES[rng.integers(len(_SKIES))]
    horizon = float(rng.uniform(0.35, 0.7))
    layers: list[Layer] = []
    # Hills/ground: big blobs whose tops make the horizon; they move slowly (far away).
    for _ in range(int(rng.integers(1, 4))):
        hill = _shape_layer(rng, h, w, 0.9, 0.15, group=_GROUND[rng.integers(len(_GROUND))], kind="blob")
        hill.centre = np.array([rng.uniform(0, w), h * horizon + rng.uniform(0.3, 0.8) * min(h, w)], np.float32)
        layers.append(hill)
    for _ in range(int(rng.integers(3, 9))):  # objects and figures at several depths
        scale = float(rng.uniform(0.08, 0.3))
        layers.append(_shape_layer(rng, h, w, scale, speed=0.4 + 4 * scale))
    if rng.random() < 0.5:  # a "character": skin-toned head with eyes
        head = _shape_layer(rng, h, w, 0.15, 1.5, group="skin", kind="ellipse")
        layers.append(head)
        r = float(np.abs(head.points).max())
        for sx in (-1, 1):
            eye = _ellipse_points(r * 0.12, r * 0.18, 0.0, 16)
            layers.append(Layer(points=eye + np.array([sx * r * 0.3, -r * 0.1], np.float32), centre=head.centre,
                                velocity=head.velocity, colour=np.full(3, 30, np.float32), outline=(20, 20, 20),
                                outline_width=0))
    if rng.random() < 0.4:
        layers.append(_bubble_layer(rng, h, w))
    return Scene(np.asarray(top, np.float32), np.asarray(bottom, np.float32), horizon, layers)


def _sky(scene: Scene, h: int, w: int) -> np.ndarray:
    y = np.clip(np.arange(h, dtype=np.float32) / max(1.0, scene.horizon * h), 0, 1)[:, None]
    column = scene.sky_top[None, :] * (1 - y) + scene.sky_bottom[None, :] * y  # (h, 3)
    return np.repeat(np.rint(column)[:, None, :].astype(np.uint8), w, axis=1)


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.rint(points * _ONE).astype(np.int32)


def _draw_layer(img: np.ndarray, layer: Layer, t: float) -> None:
    h, w = img.shape[:2]
    pts = layer.points + layer.centre + t * layer.velocity
    pad = layer.outline_width + 2
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    local = pts - np.array([x0, y0], np.float32)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    import cv2

    cv2.fillPoly(mask, [_fixed(local)], 255, cv2.LINE_AA, shift=_SHIFT)
    alpha = mask.astype(np.float32) * np.float32(1 / 255)
    shade = np.ones_like(alpha)
    if layer.gradient is not None:
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        c = pts.mean(axis=0)
        extent = float(np.abs(pts - c).max()) + 1e-3
        proj = ((xx - c[0]) * layer.gradient[0] + (yy - c[1]) * layer.gradient[1]) / extent
        shade *= 1 + layer.gradient_strength * np.clip(proj, -1, 1)
    if layer.shade_offset is not None:
        lit = np.zeros_like(mask)
        cv2.fillPoly(lit, [_fixed(local + layer.shade_offset)], 255, cv2.LINE_AA, shift=_SHIFT)
        band = 1 - lit.astype(np.float32) * np.float32(1 / 255)
        shade *= 1 - (1 - layer.shade_factor) * band
    colour = layer.colour[None, None, :] * shade[:, :, None]
    sub = img[y0:y1, x0:x1].astype(np.float32)
    a = alpha[:, :, None]
    img[y0:y1, x0:x1] = np.clip(sub * (1 - a) + colour * a + 0.5, 0, 255).astype(np.uint8)
    if layer.outline_width > 0:
        cv2.polylines(img, [_fixed(pts)], True, layer.outline, layer.outline_width, cv2.LINE_AA, shift=_SHIFT)
    if layer.strokes:
        offset = layer.centre + t * layer.velocity
        lines = [_fixed(s + offset) for s in layer.strokes]
        cv2.polylines(img, lines, False, layer.outline, layer.stroke_width, cv2.LINE_AA, shift=_SHIFT)


def render(scene: Scene, size=256, t: float = 0.0) -> np.ndarray:
    """Pixels of ``scene`` at time ``t`` (frames): RGB uint8 (H, W, 3)."""
    h, w = _size_hw(size)
    img = _sky(scene, h, w)
    for layer in scene.layers:
        _draw_layer(img, layer, t)
    return img


def make_frame(seed: int, size=256) -> np.ndarray:
    """One synthetic cartoon frame, RGB uint8 (H, W, 3); the same seed gives the same frame."""
    return render(make_scene(seed, size), size)


def make_sequence(seed: int, n_frames: int, size=256, cuts: int = 0, return_cuts: bool = False):
    """A synthetic cartoon shot sequence: layers moving over a background.

    ``cuts`` hard cuts to fresh scenes are placed at random frames (at least 3 frames apart and from the
    ends).  Returns the list of RGB uint8 frames, or ``(frames, cut_indices)`` with ``return_cuts=True``
    (each index is the first frame of a new shot; 0 is not listed).
    """
    if n_frames < 1:
        raise ValueError("n_frames must be at least 1")
    rng = np.random.default_rng(seed)
    cut_indices: list[int] = []
    if cuts > 0:
        candidates = np.arange(3, n_frames - 2)
        if len(candidates) < cuts * 3:
            raise ValueError(f"{n_frames} frames are too few for {cuts} cuts")
        while True:  # rejection sampling of well-spaced cuts; terminates fast for reasonable counts
            chosen = np.sort(rng.choice(candidates, size=cuts, replace=False))
            if cuts == 1 or np.diff(chosen).min() >= 3:
                break
        cut_indices = [int(c) for c in chosen]
    starts = [0] + cut_indices
    frames: list[np.ndarray] = []
    for shot, start in enumerate(starts):
        stop = starts[shot + 1] if shot + 1 < len(starts) else n_frames
        scene = make_scene(rng, size)
        frames.extend(render(scene, size, float(t)) for t in range(stop - start))
    return (frames, cut_indices) if return_cuts else frames
