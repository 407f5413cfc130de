"""The engine registry: ``--engine`` names an entry, ``train_model`` runs it with one set of arguments."""

from __future__ import annotations

import keras
import pytest

from search.engine import engines
from search.errors import UserError


def _probe(calls: list[dict]) -> engines.Train:
    def train(model, dataset, values, **kwargs):
        calls.append({"model": model, "values": values, **kwargs})
        return "trained"

    return train


def test_train_model_runs_the_engine_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setitem(engines.ENGINES, "probe", lambda: _probe(calls))
    result = engines.train_model(
        "model", "data", {"lr": 0.1}, epochs=3, patience=2, steps_per_execution=4, engine="probe"
    )
    assert result == "trained"
    assert calls == [
        {
            "model": "model",
            "values": {"lr": 0.1},
            "epochs": 3,
            "patience": 2,
            "deadline": None,
            "hooks": (),
            "steps_per_execution": 4,
            "verbose": 0,
        }
    ]


def test_an_engine_for_another_backend_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(engines.ENGINES, "probe", lambda: _probe([]))
    monkeypatch.setitem(engines.NEEDS_BACKEND, "probe", "nobackend")
    with pytest.raises(UserError, match=r"^--engine probe needs the NOBACKEND backend \(KERAS_BACKEND=nobackend\)"):
        engines.resolve_engine("probe")


def test_unknown_engines_are_refused_with_the_choices() -> None:
    with pytest.raises(UserError, match=r"^--engine: 'xla' is not one of auto, fit, compiled$"):
        engines.resolve_engine("xla")


def test_auto_is_fit_outside_jax() -> None:
    if keras.backend.backend() == "jax":
        pytest.skip("this process runs the JAX backend")
    assert engines.resolve_engine("auto") == "fit"
