"""Which spaces exist: each family alone and ``all`` by name, and a user's own module by path or import name.

A space meets ``space.Space``. A user's module needs only ``build(hp)`` written the KerasTuner way
(``build(hp, input_shape, n_classes)`` also works); it is completed here to a ``UserSpace`` with
defaults for the rest, and the model it returns is checked against the data and compiled if it is not.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import keras

from spaces import combined, common
from spaces.families import FAMILIES
from spaces.hp import ValuesHyperParameters
from spaces.space import Space, UserSpace

SPACES: dict[str, Space] = {**FAMILIES, combined.NAME: combined}


class SpaceError(ValueError):
    """A space that cannot be found or lacks what a space needs; the message is one line."""


def get_space(name: str) -> Space:
    """The built-in space ``name``, or the user's module at a ``.py`` path or import name."""
    if name in SPACES:
        return SPACES[name]
    if name.endswith(".py") or "/" in name:
        return _user_space(_import_file(Path(name)), name)
    if name.replace(".", "").replace("_", "").isalnum() and "." in name:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise SpaceError(f"space {name!r}: cannot import it ({exc})") from None
        return _user_space(module, name)
    raise SpaceError(
        f"unknown space {name!r}; choose from {', '.join(SPACES)}, or give a .py file or "
        "module.path that defines build(hp)"
    )


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise SpaceError(f"space {str(path)!r}: no such file")
    module_name = f"user_space_{abs(hash(str(path.resolve())))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SpaceError(f"space {str(path)!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any error in user code is reported, not raised through
        raise SpaceError(f"space {str(path)!r}: importing it failed ({type(exc).__name__}: {exc})") from None
    sys.modules[module_name] = module
    return module


def _user_space(module: ModuleType, name: str) -> UserSpace:
    """``module`` completed to a space (its own attributes where it has them)."""
    user_build = getattr(module, "build", None)
    if not callable(user_build):
        raise SpaceError(f"space {name!r}: defines no build(hp) function")
    try:
        n_args = len(inspect.signature(user_build).parameters)
    except (TypeError, ValueError):
        n_args = 1
    if n_args not in (1, 3):
        raise SpaceError(
            f"space {name!r}: build must take (hp) or (hp, input_shape, n_classes), it takes {n_args} arguments"
        )

    def build(hp: Any, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
        model = user_build(hp) if n_args == 1 else user_build(hp, input_shape, n_classes)
        return _checked(model, name, input_shape, n_classes, hp)

    def declare(hp: Any) -> dict[str, Any]:
        """Declares the space by building the default model once (user spaces have no ``declare``)."""
        user_build(hp) if n_args == 1 else user_build(hp, (32, 32, 3), 43)
        return {}

    own_name = str(getattr(module, "NAME", Path(name).stem if name.endswith(".py") else name))
    return UserSpace(
        NAME=own_name,
        build=build,
        declare=getattr(module, "declare", declare),
        family_of=getattr(module, "family_of", lambda values: own_name),
        POINTS=dict(getattr(module, "POINTS", {})),
        PARAM_CEILING=getattr(module, "PARAM_CEILING", None),
    )


def _checked(model: object, name: str, input_shape: tuple[int, ...], n_classes: int, hp: Any) -> keras.Model:
    """The user's model, refused when it cannot train on this data, compiled when it is not."""
    if not isinstance(model, keras.Model):
        raise SpaceError(f"space {name!r}: build(hp) returned {type(model).__name__}, not a keras.Model")
    want_in, got_in = tuple(input_shape), tuple(model.input_shape[1:])
    if got_in != want_in:
        raise SpaceError(f"space {name!r}: the model takes inputs of shape {got_in}, the data is {want_in}")
    got_out = model.output_shape[-1]
    if got_out != n_classes:
        raise SpaceError(f"space {name!r}: the model has {got_out} outputs, the data has {n_classes} classes")
    if not getattr(model, "compiled", False) or model.optimizer is None:
        values = dict(getattr(hp, "values", {}))
        settings = common.training_settings(values)
        model.compile(
            optimizer=keras.optimizers.Adam(settings.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


def describe_space(name: str) -> str:
    """Every parameter (range, default, condition) and the named points, as plain text."""
    module = get_space(name)
    hp = ValuesHyperParameters()
    module.declare(hp)
    ceiling = f"at most {module.PARAM_CEILING:,} weights" if module.PARAM_CEILING else "size not declared"
    lines = [
        f"space {name!r}: {len(hp.space)} parameters, {ceiling}",
        *(f"  {spec.describe()}" for spec in hp.space.values()),
        f"named points ({len(module.POINTS)}, in enqueue order):",
    ]
    for point, values in module.POINTS.items():
        lines.append(f"  {point}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return "\n".join(lines)
