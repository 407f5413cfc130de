"""The final stage: the search's kept models and new members, combined on validation, scored once on test.

The search keeps its best trained models (``engine/kept_models.py``); the final stage adds new members,
the top distinct configurations retrained with seeds no trial used, as many as the reserved budget pays
for, and spends the rest of it training the pool's best model further from its weights (``further.py``)
up to its deadline, so the job ends on its budget. The final model is whichever of the
single best member and the selected ensemble (``selection.py``: greedy forward selection on validation
log-loss), each with or without test-time augmentation, then temperature-calibrated, scores best on
validation (``choose.py``; never worse than the single best member, so never worse than the best kept
trial model). ``test.p`` is read here, once per final model, and nowhere in the search.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import optuna
from optuna.trial import FrozenTrial

from spaces.hp import ValuesHyperParameters

from ..config import SearchConfig
from ..data import Dataset, Split
from ..data.overview import add_test_counts
from ..engine.engines import train_model
from ..engine.events import SearchEvents
from ..engine.interrupt import deferred_interrupts
from ..engine.kept_models import class_accuracy
from ..engine.session import fresh_session
from ..engine.study import load_space
from ..engine.trainer import count_params
from ..errors import UserError
from ..formatting import format_duration, key_params
from ..schema import RunFile, StudyKey, atomic_path, distinct_top, write_json
from .budget import PLANNED_PASSES, member_seconds, overhead_seconds, plan, retrain_seconds
from .choose import SINGLE, Option, choose
from .combine import assemble
from .final_set import new_final_set
from .further import train_further
from .pool import Member, build_options, predict, retrain_seed, search_members
from .reevaluate import declare_best
from .report import evaluate_on_test

if TYPE_CHECKING:
    from spaces.space import Space

EXPORT_MARGIN_SECONDS = 20.0  # exports start only with at least this much of the budget left


@dataclass
class FinalPool:
    """The final stage's models: kept from the search, trained again, and trained further."""

    kept: list[Member]
    retrained: list[Member]
    further: list[Member]
    reevaluation: dict | None = None

    @property
    def members(self) -> list[Member]:
        return [*self.kept, *self.retrained, *self.further]

    def counts(self) -> dict[str, int]:
        return {"kept": len(self.kept), "retrained": len(self.retrained), "further": len(self.further)}


@dataclass
class FinalChoice:
    """What validation chose: every option, the chosen one, its members and the model built from them."""

    options: list[Option]
    chosen: Option
    parts: list[Member]
    single: Member  # the single best member (what best_config.json describes)
    model: keras.Model


def retrain_best(
    study: optuna.Study,
    dataset: Dataset,
    cfg: SearchConfig,
    events: SearchEvents | None = None,
    *,
    deadline: float | None = None,
    space: Space | None = None,
) -> dict:
    """Build the final model within ``deadline`` (``time.monotonic()``; None: no limit), score it once on
    test and return the best config. Its files (the model, its members, reports and exports) are written
    as one set that replaces the previous one whole (``final_set.py``): an error or Ctrl-C before the end
    leaves the previous final model and its reports as they were. ``space``: the one the search loaded
    (``Run.space``), else loaded here."""
    events = events or SearchEvents()
    trials = study.get_trials(deepcopy=False)
    best = distinct_top(trials, 1, tie_break=cfg.tie_break)
    if not best:
        raise UserError(f"study {study.study_name!r} has no completed trial yet: nothing to retrain")
    space = space if space is not None else load_space(cfg.space)
    fresh_session()
    pool = _fill_pool(study, trials, best[0], space, dataset, cfg, deadline, events)
    choice = _choose(pool, best[0], space, dataset, cfg, deadline, events)
    config, test, interrupted = _write_final_set(study, cfg, dataset, space, pool, choice, deadline, events)
    events.say(
        "weakest classes on validation: "
        + weakest_classes(config["final_model"]["val_class_accuracy"], dataset.class_names)
    )
    events.say(
        f"final model ({choice.chosen.name}, {count_params(choice.model):,} weights) saved to "
        f"{cfg.run_dir / RunFile.BEST_MODEL}"
    )
    if test is not None:
        add_test_counts(cfg.run_dir / RunFile.DATA_OVERVIEW, test, dataset.n_classes)
    if interrupted:
        raise KeyboardInterrupt
    return config


def _training_ends(deadline: float | None, best: FrozenTrial, passes: float = PLANNED_PASSES) -> float | None:
    """When training must stop so that saving, scoring and exports still fit before ``deadline``."""
    return None if deadline is None else deadline - overhead_seconds(best, passes)


def _fill_pool(
    study: optuna.Study,
    trials: list[FrozenTrial],
    best: FrozenTrial,
    space: Space,
    dataset: Dataset,
    cfg: SearchConfig,
    deadline: float | None,
    events: SearchEvents,
) -> FinalPool:
    """The kept models, new members as the time pays for them, then the time no new member fits in
    given to the best one's further training (``further.py``)."""
    kept = search_members(study, cfg, dataset, events.say)
    retrained, reevaluation = _retrain_candidates(
        trials, kept, space, dataset, cfg, _training_ends(deadline, best), events
    )
    pool = FinalPool(kept, retrained, [], reevaluation)
    if kept and cfg.final_data == "train":
        expected = choose(build_options(pool.members, dataset.valid, lambda line: None), dataset.valid.labels)
        ends = _training_ends(deadline, best, expected.cost())
        pool.further = train_further(pool.members, space, dataset, cfg, ends, events)
    return pool


def _choose(
    pool: FinalPool,
    best: FrozenTrial,
    space: Space,
    dataset: Dataset,
    cfg: SearchConfig,
    deadline: float | None,
    events: SearchEvents,
) -> FinalChoice:
    """The option validation prefers among those whose files still fit, built as one Keras model
    (refit on train + valid first when ``--final-data`` says so)."""
    members, labels = pool.members, dataset.valid.labels
    options = build_options(members, dataset.valid, events.say)
    chosen = choose(affordable(options, best, deadline), labels)
    events.say(
        "final stage on validation: "
        + "; ".join(f"{o.name} {o.describe(labels)['val_accuracy']:.4f} (nll {o.nll(labels):.4f})" for o in options)
        + f" -> {chosen.name}"
    )
    parts = [members[i] for i in chosen.parts]
    if cfg.final_data == "train+valid":
        parts = _refit_on_train_and_valid(parts, space, dataset, cfg, _training_ends(deadline, best), events)
    model = assemble([m.model for m in parts], tta=chosen.tta, temperature=chosen.temperature, weights=chosen.weights)
    single = members[next(o for o in options if o.name == SINGLE).parts[0]]
    return FinalChoice(options, chosen, parts, single, model)


def _write_final_set(
    study: optuna.Study,
    cfg: SearchConfig,
    dataset: Dataset,
    space: Space,
    pool: FinalPool,
    choice: FinalChoice,
    deadline: float | None,
    events: SearchEvents,
) -> tuple[dict, Split | None, bool]:
    """The final model's files as one set, swapped in whole once all are written: the model and its
    members, the test report, ``best_config.json`` and the exports. Returns the config, the test split
    and whether the exports were interrupted."""
    labels, chosen, parts = dataset.valid.labels, choice.chosen, choice.parts
    with new_final_set(cfg.run_dir) as folder:
        _save_model(choice.model, folder / RunFile.BEST_MODEL)
        for m in parts:  # each member on its own too: a user may prefer a single model
            _save_model(m.model, folder / RunFile.FINAL_MEMBERS / f"{m.file_stem}.keras")
        test = dataset.load_test()
        per_class = class_accuracy(chosen.probs, labels, dataset.n_classes)
        described = {
            "final_model": {**chosen.describe(labels), "val_class_accuracy": per_class},
            "final_options": [o.describe(labels) for o in choice.options],
            "members": [m.describe(labels, w) for m, w in zip(parts, chosen.weights or [None] * len(parts))],
        }
        report = _score_on_test(choice.model, test, dataset, folder, cfg.run_dir, events, extra=described)
        config = {
            **_best_config(study, cfg, dataset, space, choice.single, choice.model, report),
            **described,
            "val_accuracy": described["final_model"]["val_accuracy"],
            "reevaluation": pool.reevaluation,
            "pool": pool.counts(),
        }
        write_json(folder / RunFile.BEST_CONFIG, config)
        interrupted = False
        if cfg.export and deadline is not None and time.monotonic() > deadline - EXPORT_MARGIN_SECONDS:
            events.say(
                f"no time left in the budget for exports; write them later with: python run_search.py "
                f"export-model --study {cfg.study_name} --out {cfg.out} --format {cfg.export[0]}"
            )
        elif cfg.export:
            interrupted = _export(cfg, test, cfg.run_dir, folder, events)
    return config, test, interrupted


def affordable(options: list[Option], best: FrozenTrial, deadline: float | None) -> list[Option]:
    """The options whose saving, scoring and exports still fit before ``deadline`` (the single model always)."""
    if deadline is None:
        return options
    left = deadline - time.monotonic()
    return [o for o in options if o.name == SINGLE or overhead_seconds(best, o.cost()) <= left]


def weakest_classes(per_class: list[float | None], names: list[str], count: int = 5) -> str:
    """The ``count`` classes with the lowest validation accuracy, as ``name 0.9123`` items."""
    ranked = sorted((acc, i) for i, acc in enumerate(per_class) if acc is not None)[:count]
    return ", ".join(f"{names[i] if i < len(names) else i} {acc:.4f}" for acc, i in ranked) or "none"


def _best_config(
    study: optuna.Study,
    cfg: SearchConfig,
    dataset: Dataset,
    space,
    single: Member,
    final: keras.Model,
    report: dict | None,
) -> dict:
    """What ``best_config.json`` says of the single best member, the data and how to run it again."""
    return {
        "study": study.study_name,
        "space": cfg.space,
        "family": space.family_of(dict(single.trial.params)),
        "hyperparameters": dict(single.trial.params),
        "trial_number": single.trial.number,
        "search_val_accuracy": single.trial.values[0],
        "test_accuracy": report["test_accuracy"] if report else None,
        "params": count_params(final),
        "epochs": single.result.epochs_run,
        "best_epoch": single.result.best_epoch,
        "final_data": cfg.final_data,
        "data_dir": str(dataset.data_dir),
        "data_hash": dataset.content_hash,
        "command": study.user_attrs.get(StudyKey.COMMAND, ""),
        "retrain_command": f"python run_search.py retrain --study {study.study_name} --data-dir "
        f"{dataset.data_dir} --out {cfg.out}",
        "backend": keras.backend.backend(),
    }


def _retrain_candidates(
    trials: list[FrozenTrial],
    kept: list[Member],
    space,
    dataset: Dataset,
    cfg: SearchConfig,
    training_ends: float | None,
    events: SearchEvents,
) -> tuple[list[Member], dict | None]:
    """New members: the top distinct configurations trained again with seeds of their own, as many as
    the time pays for. With kept models from the search none is required: when the first does not fit,
    the final model is made of the kept ones alone (a retrain cut short is worse than the trial it repeats)."""
    candidates = plan(trials, cfg, budget=None if training_ends is None else training_ends - time.monotonic())
    members: list[Member] = []
    for i, trial in enumerate(candidates):
        # beside kept models a new member is expected to train as long as its trial did; alone, the full retrain
        cost = member_seconds(trial) if kept else retrain_seconds(trial, cfg)
        if (members or kept) and training_ends is not None and time.monotonic() + cost > training_ends:
            events.say(
                f"final stage: no time left for candidate {i + 1}; {len(kept)} kept and {len(members)} retrained models"
            )
            break
        events.say(
            f"final candidate {i + 1}/{len(candidates)}: retraining trial {trial.number} "
            f"(val_acc {trial.values[0]:.4f}) for up to {cfg.final_epoch_limit} epochs: "
            f"{key_params(trial.params, 10)}"
        )
        members.append(
            _retrain(trial, space, dataset, cfg, training_ends, events, seed=retrain_seed(cfg.seed, trial.number, 0))
        )
    if not members:
        return members, None
    members, reevaluation = declare_best(members, len(dataset.valid.labels))
    if reevaluation is not None:
        means = ", ".join(f"#{e['trial_number']} {e['mean_val_accuracy']:.4f}" for e in reevaluation["candidates"])
        events.say(
            f"re-evaluated: {reevaluation['reason']}; mean of search and retrain: {means} -> "
            f"trial {reevaluation['declared_best']} first among the retrained"
        )
    return members, reevaluation


def _retrain(
    trial: FrozenTrial,
    space,
    dataset: Dataset,
    cfg: SearchConfig,
    deadline: float | None,
    events: SearchEvents,
    *,
    seed: int,
    epochs: int | None = None,
    train: Split | None = None,
) -> Member:
    """Train ``trial``'s configuration from scratch (early stopping on validation unless a fixed
    ``epochs`` count is given, as for the train+valid refit)."""
    keras.utils.set_random_seed(seed)
    hp = ValuesHyperParameters(dict(trial.params))
    model = space.build(hp, dataset.input_shape, dataset.n_classes)
    limit = epochs or cfg.final_epoch_limit
    data = dataset if train is None else dataclasses.replace(dataset, train=train)
    with deferred_interrupts():
        result = train_model(
            model,
            data,
            hp.values,
            epochs=limit,
            patience=limit if epochs else max(2 * cfg.patience, 4),
            deadline=deadline,
            hooks=events.run_hooks(f"final #{trial.number}", limit),
            steps_per_execution=cfg.steps_per_execution,
            engine=cfg.engine,
        )
    events.say(
        f"  trial {trial.number} retrained: val_acc {result.best_val_accuracy:.4f} after "
        f"{result.epochs_run} epochs ({format_duration(result.seconds)}, {result.stop_reason})"
    )
    return Member(trial=trial, model=model, result=result, valid_probs=predict(model, dataset.valid.features))


def _refit_on_train_and_valid(
    parts: list[Member], space, dataset: Dataset, cfg: SearchConfig, deadline: float | None, events: SearchEvents
) -> list[Member]:
    """The chosen members again, on train + valid, for the epochs their validation run chose."""
    both = Split(
        np.concatenate([dataset.train.features, dataset.valid.features]),
        np.concatenate([dataset.train.labels, dataset.valid.labels]),
    )
    refit = []
    for i, m in enumerate(parts):
        epochs = max(m.result.best_epoch, 1)
        events.say(f"refitting trial {m.trial.number} on train + valid for {epochs} epochs")
        refit.append(
            _retrain(
                m.trial,
                space,
                dataset,
                cfg,
                deadline,
                events,
                seed=retrain_seed(cfg.seed, m.trial.number, 100 + i),
                epochs=epochs,
                train=both,
            )
        )
    return refit


def _export(cfg: SearchConfig, test: Split | None, run_dir: Path, folder: Path, events: SearchEvents) -> bool:
    """The ``--export`` artifacts, written into the set being built and scored on the test images already
    read (not read again). True when Ctrl-C stopped them: the final model and its reports are kept
    without the artifacts not yet written, as when the budget leaves no time for them."""
    from .deploy import export_and_score
    from .export import ExportError

    retry = f"python run_search.py export-model --study {cfg.study_name} --out {cfg.out} --format {cfg.export[0]}"
    try:
        export_and_score(run_dir, cfg.export, test, events.say, command=cfg.command, into=folder)
    except (ExportError, RuntimeError, ValueError, OSError) as exc:  # the model is saved and scored already
        events.say(f"warning: export failed ({exc}); retry with: {retry}")
    except KeyboardInterrupt:
        events.say(f"exports interrupted: the final model is kept without them; write them with: {retry}")
        return True
    return False


def _score_on_test(
    model: keras.Model,
    test: Split | None,
    dataset: Dataset,
    folder: Path,
    run_dir: Path,
    events: SearchEvents,
    extra: dict,
) -> dict | None:
    """``test_report.json`` and ``misclassified.npz`` into ``folder``, the set being built."""
    if test is None:
        events.say("no test file in the data folder: the final model was not scored on test data")
        return None
    report = evaluate_on_test(model, test, dataset, folder, extra=extra)
    lo, hi = report["accuracy_ci95"]
    speed = report["speed"]
    events.say(
        f"test accuracy {report['test_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}) on {report['n_test']} "
        f"images, macro F1 {report['macro_f1']:.4f}, ECE {report['ece']:.4f}; "
        f"{speed['latency_ms_batch1']:.1f} ms per image at batch 1, "
        f"{speed['images_per_s_batch256']:.0f} images/s at batch 256; "
        f"report in {run_dir / RunFile.TEST_REPORT}"
    )
    if report["duplicates_with_train"]:
        events.say(
            f"WARNING: {report['duplicates_with_train']} test images are exact copies of "
            "training images: the test score is optimistic"
        )
    return report


def _save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)
