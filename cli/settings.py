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
from typing import TYPE_CHECKING, Any

import optuna

from search.config import DEFAULT_OUT, SearchConfig, check_storage, default_study_name
from search.errors import UserError
from search.schema import StudyKey, redact, sqlite_path, storage_url
from search.space_source import is_user_space, space_digest

from .backend import start_backend
from .parser import STORAGE_ENV
from .paths import output_folder

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

    from search.engine.warm_start import Source


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
    """A command's settings, with what it read of its study when the study exists (its storage, opened
    once, and its stored attributes) and the overrides not yet recorded: they are written to the study
    by ``record`` only once the data, the study and every setting passed their checks, so a command
    that fails changes nothing."""

    cfg: SearchConfig
    storage: RDBStorage | None = None  # None: a new SQLite study, whose file does not exist yet
    attrs: dict[str, Any] | None = None  # the existing study's user attributes; None: a new study
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    store: bool = False
    warm: list[Source] | None = None  # --warm-start sources read here (a changed list); None: not read

    def open_study(self) -> optuna.Study:
        """The existing study, for a command that reads it without searching (``retrain``)."""
        assert self.storage is not None and self.attrs is not None, "open_study needs an existing study"
        return optuna.load_study(study_name=self.cfg.study_name, storage=self.storage)

    def record(self, study: optuna.Study, say: Callable[[str], None]) -> None:
        """Print and log the settings this command line changed (``search`` makes them the study's)."""
        from search.engine.study import record_overrides

        if self.attrs is None or not self.changes:
            return
        what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(self.changes.items()))
        say(
            f"study {self.cfg.study_name!r}: stored settings, changed on this command line: {what}"
            + ("" if self.store else " (for this run only)")
        )
        record_overrides(study, self.cfg, self.changes, store=self.store)


def _existing(
    name: str, storage: str | None, out: Path, must_exist: bool
) -> tuple[RDBStorage | None, dict[str, Any] | None]:
    """The study's storage, opened once (with the default heartbeat until the settings are known), and
    its stored attributes; (None, None) for a new SQLite study."""
    from search.engine.study import open_storage, stored_attrs

    path = sqlite_path(out, name)
    if storage is None and not path.exists():
        if must_exist:
            raise UserError(f"no study {name!r}: {path} does not exist")
        return None, None
    url = storage_url(storage, out, name)
    opened = open_storage(url, SearchConfig.heartbeat)
    attrs = stored_attrs(opened, name)
    if attrs is None and must_exist:
        raise UserError(f"no study {name!r} in {redact(url)}")
    return opened, attrs


def resolve(
    given: dict[str, Any], command: str, say: Callable[[str], None], *, store: bool, must_exist: bool = False
) -> Resolved:
    """The settings for this command and what exists of its study; nothing is written."""
    from search.engine.study import use_heartbeat

    name, storage, out = _locate(given)
    opened, attrs = _existing(name, storage, out, must_exist)
    typed = {**given, "command": command}
    if attrs is None:
        if "data_dir" not in given:
            raise UserError("--data-dir is required for a new study")
        cfg = SearchConfig(**typed)
        check_run_folder(cfg)
        if opened is not None:
            use_heartbeat(opened, cfg.heartbeat)
        return Resolved(cfg, opened, store=store)
    stored = SearchConfig.from_study_attrs(attrs)
    if StudyKey.CONFIG not in attrs:
        say(
            f"study {name!r} was made before settings were stored whole: using its space, data folder, "
            "epochs and seed, defaults for the rest"
        )
    # Where a study is found is not one of its settings: the same study read through another URL or
    # from another output folder is the same study.
    located = {k: v for k, v in (("study", name), ("storage", storage), ("out", out))}
    cfg, changes = stored.with_overrides({**typed, **located})
    changes = {k: v for k, v in changes.items() if k not in located}
    for fixed in ("space", "objectives"):  # what the study is; refused before anything is recorded
        if fixed in changes:
            old, new = changes[fixed]
            raise UserError(f"study {name!r} was made with {fixed} {old!r}, not {new!r}; pick another --study name")
    check_trusted_space(cfg.space, attrs, typed="space" in given, study_name=name)
    check_run_folder(cfg)
    assert opened is not None
    use_heartbeat(opened, cfg.heartbeat)  # the study's own, now that its settings are known
    warm = None
    if "warm_start" in changes:  # a source that cannot be read must not become a stored setting
        start_backend()  # reading a source builds its space's values: Keras
        from search.engine.warm_start import read_new

        warm = read_new(cfg, attrs.get(StudyKey.WARM_STARTED, []))
    return Resolved(cfg, opened, attrs, changes, store, warm)


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
    why = (
        "no such file here"
        if local is None
        else "the study recorded no digest of it"
        if not recorded
        else f"its SHA-256 here is {local[:12]}..., the study recorded {str(recorded)[:12]}..."
    )
    raise UserError(
        f"study {study_name!r} searches the space module {space!r} ({why}); it is imported only "
        f"when you name it on this command line: add --space {space}"
    )


def check_run_folder(cfg: SearchConfig) -> None:
    """``--out`` and the study's folder must be folders (or not exist yet): checked before anything
    is written, so a typo is one line instead of a traceback halfway through the run."""
    output_folder(cfg.run_dir, "--out")  # the study's folder and every folder above it
