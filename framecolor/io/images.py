"""Still images through OpenCV: reading one as RGB (8 or 16 bit), encoding a frame, and reading a file's size
and bit depth from its header without decoding it."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError, UserError
from .frame import Frame


def image_header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, bits per sample) from the file header, without decoding; None if unsure."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return w, h, 16 if head[24] == 16 else 8
            if head[:2] == b"BM" and len(head) >= 26:
                w, h = struct.unpack("<ii", head[18:26])
                return w, abs(h), 8
            if head[:2] in (b"II", b"MM"):
                return _tiff_header(f, head[:2])
            if head[:2] == b"\xff\xd8":
                return _jpeg_header(f)
    except (OSError, struct.error, IndexError, ValueError):
        return None
    return None


def _tiff_header(f, order: bytes):
    e = "<" if order == b"II" else ">"
    f.seek(2)
    magic, offset = struct.unpack(e + "HI", f.read(6))
    if magic != 42:
        return None
    f.seek(offset)
    (count,) = struct.unpack(e + "H", f.read(2))
    tags = {}
    for _ in range(count):
        tag, typ, n, value = struct.unpack(e + "HHI4s", f.read(12))
        if tag in (256, 257, 258):
            if typ == 3:  # SHORT: first value in the first two bytes
                tags[tag] = struct.unpack(e + "H", value[:2])[0]
                if tag == 258 and n > 2:  # several samples: the values live at an offset
                    here = f.tell()
                    f.seek(struct.unpack(e + "I", value)[0])
                    tags[tag] = struct.unpack(e + "H", f.read(2))[0]
                    f.seek(here)
            elif typ == 4:
                tags[tag] = struct.unpack(e + "I", value)[0]
    if 256 not in tags or 257 not in tags:
        return None
    return tags[256], tags[257], 16 if tags.get(258, 8) > 8 else 8


def _jpeg_header(f):
    f.seek(2)
    while True:
        b = f.read(1)
        while b and b != b"\xff":
            b = f.read(1)
        while b == b"\xff":
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        (length,) = struct.unpack(">H", f.read(2))
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            bits, h, w = struct.unpack(">BHH", f.read(5))
            return w, h, 8 if bits <= 8 else 16
        f.seek(length - 2, 1)


def read_image(path) -> np.ndarray:
    """Read an image as (H, W, 3) RGB uint8 or uint16: gray is repeated, alpha dropped."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8)  # also handles non-ASCII paths
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise MediaError(f"{path}: cannot read this image (corrupt or unsupported)")
    if img.dtype not in (np.uint8, np.uint16):
        raise MediaError(f"{path}: {img.dtype} samples are not supported (8 or 16 bit only)")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def encode_image(frame: Frame, ext: str) -> bytes:
    img = frame.image
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype not in (np.uint8, np.uint16):
        raise UserError(f"frame {frame.index}: expected an (H, W, 3) uint8/uint16 RGB image")
    params: list[int] = []
    if ext in (".jpg", ".jpeg", ".bmp"):
        if img.dtype == np.uint16:  # these formats are 8-bit only
            img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
        if ext != ".bmp":
            params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise MediaError(f"cannot encode frame {frame.index} as {ext}")
    return buf.tobytes()
