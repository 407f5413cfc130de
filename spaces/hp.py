"""A KerasTuner-compatible ``hp`` that answers from a dict of values and records the space.

The spaces are written against the KerasTuner ``HyperParameters`` API (``hp.Int``, ``hp.Float``,
``hp.Choice``, ``hp.Boolean``, ``hp.Fixed``, ``hp.conditional_scope``, ``hp.name_scope``).
This class implements that API without importing KerasTuner so that a named point, a stored best
configuration or the defaults can rebuild a model anywhere, and so that ``run_search.py spaces``
can list every parameter. The Optuna adapter in ``search/`` subclasses it and only overrides
``_resolve`` (where a value comes from).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Value = int | float | str | bool


@dataclass(frozen=True)
class ParamSpec:
    """One declared hyperparameter: enough to list it, sample it or check a value against it."""

    name: str
    kind: str  # "int" | "float" | "choice" | "boolean" | "fixed"
    default: Value
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None
    sampling: str = "linear"
    values: tuple[Value, ...] = ()
    conditions: tuple[tuple[str, tuple[Value, ...]], ...] = field(default=())

    def describe(self) -> str:
        """A one-line human description of the range."""
        if self.kind in ("choice", "boolean"):
            rng = "{" + ", ".join(map(str, self.values)) + "}"
        elif self.kind == "fixed":
            rng = f"fixed {self.default}"
        else:
            rng = f"[{self.min_value}, {self.max_value}]"
            if self.step:
                rng += f" step {self.step}"
            if self.sampling != "linear":
                rng += f" {self.sampling}"
        when = " and ".join(f"{p} in {list(v)}" for p, v in self.conditions)
        return f"{self.name}: {self.kind} {rng} default={self.default}" + (f"  (if {when})" if when else "")

    def grid(self) -> tuple[Value, ...] | None:
        """Enumerated values for a log-scaled numeric parameter with a multiplicative step."""
        if self.kind not in ("int", "float") or self.sampling != "log" or not self.step:
            return None
        out: list[Value] = []
        v = float(self.min_value)  # type: ignore[arg-type]
        while v <= float(self.max_value) * (1 + 1e-9):  # type: ignore[arg-type]
            out.append(int(round(v)) if self.kind == "int" else v)
            v *= float(self.step)
        return tuple(out)


class ValuesHyperParameters:
    """``hp`` that returns ``values[name]`` when given, else the declared default.

    Inactive parameters (inside a ``conditional_scope`` whose parent value does not match) return
    ``None`` and are not recorded in ``values``, exactly as in KerasTuner.
    """

    def __init__(self, values: dict[str, Value] | None = None) -> None:
        self.given: dict[str, Value] = dict(values or {})
        self.values: dict[str, Value] = {}
        self.space: dict[str, ParamSpec] = {}
        self._conditions: list[tuple[str, tuple[Value, ...]]] = []
        self._scopes: list[str] = []

    # -- where a value comes from (overridden by the Optuna adapter) ---------------------------
    def _resolve(self, spec: ParamSpec) -> Value:
        return self.given.get(spec.name, spec.default)

    # -- scopes ---------------------------------------------------------------------------------
    def _full_name(self, name: str) -> str:
        return "/".join([*self._scopes, name])

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        full = self._full_name(parent_name)
        if full not in self.space:
            raise ValueError(f"conditional_scope parent {full!r} must be declared before use")
        vals = tuple(parent_values) if isinstance(parent_values, (list, tuple)) else (parent_values,)
        self._conditions.append((full, vals))
        try:
            yield
        finally:
            self._conditions.pop()

    def _active(self) -> bool:
        return all(parent in self.values and self.values[parent] in vals for parent, vals in self._conditions)

    def is_active(self, name: str) -> bool:
        return name in self.values

    # -- declaration ------------------------------------------------------------------------------
    def _declare(self, spec: ParamSpec) -> Value | None:
        known = self.space.get(spec.name)
        if known is None:
            self.space[spec.name] = spec
        elif (
            known.kind != spec.kind
            or known.values != spec.values
            or (known.min_value, known.max_value) != (spec.min_value, spec.max_value)
        ):
            raise ValueError(f"hyperparameter {spec.name!r} declared twice with different ranges")
        if not self._active():
            return None
        if spec.name not in self.values:
            self.values[spec.name] = self._resolve(spec)
        return self.values[spec.name]

    def _spec(self, name: str, kind: str, default: Value, **kw: Any) -> ParamSpec:
        return ParamSpec(
            name=self._full_name(name), kind=kind, default=default, conditions=tuple(self._conditions), **kw
        )

    def Int(
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        **_: Any,
    ) -> int | None:
        if min_value > max_value:
            raise ValueError(f"hp.Int {name!r}: min_value {min_value} > max_value {max_value}")
        default = min_value if default is None else default
        spec = self._spec(
            name, "int", int(default), min_value=int(min_value), max_value=int(max_value), step=step, sampling=sampling
        )
        value = self._declare(spec)
        return None if value is None else int(value)

    def Float(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        **_: Any,
    ) -> float | None:
        if min_value > max_value:
            raise ValueError(f"hp.Float {name!r}: min_value {min_value} > max_value {max_value}")
        if sampling == "log" and min_value <= 0:
            raise ValueError(f"hp.Float {name!r}: log sampling needs min_value > 0, got {min_value}")
        default = min_value if default is None else default
        spec = self._spec(
            name,
            "float",
            float(default),
            min_value=float(min_value),
            max_value=float(max_value),
            step=step,
            sampling=sampling,
        )
        value = self._declare(spec)
        return None if value is None else float(value)

    def Choice(
        self, name: str, values: Sequence[Value], ordered: bool | None = None, default: Value | None = None, **_: Any
    ) -> Any:
        if not values:
            raise ValueError(f"hp.Choice {name!r}: values must not be empty")
        default = values[0] if default is None else default
        if default not in values:
            raise ValueError(f"hp.Choice {name!r}: default {default!r} is not one of {list(values)}")
        return self._declare(self._spec(name, "choice", default, values=tuple(values)))

    def Boolean(self, name: str, default: bool = False, **_: Any) -> bool | None:
        value = self._declare(self._spec(name, "boolean", bool(default), values=(False, True)))
        return None if value is None else bool(value)

    def Fixed(self, name: str, value: Value, **_: Any) -> Any:
        return self._declare(self._spec(name, "fixed", value, values=(value,)))

    # -- reading ---------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in self.space:
            raise ValueError(f"hyperparameter {name!r} is currently inactive")
        raise KeyError(f"hyperparameter {name!r} does not exist")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.values
