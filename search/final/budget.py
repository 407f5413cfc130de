"""One budget for the whole job: what the final stage will cost, reserved before the search stops.

``--timeout`` bounds the job from start to the last file written. The final stage retrains the
best distinct configurations for up to ``final_epoch_limit`` epochs each; its cost is estimated from
the seconds per epoch the search measured for those same configurations, and the search stops
early enough to pay for it. The single best configuration is always paid for; further candidates
(an ensemble) only while the final stage stays within ``FINAL_SHARE`` of the budget.
"""
from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial

from ..config import SearchConfig
from ..schema import TrialKey
from .choose import distinct_top

FINAL_SHARE = 0.5  # most of the budget the final stage may take beyond the single best's retrain
# After the last final epoch: choosing (the TTA options predict validation five times), saving, test
# scoring and speed, exports (conversion and a check in each runtime), the dashboard. Measured on the
# sample (session 5): about 45 s plus 3-4 epochs' worth of the model's time.
OVERHEAD_SECONDS = 45.0
OVERHEAD_EPOCHS = 4.0
SAFETY = 1.15  # a final epoch costs a little more than a search epoch (first-epoch compile, no cap)


def retrain_seconds(trial: FrozenTrial, cfg: SearchConfig) -> float:
    """Estimated seconds to retrain ``trial``'s configuration for the final stage."""
    per_epoch = float(trial.user_attrs.get(TrialKey.SECONDS_PER_EPOCH) or 0.0)
    runs = 2 if cfg.final_data == "train+valid" else 1  # a validation run picks the epochs, then the refit
    return per_epoch * cfg.final_epoch_limit * runs * SAFETY


def plan(trials: Sequence[FrozenTrial], cfg: SearchConfig, budget: float | None) -> list[FrozenTrial]:
    """The candidates the final stage retrains within ``budget`` seconds (None: no limit): the best
    always, then the next distinct ones while they fit."""
    ranked = distinct_top(trials, cfg.final_candidates, tie_break=cfg.tie_break)
    chosen: list[FrozenTrial] = []
    spent = 0.0
    for trial in ranked:
        cost = retrain_seconds(trial, cfg)
        if chosen and budget is not None and spent + cost > budget:
            break
        chosen.append(trial)
        spent += cost
    return chosen


def reserve_seconds(study: optuna.Study, cfg: SearchConfig) -> float:
    """Seconds the search leaves for the final stage, now (0 before any trial completed)."""
    if not cfg.retrain or cfg.timeout is None:
        return 0.0
    trials = study.get_trials(deepcopy=False)
    candidates = plan(trials, cfg, budget=FINAL_SHARE * cfg.timeout)
    if not candidates:
        return 0.0
    return sum(retrain_seconds(t, cfg) for t in candidates) + overhead_seconds(candidates[0])


def overhead_seconds(best: FrozenTrial) -> float:
    """What the final stage costs after its last epoch, for a model of ``best``'s speed."""
    return OVERHEAD_SECONDS + OVERHEAD_EPOCHS * float(best.user_attrs.get(TrialKey.SECONDS_PER_EPOCH) or 0.0)
