"""Population training (search/engine/population.py, population_trials.py): JAX only, so the training
checks run in a JAX child (jax_population_checks.py) and the search in a JAX ``run_search.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from support.jax_child import run_jax_checks

from search.config import SearchConfig
from search.engine.kept_models import kept_models
from search.engine.population import FREE_PARAMS, resolve_population, shared_values
from search.engine.population_trials import population_size
from search.errors import UserError
from search.schema import TrialKey

ROOT = Path(__file__).resolve().parents[3]
CHILD = Path(__file__).with_name("jax_population_checks.py")


# Session scope: a module fixture is set up again whenever a worker's tests interleave with other
# modules'; run_jax_checks runs the child once per test run.
@pytest.fixture(scope="session")
def checks(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The child's answers (tests/search/engine/jax_population_checks.py)."""
    return run_jax_checks(CHILD, tiny_data, tmp_path_factory)


def test_each_member_trains_to_the_curve_of_its_solo_run(checks: dict) -> None:
    for member, solo in zip(checks["population"], checks["solo"], strict=True):
        assert member["epochs_run"] == solo["epochs_run"] == checks["epochs"]
        assert member["iterations"] == solo["iterations"] == checks["epochs"] * checks["steps"]
        # Its own cosine schedule: the member's learning rate, not the first member's.
        assert member["learning_rate"] == pytest.approx(solo["learning_rate"])
        # Same seed, same batches, same weight decay and smoothing: the curves agree to float noise
        # (the validation set has 172 images; a few of them may flip).
        assert member["val_loss_curve"] == pytest.approx(solo["val_loss_curve"], abs=0.02)
        assert member["val_curve"] == pytest.approx(solo["val_curve"], abs=0.03)
        assert member["compile_seconds"] > 0
    # The members really differ (their own rates, decays, smoothings and seeds).
    assert len({round(m["val_loss_curve"][-1], 3) for m in checks["population"]}) == len(checks["population"])


def test_members_seconds_are_shares_of_the_population_wall_time(checks: dict) -> None:
    # Summed trial seconds (the progress summary, the dashboard's cost panels) must count a population
    # once, not once per member: four members training together each carry a quarter of the time.
    seconds = [m["seconds"] for m in checks["population"]]
    assert seconds == pytest.approx([seconds[0]] * len(seconds))
    assert 0.5 * checks["population_wall"] < sum(seconds) <= checks["population_wall"]


def test_a_pruned_member_stops_and_the_others_go_on(checks: dict) -> None:
    first, pruned = checks["pruned"]
    assert pruned["stop_reason"] == "pruned" and pruned["epochs_run"] == 1
    assert pruned["iterations"] == checks["steps"]  # no step of it after it was pruned
    assert first["epochs_run"] == checks["epochs"] and first["stop_reason"] == "max_epochs"
    assert first["val_loss_curve"] == pytest.approx(checks["solo"][0]["val_loss_curve"], abs=0.02)
    assert pruned["seconds"] < first["seconds"]


def test_population_size_waits_for_enqueued_trials_and_the_target() -> None:
    assert population_size(4, remaining=10, waiting=0) == 4
    assert population_size(4, remaining=3, waiting=0) == 3
    assert population_size(4, remaining=10, waiting=1) == 1  # named points / requeued trials run as given
    assert population_size(1, remaining=10, waiting=0) == 1


def test_members_share_everything_but_the_free_settings() -> None:
    values = {"filters_0": 8, "learning_rate": 1e-3, "weight_decay": 1e-4, "label_smoothing": 0.1}
    other = {**values, **{name: 0.5 for name in FREE_PARAMS}}
    assert shared_values(values) == shared_values(other)
    assert shared_values(values) != shared_values({**values, "filters_0": 16})


def test_population_needs_jax_and_auto_is_one_elsewhere(tmp_path: Path) -> None:
    # This process runs the TensorFlow backend (tests/conftest.py).
    assert resolve_population(SearchConfig(data_dir=tmp_path, population=0)) == 1
    with pytest.raises(UserError, match="JAX backend"):
        resolve_population(SearchConfig(data_dir=tmp_path, population=2))
    with pytest.raises(UserError, match="--population"):
        SearchConfig(data_dir=tmp_path, population=-1)


def test_a_search_trains_populations_and_reports_each_member(tiny_data: Path, tmp_path: Path) -> None:
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_search.py"),
            "search",
            "--data-dir",
            str(tiny_data),
            "--space",
            "lenet",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--population",
            "2",
            "--no-named-points",
            "--pruner",
            "none",
            "--local-share",
            "0",
            "--out",
            str(tmp_path),
            "--study",
            "pop",
            "--no-retrain",
            "--dashboard-every",
            "0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "populations of 2 trials" in done.stdout
    study = optuna.load_study(study_name="pop", storage=f"sqlite:///{tmp_path / 'pop' / 'study.db'}")
    trials = [t for t in study.trials if t.state.is_finished()]
    assert len(trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    groups = {tuple(t.user_attrs[TrialKey.POPULATION]) for t in trials}
    assert groups == {(0, 1)}
    for a, b in groups:
        first, second = study.trials[a], study.trials[b]
        assert {k: v for k, v in first.params.items() if k not in FREE_PARAMS} == {
            k: v for k, v in second.params.items() if k not in FREE_PARAMS
        }
        assert first.params["learning_rate"] != second.params["learning_rate"]  # sampled per member
        for t in (first, second):
            assert len(t.user_attrs[TrialKey.VAL_CURVE]) == 1 and t.user_attrs[TrialKey.COMPILE_SECONDS] > 0
    # Population members keep their trained models like solo trials, scored as their trials were.
    kept = {k.trial_number: k for k in kept_models(tmp_path / "pop")}
    assert sorted(kept) == sorted(t.number for t in trials)
    assert all(abs(kept[t.number].val_accuracy - t.values[0]) < 1e-6 for t in trials)


def test_workers_sharing_a_gpu_get_an_equal_share_of_its_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from search.engine.workers import worker_env

    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    assert worker_env(0, n_gpus=1, workers=3)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.30"
    assert worker_env(1, n_gpus=2, workers=4)["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker_env(1, n_gpus=2, workers=4)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.45"
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in worker_env(0, n_gpus=2, workers=2)  # one per GPU
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in worker_env(0, n_gpus=0, workers=4)  # no GPU
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.2")
    assert worker_env(0, n_gpus=1, workers=3)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.2"  # the user's own
