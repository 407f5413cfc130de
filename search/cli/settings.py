"""Which settings a command runs with: the study's stored ones, with what was typed on top.

A new study takes the typed settings and the defaults. An existing study takes its stored
settings (``StudyKey.CONFIG``); every setting typed again overrides its stored value, the change is
printed, and it is recorded in the study's override log. ``search`` makes the new values the
study's settings; ``retrain`` and ``join`` only use them for that run.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from ..config import DEFAULT_OUT, SearchConfig, check_storage, default_study_name
from ..errors import UserError
from ..schema import StudyKey
from ..space_source import is_user_space, space_digest
from .backend import start_backend
from .parser import STORAGE_ENV
from .paths import output_folder


def apply_storage_env(args: argparse.Namespace) -> int:
    """Put the storage URL of ``--storage-env NAME`` (or of ``$HPSEARCH_STORAGE`` when no storage is
    typed) into ``args.storage``: a URL with a password then never appears on a command line, where
    any local user can read it (``ps``). Returns 0; a missing or malformed variable is a UserError."""
    if not getattr(args, "takes_storage", False) or getattr(args, "storage", None):
        return 0
    name = getattr(args, "storage_env", None)
    value = os.environ.get(name or STORAGE_ENV, "")
    if name is not None and not value:
        raise UserError(f"--storage-env {name}: the environment variable {name} is not set or is empty")
    if value:
        if check_storage(value):
            raise UserError(f"${name or STORAGE_ENV} is not a storage URL such as postgresql://user@host/db")
        args.storage = value
    return 0


def _locate(given: dict[str, Any]) -> tuple[str, str | None, Path]:
    out = Path(given.get("out", DEFAULT_OUT))
    if given.get("study"):
        return str(given["study"]), given.get("storage"), out
    if "data_dir" not in given:
        raise UserError("--data-dir is required (or --study NAME of an existing study)")
    space = given.get("space", SearchConfig.space)
    return default_study_name(space, given["data_dir"]), given.get("storage"), out


@dataclass
class Resolved:
    """A command's settings and its study, with the overrides not yet recorded: they are written to
    the study by ``record`` only once the data, the study and every setting passed their checks, so a
    command that fails changes nothing."""

    cfg: SearchConfig
    study: optuna.Study | None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    store: bool = False

    def record(self, say: Callable[[str], None]) -> None:
        """Print and log the settings this command line changed (``search`` makes them the study's)."""
        from ..engine.study import record_overrides

        if self.study is None or not self.changes:
            return
        what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(self.changes.items()))
        say(f"study {self.cfg.study_name!r}: stored settings, changed on this command line: {what}"
            + ("" if self.store else " (for this run only)"))
        record_overrides(self.study, self.cfg, self.changes, store=self.store)


def resolve(given: dict[str, Any], command: str, say: Callable[[str], None], *, store: bool,
            must_exist: bool = False) -> Resolved:
    """The settings for this command and the study if it exists already; nothing is written."""
    from ..engine.study import find_study, open_existing

    name, storage, out = _locate(given)
    study = open_existing(name, storage, out) if must_exist else find_study(name, storage, out)
    typed = {**given, "command": command}
    if study is None:
        if "data_dir" not in given:
            raise UserError("--data-dir is required for a new study")
        cfg = SearchConfig(**typed)
        check_run_folder(cfg)
        return Resolved(cfg, None, store=store)
    stored = SearchConfig.from_study_attrs(study.user_attrs)
    if StudyKey.CONFIG not in study.user_attrs:
        say(f"study {name!r} was made before settings were stored whole: using its space, data folder, "
            "epochs and seed, defaults for the rest")
    # Where a study is found is not one of its settings: the same study read through another URL or
    # from another output folder is the same study.
    located = {k: v for k, v in (("study", name), ("storage", storage), ("out", out))}
    cfg, changes = stored.with_overrides({**typed, **located})
    changes = {k: v for k, v in changes.items() if k not in located}
    for fixed in ("space", "objectives"):  # what the study is; refused before anything is recorded
        if fixed in changes:
            old, new = changes[fixed]
            raise UserError(f"study {name!r} was made with {fixed} {old!r}, not {new!r}; pick another --study name")
    check_trusted_space(cfg.space, study.user_attrs, typed="space" in given, study_name=name)
    check_run_folder(cfg)
    if "warm_start" in changes:  # a source that cannot be read must not become a stored setting
        start_backend()  # reading a source builds its space's values: Keras
        from ..engine.warm_start import read_new

        read_new(cfg, study.user_attrs.get(StudyKey.WARM_STARTED, []))
    return Resolved(cfg, study, changes, store)


def check_trusted_space(space: str, study_attrs: dict, *, typed: bool, study_name: str) -> None:
    """Refuse to import a user space that only the study names (``search/space_source.py``): it is
    imported when typed on this command line, or when the local file has the digest the study
    recorded. Whoever can write a shared database must not choose code for this machine to run."""
    if typed or not is_user_space(space):
        return
    recorded = study_attrs.get(StudyKey.SPACE_SHA256)
    local = space_digest(space)
    if recorded and local == recorded:
        return
    why = ("no such file here" if local is None else
           "the study recorded no digest of it" if not recorded else
           f"its SHA-256 here is {local[:12]}..., the study recorded {str(recorded)[:12]}...")
    raise UserError(f"study {study_name!r} searches the space module {space!r} ({why}); it is imported only "
                    f"when you name it on this command line: add --space {space}")


def check_run_folder(cfg: SearchConfig) -> None:
    """``--out`` and the study's folder must be folders (or not exist yet): checked before anything
    is written, so a typo is one line instead of a traceback halfway through the run."""
    output_folder(cfg.run_dir, "--out")  # the study's folder and every folder above it
