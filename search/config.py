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
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .data.signnames import MAX_CLASSES
from .engine.engines import CHOICES as ENGINE_CHOICES
from .errors import UserError
from .redaction import redact, redact_url
from .sampling import PRUNERS, SAMPLERS
from .schema import TIE_BREAKS, StudyKey

OBJECTIVES = ("accuracy", "params", "latency")  # latency: measured CPU seconds per image at batch 1
FINAL_DATA = ("train", "train+valid")
EXPORT_FORMATS = ("savedmodel", "onnx", "tflite")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")  # auto: search/engine/precision.py
DEFAULT_OUT = Path("runs")
# A study name is a folder under --out: a plain name, so it can never point outside it.
STUDY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
SECRET_SETTINGS = ("storage", "warm_start")  # may hold a password: never echoed, stored redacted
MAX_SEED = 2**31 - 1  # NumPy, Keras and the samplers take 32-bit seeds; worker offsets are added to it


def setting(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    check: str | None = None,
    most: float | None = None,
) -> Any:
    """A field with its command-line help; ``check`` names the range test in ``CHECKS``, ``most`` is
    the largest value that makes sense (a larger one is a typo that would exhaust memory or time)."""
    meta = {"help": help, "flag": flag, "choices": choices, "check": check, "most": most}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SearchConfig:
    data_dir: Path = field(metadata={"help": "folder with train.p [valid.p] [test.p]", "check": "path", "most": None})
    space: str = setting(
        "all",
        "space: cnn, lenet, all, or your own module (path/to/space.py or package.module defining build(hp))",
        check="space",
    )
    trials: int = setting(
        30,
        "the study's target of finished trials; a study that already reached it is extended by this many",
        check="positive",
        most=100_000,
    )
    timeout: float | None = setting(
        None,
        "seconds for the search phase; each trial is capped at --trial-time-fraction of it",
        check="positive",
        most=366 * 86400,
    )
    epochs: int = setting(10, "most epochs per trial", check="positive", most=10_000)
    patience: int = setting(3, "early-stopping patience in epochs", check="positive", most=10_000)
    final_epochs: int | None = setting(
        None, "most epochs of the final retrain (default 2 x --epochs)", check="positive", most=10_000
    )
    study: str | None = setting(
        None, "study name: letters, digits, '-', '_', '.' (default <space>-<data folder name>)", check="study"
    )
    storage: str | None = setting(
        None,
        "Optuna storage URL (default: sqlite under <out>/<study>/study.db; "
        "or from --storage-env NAME / $HPSEARCH_STORAGE, which keep a password "
        "off the command line); e.g. postgresql://user@host/db for several "
        "machines",
        check="storage",
    )
    out: Path = setting(DEFAULT_OUT, "folder for run outputs", check="path")
    sampler: str = setting("tpe", "Optuna sampler", choices=tuple(SAMPLERS))
    local_share: float = setting(
        0.5,
        "share of sampled trials that try a neighbour of the best trial so "
        "far, one or two settings changed (0: the sampler alone)",
        check="share",
    )
    pruner: str = setting(
        "screen",
        "pruner: screen (after one epoch only the top third of all first-epoch "
        "scores goes on), hyperband, sha, median or none",
        choices=tuple(PRUNERS),
    )
    seed: int = setting(0, "random seed of the sampler, the split and the models", check="count", most=MAX_SEED)
    objectives: tuple[str, ...] = setting(
        ("accuracy",),
        "'accuracy', 'accuracy,params' or 'accuracy,latency' (a Pareto front; disables pruning)",
        flag="--objective",
        check="objectives",
    )
    named_points: bool = setting(
        True,
        "start a new study with the space's named points (the tutorial's models...)",
        flag="--no-named-points",
        check="flag",
    )
    retrain: bool = setting(
        True, "retrain the best configuration and score it on test.p afterwards", flag="--no-retrain", check="flag"
    )
    final_data: str = setting(
        "train",
        "what the final models train on: train (early stopping on valid), or "
        "train+valid for the epoch count the validation run chose",
        choices=FINAL_DATA,
    )
    final_candidates: int = setting(
        3,
        "most distinct top configurations the final stage retrains and may "
        "ensemble (fewer when the time budget cannot pay for them)",
        check="positive",
        most=50,
    )
    keep_models: int = setting(
        10,
        "trained trial models kept in <out>/<study>/models/ (the best by validation "
        "log-loss, best-epoch weights and validation predictions) for the final "
        "model's ensemble selection; 0 keeps none",
        check="count",
        most=1000,
    )
    export: tuple[str, ...] = setting(
        ("onnx", "tflite"),
        "artifacts written beside best_model.keras at the end, comma-separated: savedmodel, onnx, tflite ('' for none)",
        check="exports",
    )
    n_classes: int | None = setting(
        None, "class count (default: signnames.csv or 43)", check="classes", most=MAX_CLASSES
    )
    valid_fraction: float = setting(
        0.2, "share of train.p held out (stratified) when there is no valid.p", check="fraction"
    )
    workers: int = setting(1, "worker processes on this machine sharing the study", check="positive", most=256)
    precision: str = setting(
        "auto",
        "Keras dtype policy; auto: mixed_bfloat16 on a GPU/TPU with bfloat16 units "
        "(NVIDIA compute capability 8.0+) or, under TensorFlow, a CPU with avx512_bf16 "
        "or amx_bf16 (measured 1.34x less CPU per epoch, same accuracy), else float32",
        choices=PRECISIONS,
    )
    heartbeat: float = setting(
        20.0, "seconds between trial heartbeats; a trial silent for 3 is marked failed", check="positive", most=3600
    )
    max_failures: int = setting(5, "consecutive failed trials that stop the search", check="positive", most=10_000)
    dashboard_every: int = setting(
        5,
        "regenerate the dashboard after every N finished trials (0: only at the end)",
        check="non_negative",
        most=100_000,
    )
    trial_time_fraction: float = setting(0.2, "most share of --timeout one trial may use", check="share_one")
    continue_cut: bool = setting(
        True,
        "when the per-trial time cap cuts the best trial so far short of its "
        "epochs, the next trial trains it on from its weights for the epochs it "
        "had left",
        flag="--no-continue-cut",
        check="flag",
    )
    steps_per_execution: int = setting(
        4, "train steps per compiled call (1 under PyTorch)", check="positive", most=10_000
    )
    warm_start: tuple[str, ...] = setting(
        (),
        "earlier studies whose best configurations (3 distinct each) "
        "run first as named points, comma-separated: NAME (read from "
        "--storage, else <out>/NAME/study.db) or STORAGE_URL#NAME, e.g. "
        "sqlite:///runs/old/study.db#old",
        check="warm_start",
    )
    engine: str = setting(
        "auto",
        "how a trial trains: fit (Keras model.fit), compiled (JAX backend only: data on "
        "the device, compiled chunks of 16 steps), auto (compiled under JAX with a "
        "GPU/TPU, else fit)",
        choices=ENGINE_CHOICES,
    )
    population: int = setting(
        0,
        "trials trained together in one compiled program, sharing the architecture and "
        "differing in learning rate, weight decay, label smoothing and seed (JAX "
        "backend); 0: automatic (1 on a CPU, where it does not pay; 4 on a GPU/TPU)",
        check="count",
        most=256,
    )
    tie_break: str = setting(
        "loss",
        "how trials of equal validation accuracy are ordered: loss (the lower "
        "validation loss) or robust (the higher accuracy on a darkened / "
        "low-contrast copy of the validation images, then the lower loss)",
        choices=TIE_BREAKS,
    )
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
                raise UserError(
                    f"--{f.name.replace('_', '-')}: {value!r} is not one of "
                    f"{', '.join(map(str, f.metadata['choices']))}"
                )
            check = f.metadata.get("check")
            problem = CHECKS[check](value) if check and value is not None else None
            problem = problem or too_large(value, f.metadata.get("most"))
            if problem:
                shown = "" if f.name in SECRET_SETTINGS else f", got {value!r}"
                raise UserError(f"--{f.name.replace('_', '-')}: {problem}{shown}")

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
    def to_json(self, *, secrets: bool = False) -> dict[str, Any]:
        """Plain JSON values, the form stored in the study, with every storage URL's password
        hidden; ``secrets=True`` keeps them, for the private channel to a ``--workers`` child only."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        if not secrets:
            out["storage"] = redact_url(out["storage"]) if out["storage"] else out["storage"]
            out["warm_start"] = [redact_url(item) for item in out["warm_start"]]
            out["command"] = redact(out["command"])
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchConfig:
        """Settings from ``to_json``'s form; keys this version does not know are ignored, missing
        ones take today's defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def dumps(self, *, secrets: bool = False) -> str:
        return json.dumps(self.to_json(secrets=secrets), sort_keys=True)

    def with_overrides(self, given: dict[str, Any]) -> tuple[SearchConfig, dict[str, tuple[Any, Any]]]:
        """A copy with ``given`` settings replacing the stored ones, and what changed
        (name -> (old, new), JSON values; the recorded command line is not counted as a change)."""
        new = dataclasses.replace(self, **given)
        old_json, new_json = self.to_json(), new.to_json()
        changes = {k: (old_json[k], new_json[k]) for k in given if k != "command" and old_json[k] != new_json[k]}
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
    """``<space>-<data folder name>``, made a plain study name (other characters become ``_``)."""
    name = f"{Path(space).stem if space.endswith('.py') else space}-{Path(data_dir).resolve().name}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:128]


def check_study_name(name: str) -> str | None:
    """Why ``name`` cannot be a study name (a folder under --out), or None."""
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name) or name in (".", ".."):
        return "must be a plain name of letters, digits, '-', '_' and '.' (at most 128, not '.' or '..')"
    return None


def _check_warm_start(items: tuple[str, ...]) -> str | None:
    for item in items:
        url, _, name = item.rpartition("#") if "://" in item else ("", "", item)
        problem = check_study_name(name) or (check_storage(url) if url else None)
        if problem:
            return f"{redact_url(item)!r}: expected NAME or STORAGE_URL#NAME, and the name {problem}"
    return None


def check_storage(url: str) -> str | None:
    """Why ``url`` cannot be a storage URL, or None (an empty one would open a SQLite file named '')."""
    return (
        None
        if isinstance(url, str) and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://\S", url)
        else "must be a storage URL such as sqlite:///path/study.db or postgresql://user@host/db"
    )


def too_large(value: Any, most: float | None) -> str | None:
    """The message for a number above its setting's ``most``, or None."""
    number = _number(value)
    if most is None or number is None or number <= most:
        return None
    return f"must be at most {most}"


def parse_objectives(text: str) -> tuple[str, ...]:
    parts = parse_list(text)
    problem = _check_objectives(parts)
    if problem:
        raise UserError(f"--objective: {problem}, got {text!r}")
    return parts


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in str(text).split(",") if p.strip())


def _check_objectives(parts: tuple[str, ...]) -> str | None:
    if (
        not parts
        or parts[0] != "accuracy"
        or len(parts) > 2
        or any(p not in OBJECTIVES for p in parts[1:])
        or len(set(parts)) != len(parts)
    ):
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
    "count": lambda v: (
        None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be 0 or a whole number"
    ),
    "non_negative": lambda v: None if _number(v) is not None and v >= 0 else "must be 0 or more",
    "share": lambda v: None if _number(v) is not None and 0 <= v < 1 else "must be at least 0 and below 1",
    "share_one": lambda v: None if _number(v) is not None and 0 < v <= 1 else "must be above 0 and at most 1",
    "fraction": lambda v: None if _number(v) is not None and 0 < v < 1 else "must be between 0 and 1",
    "classes": lambda v: None if isinstance(v, int) and v >= 2 else "must be an integer of at least 2",
    "objectives": _check_objectives,
    "exports": _check_exports,
    "space": _check_space,
    "flag": lambda v: None if isinstance(v, bool) else "must be true or false",
    "study": check_study_name,
    "warm_start": _check_warm_start,
    "storage": check_storage,
    "path": lambda v: None if str(v).strip() else "must not be empty",
}
