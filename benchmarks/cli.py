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
@click.option("--data", "data", multiple=True, metavar="PATH[@A:B:STEP]",
              help="Video or folder of same-size frames, optional frame range and scoring step (repeatable). "
                   "With --scenario keyed: the clips of that scenario.")
@click.option("--keys", "keys", multiple=True, metavar="N,N,...",
              help="Key frame numbers for the --data of the same position (default: the first frame and every "
                   "detected cut).")
@click.option("--scenario", "scenarios", multiple=True, type=click.Choice(["keyed", "other", "sheet", "all"]),
              help="Issue 16's scenarios beside gray, the automatic model and flow propagation: keyed (first "
                   "frame of each true shot), other (keys for part of the material), sheet (a model sheet as "
                   "the key). Needs --eval-anime, except keyed with --data.")
@click.option("--eval-anime", "eval_anime", type=click.Path(path_type=Path, file_okay=False),
              help="The eval-anime folder (clips/ and stills/).")
@click.option("--model", type=click.Path(path_type=Path),
              help="Generator for what carrying does not cover and for the automatic column (default: bundled).")
@click.option("--step", type=int, help="With --scenario: score every Nth frame (default 5, 2 on short clips).")
@click.option("--no-warp", is_flag=True, help="With --scenario: skip the warp-error measurement.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="With --scenario: folder for results.md, results.json and contact.png.")
@click.option("--temporal", type=click.Choice(["off", "flow"]), default="off", show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("bench_reference.json"), show_default=True, help="Where the JSON results go.")
def reference(data, keys, scenarios, eval_anime, model, step, no_warp, out_dir, temporal, json_path):
    """Reference mode against flow propagation (and, with --scenario, gray and the automatic model), in
    CIEDE2000."""
    from tqdm import tqdm

    from . import quality as Q
    from . import reference as R

    if scenarios:
        return _reference_scenarios(data, scenarios, eval_anime, model, step, no_warp, out_dir)
    if not data:
        raise UserError("give --data (or --scenario)")
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
            results.append(R.evaluate_reference(spec, keys=ks, temporal=temporal,
                                                progress=bar.update))
    seconds = time.perf_counter() - t0
    click.echo(R.markdown(results))
    _write_json(json_path, {"results": [r.to_json() for r in results], "temporal": temporal,
                            "seconds": round(seconds, 1)})
    click.echo(f"wrote {json_path} ({seconds:.1f} s)")


def _reference_scenarios(data, scenarios, eval_anime, model, step, no_warp, out_dir):
    """`bench reference --scenario ...`: issue 16's three scenarios, each item beside gray, the automatic
    model, flow propagation and reference mode; tables printed and written with a contact sheet."""
    from tqdm import tqdm

    from . import reference as R

    chosen = list(R.SCENARIOS) if "all" in scenarios else list(dict.fromkeys(scenarios))
    if step is not None and step < 1:
        raise UserError(f"--step must be at least 1 (got {step})")
    if eval_anime is not None and not (eval_anime / "clips").is_dir():
        raise UserError(f"--eval-anime {eval_anime}: no clips/ folder in it")
    needs_root = [s for s in chosen if s != "keyed" or not data]
    if needs_root and eval_anime is None:
        raise UserError(f"--scenario {', '.join(needs_root)} needs --eval-anime DIR")
    if model is not None and not model.exists():
        raise UserError(f"--model {model}: no such file")
    clips = [Path(d) for d in data]
    for c in clips:
        if not c.is_file():
            raise UserError(f"--data {c}: no such file")
    t0 = time.perf_counter()
    results = []
    for sc in chosen:
        if sc == "keyed":
            cases = R.keyed_cases(clips or sorted((eval_anime / "clips").glob("*.mp4")), step)
        elif sc == "other":
            cases = R.other_cases(eval_anime, step or 5)
        else:
            cases = R.sheet_cases(eval_anime, step or 2)
        for case in cases:
            with tqdm(total=len(case.frames), unit="frame", desc=f"{sc} {case.name}", leave=False) as bar:
                results.append(R.evaluate_case(case, model=str(model) if model else None,
                                               warp=not no_warp, progress=bar.update))
            del case.frames
    seconds = time.perf_counter() - t0
    table = R.scenario_markdown(results)
    click.echo(table)
    click.echo(f"model: {model or 'bundled default'}; {seconds:.0f} s")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_json(out_dir / "results.json", {"results": [r.to_json() for r in results],
                                               "model": str(model) if model else "bundled default",
                                               "seconds": round(seconds, 1)})
        tmp = out_dir / ".results.md.part"
        tmp.write_text(table + "\n")
        os.replace(tmp, out_dir / "results.md")
        sheet = R.write_scenario_sheet(out_dir / "contact.png", results)
        click.echo(f"wrote {out_dir / 'results.md'}, results.json and {sheet.name}")
