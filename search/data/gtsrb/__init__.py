"""The official GTSRB download converted into the tutorial's ``train.p`` / ``valid.p`` / ``test.p``.

Split in three so each part can be read alone: ``layout`` reads and checks the download's folders
and ground-truth CSVs, ``images`` decodes and resizes the ``.ppm`` files with numpy alone, and
``convert`` holds whole tracks out for validation and writes the pickles (see its docstring for
why tracks and not images).
"""

from __future__ import annotations

from .convert import PICKLE_PROTOCOL, Progress, convert_gtsrb, split_tracks
from .images import read_ppm, resize_bilinear
from .layout import CSV_COLUMNS, TEST_CSV_NAME, find_gtsrb_root

__all__ = [
    "CSV_COLUMNS",
    "PICKLE_PROTOCOL",
    "Progress",
    "TEST_CSV_NAME",
    "convert_gtsrb",
    "find_gtsrb_root",
    "read_ppm",
    "resize_bilinear",
    "split_tracks",
]
