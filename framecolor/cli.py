"""The `framecolor` command line: Click wiring only. Commands parse options and hand them to the modules
that do the work (``run``: :class:`framecolor.job.RunOptions`, :mod:`framecolor.batch`, :mod:`framecolor.job`,
:mod:`framecolor.scaleout`).

torch, av, cv2 and numpy are imported inside the commands, so `framecolor --help` stays fast.  The `train`,
`bench` and `lineart-pairs` commands live in training/ and benchmarks/ and are attached lazily by import path
(Click's documented lazy-loading group), so the product never imports them unless asked.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

import click

from .errors import UserError
from .temporal import SMOOTHERS

log = logging.getLogger("framecolor")

LAZY_COMMANDS = {
    "train": ("training.cli", "train", "Train a generator on your own material (extra: train)."),
    "bench": ("benchmarks.cli", "bench", "Quality and speed benchmarks (extra: bench)."),
    "lineart-pairs": ("training.lineart_cli", "lineart_pairs",
                      "Line-art training pairs from a video or frame folder (extra: train)."),
}


class FramecolorError(click.ClickException):
    """A UserError (or interruption) as Click sees it: one line on stderr and the error's exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None):
        click.echo(f"framecolor: error: {self.message}", err=True, file=file)


class LazyGroup(click.Group):
    """A group whose subcommands named in LAZY_COMMANDS are imported only when invoked.

    It also turns the errors a user can act on into one line and an exit code, never a traceback, the same
    for every command (EXIT_CODES): UserError (exit 2, media errors 3), OSError such as a full disk (exit 1),
    Ctrl-C (130), SIGTERM (143) and SIGHUP (129), which clean up as Ctrl-C does (framecolor.signals).
    """

    def invoke(self, ctx):
        from .signals import exit_code_of, interruptible

        try:
            with interruptible():
                return super().invoke(ctx)
        except UserError as exc:
            raise FramecolorError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt as exc:
            what = getattr(exc, "name", "")
            raise FramecolorError(f"interrupted{f' ({what})' if what else ''}; temporary files removed",
                                  exit_code_of(exc)) from None
        except OSError as exc:
            raise FramecolorError(str(exc), 1) from None

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            module_name, attr, _ = LAZY_COMMANDS[name]
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise click.ClickException(f"`framecolor {name}` is not available: {exc}") from None
            return getattr(module, attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        # List lazy commands with their short help without importing them.
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                rows.append((name, LAZY_COMMANDS[name][2]))
            else:
                cmd = super().get_command(ctx, name)
                rows.append((name, cmd.get_short_help_str(limit=60)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("framecolor: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)


EXIT_CODES = """\b
Exit codes (every command):
  0    done
  1    unexpected failure (a bug, a full disk...), or a batch whose failed inputs failed differently
  2    usage or bad input (missing file, bad option, output exists...)
  3    media error (not a video, no video stream, corrupt or truncated file)
  130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM; 129 by SIGHUP: temporary files removed
A batch that finished some inputs and failed others exits with the failures' code (2 or 3).
"""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(package_name="framecolor")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(ctx, quiet, verbose):
    """Colourise grayscale and black-and-white animation and film: episodes, frame folders, shots."""
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    _setup_logging(quiet, verbose)


@cli.command(epilog=EXIT_CODES)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(),
              help="Output file (one input) or folder (several inputs, or a name ending in /, created if need "
                   "be). Default: NAME.color.mkv / NAME_color/ beside the input.")
@click.option("--model", type=click.Path(path_type=Path), help="Generator checkpoint (.safetensors or a training folder). Default: the bundled model.")
@click.option("--batch", default="4", show_default=True,
              help="Frames per generator call, or 'auto' (the largest that fits on a GPU; 4 on CPU).")
@click.option("--render-size", type=int, help="Short side the generator runs at (default: the model's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "torch", "tensorrt", "openvino", "onnxruntime"]),
              help="auto: TensorRT on a GPU where installed; on CPU OpenVINO, else ONNX Runtime, else torch.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="auto: fp16 on CUDA; bf16 with OpenVINO where the CPU has native bf16; else fp32.")
@click.option("--temporal", type=click.Choice(list(SMOOTHERS)), help="Temporal smoothing (default: flow for video, off for frame folders).")
@click.option("--cut-threshold", type=float,
              help="Scene-cut sensitivity: the percentage of the picture that must be new content (default 2.0; "
                   "lower finds more cuts).")
@click.option("--every", default=1, show_default=True, type=int, help="Colour every Nth frame only (a preview).")
@click.option("--start", help="First frame: a frame number (120) or a time (12.5s, 00:01:02.5).")
@click.option("--end", help="Frame or time to stop before.")
@click.option("--codec", default="libx264", show_default=True, type=click.Choice(["libx264", "libx265", "ffv1", "prores_ks"]))
@click.option("--crf", type=int, help="Quality for libx264/libx265 (lower is better; default 18).")
@click.option("--preset", type=click.Choice(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                                             "slower", "veryslow"]),
              help="Encoder speed for libx264/libx265: slower gives smaller files at the same --crf "
                   "(default: faster for libx264, the encoder's own for libx265).")
@click.option("--pix-fmt", help="Output pixel format (default: yuv420p, yuv420p10le for 10-bit input, yuv444p for odd sizes).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--skip-existing", is_flag=True,
              help="Resume a job: keep video outputs that exist (complete by construction) and frames already "
                   "coloured in frame folders.")
@click.option("--fps", help="Frame folder into a video (-o NAME.mkv): its frame rate (24, 23.976, 24000/1001).")
@click.option("--progress/--no-progress", default=None,
              help="Draw progress bars (default: only when stderr is a terminal).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", metavar="[ADDRESS]",
              help="Run on Ray (extra: ray). Alone: a local Ray instance for this run; 'auto' or "
                   "'ray://host:port': an existing cluster. Inputs and outputs must be on shared storage.")
@click.option("--workers", type=int, help="With --ray: number of workers (default: as many as fit).")
@click.option("--cpus-per-worker", default=1.0, show_default=True, type=float, help="With --ray: CPU cores per worker.")
@click.option("--gpus-per-worker", default=0.0, show_default=True, type=float, help="With --ray: GPUs per worker (0.5: two per GPU).")
@click.option("--split-episodes/--no-split", default=False, show_default=True,
              help="With --ray: split each video at scene cuts and colour its segments in parallel.")
@click.option("--reference", "references", multiple=True, metavar="[FRAME=]PATH",
              help="Reference mode, repeatable: a coloured key frame. FRAME=PATH pins it to a frame number; a bare "
                   "PATH is placed at its best-matching frame; a folder holds keys named by frame number. Each key "
                   "governs its shot; shots without one are coloured automatically (docs/reference-mode.md).")
@click.option("--hints", "hints_file", type=click.Path(path_type=Path), metavar="FILE.json",
              help='Point colour hints: [{"frame": 120, "x": 312, "y": 88, "rgb": [200, 40, 40]}, ...].')
@click.option("--input-kind", default="gray", show_default=True, metavar="auto|gray|lineart",
              help="gray: shaded grayscale (its luminance is kept); lineart: line drawings coloured by the two-stage "
                   "line-art models (lightness from the model, lines kept dark); auto: decided per input on a few "
                   "sampled frames (logged).")
@click.option("--draft-model", type=click.Path(path_type=Path),
              help="Line art: drafting stage checkpoint (default: the bundled lineart_draft model).")
@click.option("--refine-model", metavar="PATH|none",
              help="Line art: refinement stage checkpoint (default: the bundled lineart_refine model; 'none': "
                   "the draft alone).")
@click.option("--adapt", is_flag=True,
              help="First teach the generator the show from the --reference keys (see `framecolor adapt`; --model "
                   "is then the base). Cached in .framecolor/ beside the output, reused by later runs with the same keys.")
@click.option("--adapt-minutes", type=float, metavar="M", help="With --adapt: time budget of the adaptation (default 3).")
@click.pass_context
def run(ctx, inputs, output, model, batch, render_size, device, backend, precision, temporal, cut_threshold, every,
        start, end, codec, crf, preset, pix_fmt, overwrite, skip_existing, fps, progress, ray_address, workers,
        cpus_per_worker, gpus_per_worker, split_episodes, references, hints_file, input_kind, draft_model,
        refine_model, adapt, adapt_minutes):
    """Colour videos (mkv, mp4, mov, avi, webm...) or folders of frames.

    Every input and output is checked before the model loads. With several inputs, one that fails is
    reported (one line naming it) and the others are still coloured; the run ends with one line per input
    (frames, time, frames/s, output) and a non-zero exit when any failed. Re-running with --skip-existing
    finishes an interrupted or partly failed batch.
    """
    from .batch import plan_jobs, raise_if_failed, run_jobs
    from .job import RunOptions, colour_input, load_colorizer

    output_dir = output is not None and output.endswith(("/", os.sep))
    output = Path(output) if output is not None else None
    options = RunOptions(model=model, device=device, backend=backend, precision=precision, batch=batch,
                         render_size=render_size, temporal=temporal, cut_threshold=cut_threshold, every=every,
                         start=start, end=end, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
                         overwrite=overwrite, skip_existing=skip_existing, quiet=ctx.obj["quiet"],
                         references=list(references), hints=hints_file, input_kind=input_kind,
                         draft_model=draft_model, refine_model=refine_model, fps=fps, progress=progress,
                         adapt=adapt, adapt_minutes=adapt_minutes).validate()
    inputs = list(inputs)
    if ray_address is None and (workers is not None or split_episodes):
        raise UserError("--workers and --split-episodes need --ray")
    if (references or hints_file) and (len(inputs) > 1 or ray_address is not None):
        raise UserError("--reference and --hints name frames of one input: give a single input, without --ray")
    jobs = plan_jobs(inputs, output, options, output_dir=output_dir)
    if ray_address is not None:
        from .scaleout import ClusterOptions, parse_address, run_jobs_on_ray

        run_jobs_on_ray(jobs, options, ClusterOptions(address=parse_address(ray_address), workers=workers,
                                                      cpus_per_worker=cpus_per_worker,
                                                      gpus_per_worker=gpus_per_worker, split=split_episodes))
    else:  # the model loads once, when the first input needs it
        run_jobs(jobs, options, lambda: load_colorizer(options, jobs[0].out, announce=True), colour_input)
    for job in jobs:
        click.echo(job.summary())
    raise_if_failed(jobs)


@cli.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for the PNG frames.")
@click.option("--every", default=60, show_default=True, type=int, help="Keep every Nth frame.")
@click.option("--scene-changes", is_flag=True,
              help="Propose reference-mode keys instead: frame 0, the first frame of each shot and frames where "
                   "much new content appears; a contact sheet NAME.contact.png is written beside the folder.")
@click.option("--new-content", default=15.0, show_default=True, type=float,
              help="With --scene-changes: percentage of the picture new since the last key that proposes another.")
@click.option("--cut-threshold", type=float, help="Scene-cut sensitivity override.")
@click.option("--overwrite", is_flag=True, help="Write into an existing non-empty folder.")
@click.option("--lineart", type=click.Choice(["xdog", "highpass"]),
              help="Write (line art, colour) training pairs into line/ and color/ instead (`framecolor lineart-pairs`; "
                   "needs the training package).")
@click.pass_context
def sample(ctx, input, output, every, scene_changes, new_content, cut_threshold, overwrite, lineart):
    """Write every Nth frame (or the keys worth painting for reference mode) as PNG, named by frame number."""
    from .sampling import sample_frames

    if lineart:
        if scene_changes:
            raise UserError("--lineart samples every Nth frame; it does not combine with --scene-changes")
        try:  # declared by the training package, reached through the group like `train` (never imported here)
            pairs = ctx.find_root().command.get_command(ctx, "lineart-pairs")
        except click.ClickException as exc:
            raise UserError(f"--lineart needs the training package ({exc.message})") from None
        return ctx.invoke(pairs, input=input, output=output, every=every, method=lineart, overwrite=overwrite)

    n = sample_frames(input, output, every=every, scene_changes=scene_changes, cut_threshold=cut_threshold,
                      overwrite=overwrite, new_content=new_content)
    click.echo(f"{n} frames written to {output}")


@cli.command()
@click.argument("keys", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="The adapted model (.safetensors): `framecolor run --model` takes it for any episode of the show.")
@click.option("--minutes", default=3.0, show_default=True, type=float, help="Time budget (the step count follows from the machine's speed).")
@click.option("--steps", type=int, help="An exact number of steps instead of --minutes (reproducible across machines).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (samples, dropout).")
@click.option("--model", "base", type=click.Path(path_type=Path), help="Base model to start from. Default: the bundled model.")
@click.option("--ciede-weight", default=0.0, show_default=True, type=float, help="Weight of the CIEDE2000 loss beside L1.")
@click.option("--threads", type=int, help="CPU threads (default: half the cores).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.pass_context
def adapt(ctx, keys, output, minutes, steps, seed, base, ciede_weight, threads, overwrite):
    """Teach the generator a show from a few coloured keys: frames of the show, model sheets, or folders of them."""
    from .adaptation import adapt as adapt_keys

    if output.exists() and not overwrite:
        raise UserError(f"{output}: output exists (use --overwrite to replace it)")
    click.echo(str(adapt_keys(list(keys), output, base=base, minutes=minutes, steps=steps, seed=seed,
                              progress=not ctx.obj["quiet"], threads=threads, ciede_weight=ciede_weight)))


@cli.command()
def info():
    """Versions, devices, backends and bundled models."""
    from .sysinfo import describe_system

    click.echo(describe_system())


@cli.command()
@click.option("--format", "fmt", required=True, type=click.Choice(["onnx", "tensorrt"]),
              help="onnx (float32, any runtime) or tensorrt (a serialized fp16 engine; NVIDIA GPU and the tensorrt extra).")
@click.option("--model", type=click.Path(path_type=Path), help="Generator checkpoint. Default: the bundled model.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="File to write (.onnx, .engine).")
@click.option("--height", type=int, help="Input height (default: the model's render size, 256).")
@click.option("--width", type=int, help="Input width (default: 16:9 at that height, 448).")
@click.option("--batch", default=1, show_default=True, type=int, help="Frames per call (fixed in the file).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def export(fmt, model, output, height, width, batch, overwrite):
    """Write the generator as ONNX or a TensorRT engine for other tools (input L/50-1, output ab/110)."""
    from .export import export_model

    click.echo(str(export_model(fmt, model, output, height=height, width=width, batch=batch, overwrite=overwrite)))


def main(argv=None):
    """Console entry point."""
    return cli.main(args=argv, prog_name="framecolor")


if __name__ == "__main__":
    main()
