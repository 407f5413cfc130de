"""Every call this project makes into Optuna's private parts, in one place.

Optuna has no public way to run a trial outside ``study.optimize`` with its heartbeat, to create a
trial that runs at once ahead of the queue, to label a trial from inside a sampler, to fail a dead
worker's trial, or to give an opened storage its heartbeat settings; ``study.optimize`` and Optuna's
own samplers use these same internals. Keeping them here means an Optuna upgrade is checked in one
module and its test (``tests/search/test_optuna_adapter.py``), and ``pyproject.toml`` bounds Optuna to the
versions that test ran on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import FrozenTrial, TrialState

FIXED_PARAMS = "fixed_params"  # the system attribute enqueue_trial marks a configuration it was given with
RETRY_HISTORY = "retry_history"  # the system attributes Optuna's RetryFailedTrialCallback keeps
FAILED_TRIAL = "failed_trial"


def set_heartbeat(storage: RDBStorage, interval: int, grace_period: int) -> None:
    """Heartbeat settings for a storage already open: ``RDBStorage`` takes them when it is made, and a
    command opens its study's storage to read the study's settings before it knows them."""
    storage.heartbeat_interval = interval
    storage.grace_period = grace_period


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Optuna's heartbeat for ``trial`` while the block runs (a no-op on storages without one), as
    ``study.optimize`` gives its trials: a worker that dies is then found by ``fail_stale_trials``."""
    with get_heartbeat_thread(trial._trial_id, study._storage):
        yield


def create_running_trial(
    study: optuna.Study, params: dict[str, Any], distributions: dict[str, BaseDistribution], user_attrs: dict[str, Any]
) -> optuna.Trial:
    """A new RUNNING trial with ``params``, created directly in storage so that it runs now rather than
    behind the trials already queued (``study.ask`` would pop those first). Its parameters are marked
    fixed, as an enqueued trial's are, so no sampler plans around it."""
    template = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        params=params,
        distributions=distributions,
        user_attrs=user_attrs,
        system_attrs={FIXED_PARAMS: params},
    )
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
    return optuna.Trial(study, trial_id)


def fixed_params(trial: FrozenTrial) -> dict[str, Any] | None:
    """The configuration a trial was enqueued with (named points, requeued and retried ones), or None
    for one the sampler chose."""
    return trial.system_attrs.get(FIXED_PARAMS)


def all_trials(study: optuna.Study, states: Sequence[TrialState]) -> list[FrozenTrial]:
    """The whole study's trials, also from inside a sampler: with Hyperband pruning a sampler is handed
    a study that shows only the trial's bracket."""
    return study._storage.get_all_trials(study._study_id, deepcopy=False, states=tuple(states))


def study_user_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's user attributes, also from inside a sampler (a bracket's view has none)."""
    return study._storage.get_study_user_attrs(study._study_id)


def label_trial(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Set a user attribute on a running trial known only as a ``FrozenTrial`` (inside a sampler)."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)


def fail_trial(study: optuna.Study, trial: FrozenTrial, key: str, reason: str) -> FrozenTrial | None:
    """Mark another process's RUNNING trial failed with ``reason`` under user attribute ``key``; returns
    the failed trial, or None when another worker finished or failed it first."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, key, reason)
        if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return storage.get_trial(trial._trial_id)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    return None
