"""The sanity report printed before any training: the checks that would have caught the tutorial's bugs.

It counts images per split and class and warns about what silently ruins a search: classes missing
from a split, a file sorted by class (fatal with Keras' ``validation_split``), train and valid pixels
on different scales (different normalisation), and images shared between splits (leakage).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from .loading import Dataset, Split


@dataclass
class SplitSummary:
    name: str
    count: int
    histogram: list[int]
    pixel_mean: float
    pixel_std: float
    sorted_by_class: bool


@dataclass
class SanityReport:
    splits: list[SplitSummary]
    class_names: list[str]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "splits": [asdict(s) for s in self.splits],
            "class_names": self.class_names,
            "warnings": self.warnings,
            "notes": self.notes,
        }

    def text(self) -> str:
        lines = ["Data sanity report"]
        for s in self.splits:
            present = sum(1 for c in s.histogram if c)
            lo = min(s.histogram) if s.histogram else 0
            lines.append(
                f"  {s.name:<6} {s.count:>7} images, {present}/{len(s.histogram)} classes, "
                f"per class {lo}..{max(s.histogram, default=0)}, "
                f"pixels mean {s.pixel_mean:.1f} std {s.pixel_std:.1f}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  WARNING: {w}" for w in self.warnings]
        if not self.warnings:
            lines.append("  no problems found")
        return "\n".join(lines)


def is_sorted_by_class(labels: np.ndarray) -> bool:
    """True when each class stands in one contiguous block (the tutorial's ``train.p`` layout)."""
    if len(labels) < 2:
        return False
    runs = 1 + int(np.count_nonzero(labels[1:] != labels[:-1]))
    return runs == len(np.unique(labels)) and runs > 1


def _pixel_stats(features: np.ndarray, max_images: int = 5000) -> tuple[float, float]:
    step = max(1, len(features) // max_images)
    sample = features[::step].astype(np.float32)
    return float(sample.mean()), float(sample.std())


def image_digests(features: np.ndarray) -> set[bytes]:
    """Hashes of each image's bytes, for exact-duplicate checks between splits."""
    flat = np.ascontiguousarray(features).reshape(len(features), -1)
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat}


def count_shared_images(a: np.ndarray, b: np.ndarray) -> int:
    """Number of images of ``b`` whose exact bytes also appear in ``a``."""
    seen = image_digests(a)
    flat = np.ascontiguousarray(b).reshape(len(b), -1)
    return sum(hashlib.blake2b(row.tobytes(), digest_size=16).digest() in seen for row in flat)


def summarise_split(name: str, split: Split, n_classes: int) -> SplitSummary:
    mean, std = _pixel_stats(split.features)
    return SplitSummary(
        name=name,
        count=len(split),
        histogram=split.class_counts(n_classes).tolist(),
        pixel_mean=mean,
        pixel_std=std,
        sorted_by_class=is_sorted_by_class(split.labels),
    )


def sanity_report(dataset: Dataset, test: Split | None = None) -> SanityReport:
    """Check ``dataset`` (and ``test`` when the caller has loaded it, i.e. outside a search)."""
    named = [("train", dataset.train), ("valid", dataset.valid)] + ([("test", test)] if test else [])
    splits = [summarise_split(name, split, dataset.n_classes) for name, split in named]
    report = SanityReport(splits=splits, class_names=dataset.class_names, notes=list(dataset.notes))
    for s in splits:
        missing = [i for i, c in enumerate(s.histogram) if c == 0]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            report.warnings.append(f"{s.name}: {len(missing)} classes have no images (ids {shown})")
        if s.sorted_by_class:
            report.warnings.append(
                f"{s.name}: images are sorted by class; the search shuffles them, but Keras' "
                "validation_split on this file would validate on the last classes only"
            )
    train, valid = splits[0], splits[1]
    if abs(train.pixel_mean - valid.pixel_mean) > 0.25 * max(train.pixel_std, 1.0) or not (
        0.67 < (valid.pixel_std + 1e-6) / (train.pixel_std + 1e-6) < 1.5
    ):
        report.warnings.append(
            f"train and valid pixel statistics differ a lot (mean {train.pixel_mean:.1f} vs "
            f"{valid.pixel_mean:.1f}, std {train.pixel_std:.1f} vs {valid.pixel_std:.1f}): "
            "were they normalised differently?"
        )
    if not dataset.valid_from_train:
        shared = count_shared_images(dataset.train.features, dataset.valid.features)
        if shared:
            report.warnings.append(
                f"{shared} valid images are exact duplicates of train images "
                "(leakage: validation accuracy will be optimistic)"
            )
    if test is not None:
        shared = count_shared_images(dataset.train.features, test.features)
        if shared:
            report.warnings.append(
                f"{shared} test images are exact duplicates of train images (leakage: test accuracy will be optimistic)"
            )
    return report
