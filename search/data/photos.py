"""Photos as the models see them: a PNG, JPEG, PPM or BMP file decoded to uint8 pixels and resized,
whole frame, to the model's square input with the bilinear resize the GTSRB converter uses, so a sign
photographed with a phone meets the model as its training images did. Pillow decodes; no Keras."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from .gtsrb.images import resize_bilinear

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp")


def read_photo(path: Path, channels: int = 3) -> np.ndarray:
    """The image at ``path`` as (H, W, channels) uint8: colour images for a 3-channel model, grey for a
    1-channel one. A file that is not a readable image is a ``DataError`` naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(path, f"not a readable image ({type(exc).__name__}: {exc})") from None
    return pixels if pixels.ndim == 3 else pixels[:, :, None]


def model_input(pixels: np.ndarray, size: int) -> np.ndarray:
    """``pixels`` resized, whole frame, to ``size`` x ``size`` (the converter's bilinear resize)."""
    return resize_bilinear(pixels, size) if pixels.shape[:2] != (size, size) else pixels


def photo_files(paths: Iterable[Path]) -> list[Path]:
    """The files named, and the image files (by suffix) under each folder named, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise DataError(path, "no such file or folder")
    if not found:
        raise UserError("no image files found (looked for " + ", ".join(IMAGE_SUFFIXES) + ")")
    return found
