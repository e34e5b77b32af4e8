"""The training loop and the `train` command: learning, reproducibility, checkpoints, resume."""

import csv

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from framecolor.checkpoint import load_generator, read_metadata, resolve_model_path
from framecolor.models.unet import UNet, UNetConfig
from training.cli import train as train_command
from training.data import PairDataset
from training.discriminator import PatchGAN, PatchGANConfig
from training.train import TrainOptions, make_optimizers, train, train_steps

TINY = dict(base_channels=8, depth=3, batch=2, crop=32, short_side=48, d_channels=8, d_layers=2, threads=1,
            progress=False)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_few_l1_steps_lower_the_loss_on_held_out_synthetic_batch():
    torch.manual_seed(0)
    g = UNet(UNetConfig(base_channels=8, depth=3, dropout=0.0))
    data = PairDataset.from_specs(["synthetic"], crop=32, short_side=48)
    L, ab, _ = data.batch(np.random.default_rng(123), 8)  # held-out: a different rng than training

    def held_out_l1():
        g.eval()
        with torch.no_grad():
            value = (g(L) - ab).abs().mean().item()
        g.train()
        return value

    before = held_out_l1()
    opt = make_optimizers(g, None, lr=2e-3)
    hist = train_steps(g, None, opt, data, 40, rng=np.random.default_rng(0), batch=4)
    after = held_out_l1()
    assert all(h["phase"] == "l1" for h in hist)
    # 40 steps take a tiny net from its random-init output down to about the gray (ab = 0) level: 0.198 ->
    # 0.152 with this seed; 0.9 leaves room for numeric differences between machines.
    assert after < 0.9 * before


def test_adversarial_phase_updates_discriminator_and_reports_losses():
    torch.manual_seed(0)
    g = UNet(UNetConfig(base_channels=8, depth=3))
    d = PatchGAN(PatchGANConfig(base_channels=8, n_layers=2))
    data = PairDataset.from_specs(["synthetic"], crop=32, short_side=48)
    opt = make_optimizers(g, d)
    d_before = _weights(d)
    hist = train_steps(g, d, opt, data, 3, rng=np.random.default_rng(0), batch=2, warmup_steps=1,
                       gan_loss="lsgan", ciede_weight=0.5)
    assert [h["phase"] for h in hist] == ["l1", "gan", "gan"]
    assert np.isnan(hist[0]["d_loss"]) and all(np.isfinite(h[k]) for h in hist[1:] for k in ("d_loss", "g_adv", "ciede"))
    assert any(not torch.equal(d_before[k], v) for k, v in d.state_dict().items())


def test_same_seed_gives_identical_weights_and_other_seed_differs(tmp_path):
    paths = [train(TrainOptions(data=["synthetic"], out=tmp_path / name, steps=3, warmup_steps=1, seed=seed,
                                checkpoint_every=3, **TINY)) for name, seed in (("a", 1), ("b", 1), ("c", 2))]
    wa, wb, wc = (_weights(load_generator(p)) for p in paths)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_checkpoint_round_trips_to_identical_outputs(tmp_path):
    from training.train import resolve_device  # noqa: F401  (device handling is part of train())

    out = tmp_path / "run"
    train(TrainOptions(data=["synthetic"], out=out, steps=2, warmup_steps=1, checkpoint_every=2, **TINY))
    g1 = load_generator(out / "step_000002.safetensors")
    g2 = load_generator(out)  # folder -> model.safetensors
    x = torch.rand(1, 1, 40, 56) * 2 - 1
    with torch.no_grad():
        assert torch.equal(g1(x), g2(x))
    config, info = read_metadata(out / "step_000002.safetensors")
    assert config["base_channels"] == 8 and info["steps"] == 2 and info["data"] == ["synthetic"]
    assert info["seed"] == 0 and "wall_seconds" in info


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    opts = dict(data=["synthetic", "skimage"], warmup_steps=1, checkpoint_every=2, **TINY)
    straight = train(TrainOptions(out=tmp_path / "straight", steps=4, **opts))
    train(TrainOptions(out=tmp_path / "resumed", steps=2, **opts))
    resumed = train(TrainOptions(out=tmp_path / "resumed", steps=4, resume=True, **opts))
    ws, wr = _weights(load_generator(straight)), _weights(load_generator(resumed))
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    with open(tmp_path / "resumed" / "losses.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]


def test_train_cli_writes_checkpoints_grid_losses_and_resumes(tmp_path):
    out = tmp_path / "cli"
    args = ["--data", "synthetic", "--out", str(out), "--base-channels", "8", "--depth", "3", "--batch", "2",
            "--crop", "32", "--short-side", "48", "--d-channels", "8", "--d-layers", "2", "--threads", "1",
            "--warmup-steps", "1", "--checkpoint-every", "2"]
    runner = CliRunner()
    result = runner.invoke(train_command, args + ["--steps", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in ("step_000002.safetensors", "state_000002.pt", "grid_000002.png", "model.safetensors",
                 "losses.csv"):
        assert (out / name).is_file(), name
    import cv2

    grid = cv2.imread(str(out / "grid_000002.png"))
    assert grid.shape[1] == 3 * 32 and grid.shape[0] == 4 * 32  # gray | output | truth, 4 samples
    assert resolve_model_path(out) == out / "model.safetensors"
    with open(out / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "phase", "l1", "g_adv", "d_loss", "ciede", "seconds"]
    assert [r["phase"] for r in rows] == ["l1", "gan"]

    result = runner.invoke(train_command, args + ["--steps", "3", "--resume"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (out / "step_000003.safetensors").is_file() and (out / "state_000003.pt").is_file()
    _, info = read_metadata(out / "model.safetensors")
    assert info["steps"] == 3


def test_resume_without_state_is_user_error(tmp_path):
    from framecolor.errors import UserError

    with pytest.raises(UserError, match="resume"):
        train(TrainOptions(data=["synthetic"], out=tmp_path / "empty", steps=2, resume=True, **TINY))


def test_bad_options_are_user_errors(tmp_path):
    from framecolor.errors import UserError

    with pytest.raises(UserError):
        TrainOptions(data=["synthetic"], out=tmp_path, arch="vgg")
    with pytest.raises(UserError):
        train(TrainOptions(data=["nope.mp4:anime"], out=tmp_path / "x", steps=1, **TINY))


def test_hue_jitter_reaches_the_data_and_is_refused_where_inputs_carry_colour(tmp_path):
    """Every training builds its pairs through TrainOptions.pair_dataset, so the augmentation is never
    silently dropped; line-art samples make inputs from the unrotated colours, so it is refused."""
    from framecolor.errors import UserError

    data = TrainOptions(data=["synthetic"], out=tmp_path, hue_jitter=0.5, hue_jitter_domain=None,
                        crop=32, short_side=64).pair_dataset()
    assert data.hue_jitter == 0.5 and data.hue_jitter_domain is None
    with pytest.raises(UserError, match="--hue-jitter does not combine"):
        TrainOptions(data=["synthetic"], out=tmp_path, hue_jitter=0.5, lineart="draft")


def test_framecolor_train_then_run_with_the_trained_model_end_to_end(tmp_path):
    """`framecolor train` (attached lazily to the main group) writes a model that `framecolor run --model`
    uses on a real clip, by file and by folder."""
    from framecolor.cli import cli

    from clips import make_shapes_clip, read_all_frames

    out = tmp_path / "model"
    runner = CliRunner()
    result = runner.invoke(cli, ["--quiet", "train", "--data", "synthetic", "--out", str(out), "--steps", "2",
                                 "--base-channels", "8", "--depth", "3", "--batch", "2", "--crop", "32",
                                 "--short-side", "48", "--d-channels", "8", "--d-layers", "2", "--threads", "1",
                                 "--warmup-steps", "1", "--checkpoint-every", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    clip = make_shapes_clip(tmp_path / "in.mkv", frames=6, audio=False)
    for model in (out / "step_000002.safetensors", out):
        target = tmp_path / f"out_{model.name}.mkv"
        result = runner.invoke(cli, ["--quiet", "run", str(clip), "-o", str(target), "--model", str(model)],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert len(read_all_frames(target)) == 6
