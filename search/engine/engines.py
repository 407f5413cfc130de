"""Training engines by name: ``--engine`` chooses one, ``train_model`` runs a model through it.

``fit`` is Keras' own ``model.fit`` on every backend (``trainer.py``); ``compiled`` keeps the data on
the device and runs compiled chunks of steps, JAX only (``compiled.py``). Both honour the same
contract: settings from the configuration's values, the same stop reasons, curves and best weights
restored. ``auto`` is ``compiled`` only where JAX sees a GPU or TPU. Keras and the engines are imported
inside the factories, so the settings (and ``--help``) can list the names without paying for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import UserError

if TYPE_CHECKING:
    import keras

    from ..data import Dataset
    from .trainer import TrainClock, TrainResult

AUTO = "auto"
# Whether ``auto`` picks the compiled engine on a CPU-only JAX install. Measured on 2 CPU cores
# (benchmarks/compiled_engine.py, 10k real images): 2.0x faster than fit per epoch for cnn:strong but
# 0.85x for lenet:tutorial, and it compiles longer; not faster for every model, so CPUs keep fit.
AUTO_ON_CPU = False


class Train(Protocol):
    """One engine's training run of a built model."""

    def __call__(
        self,
        model: keras.Model,
        dataset: Dataset,
        values: dict,
        *,
        epochs: int,
        patience: int,
        deadline: float | TrainClock | None = None,
        hooks: Sequence[keras.callbacks.Callback] = (),
        steps_per_execution: int = 1,
        verbose: int = 0,
    ) -> TrainResult: ...


def _fit() -> Train:
    from .trainer import fit_model

    return fit_model


def _compiled() -> Train:
    from .compiled import train_model_compiled

    def train(
        model: keras.Model, dataset: Dataset, values: dict, *, steps_per_execution: int = 1, **kwargs
    ) -> TrainResult:
        # its compiled chunks of steps take the place of steps_per_execution
        return train_model_compiled(model, dataset, values, **kwargs)

    return train


ENGINES: dict[str, Callable[[], Train]] = {"fit": _fit, "compiled": _compiled}
CHOICES = (AUTO, *ENGINES)  # what --engine accepts
NEEDS_BACKEND = {"compiled": "jax"}  # engines that run under one Keras backend only


def resolve_engine(name: str) -> str:
    """The engine ``--engine name`` runs under the current Keras backend: ``auto`` decided, and an
    engine the backend cannot run refused in one line before any trial."""
    import keras

    if name != AUTO and name not in ENGINES:
        raise UserError(f"--engine: {name!r} is not one of {', '.join((AUTO, *ENGINES))}")
    backend = keras.backend.backend()
    if name == AUTO:
        return "compiled" if backend == "jax" and (AUTO_ON_CPU or _jax_accelerator()) else "fit"
    needed = NEEDS_BACKEND.get(name)
    if needed is not None and backend != needed:
        raise UserError(
            f"--engine {name} needs the {needed.upper()} backend (KERAS_BACKEND={needed}); this run uses {backend}"
        )
    return name


def _jax_accelerator() -> bool:
    import jax

    return jax.devices()[0].platform != "cpu"


def train_model(
    model: keras.Model,
    dataset: Dataset,
    values: dict,
    *,
    epochs: int,
    patience: int,
    deadline: float | TrainClock | None = None,
    hooks: Sequence[keras.callbacks.Callback] = (),
    steps_per_execution: int = 1,
    verbose: int = 0,
    engine: str = "fit",
) -> TrainResult:
    """Train ``model`` on ``dataset`` with the settings in ``values`` through ``engine``.

    ``deadline`` (``time.monotonic()``) stops training mid-epoch; a ``TrainClock`` may be moved by
    the hooks while training runs. The cosine schedule anneals by the deadline when it binds.
    """
    train = ENGINES[resolve_engine(engine)]()
    return train(
        model,
        dataset,
        values,
        epochs=epochs,
        patience=patience,
        deadline=deadline,
        hooks=hooks,
        steps_per_execution=steps_per_execution,
        verbose=verbose,
    )
