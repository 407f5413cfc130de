"""Half the sampled trials try a neighbour of the best trial so far: one or two settings changed.

On a wall-clock budget a search gets few trials (10-15 in 10 minutes on 2 CPU cores), too few for
TPE's model to say much: after the named points, its picks behave like random ones, and a random
point of the ``all`` space is usually worse than the hand-tuned ``strong`` point the search already
has (in 600 s versus runs most sampled trials ended far below it, and KerasTuner's Hyperband,
training more full models, could catch up by the end of the budget). A neighbour of the incumbent
(another learning rate, dropout, filter count, one more block) starts from a configuration known to
work; alternating with the base sampler keeps the search exploring (measured: BENCHMARKS.md,
"Versus KerasTuner"). This is the local search of SMAC and the exploit step of
population-based training, as a wrapper around any Optuna sampler.

How a trial is made: ``before_trial`` decides whether the new trial is local (the share of finished
sampled trials, named points and requeued trials not counted, stays at ``share``) and which
one or two of the incumbent's parameters it changes. Parameters the trial then suggests come from
the incumbent (changed ones perturbed: the next choice or a step away); parameters the incumbent
never had (a block the change added) come from the base sampler. Enqueued trials (named points, a
requeued configuration) are never touched. The trial records ``near`` = the incumbent's number.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from ..optuna_adapter import all_trials, fixed_params, label_trial, study_user_attrs
from ..schema import TrialKey, rank_key, tie_break_in


@dataclass
class _Plan:
    incumbent: FrozenTrial
    change: set[str]
    rng: random.Random


def perturb(value: Any, distribution: BaseDistribution, rng: random.Random) -> Any:
    """A value near ``value`` inside ``distribution``, different from it where the space allows."""
    if isinstance(distribution, CategoricalDistribution):
        others = [c for c in distribution.choices if c != value]
        return rng.choice(others) if others else value
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            steps = [max(distribution.low, round(value / 2)), min(distribution.high, value * 2)]
        else:
            steps = [value - distribution.step, value + distribution.step]
        options = [v for v in steps if distribution.low <= v <= distribution.high and v != value]
        return int(rng.choice(options)) if options else value
    if isinstance(distribution, FloatDistribution):
        low, high = distribution.low, distribution.high
        direction = 1 if value <= low else -1 if value >= high else rng.choice((-1, 1))
        if distribution.step is not None:
            new = value + direction * distribution.step
        elif distribution.log:
            new = value * math.exp(direction * rng.uniform(0.4, 1.2))  # x1.5 to x3.3
        else:
            new = value + direction * rng.uniform(0.1, 0.25) * (high - low)
        return min(high, max(low, new))
    return value


def local_due(done_sampled: int, share: float) -> bool:
    """Whether the next sampled trial is local, so that local trials stay at ``share`` of them."""
    return math.floor((done_sampled + 1) * share) > math.floor(done_sampled * share)


class LocalSearchSampler(optuna.samplers.BaseSampler):
    """Wraps ``base``: a ``share`` of sampled trials are neighbours of the best complete trial."""

    def __init__(self, base: optuna.samplers.BaseSampler, *, share: float = 0.5, seed: int = 0) -> None:
        if not 0.0 <= share < 1.0:
            raise ValueError(f"local search share must be in [0, 1), got {share}")
        self.base, self.share, self.seed = base, share, seed
        self._plans: dict[int, _Plan] = {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)
        if self.share <= 0 or fixed_params(trial):
            return
        # Not study.get_trials(): with Hyperband pruning, samplers are handed a view of the trial's
        # bracket only, and the best trial to start from is the best of the whole study.
        finished = all_trials(study, (TrialState.COMPLETE, TrialState.PRUNED))
        sampled = [t for t in finished if not _enqueued(t)]
        complete = [t for t in finished if t.state == TrialState.COMPLETE and t.values]
        if not complete or not local_due(len(sampled), self.share):
            return
        # the same best trial as everywhere (a Hyperband bracket's view of the study has no user_attrs)
        tie_break = tie_break_in(study_user_attrs(study))
        incumbent = max(complete, key=lambda t: rank_key(t, tie_break=tie_break))
        rng = random.Random(self.seed * 1_000_003 + trial.number)
        names = sorted(n for n, d in incumbent.distributions.items() if not d.single())
        if not names:
            return
        change = set(rng.sample(names, min(len(names), rng.choice((1, 2)))))
        self._plans[trial.number] = _Plan(incumbent, change, rng)
        label_trial(study, trial, TrialKey.NEAR, incumbent.number)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if trial.number in self._plans:
            return {}
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if trial.number in self._plans:
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        plan = self._plans.get(trial.number)
        if plan is not None and plan.incumbent.distributions.get(param_name) == param_distribution:
            value = plan.incumbent.params[param_name]
            return perturb(value, param_distribution, plan.rng) if param_name in plan.change else value
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._plans.pop(trial.number, None)
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


def _enqueued(trial: FrozenTrial) -> bool:
    """Named points and requeued configurations: they were not the sampler's choice."""
    return fixed_params(trial) is not None
