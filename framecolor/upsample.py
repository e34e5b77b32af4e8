"""Guided upsampling of the predicted chroma from render size to full size, and the output's Lab -> RGB.

The generator sees a small image (the render size), so its ab bleeds across lines at full size if simply
resized. :func:`joint_bilateral_upsample` (Kopf, Cohen, Lischinski and Uyttendaele, "Joint Bilateral
Upsampling", SIGGRAPH 2007) uses the full-size L, which the output keeps anyway: each full-size pixel averages
the 2x2 nearest render-size ab samples with bilinear weights times a range weight on the difference between its
own L and the sample's L, so colour does not cross an edge. (The fast guided filter,
:func:`framecolor.filters.guided_upsample`, is the other guided method tried: a dark outline between two
colours breaks its local linear model; tests/test_upsample.py compares the three.)

The colouring stream calls :func:`upsample_to_rgb`, which runs the joint bilateral upsampling and the
Lab -> sRGB conversion together, strip by strip of full-size rows, on two threads (cheaper than the separate
numpy steps: benchmarks/RESULTS.md, issue 7); with a CUDA generator, :func:`upsample_to_rgb_torch` does the
same on the GPU.
"""

from __future__ import annotations

import os

import numpy as np


def resize(image: np.ndarray, width: int, height: int, interpolation: str = "area") -> np.ndarray:
    """cv2.resize with a named interpolation ("area" to shrink, "linear" to enlarge)."""
    import cv2

    if image.shape[1] == width and image.shape[0] == height:
        return image
    flag = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}[interpolation]
    return cv2.resize(image, (width, height), interpolation=flag)


def bilinear_upsample(ab_small: np.ndarray, width: int, height: int) -> np.ndarray:
    """Plain bilinear resize of ab (h, w, 2): the baseline the guided filter is compared with."""
    return resize(ab_small, width, height, "linear")


# ------------------------------------------------------------------------------ joint bilateral upsampling
# The fast form works on strips of full-size rows (temporaries stay in the CPU cache) and gathers the
# 2x2 neighbours by whole rows: the render-size L, a and b are first expanded along x to full width
# (one small array per x-offset), after which the neighbours of a full-size row are plain row copies.
# Strips run on a small thread pool: numpy and OpenCV release the GIL inside these loops.
_STRIP_ROWS = 32
_PARALLEL_MIN_PIXELS = 1 << 18  # below this, one thread (pool overhead beats the gain)
_plans: dict[tuple, "_JBUPlan"] = {}
_pool = None


class _JBUPlan:
    """For one (h, w) -> (H, W): each full-size row's and column's two render-size neighbours (clamped at
    the borders) and their bilinear weights (pixel centres aligned as in cv2.resize)."""

    def __init__(self, h: int, w: int, H: int, W: int):
        yc = (np.arange(H, dtype=np.float64) + 0.5) * (h / H) - 0.5
        xc = (np.arange(W, dtype=np.float64) + 0.5) * (w / W) - 0.5
        y0, x0 = np.floor(yc), np.floor(xc)
        fy, fx = (yc - y0).astype(np.float32), (xc - x0).astype(np.float32)
        self.rows = [np.clip(y0 + d, 0, h - 1).astype(np.intp) for d in (0, 1)]
        self.cols = [np.clip(x0 + d, 0, w - 1).astype(np.intp) for d in (0, 1)]
        self.wy = [np.ascontiguousarray((1 - fy)[:, None]), np.ascontiguousarray(fy[:, None])]
        self.wx = [1 - fx, fx]


def _plan(h: int, w: int, H: int, W: int) -> _JBUPlan:
    key = (h, w, H, W)
    if key not in _plans:
        if len(_plans) > 8:
            _plans.clear()
        _plans[key] = _JBUPlan(h, w, H, W)
    return _plans[key]


def _thread_pool(workers: int):
    global _pool
    from concurrent.futures import ThreadPoolExecutor

    if _pool is None or _pool[0] != workers:
        if _pool is not None:
            _pool[1].shutdown(wait=False)
        _pool = (workers, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="framecolor-upsample"))
    return _pool[1]


def default_workers() -> int:
    """Threads for the full-size stages: $FRAMECOLOR_UPSAMPLE_THREADS, else up to 2 of the machine's."""
    env = os.environ.get("FRAMECOLOR_UPSAMPLE_THREADS", "")
    if env.strip().isdigit():
        return max(1, int(env))
    return max(1, min(2, os.cpu_count() or 1))


def _run_strips(H: int, W: int, work, workers: int | None) -> None:
    """Call ``work(r0, r1)`` over strips of rows covering 0..H, on ``workers`` threads."""
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1 or H * W < _PARALLEL_MIN_PIXELS:
        for r0 in range(0, H, _STRIP_ROWS):
            work(r0, min(H, r0 + _STRIP_ROWS))
        return
    # One contiguous band of strips per thread (so each thread's temporaries are reused).
    bands = np.linspace(0, H, workers + 1).astype(int)

    def band(lo, hi):
        for r0 in range(lo, hi, _STRIP_ROWS):
            work(r0, min(hi, r0 + _STRIP_ROWS))

    futures = [_thread_pool(workers).submit(band, lo, hi) for lo, hi in zip(bands[:-1], bands[1:]) if hi > lo]
    for f in futures:
        f.result()


class _JBUStrips:
    """Joint bilateral upsampling of one frame, one strip of full-size rows at a time."""

    def __init__(self, ab_small: np.ndarray, L_small: np.ndarray, L_full: np.ndarray, sigma_L: float):
        H, W = L_full.shape
        h, w = L_small.shape
        self.plan = plan = _plan(h, w, H, W)
        self.L_full = np.ascontiguousarray(L_full, dtype=np.float32)
        L_small = np.asarray(L_small, dtype=np.float32)
        ab_small = np.asarray(ab_small, dtype=np.float32)
        # (h, W) arrays: render-size rows expanded to full width, one per x-neighbour.
        self.xL = [np.ascontiguousarray(L_small[:, c]) for c in plan.cols]
        self.xa = [np.ascontiguousarray(ab_small[:, c, 0]) for c in plan.cols]
        self.xb = [np.ascontiguousarray(ab_small[:, c, 1]) for c in plan.cols]
        self.scale = -0.5 / sigma_L**2

    def strip(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """Upsampled a and b of full-size rows r0..r1 (two (r1 - r0, W) float32 arrays)."""
        import cv2

        plan = self.plan
        L = self.L_full[r0:r1]
        shape = L.shape
        num_a = np.zeros(shape, np.float32)
        num_b = np.zeros(shape, np.float32)
        den = np.full(shape, 1e-6, np.float32)  # where no neighbour is alike (a thin line), ab -> 0
        weight = np.empty(shape, np.float32)
        tmp = np.empty(shape, np.float32)
        for dy in (0, 1):
            rows = plan.rows[dy][r0:r1]
            wy = plan.wy[dy][r0:r1]
            for dx in (0, 1):
                np.take(self.xL[dx], rows, axis=0, out=tmp, mode="clip")
                cv2.subtract(L, tmp, dst=weight)
                cv2.multiply(weight, weight, dst=weight, scale=self.scale)
                cv2.exp(weight, dst=weight)
                weight *= plan.wx[dx]
                weight *= wy
                den += weight
                np.take(self.xa[dx], rows, axis=0, out=tmp, mode="clip")
                tmp *= weight
                num_a += tmp
                np.take(self.xb[dx], rows, axis=0, out=tmp, mode="clip")
                tmp *= weight
                num_b += tmp
        num_a /= den
        num_b /= den
        return num_a, num_b


def joint_bilateral_upsample(ab_small: np.ndarray, L_small: np.ndarray, L_full: np.ndarray,
                             sigma_L: float = 6.0, workers: int | None = None) -> np.ndarray:
    """Upsample ab (h, w, 2) to the size of ``L_full`` (H, W): each pixel takes the 2x2 nearest samples,
    weighted bilinearly and by ``exp(-(L - L_sample)^2 / (2 sigma_L^2))`` (Kopf et al. 2007).

    Where no neighbour has an L like the pixel's (a line thinner than a render-size pixel), all weights
    vanish and the colour fades to gray (ab -> 0): lines are not tinted by the colour beside them.
    """
    H, W = L_full.shape
    h, w = L_small.shape
    if (h, w) == (H, W):
        return ab_small.astype(np.float32, copy=False)
    jbu = _JBUStrips(ab_small, L_small, L_full, sigma_L)
    out = np.empty((H, W, 2), np.float32)

    def work(r0, r1):
        a, b = jbu.strip(r0, r1)
        out[r0:r1, :, 0] = a
        out[r0:r1, :, 1] = b

    _run_strips(H, W, work, workers)
    return out


# ------------------------------------------------------------------------ upsampling fused with Lab -> RGB
def _output_table(dtype: np.dtype) -> np.ndarray:
    """color.lab_to_rgb's sRGB encoding table, already scaled and rounded to ``dtype`` exactly as
    color.from_float_rgb does it (so the fused path gives the same codes without float RGB in between)."""
    from . import color

    key = f"encode_{np.dtype(dtype).name}"
    if key not in color._tables:
        table = color._encode_table()
        color._tables[key] = table if dtype == np.float32 else color.from_float_rgb(table, dtype)
    return color._tables[key]


def _lab_strip_to_rgb(L: np.ndarray, a: np.ndarray, b: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """Lab strip (three (n, W) planes) -> RGB codes in ``out`` (n, W, 3): the exact CIE formulas and the
    luminance-keeping gamut mapping of :func:`framecolor.color.lab_to_rgb`, with the per-pixel branches
    (dark values, out-of-gamut colours) computed only on the pixels that take them."""
    import cv2

    from . import color

    fy = (L + np.float32(16)) * np.float32(1 / 116)
    f = cv2.merge([fy + a * np.float32(1 / 500), fy, fy - b * np.float32(1 / 200)])
    xyz = f * f
    xyz *= f
    dark = f <= np.float32(6 / 29)
    if dark.any():
        xyz[dark] = (f[dark] * np.float32(116) - np.float32(16)) * np.float32(1 / color._KAPPA)
    lin = cv2.transform(xyz, color._XYZ_TO_RGB_F32)
    inside = cv2.inRange(lin, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    if cv2.countNonZero(inside) != inside.size:
        where = np.flatnonzero(inside == 0)
        flat = lin.reshape(-1, 3)
        flat[where] = _into_gamut(flat[where], xyz.reshape(-1, 3)[where, 1])
    np.clip(lin, 0, 1, out=lin)
    lin *= np.float32(color._ENCODE_STEPS)
    lin += np.float32(0.5)
    np.take(table, lin.astype(np.int32), out=out, mode="clip")


def _into_gamut(c: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """color._into_gamut_keeping_luminance for pixels known to be outside, (N, 3) and (N,): each moves
    towards the gray of its own Y just far enough to enter [0, 1] (a loss of chroma, never of luminance)."""
    y = np.clip(Y, 0, 1)[:, None]
    d = c - y
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(c > 1, (1 - y) / d, np.where(c < 0, -y / d, np.inf))
    s = np.clip(np.minimum(np.minimum(s[:, 0], s[:, 1]), s[:, 2]), 0, 1)[:, None]
    return y + s * d


def upsample_to_rgb(ab_small: np.ndarray, L_small: np.ndarray, L_full: np.ndarray, dtype=np.uint8,
                    sigma_L: float = 6.0, workers: int | None = None) -> np.ndarray:
    """The pipeline's last numeric step in one pass over the frame: joint bilateral upsampling of ab
    (Kopf et al. 2007, as :func:`joint_bilateral_upsample`), then Lab (the full-size L untouched) ->
    sRGB as ``dtype`` (uint8, uint16 or float32), strip by strip while the strip is in cache.

    Equal to ``color.from_float_rgb(color.lab_to_rgb(color.join_lab(L_full, joint_bilateral_upsample(...))),
    dtype)`` up to float rounding (at most one code, rarely).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        dtype = np.dtype(np.float32)
    H, W = L_full.shape
    table = _output_table(dtype)
    out = np.empty((H, W, 3), dtype)
    L_full = np.ascontiguousarray(L_full, dtype=np.float32)
    if L_small.shape == (H, W):
        ab = np.asarray(ab_small, dtype=np.float32)

        def work(r0, r1):
            _lab_strip_to_rgb(L_full[r0:r1], ab[r0:r1, :, 0], ab[r0:r1, :, 1], table, out[r0:r1])
    else:
        jbu = _JBUStrips(ab_small, L_small, L_full, sigma_L)

        def work(r0, r1):
            a, b = jbu.strip(r0, r1)
            _lab_strip_to_rgb(L_full[r0:r1], a, b, table, out[r0:r1])

    _run_strips(H, W, work, workers)
    return out


# ---------------------------------------------------------------------------------------- on a torch device
_torch_plans: dict[tuple, tuple] = {}


def _torch_plan(h: int, w: int, H: int, W: int, device):
    import torch

    key = (h, w, H, W, str(device))
    if key not in _torch_plans:
        plan = _plan(h, w, H, W)
        as_t = lambda a, dt=None: torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dt)  # noqa: E731
        _torch_plans.clear()  # one stream at a time: keep only the current sizes
        _torch_plans[key] = ([as_t(r, torch.long) for r in plan.rows], [as_t(c, torch.long) for c in plan.cols],
                             [as_t(wy) for wy in plan.wy], [as_t(wx)[None, :] for wx in plan.wx])
    return _torch_plans[key]


def upsample_to_rgb_torch(ab_small: np.ndarray, L_small: np.ndarray, L_full: np.ndarray, dtype=np.uint8,
                          device="cuda", sigma_L: float = 6.0) -> np.ndarray:
    """:func:`upsample_to_rgb` computed with torch on ``device`` (the GPU, where the generator runs):
    the same joint bilateral upsampling (Kopf et al. 2007), exact Lab -> sRGB, luminance-keeping gamut
    mapping and output tables, vectorised over the whole frame; only L in and the RGB codes out cross
    the bus."""
    import torch

    from . import color

    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        dtype = np.dtype(np.float32)
    H, W = L_full.shape
    h, w = L_small.shape
    with torch.inference_mode():
        L = torch.as_tensor(np.ascontiguousarray(L_full, dtype=np.float32)).to(device, non_blocking=True)
        if (h, w) == (H, W):
            ab = torch.as_tensor(np.ascontiguousarray(ab_small, dtype=np.float32)).to(device)
            a, b = ab[..., 0], ab[..., 1]
        else:
            rows, cols, wys, wxs = _torch_plan(h, w, H, W, device)
            src = torch.as_tensor(np.ascontiguousarray(np.dstack([L_small, ab_small]), dtype=np.float32)).to(device)
            num = torch.zeros((H, W, 2), device=device)
            den = torch.full((H, W), 1e-6, device=device)
            for dy in (0, 1):
                band = src.index_select(0, rows[dy])  # (H, w, 3)
                for dx in (0, 1):
                    tap = band.index_select(1, cols[dx])  # (H, W, 3)
                    weight = torch.exp((L - tap[..., 0]).square_().mul_(-0.5 / sigma_L**2)).mul_(wys[dy]).mul_(wxs[dx])
                    den += weight
                    num += tap[..., 1:] * weight[..., None]
            ab = num / den[..., None]
            a, b = ab[..., 0], ab[..., 1]
        fy = (L + 16) / 116
        f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=-1)
        xyz = torch.where(f > 6 / 29, f * f * f, (f * 116 - 16) / color._KAPPA)
        lin = xyz @ torch.as_tensor(color._XYZ_TO_RGB_F32, device=device).T
        y = xyz[..., 1:2].clamp(0, 1)
        d = lin - y
        s_high = torch.where(lin > 1, (1 - y) / d, torch.full_like(d, float("inf")))
        s_low = torch.where(lin < 0, -y / d, torch.full_like(d, float("inf")))
        s = torch.minimum(s_high, s_low).amin(dim=-1, keepdim=True).clamp(0, 1)
        outside = ((lin < 0) | (lin > 1)).any(dim=-1, keepdim=True)
        lin = torch.where(outside, y + s * d, lin)
        index = (lin.clamp(0, 1) * color._ENCODE_STEPS + 0.5).to(torch.int64)
        table = _output_table(dtype)
        torch_table = torch.as_tensor(table.astype(np.int32) if dtype == np.uint16 else table, device=device)
        out = torch_table[index].cpu().numpy()
    return out.astype(dtype, copy=False)
