"""Generator checkpoints: safetensors weights with the model's JSON config in the file's metadata.

One ``.safetensors`` file is a whole model: ``load_generator`` reads the config from the metadata,
rebuilds the architecture from :mod:`framecolor.models` and loads the weights; the training code is never
needed.  A directory is accepted too (``model.safetensors`` in it, or the newest ``step_*.safetensors``
that training writes).  The bundled default model lives in ``framecolor/data/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import UserError

CONFIG_KEY = "framecolor_config"
INFO_KEY = "framecolor_info"
DATA_DIR = Path(__file__).parent / "data"
DEFAULT_MODEL_NAME = "default.safetensors"


def bundled_models() -> list[Path]:
    """The checkpoints shipped inside the package."""
    return sorted(DATA_DIR.glob("*.safetensors"))


def default_model_path() -> Path:
    path = DATA_DIR / DEFAULT_MODEL_NAME
    if not path.is_file():
        raise UserError(
            "no default model is installed in this copy of framecolor; pass --model PATH "
            "(a .safetensors checkpoint written by `framecolor train`)"
        )
    return path


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """--model argument -> a checkpoint file (None: the bundled default)."""
    if path is None:
        return default_model_path()
    p = Path(path)
    if p.is_dir():
        direct = p / "model.safetensors"
        if direct.is_file():
            return direct
        steps = sorted(p.glob("step_*.safetensors"))
        if steps:
            return steps[-1]
        raise UserError(f"{p}: folder holds no model.safetensors nor step_*.safetensors checkpoint")
    if not p.exists():
        raise UserError(f"{p}: model file does not exist")
    return p


def save_generator(path: str | os.PathLike, model, info: dict[str, Any] | None = None) -> Path:
    """Write weights + config (+ free-form info: data, steps, scores) atomically."""
    from safetensors.torch import save_file

    from .models import config_to_dict

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {CONFIG_KEY: json.dumps(config_to_dict(model.config))}
    if info:
        metadata[INFO_KEY] = json.dumps(info)
    tmp = path.with_name(f".{path.name}.part")
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config dict, info dict) of a checkpoint, without loading weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise UserError(f"{path}: not a framecolor checkpoint ({exc})") from None
    if CONFIG_KEY not in meta:
        raise UserError(f"{path}: safetensors file has no framecolor config in its metadata")
    return json.loads(meta[CONFIG_KEY]), json.loads(meta.get(INFO_KEY, "{}"))


def load_generator(path: str | os.PathLike | None = None, device: str = "cpu"):
    """Rebuild the generator of a checkpoint (None: the bundled default) in eval mode."""
    from safetensors.torch import load_file

    from .models import build_generator, config_from_dict

    resolved = resolve_model_path(path)
    config_dict, info = read_metadata(resolved)
    try:
        config = config_from_dict(config_dict)
    except ValueError as exc:
        raise UserError(f"{resolved}: {exc}") from None
    model = build_generator(config)
    state = load_file(str(resolved), device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{resolved}: weights do not match the {config.arch} config "
                        f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    model.eval().to(device)
    model.checkpoint_path = resolved
    model.checkpoint_info = info
    return model
