"""Which settings a command runs with: the study's stored ones, with what was typed on top.

A new study takes the typed settings and the defaults. An existing study takes its stored
settings (``StudyKey.CONFIG``); every setting typed again overrides its stored value, the change is
printed, and it is recorded in the study's override log. ``search`` makes the new values the
study's settings; ``retrain`` and ``join`` only use them for that run.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from ..config import DEFAULT_OUT, SearchConfig, default_study_name
from ..errors import UserError
from ..schema import StudyKey
from .backend import start_backend


def _locate(given: dict[str, Any]) -> tuple[str, str | None, Path]:
    out = Path(given.get("out", DEFAULT_OUT))
    if given.get("study"):
        return str(given["study"]), given.get("storage"), out
    if "data_dir" not in given:
        raise UserError("--data-dir is required (or --study NAME of an existing study)")
    space = given.get("space", SearchConfig.space)
    return default_study_name(space, given["data_dir"]), given.get("storage"), out


def resolve(given: dict[str, Any], command: str, say: Callable[[str], None], *, store: bool,
            must_exist: bool = False) -> tuple[SearchConfig, optuna.Study | None]:
    """The settings for this command and the study if it exists already."""
    from ..engine.study import find_study, open_existing, record_overrides

    name, storage, out = _locate(given)
    study = open_existing(name, storage, out) if must_exist else find_study(name, storage, out)
    typed = {**given, "command": command}
    if study is None:
        if "data_dir" not in given:
            raise UserError("--data-dir is required for a new study")
        return SearchConfig(**typed), None
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
    if "warm_start" in changes:  # a source that cannot be read must not become a stored setting
        start_backend()  # reading a source builds its space's values: Keras
        from ..engine.warm_start import read_new

        read_new(cfg, study.user_attrs.get(StudyKey.WARM_STARTED, []))
    if changes:
        what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(changes.items()))
        say(f"study {name!r}: stored settings, changed on this command line: {what}"
            + ("" if store else " (for this run only)"))
        record_overrides(study, cfg, changes, store=store)
    return cfg, study
