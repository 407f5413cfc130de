"""The data layer: loading and checking the tutorial's data files, and making data folders.

Everything the search knows about data enters through ``load_dataset``, which checks every file of
a data folder (``test.p`` included) before any training, so bad input costs seconds, not a search.
The submodules are imported by name where needed: ``sanity`` (the report printed before a
search), ``overview`` (the small data picture for the dashboard), ``signnames``, ``safe_pickle``,
``gtsrb`` (the official download's converter) and ``synth`` (the built-in synthetic signs).
"""

from __future__ import annotations

from .loading import (
    SPLIT_SUFFIXES,
    Dataset,
    Split,
    find_split_file,
    load_dataset,
    load_split,
    read_raw,
    stratified_split,
)

__all__ = [
    "SPLIT_SUFFIXES",
    "Dataset",
    "Split",
    "find_split_file",
    "load_dataset",
    "load_split",
    "read_raw",
    "stratified_split",
]
