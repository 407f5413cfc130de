"""The synthetic data set's public entry points: ``generate_signs`` and ``write_synthetic_dataset``.

Class balance follows GTSRB's training frequencies, each split has its own seeded random stream,
and the files are written in the tutorial's pickle layout through ``search.schema.atomic_path``,
so a reader never sees half a file and the same seed always gives the same bytes.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...schema import atomic_path
from ..signnames import N_GTSRB_CLASSES, write_signnames
from .rendering import _grids, _render
from .signs import _templates

SYNTH_VERSION: int = 1
"""Bump whenever the generator's output changes (it keys the cached default data set)."""

GTSRB_TRAIN_COUNTS: np.ndarray = np.array(
    [
        210,
        2220,
        2250,
        1410,
        1980,
        1860,
        420,
        1440,
        1410,
        1470,
        2010,
        1320,
        2100,
        2160,
        780,
        630,
        420,
        1110,
        1200,
        210,
        360,
        330,
        390,
        510,
        270,
        1500,
        600,
        240,
        540,
        270,
        450,
        780,
        240,
        689,
        420,
        1200,
        390,
        210,
        2070,
        300,
        360,
        240,
        240,
    ],
    dtype=np.int64,
)
"""Images per class in the official GTSRB training set (39,209 images in all)."""

GTSRB_CLASS_FREQUENCIES: np.ndarray = GTSRB_TRAIN_COUNTS / GTSRB_TRAIN_COUNTS.sum()
"""Relative class frequencies of GTSRB's training set; the synthetic splits follow them."""

SPLITS: tuple[str, ...] = ("train", "valid", "test")
PICKLE_PROTOCOL = 4


def _class_counts(n: int, probs: np.ndarray) -> np.ndarray:
    """Largest-remainder split of n over the classes, so every split mirrors the frequencies."""
    exact = probs * n
    counts = np.floor(exact).astype(np.int64)
    rest = n - int(counts.sum())
    if rest > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


def _check_probs(class_probs: np.ndarray | None) -> np.ndarray:
    if class_probs is None:
        return GTSRB_CLASS_FREQUENCIES
    probs = np.asarray(class_probs, dtype=float)
    if probs.shape != (N_GTSRB_CLASSES,) or not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.sum() <= 0:
        raise UserError(f"class_probs must be {N_GTSRB_CLASSES} non-negative numbers with a positive sum")
    return probs / probs.sum()


def generate_signs(
    n: int, *, seed: int, image_size: int = 32, class_probs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render n synthetic signs; the same arguments always give the same arrays.

    Returns (features uint8 (n, S, S, 3), labels uint8 (n,), sizes uint16 (n, 2) as
    (width, height) of the notional original photo, coords uint16 (n, 4) as the sign's
    x1, y1, x2, y2 in that photo).  Classes follow ``class_probs`` (default: GTSRB's
    training frequencies) exactly up to rounding, in shuffled order.
    """
    if n < 0:
        raise UserError(f"number of images must be >= 0, got {n}")
    if not 8 <= image_size <= 512:
        raise UserError(f"image size must be within 8..512, got {image_size}")
    probs = _check_probs(class_probs)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(N_GTSRB_CLASSES), _class_counts(n, probs))).astype(np.uint8)
    tm = _templates(max(64, 2 * image_size))
    g = _grids(image_size)
    features = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    sizes = np.empty((n, 2), dtype=np.uint16)
    coords = np.empty((n, 4), dtype=np.uint16)
    for k in range(n):
        features[k], sizes[k], coords[k] = _render(rng, int(labels[k]), tm, g)
    return features, labels, sizes, coords


@dataclass(frozen=True)
class SynthSizes:
    """Images per split of a synthetic data folder (``data synth``'s defaults)."""

    n_train: int = 5000
    n_valid: int = 1500
    n_test: int = 2000


DEFAULT_SIZES = SynthSizes()


def write_synthetic_dataset(
    out_dir: Path,
    *,
    n_train: int = DEFAULT_SIZES.n_train,
    n_valid: int = DEFAULT_SIZES.n_valid,
    n_test: int = DEFAULT_SIZES.n_test,
    seed: int = 0,
    image_size: int = 32,
) -> dict:
    """Write train.p, valid.p, test.p and signnames.csv into out_dir; same seed, same bytes.

    Each split has its own random stream (seed * 1000 + split index), so changing one
    split's size leaves the others untouched.
    """
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, n in counts.items():
        if n < 0:
            raise UserError(f"number of {split} images must be >= 0, got {n}")
    if seed < 0:
        raise UserError(f"seed must be >= 0, got {seed}")
    if not 8 <= image_size <= 512:
        raise UserError(f"image size must be within 8..512, got {image_size}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, split in enumerate(SPLITS):
        features, labels, sizes, coords = generate_signs(counts[split], seed=seed * 1000 + index, image_size=image_size)
        data = {"features": features, "labels": labels, "sizes": sizes, "coords": coords}
        with atomic_path(out_dir / f"{split}.p") as tmp:
            tmp.write_bytes(pickle.dumps(data, protocol=PICKLE_PROTOCOL))
    with atomic_path(out_dir / "signnames.csv") as tmp:
        write_signnames(tmp)
    return {
        "n_train": n_train,
        "n_valid": n_valid,
        "n_test": n_test,
        "seed": seed,
        "image_size": image_size,
        "synth_version": SYNTH_VERSION,
        "seconds": round(time.perf_counter() - started, 3),
    }
