"""Time: scene cuts, optical flow, and the temporal smoothers behind one protocol.

* ``cuts``: :class:`~framecolor.temporal.cuts.CutDetector` (hard cuts from luminance, made for limited
  animation) and the motion-tolerant content distance it scores with;
* ``flow``: DIS optical flow and the backward warp, shared by every stage that carries colour along motion;
* ``smoothers``: the :class:`~framecolor.temporal.smoothers.Smoother` protocol and the flow-guided smoother.

:data:`SMOOTHERS` is the one registry of ``--temporal`` choices: the command line offers its names, the
colouring code and the Ray scale-out build or test smoothers through it. Importing this package is light (the
smoothers load when made), so the command line can read the names without NumPy or OpenCV.
"""

from __future__ import annotations

from typing import Callable

from ..errors import UserError


def _flow_smoother(cut_threshold: float | None):
    from .cuts import CutDetector
    from .smoothers import FlowSmoother

    return FlowSmoother(cut_detector=CutDetector(threshold=cut_threshold))


# --temporal NAME -> a factory taking the cut threshold, or None for no smoothing. To add a smoother: write it
# in smoothers.py (the Smoother protocol) and name it here.
SMOOTHERS: dict[str, Callable | None] = {"flow": _flow_smoother, "off": None}
DEFAULT_SMOOTHER = {"video": "flow", "folder": "off"}  # by source kind (framecolor.io.paths.source_kind)


def make_smoother(name: str, cut_threshold: float | None = None):
    """The temporal stage for ``--temporal name`` (None for ``off``); a bad name or cut threshold is a
    UserError."""
    if name not in SMOOTHERS:
        raise UserError(f"unknown --temporal {name!r} ({', '.join(SMOOTHERS)})")
    factory = SMOOTHERS[name]
    return None if factory is None else factory(cut_threshold)


def smooths(name: str) -> bool:
    """Whether ``--temporal name`` smooths at all (a smoother resets at cuts: work split at cuts stays exact)."""
    return SMOOTHERS.get(name) is not None
