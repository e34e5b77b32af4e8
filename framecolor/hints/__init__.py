"""Colour hints for reference mode: what the user gives besides the gray input, and how it reaches a frame.

* ``references``: key frames (``--reference``), one reader for the command line and the API
  (:func:`~framecolor.hints.references.parse_references`), brought to Lab at a frame's size;
* ``points``: point hints (``--hints FILE.json``), validated and painted into hint maps;
* ``propagate``: colour carried from frame to frame along optical flow, kept where the flow is trusted;
* ``carry``: the same at full resolution for reference mode (candidates, matching cost, per-pixel choice);
* ``appliers``: what turns a sparse hint map into a frame's ab (the edge-aware densifier).

A hint map is ``(hint_ab (h, w, 2) in Lab units, mask (h, w) in [0, 1])``: mask 1 where the colour is given, 0
where it is not (hint_ab is 0 there). See docs/reference-mode.md.
"""
