"""Pure-numpy image input for the GTSRB converter: a netpbm (PPM/PGM) reader and a bilinear resize.

The official GTSRB images are ``.ppm`` files of varying size; the tutorial's pickles hold 32x32
crops. Reading and resizing them with numpy alone keeps the tool free of PIL, OpenCV and scipy,
and lets every malformed file be reported as a ``DataError`` that names it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import DataError

_WHITESPACE = frozenset(b" \t\n\r\v\f")
_DIGITS = frozenset(b"0123456789")


# --------------------------------------------------------------------------------------------
# PPM reading
# --------------------------------------------------------------------------------------------


def read_ppm(path: str | Path) -> np.ndarray:
    """Read a PPM/PGM (P6, P3, P5, P2) as uint8 (H, W, 3) RGB; grey images get three equal channels.

    Pure numpy so the converter needs no imaging library. Samples with maxval other than 255
    (e.g. 16-bit 65535) are rescaled to 0..255. Any problem raises ``DataError`` naming the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read image ({exc.strerror or exc})") from None
    return _decode_pnm(data, path)


def _decode_pnm(data: bytes, path: Path) -> np.ndarray:
    """Decode the bytes of one netpbm image; split from ``read_ppm`` so errors can name ``path``."""
    if not data:
        raise DataError(path, "image file is empty")
    magic = data[:2]
    if magic not in (b"P6", b"P3", b"P5", b"P2"):
        raise DataError(path, f"not a PPM image (starts with {data[:2]!r}, expected P6 or P3)")
    pos = 2
    fields = []
    for name in ("width", "height", "maxval"):
        token, pos = _next_header_token(data, pos, path, name)
        fields.append(token)
    width, height, maxval = fields
    if width <= 0 or height <= 0:
        raise DataError(path, f"PPM header gives an empty image ({width}x{height})")
    if not 0 < maxval < 65536:
        raise DataError(path, f"PPM maxval {maxval} is outside 1..65535")
    channels = 3 if magic in (b"P6", b"P3") else 1
    count = width * height * channels
    if magic in (b"P6", b"P5"):
        samples = _binary_samples(data, pos, count, maxval, path)
    else:
        samples = _ascii_samples(data, pos, count, maxval, path)
    image = samples.reshape(height, width, channels)
    if maxval != 255:
        image = (image.astype(np.uint32) * 255 + maxval // 2) // maxval
    image = image.astype(np.uint8)
    if channels == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def _next_header_token(data: bytes, pos: int, path: Path, name: str) -> tuple[int, int]:
    """Next decimal header field after whitespace and ``#`` comments; returns (value, new pos)."""
    n = len(data)
    while pos < n:
        if data[pos] in _WHITESPACE:
            pos += 1
        elif data[pos] == ord("#"):
            while pos < n and data[pos] not in (ord("\n"), ord("\r")):
                pos += 1
        else:
            break
    start = pos
    while pos < n and data[pos] in _DIGITS:
        pos += 1
    if pos == start:
        found = data[start : start + 8]
        raise DataError(path, f"corrupt PPM header: expected the {name}, found {found!r}")
    if pos < n and data[pos] not in _WHITESPACE and data[pos] != ord("#"):
        after = data[pos : pos + 1]
        raise DataError(path, f"corrupt PPM header: the {name} is followed by {after!r}")
    return int(data[start:pos]), pos


def _binary_samples(data: bytes, pos: int, count: int, maxval: int, path: Path) -> np.ndarray:
    """Raster of a P6/P5: exactly one whitespace byte after maxval, then 1 or 2 bytes a sample."""
    if pos >= len(data):
        raise DataError(path, "truncated PPM: no pixel data after the header")
    pos += 1  # the single whitespace byte that ends the header
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    needed = count * dtype.itemsize
    available = len(data) - pos
    if available < needed:
        raise DataError(path, f"truncated PPM: {available} bytes of pixel data, expected {needed}")
    samples = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
    return _check_maxval(samples, maxval, path)


def _ascii_samples(data: bytes, pos: int, count: int, maxval: int, path: Path) -> np.ndarray:
    """Raster of a P3/P2: whitespace-separated decimals (comments tolerated)."""
    text = re.sub(rb"#[^\r\n]*", b" ", data[pos:])
    tokens = text.split()
    if len(tokens) < count:
        raise DataError(path, f"truncated PPM: {len(tokens)} samples, expected {count}")
    try:
        samples = np.array([int(t) for t in tokens[:count]], dtype=np.int64)
    except ValueError:
        raise DataError(path, "corrupt PPM: non-numeric pixel value") from None
    if samples.min() < 0:
        raise DataError(path, "corrupt PPM: negative pixel value")
    return _check_maxval(samples, maxval, path)


def _check_maxval(samples: np.ndarray, maxval: int, path: Path) -> np.ndarray:
    """Reject samples above maxval: they mean a wrong header, and scaling would overflow uint8."""
    if samples.size and int(samples.max()) > maxval:
        top = int(samples.max())
        raise DataError(path, f"corrupt PPM: pixel value {top} above maxval {maxval}")
    return samples


# --------------------------------------------------------------------------------------------
# Resizing
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights along one axis (pixel-centre aligned, like OpenCV/TF)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    weight = (src - lo).astype(np.float32)
    for arr in (lo, hi, weight):
        arr.setflags(write=False)  # cached and shared: must not be modified by a caller
    return lo, hi, weight


def resize_bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, C) or (H, W) image to ``size`` x ``size`` with bilinear interpolation.

    Pure numpy so conversion has no imaging dependency; pixel centres are aligned as in
    ``cv2.resize(..., INTER_LINEAR)``, so a constant image stays constant and a gradient stays
    monotone. Returns uint8 with the input's channel layout.
    """
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {img.shape}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    y_lo, y_hi, wy = _axis_weights(int(img.shape[0]), int(size))
    x_lo, x_hi, wx = _axis_weights(int(img.shape[1]), int(size))
    pixels = img.astype(np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    wy3 = wy[:, None, None]
    rows = pixels[y_lo] * (1.0 - wy3) + pixels[y_hi] * wy3
    wx3 = wx[None, :, None]
    out = rows[:, x_lo] * (1.0 - wx3) + rows[:, x_hi] * wx3
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[:, :, 0] if img.ndim == 2 else out
