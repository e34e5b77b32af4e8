"""The train / validation split of ``../shared/data/train`` behind the bundled default model (issue 20).

``python -m training.recipes.default_split DATA_ROOT OUT`` writes two folders of symbolic links,
``OUT/train/<source>/`` and ``OUT/val/<source>/``, for the still-image sources, and prints the ``--data``
specs of the training run and of the validation set (videos are split by time with ``@A:B`` ranges and a
gap of at least 20 frames).  Every tenth still of a folder (sorted by name, the 1st, 11th, 21st...) is held
out, so every category of the clip art is represented on both sides.  Nothing is copied or changed.

The split is chosen here once, before any training, and the checkpoint and recipe are picked on the
validation specs only; the eval-* folders are scored once, at the end, for the model card.
"""

from __future__ import annotations

import sys
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
HOLD_OUT_EVERY = 10
GAP = 20  # frames left unused between a video's training and validation ranges

# folder -> (domain, training weight)
STILL_SOURCES = {
    "openclipart": ("cartoon", 4),
    "renpy": ("cartoon", 2),
    "morevna": ("cartoon", 1),
    "sintel-flow-frames": ("cartoon", 1),
    "cc0-landscapes": ("live-action", 1),
}
# file (relative to DATA_ROOT) -> (domain, frames, training stop, step, training weight); validation is
# frames training stop + GAP .. end, every 5th.
VIDEO_SOURCES = {
    "sintel-trailer/sintel_trailer_848x480_25fps.mp4": ("cartoon", 652, 520, 2, 2),
    "bigbuckbunny-640/big_buck_bunny_first60s_640x360_24fps.mp4": ("cartoon", 1440, 1200, 3, 2),
    "cc0-insect-clips/bee_1280x720.mp4": ("live-action", 121, 90, 3, 1),
    "cc0-insect-clips/butterfly_1280x720.mp4": ("live-action", 226, 190, 3, 1),
}


def _stills(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def split(data_root: Path, out: Path) -> tuple[list[str], list[str]]:
    """Make the link folders; return (training specs, validation specs)."""
    train, val = [], []
    for name, (domain, weight) in STILL_SOURCES.items():
        files = _stills(data_root / name)
        for side in ("train", "val"):
            (out / side / name).mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            side = "val" if i % HOLD_OUT_EVERY == 0 else "train"
            link = out / side / name / f"{i:05d}_{f.name}"
            if not link.exists():
                link.symlink_to(f.resolve())
        train.append(f"{out / 'train' / name}:{domain}*{weight}")
        val.append(f"{out / 'val' / name}:{domain}")
    for rel, (domain, frames, stop, step, weight) in VIDEO_SOURCES.items():
        path = data_root / rel
        train.append(f"{path}:{domain}@0:{stop}:{step}*{weight}")
        val.append(f"{path}:{domain}@{stop + GAP}:{frames}:5")
    return train, val


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m training.recipes.default_split DATA_ROOT OUT", file=sys.stderr)
        return 2
    train, val = split(Path(argv[0]), Path(argv[1]))
    print("TRAIN " + " ".join(f"--data {s}" for s in train))
    print("VAL " + " ".join(f"--data {s}" for s in val))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
