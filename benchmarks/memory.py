"""Memory stays flat with episode length: peak RSS of `framecolor.run` on a 10,000-frame and a
1,000-frame 480p clip, each run in its own subprocess so that each peak is that run's own.

    python -m benchmarks.memory [--model PATH] [--workdir DIR] [--long 10000] [--short 1000]

Makes the two synthetic clips (moving flat-coloured shapes, H.264, 854x480, 25 fps) in --workdir (kept
for reruns), colours each in a fresh Python process, and prints both peaks and their ratio; the goal is a
ratio within 1.10.  Long: minutes to write the clip and as long as the pipeline needs for 11,000 frames.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

WIDTH, HEIGHT, FPS = 854, 480, 25


def _frame(i: int):
    import cv2
    import numpy as np

    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    img[:] = (40 + (i // 250) * 37 % 150, 90, 160)  # a new "shot" colour every 10 s
    cx = int(WIDTH * (0.5 + 0.35 * np.sin(i * 0.05)))
    cy = int(HEIGHT * (0.5 + 0.3 * np.cos(i * 0.04)))
    cv2.circle(img, (cx, cy), 60, (230, 200, 40), -1)
    cv2.circle(img, (cx, cy), 60, (10, 10, 10), 3)
    x = (i * 4) % (WIDTH - 80)
    cv2.rectangle(img, (x, 300), (x + 80, 380), (200, 40, 60), -1)
    return img


def make_clip(path: Path, frames: int) -> Path:
    """Write a synthetic 480p H.264 clip of ``frames`` frames (written to a temp name, then renamed)."""
    import av

    if path.is_file():
        with av.open(str(path)) as c:
            if c.streams.video[0].frames == frames:
                return path
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "23"})
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        s.time_base = Fraction(1, FPS)
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(_frame(i), format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, FPS)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    os.replace(tmp, path)
    return path


def child(input_path: str, output_path: str, model: str | None, device: str) -> None:
    """Runs in the subprocess: colour one clip, print a JSON line with this process's peak RSS."""
    from framecolor.api import run

    t0 = time.perf_counter()
    run(input_path, output_path, model=model, device=device, overwrite=True, quiet=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": peak_kb / 1024.0, "seconds": time.perf_counter() - t0}))


def measure(clip: Path, out: Path, model: str | None, device: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", str(clip), str(out), "--device", device]
    if model:
        cmd += ["--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"run on {clip} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint (default: the bundled model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "framecolor-memory")
    ap.add_argument("--long", type=int, default=10_000)
    ap.add_argument("--short", type=int, default=1_000)
    ap.add_argument("--child", nargs=2, metavar=("INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.model, args.device)
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {}
    for n in (args.short, args.long):
        t0 = time.perf_counter()
        clip = make_clip(args.workdir / f"synthetic_{n}.mp4", n)
        print(f"clip {clip} ({n} frames) ready in {time.perf_counter() - t0:.0f} s", flush=True)
        r = measure(clip, args.workdir / f"synthetic_{n}.color.mkv", args.model, args.device)
        results[n] = r
        print(f"{n:>6} frames: peak RSS {r['peak_rss_mb']:.0f} MB, {r['seconds']:.0f} s "
              f"({n / r['seconds']:.2f} frames/s)", flush=True)
    ratio = results[args.long]["peak_rss_mb"] / results[args.short]["peak_rss_mb"]
    verdict = "OK (within 10%)" if ratio <= 1.10 else "NOT flat (over 10%)"
    print(f"peak RSS ratio {args.long} / {args.short} frames: {ratio:.3f}  {verdict}")
    return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
