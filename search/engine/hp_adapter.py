"""The spaces' ``hp`` API answered by an Optuna trial (define-by-run).

``hp.Int`` becomes ``trial.suggest_int`` and so on, with log scales and steps kept. A parameter
inside an inactive ``conditional_scope`` is never suggested, so Optuna's samplers see exactly the
parameters the built model used. Log-scaled parameters with a multiplicative KerasTuner step (which
Optuna cannot express) become a categorical over the enumerated values.
"""

from __future__ import annotations

import optuna

from spaces.hp import ParamSpec, Value, ValuesHyperParameters


class OptunaHyperParameters(ValuesHyperParameters):
    """``hp`` whose values are suggested by ``trial``."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def _resolve(self, spec: ParamSpec) -> Value:
        trial, name = self.trial, spec.name
        grid = spec.grid()
        if grid is not None:
            return trial.suggest_categorical(name, list(grid))
        if spec.sampling not in ("linear", "log"):
            raise ValueError(
                f"hyperparameter {name!r}: sampling {spec.sampling!r} is not supported "
                "by the Optuna adapter (use 'linear' or 'log')"
            )
        log = spec.sampling == "log"
        if spec.kind == "int":
            return trial.suggest_int(
                name,
                int(spec.min_value),
                int(spec.max_value),  # type: ignore[arg-type]
                step=1 if log else int(spec.step or 1),
                log=log,
            )
        if spec.kind == "float":
            return trial.suggest_float(
                name,
                float(spec.min_value),
                float(spec.max_value),  # type: ignore[arg-type]
                step=None if log else spec.step,
                log=log,
            )
        if spec.kind in ("choice", "boolean"):
            return trial.suggest_categorical(name, list(spec.values))
        return spec.default  # fixed: nothing to suggest
