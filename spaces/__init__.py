"""Search spaces: model families written against the KerasTuner ``hp`` API.

Each space meets ``space.Space``: ``NAME``, ``build(hp, input_shape, n_classes)``, ``POINTS``,
``PARAM_CEILING``, ``family_of(values)`` and ``declare(hp)``. ``families.py`` registers the model
families, ``registry.py`` says which spaces exist and completes a user's own module. Importing this
package also registers the custom layers and loss, so saved ``.keras`` models load with no extra code.
"""

from __future__ import annotations

from spaces import cnn, combined, common, layers, lenet
from spaces.common import TrainingSettings, lr_callback, training_settings
from spaces.families import FAMILIES
from spaces.hp import ParamSpec, ValuesHyperParameters
from spaces.registry import SPACES, SpaceError, describe_space, get_space
from spaces.space import Space, UserSpace

__all__ = [
    "FAMILIES",
    "SPACES",
    "ParamSpec",
    "Space",
    "SpaceError",
    "TrainingSettings",
    "UserSpace",
    "ValuesHyperParameters",
    "cnn",
    "combined",
    "common",
    "describe_space",
    "get_space",
    "layers",
    "lenet",
    "lr_callback",
    "training_settings",
]
