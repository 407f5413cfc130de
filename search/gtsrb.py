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

import csv
import math
import os
import pickle
import re
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .classes import N_GTSRB_CLASSES, write_signnames
from .errors import DataError, UserError

PICKLE_PROTOCOL = 4
CSV_COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
TEST_CSV_NAME = "GT-final_test.csv"
_TRACK_NAME = re.compile(r"^(\d+)_(\d+)\.ppm$", re.IGNORECASE)
_CLASS_DIR = re.compile(r"^\d{5}$")
_WHITESPACE = frozenset(b" \t\n\r\v\f")
_DIGITS = frozenset(b"0123456789")

Progress = Callable[[int, int], None]


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


# --------------------------------------------------------------------------------------------
# Ground-truth CSVs and the conversion plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One image to convert, with everything the CSV says about it."""

    path: Path
    csv_path: Path
    line: int
    width: int
    height: int
    roi: tuple[int, int, int, int]
    class_id: int
    track: int  # -1 for test images, which have no tracks


def _read_gt_csv(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows of a ``;``-separated GT csv as (line number, {column: value}); errors name the file."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=";")
            rows = [(reader.line_num, row) for row in reader]
    except OSError as exc:
        raise DataError(csv_path, f"cannot read CSV ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(csv_path, f"not a readable CSV ({exc})") from None
    rows = [(line, _trim_row(row)) for line, row in rows if any(c.strip() for c in row)]
    if not rows:
        raise DataError(csv_path, "CSV is empty (expected a header " + ";".join(CSV_COLUMNS) + ")")
    header = rows[0][1]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise DataError(
            csv_path,
            f"CSV header lacks {', '.join(missing)} (expected {';'.join(CSV_COLUMNS)}, "
            f"found {';'.join(header)[:120]!r})",
        )
    out = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            problem = f"line {line}: {len(row)} fields, the header has {len(header)}"
            raise DataError(csv_path, problem)
        out.append((line, dict(zip(header, row))))
    return out


def _trim_row(row: list[str]) -> list[str]:
    """Strip cells and drop trailing empty ones (a stray ``;`` at a line end is common)."""
    cells = [c.strip() for c in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _item_from_row(
    csv_path: Path, line: int, row: dict[str, str], track: int, image_dir: Path
) -> _Item:
    """Validate one CSV row (integers, ROI inside uint16, class id in range) into an ``_Item``."""
    try:
        nums = {c: int(row[c]) for c in CSV_COLUMNS[1:]}
    except ValueError:
        raise DataError(csv_path, f"line {line}: non-integer value in {row}") from None
    width, height, class_id = nums["Width"], nums["Height"], nums["ClassId"]
    roi = (nums["Roi.X1"], nums["Roi.Y1"], nums["Roi.X2"], nums["Roi.Y2"])
    if not (0 < width < 65536 and 0 < height < 65536):
        raise DataError(csv_path, f"line {line}: image size {width}x{height} is out of range")
    if min(roi) < 0 or max(roi) > 65535 or roi[0] > roi[2] or roi[1] > roi[3]:
        raise DataError(csv_path, f"line {line}: ROI {roi} is not x1<=x2, y1<=y2 within 0..65535")
    if not 0 <= class_id < N_GTSRB_CLASSES:
        top = N_GTSRB_CLASSES - 1
        raise DataError(csv_path, f"line {line}: ClassId {class_id} outside 0..{top}")
    image_path = image_dir / row["Filename"]
    if not image_path.is_file():
        raise DataError(image_path, f"listed in {csv_path} (line {line}) but the file is missing")
    return _Item(image_path, csv_path, line, width, height, roi, class_id, track)


def find_gtsrb_root(src: Path) -> Path:
    """The folder with ``Final_Training/Images``: ``src`` itself or ``src/GTSRB`` (zip layout)."""
    for root in (src, src / "GTSRB"):
        if (root / "Final_Training" / "Images").is_dir():
            return root
    if not src.exists():
        raise UserError(f"{src}: no such folder (expected the official GTSRB download)")
    raise UserError(
        f"{src / 'Final_Training' / 'Images'}: folder not found; expected the official GTSRB "
        "layout SRC/Final_Training/Images/<class 00000..00042>/GT-<class>.csv with .ppm files "
        "(from GTSRB_Final_Training_Images.zip)"
    )


def _plan_training(images_dir: Path) -> list[_Item]:
    """All training images from the per-class GT csvs, with class and track from each row."""
    class_dirs = sorted(p for p in images_dir.iterdir() if p.is_dir() and _CLASS_DIR.match(p.name))
    if not class_dirs:
        raise UserError(
            f"{images_dir}: no class folders found "
            "(expected 00000 .. 00042, each with GT-<class>.csv)"
        )
    items: list[_Item] = []
    for class_dir in class_dirs:
        csv_path = class_dir / f"GT-{class_dir.name}.csv"
        if not csv_path.is_file():
            raise DataError(csv_path, "missing: every training class folder needs its GT csv")
        folder_class = int(class_dir.name)
        for line, row in _read_gt_csv(csv_path):
            match = _TRACK_NAME.match(row["Filename"])
            if not match:
                raise DataError(
                    csv_path,
                    f"line {line}: filename {row['Filename']!r} is not TTTTT_NNNNN.ppm, "
                    "so its track (physical sign) is unknown",
                )
            item = _item_from_row(csv_path, line, row, int(match.group(1)), class_dir)
            if item.class_id != folder_class:
                raise DataError(
                    csv_path, f"line {line}: ClassId {item.class_id} in folder {class_dir.name}"
                )
            items.append(item)
    if not items:
        raise UserError(f"{images_dir}: the GT csvs list no images")
    return items


def _find_test_csv(root: Path, src: Path) -> Path | None:
    """The labelled test csv in any of the places the official zips leave it."""
    test_dir = root / "Final_Test"
    places = [test_dir / "Images", test_dir, root, src]
    for place in dict.fromkeys(places):
        candidate = place / TEST_CSV_NAME
        if candidate.is_file():
            return candidate
    return None


def _plan_test(root: Path, src: Path) -> list[_Item] | None:
    """Test images if ``Final_Test/Images`` exists (None otherwise); its labels csv is required."""
    images_dir = root / "Final_Test" / "Images"
    if not images_dir.is_dir():
        return None
    csv_path = _find_test_csv(root, src)
    if csv_path is None:
        raise UserError(
            f"{images_dir}: found the test images but not their labels {TEST_CSV_NAME} "
            f"(from GTSRB_Final_Test_GT.zip); put it in {images_dir}, {root / 'Final_Test'} or "
            f"{src}, or remove Final_Test to convert only train/valid"
        )
    rows = _read_gt_csv(csv_path)
    items = [_item_from_row(csv_path, line, row, -1, images_dir) for line, row in rows]
    if not items:
        raise DataError(csv_path, "CSV lists no test images")
    return items


# --------------------------------------------------------------------------------------------
# Track split
# --------------------------------------------------------------------------------------------


def split_tracks(
    tracks: Iterable[tuple[int, int]], valid_fraction: float, seed: int
) -> set[tuple[int, int]]:
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


def _load_items(
    items: list[_Item], size: int, crop: bool, tick: Callable[[], None]
) -> dict[str, np.ndarray]:
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
                f"image is {width}x{height} but {item.csv_path} (line {item.line}) says "
                f"{item.width}x{item.height}",
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
    """Write via a temporary name in the same folder, then ``os.replace``: no half-written files."""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        raise UserError(
            f"valid fraction must be between 0 and 1 (exclusive), got {valid_fraction!r}"
        )


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
    test_items = _plan_test(root, src)

    all_tracks = {(it.class_id, it.track) for it in train_items}
    valid_tracks = split_tracks(all_tracks, valid_fraction, seed)
    train_tracks = all_tracks - valid_tracks
    parts: dict[str, list[_Item]] = {
        "train": [it for it in train_items if (it.class_id, it.track) not in valid_tracks],
        "valid": [it for it in train_items if (it.class_id, it.track) in valid_tracks],
    }
    if test_items is not None:
        parts["test"] = test_items

    total = sum(len(v) for v in parts.values())
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    arrays = {name: _load_items(items, size, crop, tick) for name, items in parts.items()}

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
