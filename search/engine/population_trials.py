"""A population's trials in the study: one sampled architecture, members asked, trained together, told.

The first trial is asked as any other; its values except ``FREE_PARAMS`` are enqueued for the other
members, so the sampler picks only their learning rate, weight decay and label smoothing, and each
member is an ordinary trial with its own seed (its number), reports, pruning and result. Trials are
asked and told directly (``study.optimize`` runs one trial at a time), each with Optuna's heartbeat,
so a killed worker's members are found dead and retried like any trial.

Another worker may take an enqueued member first: it then trains that configuration alone, and a
trial asked here that does not share the first one's values trains alone after the population.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from ..schema import TrialKey
from .compiled import order_seed
from .lifecycle import TrialRun
from .objective import BuiltTrial, Objective
from .outcome import CutTrial, TrialPlan
from .population import FREE_PARAMS, Member, shared_values, train_population
from .session import fresh_session


def population_size(requested: int, remaining: int, waiting: int) -> int:
    """Members of the next population: 1 while enqueued trials wait (named points, warm starts,
    requeued configurations run as they were given), and never more than the target still needs."""
    return 1 if waiting else max(1, min(requested, remaining))


def run_population(
    study: optuna.Study, objective: Objective, errors_log: Path, size: int, plan: TrialPlan
) -> tuple[list[FrozenTrial], CutTrial | None]:
    """Ask ``size`` trials sharing one architecture, train them in one program and tell each its
    result; returns the finished trials (failed ones included) in the order they were told, and the
    cut one of them left. When the shared program fails, every member still open fails with it
    (``TrialRun``)."""
    fresh_session()
    cuts: list[CutTrial] = []
    with TrialRun(study, errors_log) as run:
        _train(study, objective, run, size, plan, cuts)
    return run.done, cuts[-1] if cuts else None


def _train(
    study: optuna.Study, objective: Objective, run: TrialRun, size: int, plan: TrialPlan, cuts: list[CutTrial]
) -> None:
    members: list[tuple[optuna.Trial, BuiltTrial, int]] = []
    strays: list[tuple[optuna.Trial, BuiltTrial]] = []
    leader = run.ask()
    built = run.settle(leader, lambda: objective.start(leader, plan))
    if not isinstance(built, BuiltTrial):
        return
    members.append((leader, built, order_seed()))
    shared = shared_values(built.values)
    fixed = {name: value for name, value in leader.params.items() if name not in FREE_PARAMS}
    for _ in range(size - 1):
        study.enqueue_trial(fixed)
    for _ in range(size - 1):
        trial = run.ask()
        other = run.settle(trial, lambda t=trial: objective.start(t, plan))
        if isinstance(other, BuiltTrial):
            if shared_values(other.values) == shared:
                members.append((trial, other, order_seed()))
            else:
                strays.append((trial, other))
    numbers = [trial.number for trial, _, _ in members]
    for trial, _, _ in members:
        trial.set_user_attr(TrialKey.POPULATION, numbers)
    cfg = objective.cfg
    results = train_population(
        [Member(b.model, b.values, seed, b.clock, b.hooks) for _, b, seed in members],
        objective.dataset,
        epochs=cfg.epochs,
        patience=cfg.patience,
    )
    scores = [
        run.run(trial, lambda t=trial, b=built_trial, r=result: objective.finish(t, b, r))
        for (trial, built_trial, _), result in zip(members, results)
    ]
    for trial, built_trial in strays:  # taken from the queue of another worker's population: alone
        scores.append(run.run(trial, lambda t=trial, b=built_trial: objective.finish(t, b, objective.train(b))))
    cuts.extend(s.cut for s in scores if s is not None and s.cut is not None)
