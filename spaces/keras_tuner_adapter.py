"""Run the same space modules under KerasTuner's tuners (RandomSearch, Hyperband, Bayesian...).

The spaces only use the ``hp`` API, so ``build`` passes KerasTuner's own ``HyperParameters``
straight through; ``fit`` adds what the model cannot carry: the batch size and the learning-rate
schedule. KerasTuner is imported here only, so the rest of the package works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import keras_tuner

from spaces.common import lr_callback, training_settings

if TYPE_CHECKING:
    from spaces.space import Space


class SpaceHyperModel(keras_tuner.HyperModel):
    """A KerasTuner ``HyperModel`` backed by a space module (``spaces.cnn``, ``spaces.lenet``...)."""

    def __init__(self, space_module: Space, input_shape: tuple[int, int, int], n_classes: int, **kwargs: Any) -> None:
        super().__init__(name=kwargs.pop("name", space_module.NAME), **kwargs)
        self.space_module = space_module
        self.input_shape = tuple(input_shape)
        self.n_classes = int(n_classes)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return self.space_module.build(hp, self.input_shape, self.n_classes)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        """``model.fit`` with the trial's batch size and learning-rate schedule."""
        settings = training_settings(dict(hp.values))
        kwargs["batch_size"] = settings.batch_size
        callback = lr_callback(settings, int(kwargs.get("epochs", 1)))
        if callback is not None:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), callback]
        return model.fit(*args, **kwargs)
