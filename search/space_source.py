"""Where a user's space module lives and what it holds, found without importing it.

A study stores the ``--space`` it searches, and ``join``, ``retrain`` and a resumed ``search`` import
that module. With a shared database, whoever can write the study can name any module, and importing
a module runs its code. So a study also records the SHA-256 of the module's file when it is made, and
a later command imports a stored user space only when it is typed again on its own command line or
the local file still has the recorded digest (``cli/settings.py``). Only the module's own file
is hashed, not what it imports. Built-in spaces (``cnn``, ``lenet``, ``all``) are part of the tool.
"""

from __future__ import annotations

import hashlib
import sys
from importlib.machinery import PathFinder
from pathlib import Path


def is_user_space(name: str) -> bool:
    """A ``.py`` path or a dotted module name; the built-in spaces' names have neither."""
    return name.endswith(".py") or "/" in name or "." in name


def space_file(name: str) -> Path | None:
    """The file a user space ``name`` would be imported from, or None when there is none.

    A dotted name is looked up on ``sys.path`` package by package with ``PathFinder``, which reads
    directories and never runs a package's ``__init__``."""
    if name.endswith(".py") or "/" in name:
        path = Path(name)
        return path if path.is_file() else None
    locations: list[str] | None = list(sys.path)
    spec = None
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        spec = PathFinder.find_spec(".".join(parts[:depth]), locations)
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
    origin = spec.origin if spec is not None else None
    return Path(origin) if origin and Path(origin).is_file() else None


def space_digest(name: str) -> str | None:
    """SHA-256 of the user space's file, or None for a built-in space or a file that is not there."""
    if not is_user_space(name):
        return None
    path = space_file(name)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None
