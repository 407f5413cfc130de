"""What a search space is: the one contract the search reads of it.

The built-in family modules (``cnn.py``, ``lenet.py``) and ``all`` (``combined.py``) meet it as
modules; a user's module, which needs only ``build(hp)``, is completed to a ``UserSpace`` by
``registry.py``. The search, the final stage and the benchmarks see only ``Space``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras

Build = Callable[[Any, tuple[int, int, int], int], keras.Model]


class Space(Protocol):
    """A family of models written against the KerasTuner ``hp`` API."""

    NAME: str
    POINTS: dict[str, dict[str, Any]]  # named configurations, run first, in this order
    PARAM_CEILING: int | None  # the most weights a model of the space can have (None: not declared)

    def build(self, hp: Any, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
        """The compiled model for ``hp``'s values."""
        ...

    def declare(self, hp: Any) -> dict[str, Any]:
        """Declare every parameter on ``hp`` without building a model."""
        ...

    def family_of(self, values: dict[str, Any]) -> str:
        """The family a configuration belongs to (the space's name for a one-family space)."""
        ...


@dataclass(frozen=True)
class UserSpace:
    """A user's module completed to a ``Space``: its own attributes where it has them."""

    NAME: str
    build: Build
    declare: Callable[[Any], dict[str, Any]]
    family_of: Callable[[dict[str, Any]], str]
    POINTS: dict[str, dict[str, Any]] = field(default_factory=dict)
    PARAM_CEILING: int | None = None
