"""Load and validate the tutorial's data files into one small typed object.

A data folder holds ``train.p`` and optionally ``valid.p`` and ``test.p`` (the tutorial's pickled
dicts with ``features`` and ``labels``), or ``.npz`` files with the same keys, and optionally the
tutorial's ``signnames.csv``. Everything is checked before any training starts, and every problem is
reported as one line that names the file. Pixels are kept as uint8 (a quarter of float32's memory);
conversion and scaling happen inside the model.

``test.p`` is checked here like the other files (keys, shapes, dtypes, labels, image size), so a
broken test file stops the command before the search spends its budget, but its images are not
kept: the search never sees them. ``Dataset.load_test()`` reads them once, for the final model.

The files are untrusted: reading one takes memory bounded by its size (pickles: see
``safe_pickle``; ``.npz``: the members' declared sizes are checked before anything is read) and
every problem, running out of memory included, is a ``DataError`` naming the file.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from .safe_pickle import one_line, safe_load
from .signnames import GTSRB_CLASS_NAMES, MAX_CLASSES, N_GTSRB_CLASSES, read_signnames

SPLIT_SUFFIXES = (".p", ".pickle", ".pkl", ".npz")
# Smallest image side accepted, the synthetic generator's smallest size (``data synth --size``): the
# searched networks pool their input 2x2 per block, and a 0-pixel side means the file holds no images.
MIN_IMAGE_SIZE = 8
# Labels given as a Python list (not an array) are read up to this length: far above any traffic-sign
# set (GTSRB has 51,839 images), and it keeps the list's unpickling under safe_pickle's opcode limit.
MAX_LABELS_IN_LIST = 1_000_000
# An .npz member may expand when read: real images compress 1-3x, class-sorted labels ~50x, constant
# arrays up to deflate's ceiling of ~1000x. The .npy members are read only when together they expand
# to at most NPZ_MAX_EXPANSION times the file's size plus NPZ_EXPANSION_ALLOWANCE (for small, very
# compressible arrays such as labels): that bounds the memory reading one takes (a constant image
# set compressed 1000x is refused; save it uncompressed).
NPZ_MAX_EXPANSION = 100
NPZ_EXPANSION_ALLOWANCE = 4 << 20
NPZ_MAX_MEMBERS = 64


@dataclass
class Split:
    """Images and labels of one split, validated: uint8 (N,H,W,C) and int32 (N,)."""

    features: np.ndarray
    labels: np.ndarray
    path: Path | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self, n_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=n_classes)


@dataclass
class Dataset:
    """What a search needs: train and valid splits, the class count and names, where test lives.

    ``test_path`` and ``n_test`` describe a test file that ``load_dataset`` has already checked;
    its images are read again only by ``load_test()``.
    """

    train: Split
    valid: Split
    n_classes: int
    class_names: list[str]
    data_dir: Path
    test_path: Path | None = None
    n_test: int = 0
    valid_from_train: bool = False
    content_hash: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.train.features.shape[1:])  # type: ignore[return-value]

    def load_test(self) -> Split | None:
        """Read ``test.p`` (once per final model; the search never calls this)."""
        if self.test_path is None:
            return None
        test = load_split(self.test_path)
        _check_same_image_shape(test, self.input_shape)
        _check_label_range(test, self.n_classes)
        return test


def find_split_file(data_dir: Path, name: str) -> Path | None:
    """The file for split ``name`` (``train.p``, ``train.pickle``, ``train.npz``...), if any."""
    for suffix in SPLIT_SUFFIXES:
        candidate = data_dir / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_raw(path: Path) -> dict:
    """Read a pickle (safely) or an ``.npz`` into a dict; no validation beyond the container."""
    if path.suffix == ".npz":
        return _read_npz(path)
    obj = safe_load(path)
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict with 'features' and 'labels', got {type(obj).__name__}")
    return obj


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The ``.npy`` members of an ``.npz``, by name without ``.npy`` (as ``np.load`` names them)."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise DataError(path, "file is empty")
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
            _check_npz_sizes(path, archive.infolist(), size)
            return {info.filename[:-4]: _read_npz_member(path, archive, info) for info in members}
    except DataError:
        raise
    except MemoryError:
        raise DataError(path, "not enough memory to read the file") from None
    except Exception as exc:  # zipfile, zlib and numpy's header parser raise many types on bad bytes
        raise DataError(path, f"not a valid .npz file ({type(exc).__name__}: {one_line(exc)})") from None


def _check_npz_sizes(path: Path, infos: list[zipfile.ZipInfo], size: int) -> None:
    """Sizes from the zip's directory, checked before any member is read: compressed data must lie
    within the file without overlapping (overlapping members make the largest zip bombs), and the
    members may expand only so far (``NPZ_MAX_EXPANSION``)."""
    if len(infos) > NPZ_MAX_MEMBERS:
        raise DataError(path, f"holds {len(infos):,} members; a data file needs 2 (at most {NPZ_MAX_MEMBERS} are read)")
    compressed = sum(info.compress_size for info in infos)
    if compressed > size:
        raise DataError(path, f"its members claim {compressed:,} bytes of compressed data in a {size:,}-byte file")
    expanded = sum(info.file_size for info in infos if info.filename.endswith(".npy"))
    limit = NPZ_MAX_EXPANSION * size + NPZ_EXPANSION_ALLOWANCE
    if expanded > limit:
        raise DataError(
            path,
            f"its arrays would expand to {expanded:,} bytes from a {size:,}-byte file (more than "
            f"{NPZ_MAX_EXPANSION}x its size + {NPZ_EXPANSION_ALLOWANCE >> 20} MiB; a zip bomb?)",
        )


def _read_npz_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """Read one ``.npy`` member after checking that its header's shape and dtype fit its size:
    numpy allocates the declared array before it reads a byte of it."""
    fmt = np.lib.format
    with archive.open(info) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise DataError(path, f"{one_line(info.filename, 60)}: unsupported .npy format version {version}")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(fh)
        header_size = fh.tell()
    name = one_line(info.filename[:-4], 60)
    if dtype.hasobject:
        raise DataError(path, f"{name!r} is an object array (refused: reading it would unpickle untrusted data)")
    declared = math.prod(shape) * dtype.itemsize
    if header_size + declared != info.file_size:
        raise DataError(
            path,
            f"{name!r} declares shape {one_line(shape, 80)} of {one_line(dtype, 40)} "
            f"({declared:,} bytes) but holds {info.file_size - header_size:,} bytes",
        )
    with archive.open(info) as fh:
        return fmt.read_array(fh, allow_pickle=False)


def load_split(path: Path) -> Split:
    """Read and validate one split file; raises ``DataError`` naming the file on any problem."""
    try:
        return _load_split(path)
    except MemoryError:
        raise DataError(path, "not enough memory to load the file") from None


def _load_split(path: Path) -> Split:
    raw = read_raw(path)
    missing = [key for key in ("features", "labels") if key not in raw]
    if missing:
        raise DataError(path, f"missing key {missing[0]!r} (found: {_key_list(raw)})")
    features = _validate_features(path, raw["features"])
    labels = _validate_labels(path, raw["labels"])
    if len(features) != len(labels):
        raise DataError(path, f"features and labels differ in length ({len(features)} images, {len(labels)} labels)")
    return Split(features=features, labels=labels, path=path)


def _key_list(raw: dict, shown: int = 8) -> str:
    """The file's keys for a message: a few, each short (keys are str, bytes or int, see safe_pickle)."""
    keys = sorted(_key_text(key) for key in list(raw)[:100])
    more = f", ... ({len(raw)} keys)" if len(raw) > shown else ""
    return (", ".join(keys[:shown]) + more) or "nothing"


def _key_text(key: object) -> str:
    """A key cut before it is turned into text: keys can be as long as the file, and ``str()`` of
    an int of more than 4,300 digits raises."""
    if isinstance(key, str):
        return one_line(key[:40], 40)
    if isinstance(key, bytes):
        return one_line(repr(key[:40]), 60)
    if isinstance(key, int) and key.bit_length() <= 64:
        return str(key)
    return f"<{type(key).__name__}>"


def _validate_features(path: Path, features: object) -> np.ndarray:
    if not isinstance(features, np.ndarray):
        raise DataError(path, f"'features' must be a numpy array, got {type(features).__name__}")
    if features.ndim != 4:
        raise DataError(path, f"'features' must have rank 4 (N, H, W, C), got shape {one_line(features.shape, 80)}")
    if features.shape[-1] not in (1, 3):
        raise DataError(
            path, f"'features' must have 1 or 3 channels, got {features.shape[-1]} (shape {features.shape})"
        )
    if features.shape[0] == 0:
        raise DataError(path, "file contains no images")
    height, width = features.shape[1:3]
    if min(height, width) < MIN_IMAGE_SIZE:
        raise DataError(
            path,
            f"images are {height}x{width} pixels; at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
            f"are needed (shape {features.shape})",
        )
    if features.dtype == np.uint8:
        return features
    if np.issubdtype(features.dtype, np.floating):
        if not np.isfinite(features).all():
            raise DataError(path, "'features' contain NaN or inf values")
        lo, hi = float(features.min()), float(features.max())
        if lo < 0 or hi > 255:
            raise DataError(
                path,
                f"float 'features' must hold raw pixels in [0, 1] or [0, 255], got "
                f"[{lo:.3g}, {hi:.3g}] (already normalised? give the raw images)",
            )
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(np.rint(features * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(features.dtype, np.integer) or features.dtype == np.bool_:
        if features.min() < 0 or features.max() > 255:
            raise DataError(
                path, f"integer 'features' must be pixels in [0, 255], got [{features.min()}, {features.max()}]"
            )
        return features.astype(np.uint8)
    raise DataError(path, f"'features' has unsupported dtype {one_line(features.dtype, 60)}")


def _validate_labels(path: Path, labels: object) -> np.ndarray:
    labels = _labels_array(path, labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(path, f"'labels' must have shape (N,), got {one_line(labels.shape, 80)}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(path, f"'labels' must be integers, got dtype {one_line(labels.dtype, 60)}")
    if labels.size and labels.min() < 0:
        raise DataError(path, f"'labels' contain a negative class id ({labels.min()})")
    if labels.size and labels.max() >= MAX_CLASSES:
        raise DataError(
            path,
            f"'labels' contain class id {labels.max()}; at most {MAX_CLASSES:,} classes "
            f"(ids 0..{MAX_CLASSES - 1}) are supported",
        )
    return labels.astype(np.int32)


def _labels_array(path: Path, labels: object) -> np.ndarray:
    """An array as is; a flat list or tuple of ints converted. Anything else is refused before numpy
    sees it: ``np.asarray`` on nested, shared lists builds every path through them (a 4.7 kB pickle
    became 1.6 GB)."""
    if isinstance(labels, np.ndarray):
        return labels
    if type(labels) not in (list, tuple):
        raise DataError(path, f"'labels' must be a numpy array or a list of integers, got {type(labels).__name__}")
    if len(labels) > MAX_LABELS_IN_LIST:
        raise DataError(
            path,
            f"'labels' is a list of {len(labels):,} items; lists are read up to "
            f"{MAX_LABELS_IN_LIST:,} (save a numpy array instead)",
        )
    kinds = {type(item) for item in labels}
    wrong = [kind for kind in kinds if kind is not int and not issubclass(kind, np.integer)]
    if wrong:
        raise DataError(path, f"'labels' is a list holding {wrong[0].__name__} items, not integers")
    try:
        return np.array(labels, dtype=np.int64)
    except OverflowError:
        raise DataError(path, "'labels' hold an integer beyond 64 bits") from None


def _check_same_image_shape(split: Split, shape: tuple[int, ...]) -> None:
    if split.features.shape[1:] != tuple(shape):
        raise DataError(
            split.path or Path("?"), f"image size {split.features.shape[1:]} differs from train's {tuple(shape)}"
        )


def _check_label_range(split: Split, n_classes: int) -> None:
    top = int(split.labels.max())
    if top >= n_classes:
        raise DataError(
            split.path or Path("?"),
            f"label {top} is out of range for {n_classes} classes "
            "(labels must be 0..n_classes-1; add signnames.csv "
            "or pass --n-classes)",
        )


def _check_enough_classes(split: Split) -> None:
    present = np.unique(split.labels)
    if len(present) < 2:
        only = f"class {int(present[0])}" if len(present) else "no class"
        raise DataError(
            split.path or Path("?"),
            f"only {len(present)} class ({only} in all {len(split)} images); a classifier needs at least 2",
        )


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split into (train_idx, valid_idx).

    Every class with at least two images lands in both parts. This replaces Keras'
    ``validation_split``, which takes the *tail* of the arrays: on class-sorted files like the
    tutorial's ``train.p`` that tail holds only the last classes (the tutorial's 17% validation).
    """
    if not 0.0 < fraction < 1.0:
        raise UserError(f"validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    valid_idx: list[np.ndarray] = []
    # One stable sort instead of a scan per class (10,000 classes are allowed): each class's slice
    # holds its indices in ascending order, as np.flatnonzero(labels == cls) did, so splits of
    # existing studies are unchanged.
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    for start, count in zip(starts, counts):
        idx = rng.permutation(order[start : start + count])
        n_valid = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            n_valid = min(max(n_valid, 1), len(idx) - 1)
        else:
            n_valid = 0
        valid_idx.append(idx[:n_valid])
        train_idx.append(idx[n_valid:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(valid_idx))


def _file_digest(paths: list[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _class_names(data_dir: Path, n_classes: int | None) -> tuple[int, list[str]]:
    if n_classes is not None and not 1 <= n_classes <= MAX_CLASSES:
        raise UserError(f"--n-classes must be within 1..{MAX_CLASSES:,}, got {n_classes}")
    signnames = data_dir / "signnames.csv"
    if signnames.is_file():
        names = read_signnames(signnames)
        if n_classes is not None and n_classes != len(names):
            raise DataError(signnames, f"lists {len(names)} classes but --n-classes is {n_classes}")
        return len(names), names
    if n_classes is None:
        n_classes = N_GTSRB_CLASSES  # a traffic-sign tool: GTSRB unless the folder says otherwise
    if n_classes == N_GTSRB_CLASSES:
        return n_classes, list(GTSRB_CLASS_NAMES)
    return n_classes, [f"class {i}" for i in range(n_classes)]


def _checked_test_size(path: Path, shape: tuple[int, ...], n_classes: int) -> int:
    """Check ``test.p`` as ``load_test()`` will read it and return its image count; the images
    themselves are dropped here, so the search never holds them."""
    test = load_split(path)
    _check_same_image_shape(test, shape)
    _check_label_range(test, n_classes)
    return len(test)


def _train_file(data_dir: Path) -> Path:
    """The folder's training file; a missing folder or file is a one-line error naming it."""
    if not data_dir.exists():
        raise DataError(data_dir, "data directory does not exist")
    if not data_dir.is_dir():
        raise DataError(data_dir, "is not a directory")
    train_path = find_split_file(data_dir, "train")
    if train_path is None:
        raise DataError(data_dir / "train.p", "missing (a data folder needs train.p, optionally valid.p and test.p)")
    return train_path


def load_dataset(
    data_dir: Path | str, *, n_classes: int | None = None, valid_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Load ``train`` and ``valid`` from ``data_dir`` (splitting train when there is no valid file).

    The class count comes from ``n_classes``, else ``signnames.csv``, else GTSRB's 43; labels
    outside it are refused rather than silently growing the output layer. ``test.p`` is checked
    too (structure, image size, labels) but not kept, and a training file with fewer than two
    classes is refused: both would otherwise surface only after the whole search.
    """
    data_dir = Path(data_dir)
    train_path = _train_file(data_dir)
    valid_path = find_split_file(data_dir, "valid")
    test_path = find_split_file(data_dir, "test")
    train = load_split(train_path)
    valid = load_split(valid_path) if valid_path is not None else None
    if valid is not None:
        _check_same_image_shape(valid, train.features.shape[1:])
    n_classes, names = _class_names(data_dir, n_classes)
    _check_label_range(train, n_classes)
    if valid is not None:
        _check_label_range(valid, n_classes)
    n_test = 0 if test_path is None else _checked_test_size(test_path, train.features.shape[1:], n_classes)
    _check_enough_classes(train)
    notes: list[str] = []
    if valid is not None:
        valid_from_train = False
    else:
        tr, va = stratified_split(train.labels, valid_fraction, seed)
        valid = Split(train.features[va], train.labels[va], path=train_path)
        train = Split(train.features[tr], train.labels[tr], path=train_path)
        valid_from_train = True
        notes.append(
            f"no valid file: held out a stratified {valid_fraction:.0%} of {train_path.name} "
            f"(seed {seed}) as validation data"
        )
    hashed = [p for p in (train_path, valid_path) if p is not None]
    split_key = f"split {valid_fraction} {seed}" if valid_from_train else ""
    return Dataset(
        train=train,
        valid=valid,
        n_classes=n_classes,
        class_names=names,
        data_dir=data_dir,
        test_path=test_path,
        n_test=n_test,
        valid_from_train=valid_from_train,
        content_hash=_file_digest(hashed, extra=split_key),
        notes=notes,
    )
