"""Search spaces: model families written against the KerasTuner ``hp`` API.

Each space module exposes ``NAME``, ``build(hp, input_shape, n_classes)``, ``POINTS``,
``PARAM_CEILING``, ``family_of(values)`` and ``declare(hp)``. Importing this package also
registers the custom layers and loss, so saved ``.keras`` models load with no extra code.
"""
from __future__ import annotations

from types import ModuleType

from spaces import cnn, combined, common, layers, lenet
from spaces.common import TrainingSettings, lr_callback, training_settings
from spaces.hp import ParamSpec, ValuesHyperParameters

__all__ = [
    "SPACES", "ParamSpec", "TrainingSettings", "ValuesHyperParameters", "cnn", "combined", "common",
    "describe_space", "get_space", "layers", "lenet", "lr_callback", "training_settings",
]

SPACES: dict[str, ModuleType] = {"cnn": cnn, "lenet": lenet, "all": combined}


def get_space(name: str) -> ModuleType:
    """The space module registered as ``name``."""
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown space {name!r}; choose from {', '.join(SPACES)}") from None


def describe_space(name: str) -> str:
    """Every parameter (range, default, condition) and the named points, as plain text."""
    module = get_space(name)
    hp = ValuesHyperParameters()
    module.declare(hp)
    lines = [f"space {name!r}: {len(hp.space)} parameters, at most {module.PARAM_CEILING:,} weights",
             *(f"  {spec.describe()}" for spec in hp.space.values()),
             f"named points ({len(module.POINTS)}, in enqueue order):"]
    for point, values in module.POINTS.items():
        lines.append(f"  {point}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return "\n".join(lines)
