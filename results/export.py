"""Export the best configuration and list the studies of a storage.

``best_config`` prefers the run folder's ``best_config.json`` (written after the
final model was trained and tested) and falls back to the study's best trial, so it
also works while a search is still running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml

from search.schema import RunFile, StudyKey, TrialKey, best_trial, redact

from ._common import (
    STATE_ORDER,
    family_of,
    finite,
    fmt_count,
    fmt_value,
    is_multi_objective,
    objective_names,
    point_of,
    primary_value,
    state_counts,
)
from .runfiles import read_json
from .storage import load_study, resolve_storage, study_names

FORMATS = ("json", "yaml")


def best_config(study: optuna.Study, run_dir: Path | None) -> dict[str, Any]:
    """The best configuration: ``run_dir/best_config.json`` if readable, else the best trial.

    The best trial is ``schema.best_trial``, the one rule both sides use (highest validation
    accuracy, ties to the lower validation loss; multi-objective: on the Pareto front).
    Raises ValueError when the study has no complete trial yet.
    """
    if run_dir is not None:
        saved = read_json(Path(run_dir) / RunFile.BEST_CONFIG)
        if saved is not None and saved.get("study", study.study_name) == study.study_name:
            return saved
    trial = best_trial(study)
    if trial is None:
        raise ValueError(f"study {study.study_name!r} has no complete trial yet, so there is no best configuration")
    attrs = study.user_attrs
    cfg: dict[str, Any] = {
        "study": study.study_name,
        "space": attrs.get(StudyKey.SPACE),
        "family": family_of(trial),
        "hyperparameters": dict(trial.params),
        "val_accuracy": primary_value(trial),
        "test_accuracy": None,
        "trial_number": trial.number,
        "params": trial.user_attrs.get(TrialKey.PARAMS),
        "epochs": trial.user_attrs.get(TrialKey.EPOCHS),
        "command": attrs.get(StudyKey.COMMAND),
    }
    if trial.user_attrs.get(TrialKey.BEST_EPOCH) is not None:
        cfg["best_epoch"] = trial.user_attrs[TrialKey.BEST_EPOCH]
    resumed = trial.user_attrs.get(TrialKey.RESUMED_EPOCHS)
    if resumed:  # a continuation: epochs counted from the start of the weights' training
        cfg["continues"] = trial.user_attrs.get(TrialKey.CONTINUES)
        for key in ("epochs", "best_epoch"):
            if cfg.get(key) is not None:
                cfg[key] += resumed
    if is_multi_objective(study):
        cfg["objectives"] = dict(zip(objective_names(study), trial.values))
    point = point_of(trial)
    if point:
        cfg["point"] = point
    return cfg


def _plain(value: Any) -> Any:
    """JSON/YAML-safe builtins (numpy scalars and arrays, tuples, paths become plain values)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def format_config(cfg: dict[str, Any], fmt: str) -> str:
    """The config as JSON (indented) or YAML (key order kept), ending in a newline."""
    fmt = fmt.lower()
    plain = _plain(cfg)
    if fmt == "json":
        return json.dumps(plain, indent=2) + "\n"
    if fmt in ("yaml", "yml"):
        return yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, allow_unicode=True)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _best_text(study: optuna.Study) -> str:
    trial = best_trial(study)
    if trial is None:
        return "—"
    text = f"{fmt_value(primary_value(trial))} (#{trial.number})"
    if is_multi_objective(study) and len(trial.values) > 1 and finite(trial.values[1]) is not None:
        name = objective_names(study)[1]
        second = fmt_count(trial.values[1]) if name == "params" else fmt_value(trial.values[1])
        text += f", {name} {second}"
    return text


def studies_table(storage: str) -> str:
    """Plain-text table, one row per study: name, space, trials by state, best value."""
    url = resolve_storage(storage)
    names = study_names(url)
    if not names:
        return f"no studies in {redact(url)}\n"
    header = ["study", "space", "objectives", "complete", "pruned", "fail", "running", "waiting", "best val_accuracy"]
    rows = [header]
    for name in names:
        study = load_study(name, url)
        counts = state_counts(study)
        rows.append(
            [
                name,
                str(study.user_attrs.get(StudyKey.SPACE, "—")),
                "+".join(objective_names(study)),
                *(str(counts[s]) for s in STATE_ORDER),
                _best_text(study),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
