"""Full-resolution carrying of key colours along optical flow (reference mode, issue 16).

The key's colours never pass through the render size: flow is computed where it is cheap (``flow_size``,
the longer side of a reduced copy of the luminance, OpenCV DIS: Kroeger et al., "Fast Optical Flow using
Dense Inverse Search", ECCV 2016), brought up to the frame's size, and the key's full-size Lab is sampled
along it once per candidate.

For frame t several *candidates* are warped onto the frame, each with its full-size Lab:

* the previous coloured frame of the shot carried one step (short-range flow almost always holds; what it
  gets wrong accumulates);
* each key of the shot that is near in time -- the last one at or before t and the next one after t --
  warped directly to t (no accumulation, but long-range flow fails under large motion).

A candidate is judged by how well its *carried luminance* matches frame t's own luminance, averaged over
a small window (a photometric matching cost: where the flow put a pixel on the wrong surface, the L it
brings does not fit; Sundaram, Brox & Keutzer, ECCV 2010, use the same test beside their forward-backward
check). Each pixel takes the colour of its cheapest candidate; a key and the chain that agree in colour are
a tie broken for the key (it corrects the chain's drift), a key that disagrees must be clearly cheaper
(flat regions of equal grey let a long jump fit the luminance anywhere). Where even the cheapest candidate
does not fit (new content, occlusions), the pixel is handed to the automatic generator instead of colour
bled across lines: :func:`select` returns that per-pixel weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..temporal.flow import fb_error

__all__ = ["FlowField", "Candidate", "fb_confidence", "warp_lab", "match_cost", "select", "grow_fill"]


@dataclass
class FlowField:
    """A backward flow at reduced size: pixel x of the destination comes from x + flow(x) in the source."""

    flow: np.ndarray  # (h, w, 2) in reduced pixels

    def full_maps(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap sampling maps (x, y) at full size: the flow bilinearly resized and scaled."""
        import cv2

        h, w = self.flow.shape[:2]
        if (h, w) == (height, width):
            fx, fy = self.flow[..., 0], self.flow[..., 1]
        else:
            up = cv2.resize(self.flow, (width, height), interpolation=cv2.INTER_LINEAR)
            fx, fy = up[..., 0] * np.float32(width / w), up[..., 1] * np.float32(height / h)
        gx = np.arange(width, dtype=np.float32)[None, :]
        gy = np.arange(height, dtype=np.float32)[:, None]
        return fx + gx, fy + gy


def warp_lab(lab: np.ndarray, maps: tuple[np.ndarray, np.ndarray], nearest: bool = False) -> np.ndarray:
    """Sample a full-size Lab image (H, W, 3) at the positions ``maps`` (bilinear, or nearest, border
    replicated)."""
    import cv2

    mode = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(lab, maps[0], maps[1], mode, borderMode=cv2.BORDER_REPLICATE)


def match_cost(L_carried: np.ndarray, L: np.ndarray, radius: int = 2) -> np.ndarray:
    """Mean absolute L difference (L units) over a (2 radius + 1)^2 window: how badly the carried
    luminance fits the frame around each pixel."""
    import cv2

    d = cv2.absdiff(np.asarray(L_carried, np.float32), np.asarray(L, np.float32))
    k = 2 * radius + 1
    return cv2.blur(d, (k, k), borderType=cv2.BORDER_REFLECT)


def fb_confidence(back: np.ndarray, fwd: np.ndarray, full_hw: tuple[int, int], sigma: float = 1.0
                  ) -> np.ndarray:
    """Forward-backward consistency (Sundaram, Brox & Keutzer, ECCV 2010) of a pair of reduced-size flows
    (``back``: destination -> source, ``fwd``: source -> destination), in [0, 1], brought to ``full_hw``: the
    round trip should come back, with a tolerance of ``sigma`` reduced pixels growing with the motion."""
    import cv2

    err2, tol2 = fb_error(back, fwd, sigma)
    conf = np.exp(-err2 / tol2).astype(np.float32)
    H, W = full_hw
    if conf.shape != (H, W):
        conf = cv2.resize(conf, (W, H), interpolation=cv2.INTER_LINEAR)
    return conf


@dataclass
class Candidate:
    """Colour carried onto the frame: ``ab`` (H, W, 2), its matching cost (H, W), and whether it comes
    directly from a key (True) or from the previous coloured frame (False)."""

    ab: np.ndarray
    cost: np.ndarray
    from_key: bool
    consistent: np.ndarray | None = None  # (H, W) bool: forward-backward consistent flow, when checked


def select(candidates: list[Candidate], agreement: float = 12.0, margin: float = 1.0, fit: float = 4.0,
           misfit: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel, the colour of the best-fitting candidate (see the module docstring).

    ``agreement``: ab distance within which a key and the chain count as agreeing; ``margin`` (L units):
    a key agreeing with the chain wins ties by this much, a disagreeing key must be cheaper by it.
    Returns ``(ab, cost, generator_weight, consistent)``: the chosen colour, its cost, the share of the
    automatic colouring per pixel (0 where the cost is at most ``fit``, rising to 1 at ``misfit``), and
    whether the chosen candidate's flow was forward-backward consistent (None when not checked).
    """
    chain = next((c for c in candidates if not c.from_key), None)
    keys = [c for c in candidates if c.from_key]
    if chain is None and not keys:
        raise ValueError("select needs at least one candidate")
    first = chain if chain is not None else keys[0]
    best_ab = first.ab.copy()
    best_cost = first.cost.copy()
    best_ok = None if first.consistent is None else first.consistent.copy()
    rank = best_cost.copy()  # cost with the tie-breaking bonus/penalty applied
    for k in (keys if chain is not None else keys[1:]):
        eff = k.cost
        if chain is not None:
            d = k.ab - chain.ab
            agree = (d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) <= agreement * agreement
            eff = k.cost + np.where(agree, -margin, margin).astype(np.float32)
        take = eff < rank
        rank = np.where(take, eff, rank)
        best_cost = np.where(take, k.cost, best_cost)
        best_ab[take] = k.ab[take]
        if best_ok is not None and k.consistent is not None:
            best_ok = np.where(take, k.consistent, best_ok)
    weight = np.clip((best_cost - fit) / max(misfit - fit, 1e-6), 0.0, 1.0).astype(np.float32)
    return best_ab, best_cost, weight, best_ok


def grow_fill(ab: np.ndarray, trusted: np.ndarray, L: np.ndarray, iterations: int = 4, tolerance: float = 3.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Untrusted pixels take the colour of a trusted 8-neighbour whose L is within ``tolerance`` of theirs
    (the closest in L), repeated ``iterations`` times: colour grows a few pixels into the untrusted area from
    the same side of the lines (a drawn line's L stops it), at full size, without blurring.
    Returns ``(ab, trusted)`` with the pixels reached marked trusted."""
    ab = np.array(ab, np.float32, copy=True)
    ok = np.asarray(trusted, bool).copy()
    L = np.asarray(L, np.float32)
    H, W = L.shape
    for _ in range(iterations):
        todo = ~ok
        if not todo.any():
            break
        best = np.full((H, W), np.inf, np.float32)
        new_ab = ab.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dx == 0 and dy == 0:
                    continue
                ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
                xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
                # neighbour at (y - dy, x - dx) of destination pixel (y, x)
                d = np.abs(L[ys, xs] - L[yd, xd])
                d = np.where(ok[ys, xs], d, np.inf)
                take = (d < best[yd, xd]) & (d <= tolerance) & todo[yd, xd]
                sub_best = best[yd, xd]
                sub_best[take] = d[take]
                sub_ab = new_ab[yd, xd]
                sub_ab[take] = ab[ys, xs][take]
        reached = np.isfinite(best) & todo
        ab = new_ab
        ok |= reached
    return ab, ok
