"""The studio loop of reference mode (README, "Colouring with key frames"): `framecolor sample --scene-changes`
proposes the keys worth painting, the painted keys go back with `framecolor run --reference keys/`."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
from click.testing import CliRunner

from clips import REF_H as H, REF_W as W, reference_frame as shapes_frame
from framecolor import color
from framecolor.cli import cli
from framecolor.hints.references import frame_number_of
from framecolor.sampling import contact_sheet_path

SHOT = 14


def _invoke(*args):
    return CliRunner().invoke(cli, ["--quiet", *map(str, args)], catch_exceptions=False)


def _write_clip(path: Path, frames) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv444p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def _gray(rgb: np.ndarray) -> np.ndarray:
    """The black-and-white version of a frame a studio would have: its luminance only."""
    from benchmarks.metrics import gray_baseline

    return gray_baseline(rgb)


def _read(path: Path) -> list[np.ndarray]:
    from framecolor.io.video_reader import VideoReader

    with VideoReader(path) as r:
        return [f.image.copy() for f in r]


def _mean_ciede(a: np.ndarray, b: np.ndarray) -> float:
    from benchmarks.metrics import ciede2000_stats

    return ciede2000_stats(a, b)[0]


def test_sample_keys_paint_them_and_run_with_the_folder(tmp_path, tiny_model_path):
    """Two shots of flat-coloured shapes in different colour worlds, black and white: `sample --scene-changes`
    proposes exactly the first frame of each shot (named by frame number, contact sheet beside the folder);
    the keys painted with the true colours and given back as `--reference keys/` colour the whole clip close
    to the truth (mean CIEDE2000 under 3 on every frame, against over 10 for the bare gray)."""
    truth = [shapes_frame(t, 0)[0] for t in range(SHOT)] + [shapes_frame(t, 1)[0] for t in range(SHOT)]
    clip = _write_clip(tmp_path / "episode.mkv", [_gray(f) for f in truth])
    truth = _read(_write_clip(tmp_path / "truth.mkv", truth))  # the truth through the same codec path

    keys = tmp_path / "keys"
    result = _invoke("sample", clip, "--scene-changes", "-o", keys)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in keys.iterdir())
    assert names == ["frame_000000.png", f"frame_{SHOT:06d}.png"]
    sheet = contact_sheet_path(keys)
    assert sheet.parent == tmp_path and cv2.imread(str(sheet)) is not None

    for name in names:  # the painter colours each proposed key (here: with the true colours)
        n = frame_number_of(name)
        cv2.imwrite(str(keys / name), cv2.cvtColor(truth[n], cv2.COLOR_RGB2BGR))

    out = tmp_path / "episode.color.mkv"
    result = _invoke("run", clip, "-o", out, "--reference", keys, "--model", tiny_model_path,
                     "--codec", "ffv1", "--temporal", "off")
    assert result.exit_code == 0, result.output
    got = _read(out)
    assert len(got) == len(truth)
    errors = [_mean_ciede(g, t) for g, t in zip(got, truth)]
    gray_errors = [_mean_ciede(_gray(t), t) for t in truth]
    assert max(errors) < 3.0, errors
    assert min(gray_errors) > 10.0, gray_errors


def test_sample_proposes_a_key_where_much_new_content_appears(tmp_path):
    """Inside one shot, a frame where more than --new-content percent of the picture is new since the last
    proposed key (here a second scene slides in over a held first one) is proposed too; with a higher
    --new-content it is not."""
    a = [shapes_frame(0, 0)[0]] * 20
    b = shapes_frame(20, 1)[0][::-1].copy()  # another picture: other colours, shapes elsewhere, upside down
    frames = []
    for t in range(20):  # the second picture wipes in from the left, 6 px per frame (a slow reveal, no cut)
        f = a[t].copy()
        x = min(W, 6 * t)
        f[:, :x] = b[:, :x]
        frames.append(f)
    clip = _write_clip(tmp_path / "wipe.mkv", [_gray(f) for f in frames])
    r = _invoke("sample", clip, "--scene-changes", "-o", tmp_path / "k1")
    assert r.exit_code == 0, r.output
    found = sorted(frame_number_of(p.name) for p in (tmp_path / "k1").iterdir())
    assert found[0] == 0 and len(found) >= 2, found
    r = _invoke("sample", clip, "--scene-changes", "--new-content", "99", "-o", tmp_path / "k2")
    assert r.exit_code == 0, r.output
    assert sorted(frame_number_of(p.name) for p in (tmp_path / "k2").iterdir()) == [0]


def test_sample_refuses_a_bad_new_content_value(tmp_path):
    clip = _write_clip(tmp_path / "c.mkv", [_gray(shapes_frame(t, 0)[0]) for t in range(3)])
    r = _invoke("sample", clip, "--scene-changes", "--new-content", "0", "-o", tmp_path / "k")
    assert r.exit_code == 2 and "--new-content" in r.output


def test_a_new_content_proposal_right_before_a_cut_is_dropped(tmp_path):
    """A frame proposed for new content that a cut follows within a few frames is not written (the cut's
    first frame is the key to paint); the same frame without the cut after it is."""
    a = shapes_frame(0, 0)[0]
    b = shapes_frame(20, 1)[0][::-1].copy()
    wipe = []
    for t in range(30):
        f = a.copy()
        x = min(W, 6 * t)
        f[:, :x] = b[:, :x]
        wipe.append(f)
    clip = _write_clip(tmp_path / "wipe.mkv", [_gray(f) for f in wipe])
    assert _invoke("sample", clip, "--scene-changes", "-o", tmp_path / "k1").exit_code == 0
    found = sorted(frame_number_of(p.name) for p in (tmp_path / "k1").iterdir())
    assert len(found) >= 2, found
    p = found[1]
    other = [np.ascontiguousarray(np.rot90(shapes_frame(t, 1)[0], 2)) for t in range(12)]  # another scene
    other = [cv2.resize(255 - f, (W, H)) for f in other]
    clip2 = _write_clip(tmp_path / "wipe_cut.mkv", [_gray(f) for f in wipe[: p + 3] + other])
    assert _invoke("sample", clip2, "--scene-changes", "-o", tmp_path / "k2").exit_code == 0
    found2 = sorted(frame_number_of(q.name) for q in (tmp_path / "k2").iterdir())
    assert p not in found2 and p + 3 in found2, (p, found2)
