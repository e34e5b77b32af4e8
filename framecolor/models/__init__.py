"""Generator architectures.  Each has a frozen config dataclass that is stored inside every checkpoint,
so inference rebuilds the network from the checkpoint alone (the habit of nanoGPT's ``GPTConfig``)."""

from __future__ import annotations

import dataclasses
from typing import Any


def config_from_dict(data: dict[str, Any]):
    """Rebuild a model config from its JSON form; unknown keys are refused (a typo must not pass silently)."""
    arch = data.get("arch")
    if arch == "unet":
        from .unet import UNetConfig as cls
    elif arch == "resnet34-unet":
        from .resnet_unet import ResNetUNetConfig as cls
    else:
        raise ValueError(f"unknown generator architecture {arch!r} (known: unet, resnet34-unet)")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {arch} config keys: {sorted(unknown)}")
    values = dict(data)
    for f in dataclasses.fields(cls):
        if f.name in values and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def config_to_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def build_generator(config):
    """The generator for a config: one explicit branch per architecture, no registry."""
    if config.arch == "unet":
        from .unet import UNet

        return UNet(config)
    if config.arch == "resnet34-unet":
        from .resnet_unet import ResNetUNet

        return ResNetUNet(config)
    raise ValueError(f"unknown generator architecture {config.arch!r}")
