"""Class names: GTSRB's 43, and the tutorial's ``signnames.csv`` that can replace them.

A data folder may bring its own ``signnames.csv`` (and with it its own class count); without one
the tool assumes GTSRB. The converters write the same file, so every data folder they produce
names its classes the way the tutorial's does.

The file is untrusted like the data files: it is read line by line, at most ``MAX_CLASSES`` rows and
``MAX_SIGNNAMES_LINE`` characters a line, so a huge file costs neither memory nor time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ..errors import DataError

# The most classes a data folder may have (signnames.csv rows, --n-classes, label ids): far above
# traffic-sign sets (GTSRB 43, the largest public sets a few hundred), low enough that per-class
# arrays and loops stay small.
MAX_CLASSES = 10_000
# Longest line read from signnames.csv; csv's own limit of 131,072 characters a field still applies.
MAX_SIGNNAMES_LINE = 1 << 20

GTSRB_CLASS_NAMES: tuple[str, ...] = (
    "Speed limit (20km/h)",
    "Speed limit (30km/h)",
    "Speed limit (50km/h)",
    "Speed limit (60km/h)",
    "Speed limit (70km/h)",
    "Speed limit (80km/h)",
    "End of speed limit (80km/h)",
    "Speed limit (100km/h)",
    "Speed limit (120km/h)",
    "No passing",
    "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection",
    "Priority road",
    "Yield",
    "Stop",
    "No vehicles",
    "Vehicles over 3.5 metric tons prohibited",
    "No entry",
    "General caution",
    "Dangerous curve to the left",
    "Dangerous curve to the right",
    "Double curve",
    "Bumpy road",
    "Slippery road",
    "Road narrows on the right",
    "Road work",
    "Traffic signals",
    "Pedestrians",
    "Children crossing",
    "Bicycles crossing",
    "Beware of ice/snow",
    "Wild animals crossing",
    "End of all speed and passing limits",
    "Turn right ahead",
    "Turn left ahead",
    "Ahead only",
    "Go straight or right",
    "Go straight or left",
    "Keep right",
    "Keep left",
    "Roundabout mandatory",
    "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
)

N_GTSRB_CLASSES = len(GTSRB_CLASS_NAMES)


def write_signnames(path: Path, names: tuple[str, ...] | list[str] = GTSRB_CLASS_NAMES) -> None:
    """Write names in the tutorial's ``signnames.csv`` layout (ClassId,SignName)."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ClassId", "SignName"])
        for class_id, name in enumerate(names):
            writer.writerow([class_id, name])


def read_signnames(path: Path) -> list[str]:
    """Read ``signnames.csv``; class ids must run 0..n-1 (the file order does not matter)."""
    try:
        with open(path, newline="") as fh:
            by_id = _names_by_id(path, fh)
    except DataError:
        raise
    except (OSError, KeyError, ValueError, TypeError, csv.Error) as exc:
        raise DataError(path, f"not a ClassId,SignName csv ({type(exc).__name__}: {_one_line(exc)})") from None
    except MemoryError:
        raise DataError(path, "not enough memory to read the file") from None
    if sorted(by_id) != list(range(len(by_id))) or not by_id:
        raise DataError(path, "ClassId values must run 0..n-1 without gaps")
    return [by_id[i] for i in range(len(by_id))]


def _names_by_id(path: Path, fh: TextIO) -> dict[int, str]:
    """Plain ``csv.reader`` rows, not ``DictReader``: that one fills every row with every header
    field, so a long header times many rows would take quadratic time."""
    rows = csv.reader(_bounded_lines(path, fh))
    header = next(rows, None) or []
    if "ClassId" not in header or "SignName" not in header:
        raise DataError(path, "needs a header row with ClassId and SignName columns")
    id_col, name_col = header.index("ClassId"), header.index("SignName")
    by_id: dict[int, str] = {}
    for row in rows:
        if not row:
            continue  # a blank line
        if len(by_id) == MAX_CLASSES:
            raise DataError(path, f"lists more than {MAX_CLASSES:,} classes (the most this tool supports)")
        if len(row) <= max(id_col, name_col):
            raise DataError(path, f"line {rows.line_num} lacks a ClassId or SignName field")
        class_id = int(row[id_col])
        if not 0 <= class_id < MAX_CLASSES:
            raise DataError(path, f"ClassId {_one_line(row[id_col], 20)} is outside 0..{MAX_CLASSES - 1}")
        if class_id in by_id:
            raise DataError(path, f"ClassId {class_id} appears twice")
        by_id[class_id] = row[name_col]
    return by_id


def _bounded_lines(path: Path, fh: TextIO) -> Iterator[str]:
    """The file's lines, refusing one longer than ``MAX_SIGNNAMES_LINE`` before it is all in memory."""
    while line := fh.readline(MAX_SIGNNAMES_LINE + 1):
        if len(line) > MAX_SIGNNAMES_LINE:
            raise DataError(path, f"has a line longer than {MAX_SIGNNAMES_LINE:,} characters")
        yield line


def _one_line(text: object, limit: int = 120) -> str:
    """One short line of an error's text (safe_pickle has the same helper; importing it would load
    numpy wherever MAX_CLASSES is imported)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
