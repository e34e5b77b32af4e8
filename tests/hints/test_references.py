"""parse_references, the one reader of key frames: the command line's forms and the Python API's alike."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from framecolor.errors import UserError
from framecolor.hints.references import Reference, parse_references


def _key(path, value=128):
    cv2.imwrite(str(path), np.full((8, 12, 3), value, np.uint8))
    return path


def test_api_forms_mapping_images_paths_and_references(tmp_path):
    """A mapping pins each key (image or path) to its frame; a list gives keys placed later (frame None), in
    order; Reference objects pass through unchanged; the command line's text forms work from the API too."""
    a = _key(tmp_path / "a.png")
    img = np.zeros((8, 12, 3), np.uint8)
    pinned = parse_references({3: img, 7: a}, "references")
    assert [(r.frame, r.path, r.name) for r in pinned] == [(3, None, "key 3"), (7, a, str(a))]
    ref = Reference(5, path=a, name="mine")
    listed = parse_references([img, a, ref, f"9={a}"], "references")
    assert [r.frame for r in listed] == [None, None, 5, 9]
    assert listed[0].name == "key 0" and listed[2] is ref
    assert parse_references(None) == []


def test_api_errors_name_the_api_argument(tmp_path):
    """API errors are one line naming ``references`` (the command line's name ``--reference``)."""
    with pytest.raises(UserError, match="^references: frame numbers must be non-negative"):
        parse_references({-1: np.zeros((4, 4, 3))}, "references")
    with pytest.raises(UserError, match=r"^references: key for frame 2 must be an \(H, W, 3\) RGB image"):
        parse_references({2: np.zeros((4, 4))}, "references")
    with pytest.raises(UserError, match="^references: .*nope.png is not a file"):
        parse_references({2: tmp_path / "nope.png"}, "references")
    a = _key(tmp_path / "a.png")
    with pytest.raises(UserError, match="^references: two keys for frame 4"):
        parse_references([f"4={a}", Reference(4, path=a, name="b")], "references")
    with pytest.raises(UserError, match="^--reference nope: no such file"):
        parse_references(["nope"])
