"""Fast validation of generator checkpoints on held-out frames, for choosing a checkpoint and a recipe.

``python -m training.validate --data SPEC ... CHECKPOINT ...`` scores each checkpoint on the frames of the
``--data`` specs (the form of ``framecolor train --data``; frames cached at ``--short-side``, the render
size) and prints, per source and pooled over all frames: mean CIEDE2000 (gray's beside it), the
colourfulness ratio (Hasler & Suesstrunk 2003; prediction / truth) and the mean chroma the prediction puts
on the truth's near-neutral very light or very dark pixels.  The network runs directly at the cached size
(no upsampling, no smoothing): a cheap, stable yardstick for comparing checkpoints of one run, not a
replacement for ``framecolor bench quality`` on full-size frames.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _predict_ab(model, L_norm: np.ndarray) -> np.ndarray:
    """Normalised L (H, W) -> ab in Lab units (H, W, 2); the frame is padded to a multiple of the model's stride."""
    import torch

    from framecolor.color import denormalize_ab

    h, w = L_norm.shape
    m = 2 ** getattr(model.config, "depth", 5)
    ph, pw = -h % m, -w % m
    x = np.pad(L_norm, ((0, ph), (0, pw)), mode="reflect")
    with torch.inference_mode():
        ab = model(torch.from_numpy(np.ascontiguousarray(x))[None, None].float())[0].numpy()
    return denormalize_ab(ab[:, :h, :w].transpose(1, 2, 0))


def score(models: dict, specs: list[str], short_side: int = 256) -> dict:
    """{source or 'all': {name: {ciede2000, colourfulness_ratio, neutral_chroma, frames}}} (gray included)."""
    import torch

    from benchmarks import metrics as M
    from framecolor.ciede2000 import delta_e_ciede2000
    from framecolor.color import lab_to_rgb, normalize_L, rgb_to_lab

    from .data import load_source

    names = ["gray", *models]
    pooled = {n: {"de": [], "cf": [], "cf_true": [], "neutral": [0.0, 0]} for n in names}
    out = {}
    for spec in specs:
        source = load_source(spec, short_side)
        acc = {n: {"de": [], "cf": [], "cf_true": [], "neutral": [0.0, 0]} for n in names}
        for rgb in source.frames:
            lab = rgb_to_lab(rgb)
            truth_lab = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1))).float()
            L_norm = normalize_L(lab[:, :, 0])
            cf_true = M.colourfulness(rgb)
            for n in names:
                if n == "gray":
                    ab = np.zeros(lab.shape[:2] + (2,), np.float32)
                else:
                    ab = _predict_ab(models[n], L_norm.astype(np.float32))
                pred_lab = np.concatenate([lab[:, :, :1], ab], axis=2).astype(np.float32)
                pred_rgb = lab_to_rgb(pred_lab)
                d = delta_e_ciede2000(M.exact_lab(pred_rgb, torch.float32), M.exact_lab(rgb, torch.float32))
                total, count = M.neutral_chroma(pred_rgb, M.exact_lab(rgb, torch.float32))
                for bucket in (acc[n], pooled[n]):
                    bucket["de"].append(float(d.mean()))
                    bucket["cf"].append(M.colourfulness(pred_rgb))
                    bucket["cf_true"].append(cf_true)
                    bucket["neutral"][0] += total
                    bucket["neutral"][1] += count
        out[spec] = {n: _summary(a) for n, a in acc.items()}
    out["all"] = {n: _summary(a) for n, a in pooled.items()}
    return out


def _summary(a: dict) -> dict:
    cf_true = float(np.mean(a["cf_true"]))
    return {
        "ciede2000": float(np.mean(a["de"])),
        "colourfulness_ratio": float(np.mean(a["cf"])) / cf_true if cf_true > 0 else float("nan"),
        "neutral_chroma": a["neutral"][0] / a["neutral"][1] if a["neutral"][1] else float("nan"),
        "frames": len(a["de"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="generator checkpoints (.safetensors) or training folders")
    p.add_argument("--data", action="append", required=True, help="held-out frames, the train --data form")
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    import torch

    from framecolor.checkpoint import load_generator

    torch.set_num_threads(args.threads)
    models = {c: load_generator(c) for c in args.checkpoints}
    result = score(models, args.data, args.short_side)
    for source, rows in result.items():
        print(f"{source}:")
        for n, r in rows.items():
            print(f"  {n}: CIEDE2000 {r['ciede2000']:.2f}  colourfulness {r['colourfulness_ratio']:.2f}  "
                  f"neutral chroma {r['neutral_chroma']:.2f}  ({r['frames']} frames)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
