"""More training of the pool's best model, from its weights: what the final stage does with time that
cannot pay for another whole member.

A kept model stopped where the search's cap, early stopping or its epoch count left it. Training it on
with a restarted cosine from half its peak learning rate (the warm restart continuations use,
``engine/continuation.py``) is the cheapest further gain the final stage can buy, and the run anneals
to the final stage's deadline, so the window the search reserved is used to its end. The result joins
the pool as a member of its own beside the model it started from: ensemble selection on validation
decides whether it helps, so it can never make the final model worse on validation.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from spaces.hp import ValuesHyperParameters

from ..config import SearchConfig
from ..data import Dataset
from ..engine.continuation import restart_values
from ..engine.engines import train_model
from ..engine.events import SearchEvents
from ..engine.interrupt import deferred_interrupts
from ..formatting import format_duration
from .budget import SAFETY, seconds_per_epoch
from .pool import FURTHER, Member, best_single, predict, retrain_seed

FURTHER_SEED_INDEX = 200  # further runs draw seeds apart from the new members' (retrain_seed's index)
MAX_ROUNDS = 4  # further runs in one final stage (each on the best member at the time)


def epoch_seconds(member: Member) -> float:
    """Seconds one more epoch of ``member`` costs, as its trial measured it (with the final stage's margin)."""
    per_epoch = seconds_per_epoch(member.trial)
    if not per_epoch and member.result.epochs_run:
        per_epoch = member.result.seconds / member.result.epochs_run
    return per_epoch * SAFETY


def further_epochs(seconds_left: float | None, per_epoch: float, most: int) -> int:
    """Epochs of further training the time left pays for (``most`` without a deadline)."""
    if seconds_left is None:
        return most
    if per_epoch <= 0:
        return most if seconds_left > 0 else 0
    return max(0, min(most, int(seconds_left // per_epoch)))


def train_further(
    pool: list[Member], space, dataset: Dataset, cfg: SearchConfig, deadline: float | None, events: SearchEvents
) -> list[Member]:
    """Further-trained members, each from the best member of the pool at its start, until ``deadline``
    (``time.monotonic()``; None: one run of ``cfg.epochs``) or ``MAX_ROUNDS`` runs."""
    labels = dataset.valid.labels
    made: list[Member] = []
    for round_ in range(MAX_ROUNDS):
        members = pool + made
        start = members[best_single(members, labels)]
        left = None if deadline is None else deadline - time.monotonic()
        epochs = further_epochs(left, epoch_seconds(start), cfg.epochs)
        if epochs < 1:
            break
        made.append(
            _train_on(
                start,
                space,
                dataset,
                cfg,
                deadline,
                events,
                epochs=epochs,
                seed=retrain_seed(cfg.seed, start.trial.number, FURTHER_SEED_INDEX + round_),
                round_=round_ + 1,
            )
        )
        if deadline is None:
            break
    return made


def _train_on(
    start: Member,
    space,
    dataset: Dataset,
    cfg: SearchConfig,
    deadline: float | None,
    events: SearchEvents,
    *,
    epochs: int,
    seed: int,
    round_: int,
) -> Member:
    """``start``'s model trained ``epochs`` more epochs from its weights on a restarted cosine."""
    keras.utils.set_random_seed(seed)
    hp = ValuesHyperParameters(dict(start.trial.params))
    model = space.build(hp, dataset.input_shape, dataset.n_classes)
    model.set_weights(start.model.get_weights())
    events.say(f"final stage: training {start.label} further for up to {epochs} epochs from its weights")
    with deferred_interrupts():
        result = train_model(
            model,
            dataset,
            restart_values(dict(hp.values)),
            epochs=epochs,
            patience=cfg.patience,
            deadline=deadline,
            steps_per_execution=cfg.steps_per_execution,
            engine=cfg.engine,
            hooks=events.run_hooks(f"further #{start.trial.number}", epochs),
        )
    before = start.result.epochs_run
    result = dataclasses.replace(result, epochs_run=before + result.epochs_run, best_epoch=before + result.best_epoch)
    member = Member(
        trial=start.trial,
        model=model,
        result=result,
        valid_probs=predict(model, dataset.valid.features),
        source=FURTHER,
        round=round_,
    )
    events.say(
        f"  {member.label}: val_acc {_accuracy(member.valid_probs, dataset.valid.labels):.4f} "
        f"(from {_accuracy(start.valid_probs, dataset.valid.labels):.4f}) after {result.epochs_run - before} "
        f"more epochs ({format_duration(result.seconds)}, {result.stop_reason})"
    )
    return member


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == labels)) if len(labels) else 0.0
