"""A small picture of the data saved with every run: one example per class and class counts.

The dashboard's data section reads this file, so ``results/`` never has to load the data files
(and never touches ``test.p``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..schema import atomic_path
from .loading import Dataset, Split


def data_overview(dataset: Dataset, test: Split | None = None, *, seed: int = 0) -> dict[str, np.ndarray]:
    """One random training image per class (zeros where a class has none) and per-split counts."""
    rng = np.random.default_rng(seed)
    n, shape = dataset.n_classes, dataset.input_shape
    examples = np.zeros((n, *shape), dtype=np.uint8)
    has_example = np.zeros(n, dtype=bool)
    for cls in range(n):
        idx = np.flatnonzero(dataset.train.labels == cls)
        if len(idx):
            examples[cls] = dataset.train.features[rng.choice(idx)]
            has_example[cls] = True
    out = {
        "examples": examples,
        "has_example": has_example,
        "counts_train": dataset.train.class_counts(n),
        "counts_valid": dataset.valid.class_counts(n),
        "class_names": np.array(dataset.class_names, dtype=str),
    }
    if test is not None:
        out["counts_test"] = test.class_counts(n)
    return out


def save_overview(overview: dict[str, np.ndarray], path: Path) -> None:
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **overview)


def add_test_counts(path: Path, test: Split, n_classes: int) -> None:
    """Record the test split's class counts once the final model has read ``test.p``."""
    if not path.exists():
        return
    with np.load(path, allow_pickle=False) as npz:
        overview = {key: npz[key] for key in npz.files}
    overview["counts_test"] = test.class_counts(n_classes)
    save_overview(overview, path)
