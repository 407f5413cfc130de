"""Class names: GTSRB's 43, and the tutorial's ``signnames.csv`` that can replace them.

A data folder may bring its own ``signnames.csv`` (and with it its own class count); without one
the tool assumes GTSRB. The converters write the same file, so every data folder they produce
names its classes the way the tutorial's does.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DataError

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
            rows = list(csv.DictReader(fh))
        by_id = {int(row["ClassId"]): row["SignName"] for row in rows}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(path, f"not a ClassId,SignName csv ({exc})") from None
    if sorted(by_id) != list(range(len(by_id))) or not by_id:
        raise DataError(path, "ClassId values must run 0..n-1 without gaps")
    return [by_id[i] for i in range(len(by_id))]
