"""A fake official GTSRB download: a few PPM images in the official folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
N_CLASSES, N_TRACKS, N_FRAMES, N_TEST = 3, 3, 4, 5


def write_ppm(path: Path, img: np.ndarray, comment: str | None = None) -> None:
    """A binary P6 file, optionally with a comment line in the header."""
    h, w = img.shape[:2]
    head = b"P6\n" + (f"# {comment}\n".encode() if comment else b"") + f"{w} {h}\n255\n".encode()
    path.write_bytes(head + np.ascontiguousarray(img, dtype=np.uint8).tobytes())


def _rows_for(rng: np.random.Generator, folder: Path, names: list[str], classes: list[int]) -> list[str]:
    """Write one random-size image per name and return its GT csv rows."""
    rows = []
    for name, class_id in zip(names, classes):
        w, h = (int(v) for v in rng.integers(25, 61, size=2))
        # Colour encodes the class, so labels can be checked from the pixels.
        img = np.full((h, w, 3), (40 * class_id + 20, 100, 200), dtype=np.uint8)
        write_ppm(folder / name, img)
        x1, y1 = int(rng.integers(0, 6)), int(rng.integers(0, 6))
        x2, y2 = w - 1 - int(rng.integers(0, 6)), h - 1 - int(rng.integers(0, 6))
        rows.append(f"{name};{w};{h};{x1};{y1};{x2};{y2};{class_id}")
    return rows


def make_tree(root: Path, *, test: bool = True, test_csv_place: str = "images") -> dict:
    """A fake official tree: N_CLASSES x N_TRACKS x N_FRAMES training images (+ a test part)."""
    rng = np.random.default_rng(123)
    expected: dict = {"train": {}, "test": []}
    for c in range(N_CLASSES):
        folder = root / "Final_Training" / "Images" / f"{c:05d}"
        folder.mkdir(parents=True)
        names = [f"{t:05d}_{f:05d}.ppm" for t in range(N_TRACKS) for f in range(N_FRAMES)]
        rows = _rows_for(rng, folder, names, [c] * len(names))
        (folder / f"GT-{c:05d}.csv").write_text("\n".join([HEADER, *rows]) + "\n")
        for row in rows:
            expected["train"][(c, row.split(";")[0])] = row
    if test:
        images = root / "Final_Test" / "Images"
        images.mkdir(parents=True)
        names = [f"{i:05d}.ppm" for i in range(N_TEST)]
        classes = [i % N_CLASSES for i in range(N_TEST)]
        rows = _rows_for(rng, images, names, classes)
        places = {"images": images, "final_test": root / "Final_Test", "root": root}
        (places[test_csv_place] / "GT-final_test.csv").write_text("\n".join([HEADER, *rows]) + "\n")
        expected["test"] = rows
    return expected
