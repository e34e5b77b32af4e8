"""`framecolor bench quality` and `framecolor bench speed`: the Click group attached lazily to the
`framecolor` command by import path ("benchmarks.cli:bench").  Options are parsed here; the work is in
benchmarks/quality.py, report.py and speed.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from framecolor.errors import UserError


class _BenchGroup(click.Group):
    """Turns a UserError into one line and its exit code also when the group is run on its own."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            err = click.ClickException(str(exc))
            err.exit_code = exc.exit_code
            raise err from None


@click.group(cls=_BenchGroup)
def bench():
    """Quality (CIEDE2000, SSIM, PSNR, colourfulness, CDC, warp error) and speed benchmarks."""


def _model_names(models: tuple[Path, ...]) -> list[tuple[str, object]]:
    if not models:
        return [("default", None)]
    out, seen = [], {}
    for m in models:
        name = m.stem if m.suffix else m.name
        if name == "model" and m.parent.name:  # training folders hold model.safetensors
            name = m.parent.name
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", str(m)))
    return out


@bench.command("quality")
@click.option("--model", "models", multiple=True, type=click.Path(path_type=Path),
              help="Generator checkpoint (repeatable). Default: the bundled model.")
@click.option("--data", "data", multiple=True, required=True, metavar="PATH[:domain][@A:B:STEP]",
              help="Video, frame folder or image, with an optional domain label and frame range (repeatable).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder for results.md/.csv/.json, charts and contact sheets.")
@click.option("--batch", default=4, show_default=True, type=int)
@click.option("--render-size", type=int, help="Short side the generators run at (default: each model's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--temporal", "temporals", multiple=True, type=click.Choice(["off", "flow"]),
              help="Temporal smoothing of the models' output (repeatable: `--temporal off --temporal flow` scores "
                   "both side by side). Default: off.")
@click.option("--backend", "backends", multiple=True, metavar="NAME[:PRECISION]",
              help="Backend the models run on, e.g. openvino:bf16 (repeatable: scored side by side). Default: "
                   "torch:fp32, the reference the earlier figures were measured with.")
def quality(models, data, out_dir, batch, render_size, device, temporals, backends):
    """Score models and the gray / flow-propagation baselines on data sets (design notes' protocol)."""
    from tqdm import tqdm

    from framecolor.backends import resolve_device
    from framecolor.checkpoint import load_generator

    from . import quality as Q
    from . import report

    from .speed import parse_backend_spec

    specs = [Q.parse_data_spec(d) for d in data]  # every spec checked before any work
    backend_specs = [parse_backend_spec(b) for b in dict.fromkeys(backends or ("torch:fp32",))]
    named = _model_names(models)
    dev = resolve_device(device)
    temporals = list(dict.fromkeys(temporals)) or ["off"]
    loaded = []
    for name, path in named:
        model = load_generator(path, device=dev)
        for t in temporals:
            for backend, precision in backend_specs:
                label = name if len(temporals) == 1 else f"{name} [temporal {t}]"
                if len(backend_specs) > 1:
                    label += f" [{backend} {precision}]"
                loaded.append((label, model, t, backend, precision))
    t0 = time.perf_counter()
    results = []
    for spec in specs:
        _, _, count = Q.open_source(spec)
        with tqdm(total=count, unit="frame", desc=spec.name, leave=False, dynamic_ncols=True) as bar:
            results.append(Q.evaluate_dataset(spec, loaded, batch=batch, render_size=render_size, device=dev,
                                              progress=bar.update))
    meta = {"models": [n for n, *_ in loaded], "temporal": temporals, "model_paths": [str(p) if p else "bundled default" for _, p in named],
            "device": dev, "backends": [f"{b}:{p}" for b, p in backend_specs], "batch": batch, "render_size": render_size, "seconds": time.perf_counter() - t0,
            "data": list(data)}
    written = report.write_results(out_dir, results, meta)
    click.echo(report.markdown(results, meta))
    click.echo(f"wrote {len(written)} files to {out_dir} in {meta['seconds']:.1f} s")


def _sizes(values):
    return tuple(values) or (None,)


@bench.command("speed")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--model", type=click.Path(path_type=Path), help="Generator checkpoint. Default: the bundled model.")
@click.option("--backend", "backends", multiple=True, metavar="NAME[:PRECISION]",
              help="Backend, optionally with a precision: torch, openvino:bf16, onnxruntime, tensorrt, auto "
                   "(repeatable, side by side). Default: every installed one, torch fp32 first.")
@click.option("--stages/--no-stages", default=True, show_default=True,
              help="Also measure CPU ms per frame of each pipeline stage (video input), per backend.")
@click.option("--batch", "batches", multiple=True, type=int, help="Batch size (repeatable). Default: 4.")
@click.option("--render-size", "render_sizes", multiple=True, type=int,
              help="Render short side (repeatable). Default: the model's.")
@click.option("--device", default="auto", show_default=True)
@click.option("--frames", type=int, help="Use only the first N frames of the input.")
@click.option("--yardstick", is_flag=True, help="Also time the ECCV16 network (random weights) at the same shapes.")
@click.option("--temporal", "temporals", multiple=True, type=click.Choice(["off", "flow"]),
              help="Temporal smoothing in the end-to-end run (repeatable: off and flow side by side). "
                   "Default: the product's default (flow for video).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=Path("bench_speed.json"),
              show_default=True, help="Where the JSON results go.")
def speed(input_path, model, backends, stages, batches, render_sizes, device, frames, yardstick, temporals,
          json_path):
    """Frames/s of decode+encode only, the model alone and end to end, side by side, with their ratios."""
    from . import speed as S

    if frames is not None and frames < 1:
        raise UserError(f"--frames must be at least 1 (got {frames})")
    if any(b < 1 for b in batches):
        raise UserError("--batch values must be at least 1")
    t0 = time.perf_counter()
    result = S.run_speed(input_path, model=str(model) if model else None, backends=tuple(backends) or None, stages=stages,
                         batches=tuple(batches) or (4,), render_sizes=_sizes(render_sizes), device=device,
                         frames=frames, yardstick=yardstick, echo=click.echo,
                         temporals=tuple(temporals) or (None,))
    result["meta"]["seconds"] = time.perf_counter() - t0
    click.echo(S.table(result))
    _write_json(json_path, result)
    click.echo(f"wrote {json_path} ({result['meta']['seconds']:.1f} s)")


def _write_json(path: Path, payload) -> None:
    """Write JSON next to its final name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


@bench.command("reference")
@click.option("--data", "data", multiple=True, required=True, metavar="PATH[@A:B:STEP]",
              help="Video or folder of same-size frames, optional frame range and scoring step (repeatable).")
@click.option("--keys", "keys", multiple=True, metavar="N,N,...",
              help="Key frame numbers for the --data of the same position (default: the first frame and every "
                   "detected cut).")
@click.option("--hint-model", default=None, metavar="PATH|none",
              help="Hint network checkpoint, or none for the edge-aware densifier. Default: as `run`.")
@click.option("--temporal", type=click.Choice(["off", "flow"]), default="off", show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("bench_reference.json"), show_default=True, help="Where the JSON results go.")
def reference(data, keys, hint_model, temporal, json_path):
    """Reference mode (first frame of each shot as key) against flow propagation, in CIEDE2000."""
    from tqdm import tqdm

    from . import quality as Q
    from . import reference as R

    specs = [Q.parse_data_spec(d) for d in data]
    if len(keys) > len(specs):
        raise UserError(f"{len(keys)} --keys for {len(specs)} --data")
    key_lists: list[list[int] | None] = []
    for k in range(len(specs)):
        if k >= len(keys):
            key_lists.append(None)
            continue
        try:
            key_lists.append(sorted({int(x) for x in keys[k].split(",") if x.strip()}))
        except ValueError:
            raise UserError(f"--keys {keys[k]!r}: expected frame numbers separated by commas") from None
    t0 = time.perf_counter()
    results = []
    for spec, ks in zip(specs, key_lists):
        _, _, count = Q.open_source(spec)
        with tqdm(total=count, unit="frame", desc=spec.name, leave=False, dynamic_ncols=True) as bar:
            results.append(R.evaluate_reference(spec, hint_model=hint_model, keys=ks, temporal=temporal,
                                                progress=bar.update))
    seconds = time.perf_counter() - t0
    click.echo(R.markdown(results))
    _write_json(json_path, {"results": [r.to_json() for r in results], "temporal": temporal,
                            "hint_model": hint_model or "default", "seconds": round(seconds, 1)})
    click.echo(f"wrote {json_path} ({seconds:.1f} s)")
