"""``--precision``: what ``auto`` picks, and that the chosen dtype policy is the one every trial and
final model trains in (Keras' ``clear_session`` resets it to float32; ``fresh_session`` puts it back)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from cli.backend import start_backend
from search.config import SearchConfig
from search.engine import precision
from search.engine.events import SearchEvents
from search.engine.loop import run_search
from search.engine.precision import choose_precision, cpu_flags, resolve_precision
from search.engine.session import fresh_session
from search.final import retrain as retrain_module
from search.final import retrain_best
from search.schema import RunFile, StudyKey, TrialKey


@pytest.fixture(autouse=True)
def float32_afterwards() -> Iterator[None]:
    """A policy set here must not leak into later tests in this process (fresh_session keeps it now)."""
    yield
    keras.config.set_dtype_policy("float32")


def _machine(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], accelerator: Any = None, backend: str = "tensorflow"
) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    monkeypatch.setattr(precision, "accelerator_bfloat16", lambda: accelerator)
    monkeypatch.setattr(precision, "keras_backend", lambda: backend)


@pytest.mark.parametrize("flags", [{"avx512_bf16"}, {"amx_bf16", "amx_tile"}, {"avx512f", "avx512_bf16", "amx_bf16"}])
def test_auto_picks_bfloat16_on_a_cpu_with_bfloat16_units(monkeypatch: pytest.MonkeyPatch, flags: set[str]) -> None:
    _machine(monkeypatch, flags)
    assert resolve_precision("auto") == "mixed_bfloat16"
    assert choose_precision("auto").reason.startswith("CPU has ")


@pytest.mark.parametrize("flags", [set(), {"avx512f", "avx512_vnni", "avx2"}])
def test_auto_keeps_float32_on_a_cpu_without_them(monkeypatch: pytest.MonkeyPatch, flags: set[str]) -> None:
    _machine(monkeypatch, flags)
    assert resolve_precision("auto") == "float32"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_auto_keeps_float32_on_a_cpu_under_backends_not_measured_faster(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    _machine(monkeypatch, {"avx512_bf16"}, backend=backend)
    assert resolve_precision("auto") == "float32"


def test_a_gpu_decides_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, {"avx512_bf16"}, accelerator=("Tesla V100 (compute capability 7.0)", False))
    assert choose_precision("auto") == precision.Precision(
        "float32", "Tesla V100 (compute capability 7.0) has no bfloat16 units"
    )
    _machine(monkeypatch, set(), accelerator=("NVIDIA H100 (compute capability 9.0)", True))
    assert resolve_precision("auto") == "mixed_bfloat16"


def test_an_accelerator_that_cannot_be_asked_means_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("driver mismatch")

    _machine(monkeypatch, {"avx512_bf16"})
    monkeypatch.setattr(precision, "accelerator_bfloat16", broken)
    assert choose_precision("auto") == precision.Precision("float32", "could not ask the accelerator: RuntimeError")


def test_a_named_precision_is_kept_whatever_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, {"avx512_bf16"})
    assert resolve_precision("float32") == "float32"
    _machine(monkeypatch, set())
    assert [resolve_precision(p) for p in ("mixed_bfloat16", "mixed_float16")] == ["mixed_bfloat16", "mixed_float16"]


def test_cpu_flags_come_from_cpuinfo_and_are_empty_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    monkeypatch.setattr(precision, "CPUINFO", info)
    assert cpu_flags() == {"fpu", "avx2", "avx512f", "avx512_bf16"}
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "missing")
    assert cpu_flags() == set()


def test_start_backend_sets_the_resolved_policy_and_says_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, {"avx512_bf16"})
    lines: list[str] = []
    assert start_backend("auto", say=lines.append) == "mixed_bfloat16"
    assert lines == ["precision: auto -> mixed_bfloat16 (CPU has avx512_bf16)"]
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    start_backend("float32", say=lines.append)
    assert lines[-1] == "precision: float32" and keras.config.dtype_policy().name == "float32"


def test_fresh_session_keeps_the_policy_that_clear_session_resets() -> None:
    keras.config.set_dtype_policy("mixed_bfloat16")
    fresh_session()
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.layers.Conv2D(2, 3).compute_dtype == "bfloat16"
    keras.config.set_dtype_policy("float32")
    fresh_session()
    assert keras.config.dtype_policy().name == "float32"


def _conv_dtypes(model: keras.Model) -> list[str]:
    """The compute dtype of every convolution in ``model``, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _conv_dtypes(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            found.append(layer.compute_dtype)
    return found


class ConvDtypes(keras.callbacks.Callback):
    """Records the compute dtypes of the convolutions of the model that starts training."""

    def __init__(self, seen: list[list[str]]) -> None:
        super().__init__()
        self.seen = seen

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.seen.append(_conv_dtypes(self.model))


@pytest.mark.slow
def test_auto_trains_every_trial_and_final_model_in_bfloat16(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _machine(monkeypatch, {"avx512_bf16"})
    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=2,
        epochs=1,
        final_epochs=1,
        out=tmp_path,
        study="bf16",
        retrain=False,
        dashboard_every=0,
        final_candidates=1,
        export=(),
        steps_per_execution=1,
    )
    assert cfg.precision == "auto"
    start_backend(cfg.precision, say=lambda text: None)
    trial_dtypes: list[list[str]] = []
    events = SearchEvents(trial_callbacks=lambda trial: [ConvDtypes(trial_dtypes)])
    outcome = run_search(cfg, events=events)
    assert len(trial_dtypes) == 2  # the second trial trained after a fresh_session
    assert all(dtypes and set(dtypes) == {"bfloat16"} for dtypes in trial_dtypes), trial_dtypes
    trials = outcome.study.get_trials(deepcopy=False)
    assert [t.user_attrs[TrialKey.PRECISION] for t in trials] == ["mixed_bfloat16"] * 2
    assert outcome.study.user_attrs[StudyKey.CONFIG]["precision"] == "auto"  # resolved again on resume

    final_dtypes: list[list[str]] = []
    train_model = retrain_module.train_model

    def probed(model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        final_dtypes.append(_conv_dtypes(model))
        return train_model(model, *args, **kwargs)

    monkeypatch.setattr(retrain_module, "train_model", probed)
    retrain_best(outcome.study, outcome.dataset, cfg)
    assert final_dtypes and all(dtypes and set(dtypes) == {"bfloat16"} for dtypes in final_dtypes), final_dtypes
    keras.config.set_dtype_policy("float32")  # a saved model keeps the policy it was built with
    best = keras.saving.load_model(tmp_path / "bf16" / RunFile.BEST_MODEL, compile=False)
    assert set(_conv_dtypes(best)) == {"bfloat16"}


@pytest.mark.slow
def test_a_bfloat16_model_exports_in_float32_while_the_policy_is_mixed(tmp_path: Path) -> None:
    from search.final import export as export_module
    from search.final.runtimes import predict_with
    from spaces import ValuesHyperParameters, lenet

    keras.config.set_dtype_policy("mixed_bfloat16")
    fresh_session()
    keras.utils.set_random_seed(1)
    model = lenet.build(ValuesHyperParameters(dict(lenet.POINTS["tutorial"])), (32, 32, 3), 43)
    assert set(_conv_dtypes(model)) == {"bfloat16"}
    served = export_module.inference_model(model)
    assert set(_conv_dtypes(served)) == {"float32"}
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    expected = served.predict(images.astype("float32"), verbose=0)
    [artifact] = export_module.export_model(model, tmp_path, ["onnx"])
    assert np.abs(predict_with(artifact, images) - expected).max() < 1e-4
