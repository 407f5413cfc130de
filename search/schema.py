"""What a study and its run folder hold: the one contract between the search and ``results/``.

The search writes trials, study attributes and run files; ``results/`` reads them, possibly while a
search is still writing. Both sides name every key and file through this module, and both ask it
the questions whose answer must never differ between them: which trial is the best, how many trials
are finished, how a storage URL is printed and where a study's SQLite file lives. Nothing else
crosses from ``search/`` to ``results/``.
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from .redaction import redact as redact  # re-exported: results/ reads the contract only
from .redaction import redact_url as redact_url

if hasattr(enum, "StrEnum"):
    StrEnum = enum.StrEnum
else:  # Python 3.10: the same behaviour (equal to, formatted and stored as its value)

    class StrEnum(str, enum.Enum):
        def __str__(self) -> str:
            return str(self.value)


class StopReason(StrEnum):
    """Why a trial's training ended (``TrialKey.STOP_REASON``); stored as the plain string value."""

    MAX_EPOCHS = "max_epochs"  # trained every epoch it was given
    EARLY_STOP = "early_stop"  # validation accuracy stopped improving for ``patience`` epochs
    TIME_CAP = "time_cap"  # the trial's or the search's deadline cut it (a continuation may go on)
    PRUNED = "pruned"  # the pruner judged it behind
    NAN = "nan"  # the loss became NaN
    NO_LEARNING = "no_learning"  # stopped at chance level
    OVER_BUDGET = "over_budget"  # a named point whose first epochs no longer fit the budget
    INTERRUPTED = "interrupted"  # Ctrl-C; its configuration is queued again
    ERROR = "error"  # an unexpected exception (its traceback is in the run's error log)
    BUILD = "build"  # the space's model could not be built
    SURPLUS = "surplus"  # started after other workers had covered the study's target


class SearchStop(StrEnum):
    """Why the search loop ended."""

    TARGET = "target"  # the study holds the trials asked for
    TIMEOUT = "timeout"  # the budget ran out
    FAILURES = "failures"  # too many trials failed in a row


class TrialKey:
    """User-attribute keys of a trial."""

    POINT = "point"  # name of the space's named point the trial evaluated (the tutorial's CNN...)
    NEAR = "near"  # number of the trial a local-search neighbour started from
    CONTINUES = "continues"  # number of the time-capped trial whose weights this one trained on from
    RESUMED_EPOCHS = "resumed_epochs"  # epochs those weights had been trained for (a continuation's)
    REQUEUED_FROM = "requeued_from"  # an interrupted trial whose configuration this one re-runs
    RETRY_OF = "retry_of"  # a dead worker's trial whose configuration this one re-runs
    WORKER = "worker"  # "host:pid" of the process that ran it
    PRECISION = "precision"  # Keras dtype policy the model was built with (what --precision auto resolved to)
    FAMILY = "family"
    PARAMS = "params"  # trainable and non-trainable weights of the built model
    MACS = "macs"  # multiply-accumulates per image (engine/point_budget.py: what an epoch will cost)
    LATENCY = "latency_s"  # measured CPU seconds per image at batch 1 (--objective accuracy,latency)
    EPOCHS = "epochs"
    BEST_EPOCH = "best_epoch"  # 1-based epoch of the best validation accuracy
    SECONDS = "seconds"  # training cost; a population member carries its share of the population's time
    SECONDS_PER_EPOCH = "seconds_per_epoch"
    VAL_CURVE = "val_curve"  # validation accuracy per epoch
    VAL_LOSS_CURVE = "val_loss_curve"  # validation loss per epoch (the tie-break of equal accuracies)
    # accuracy of the trial's best weights on a darkened / low-contrast / gamma copy of the validation
    # images (search/engine/robustness.py), recorded when training finished; the tie-break "robust"
    ROBUST_VAL_ACCURACY = "robust_val_accuracy"
    TRAIN_CURVE = "train_curve"
    # accuracy on each class's validation images (None: no image of the class), best-epoch weights
    VAL_CLASS_ACCURACY = "val_class_accuracy"
    STOP_REASON = "stop_reason"  # a StopReason value
    FAIL_REASON = "fail_reason"
    SURPLUS = "surplus"  # started in a race after other workers had covered the study's target
    COMPILE_SECONDS = "compile_seconds"  # tracing + XLA compilation (compiled engine, populations)
    # numbers of the trials trained together in one program (--population), this one included
    POPULATION = "population"


class StudyKey:
    """User-attribute keys of a study."""

    CONFIG = "config"  # the whole SearchConfig as JSON: what resume, join, retrain and workers read
    OVERRIDES = "config_overrides"  # settings changed on a later command line, with when and by whom
    SPACE = "space"
    # SHA-256 of a user space's module file when the study was made: a later command imports the
    # stored module only when it still matches, or when --space is typed again (search/space_source.py)
    SPACE_SHA256 = "space_sha256"
    DATA_DIR = "data_dir"
    DATA_HASH = "data_hash"
    OBJECTIVES = "objectives"
    SEED = "seed"
    EPOCHS = "epochs"
    COMMAND = "command"
    CREATED = "created"
    TARGET = "target_trials"  # finished trials the current campaign aims at
    CAMPAIGN_START = "campaign_start"  # finished trials when the current campaign began
    WARM_STARTED = "warm_started"  # --warm-start items already enqueued: a resume does not read them again


class RunFile:
    """Files in ``runs/<study>/``."""

    STUDY_DB = "study.db"
    # folder: each kept trial model as trial-<N>.keras with trial-<N>.npz (its validation probabilities
    # and scores), the best --keep-models by validation log-loss (search/engine/kept_models.py)
    KEPT_MODELS = "models"
    BEST_MODEL = "best_model.keras"
    BEST_ONNX = "best_model.onnx"  # the ONNX export (search/final/export.py), what ``predict`` runs
    FINAL_MEMBERS = "final_members"  # folder: each retrained candidate as trial-<N>.keras
    BEST_CONFIG = "best_config.json"
    TEST_REPORT = "test_report.json"
    MISCLASSIFIED = "misclassified.npz"
    DATA_OVERVIEW = "data_overview.npz"
    SANITY_REPORT = "sanity_report.json"
    ERRORS_LOG = "errors.log"
    DASHBOARD = "dashboard.html"
    EXPORT_REPORT = "export_report.json"  # the deployable artifacts: sizes, test accuracy in their runtime
    # The final model's files are one set (search/final/final_set.py): each final stage writes them into a new
    # folder ``final-<time>-<pid>-<random>/`` and swaps it in with one rename of the symlink ``final``, so a
    # crash or Ctrl-C leaves the old set or the new one, never a new model beside old reports. In the run
    # folder each name of FINAL_SET (and each export artifact, ``in_final_set``) is a symlink ``NAME ->
    # final/NAME``: readers keep opening ``runs/<study>/best_model.keras``.
    FINAL_SET = (BEST_MODEL, FINAL_MEMBERS, TEST_REPORT, MISCLASSIFIED, BEST_CONFIG, EXPORT_REPORT)
    FINAL_DIR = "final"  # symlink to the current set's folder
    FINAL_SET_PREFIX = "final-"  # a complete set's folder
    FINAL_BUILD_PREFIX = ".final-build-"  # a set being written: ``.final-build-<pid>-<host>-<random>``
    FINAL_LOCK = ".final.lock"  # flock'd while a set is swapped in or added to


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what a study's target of trials counts
# How trials of equal validation accuracy are ordered (``SearchConfig.tie_break``): the lower validation
# loss, or the higher robust validation accuracy and then the lower loss.
TIE_BREAKS = ("loss", "robust")


# --- trials -------------------------------------------------------------------------------------


def count_states(trials: Iterable[FrozenTrial]) -> dict[TrialState, int]:
    """Trials per state, every state present (zeros included)."""
    counts = {state: 0 for state in TrialState}
    for trial in trials:
        counts[trial.state] += 1
    return counts


def count_finished(trials: Iterable[FrozenTrial]) -> int:
    """Completed plus pruned trials: what the study's target counts."""
    return sum(trial.state in FINISHED for trial in trials)


# stop reasons of trials that learned nothing (failed ones count too)
DEAD_REASONS = (StopReason.NO_LEARNING, StopReason.NAN)


def stopped_cost(trials: Iterable[FrozenTrial]) -> dict[str, tuple[int, float]]:
    """Trials that bought no finished model, and their training seconds: ``pruned`` by the pruner
    (the price of judging early) and ``dead`` (stopped at chance level, NaN loss, or failed)."""
    cost = {"pruned": (0, 0.0), "dead": (0, 0.0)}
    for t in trials:
        reason = t.user_attrs.get(TrialKey.STOP_REASON)
        kind = (
            "dead"
            if t.state == TrialState.FAIL or reason in DEAD_REASONS
            else "pruned"
            if t.state == TrialState.PRUNED
            else None
        )
        if kind is not None:
            n, seconds = cost[kind]
            cost[kind] = (n + 1, seconds + (_finite(t.user_attrs.get(TrialKey.SECONDS)) or 0.0))
    return cost


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def best_val_loss(trial: FrozenTrial) -> float | None:
    """Validation loss at the trial's best epoch, when it was recorded."""
    losses = trial.user_attrs.get(TrialKey.VAL_LOSS_CURVE)
    best_epoch = trial.user_attrs.get(TrialKey.BEST_EPOCH)
    if not isinstance(losses, list) or not isinstance(best_epoch, int) or not 1 <= best_epoch <= len(losses):
        return None
    return _finite(losses[best_epoch - 1])


def robust_val_accuracy(trial: FrozenTrial) -> float | None:
    """Accuracy of the trial's best weights on the perturbed validation copy, when it was recorded."""
    return _finite(trial.user_attrs.get(TrialKey.ROBUST_VAL_ACCURACY))


def tie_break_of(study: optuna.Study) -> str:
    """The study's stored ``tie_break`` setting; ``loss`` for a study that stored none (older ones)."""
    return tie_break_in(study.user_attrs)


def tie_break_in(study_attrs: dict) -> str:
    """``tie_break_of`` from a study's user attributes (a sampler reads them from the storage)."""
    config = study_attrs.get(StudyKey.CONFIG)
    value = config.get("tie_break") if isinstance(config, dict) else None
    return value if value in TIE_BREAKS else "loss"


def rank_key(
    trial: FrozenTrial, directions: list[StudyDirection] | None = None, tie_break: str = "loss"
) -> tuple[float, ...]:
    """Sort key, larger is better: validation accuracy, then lower validation loss (accuracies tie
    often on a saturated validation set), then the secondary objective, then the earlier trial.
    ``tie_break="robust"`` puts the higher robust validation accuracy before the loss: on a validation
    set that is 99.8% right, how a model copes with dark, washed-out photos still tells models apart."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, not {tie_break!r}")
    directions = directions or [StudyDirection.MAXIMIZE]
    values = trial.values or []
    sign = 1.0 if directions[0] == StudyDirection.MAXIMIZE else -1.0
    first = _finite(values[0]) if values else None
    loss = best_val_loss(trial)
    key = [sign * first if first is not None else -math.inf]
    if tie_break == "robust":
        robust = robust_val_accuracy(trial)
        key.append(robust if robust is not None else -math.inf)
    key.append(-loss if loss is not None else -math.inf)
    for value, direction in zip(values[1:], directions[1:]):
        number = _finite(value)
        flip = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
        key.append(flip * number if number is not None else -math.inf)
    key.append(-float(trial.number))
    return tuple(key)


def rankable(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE trials with a finite first value: the ones that can be called best."""
    return [t for t in trials if t.state == TrialState.COMPLETE and t.values and _finite(t.values[0]) is not None]


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Rankable trials by ``rank_key``, ``best_trial`` first (with several objectives the best is
    taken from the Pareto front, so it need not be the first by ``rank_key``)."""
    directions, tie_break = list(study.directions), tie_break_of(study)
    ranked = sorted(
        rankable(study.get_trials(deepcopy=False)), key=lambda t: rank_key(t, directions, tie_break), reverse=True
    )
    best = best_trial(study)
    return ([best] + [t for t in ranked if t.number != best.number]) if best is not None else ranked


def _params_key(trial: FrozenTrial) -> str:
    return json.dumps(trial.params, sort_keys=True, default=str)


def distinct_top(
    trials: Iterable[FrozenTrial], k: int, directions: list[StudyDirection] | None = None, tie_break: str = "loss"
) -> list[FrozenTrial]:
    """The best ``k`` COMPLETE trials by ``rank_key`` (with the study's ``tie_break``) with pairwise
    different params.

    A requeued or retried trial re-runs the same configuration; as an ensemble member it would
    add nothing a retrain does not, so only its better-ranked copy counts.
    """
    ranked = sorted(rankable(trials), key=lambda t: rank_key(t, directions, tie_break), reverse=True)
    seen: set[str] = set()
    picked: list[FrozenTrial] = []
    for trial in ranked:
        if len(picked) >= k:
            break
        key = _params_key(trial)
        if key not in seen:
            seen.add(key)
            picked.append(trial)
    return picked


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The trial the tool calls best, or None before any trial completed.

    One objective: the highest validation accuracy, ties to the lower validation loss (or, when the
    study's stored settings say ``tie_break: robust``, to the higher robust validation accuracy, then
    the lower loss), then the earlier trial. Several objectives: the same rule among the trials on the
    Pareto front.
    """
    candidates = rankable(study.get_trials(deepcopy=False))
    if len(study.directions) > 1:
        try:
            front = {t.number for t in study.best_trials}
        except (ValueError, RuntimeError):
            front = set()
        candidates = [t for t in candidates if t.number in front] or candidates
    if not candidates:
        return None
    directions, tie_break = list(study.directions), tie_break_of(study)
    return max(candidates, key=lambda t: rank_key(t, directions, tie_break))


def origin_of(user_attrs: dict) -> str | None:
    """Where a trial's configuration came from: a named point, "near #N" for a local-search
    neighbour of trial N, "continues #N" for trial N trained on from its weights, or None for the
    sampler's own pick."""
    point = user_attrs.get(TrialKey.POINT)
    if point not in (None, ""):
        return str(point)
    parent = user_attrs.get(TrialKey.CONTINUES)
    if parent is not None:
        return f"continues #{parent}"
    near = user_attrs.get(TrialKey.NEAR)
    return f"near #{near}" if near is not None else None


# --- storage ------------------------------------------------------------------------------------


def sqlite_path(out: Path | str, study: str) -> Path:
    """Where a study's own SQLite file lives when no ``--storage`` is given."""
    return Path(out) / study / RunFile.STUDY_DB


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def storage_url(storage: str | None, out: Path | str, study: str) -> str:
    """The URL a study is opened from: ``storage`` when given, else its run folder's SQLite file."""
    return storage or sqlite_url(sqlite_path(out, study))


# --- files --------------------------------------------------------------------------------------

# The export artifacts' names (search/final/export.py ``artifact_name``): best_model_savedmodel/,
# best_model.onnx, best_model.tflite, best_model_<quantisation>.tflite.
_ARTIFACT = re.compile(re.escape(Path(RunFile.BEST_MODEL).stem) + r"(_savedmodel|(_[a-z0-9]+)?\.(onnx|tflite))")


def in_final_set(name: str) -> bool:
    """Whether the run folder's entry ``name`` belongs to the final model's set: a ``RunFile.FINAL_SET``
    name or an export artifact's."""
    return name in RunFile.FINAL_SET or _ARTIFACT.fullmatch(name) is not None


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import, while one thread runs: os.umask can only be read by setting it. mkstemp and mkdtemp
# create 0600 / 0700 entries; run files get the modes a plain open() or mkdir() would give them, so that the
# people who share a runs/ folder can still read them.
_UMASK = _read_umask()


def private_dir(parent: Path, prefix: str, suffix: str = "") -> Path:
    """A new folder in ``parent`` under an unpredictable name, created exclusively (``mkdtemp``): nothing
    planted in a shared folder under a guessable name is reused or followed."""
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(path, 0o777 & ~_UMASK)
    return path


def private_tmp(path: Path, *, folder: bool = False) -> Path:
    """A new, empty temporary file (or folder) beside ``path`` that no other process uses, created exclusively
    (``mkstemp``) under an unpredictable name: a file or symlink planted in a shared run folder under a
    guessable name is never opened or followed, and workers that write the same run file never share one.
    The name starts with ``.tmp-<pid>-`` (who left it, should a crash leave it) and ends like ``path``, so
    writers that add or require a suffix (``np.savez``: ``.npz``, ``model.save``: ``.keras``) keep it."""
    prefix, suffix = f".tmp-{os.getpid()}-", f"-{path.name}"
    if folder:
        return private_dir(path.parent, prefix, suffix)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return Path(name)


def _fsync_regular_file(path: Path) -> None:
    """Flush ``path`` to disk. O_NOFOLLOW: a symlink put in its place is refused, never renamed over a run file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yields a private temporary file (``private_tmp``; it exists, empty) for a writer to open by name; on
    success it is flushed to disk and renamed over ``path``, so a reader (or a crash) never sees half a
    file; on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(path)
    try:
        yield tmp
        _fsync_regular_file(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_text(path: Path | str, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_json(path: Path | str, payload: dict) -> Path:
    return write_text(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")
