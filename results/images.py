"""Image helpers: PNG encoding with the standard library and mosaics of small images.

Image grids are embedded as one PNG data URI per figure (not as JSON pixel arrays),
which keeps the dashboard small and needs no Pillow.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence

import numpy as np


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from grey, single-channel, RGBA or float (0..1 or 0..255) images."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"expected an (H, W[, C]) image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] >= 4:
        arr = arr[:, :, :3]
    elif arr.shape[2] != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got {arr.shape[2]}")
    if arr.dtype != np.uint8:
        arr = np.nan_to_num(arr.astype(np.float64))
        if arr.size and arr.max() <= 1.0 and arr.min() >= 0.0:
            arr = arr * 255.0
        elif arr.size and arr.min() < 0.0:  # e.g. images normalised to [-1, 1] or z-scores
            low, high = arr.min(), arr.max()
            arr = (arr - low) / (high - low or 1.0) * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 array as PNG (8-bit RGB, no filter)."""
    rgb = to_rgb_uint8(rgb)
    height, width = rgb.shape[:2]
    rows = np.zeros((height, 1 + width * 3), dtype=np.uint8)  # filter byte 0 per row
    rows[:, 1:] = rgb.reshape(height, width * 3)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def png_data_uri(rgb: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI, usable as ``go.Image(source=...)``."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")


def mosaic(
    images: Sequence[np.ndarray | None],
    cols: int,
    pad: int = 4,
    label_height: int = 0,
    background: int = 255,
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Tile images into one array, leaving ``label_height`` rows under each for text.

    Returns the mosaic and, per image, (centre x, centre y, label y) in mosaic pixels.
    ``None`` entries (a class without an example) leave a light grey tile.
    """
    prepared = [to_rgb_uint8(im) if im is not None else None for im in images]
    shapes = [im.shape[:2] for im in prepared if im is not None]
    cell_h, cell_w = (max(s[0] for s in shapes), max(s[1] for s in shapes)) if shapes else (32, 32)
    cols = max(1, min(cols, len(prepared) or 1))
    rows = max(1, -(-len(prepared) // cols))
    step_x, step_y = cell_w + pad, cell_h + pad + label_height
    canvas = np.full((rows * step_y + pad, cols * step_x + pad, 3), background, dtype=np.uint8)
    centres: list[tuple[float, float, float]] = []
    for i, image in enumerate(prepared):
        row, col = divmod(i, cols)
        top, left = pad + row * step_y, pad + col * step_x
        if image is None:
            canvas[top : top + cell_h, left : left + cell_w] = 225
        else:
            h, w = image.shape[:2]
            canvas[top : top + h, left : left + w] = image
        centres.append((left + cell_w / 2, top + cell_h / 2, top + cell_h + label_height / 2))
    return canvas, centres
