"""The final model: retrain the best configuration from scratch, then score it once on ``test.p``.

Search trials stop early and are capped in time, so the best trial's weights are not the best
model the configuration can give; a fresh, longer run (early stopping on validation accuracy) is.
``test.p`` is read here, once per final model, and nowhere in the search.
"""
from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import optuna

from spaces.hp import ValuesHyperParameters

from .config import SearchConfig
from .data import Dataset, Split
from .data.overview import add_test_counts
from .data.sanity import count_shared_images
from .engine.interrupt import deferred_interrupts
from .engine.session import fresh_session
from .engine.study import load_space
from .engine.trainer import count_params, train_model
from .errors import UserError
from .progress import Progress, format_duration, key_params
from .schema import RunFile, StudyKey, atomic_path, best_trial, write_json

MAX_MISCLASSIFIED = 64


def retrain_best(study: optuna.Study, dataset: Dataset, cfg: SearchConfig,
                 progress: Progress | None = None) -> dict:
    """Retrain, save ``best_model.keras``, score on test once, write the JSON reports; return the
    best configuration."""
    progress = progress or Progress(0)
    trial = best_trial(study)
    if trial is None:
        raise UserError(f"study {study.study_name!r} has no completed trial yet: nothing to retrain")
    space = load_space(cfg.space)
    epochs = cfg.final_epoch_limit
    progress.say(f"retraining trial {trial.number} (val_acc {trial.values[0]:.4f}) from scratch for up "
                 f"to {epochs} epochs: {key_params(trial.params, 10)}")
    fresh_session()
    keras.utils.set_random_seed(cfg.seed)
    hp = ValuesHyperParameters(dict(trial.params))
    model = space.build(hp, dataset.input_shape, dataset.n_classes)
    with deferred_interrupts():
        result = train_model(model, dataset, hp.values, epochs=epochs, patience=max(2 * cfg.patience, 4),
                             steps_per_execution=cfg.steps_per_execution)
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    _save_model(model, run_dir / RunFile.BEST_MODEL)
    progress.say(f"final model: val_acc {result.best_val_accuracy:.4f} after {result.epochs_run} epochs "
                 f"({format_duration(result.seconds)}); saved {run_dir / RunFile.BEST_MODEL}")
    test = dataset.load_test()
    report = None
    if test is not None:
        report = evaluate_on_test(model, test, dataset, run_dir)
        add_test_counts(run_dir / RunFile.DATA_OVERVIEW, test, dataset.n_classes)
        progress.say(f"test accuracy {report['test_accuracy']:.4f} on {report['n_test']} images "
                     f"(macro F1 {report['macro_f1']:.4f}); report in {run_dir / RunFile.TEST_REPORT}")
        if report["duplicates_with_train"]:
            progress.say(f"WARNING: {report['duplicates_with_train']} test images are exact copies of "
                         "training images: the test score is optimistic")
    else:
        progress.say("no test file in the data folder: the final model was not scored on test data")
    config = {
        "study": study.study_name, "space": cfg.space,
        "family": space.family_of(hp.values), "hyperparameters": hp.values,
        "trial_number": trial.number, "search_val_accuracy": trial.values[0],
        "val_accuracy": result.best_val_accuracy, "test_accuracy": report["test_accuracy"] if report else None,
        "params": count_params(model), "epochs": result.epochs_run, "best_epoch": result.best_epoch,
        "data_dir": str(dataset.data_dir), "data_hash": dataset.content_hash,
        "command": study.user_attrs.get(StudyKey.COMMAND, ""),
        "retrain_command": f"python run_search.py retrain --study {study.study_name} --data-dir "
                           f"{dataset.data_dir} --out {cfg.out}",
        "backend": keras.backend.backend(),
    }
    write_json(run_dir / RunFile.BEST_CONFIG, config)
    return config


def _save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


def evaluate_on_test(model: keras.Model, test: Split, dataset: Dataset, run_dir: Path) -> dict:
    """Accuracy, loss, per-class metrics and the confusion matrix; a few misclassified images."""
    start = time.monotonic()
    probs = np.asarray(model.predict(test.features, batch_size=1024, verbose=0), dtype=np.float64)
    report = classification_report(test.labels, probs, dataset.class_names)
    report["duplicates_with_train"] = count_shared_images(dataset.train.features, test.features)
    report["seconds"] = round(time.monotonic() - start, 3)
    write_json(run_dir / RunFile.TEST_REPORT, report)
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != test.labels)
    pick = np.sort(np.random.default_rng(0).permutation(wrong)[:MAX_MISCLASSIFIED])
    np.savez_compressed(run_dir / RunFile.MISCLASSIFIED, images=test.features[pick],
                        true=test.labels[pick].astype(np.int32), pred=pred[pick].astype(np.int32))
    return report


def classification_report(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """The numbers of ``test_report.json`` from true labels and predicted probabilities."""
    n = len(class_names)
    pred = probs.argmax(axis=1)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    hits = np.diag(confusion)
    recall = np.divide(hits, support, out=np.zeros(n), where=support > 0)
    precision = np.divide(hits, predicted, out=np.zeros(n), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=precision + recall > 0)
    present = support > 0
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    per_class = [{"class_id": i, "name": class_names[i], "support": int(support[i]),
                  "accuracy": float(recall[i]), "precision": float(precision[i]),
                  "recall": float(recall[i]), "f1": float(f1[i])} for i in range(n)]
    return {"test_accuracy": float((pred == labels).mean()), "test_loss": float(-np.log(picked).mean()),
            "n_test": int(len(labels)), "class_names": list(class_names), "per_class": per_class,
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "confusion_matrix": confusion.tolist()}
