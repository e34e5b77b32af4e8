"""The command line: each bad input gives a one-line error, a non-zero exit, and leaves nothing behind."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from clips import make_audio_only, make_frame_folder, make_shapes_clip, read_all_frames
from framecolor.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, ["--quiet", *map(str, args)], catch_exceptions=False)


def assert_one_line_error(result, *needles):
    assert result.exit_code != 0
    lines = [l for l in result.output.strip().splitlines() if l.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("framecolor: error:"), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if "tmp" in p.name or p.name.endswith(".part"))


@pytest.fixture()
def clip(tmp_path):
    return make_shapes_clip(tmp_path / "ep.mkv", frames=12, audio=True, color=False)


def test_help_lists_commands_without_importing_torch():
    code = "import sys; from framecolor.cli import main; sys.argv=['framecolor','--help']\n" \
           "try:\n    main()\nexcept SystemExit:\n    pass\n" \
           "assert 'torch' not in sys.modules and 'av' not in sys.modules, 'heavy import'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("run", "sample", "info", "train", "bench"):
        assert command in out.stdout


def test_run_writes_default_output_beside_the_input(clip, tiny_model_path):
    result = invoke("run", clip, "--model", tiny_model_path)
    assert result.exit_code == 0, result.output
    out = clip.with_name("ep.color.mkv")
    assert out.is_file() and len(read_all_frames(out)) == 12
    assert leftovers(clip.parent) == []


def test_several_inputs_into_a_folder(tmp_path, tiny_model_path):
    a = make_shapes_clip(tmp_path / "a.mp4", frames=6, audio=False)
    folder = make_frame_folder(tmp_path / "frames", n=3, bit_depth=8)
    result = invoke("run", a, folder, "-o", tmp_path / "out", "--model", tiny_model_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.color.mkv").is_file()
    assert len(list((tmp_path / "out" / "frames_color").iterdir())) == 3


def test_missing_input(tmp_path, tiny_model_path):
    assert_one_line_error(invoke("run", tmp_path / "nope.mkv", "--model", tiny_model_path), "nope.mkv")


def test_not_a_media_file(tmp_path, tiny_model_path):
    junk = tmp_path / "notes.mkv"
    junk.write_text("these are not video frames\n" * 50)
    assert_one_line_error(invoke("run", junk, "--model", tiny_model_path), "notes.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mkv"]


def test_no_video_stream(tmp_path, tiny_model_path):
    audio = make_audio_only(tmp_path / "song.mka")
    assert_one_line_error(invoke("run", audio, "--model", tiny_model_path), "video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mka"]


def test_truncated_file_names_the_frame_and_leaves_no_output(tmp_path, tiny_model_path):
    src = make_shapes_clip(tmp_path / "full.mp4", frames=60, audio=False)
    cut = tmp_path / "cut.mkv"
    full = make_shapes_clip(tmp_path / "full.mkv", frames=60, audio=False)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result = invoke("run", cut, "--model", tiny_model_path)
    assert_one_line_error(result, "frame")
    assert not (tmp_path / "cut.color.mkv").exists()
    assert leftovers(tmp_path) == []
    del src


def test_empty_folder(tmp_path, tiny_model_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("run", tmp_path / "empty", "--model", tiny_model_path), "no frames")
    assert not (tmp_path / "empty_color").exists()


def test_folder_with_frames_of_different_sizes(tmp_path, tiny_model_path):
    import cv2

    folder = make_frame_folder(tmp_path / "mixed", n=3, bit_depth=8, size=(64, 48))
    cv2.imwrite(str(folder / "z_odd.png"), np.zeros((20, 30, 3), np.uint8))
    assert_one_line_error(invoke("run", folder, "--model", tiny_model_path), "z_odd.png")
    assert not (tmp_path / "mixed_color").exists()


def test_output_equal_to_input_is_refused(clip, tiny_model_path):
    before = clip.read_bytes()
    assert_one_line_error(invoke("run", clip, "-o", clip, "--model", tiny_model_path), "input")
    assert clip.read_bytes() == before


def test_existing_output_needs_overwrite(clip, tiny_model_path):
    out = clip.with_name("ep.color.mkv")
    out.write_bytes(b"precious")
    assert_one_line_error(invoke("run", clip, "--model", tiny_model_path), "--overwrite")
    assert out.read_bytes() == b"precious"
    assert invoke("run", clip, "--model", tiny_model_path, "--overwrite").exit_code == 0
    assert len(read_all_frames(out)) == 12


def test_output_under_a_file_is_a_clear_error(clip, tmp_path, tiny_model_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    result = invoke("run", clip, "-o", blocker / "sub" / "out.mkv", "--model", tiny_model_path)
    assert_one_line_error(result)
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder(clip, tmp_path, tiny_model_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_one_line_error(invoke("run", clip, "-o", locked / "x.mkv", "--model", tiny_model_path), "writable")
    finally:
        locked.chmod(0o700)


def test_no_default_model_message_or_default_used(clip):
    """Without --model: the bundled model is used if installed, else a clear one-line error."""
    from framecolor.checkpoint import DATA_DIR, DEFAULT_MODEL_NAME

    result = invoke("run", clip)
    if (DATA_DIR / DEFAULT_MODEL_NAME).is_file():
        assert result.exit_code == 0, result.output
    else:
        assert_one_line_error(result, "no default model")


def test_ctrl_c_removes_temporary_files_and_exits_130(tmp_path, tiny_model_path):
    src = make_shapes_clip(tmp_path / "long.mkv", frames=400, size=(160, 120), audio=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A shell that runs the test suite in the background leaves SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: give the child the default disposition, as a terminal's Ctrl-C finds it.
    proc = subprocess.Popen([sys.executable, "-m", "framecolor.cli", "--quiet", "run", str(src), "--model",
                             str(tiny_model_path), "--batch", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not [p for p in tmp_path.iterdir() if "tmp" in p.name]:
        time.sleep(0.05)
    assert [p for p in tmp_path.iterdir() if "tmp" in p.name], "the run never started writing"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mkv"]


def test_skip_existing_resumes_a_folder(tmp_path, tiny_model_path):
    folder = make_frame_folder(tmp_path / "shot", n=4, bit_depth=8)
    out = tmp_path / "shot_color"
    assert invoke("run", folder, "--model", tiny_model_path).exit_code == 0
    victim = sorted(out.iterdir())[1]
    kept = sorted(out.iterdir())[0]
    kept_mtime = kept.stat().st_mtime_ns
    victim.unlink()
    assert invoke("run", folder, "--model", tiny_model_path, "--skip-existing").exit_code == 0
    assert victim.exists() and kept.stat().st_mtime_ns == kept_mtime


def test_sample_every_n_frames(clip, tmp_path):
    result = invoke("sample", clip, "--every", "5", "-o", tmp_path / "samples")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "frame_000000.png", "frame_000005.png", "frame_000010.png"]


def test_info_runs():
    result = invoke("info")
    assert result.exit_code == 0 and "torch" in result.output


def test_sample_lineart_writes_line_and_colour_pairs(clip, tmp_path):
    result = invoke("sample", clip, "--every", "6", "--lineart", "xdog", "-o", tmp_path / "pairs")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "pairs" / "line").iterdir()) == ["000000.png", "000006.png"]
    assert sorted(p.name for p in (tmp_path / "pairs" / "color").iterdir()) == ["000000.png", "000006.png"]


# ------------------------------------------------------------------------------- reliability (issue 18)
def run_cli(*args, **kwargs):
    """`framecolor ...` in a child process (stdout and stderr apart, as a user's shell sees them)."""
    return subprocess.run([sys.executable, "-m", "framecolor.cli", *map(str, args)], capture_output=True,
                          text=True, **kwargs)


def test_batch_goes_on_past_a_bad_input_and_skip_existing_finishes_it(tmp_path, tiny_model_path):
    """A bad input in the middle of a batch: the inputs after it are coloured, the failure is one line naming
    it, the run ends with one summary line per input and 'N of M input(s) failed' (exit 3: a media error);
    re-running with --skip-existing keeps the finished outputs untouched and colours what is missing."""
    good = make_shapes_clip(tmp_path / "good.mkv", frames=6, audio=False)
    junk = tmp_path / "notvideo.mkv"
    junk.write_text("not a video\n" * 40)
    other = make_shapes_clip(tmp_path / "other.mkv", frames=5, audio=False)
    out = tmp_path / "batch"
    res = run_cli("-q", "run", good, junk, other, "-o", out, "--model", tiny_model_path, "--device", "cpu")
    assert res.returncode == 3, res.stderr
    assert (out / "good.color.mkv").is_file() and (out / "other.color.mkv").is_file()
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2 and "notvideo.mkv" in errors[0], res.stderr
    assert "1 of 3 input(s) failed" in errors[1] and "notvideo.mkv" in errors[1]
    lines = res.stdout.splitlines()
    assert len(lines) == 3, res.stdout
    assert lines[0].startswith(f"{good}: 6 frames in ") and "frames/s" in lines[0] and str(out / "good.color.mkv") in lines[0]
    assert lines[1].startswith(f"{junk}: failed")
    assert lines[2].startswith(f"{other}: 5 frames in ")

    kept = (out / "good.color.mkv").stat().st_mtime_ns
    (out / "other.color.mkv").unlink()
    junk.unlink()
    again = run_cli("-q", "run", good, other, "-o", out, "--model", tiny_model_path, "--device", "cpu")
    assert again.returncode == 2 and "--skip-existing" in again.stderr  # an existing output is not replaced
    again = run_cli("-q", "run", good, other, "-o", out, "--model", tiny_model_path, "--device", "cpu",
                    "--skip-existing")
    assert again.returncode == 0, again.stderr
    assert (out / "good.color.mkv").stat().st_mtime_ns == kept
    assert len(read_all_frames(out / "other.color.mkv")) == 5
    assert "skipped" in again.stdout.splitlines()[0]
    assert sorted(p.name for p in out.iterdir()) == ["good.color.mkv", "other.color.mkv"]


def _default_signals():
    # a test suite run under nohup leaves SIGHUP ignored, which framecolor honours (the user asked the run to
    # survive the terminal): give the child the dispositions a terminal's process has
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _start_writing(src, tiny_model_path):
    proc = subprocess.Popen([sys.executable, "-m", "framecolor.cli", "--quiet", "run", str(src), "--model",
                             str(tiny_model_path), "--batch", "1", "--device", "cpu"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    deadline = time.time() + 60
    while time.time() < deadline and not [p for p in src.parent.iterdir() if "tmp" in p.name]:
        time.sleep(0.05)
    assert [p for p in src.parent.iterdir() if "tmp" in p.name], "the run never started writing"
    return proc


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_remove_temporary_files_like_ctrl_c(tmp_path, tiny_model_path, sig, code):
    """SIGTERM (a service manager, `kill`) and SIGHUP (the terminal closed) clean up as Ctrl-C does: no
    temporary file stays; the exit code is 128 + the signal number; one line, no traceback."""
    src = make_shapes_clip(tmp_path / "long.mkv", frames=400, size=(160, 120), audio=True)
    proc = _start_writing(src, tiny_model_path)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mkv"]


def test_temporary_left_by_a_killed_run_is_removed_by_the_next_run(tmp_path, tiny_model_path):
    """SIGKILL cannot be caught: its hidden temporary stays; the next run into that folder removes it (the
    process is gone) and says so, while a temporary of a live process is left alone."""
    src = make_shapes_clip(tmp_path / "long.mkv", frames=400, size=(160, 120), audio=False)
    proc = _start_writing(src, tiny_model_path)
    proc.kill()
    proc.communicate(timeout=60)
    stale = [p.name for p in tmp_path.iterdir() if "framecolor-tmp" in p.name]
    assert len(stale) == 1
    live = tmp_path / f".other.framecolor-tmp-{os.getpid()}.mkv"  # this test process is alive
    live.write_bytes(b"in progress")
    short = make_shapes_clip(tmp_path / "short.mkv", frames=4, size=(64, 48), audio=False)
    res = run_cli("run", short, "--model", tiny_model_path, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert stale[0] in res.stderr and "killed" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if "framecolor-tmp" in p.name) == [live.name]


def test_input_and_output_checks_come_before_the_model_loads(clip, tmp_path):
    """Bad -o (a path under a file) and a bad input are one line with exit 2 / 3 even when the model does not
    exist: they are found before the model would load (which would fail with another message)."""
    missing_model = tmp_path / "no_such_model.safetensors"
    res = invoke("run", clip, "-o", "/etc/hostname/x.mkv", "--model", missing_model)
    assert_one_line_error(res, "/etc/hostname", "not a folder")
    assert res.exit_code == 2
    junk = tmp_path / "notes.mkv"
    junk.write_text("not a video\n" * 40)
    res = invoke("run", junk, "--model", missing_model)
    assert_one_line_error(res, "notes.mkv")
    assert res.exit_code == 3
    res = invoke("run", clip, "-o", tmp_path / "x.webm", "--model", missing_model)
    assert_one_line_error(res, "cannot hold libx264")


def test_frame_folder_with_a_video_name_needs_fps_and_then_writes_a_video(tmp_path, tiny_model_path):
    """`-o x.mkv` for a frame folder never makes a folder named x.mkv: without --fps it is refused in one line;
    with --fps it writes a video of the frames at that rate."""
    folder = make_frame_folder(tmp_path / "frames", n=5, bit_depth=8)
    out = tmp_path / "x.mkv"
    assert_one_line_error(invoke("run", folder, "-o", out, "--model", tiny_model_path), "--fps")
    assert not out.exists()
    res = invoke("run", folder, "-o", out, "--model", tiny_model_path, "--fps", "24000/1001")
    assert res.exit_code == 0, res.output
    assert out.is_file()
    frames = read_all_frames(out)
    assert len(frames) == 5
    times = [float(pts * tb) for pts, tb, _ in frames]
    assert np.allclose(np.diff(times), 1001 / 24000, atol=1e-3)


def test_one_video_into_a_new_folder_named_with_a_trailing_slash(clip, tmp_path, tiny_model_path):
    """`-o newdir/` (not there yet): the slash means a folder; it is created and the video goes in it."""
    res = invoke("run", clip, "-o", f"{tmp_path / 'newdir'}/", "--model", tiny_model_path)
    assert res.exit_code == 0, res.output
    assert len(read_all_frames(tmp_path / "newdir" / "ep.color.mkv")) == 12


def test_two_inputs_writing_the_same_output_are_named(tmp_path, tiny_model_path):
    """a/ep.mkv and b/ep.mkv into one folder would both write ep.color.mkv: the one-line error names both."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_shapes_clip(tmp_path / "a" / "ep.mkv", frames=3, audio=False)
    b = make_shapes_clip(tmp_path / "b" / "ep.mkv", frames=3, audio=False)
    assert_one_line_error(invoke("run", a, b, "-o", tmp_path / "out", "--model", tiny_model_path), str(a), str(b))


def test_no_progress_bar_in_a_log_unless_asked(clip, tiny_model_path):
    """stderr is a pipe (a log file): no progress bar; --progress draws it anyway."""
    res = run_cli("run", clip, "--model", tiny_model_path, "--device", "cpu", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr and "frame/s" not in res.stderr
    res = run_cli("run", clip, "--model", tiny_model_path, "--device", "cpu", "--overwrite", "--progress")
    assert res.returncode == 0 and "12/12" in res.stderr


def test_exit_codes_are_documented_in_help_and_readme():
    from pathlib import Path

    res = run_cli("--help")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for text in (res.stdout, readme):
        for code in ("130", "143", "129"):
            assert code in text
        assert "Exit codes" in text


def test_full_disk_warns_at_the_start_and_fails_long_before_the_end(tmp_path, tmpfs, tiny_model_path):
    """Output on a 64 KB disk, input of about 200 KB: a warning at the start says it will probably not fit;
    the run fails with exit 1 naming a frame well before the last one (not when finishing the file), and
    leaves nothing on the disk."""
    import re

    disk = tmpfs(64)
    src = make_shapes_clip(tmp_path / "big.mkv", frames=200, size=(320, 240), audio=False, color=False)
    assert src.stat().st_size > 128_000
    res = run_cli("run", src, "-o", disk / "out.mkv", "--model", tiny_model_path, "--device", "cpu")
    assert res.returncode == 1, res.stderr
    assert "will probably not fit" in res.stderr
    m = re.search(r"writing frame (\d+) failed: No space left", res.stderr)
    assert m and int(m.group(1)) < 150, res.stderr
    assert list(disk.iterdir()) == []
