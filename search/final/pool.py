"""The final stage's pool of models: the search's kept models and the final stage's own retrains, and
the options built from them (the single best, the selected ensemble, each with and without TTA).

The search keeps its best trained models (``engine/kept_models.py``), so the final stage starts from
models that already exist rather than from nothing: with no time left to train, the final model is
built from them alone, and it is never worse on validation than the best of them. What the final
stage trains itself are new members: top configurations with seeds no trial used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from ..config import SearchConfig
from ..data import Dataset, Split
from ..engine.kept_models import kept_models
from ..engine.trainer import EVAL_BATCH_SIZE, TrainResult
from ..schema import TrialKey
from .calibration import apply_temperature, expected_calibration_error, fit_temperature, negative_log_likelihood
from .choose import SINGLE, Option
from .combine import with_tta
from .selection import mix, select_ensemble

# where a member's weights come from: the search's kept model, a final-stage run from scratch with a new seed,
# or a final-stage run on from another member's weights (further.py)
SEARCH, RETRAIN, FURTHER = "search", "retrain", "further"
SUFFIX = {SEARCH: "", RETRAIN: "-retrained", FURTHER: "-further"}
# Retrain seeds live apart from trial seeds ((seed * 100_003 + trial number) % 2**31, objective.py):
# a retrain repeating its trial's seed repeated its training, epoch for epoch.
RETRAIN_SEED_STRIDE = 1_000_003


@dataclasses.dataclass
class Member:
    """One model of the pool: the trial whose configuration it has, its training, its validation
    probabilities, and whether it is the search's own model or a final-stage retrain."""

    trial: FrozenTrial
    model: keras.Model
    result: TrainResult
    valid_probs: np.ndarray
    source: str = RETRAIN
    round: int = 0  # the further run's number within the final stage (FURTHER only)
    # validation probabilities with test-time augmentation, computed once (build_options may run twice)
    tta_probs: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def shifted_probs(self, features: np.ndarray) -> np.ndarray:
        """The model's validation probabilities averaged over TTA's shifts (``features``: validation's)."""
        if self.tta_probs is None:
            self.tta_probs = predict(with_tta(self.model), features)
        return self.tta_probs

    @property
    def file_stem(self) -> str:
        """``trial-N`` for the search's model, ``trial-N-retrained`` for a final-stage retrain,
        ``trial-N-further-R`` for the R-th further run."""
        return f"trial-{self.trial.number}{SUFFIX[self.source]}" + (f"-{self.round}" if self.round else "")

    @property
    def label(self) -> str:
        return f"#{self.trial.number}" + {SEARCH: "", RETRAIN: " retrained", FURTHER: " trained further"}[self.source]

    def describe(self, labels: np.ndarray, weight: float | None = None) -> dict:
        correct = int((self.valid_probs.argmax(axis=1) == labels).sum())
        return {
            "trial_number": self.trial.number,
            "source": self.source,
            "file": f"{self.file_stem}.keras",
            "weight": weight,
            "hyperparameters": dict(self.trial.params),
            "epochs": self.result.epochs_run,
            "best_epoch": self.result.best_epoch,
            "val_accuracy": correct / max(len(labels), 1),
            "val_correct": correct,
            "val_nll": negative_log_likelihood(self.valid_probs, labels),
        }


def retrain_seed(seed: int, trial_number: int, index: int) -> int:
    """The seed of the ``index``-th final-stage run of ``trial_number``: never a trial's own."""
    return (seed * 100_003 + trial_number + RETRAIN_SEED_STRIDE * (index + 1)) % 2**31


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0), dtype=np.float64)


def search_members(
    study: optuna.Study, cfg: SearchConfig, dataset: Dataset, say: Callable[[str], None]
) -> list[Member]:
    """The kept models of the study's completed trials, loaded (best validation log-loss first)."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    members = []
    for kept in kept_models(cfg.run_dir):
        trial = trials.get(kept.trial_number)
        probs = kept.valid_probs() if trial is not None else None
        if probs is None or probs.shape != (len(dataset.valid), dataset.n_classes):
            continue  # a model of another study's or data set's trial, or one whose trial was not told
        members.append(Member(trial, kept.load(), _result_of(trial), probs, source=SEARCH))
    if members:
        best = members[0]
        say(
            f"final stage: {len(members)} kept models from the search (lowest validation log-loss: trial "
            f"{best.trial.number}, val_acc {best.describe(dataset.valid.labels)['val_accuracy']:.4f})"
        )
    return members


def _result_of(trial: FrozenTrial) -> TrainResult:
    """A kept model's training as its trial recorded it; a continuation's epochs count its parent's."""
    attrs = trial.user_attrs
    resumed = int(attrs.get(TrialKey.RESUMED_EPOCHS) or 0)
    val_curve = [float(v) for v in attrs.get(TrialKey.VAL_CURVE) or []]
    return TrainResult(
        val_curve=val_curve,
        train_curve=[float(v) for v in attrs.get(TrialKey.TRAIN_CURVE) or []],
        best_epoch=resumed + int(attrs.get(TrialKey.BEST_EPOCH) or 0),
        epochs_run=resumed + len(val_curve),
        seconds=float(attrs.get(TrialKey.SECONDS) or 0.0),
        stop_reason=str(attrs.get(TrialKey.STOP_REASON) or ""),
        val_loss_curve=[float(v) for v in attrs.get(TrialKey.VAL_LOSS_CURVE) or []],
    )


def best_single(members: list[Member], labels: np.ndarray) -> int:
    """The member with the most correct validation images, ties to the lower log-loss, then the
    earlier member."""

    def key(i: int) -> tuple[int, float, int]:
        probs = members[i].valid_probs
        return -int((probs.argmax(axis=1) == labels).sum()), negative_log_likelihood(probs, labels), i

    return min(range(len(members)), key=key)


def build_options(members: list[Member], valid: Split, say: Callable[[str], None]) -> list[Option]:
    """The single best member and the selected ensemble (``selection.py``), each with and without
    TTA, each temperature-scaled on validation (argmax unchanged; the loss and the calibration improve)."""
    labels = valid.labels
    probs = [m.valid_probs for m in members]
    single = best_single(members, labels)
    weights = select_ensemble(probs, labels)
    groups = [(SINGLE, (single,), (1.0,))]
    parts = tuple(i for i, w in enumerate(weights) if w > 0)
    if len(parts) > 1:
        groups.append((f"ensemble of {len(parts)}", parts, tuple(weights[i] for i in parts)))
        say("  selected ensemble: " + ", ".join(f"{members[i].label} x{weights[i]:.2f}" for i in parts))
    shifted = {i: members[i].shifted_probs(valid.features) for i in {single, *parts}}
    options: list[Option] = []
    for name, group, group_weights in groups:
        plain = mix([probs[i] for i in group], group_weights)
        tta = mix([shifted[i] for i in group], group_weights)
        for label, p, uses_tta in ((name, plain, False), (f"{name} + TTA", tta, True)):
            temperature = fit_temperature(p, labels)
            calibrated = apply_temperature(p, temperature)
            options.append(
                Option(
                    name=label,
                    probs=calibrated,
                    members=tuple(members[i].trial.number for i in group),
                    tta=uses_tta,
                    temperature=temperature,
                    parts=group,
                    weights=group_weights,
                )
            )
            say(
                f"  {label}: ECE {expected_calibration_error(p, labels):.4f} -> "
                f"{expected_calibration_error(calibrated, labels):.4f} at temperature {temperature:.2f}"
            )
    return options
