"""Opening studies for reading, with errors that name the study and the storage.

Optuna silently creates an empty SQLite file when asked to load from a path that
does not exist; a results tool must never do that, so missing files are refused
before Optuna sees them. Passwords in URLs are masked in every message (``schema.redact``).
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import InMemoryStorage

from search.schema import RunFile, redact, sqlite_url

__all__ = ["load_study", "redact", "resolve_storage", "snapshot", "study_names"]


def resolve_storage(storage: str) -> str:
    """A storage URL from a URL, a ``study.db`` path or a run folder; refuses missing SQLite files."""
    if "://" not in storage:
        path = Path(storage)
        if path.is_dir() and (path / RunFile.STUDY_DB).is_file():
            path = path / RunFile.STUDY_DB
        if not path.is_file():
            raise ValueError(
                f"storage {storage!r}: no such SQLite file (give a storage URL or a {RunFile.STUDY_DB} path)"
            )
        return sqlite_url(path)
    if storage.startswith("sqlite:///"):
        target = storage[len("sqlite:///") :].split("?", 1)[0]
        if target and target != ":memory:" and not Path(target).is_file():
            raise ValueError(f"storage {storage!r}: the SQLite file {target!r} does not exist")
    return storage


def study_names(storage: str) -> list[str]:
    """All study names in a storage (sorted), with a clear error when it cannot be opened."""
    url = resolve_storage(storage)
    try:
        return sorted(optuna.study.get_all_study_names(storage=url))
    except Exception as exc:  # driver errors vary (sqlalchemy, psycopg2, ImportError)
        raise ValueError(f"cannot open storage {redact(url)}: {_clean(exc, url)}") from None


def load_study(name: str, storage: str) -> optuna.Study:
    """Load an existing study for reading; ValueError naming study and storage when it is missing."""
    url = resolve_storage(storage)
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        pass
    except Exception as exc:
        raise ValueError(f"cannot load study {name!r} from storage {redact(url)}: {_clean(exc, url)}") from None
    names = study_names(url)
    known = ", ".join(names) if names else "none"
    raise ValueError(f"no study named {name!r} in storage {redact(url)} (studies there: {known})")


def _clean(exc: Exception, url: str) -> str:
    """Exception text without the password, in case a driver echoes the URL."""
    text = f"{exc.__class__.__name__}: {exc}".replace(url, redact(url))
    return redact(text).splitlines()[0] if text else exc.__class__.__name__


def snapshot(study: optuna.Study) -> optuna.Study:
    """An in-memory copy of the study as it is now.

    A dashboard drawn from a running search then shows one consistent moment, and a
    remote (e.g. PostgreSQL) storage is queried once instead of once per figure.
    Trial numbers are kept: Optuna numbers trials 0..n-1 in order, and they are
    re-added in that order.
    """
    storage = InMemoryStorage()
    storage.create_new_study(directions=list(study.directions), study_name=study.study_name)
    copy = optuna.Study(study_name=study.study_name, storage=storage)
    for key, value in study.user_attrs.items():
        copy.set_user_attr(key, value)
    copy.add_trials(sorted(study.get_trials(deepcopy=False), key=lambda t: t.number))  # copied on add
    return copy
