"""framecolor: batch colourisation of grayscale animation and film.

The Python API is ``colorize_frames(frames, **options)`` (an iterator in, an iterator out),
``run(input, output, **options)`` and ``adapt(keys, output, **settings)`` (per-show adaptation); all are
imported lazily so that ``import framecolor`` (and the ``framecolor --help`` command) stay fast and do not
load torch or PyAV.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["adapt", "colorize_frames", "run", "__version__"]


def __getattr__(name):
    if name in __all__ and name != "__version__":
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'framecolor' has no attribute {name!r}")
