"""Atomic writes: a crash or Ctrl-C never leaves half a report where a whole one stood."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def private_tmp(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process uses: several workers on one study
    write the same run files, and a shared temporary name lets one rename the other's file away.
    The name ends like ``path`` so that writers which add a suffix (``.npz``, ``.keras``) keep it."""
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, payload: dict) -> None:
    write_text(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")
