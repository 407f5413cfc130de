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
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from ..config import SearchConfig
from ..errors import UserError
from ..optuna_adapter import FAILED_TRIAL, RETRY_HISTORY, fail_trial, set_heartbeat
from ..sampling import make_pruner, make_sampler
from ..schema import StudyKey, TrialKey, count_finished, redact, sqlite_path, storage_url
from ..space_source import space_digest

if TYPE_CHECKING:
    from spaces.space import Space

STORAGE_ATTEMPTS = 4
# Two processes opening a new database at once race to create Optuna's tables; the loser's error
# names the clash (PostgreSQL: "duplicate key"; SQLite: "UNIQUE constraint failed" on the version
# row, or "table ... already exists") and it tries again.
TABLE_RACE = ("duplicate", "unique constraint", "already exists")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def make_storage(cfg: SearchConfig) -> RDBStorage:
    """The study's storage with the settings' heartbeat (a new SQLite study's folder is made)."""
    if cfg.storage_url.startswith("sqlite:///"):
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
    return open_storage(cfg.storage_url, cfg.heartbeat)


def open_storage(url: str, heartbeat: float) -> RDBStorage:
    """RDB storage with heartbeats; refuses URLs it cannot open with a one-line error."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_seconds(heartbeat),
                    grace_period=grace_seconds(heartbeat),
                    heartbeat_stale_trial_callback=retry_once,
                )
        except ModuleNotFoundError as exc:
            raise UserError(
                f"storage {redact(url)} needs the driver {exc.name!r}: pip install "
                f"{'psycopg[binary]' if exc.name and 'psycopg' in exc.name else exc.name}"
            ) from None
        except Exception as exc:  # SQLAlchemy raises many types for a bad URL or unreachable server
            if attempt + 1 < STORAGE_ATTEMPTS and any(m in str(exc).lower() for m in TABLE_RACE):
                time.sleep(1.0 + attempt)
                continue
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot open storage {redact(url)}: {first}") from None
    raise AssertionError("unreachable")


def heartbeat_seconds(heartbeat: float) -> int:
    return max(int(heartbeat), 1)


def grace_seconds(heartbeat: float) -> int:
    """How long a trial's heartbeat may be silent before another process calls its worker dead."""
    return max(int(heartbeat * 3), 2)


def use_heartbeat(storage: RDBStorage, heartbeat: float) -> None:
    """The heartbeat of the study's settings for a storage opened before they were known."""
    set_heartbeat(storage, heartbeat_seconds(heartbeat), grace_seconds(heartbeat))


def stored_progress(storage: optuna.storages.BaseStorage, name: str) -> tuple[int, int]:
    """(finished trials, the current campaign's target) of an existing study, read from its storage."""
    study_id = storage.get_study_id_from_name(name)
    target = int(storage.get_study_user_attrs(study_id).get(StudyKey.TARGET) or 0)
    return count_finished(storage.get_all_trials(study_id, deepcopy=False)), target


def stored_attrs(storage: optuna.storages.BaseStorage, name: str) -> dict | None:
    """The user attributes of study ``name``, or None when the storage holds no such study: what a
    command reads of an existing study before it decides its settings (no ``Study`` is made)."""
    try:
        return storage.get_study_user_attrs(storage.get_study_id_from_name(name))
    except KeyError:
        return None


def open_study(
    cfg: SearchConfig,
    storage: optuna.storages.BaseStorage,
    data_hash: str,
    space: Space,
    pruner: optuna.pruners.BasePruner | None = None,
    *,
    worker_index: int = 0,
) -> optuna.Study:
    """Create the study or resume it; refuse one built for another space or other data.

    A new study stores ``cfg`` whole (``StudyKey.CONFIG``); every later command reads it back.
    ``worker_index`` varies the sampler's seed between processes sharing the study.
    """
    directions = ["maximize"] + (["minimize"] if cfg.multi_objective else [])
    if cfg.multi_objective:
        pruner = optuna.pruners.NopPruner()  # Optuna cannot prune multi-objective studies
    elif pruner is None:
        pruner = make_pruner(cfg.pruner, cfg.epochs)
    sampler = make_sampler(
        cfg.sampler, cfg.seed + 7919 * worker_index, multi_objective=cfg.multi_objective, local_share=cfg.local_share
    )
    study = optuna.create_study(
        storage=storage,
        study_name=cfg.study_name,
        directions=directions,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    attrs = study.user_attrs
    if not attrs.get(StudyKey.SPACE):
        _initialise(study, cfg, data_hash, space)
        return study
    if attrs[StudyKey.SPACE] != cfg.space:
        raise UserError(
            f"study {cfg.study_name!r} searches space {attrs[StudyKey.SPACE]!r}, not {cfg.space!r}; "
            "pick another --study name"
        )
    if [d.name.lower() for d in study.directions] != directions:
        raise UserError(
            f"study {cfg.study_name!r} has objectives {attrs.get(StudyKey.OBJECTIVES)}, not "
            f"{list(cfg.objectives)}; pick another --study name"
        )
    check_same_data(attrs, cfg, data_hash)
    return study


def check_same_data(attrs: dict, cfg: SearchConfig, data_hash: str) -> None:
    """Refuse data other than the study's own (by content hash): trials, or a final model, from
    another data set would be mixed into its results."""
    if attrs.get(StudyKey.DATA_HASH) and attrs[StudyKey.DATA_HASH] != data_hash:
        raise UserError(
            f"data in {cfg.data_dir} (hash {data_hash}) differs from the data study "
            f"{cfg.study_name!r} was started with (hash {attrs[StudyKey.DATA_HASH]}, from "
            f"{attrs.get(StudyKey.DATA_DIR)}); results would mix data sets"
        )


def load_space(name: str) -> Space:
    """The space module, with a missing or malformed user space reported as one line.

    ``spaces`` (and with it Keras and its backend, seconds to import) is imported here, not with
    this module: commands that only open a study answer a bad storage or study name at once."""
    import spaces

    try:
        return spaces.get_space(name)
    except spaces.SpaceError as exc:
        raise UserError(f"invalid choice for --space: {exc}") from None


def check_user_space(space: Space, input_shape: tuple[int, int, int], n_classes: int) -> None:
    """Build a user's space at its defaults once, so a model that does not fit the data is a
    one-line error before the first trial instead of a run of failed trials."""
    import spaces

    if space.NAME in spaces.SPACES and space is spaces.SPACES[space.NAME]:
        return
    from spaces.hp import ValuesHyperParameters

    from .session import fresh_session

    try:
        space.build(ValuesHyperParameters(), input_shape, n_classes)
    except spaces.SpaceError as exc:
        raise UserError(str(exc)) from None
    finally:
        fresh_session()


def _initialise(study: optuna.Study, cfg: SearchConfig, data_hash: str, space: object) -> None:
    for key, value in {
        StudyKey.CONFIG: cfg.to_json(),
        StudyKey.SPACE: cfg.space,
        StudyKey.DATA_DIR: str(cfg.data_dir),
        StudyKey.DATA_HASH: data_hash,
        StudyKey.OBJECTIVES: ["val_accuracy", *(("latency_s" if o == "latency" else o) for o in cfg.objectives[1:])],
        StudyKey.SEED: cfg.seed,
        StudyKey.EPOCHS: cfg.epochs,
        StudyKey.COMMAND: redact(cfg.command),
        StudyKey.TARGET: 0,
        StudyKey.CREATED: _dt.datetime.now().isoformat(timespec="seconds"),
        StudyKey.SPACE_SHA256: space_digest(cfg.space),
    }.items():
        study.set_user_attr(key, value)
    if not cfg.named_points:
        return
    for name, values in space.POINTS.items():  # type: ignore[attr-defined]
        study.enqueue_trial(values, user_attrs={TrialKey.POINT: name}, skip_if_exists=True)


def record_overrides(study: optuna.Study, cfg: SearchConfig, changes: dict, *, store: bool) -> None:
    """Log settings a later command line changed; ``store`` makes them the study's settings."""
    if not changes:
        return
    log = list(study.user_attrs.get(StudyKey.OVERRIDES, []))
    log.append(
        {
            "when": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": redact(cfg.command),
            "changes": {k: list(v) for k, v in changes.items()},
            "stored": store,
        }
    )
    study.set_user_attr(StudyKey.OVERRIDES, log)
    if store:
        study.set_user_attr(StudyKey.CONFIG, cfg.to_json())


def settle_target(study: optuna.Study, trials: int) -> int:
    """The study's target of finished trials for this run.

    A study's trials come in campaigns: a campaign starts when a command finds the study at (or
    past) its target, and aims at ``finished then + trials``. Workers joining an unfinished
    campaign share its target (``--trials`` is a total, not a number per worker); a rerun of the
    same command after the target was reached starts a new campaign, so it adds trials; a rerun
    with another ``--trials`` while a campaign is unfinished moves that campaign's target.
    """
    finished = count_finished(study.get_trials(deepcopy=False))
    target = stored_target(study)
    start = int(study.user_attrs.get(StudyKey.CAMPAIGN_START) or 0)
    if target <= finished:  # a new study, or one whose last campaign reached its target
        start = finished
        study.set_user_attr(StudyKey.CAMPAIGN_START, start)
    if start + trials != target:
        target = start + trials
        study.set_user_attr(StudyKey.TARGET, target)
    return target


def stored_target(study: optuna.Study) -> int:
    """The current campaign's target as stored; ``join`` works towards it and never moves it."""
    return int(study.user_attrs.get(StudyKey.TARGET) or 0)


def fail_dead_local_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker process on this host is gone (no need to wait for the
    heartbeat grace period), and let the retry callback re-enqueue their configuration."""
    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(t.user_attrs.get(TrialKey.WORKER, ""))
        if not owner.startswith(host + ":"):
            continue
        pid = int(owner.rsplit(":", 1)[1])
        if pid == os.getpid() or _pid_alive(pid):
            continue
        dead = fail_trial(study, t, TrialKey.FAIL_REASON, "its worker process died")
        if dead is not None:  # None: another worker got there first
            failed.append(t.number)
            retry_once(study, dead)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # trials of dead workers elsewhere, by heartbeat
    return failed


def retry_once(study: optuna.Study, trial: FrozenTrial) -> None:
    """Re-enqueue a dead worker's configuration once (a second death is not retried)."""
    history = [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number]
    if len(history) > 1:  # this trial was itself the retry
        return
    distributions: dict[str, BaseDistribution] = dict(trial.distributions)
    user_attrs = {TrialKey.RETRY_OF: trial.number}
    if TrialKey.POINT in trial.user_attrs:
        user_attrs[TrialKey.POINT] = trial.user_attrs[TrialKey.POINT]
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=dict(trial.params),
            distributions=distributions,
            user_attrs=user_attrs,
            system_attrs={RETRY_HISTORY: history, FAILED_TRIAL: history[0]},
        )
    )


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


def open_existing(name: str, storage: str | None, out: Path) -> optuna.Study:
    """An existing study for reading or joining; one-line errors, and no empty SQLite file made."""
    url = storage_url(storage, out, name)
    if storage is None and not sqlite_path(out, name).exists():
        raise UserError(f"no study {name!r}: {sqlite_path(out, name)} does not exist")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise UserError(f"no study {name!r} in {redact(url)}") from None
    except Exception as exc:  # SQLAlchemy errors for unreachable storages
        raise UserError(f"cannot open storage {redact(url)}: {redact(str(exc).splitlines()[0])}") from None
