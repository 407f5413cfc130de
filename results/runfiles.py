"""Tolerant readers for the files a search leaves in ``runs/<study>/``.

Their names are ``schema.RunFile``'s. Any of them may be absent (search still running,
no test.p) or half written by a running search; every reader returns None then and
records why, so the dashboard can say so instead of failing.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.schema import RunFile


@dataclass
class RunFiles:
    """What could be read from a run folder; None where a file is absent or unreadable."""

    run_dir: Path | None = None
    best_config: dict[str, Any] | None = None
    test_report: dict[str, Any] | None = None
    misclassified: dict[str, np.ndarray] | None = None
    data_overview: dict[str, np.ndarray] | None = None
    sanity_report: dict[str, Any] | None = None
    export_report: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str] | None:
        """Class names from the test report, else from the data overview."""
        if self.test_report and isinstance(self.test_report.get("class_names"), list):
            return [str(n) for n in self.test_report["class_names"]]
        if self.data_overview is not None and "class_names" in self.data_overview:
            return [str(n) for n in np.asarray(self.data_overview["class_names"]).tolist()]
        return None

    @property
    def warnings(self) -> list[str]:
        """Data warnings from ``sanity_report.json`` (empty when there is none)."""
        raw = (self.sanity_report or {}).get("warnings")
        return [str(w) for w in raw] if isinstance(raw, list) else []


def read_json(path: Path, problems: list[str] | None = None) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None (absent, half written, not an object)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        if problems is not None:
            problems.append(f"{path.name}: unreadable ({exc.__class__.__name__})")
        return None
    if not isinstance(data, dict):
        if problems is not None:
            problems.append(f"{path.name}: not a JSON object")
        return None
    return data


def read_npz(path: Path, problems: list[str] | None = None) -> dict[str, np.ndarray] | None:
    """All arrays of an ``.npz`` as a plain dict (no pickles are ever loaded), or None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if problems is not None:
            problems.append(f"{path.name}: unreadable ({exc.__class__.__name__}: {exc})")
        return None


def _final_folder(run_dir: Path) -> Path:
    """The folder of the final model's current set of files (``RunFile.FINAL_DIR`` resolved once), or
    the run folder itself for a run of the older layout, whose files lie at the top."""
    final = run_dir / RunFile.FINAL_DIR
    return final.resolve() if final.is_dir() else run_dir


def load_run_files(run_dir: Path | None) -> RunFiles:
    """Read every known file of a run folder; never raises for missing or broken files."""
    files = RunFiles(run_dir=run_dir)
    if run_dir is None:
        return files
    run_dir = Path(run_dir)
    final = _final_folder(run_dir)  # one set, even while a final stage swaps in the next
    files.best_config = read_json(final / RunFile.BEST_CONFIG, files.problems)
    files.test_report = read_json(final / RunFile.TEST_REPORT, files.problems)
    files.sanity_report = read_json(run_dir / RunFile.SANITY_REPORT, files.problems)
    # optional and written by a separate export step: a broken or odd one is only left out, never a note
    files.export_report = read_json(final / RunFile.EXPORT_REPORT)
    files.misclassified = read_npz(final / RunFile.MISCLASSIFIED, files.problems)
    files.data_overview = read_npz(run_dir / RunFile.DATA_OVERVIEW, files.problems)
    return files
