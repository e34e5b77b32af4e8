"""Generators: shapes for any input size, parameter counts of the design, checkpoints round-trip."""

import json

import pytest
import torch

from framecolor.checkpoint import load_generator, read_metadata, save_generator
from framecolor.errors import UserError
from framecolor.models import build_generator, config_from_dict, config_to_dict
from framecolor.models.resnet_unet import ResNetUNetConfig
from framecolor.models.unet import UNetConfig


@pytest.mark.parametrize("config", [UNetConfig(base_channels=8, depth=4), ResNetUNetConfig(width=8)])
@pytest.mark.parametrize("size", [(64, 64), (37, 53), (17, 90)])
def test_output_is_ab_in_tanh_range_at_input_size(config, size):
    model = build_generator(config).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 1, *size) * 2 - 1)
    assert y.shape == (2, 2, *size)
    assert y.abs().max() <= 1


def test_design_unet_has_3_1_million_parameters():
    """The 32-channel depth-5 U-Net of the design's speed table (3.1 M parameters)."""
    model = build_generator(UNetConfig(base_channels=32, depth=5))
    n = sum(p.numel() for p in model.parameters())
    assert 3.0e6 < n < 3.3e6


def test_resnet34_encoder_has_the_published_block_counts():
    model = build_generator(ResNetUNetConfig(width=8))
    assert [len(stage) for stage in model.stages] == [3, 4, 6, 3]


def test_checkpoint_roundtrip_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = build_generator(UNetConfig(base_channels=8, depth=3)).eval()
    path = save_generator(tmp_path / "m.safetensors", model, info={"steps": 5})
    loaded = load_generator(path)
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    config, info = read_metadata(path)
    assert config_from_dict(config) == model.config and info == {"steps": 5}
    assert not list(tmp_path.glob("*.part"))


def test_config_roundtrips_through_json():
    cfg = ResNetUNetConfig(width=16)
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg


def test_unknown_architecture_and_keys_are_refused():
    with pytest.raises(ValueError, match="unknown generator architecture"):
        config_from_dict({"arch": "vit"})
    with pytest.raises(ValueError, match="unknown unet config keys"):
        config_from_dict({"arch": "unet", "base_chanels": 8})


def test_bad_model_paths_give_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_generator(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a framecolor checkpoint"):
        load_generator(junk)
    with pytest.raises(UserError, match="no model.safetensors"):
        load_generator(tmp_path)
