"""Samplers and pruners by name: one registry each, read by the settings and by the study.

Optuna is imported inside the factories, so the settings (and ``--help``) can list the names
without paying for it. A sampler that needs an optional package says which one to install.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    import optuna


GP_STARTUP = 5  # the named points already cover the known-good region; few random points after them


def _tpe(seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    """Grouped and multivariate for the conditional spaces; few start-up trials, since the named
    points already cover the cheap, known-good region and random start-up points are the most
    likely to be expensive."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=5
        )


def _random(seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _cmaes(seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    import optuna

    _require("cmaes")
    if multi_objective:
        raise UserError("sampler cmaes cannot optimise several objectives; use tpe or random")
    return optuna.samplers.CmaEsSampler(seed=seed, independent_sampler=optuna.samplers.TPESampler(seed=seed))


def _gp(seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    """Gaussian-process Bayesian optimisation, the sampler Optuna recommends for 10-100 trials:
    a space-filling (scrambled Sobol) start of ``GP_STARTUP`` points, then the GP. Parameters that
    only some trials have (the conditional blocks of ``all``) stay with the Sobol sampler."""
    import optuna

    _require("scipy", "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.GPSampler(
            seed=seed,
            independent_sampler=_qmc(seed, multi_objective),
            n_startup_trials=GP_STARTUP,
            warn_independent_sampling=False,
        )


def _qmc(seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    import optuna

    _require("scipy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(
            seed=seed, scramble=True, warn_independent_sampling=False, warn_asynchronous_seeding=False
        )


def _require(*packages: str) -> None:
    for package in packages:
        try:
            __import__(package)
        except ImportError:
            raise UserError(f"this sampler needs the package {package!r}: pip install {package}") from None


SAMPLERS: dict[str, Callable[[int, bool], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "gp": _gp,
    "qmc": _qmc,
}


def make_sampler(
    name: str, seed: int, *, multi_objective: bool = False, local_share: float = 0.0
) -> optuna.samplers.BaseSampler:
    """The sampler ``name``, with ``local_share`` of its trials given to local search around the
    best trial (single objective only: a Pareto front has no single best)."""
    from .local_search import LocalSearchSampler

    if name not in SAMPLERS:
        raise UserError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    base = SAMPLERS[name](seed, multi_objective)
    if local_share > 0 and not multi_objective:
        return LocalSearchSampler(base, share=local_share, seed=seed)
    return base


# Pruners that act from the first trials: successive halving compares trials at each rung instead
# of waiting for several finished trials the way the median pruner does.
def _hyperband(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 1), reduction_factor=3)


def _sha(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


def _median(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)


def _screen(max_epochs: int) -> optuna.pruners.BasePruner:
    from .screen import ScreenPruner

    return ScreenPruner()


def _none(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.NopPruner()


PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "hyperband": _hyperband,
    "sha": _sha,
    "screen": _screen,
    "median": _median,
    "none": _none,
}


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    if name not in PRUNERS:
        raise UserError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")
    return PRUNERS[name](max_epochs)
