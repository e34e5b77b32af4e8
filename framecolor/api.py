"""The Python API: ``colorize_frames`` (frames in, coloured frames out), ``run`` (a video or frame folder to its
coloured copy) and ``adapt`` (teach the generator a show from a few coloured keys).

``import framecolor`` reaches these lazily (``framecolor.colorize_frames`` ...), so importing the package loads
neither torch nor PyAV. They take the same options as ``framecolor run`` and go through the same code:
:mod:`framecolor.job` chooses the colouring mode and colours an input; :mod:`framecolor.stream` is the loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .adaptation import adapt
from .colorizers.base import InferStage
from .job import RunOptions, Source, choose_colorizer, colour_input, load_colorizer
from .stream import colorize_stream

__all__ = ["adapt", "colorize_frames", "run"]


def colorize_frames(frames: Iterable[np.ndarray], model=None, batch: int = 4, render_size: int | None = None,
                    temporal: str = "off", device: str = "auto", backend: str = "auto",
                    cut_threshold: float | None = None, references=None, hints=None,
                    hint_model=None, precision: str | None = "auto", adapt=False,
                    adapt_cache=None) -> Iterator[np.ndarray]:
    """RGB (or gray) frames in, coloured RGB frames out, lazily and in order.

    ``frames`` is any iterable of (H, W, 3) or (H, W) uint8 / uint16 / float arrays; only their
    luminance is used.  ``model`` is a checkpoint path, a loaded generator, or None for the bundled model.
    Each output has the input's size, dtype and L.

    Reference mode (docs/reference-mode.md): ``references={frame: RGB image or path}`` (or a list of
    images, each placed at its best-matching frame; the command line's ``FRAME=PATH`` and folder forms are
    taken too) gives key frames that govern their shots; ``hints`` is a list of point hints
    ``{"frame", "x", "y", "rgb"}`` (or a JSON file path); ``hint_model``: how point hints are spread, None or
    "none" (the edge-aware :class:`~framecolor.hints.appliers.Densifier`) or a configured Densifier. A list
    (or other re-iterable) of frames is read twice: first to find the shots and place the keys; keys are
    carried at full resolution.

    ``adapt=True`` (or a :class:`framecolor.adaptation.AdaptSettings`): the references also teach the generator
    the show first (``model`` is then the base, default the bundled one); the adapted model colours what the
    keys do not cover. It is cached in ``adapt_cache`` (default ``~/.cache/framecolor/adapted``) by the keys',
    base model's and settings' hashes.
    """
    from .hints.references import parse_references
    from .io.frame import Frame
    from .temporal import make_smoother

    refs = parse_references(references, "references")
    options = RunOptions(model=model, device=device, backend=backend, batch=batch, render_size=render_size,
                         temporal=temporal, cut_threshold=cut_threshold, references=refs, hints=hints,
                         precision=precision).validate()
    if adapt:
        from .adaptation import AdaptSettings, adapted_for_run, default_cache_dir

        options.model = adapted_for_run(refs, model, adapt_cache or default_cache_dir(),
                                        adapt if isinstance(adapt, AdaptSettings) else None, progress=False)
    smoother = make_smoother(temporal, cut_threshold)

    def numbered():
        return (Frame(index=i, image=np.asarray(a)) for i, a in enumerate(frames))

    # re-iterable frames (a list...): reference mode's first pass finds the shots and places the keys
    again = numbered if iter(frames) is not frames else None
    applier = None
    if options.keyed:
        from .hints.appliers import make_applier

        applier = make_applier(hint_model)
    colorizer = choose_colorizer(Source("", again), options, load_colorizer(options), applier)
    for _, image in colorize_stream(numbered(), colorizer, smoother):
        yield image
    colorizer.log_summary()


def run(input, output=None, options: RunOptions | None = None, colorizer: InferStage | None = None,
        **kwargs) -> Path:
    """Colour one video file or frame folder to ``output`` (default: beside the input).

    Keyword arguments are the fields of :class:`~framecolor.job.RunOptions`, checked as the command line
    checks them.  Returns the output path, which exists only once complete (a video is written under a
    temporary name and renamed at the end). ``colorizer``: a loaded model to reuse (default: loaded here).
    """
    from .batch import plan_outputs

    options = (options or RunOptions(**kwargs)).validate()
    inp = Path(input)
    out = plan_outputs([inp], Path(output) if output is not None else None, options.overwrite,
                       options.skip_existing, fps=options.fps)[0]
    return colour_input(inp, out, options, colorizer or load_colorizer(options, out))
