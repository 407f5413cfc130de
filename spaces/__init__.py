"""Search spaces: model families written against the KerasTuner ``hp`` API.

Each space module exposes ``NAME``, ``build(hp, input_shape, n_classes)``, ``POINTS``,
``PARAM_CEILING``, ``family_of(values)`` and ``declare(hp)`` (``registry.py`` says which exist and
accepts a user's own module). Importing this package also registers the custom layers and loss, so
saved ``.keras`` models load with no extra code.
"""
from __future__ import annotations

from spaces import cnn, combined, common, layers, lenet
from spaces.common import TrainingSettings, lr_callback, training_settings
from spaces.hp import ParamSpec, ValuesHyperParameters
from spaces.registry import SPACES, SpaceError, describe_space, get_space

__all__ = [
    "SPACES", "ParamSpec", "SpaceError", "TrainingSettings", "ValuesHyperParameters", "cnn", "combined",
    "common", "describe_space", "get_space", "layers", "lenet", "lr_callback", "training_settings",
]
