"""Hand-built studies and run folders in the search's format, for the results/ tests.

Keys and file names are ``search.schema``'s, as the search writes them. Nothing here trains anything:
trials are added with ``study.add_trial`` exactly as the search code records them (params,
intermediate values, user attrs, timestamps).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from search.schema import RunFile, StudyKey, TrialKey

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)
N_CLASSES = 43
CLASS_NAMES = [f"Sign {i}" for i in range(N_CLASSES)]
CLASS_NAMES[14] = "Stop"
CLASS_NAMES[17] = "No entry"

COMMON_DISTS = {
    "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    "batch_size": CategoricalDistribution([32, 64, 128]),
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
    "augment": CategoricalDistribution([True, False]),
}
CNN_DISTS = {
    "cnn/conv_blocks": IntDistribution(1, 3),
    "cnn/filters_0": IntDistribution(16, 64, step=16),
    "cnn/dropout": FloatDistribution(0.0, 0.5),
}
LENET_DISTS = {
    "lenet/padding": CategoricalDistribution(["valid", "same"]),
    "lenet/dense_units": IntDistribution(64, 256, log=True),
}


def new_study(
    directions: list[str] | None = None,
    space: str = "all",
    name: str = "demo",
    storage: str | None = None,
    **attrs: Any,
) -> optuna.Study:
    """An empty study with the user attrs the search writes."""
    directions = directions or ["maximize"]
    study = optuna.create_study(directions=directions, storage=storage, study_name=name)
    objectives = ["val_accuracy", "params"][: len(directions)]
    defaults = {
        StudyKey.SPACE: space,
        StudyKey.DATA_DIR: "/data/gtsrb",
        StudyKey.DATA_HASH: "0123456789abcdef0123",
        StudyKey.OBJECTIVES: objectives,
        StudyKey.SEED: 1,
        StudyKey.EPOCHS: 10,
        StudyKey.TARGET: 40,
        StudyKey.COMMAND: "run_search.py search --space all",
        StudyKey.CREATED: "2024-05-01T12:00:00",
    }
    defaults.update(attrs)
    for key, value in defaults.items():
        study.set_user_attr(key, value)
    return study


def add_trial(
    study: optuna.Study,
    state: TrialState = TrialState.COMPLETE,
    *,
    curve: list[float] | None = None,
    params: dict[str, Any] | None = None,
    dists: dict[str, Any] | None = None,
    values: list[float] | None = None,
    start: dt.datetime | None = None,
    seconds: float = 60.0,
    attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    """Add one trial; the value defaults to the curve's best and timestamps to ``start + seconds``."""
    curve = list(curve or [])
    params = dict(params or {})
    dists = dict(dists or {})
    n_before = len(study.get_trials(deepcopy=False))
    start = start or T0 + dt.timedelta(minutes=2 * n_before)
    finished = state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    if state == TrialState.COMPLETE and values is None:
        values = [max(curve) if curve else 0.5]
        if len(study.directions) > 1:
            values.append(float((attrs or {}).get(TrialKey.PARAMS, 100_000)))
    user_attrs: dict[str, Any] = {
        TrialKey.EPOCHS: len(curve),
        TrialKey.BEST_EPOCH: int(np.argmax(curve)) + 1 if curve else 0,
        TrialKey.SECONDS: seconds,
        TrialKey.VAL_CURVE: curve,
        TrialKey.TRAIN_CURVE: [min(1.0, v + 0.02) for v in curve],
        TrialKey.STOP_REASON: {TrialState.PRUNED: "pruned", TrialState.FAIL: "error"}.get(state, "max_epochs"),
    }
    if "family" in params:
        user_attrs[TrialKey.FAMILY] = params["family"]
    if state == TrialState.FAIL:
        user_attrs[TrialKey.FAIL_REASON] = "ResourceExhaustedError: OOM"
    user_attrs.update(attrs or {})
    trial = FrozenTrial(
        number=n_before,
        state=state,
        value=None,
        values=values if state == TrialState.COMPLETE else None,
        datetime_start=None if state == TrialState.WAITING else start,
        datetime_complete=start + dt.timedelta(seconds=seconds) if finished else None,
        params=params if state != TrialState.WAITING else {},
        distributions={k: dists[k] for k in params} if state != TrialState.WAITING else {},
        user_attrs=user_attrs,
        system_attrs={},
        intermediate_values={i + 1: v for i, v in enumerate(curve)},
        trial_id=0,
    )
    study.add_trial(trial)
    return study.get_trials(deepcopy=False)[-1]


def _params(rng: random.Random, family: str, space: str) -> tuple[dict[str, Any], dict[str, Any]]:
    params: dict[str, Any] = {}
    dists: dict[str, Any] = {}
    if space == "all":
        params["family"] = family
        dists["family"] = CategoricalDistribution(["cnn", "lenet"])
    if family == "cnn":
        params.update(
            {
                "cnn/conv_blocks": rng.randint(1, 3),
                "cnn/filters_0": rng.choice([16, 32, 48, 64]),
                "cnn/dropout": round(rng.uniform(0, 0.5), 3),
            }
        )
        dists.update(CNN_DISTS)
    else:
        params.update({"lenet/padding": rng.choice(["valid", "same"]), "lenet/dense_units": rng.randint(64, 256)})
        dists.update(LENET_DISTS)
    params.update(
        {
            "learning_rate": 10 ** rng.uniform(-4, -2),
            "batch_size": rng.choice([32, 64, 128]),
            "optimizer": rng.choice(["adam", "sgd"]),
            "augment": rng.choice([True, False]),
        }
    )
    dists.update(COMMON_DISTS)
    return params, dists


def _curve(rng: random.Random, top: float, epochs: int) -> list[float]:
    return [round(top * (1 - 0.6 * 0.55**e) + rng.uniform(-0.01, 0.01), 4) for e in range(epochs)]


def full_study(
    n: int = 24,
    space: str = "all",
    multi: bool = False,
    storage: str | None = None,
    name: str = "demo",
    workers: int = 3,
) -> optuna.Study:
    """A realistic study: named points first, then sampled trials on parallel workers.

    Holds complete, pruned, one failed, one running and one waiting trial.
    """
    rng = random.Random(7)
    study = new_study(["maximize", "minimize"] if multi else ["maximize"], space=space, storage=storage, name=name)
    clocks = [T0 + dt.timedelta(seconds=7 * w) for w in range(workers)]
    for i in range(n):
        w = i % workers
        family = "cnn" if space == "cnn" else ("lenet" if space == "lenet" else rng.choice(["cnn", "lenet"]))
        if i < 2 and space == "all":
            family = ["cnn", "lenet"][i]
        params, dists = _params(rng, family, space)
        attrs: dict[str, Any] = {
            TrialKey.WORKER: f"node{w // 2}:{100 + w}",
            TrialKey.PARAMS: rng.randint(40_000, 2_000_000),
        }
        if i < 2:
            attrs[TrialKey.POINT] = f"{family}_tutorial" if space == "all" else "tutorial"
        state = TrialState.COMPLETE
        if i == n - 1:
            state = TrialState.WAITING
        elif i == n - 2:
            state = TrialState.RUNNING
        elif i == 5:
            state = TrialState.FAIL
        elif i > 3 and i % 3 == 0:
            state = TrialState.PRUNED
        top = rng.uniform(0.85, 0.99) if family == "cnn" else rng.uniform(0.8, 0.93)
        epochs = {TrialState.PRUNED: 3, TrialState.FAIL: 1, TrialState.RUNNING: 4, TrialState.WAITING: 0}.get(state, 10)
        curve = _curve(rng, top, epochs)
        seconds = 6.0 * epochs + rng.uniform(0, 5)
        add_trial(study, state, curve=curve, params=params, dists=dists, start=clocks[w], seconds=seconds, attrs=attrs)
        clocks[w] += dt.timedelta(seconds=seconds + 1)
    return study


def class_names(classes: int = N_CLASSES, names: list[str] | None = None) -> list[str]:
    """``names`` (a data folder's signnames.csv) or ``CLASS_NAMES``, padded to ``classes`` names."""
    names = list(names if names is not None else CLASS_NAMES)[:classes]
    return names + [f"extra {i}" for i in range(len(names), classes)]


def write_run_files(
    run_dir: Path,
    *,
    test: bool = True,
    overview: bool = True,
    classes: int = N_CLASSES,
    study_name: str = "demo",
    final: bool = False,
    export: dict[str, Any] | list[Any] | str | None = None,
    names: list[str] | None = None,
) -> Path:
    """Write the run-folder files the search leaves (best config, test report, images).

    ``final``: the new-style files of a final stage that compared options (``final_report_keys``);
    ``export``: the content of ``export_report.json`` (a str is written as it is, e.g. half a file);
    ``names``: the class names (default ``CLASS_NAMES``).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = class_names(classes, names)
    support = rng.integers(30, 200, size=classes)
    cm = np.zeros((classes, classes), dtype=int)
    for i in range(classes):
        wrong = int(support[i] * (0.3 if i == 14 else rng.uniform(0, 0.08)))
        cm[i, i] = support[i] - wrong
        cm[i, (i + 3) % classes] += wrong
    per_class = []
    for i in range(classes):
        recall = cm[i, i] / cm[i].sum()
        precision = cm[i, i] / max(cm[:, i].sum(), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(
            {
                "class_id": i,
                "name": names[i],
                "support": int(cm[i].sum()),
                "accuracy": float(recall),
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
            }
        )
    accuracy = float(np.trace(cm) / cm.sum())
    best = {
        "study": study_name,
        "space": "all",
        "family": "cnn",
        "hyperparameters": {"family": "cnn", "cnn/conv_blocks": 2, "learning_rate": 0.001},
        "val_accuracy": 0.97,
        "test_accuracy": accuracy if test else None,
        "trial_number": 3,
        "params": 123456,
        "epochs": 10,
        "command": "run_search.py search",
    }
    extra = final_report_keys(int(cm.sum()), accuracy) if final else {}
    if final:
        best.update({key: extra[key] for key in ("final_model", "final_options")})
        best["final_data"] = "train"
        best["members"] = [
            {
                "trial_number": n,
                "hyperparameters": {"learning_rate": 0.001},
                "epochs": 10,
                "best_epoch": 8,
                "val_accuracy": 0.97 - 0.01 * i,
            }
            for i, n in enumerate((3, 7, 1))
        ]
    (run_dir / RunFile.BEST_CONFIG).write_text(json.dumps(best))
    if export is not None:
        (run_dir / RunFile.EXPORT_REPORT).write_text(export if isinstance(export, str) else json.dumps(export))
    (run_dir / RunFile.SANITY_REPORT).write_text(json.dumps({"warnings": ["12 test images duplicate training images"]}))
    if test:
        report = {
            "test_accuracy": accuracy,
            "test_loss": 0.2,
            "n_test": int(cm.sum()),
            "class_names": names,
            "per_class": per_class,
            "macro_f1": float(np.mean([p["f1"] for p in per_class])),
            "confusion_matrix": cm.tolist(),
            "duplicates_with_train": 12,
            **extra,
        }
        (run_dir / RunFile.TEST_REPORT).write_text(json.dumps(report))
        k = 20
        np.savez(
            run_dir / RunFile.MISCLASSIFIED,
            images=rng.integers(0, 255, (k, 32, 32, 3), dtype=np.uint8),
            true=np.arange(k) % classes,
            pred=(np.arange(k) + 3) % classes,
        )
    if overview:
        np.savez(run_dir / RunFile.DATA_OVERVIEW, **make_overview(classes, test=test, names=names))
    return run_dir


#: The options a final stage compares on validation, as ``search/final`` reports them.
FINAL_OPTIONS = [
    {
        "name": "single",
        "members": [3],
        "tta": False,
        "temperature": 1.45,
        "val_correct": 4260,
        "val_accuracy": 4260 / 4410,
        "val_nll": 0.131,
    },
    {
        "name": "single + TTA",
        "members": [3],
        "tta": True,
        "temperature": 1.39,
        "val_correct": 4268,
        "val_accuracy": 4268 / 4410,
        "val_nll": 0.122,
    },
    {
        "name": "ensemble of 3",
        "members": [3, 7, 1],
        "tta": False,
        "temperature": 0.91,
        "val_correct": 4281,
        "val_accuracy": 4281 / 4410,
        "val_nll": 0.104,
    },
    {
        "name": "ensemble of 3 + TTA",
        "members": [3, 7, 1],
        "tta": True,
        "temperature": 0.88,
        "val_correct": 4281,
        "val_accuracy": 4281 / 4410,
        "val_nll": 0.109,
    },
]
CHOSEN_OPTION = 2
#: Reliability bins of the new-style report: 10 equal bins, the lowest ones empty.
RELIABILITY = {
    "edges": [i / 10 for i in range(11)],
    "confidence": [None, None, None, 0.35, 0.46, 0.55, 0.66, 0.74, 0.86, 0.985],
    "accuracy": [None, None, None, 0.25, 0.4, 0.5, 0.6, 0.7, 0.84, 0.99],
    "count": [0, 0, 0, 4, 5, 10, 12, 20, 49, 0],  # the last bin's count is set from n_test
    "ece": 0.0123,
}


def final_report_keys(n_test: int, accuracy: float) -> dict[str, Any]:
    """The keys a final stage that compared options adds to ``test_report.json``."""
    reliability = json.loads(json.dumps(RELIABILITY))
    reliability["count"][-1] = n_test - sum(reliability["count"][:-1])
    return {
        "accuracy_ci95": [accuracy - 0.004, accuracy + 0.0035],
        "ece": RELIABILITY["ece"],
        "nll": 0.1123,
        "reliability": reliability,
        "params": 123456,
        "size_bytes": 3 * 2**20 + 2**19,
        "speed": {"latency_ms_batch1": 1.234, "images_per_s_batch256": 9876.5, "repeats": 20, "backend": "tensorflow"},
        "final_model": dict(FINAL_OPTIONS[CHOSEN_OPTION]),
        "final_options": [dict(o) for o in FINAL_OPTIONS],
    }


#: ``export_report.json`` as ``search/final/export.py``'s ``update_export_report`` writes it: artifacts by name.
EXPORT_REPORT = {
    "model": "best_model.keras",
    "artifacts": {
        "best_model_savedmodel": {
            "format": "savedmodel",
            "path": "best_model_savedmodel",
            "bytes": 5 * 2**20,
            "quantization": None,
            "runtime": "tensorflow",
            "n_test": 5000,
            "test_accuracy": 0.9561,
            "agreement_with_keras": 1.0,
            "seconds_per_image_batch1": 0.0011,
            "images_per_second_batch256": 12000.0,
            "exported": "2024-05-01T13:00:00+0000",
        },
        "best_model_int8.tflite": {
            "format": "tflite",
            "path": "best_model_int8.tflite",
            "bytes": 2**20,
            "quantization": "int8",
            "command": "run_search.py export --format tflite",
        },
    },
}
#: The same as a list of entries in the other spelling (``size_bytes``, ``quantize``, milliseconds).
EXPORT_REPORT_LIST = {
    "artifacts": [
        {
            "format": "savedmodel",
            "path": "/runs/demo/best_model_savedmodel",
            "size_bytes": 5 * 2**20,
            "quantize": None,
            "test_accuracy": 0.9561,
            "latency_ms_batch1": 1.1,
        },
        {
            "format": "tflite",
            "path": "/runs/demo/best_model_int8.tflite",
            "size_bytes": 2**20,
            "quantize": "int8",
            "test_accuracy": None,
            "latency_ms_batch1": None,
        },
        {"format": "onnx", "file": "best_model.onnx"},
    ]
}


def make_overview(
    classes: int = N_CLASSES, test: bool = True, missing: tuple[int, ...] = (), names: list[str] | None = None
) -> dict[str, np.ndarray]:
    """The content of ``data_overview.npz``; classes in ``missing`` have no example; ``names`` as in
    ``write_run_files``."""
    rng = np.random.default_rng(1)
    examples = rng.integers(0, 255, (classes, 32, 32, 3), dtype=np.uint8)
    has = np.ones(classes, dtype=bool)
    for i in missing:
        has[i] = False
        examples[i] = 0
    data = {
        "examples": examples,
        "has_example": has,
        "counts_train": rng.integers(180, 2000, classes),
        "counts_valid": rng.integers(30, 240, classes),
        "class_names": np.array(class_names(classes, names)),
    }
    if test:
        data["counts_test"] = rng.integers(60, 700, classes)
    return data
