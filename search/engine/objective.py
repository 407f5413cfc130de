"""One search trial: build the trial's model from the space, train it, report to Optuna.

Everything a person later wants to know about the trial's cost and behaviour is stored as user
attributes (epochs, seconds, parameter count, best epoch, the validation curve, why it stopped), so
dashboards and summaries never need to re-run anything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import optuna
from optuna.trial import TrialState

from spaces import common

from ..config import SearchConfig
from ..data import Dataset
from ..sampling.screen import SCREEN_EPOCH, SCREEN_STEP, ScreenPruner, screen_images
from ..schema import FINISHED, StopReason, TrialKey
from .continuation import best_complete_value, restart_values, worth_continuing
from .engines import train_model
from .events import SearchEvents
from .first_look import FirstLook
from .hp_adapter import OptunaHyperParameters
from .kept_models import class_accuracy, keep_model
from .latency import latency_per_image
from .lifecycle import TrialFailed
from .outcome import CutTrial, Scored, TrialPlan
from .point_budget import MIN_POINT_EPOCHS, NAMED_SHARE, PointBudget, model_macs
from .robustness import robust_accuracy
from .session import fresh_session
from .study import worker_id
from .trainer import EVAL_BATCH_SIZE, EpochHook, TrainClock, TrainResult, count_params

if TYPE_CHECKING:
    from spaces.space import Space

# A model still at chance level after this many epochs has diverged or cannot learn at its settings
# (a too-high learning rate, say); Hyperband's later brackets would otherwise train it 3 or 9 epochs
# before their first judgement. "Chance" is always answering the most common validation class
# (5.8% on GTSRB's unbalanced classes); healthy models are far above it after one epoch.
STALL_EPOCH = 2
STALL_FACTOR = 1.5
CAP_GROWTH = 2.0  # a trial that passed its first epoch may run up to this many times the base cap


def majority_share(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most common label."""
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def stalled(epoch: int, val_accuracy: float, chance: float, max_epochs: int) -> bool:
    """True when a trial should stop now because it has learned nothing (and has epochs left)."""
    if epoch < STALL_EPOCH or epoch >= max_epochs:
        return False
    return not math.isfinite(val_accuracy) or val_accuracy <= STALL_FACTOR * chance


def earned_deadline(
    started: float, now: float, epoch: int, epochs: int, base_cap: float, search_end: float | None
) -> float:
    """The deadline of a trial that goes on after its first ``epoch``(s): long enough for all its
    ``epochs`` at the pace measured so far, at most ``CAP_GROWTH`` times the base cap, and never
    past the search's end. A configuration good enough to pass the screen is not cut at 8 of 10
    epochs by a cap sized before anything was known about it."""
    pace = (now - started) / max(epoch, 1)
    allowed = min(max(base_cap, pace * epochs), CAP_GROWTH * base_cap)
    return min(started + allowed, search_end) if search_end is not None else started + allowed


@dataclass
class BuiltTrial:
    """A trial's model, ready to train, and what judges it while it trains."""

    model: keras.Model
    values: dict[str, Any]
    params: int
    clock: TrainClock
    hooks: list[keras.callbacks.Callback]
    epochs: int  # the most this run trains: the search's --epochs, or what a continuation has left
    resumed: CutTrial | None = None  # the cut trial whose weights this run starts from
    search_end: float | None = None  # when the search ends (time.monotonic()), as the loop planned it


class Objective:
    """One trial from its configuration to its score, with what every trial of the process shares:
    the data loaded once, the space, the settings and the named points' budget. What differs per
    trial (the search's end, the weights to start from) comes in a ``TrialPlan``; what a trial leaves
    the loop comes back in its ``Scored``."""

    def __init__(
        self, dataset: Dataset, space: Space, cfg: SearchConfig, *, target: int, events: SearchEvents | None = None
    ) -> None:
        self.dataset, self.space, self.cfg, self.target = dataset, space, cfg, target
        self.events = events or SearchEvents()
        self.chance = majority_share(dataset.valid.labels)
        self.points = PointBudget(space, dataset, float(cfg.timeout or 0.0))  # used only with a --timeout

    def __call__(self, trial: optuna.Trial, plan: TrialPlan = TrialPlan()) -> Scored:
        fresh_session()
        built = self.start(trial, plan)
        return self.finish(trial, built, self.train(built))

    def train(self, built: BuiltTrial) -> TrainResult:
        """Train one built trial alone, with the search's settings."""
        values = restart_values(built.values) if built.resumed else built.values
        return train_model(
            built.model,
            self.dataset,
            values,
            epochs=built.epochs,
            patience=self.cfg.patience,
            deadline=built.clock,
            hooks=built.hooks,
            steps_per_execution=self.cfg.steps_per_execution,
            engine=self.cfg.engine,
        )

    def start(self, trial: optuna.Trial, plan: TrialPlan = TrialPlan()) -> BuiltTrial:
        """Everything before training: the trial's seed, its model, how it is judged per epoch.
        Raises ``TrialFailed`` for a configuration that cannot be built (or a surplus trial). Leaves
        earlier models alone (a population builds several); a solo trial clears the session first."""
        if self.events.on_trial_start is not None:
            self.events.on_trial_start(trial)
        trial.set_user_attr(TrialKey.WORKER, worker_id())
        trial.set_user_attr(TrialKey.PRECISION, keras.config.dtype_policy().name)
        self._refuse_surplus(trial)
        queued_points = self.points.queued(trial.study) if self._budgets_points(trial) else None  # before the seed
        keras.utils.set_random_seed((self.cfg.seed * 100_003 + trial.number) % 2**31)
        hp = OptunaHyperParameters(trial)
        try:
            model = self.space.build(hp, self.dataset.input_shape, self.dataset.n_classes)
        except (ValueError, TypeError) as exc:  # e.g. a configuration that shrinks the image to nothing
            self._fail(trial, StopReason.BUILD, f"model could not be built: {exc}")
        params, macs = count_params(model), model_macs(model)
        trial.set_user_attr(TrialKey.FAMILY, self.space.family_of(hp.values))
        trial.set_user_attr(TrialKey.PARAMS, params)
        trial.set_user_attr(TrialKey.MACS, macs)
        resumed = _resumed_weights(trial, model, plan.resume)
        done = resumed.epochs_done if resumed else 0
        clock = TrainClock(self._trial_deadline(plan.search_end))
        if queued_points is not None:
            self._cap_named_point(trial, clock, macs, queued_points)
        hooks = self.epoch_hooks(
            trial, clock, done, batch_size=common.training_settings(hp.values).batch_size, search_end=plan.search_end
        )
        return BuiltTrial(
            model,
            dict(hp.values),
            params,
            clock,
            hooks,
            epochs=self.cfg.epochs - done,
            resumed=resumed,
            search_end=plan.search_end,
        )

    def _budgets_points(self, trial: optuna.Trial) -> bool:
        """A named point of a timed search (not a continuation, which trains its parent on)."""
        return (
            self.cfg.timeout is not None
            and TrialKey.POINT in trial.user_attrs
            and TrialKey.CONTINUES not in trial.user_attrs
        )

    def _cap_named_point(self, trial: optuna.Trial, clock: TrainClock, macs: float, queued: dict[int, float]) -> None:
        """Shorten a named point's cap to its share of the budget (``point_budget.py``), or skip it."""
        cap = self.points.cap(trial, macs, queued)
        if cap is None:
            trial.set_user_attr(TrialKey.STOP_REASON, StopReason.OVER_BUDGET)
            self.events.say(
                f"named point {trial.user_attrs[TrialKey.POINT]} skipped: {MIN_POINT_EPOCHS} epochs "
                f"of it do not fit the named points' {NAMED_SHARE:.0%} of the budget"
            )
            raise optuna.TrialPruned("over the named points' budget")
        ends = time.monotonic() + cap
        clock.deadline = ends if clock.deadline is None else min(clock.deadline, ends)

    def finish(self, trial: optuna.Trial, built: BuiltTrial, result: TrainResult) -> Scored:
        """Record the training's outcome on the trial and return its score; raises ``TrialFailed``
        (NaN, no score) or ``optuna.TrialPruned``."""
        model = built.model
        stop_reason = trial.user_attrs.get(TrialKey.STOP_REASON) or result.stop_reason
        for key, value in {
            TrialKey.EPOCHS: result.epochs_run,
            TrialKey.BEST_EPOCH: result.best_epoch,
            TrialKey.SECONDS: round(result.seconds, 3),
            TrialKey.VAL_CURVE: result.val_curve,
            TrialKey.VAL_LOSS_CURVE: result.val_loss_curve,
            TrialKey.TRAIN_CURVE: result.train_curve,
            TrialKey.STOP_REASON: stop_reason,
            TrialKey.SECONDS_PER_EPOCH: round(result.seconds / max(result.epochs_run, 1), 3),
        }.items():
            trial.set_user_attr(key, value)
        if result.compile_seconds:
            trial.set_user_attr(TrialKey.COMPILE_SECONDS, round(result.compile_seconds, 3))
        trained = result.stop_reason not in (StopReason.NAN, StopReason.PRUNED)
        if trained and result.val_curve and math.isfinite(result.best_val_accuracy):
            # Trained to the end: the trainer restored the best epoch's weights, scored here on the perturbed copy.
            valid = self.dataset.valid
            trial.set_user_attr(TrialKey.ROBUST_VAL_ACCURACY, robust_accuracy(model, valid.features, valid.labels))
        if result.stop_reason == StopReason.NAN:
            self._fail(trial, StopReason.NAN, "loss became NaN; training stopped at once")
        if result.stop_reason == StopReason.PRUNED:
            raise optuna.TrialPruned(f"pruned after epoch {result.epochs_run}")
        if not result.val_curve or not math.isfinite(result.best_val_accuracy):
            self._fail(trial, StopReason.ERROR, "no finite validation accuracy was produced")
        self._record_validation(trial, model)
        if self.cfg.multi_objective:
            return Scored((result.best_val_accuracy, self._second_objective(trial, model, built.params)))
        return Scored(result.best_val_accuracy, self._cut(trial, built, result))

    def _record_validation(self, trial: optuna.Trial, model: keras.Model) -> None:
        """The trained model's (its best epoch's weights) accuracy per validation class, then the model
        offered to the run's kept models, which the final stage combines; a model that cannot be saved
        costs a warning, not the trial."""
        valid = self.dataset.valid
        probs = model.predict(valid.features, batch_size=EVAL_BATCH_SIZE, verbose=0)
        trial.set_user_attr(TrialKey.VAL_CLASS_ACCURACY, class_accuracy(probs, valid.labels, self.dataset.n_classes))
        if self.cfg.keep_models <= 0:
            return
        try:
            keep_model(self.cfg.run_dir, trial.number, model, probs, valid.labels, self.cfg.keep_models)
        except Exception as exc:  # e.g. a user space's layer that Keras cannot save
            self.events.say(f"warning: trial {trial.number}'s model is not kept ({type(exc).__name__}: {exc})")

    def _cut(self, trial: optuna.Trial, built: BuiltTrial, result: TrainResult) -> CutTrial | None:
        """The weights of the best trial so far when the time cap cut it short of its epochs: the
        loop trains it on next (``continuation.run_continuation``)."""
        if not self.cfg.continue_cut:
            return None
        epochs_done = (built.resumed.epochs_done if built.resumed else 0) + result.epochs_run
        seconds_per_epoch = result.seconds / max(result.epochs_run, 1)
        seconds_left = None if built.search_end is None else built.search_end - time.monotonic()
        if not worth_continuing(
            result.stop_reason,
            result.best_val_accuracy,
            epochs_done,
            self.cfg.epochs,
            best_complete_value(trial.study),
            seconds_left,
            seconds_per_epoch,
        ):
            return None
        return CutTrial(
            trial.number,
            dict(trial.params),
            dict(trial.distributions),
            built.model.get_weights(),
            epochs_done,
            seconds_per_epoch,
        )

    def _second_objective(self, trial: optuna.Trial, model: keras.Model, params: int) -> float:
        """Model size in weights, or measured CPU seconds per image at batch 1."""
        if self.cfg.objectives[1] == "latency":
            seconds = latency_per_image(model, self.dataset.valid.features)
            trial.set_user_attr(TrialKey.LATENCY, seconds)
            return seconds
        return float(params)

    def epoch_hooks(
        self,
        trial: optuna.Trial,
        clock: TrainClock | None = None,
        epochs_done: int = 0,
        batch_size: int = 64,
        search_end: float | None = None,
    ) -> list[keras.callbacks.Callback]:
        """The callbacks that judge ``trial`` while it trains (the screen's first look, pruning, the
        no-learning guard, the longer cap a trial earns by passing the first epoch), then the caller's
        own (``SearchEvents.trial_callbacks``: progress, probes). A continuation reports its epochs
        after the ``epochs_done`` its weights were trained for."""
        extra = list(self.events.trial_callbacks(trial)) if self.events.trial_callbacks else []
        # Named points are the study's anchors (the tutorial's models, a known strong model): they
        # report their curves, which the pruner judges other trials by, but always run to the end,
        # so a search never ends without knowing how the tutorial's models do. They keep the base
        # cap (the cosine anneals to it): they run first, and their job is a good model early.
        # A continuation is judged like its parent, which already passed the screen.
        anchor = TrialKey.POINT in trial.user_attrs or TrialKey.CONTINUES in trial.user_attrs
        earn = self._earner(clock, anchor, search_end)
        if self.cfg.multi_objective:  # Optuna cannot prune multi-objective studies

            def only_earn(epoch: int, val_accuracy: float) -> bool:
                earn(epoch)
                return False

            return [EpochHook(only_earn), *extra]

        first_look = self._first_look(trial, anchor, batch_size) if not epochs_done else []

        def report(epoch: int, val_accuracy: float) -> bool:
            if math.isfinite(val_accuracy):
                trial.report(val_accuracy, epochs_done + epoch)
            if not anchor:
                if stalled(epoch, val_accuracy, self.chance, self.cfg.epochs):
                    trial.set_user_attr(TrialKey.STOP_REASON, StopReason.NO_LEARNING)
                    return True
                if trial.should_prune():
                    return True
            earn(epoch)
            return False

        return [*first_look, EpochHook(report), *extra]

    def _earner(self, clock: TrainClock | None, anchor: bool, search_end: float | None) -> Callable[[int], None]:
        """What passing the screen's epoch earns a sampled trial: a cap sized by its own pace."""
        started = time.monotonic()
        base_cap = self.cfg.trial_time_limit

        def earn(epoch: int) -> None:
            if clock is not None and base_cap is not None and epoch == SCREEN_EPOCH and not anchor:
                clock.deadline = earned_deadline(
                    started, time.monotonic(), epoch, self.cfg.epochs, base_cap, search_end
                )

        return earn

    def _first_look(self, trial: optuna.Trial, anchor: bool, batch_size: int) -> list[keras.callbacks.Callback]:
        """The screen's look part-way into the first epoch, on the rung only the screen pruner judges."""
        if not isinstance(trial.study.pruner, ScreenPruner):
            return []

        def look(val_accuracy: float) -> bool:
            if math.isfinite(val_accuracy):
                trial.report(val_accuracy, SCREEN_STEP)
            return not anchor and trial.should_prune()

        return [
            FirstLook(look, self.dataset.valid, images=screen_images(len(self.dataset.train)), batch_size=batch_size)
        ]

    def _trial_deadline(self, search_end: float | None) -> float | None:
        limit = self.cfg.trial_time_limit
        ends = [d for d in (search_end, time.monotonic() + limit if limit else None) if d is not None]
        return min(ends) if ends else None

    def _fail(self, trial: optuna.Trial, reason: StopReason, message: str) -> None:
        trial.set_user_attr(TrialKey.STOP_REASON, reason)
        trial.set_user_attr(TrialKey.FAIL_REASON, message)
        raise TrialFailed(message)

    def _refuse_surplus(self, trial: optuna.Trial) -> None:
        """With several workers, two can start the study's last trial at once; the later one stops."""
        trials = trial.study.get_trials(deepcopy=False)
        done = sum(t.state in FINISHED for t in trials)
        ahead = sum(t.state == TrialState.RUNNING and t.number < trial.number for t in trials)
        if done + ahead >= self.target:
            trial.set_user_attr(TrialKey.SURPLUS, True)
            self._fail(trial, StopReason.SURPLUS, "not run: the study's target was reached by other workers")


def _resumed_weights(trial: optuna.Trial, model: keras.Model, cut: CutTrial | None) -> CutTrial | None:
    """Load the cut trial's weights into a continuation's freshly built model."""
    if cut is None or trial.user_attrs.get(TrialKey.CONTINUES) != cut.number:
        return None
    model.set_weights(cut.weights)
    return cut
