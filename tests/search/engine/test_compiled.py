"""The compiled training engine (search/engine/compiled.py): JAX only, so its checks run in a JAX child."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from support.jax_child import run_jax_checks

from search.config import SearchConfig
from search.engine.engines import resolve_engine, train_model
from search.errors import UserError
from spaces.common import cosine_lr

CHILD = Path(__file__).with_name("jax_compiled_checks.py")


# Session scope: a module fixture is set up again whenever a worker's tests interleave with other
# modules'; run_jax_checks runs the child once per test run.
@pytest.fixture(scope="session")
def checks(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The child's answers (tests/search/engine/jax_compiled_checks.py)."""
    return run_jax_checks(CHILD, tiny_data, tmp_path_factory)


def test_compiled_learns_like_fit_and_keeps_the_contract(checks: dict) -> None:
    fit, compiled, epochs = checks["fit"], checks["compiled"], checks["epochs"]
    for r in (fit, compiled):
        assert len(r["val_curve"]) == len(r["train_curve"]) == len(r["val_loss_curve"]) == r["epochs_run"] == epochs
        assert r["stop_reason"] == "max_epochs"
        assert max(r["val_curve"]) > 2 * checks["majority"]  # both learn (the last epoch is zeroed on purpose)
    assert abs(max(fit["val_curve"]) - max(compiled["val_curve"])) <= 0.1
    assert compiled["iterations"] == epochs * checks["steps"]
    assert compiled["compile_seconds"] > 0
    # The cosine schedule set the same rate as under fit: the last epoch's.
    last_lr = cosine_lr(checks["base_lr"], epochs - 1, epochs)
    assert compiled["learning_rate"] == pytest.approx(fit["learning_rate"]) == pytest.approx(last_lr)


def test_loop_form_trains_like_the_unrolled_form(checks: dict) -> None:
    loop, unrolled = checks["loop"], checks["compiled"]
    assert loop["iterations"] == checks["steps"] and loop["stop_reason"] == "max_epochs"  # the partial chunk ran
    assert loop["val_curve"][0] == pytest.approx(unrolled["val_curve"][0], abs=0.03)
    assert loop["train_curve"][0] == pytest.approx(unrolled["train_curve"][0], abs=0.03)


def test_compiled_restores_the_best_epoch_and_carries_batch_norm_state(checks: dict) -> None:
    compiled, evaluated = checks["compiled"], checks["evaluate"]
    best = compiled["best_epoch"]
    assert best < compiled["epochs_run"]  # the zeroed last epoch is not the best
    assert evaluated["accuracy"] == pytest.approx(compiled["val_curve"][best - 1], abs=1e-6)
    assert evaluated["loss"] == pytest.approx(compiled["val_loss_curve"][best - 1], rel=1e-4)
    assert checks["moving_mean_change"] > 1e-3


def test_compiled_stops_for_the_time_cap_a_hook_and_nan(checks: dict) -> None:
    capped = checks["time_cap"]
    assert capped["stop_reason"] == "time_cap" and capped["epochs_run"] == 1
    assert capped["iterations"] == 2  # one chunk of two steps
    pruned = checks["pruned"]
    assert pruned["stop_reason"] == "pruned" and pruned["epochs_run"] == 1
    assert pruned["iterations"] == checks["steps"]
    nan = checks["nan"]
    assert nan["stop_reason"] == "nan" and nan["epochs_run"] == 1 and nan["iterations"] < checks["steps"]


def test_compiled_engine_needs_jax() -> None:
    if keras.backend.backend() == "jax":
        pytest.skip("this process runs the JAX backend")
    assert resolve_engine("auto") == resolve_engine("fit") == "fit"
    with pytest.raises(UserError, match="needs the JAX backend"):
        resolve_engine("compiled")
    with pytest.raises(UserError, match="needs the JAX backend"):
        train_model(None, None, {}, epochs=1, patience=1, engine="compiled")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="--engine"):
        SearchConfig(data_dir=Path("."), engine="xla")


def test_a_search_asking_for_the_compiled_engine_under_tensorflow_stops_before_any_trial(
    tiny_data: Path, tmp_path: Path
) -> None:
    import optuna

    from search.engine.loop import run_search

    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=1,
        epochs=1,
        out=tmp_path,
        study="eng",
        retrain=False,
        dashboard_every=0,
        engine="compiled",
    )
    with pytest.raises(UserError, match="needs the JAX backend"):
        run_search(cfg)
    assert "eng" not in optuna.study.get_all_study_names(cfg.storage_url)  # nothing was started
