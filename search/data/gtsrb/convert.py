"""Convert the official GTSRB download into the tutorial's ``train.p`` / ``valid.p`` / ``test.p``.

Used by::

    python run_search.py data convert-gtsrb SRC --out DIR [--size 32] [--crop]

``SRC`` is the folder that holds ``Final_Training/Images/<class:05d>/GT-<class:05d>.csv`` and the
``.ppm`` files (``SRC/GTSRB/...``, as the official zips unpack, is found too), and optionally
``Final_Test/Images/*.ppm`` with the labelled ``GT-final_test.csv`` (from
``GTSRB_Final_Test_GT.zip``; it may sit in ``Final_Test/Images/``, ``Final_Test/`` or ``SRC/``).

Why a converter and not a random split of the training images: GTSRB records every physical sign
as a *track* of about 30 consecutive frames (``TTTTT_NNNNN.ppm`` = track, frame). A random image
split puts near-identical frames of one sign into both train and valid, so validation accuracy
measures memory, not generalisation, and a hyperparameter search then optimises the wrong thing.
Here whole tracks go to valid, stratified per class and seeded.

Everything is pure numpy (PPM reader, bilinear resize) so the tool needs no PIL/OpenCV/scipy.
Nothing is printed; the CLI prints the summary that ``convert_gtsrb`` returns.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError, UserError
from ...schema import atomic_path
from ..signnames import write_signnames
from .images import read_ppm, resize_bilinear
from .layout import _Item, _plan_test, _plan_training, find_gtsrb_root

PICKLE_PROTOCOL = 4

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------
# Track split
# --------------------------------------------------------------------------------------------


def split_tracks(tracks: Iterable[tuple[int, int]], valid_fraction: float, seed: int) -> set[tuple[int, int]]:
    """Choose the (class, track) pairs for valid: about ``valid_fraction`` of each class's tracks.

    Stratified so every class with at least two tracks is validated (and keeps one for training);
    a class with a single track stays in train. Seeded and independent of input order.
    """
    by_class: dict[int, list[int]] = {}
    for class_id, track in set(tracks):
        by_class.setdefault(class_id, []).append(track)
    rng = np.random.default_rng(seed)
    valid: set[tuple[int, int]] = set()
    for class_id in sorted(by_class):
        class_tracks = sorted(by_class[class_id])
        n = len(class_tracks)
        if n < 2:
            continue
        n_valid = min(max(int(math.floor(valid_fraction * n + 0.5)), 1), n - 1)
        for index in rng.permutation(n)[:n_valid]:
            valid.add((class_id, class_tracks[int(index)]))
    return valid


# --------------------------------------------------------------------------------------------
# Loading and writing
# --------------------------------------------------------------------------------------------


def _crop_roi(image: np.ndarray, item: _Item) -> np.ndarray:
    """The ROI (inclusive corners, clipped to the image); an ROI outside the image is an error."""
    x1, y1, x2, y2 = item.roi
    height, width = image.shape[:2]
    if x1 >= width or y1 >= height:
        raise DataError(
            item.csv_path,
            f"line {item.line}: ROI {item.roi} lies outside the {width}x{height} image",
        )
    return image[y1 : min(y2, height - 1) + 1, x1 : min(x2, width - 1) + 1]


def _load_items(items: list[_Item], size: int, crop: bool, tick: Callable[[], None]) -> dict[str, np.ndarray]:
    """Read, check and resize ``items`` into the tutorial's dict of arrays."""
    n = len(items)
    features = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.uint8)
    sizes = np.empty((n, 2), dtype=np.uint16)
    coords = np.empty((n, 4), dtype=np.uint16)
    for i, item in enumerate(items):
        image = read_ppm(item.path)
        height, width = image.shape[:2]
        if (width, height) != (item.width, item.height):
            raise DataError(
                item.path,
                f"image is {width}x{height} but {item.csv_path} (line {item.line}) says {item.width}x{item.height}",
            )
        if crop:
            image = _crop_roi(image, item)
        features[i] = resize_bilinear(image, size)
        labels[i] = item.class_id
        sizes[i] = (width, height)
        coords[i] = item.roi
        tick()
    return {"features": features, "labels": labels, "sizes": sizes, "coords": coords}


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a private temporary file that replaces ``path`` only when complete
    (``search.schema.atomic_path``); a disk or permission problem is one line naming ``path``."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _write_pickle(path: Path, obj: dict[str, np.ndarray]) -> None:
    """Pickle ``obj`` atomically with the protocol the tutorial's loaders understand."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=PICKLE_PROTOCOL)

    _atomic_write(path, write)


def _check_options(size: int, valid_fraction: float) -> None:
    """Reject options that cannot produce a usable dataset, before any work."""
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1024:
        raise UserError(f"--size must be an integer from 1 to 1024, got {size!r}")
    if not 0.0 < valid_fraction < 1.0:
        raise UserError(f"valid fraction must be between 0 and 1 (exclusive), got {valid_fraction!r}")


def _parts(
    train_items: list[_Item], valid_tracks: set[tuple[int, int]], test_items: list[_Item] | None
) -> dict[str, list[_Item]]:
    """The images of each split: whole tracks go to validation, the official test part as it is."""
    parts: dict[str, list[_Item]] = {
        "train": [it for it in train_items if (it.class_id, it.track) not in valid_tracks],
        "valid": [it for it in train_items if (it.class_id, it.track) in valid_tracks],
    }
    if test_items is not None:
        parts["test"] = test_items
    return parts


def _load_parts(
    parts: dict[str, list[_Item]], size: int, crop: bool, progress: Progress | None
) -> dict[str, dict[str, np.ndarray]]:
    """Every split read and checked in memory; ``progress(done, total)`` before and after each image."""
    total = sum(len(v) for v in parts.values())
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    return {name: _load_items(items, size, crop, tick) for name, items in parts.items()}


def _write_parts(out: Path, arrays: dict[str, dict[str, np.ndarray]]) -> dict[str, str]:
    """Each split's pickle and ``signnames.csv``, each replaced atomically; split -> path."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    files: dict[str, str] = {}
    for name, data in arrays.items():
        path = out / f"{name}.p"
        _write_pickle(path, data)
        files[name] = str(path)
    signnames = out / "signnames.csv"
    _atomic_write(signnames, write_signnames)
    files["signnames"] = str(signnames)
    return files


def convert_gtsrb(
    src: Path,
    out: Path,
    *,
    size: int = 32,
    valid_fraction: float = 0.2,
    seed: int = 0,
    crop: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Convert the official GTSRB layout under ``src`` into pickles in ``out``; return a summary.

    Everything is read and checked before anything is written, and each file is replaced
    atomically, so a failed run leaves ``out`` as it was. ``progress(done, total)`` is called once
    before reading and after each image. The summary holds ``counts`` and ``tracks`` per split,
    ``train_tracks`` / ``valid_tracks`` (sorted (class, track) pairs), ``files`` (split -> path),
    ``classes``, ``size``, ``crop``, ``seed``, ``valid_fraction`` and ``seconds``; ``test`` keys
    appear only when a test part was converted.
    """
    started = time.perf_counter()
    src, out = Path(src), Path(out)
    _check_options(size, valid_fraction)
    root = find_gtsrb_root(src)
    train_items = _plan_training(root / "Final_Training" / "Images")
    all_tracks = {(it.class_id, it.track) for it in train_items}
    valid_tracks = split_tracks(all_tracks, valid_fraction, seed)
    train_tracks = all_tracks - valid_tracks
    parts = _parts(train_items, valid_tracks, _plan_test(root, src))
    arrays = _load_parts(parts, size, crop, progress)
    files = _write_parts(out, arrays)
    return {
        "src": str(root),
        "out": str(out),
        "size": size,
        "crop": crop,
        "seed": seed,
        "valid_fraction": valid_fraction,
        "classes": len({it.class_id for it in train_items}),
        "counts": {name: len(items) for name, items in parts.items()},
        "tracks": {"train": len(train_tracks), "valid": len(valid_tracks)},
        "train_tracks": sorted(train_tracks),
        "valid_tracks": sorted(valid_tracks),
        "files": files,
        "seconds": round(time.perf_counter() - started, 3),
    }
