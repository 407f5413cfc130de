"""The official GTSRB folder layout read into a conversion plan, checked before any image is read.

The download describes its images in ``;``-separated ground-truth CSVs (one per training class,
one for the test set) and encodes the track of every training image in its file name. This module
finds the root, parses and validates those CSVs and lists every image with its class, track and
ROI, so that a broken download fails on one line naming the file, before minutes of conversion.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError, UserError
from ..signnames import N_GTSRB_CLASSES

CSV_COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
TEST_CSV_NAME = "GT-final_test.csv"
_TRACK_NAME = re.compile(r"^(\d+)_(\d+)\.ppm$", re.IGNORECASE)
_CLASS_DIR = re.compile(r"^\d{5}$")


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


def _item_from_row(csv_path: Path, line: int, row: dict[str, str], track: int, image_dir: Path) -> _Item:
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
        raise UserError(f"{images_dir}: no class folders found (expected 00000 .. 00042, each with GT-<class>.csv)")
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
                raise DataError(csv_path, f"line {line}: ClassId {item.class_id} in folder {class_dir.name}")
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
