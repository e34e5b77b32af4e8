"""End-to-end colourisation through the Python API: what goes in comes out, coloured, L kept."""

from fractions import Fraction

import numpy as np
import pytest

from clips import make_cut_clip, make_frame_folder, make_shapes_clip, read_all_frames, read_packets
from framecolor import color
from framecolor.api import colorize_frames, run
from framecolor.colorizers.automatic import Colorizer
from framecolor.stream import render_shape


def test_render_shape_keeps_aspect_and_never_enlarges():
    assert render_shape(1080, 1920, 256) == (256, 448)
    assert render_shape(64, 96, 256) == (64, 96)
    h, w = render_shape(144, 176, 128)
    assert h == 128 and w % 16 == 0


def test_colorize_frames_keeps_L_size_dtype_and_adds_colour(tiny_model_path):
    """Output L equals input L (within one 8-bit level), and the model's colour reaches the output."""
    rng = np.random.default_rng(0)
    frames = [(rng.random((50, 70)) * 200 + 30).astype(np.uint8) for _ in range(5)]
    out = list(colorize_frames(frames, model=tiny_model_path, batch=2))
    assert len(out) == 5
    for gray, rgb in zip(frames, out):
        assert rgb.shape == (50, 70, 3) and rgb.dtype == np.uint8
        assert np.abs(color.luminance(rgb) - color.luminance(gray)).max() <= 100 / 255 + 1e-3
        assert np.abs(color.rgb_to_lab(rgb)[..., 1:]).mean() > 5  # non-zero colour


def test_colorize_frames_is_lazy_and_ordered(tiny_model_path):
    """Frames come out in input order; consuming a few does not need the whole input."""
    def endless():
        i = 0
        while True:
            yield np.full((32, 32), i % 256, np.uint8)
            i += 1

    gen = colorize_frames(endless(), model=tiny_model_path, batch=3)
    got = [next(gen) for _ in range(7)]
    gen.close()
    Ls = [color.luminance(g).mean() for g in got]
    assert Ls == sorted(Ls)


def test_16bit_input_gives_16bit_output(tiny_model_path):
    frame = (np.linspace(0.2, 0.8, 40 * 30).reshape(30, 40) * 65535).astype(np.uint16)
    (out,) = colorize_frames([frame], model=tiny_model_path)
    assert out.dtype == np.uint16
    assert np.abs(color.luminance(out) - color.luminance(frame)).max() < 0.05


def test_out_of_memory_halves_the_batch_and_loses_no_frame(tiny_model_path):
    """A backend that fails on batches over 2 frames: every frame still comes out, each exactly once."""
    colorizer = Colorizer(tiny_model_path, batch=8)
    real = colorizer.backend

    class SmallMemoryBackend:
        calls = []

        def describe(self):
            return "small-memory test backend"

        def __call__(self, x):
            self.calls.append(len(x))
            if len(x) > 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return real(x)

    colorizer.backend = SmallMemoryBackend()
    L = [np.full((32, 32), float(i * 10), np.float32) for i in range(7)]
    ab = colorizer.predict(L)
    assert len(ab) == 7 and colorizer.batch == 2
    expected = Colorizer(tiny_model_path, batch=1).predict(L)
    for a, b in zip(ab, expected):
        assert np.allclose(a, b, atol=1e-4)


def test_other_errors_are_not_retried(tiny_model_path):
    colorizer = Colorizer(tiny_model_path, batch=4)

    def broken(x):
        raise ValueError("shape mismatch")

    colorizer.backend = broken
    with pytest.raises(ValueError):
        colorizer.predict([np.zeros((16, 16), np.float32)] * 3)


def test_run_video_keeps_frames_timestamps_audio(tmp_path, tiny_model_path):
    src = make_shapes_clip(tmp_path / "ep.mkv", frames=20, size=(96, 64), audio=True, color=False)
    out = run(src, model=tiny_model_path, quiet=True)
    assert out == tmp_path / "ep.color.mkv" and out.is_file()
    a, b = read_all_frames(src), read_all_frames(out)
    assert len(a) == len(b) == 20
    assert [p * tb for p, tb, _ in a] == [p * tb for p, tb, _ in b]
    assert read_packets(src, "audio") == read_packets(out, "audio")
    # colour was added, luminance kept (lossy H.264 at crf 18: a couple of L units at most on average)
    L_in = np.stack([color.luminance(img) for _, _, img in a])
    L_out = np.stack([color.luminance(img) for _, _, img in b])
    assert np.abs(L_in - L_out).mean() < 1.5
    assert np.abs(color.rgb_to_lab(b[5][2])[..., 1:]).mean() > 3


def test_run_with_temporal_smoothing_emits_every_frame(tmp_path, tiny_model_path):
    src, cuts = make_cut_clip(tmp_path / "cuts.mkv", shot_lengths=(8, 8), size=(64, 48))
    out = run(src, tmp_path / "cuts.out.mkv", model=tiny_model_path, temporal="flow", quiet=True)
    assert len(read_all_frames(out)) == 16


def test_run_every_and_range(tmp_path, tiny_model_path):
    src = make_shapes_clip(tmp_path / "ep.mp4", frames=20, audio=False)
    out = run(src, tmp_path / "preview.mp4", model=tiny_model_path, every=5, start="2", end="18", quiet=True)
    frames = read_all_frames(out)
    source = read_all_frames(src)
    assert [p * tb for p, tb, _ in frames] == [source[i][0] * source[i][1] for i in (2, 7, 12, 17)]


def test_run_frame_folder_keeps_names_and_16_bits(tmp_path, tiny_model_path):
    folder = make_frame_folder(tmp_path / "shot", n=4, bit_depth=16)
    out = run(folder, model=tiny_model_path, quiet=True)
    assert out == tmp_path / "shot_color"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in folder.iterdir())
    import cv2

    for p in out.iterdir():
        assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def _cut_folder(path, shots=((0, 12), (1, 14)), size=(64, 48)):
    """A frame folder of moving shapes with a scene cut between shots (palette change): f000.png, f001.png..."""
    import cv2

    from clips import shapes_image

    path.mkdir(parents=True)
    k = 0
    for palette, n in shots:
        for i in range(n):
            img = shapes_image(k, size[0], size[1], color=False, palette=palette)
            cv2.imwrite(str(path / f"f{k:03d}.png"), img)
            k += 1
    return path


@pytest.mark.parametrize("resume_at", [7, 17])  # in the first shot; in the second (cut at 12), mid-batch
def test_resumed_flow_smoothing_on_a_frame_folder_equals_an_uninterrupted_run(tmp_path, tiny_model_path, resume_at):
    """--skip-existing with --temporal flow: frames coloured after the resume point are those of an uninterrupted
    run (the smoother is warmed up on the frames before it), not a fresh smoother's (a visible jump)."""
    import shutil

    import cv2

    folder = _cut_folder(tmp_path / "shot")
    colorizer = Colorizer(tiny_model_path, device="cpu", batch=4)
    whole = run(folder, tmp_path / "whole", temporal="flow", colorizer=colorizer)
    resumed = tmp_path / "resumed"
    shutil.copytree(whole, resumed)
    names = sorted(p.name for p in whole.iterdir())
    for name in names[resume_at:]:
        (resumed / name).unlink()
    run(folder, resumed, temporal="flow", skip_existing=True, colorizer=colorizer)
    assert sorted(p.name for p in resumed.iterdir()) == names
    for name in names:
        a = cv2.imread(str(whole / name)).astype(int)
        b = cv2.imread(str(resumed / name)).astype(int)
        assert np.abs(a - b).max() <= 1, f"{name} differs by {np.abs(a - b).max()} levels"


def test_point_hints_only_are_logged_the_same_way_before_and_after(tiny_model_path, caplog):
    """With --hints and no key, the plan and the summary agree: the shot is one with point hints (not 'keys
    for []; automatic colouring for [0]' and then 'with a key: [0]')."""
    import logging

    from clips import shapes_image

    frames = [shapes_image(i, 64, 48, color=False) for i in range(8)]
    hints = [{"frame": 3, "x": 10, "y": 10, "rgb": [200, 40, 40]}]
    with caplog.at_level(logging.INFO, logger="framecolor"):
        list(colorize_frames(frames, model=tiny_model_path, hints=hints, hint_model="none"))
    plan = [r.getMessage() for r in caplog.records if "starting at frames" in r.getMessage()]
    assert len(plan) == 2, plan
    assert "point hints only for [0]" in plan[0] and "automatic colouring for none" in plan[0]
    assert "with a key: starting at frames []" in plan[1]
    assert "with point hints only: starting at frames [0]" in plan[1]
