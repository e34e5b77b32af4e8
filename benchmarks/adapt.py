"""Per-show adaptation measured on eval-anime (issue 16, part 2): ``python -m benchmarks.adapt``.

Scenarios (CIEDE2000 on exact Lab, mean over the scored frames' pixels; only the frames' L reaches the
colouriser, as :func:`framecolor.colorize_frames` uses nothing else):

* ``sheet``: the model sheet eval-anime/stills/anidoc-refs/sampleN.png is the only key; frames 1, 3, ... of
  clips/anidoc-sampleN.mp4 are scored (the issue's protocol for these clips);
* ``konobi``: frame 0 of clips/eisai-konobi-e012-339 is the key; frames 108, 113, ... (the second shot, never
  seen) are scored;
* ``tooncrafter``: each colour pair of stills/tooncrafter: ``*_frame1`` / ``*_00-00`` is the key, the
  ``*_frame3`` / ``*_00-01`` image is scored (the ``frame00xx_yy`` line-art files are left out).

Each target is adapted from its key(s) once per configuration (``--config``, repeatable; see CONFIGS),
with a fixed step count so that configurations compare at equal work, and scored beside gray (ab = 0) and the
bundled automatic model. Adapting on eval material here mirrors a user's own keys at run time; the adapted
weights are written under runs/ (git-ignored) at most and never shipped. Results are appended to
``--out``/results.jsonl (one line per target and configuration; an existing line is reused, so an interrupted
run continues), and the table is printed in markdown.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval-anime"

# name -> AdaptSettings overrides (steps come from --steps)
CONFIGS = {
    "default": {},  # bundled model + L2-SP 0.01 + neutral fill 0.5
    "l2sp-0.01": {"neutral_fill": 0.0},  # the same without the neutral fill
    "no-l2sp": {"l2sp": 0.0, "neutral_fill": 0.0},
    "l2sp-0.1": {"l2sp": 0.1, "neutral_fill": 0.0},
    "l2sp-1": {"l2sp": 1.0, "neutral_fill": 0.0},
    "scratch": {"from_scratch": True, "l2sp": 0.0, "neutral_fill": 0.0},
    "generic-0.5": {"generic": 0.5, "neutral_fill": 0.0},
    "scale-3": {"max_scale": 3.0},
    "ciede": {"ciede_weight": 0.05},
}


def read_video(path: Path, indices=None) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if indices is None or i in indices:
                out.append(f.to_ndarray(format="rgb24"))
    return out


def read_png(path: Path) -> np.ndarray:
    from framecolor.io.images import read_image

    return read_image(path)


def targets(root: Path, scenarios: list[str]):
    """(scenario, name, keys as RGB arrays, scored RGB frames) of each target, loaded lazily."""
    if "sheet" in scenarios:
        for n in range(1, 5):
            yield ("sheet", f"anidoc-sample{n}",
                   lambda n=n: [read_png(root / "stills" / "anidoc-refs" / f"sample{n}.png")],
                   lambda n=n: read_video(root / "clips" / f"anidoc-sample{n}.mp4", set(range(1, 10_000, 2))))
    if "konobi" in scenarios:
        clip = root / "clips" / "eisai-konobi-e012-339_640x504_12fps.mp4"
        yield ("konobi", "eisai-konobi-e012-339", lambda: read_video(clip, {0}),
               lambda: read_video(clip, set(range(108, 10_000, 5))))
    if "tooncrafter" in scenarios:
        folder = root / "stills" / "tooncrafter"
        for key in sorted(folder.glob("*")):
            for a, b in (("_frame1", "_frame3"), ("_00-00", "_00-01")):
                if key.stem.endswith(a):
                    other = key.with_name(key.stem[: -len(a)] + b + key.suffix)
                    if other.is_file():
                        yield ("tooncrafter", key.stem[: -len(a)],
                               lambda k=key: [read_png(k)], lambda o=other: [read_png(o)])


def score(frames: list[np.ndarray], predict) -> float:
    """Mean CIEDE2000 of predict(frames) against frames."""
    import torch

    from . import metrics as M

    values = []
    for truth, pred in zip(frames, predict(frames)):
        values.append(float(M.ciede2000_map(pred, truth, dtype=torch.float32).mean()))
    return float(np.mean(values))


def colourise(model):
    from framecolor import colorize_frames

    return lambda frames: colorize_frames(frames, model=model, temporal="off", device="cpu", backend="torch")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", action="append", choices=["sheet", "konobi", "tooncrafter"])
    p.add_argument("--config", action="append", choices=sorted(CONFIGS))
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", help="targets whose name contains this text")
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--out", type=Path, default=Path("runs/adapt-bench"))
    p.add_argument("--part", default="0/1", help="I/N: only every Nth target from the Ith (parallel runs)")
    p.add_argument("--save", action="store_true", help="also write each adapted model into --out (runs/ only)")
    p.add_argument("--table", action="store_true", help="print the table of --out/results.jsonl and stop")
    a = p.parse_args(argv)

    import torch

    from framecolor import adaptation as A
    from framecolor.checkpoint import load_generator

    from . import metrics as M

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    results_path = a.out / "results.jsonl"
    done = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            r = json.loads(line)
            done[(r["name"], r["config"], r["steps"], r["seed"])] = r
    if not a.table:
        scenarios = a.scenario or ["sheet", "konobi", "tooncrafter"]
        configs = a.config or ["default"]
        bundled = load_generator()
        part, parts = (int(x) for x in a.part.split("/"))
        for i, (scenario, name, keys_fn, frames_fn) in enumerate(targets(a.data, scenarios)):
            if (a.only and a.only not in name) or i % parts != part:
                continue
            todo = [c for c in configs if (name, c, a.steps, a.seed) not in done]
            if not todo:
                continue
            frames = frames_fn()
            keys = A.load_keys(keys_fn())
            base = next((r for r in done.values() if r["name"] == name), None)
            gray = base["gray"] if base else score(frames, lambda fs: [M.gray_baseline(f) for f in fs])
            auto = base["bundled"] if base else score(frames, colourise(bundled))
            for config in todo:
                settings = A.AdaptSettings(steps=a.steps, seed=a.seed, **CONFIGS[config])
                t = time.perf_counter()
                model, info = A.adapt_model(keys, None, settings, progress=False)
                seconds = time.perf_counter() - t
                adapted = score(frames, colourise(model))
                if a.save:  # eval material: under runs/ only, never shipped
                    from framecolor.checkpoint import save_generator

                    save_generator(a.out / f"{name}-{config}-{a.steps}.safetensors", model, info)
                r = {"scenario": scenario, "name": name, "config": config, "steps": a.steps, "seed": a.seed,
                     "frames": len(frames), "gray": round(gray, 3), "bundled": round(auto, 3),
                     "adapted": round(adapted, 3), "adapt_seconds": round(seconds, 1), "threads": a.threads}
                done[(name, config, a.steps, a.seed)] = r
                with open(results_path, "a") as f:
                    f.write(json.dumps(r) + "\n")
                print(json.dumps(r), flush=True)
    print(markdown(list(done.values())))


def markdown(rows: list[dict]) -> str:
    configs = sorted({(r["config"], r["steps"]) for r in rows}, key=lambda c: (c[1], list(CONFIGS).index(c[0])))
    head = "| scenario | target | gray | bundled | " + " | ".join(f"{c} {s} steps (x gray)" for c, s in configs) + " |"
    lines = [head, "| " + " | ".join(["---"] * (4 + len(configs))) + " |"]
    names = []
    for r in rows:
        if (r["scenario"], r["name"]) not in names:
            names.append((r["scenario"], r["name"]))
    for scenario, name in names:
        mine = {(r["config"], r["steps"]): r for r in rows if r["name"] == name}
        any_r = next(iter(mine.values()))
        cells = []
        for c in configs:
            r = mine.get(c)
            cells.append(f"{r['adapted']:.2f} ({r['adapted'] / r['gray']:.2f})" if r else "")
        lines.append(f"| {scenario} | {name} | {any_r['gray']:.2f} | {any_r['bundled']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
