"""A search's settings: the one place their defaults, ranges and help live.

``SearchConfig`` checks itself when it is built, serialises to JSON and is stored whole in the
study, so a resumed search, a joined worker, a ``--workers`` child and a later ``retrain`` all run
with the settings the study was started with. The command line is generated from the fields'
metadata (``setting``); a setting given again on a later command line overrides the stored one
(``with_overrides``), and the caller prints and records the change.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import UserError
from .sampling import PRUNERS, SAMPLERS
from .schema import TIE_BREAKS, StudyKey

OBJECTIVES = ("accuracy", "params", "latency")  # latency: measured CPU seconds per image at batch 1
FINAL_DATA = ("train", "train+valid")
EXPORT_FORMATS = ("savedmodel", "onnx", "tflite")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
ENGINES = ("auto", "fit", "compiled")  # compiled: search/engine/compiled.py (JAX backend only)
DEFAULT_OUT = Path("runs")


def setting(default: Any, help: str, *, flag: str | None = None, choices: tuple | None = None,
            check: str | None = None) -> Any:
    """A field with its command-line help; ``check`` names the range test in ``CHECKS``."""
    meta = {"help": help, "flag": flag, "choices": choices, "check": check}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SearchConfig:
    data_dir: Path = field(metadata={"help": "folder with train.p [valid.p] [test.p]", "check": "path"})
    space: str = setting("all", "space: cnn, lenet, all, or your own module (path/to/space.py or "
                                "package.module defining build(hp))", check="space")
    trials: int = setting(30, "the study's target of finished trials; a study that already reached it "
                              "is extended by this many", check="positive")
    timeout: float | None = setting(None, "seconds for the search phase; each trial is capped at "
                                          "--trial-time-fraction of it", check="positive")
    epochs: int = setting(10, "most epochs per trial", check="positive")
    patience: int = setting(3, "early-stopping patience in epochs", check="positive")
    final_epochs: int | None = setting(None, "most epochs of the final retrain (default 2 x --epochs)",
                                       check="positive")
    study: str | None = setting(None, "study name (default <space>-<data folder name>)")
    storage: str | None = setting(None, "Optuna storage URL (default: sqlite under <out>/<study>/study.db); "
                                        "e.g. postgresql://user@host/db for several machines")
    out: Path = setting(DEFAULT_OUT, "folder for run outputs", check="path")
    sampler: str = setting("tpe", "Optuna sampler", choices=tuple(SAMPLERS))
    local_share: float = setting(0.5, "share of sampled trials that try a neighbour of the best trial so "
                                      "far, one or two settings changed (0: the sampler alone)",
                                 check="share")
    pruner: str = setting("screen", "pruner: screen (after one epoch only the top third of all first-epoch "
                                    "scores goes on), hyperband, sha, median or none", choices=tuple(PRUNERS))
    seed: int = setting(0, "random seed of the sampler, the split and the models")
    objectives: tuple[str, ...] = setting(("accuracy",), "'accuracy', 'accuracy,params' or 'accuracy,latency' "
                                                         "(a Pareto front; disables pruning)", flag="--objective",
                                          check="objectives")
    named_points: bool = setting(True, "start a new study with the space's named points (the tutorial's "
                                       "models...)", flag="--no-named-points")
    retrain: bool = setting(True, "retrain the best configuration and score it on test.p afterwards",
                            flag="--no-retrain")
    final_data: str = setting("train", "what the final models train on: train (early stopping on valid), or "
                                       "train+valid for the epoch count the validation run chose",
                              choices=FINAL_DATA)
    final_candidates: int = setting(3, "most distinct top configurations the final stage retrains and may "
                                       "ensemble (fewer when the time budget cannot pay for them)",
                                    check="positive")
    export: tuple[str, ...] = setting(("onnx", "tflite"), "artifacts written beside best_model.keras at the "
                                                          "end, comma-separated: savedmodel, onnx, tflite "
                                                          "('' for none)", check="exports")
    n_classes: int | None = setting(None, "class count (default: signnames.csv or 43)", check="classes")
    valid_fraction: float = setting(0.2, "share of train.p held out (stratified) when there is no valid.p",
                                    check="fraction")
    workers: int = setting(1, "worker processes on this machine sharing the study", check="positive")
    precision: str = setting("float32", "Keras dtype policy", choices=PRECISIONS)
    heartbeat: float = setting(20.0, "seconds between trial heartbeats; a trial silent for 3 is marked "
                                     "failed", check="positive")
    max_failures: int = setting(5, "consecutive failed trials that stop the search", check="positive")
    dashboard_every: int = setting(5, "regenerate the dashboard after every N finished trials (0: only at "
                                      "the end)", check="non_negative")
    trial_time_fraction: float = setting(0.2, "most share of --timeout one trial may use", check="share_one")
    continue_cut: bool = setting(True, "when the per-trial time cap cuts the best trial so far short of its "
                                       "epochs, the next trial trains it on from its weights for the epochs it "
                                       "had left", flag="--no-continue-cut")
    steps_per_execution: int = setting(4, "train steps per compiled call (1 under PyTorch)", check="positive")
    warm_start: tuple[str, ...] = setting((), "earlier studies whose best configurations (3 distinct each) "
                                              "run first as named points, comma-separated: NAME (read from "
                                              "--storage, else <out>/NAME/study.db) or STORAGE_URL#NAME, e.g. "
                                              "sqlite:///runs/old/study.db#old")
    engine: str = setting("auto", "how a trial trains: fit (Keras model.fit), compiled (JAX backend only: data on "
                                  "the device, compiled chunks of 16 steps), auto (compiled under JAX with a "
                                  "GPU/TPU, else fit)", choices=ENGINES)
    population: int = setting(0, "trials trained together in one compiled program, sharing the architecture and "
                                 "differing in learning rate, weight decay, label smoothing and seed (JAX "
                                 "backend); 0: automatic (1 on a CPU, where it does not pay; 4 on a GPU/TPU)",
                              check="count")
    tie_break: str = setting("loss", "how trials of equal validation accuracy are ordered: loss (the lower "
                                     "validation loss) or robust (the higher accuracy on a darkened / "
                                     "low-contrast copy of the validation images, then the lower loss)",
                             choices=TIE_BREAKS)
    command: str = setting("", "the command line that made these settings (recorded, not an option)")

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.out = Path(self.out)
        if isinstance(self.objectives, str):
            self.objectives = parse_objectives(self.objectives)
        self.objectives = tuple(self.objectives)
        if isinstance(self.export, str):
            self.export = parse_list(self.export)
        self.export = tuple(self.export)
        if isinstance(self.warm_start, str):
            self.warm_start = parse_list(self.warm_start)
        self.warm_start = tuple(self.warm_start)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("choices") and value not in f.metadata["choices"]:
                raise UserError(f"--{f.name.replace('_', '-')}: {value!r} is not one of "
                                f"{', '.join(map(str, f.metadata['choices']))}")
            check = f.metadata.get("check")
            if check and value is not None:
                problem = CHECKS[check](value)
                if problem:
                    raise UserError(f"--{f.name.replace('_', '-')}: {problem}, got {value!r}")

    # -- derived facts -----------------------------------------------------------------------------
    @property
    def study_name(self) -> str:
        return self.study or default_study_name(self.space, self.data_dir)

    @property
    def run_dir(self) -> Path:
        return self.out / self.study_name

    @property
    def storage_url(self) -> str:
        from .schema import storage_url

        return storage_url(self.storage, self.out, self.study_name)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def trial_time_limit(self) -> float | None:
        """Per-trial cap derived from --timeout, so one expensive configuration cannot eat it all."""
        if self.timeout is None:
            return None
        return max(self.timeout * self.trial_time_fraction, 1.0)

    @property
    def final_epoch_limit(self) -> int:
        return self.final_epochs or 2 * self.epochs

    # -- serialisation -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, the form stored in the study."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchConfig:
        """Settings from ``to_json``'s form; keys this version does not know are ignored, missing
        ones take today's defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    def with_overrides(self, given: dict[str, Any]) -> tuple[SearchConfig, dict[str, tuple[Any, Any]]]:
        """A copy with ``given`` settings replacing the stored ones, and what changed
        (name -> (old, new), JSON values; the recorded command line is not counted as a change)."""
        new = dataclasses.replace(self, **given)
        old_json, new_json = self.to_json(), new.to_json()
        changes = {k: (old_json[k], new_json[k]) for k in given
                   if k != "command" and old_json[k] != new_json[k]}
        return new, changes

    @classmethod
    def from_study_attrs(cls, attrs: dict[str, Any]) -> SearchConfig:
        """The study's stored settings; a study made before settings were stored whole gives what
        it recorded (space, data folder, epochs, seed) and defaults for the rest."""
        stored = attrs.get(StudyKey.CONFIG)
        if isinstance(stored, dict):
            return cls.from_json(stored)
        legacy = {key: attrs[key] for key in (StudyKey.SPACE, StudyKey.EPOCHS, StudyKey.SEED) if key in attrs}
        return cls.from_json({**legacy, "data_dir": attrs.get(StudyKey.DATA_DIR) or "."})


def default_study_name(space: str, data_dir: Path | str) -> str:
    return f"{Path(space).stem if space.endswith('.py') else space}-{Path(data_dir).resolve().name}"


def parse_objectives(text: str) -> tuple[str, ...]:
    parts = parse_list(text)
    problem = _check_objectives(parts)
    if problem:
        raise UserError(f"--objective: {problem}, got {text!r}")
    return parts


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in str(text).split(",") if p.strip())


def _check_objectives(parts: tuple[str, ...]) -> str | None:
    if not parts or parts[0] != "accuracy" or len(parts) > 2 or any(p not in OBJECTIVES for p in parts[1:]):
        return "expected 'accuracy', 'accuracy,params' or 'accuracy,latency'"
    return None


def _check_exports(parts: tuple[str, ...]) -> str | None:
    bad = [p for p in parts if p not in EXPORT_FORMATS]
    return f"unknown format {bad[0]!r}; choose from {', '.join(EXPORT_FORMATS)}" if bad else None


def _check_space(name: str) -> str | None:
    # Names only: which spaces exist is the registry's to say, when the search opens the space
    # (importing it here would load Keras before an argument error could be printed).
    return None if isinstance(name, str) and name.strip() else "must name a space"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


CHECKS = {
    "positive": lambda v: None if (_number(v) or 0) > 0 else "must be a positive number",
    "count": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be 0 or a "
                                                                                             "whole number",
    "non_negative": lambda v: None if _number(v) is not None and v >= 0 else "must be 0 or more",
    "share": lambda v: None if _number(v) is not None and 0 <= v < 1 else "must be at least 0 and below 1",
    "share_one": lambda v: None if _number(v) is not None and 0 < v <= 1 else "must be above 0 and at most 1",
    "fraction": lambda v: None if _number(v) is not None and 0 < v < 1 else "must be between 0 and 1",
    "classes": lambda v: None if isinstance(v, int) and v >= 2 else "must be an integer of at least 2",
    "objectives": _check_objectives,
    "exports": _check_exports,
    "space": _check_space,
    "path": lambda v: None if str(v).strip() else "must not be empty",
}
