"""Opening the Optuna study: storage, sampler, pruner, named points, and the guards around them.

The study lives in persistent storage (SQLite under ``runs/<study>/`` by default, or any URL such
as PostgreSQL for many machines), so a rerun resumes it and several workers can share it. Trials
carry heartbeats: a trial whose process died is marked failed and its configuration retried once.
"""
from __future__ import annotations

import datetime as _dt
import os
import socket
import time
import warnings
from collections.abc import Iterable

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

import spaces

from .config import PRUNERS, SAMPLERS, SearchConfig
from .errors import UserError
from .local_search import LocalSearchSampler

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
STORAGE_ATTEMPTS = 4


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def make_sampler(name: str, seed: int, *, multi_objective: bool = False,
                 local_share: float = 0.0) -> optuna.samplers.BaseSampler:
    """The sampler for ``--sampler``, with ``local_share`` of its trials given to local search
    around the best trial (single objective only: a Pareto front has no single best)."""
    base = _base_sampler(name, seed, multi_objective=multi_objective)
    if local_share > 0 and not multi_objective:
        return LocalSearchSampler(base, share=local_share, seed=seed)
    return base


def _base_sampler(name: str, seed: int, *, multi_objective: bool) -> optuna.samplers.BaseSampler:
    """TPE is grouped and multivariate for the conditional spaces."""
    if name == "tpe":
        # n_startup_trials kept small: the named points already cover the cheap, known-good region,
        # and random start-up points are the most likely to be expensive.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                              constant_liar=True, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    try:
        if name == "cmaes":
            import cmaes  # noqa: F401
            if multi_objective:
                raise UserError("sampler cmaes cannot optimise several objectives; use tpe or random")
            return optuna.samplers.CmaEsSampler(seed=seed,
                                                independent_sampler=optuna.samplers.TPESampler(seed=seed))
        if name == "gp":
            import scipy  # noqa: F401
            import torch  # noqa: F401
            return optuna.samplers.GPSampler(seed=seed)
        if name == "qmc":
            import scipy  # noqa: F401
            return optuna.samplers.QMCSampler(seed=seed)
    except ImportError as exc:
        raise UserError(f"sampler {name} needs the package {exc.name!r}: pip install {exc.name}") from None
    raise UserError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """Pruners that act from the first trials: successive halving compares trials at each rung
    instead of waiting for several finished trials the way the median pruner does."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 1),
                                              reduction_factor=3)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


def make_storage(cfg: SearchConfig) -> optuna.storages.BaseStorage:
    """RDB storage with heartbeats; refuses URLs it cannot open with a one-line error."""
    url = cfg.storage_url
    if url.startswith("sqlite:///"):
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs,
                                  heartbeat_interval=max(int(cfg.heartbeat), 1),
                                  grace_period=max(int(cfg.heartbeat * 3), 2),
                                  heartbeat_stale_trial_callback=retry_once)
        except ModuleNotFoundError as exc:
            raise UserError(f"storage {redact(url)} needs the driver {exc.name!r}: pip install "
                            f"{'psycopg[binary]' if exc.name and 'psycopg' in exc.name else exc.name}") from None
        except Exception as exc:  # SQLAlchemy raises many types for a bad URL or unreachable server
            # Workers starting together on an empty database race to create Optuna's tables;
            # the loser sees a duplicate-key error and simply tries again.
            if attempt + 1 < STORAGE_ATTEMPTS and "duplicate" in str(exc).lower():
                time.sleep(1.0 + attempt)
                continue
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot open storage {redact(url)}: {first}") from None
    raise AssertionError("unreachable")


def redact(url: str) -> str:
    """Hide a password in a storage URL before printing it."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def open_study(cfg: SearchConfig, storage: optuna.storages.BaseStorage, data_hash: str,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the study or resume it; refuse one built for another space or other data."""
    space = spaces.get_space(cfg.space)
    directions = ["maximize"] + (["minimize"] if cfg.multi_objective else [])
    if cfg.multi_objective:
        pruner = optuna.pruners.NopPruner()  # Optuna cannot prune multi-objective studies
    elif pruner is None:
        pruner = make_pruner(cfg.pruner, cfg.epochs)
    sampler = make_sampler(cfg.sampler, cfg.seed + 7919 * cfg.worker_index,
                           multi_objective=cfg.multi_objective, local_share=cfg.local_share)
    study = optuna.create_study(storage=storage, study_name=cfg.study_name, directions=directions,
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    attrs = study.user_attrs
    if not attrs.get("space"):
        _initialise(study, cfg, data_hash, space)
        return study
    if attrs["space"] != cfg.space:
        raise UserError(f"study {cfg.study_name!r} searches space {attrs['space']!r}, not {cfg.space!r}; "
                        "pick another --study name")
    if [d.name.lower() for d in study.directions] != directions:
        raise UserError(f"study {cfg.study_name!r} has objectives {attrs.get('objectives')}, not "
                        f"{list(cfg.objectives)}; pick another --study name")
    if attrs.get("data_hash") and attrs["data_hash"] != data_hash:
        raise UserError(f"data in {cfg.data_dir} (hash {data_hash}) differs from the data study "
                        f"{cfg.study_name!r} was started with (hash {attrs['data_hash']}, from "
                        f"{attrs.get('data_dir')}); results would mix data sets")
    return study


def _initialise(study: optuna.Study, cfg: SearchConfig, data_hash: str, space: object) -> None:
    for key, value in {
        "space": cfg.space, "data_dir": str(cfg.data_dir), "data_hash": data_hash,
        "objectives": ["val_accuracy"] + (["params"] if cfg.multi_objective else []),
        "seed": cfg.seed, "epochs": cfg.epochs, "command": cfg.command, "target_trials": 0,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }.items():
        study.set_user_attr(key, value)
    if not cfg.named_points:
        return
    for name, values in space.POINTS.items():  # type: ignore[attr-defined]
        study.enqueue_trial(values, user_attrs={"point": name}, skip_if_exists=True)


def count_states(trials: Iterable[FrozenTrial]) -> dict[TrialState, int]:
    counts = {state: 0 for state in TrialState}
    for t in trials:
        counts[t.state] += 1
    return counts


def count_finished(study: optuna.Study) -> int:
    """Completed plus pruned trials: what the study's target counts."""
    counts = count_states(study.get_trials(deepcopy=False))
    return sum(counts[s] for s in FINISHED)


def settle_target(study: optuna.Study, trials: int) -> int:
    """The study's target of finished trials for this run.

    A study's trials come in campaigns: a campaign starts when a command finds the study at (or
    past) its target, and aims at ``finished then + trials``. Workers joining an unfinished
    campaign share its target (``--trials`` is a total, not a number per worker); a rerun of the
    same command after the target was reached starts a new campaign, so it adds trials; a rerun
    with another ``--trials`` while a campaign is unfinished moves that campaign's target.
    """
    finished = count_finished(study)
    target = int(study.user_attrs.get("target_trials") or 0)
    start = int(study.user_attrs.get("campaign_start") or 0)
    if target <= finished:  # a new study, or one whose last campaign reached its target
        start = finished
        study.set_user_attr("campaign_start", start)
    if start + trials != target:
        target = start + trials
        study.set_user_attr("target_trials", target)
    return target


def fail_dead_local_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker process on this host is gone (no need to wait for the
    heartbeat grace period), and let the retry callback re-enqueue their configuration."""
    host = socket.gethostname()
    failed = []
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(t.user_attrs.get("worker", ""))
        if not owner.startswith(host + ":"):
            continue
        pid = int(owner.rsplit(":", 1)[1])
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "fail_reason", "its worker process died")
            if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                failed.append(t.number)
                retry_once(study, storage.get_trial(t._trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker got there first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # trials of dead workers elsewhere, by heartbeat
    return failed


def retry_once(study: optuna.Study, trial: FrozenTrial) -> None:
    """Re-enqueue a dead worker's configuration once (a second death is not retried)."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > 1:  # this trial was itself the retry
        return
    distributions: dict[str, BaseDistribution] = dict(trial.distributions)
    user_attrs = {"retry_of": trial.number}
    if "point" in trial.user_attrs:
        user_attrs["point"] = trial.user_attrs["point"]
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=dict(trial.params), distributions=distributions,
        user_attrs=user_attrs, system_attrs={"retry_history": history, "failed_trial": history[0]}))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
