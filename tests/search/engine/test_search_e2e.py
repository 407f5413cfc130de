"""End-to-end searches on tiny synthetic data: files, resume, pruning, failures, interruptions."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from support.study_db import finished_count

import spaces
from search.config import SearchConfig
from search.engine.hp_adapter import OptunaHyperParameters
from search.engine.loop import run_search
from search.progress import Progress
from search.sampling import make_sampler
from search.schema import FINISHED

ROOT = Path(__file__).resolve().parents[3]
RUN = [sys.executable, str(ROOT / "run_search.py")]


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    # A hang guard, not a speed check: the three-trial job took 60-100 s on AVX-512 hosts and more
    # than 300 s on an AVX2-only host under a parallel test run.
    return subprocess.run([*RUN, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def _study(out: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / name / 'study.db'}")


def _states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def test_three_trial_search_writes_everything_and_resumes(tiny_data: Path, tmp_path: Path) -> None:
    args = [
        "search",
        "--data-dir",
        str(tiny_data),
        "--space",
        "all",
        "--trials",
        "3",
        "--epochs",
        "1",
        "--final-epochs",
        "1",
        "--out",
        str(tmp_path),
        "--study",
        "e2e",
        "--final-candidates",
        "2",
        "--precision",
        "float32",
    ]  # exports run in float32: compared with a float32 model, the same classes
    first = _cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    run = tmp_path / "e2e"
    for name in (
        "study.db",
        "best_model.keras",
        "best_config.json",
        "test_report.json",
        "best_model.onnx",
        "best_model.tflite",
        "export_report.json",
        "sanity_report.json",
        "data_overview.npz",
        "misclassified.npz",
    ):
        assert (run / name).exists(), name
    config = json.loads((run / "best_config.json").read_text())
    for key in (
        "family",
        "hyperparameters",
        "val_accuracy",
        "test_accuracy",
        "study",
        "command",
        "trial_number",
        "params",
    ):
        assert key in config, key
    assert config["family"] in ("cnn", "lenet") and config["study"] == "e2e"
    assert "run_search.py search" in config["command"]
    report = json.loads((run / "test_report.json").read_text())
    assert 0.0 <= report["test_accuracy"] <= 1.0 and report["n_test"] == 172
    assert len(report["per_class"]) == 43 and len(report["confusion_matrix"]) == 43
    assert sum(map(sum, report["confusion_matrix"])) == 172
    assert {"name", "accuracy", "f1", "support"} <= set(report["per_class"][0])
    lo, hi = report["accuracy_ci95"]
    assert lo <= report["test_accuracy"] <= hi and 0.0 <= report["ece"] <= 1.0
    assert report["speed"]["latency_ms_batch1"] > 0 and report["size_bytes"] > 0
    names = [o["name"] for o in config["final_options"]]
    assert names[:2] == ["single", "single + TTA"] and config["final_model"]["name"] in names
    # The pool: the search's kept models (one per completed trial here), two retrains and the best one
    # trained further (no budget: one run); the final model's members are saved one by one.
    assert config["pool"] == {"kept": 3, "retrained": 2, "further": 1}
    assert [m["trial_number"] for m in config["members"]] == config["final_model"]["members"]
    assert {m["file"] for m in config["members"]} == {p.name for p in (run / "final_members").iterdir()}
    assert len(config["final_model"]["val_class_accuracy"]) == 43
    assert len(list((run / "models").glob("trial-*.keras"))) == 3
    exported = json.loads((run / "export_report.json").read_text())["artifacts"]
    assert {a["format"] for a in exported.values()} == {"onnx", "tflite"}
    assert all(a["agreement_with_keras"] == 1.0 for a in exported.values())  # float32: the same classes
    assert "trial" in first.stdout and "Search summary" in first.stdout and "test accuracy" in first.stdout
    study = _study(tmp_path, "e2e")
    named = list(spaces.get_space("all").POINTS)
    points = [t.user_attrs.get("point") for t in study.trials[:3]]
    assert points == named[:3]  # the named points run first
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    assert len(finished) == 3
    for t in finished:
        assert {"epochs", "seconds", "params", "best_epoch", "val_curve", "family"} <= set(t.user_attrs)
    # The named points that did not fit into --trials stay queued for the next run.
    waiting = [t.user_attrs.get("point") for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
    assert waiting == named[3:]

    second = _cli(*args, "--no-retrain")
    assert second.returncode == 0, second.stderr[-2000:]
    again = _study(tmp_path, "e2e").get_trials(deepcopy=False, states=FINISHED)
    assert len(again) == 6
    assert set(named) <= {t.user_attrs.get("point") for t in again}  # the resume ran the queued named points


def _config(data: Path, out: Path, **kw: object) -> SearchConfig:
    base = dict(
        data_dir=data,
        space="all",
        trials=2,
        epochs=2,
        out=out,
        study="api",
        retrain=False,
        dashboard_every=0,
        steps_per_execution=1,
    )
    base.update(kw)
    return SearchConfig(**base)  # type: ignore[arg-type]


def test_deterministic_pruner_prunes_sampled_trials_not_anchors(tiny_data: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_data, tmp_path, space="lenet", trials=3, epochs=1)
    outcome = run_search(cfg, pruner=optuna.pruners.ThresholdPruner(lower=2.0), events=Progress(3).events())
    trials = outcome.study.get_trials(deepcopy=False)
    anchors, sampled = trials[:2], trials[2]
    assert [t.user_attrs.get("point") for t in anchors] == ["tutorial", "modern"]
    assert all(t.state == TrialState.COMPLETE for t in anchors)  # named points always finish
    assert sampled.state == TrialState.PRUNED and "point" not in sampled.user_attrs
    assert sampled.user_attrs["stop_reason"] == "pruned" and sampled.user_attrs["epochs"] == 1
    assert sampled.intermediate_values.keys() == {1}
    from search.formatting import format_duration
    from search.progress import summary_table

    assert f"of which pruned trials 1: {format_duration(sampled.user_attrs['seconds'])}" in summary_table(trials)


def test_every_second_sampled_trial_is_a_neighbour_of_the_best(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = _config(tiny_data, tmp_path, space="lenet", trials=4, epochs=1, pruner="none")
    outcome = run_search(cfg, events=Progress(4).events())
    trials = outcome.study.get_trials(deepcopy=False)
    assert [t.user_attrs.get("point") for t in trials[:2]] == ["tutorial", "modern"]
    assert "near" not in trials[2].user_attrs  # the first sampled trial is the sampler's own
    local = trials[3]
    start = trials[local.user_attrs["near"]]
    assert start.value == max(t.value for t in trials[:3])
    changed = {k for k in set(local.params) & set(start.params) if local.params[k] != start.params[k]}
    assert 1 <= len(changed) <= 2, (local.params, start.params)
    assert f"[near #{start.number}]" in capsys.readouterr().out
    from search.progress import summary_table

    assert "local search: 1 neighbours of the best trial tried" in summary_table(trials)


def _nan_space() -> types.ModuleType:
    """A space whose 'nan' point trains into NaN losses and whose 'ok' point trains normally."""
    module = types.ModuleType("nan_space")

    def build(hp, input_shape, n_classes):
        mode = hp.Choice("mode", ["nan", "ok"])
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255.0)(inputs))
        if mode == "nan":
            x = keras.layers.Rescaling(float("nan"))(x)
        model = keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    module.NAME = "nan_space"
    module.build = build
    module.POINTS = {"nan": {"mode": "nan"}, "ok": {"mode": "ok"}}
    module.family_of = lambda values: "nan_space"
    return module


def test_nan_trial_fails_and_search_continues(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(spaces.SPACES, "nan_space", _nan_space())
    cfg = _config(tiny_data, tmp_path, space="nan_space", trials=1, pruner="none")
    outcome = run_search(cfg, events=Progress(1).events())
    first, second = outcome.study.get_trials(deepcopy=False)[:2]
    assert first.state == TrialState.FAIL and "NaN" in first.user_attrs["fail_reason"]
    assert first.user_attrs["stop_reason"] == "nan" and first.user_attrs["epochs"] == 1
    assert second.state == TrialState.COMPLETE


def _blind_space() -> types.ModuleType:
    """A space whose only model sees blank images, so it cannot beat chance (a sampled trial)."""
    module = types.ModuleType("blind_space")

    def build(hp, input_shape, n_classes):
        hp.Choice("width", [8])
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten()(keras.layers.Rescaling(0.0)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    module.NAME = "blind_space"
    module.build = build
    module.POINTS = {}
    module.family_of = lambda values: "blind_space"
    return module


def test_trial_that_learns_nothing_stops_after_two_epochs(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(spaces.SPACES, "blind_space", _blind_space())
    cfg = _config(tiny_data, tmp_path, space="blind_space", trials=1, epochs=5, pruner="none")
    trial = run_search(cfg, events=Progress(1).events()).study.get_trials(deepcopy=False)[0]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["stop_reason"] == "no_learning" and trial.user_attrs["epochs"] == 2


def test_stall_rule_spares_early_epochs_the_last_epoch_and_learning_models() -> None:
    from search.engine.objective import majority_share, stalled

    chance = majority_share(np.array([0, 0, 1, 2]))
    assert chance == 0.5
    assert stalled(2, 0.7, chance, max_epochs=10) and stalled(2, float("nan"), chance, max_epochs=10)
    assert not stalled(1, 0.0, chance, max_epochs=10)  # one epoch is too early to judge
    assert not stalled(10, 0.0, chance, max_epochs=10)  # nothing left to save at the last epoch
    assert not stalled(2, 0.8, chance, max_epochs=10)


def test_multi_objective_gives_pareto_values_without_pruning(tiny_data: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_data, tmp_path, space="lenet", trials=1, epochs=1, objectives=("accuracy", "params"))
    outcome = run_search(cfg, events=Progress(1).events())
    trial = outcome.study.get_trials(deepcopy=False)[0]
    assert len(outcome.study.directions) == 2 and isinstance(outcome.study.pruner, optuna.pruners.NopPruner)
    assert trial.values[1] == trial.user_attrs["params"] == 657_235


def test_latency_objective_is_measured_seconds_per_image(tiny_data: Path, tmp_path: Path) -> None:
    from search.engine.latency import latency_per_image
    from search.schema import StudyKey, TrialKey

    cfg = _config(
        tiny_data, tmp_path, space="lenet", trials=1, epochs=1, objectives=("accuracy", "latency"), study="lat"
    )
    outcome = run_search(cfg)
    trial = outcome.study.get_trials(deepcopy=False)[0]
    assert outcome.study.user_attrs[StudyKey.OBJECTIVES] == ["val_accuracy", "latency_s"]
    assert trial.values[1] == trial.user_attrs[TrialKey.LATENCY]
    assert 1e-5 < trial.values[1] < 1.0  # a LeNet on one 32x32 image: well under a second on any CPU

    class Slow:  # a "model" that takes 20 ms: the measurement is a median of real calls
        def __call__(self, x, training=False):
            import time

            time.sleep(0.02)
            return x

    assert 0.02 <= latency_per_image(Slow(), np.zeros((4, 32, 32, 3), "float32"), repeats=5) < 0.1


def _first_sampled_params(seed: int, n: int = 3) -> list[dict]:
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", seed))
    out = []
    for i in range(n):
        trial = study.ask()
        hp = OptunaHyperParameters(trial)
        spaces.get_space("all").build(hp, (32, 32, 3), 43)
        keras.backend.clear_session()
        study.tell(trial, 0.1 * i)
        out.append(dict(trial.params))
    return out


def test_same_seed_same_first_parameter_sets() -> None:
    a, b, c = _first_sampled_params(11), _first_sampled_params(11), _first_sampled_params(12)
    assert a == b
    assert a != c


def _wait_for(predicate, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


def _finished(out: Path, name: str) -> int:
    return finished_count(out / name / "study.db")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_search_resumes_with_completed_trials_intact(
    tiny_data: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    args = [
        "search",
        "--data-dir",
        str(tiny_data),
        "--space",
        "lenet",
        "--trials",
        "20",
        "--epochs",
        "3",
        "--pruner",
        "none",
        "--out",
        str(tmp_path),
        "--study",
        "intr",
        "--no-retrain",
        "--heartbeat",
        "1",
    ]
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([*RUN, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        _wait_for(lambda: _finished(tmp_path, "intr") >= 1)
        time.sleep(1.0)  # let the next trial start
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {
        t.number: (t.state, t.values) for t in _study(tmp_path, "intr").get_trials(deepcopy=False, states=FINISHED)
    }
    assert before
    stderr = log.read_text()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "resume with" in stderr and "Traceback" not in stderr
        assert not any(t.state == TrialState.RUNNING for t in _study(tmp_path, "intr").trials)
    target = len(before) + 1
    resumed = _cli(*[a if a != "20" else str(target) for a in args])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = _study(tmp_path, "intr")
    for number, (state, values) in before.items():
        assert (after.trials[number].state, after.trials[number].values) == (state, values)
    assert not any(t.state == TrialState.RUNNING for t in after.trials)
    assert _finished(tmp_path, "intr") > len(before)


@pytest.mark.parametrize(
    "args, message",
    [
        # A space name is checked once the data is (the data needs no backend, a space does).
        (["search", "--data-dir", "TINY", "--space", "resnet"], "invalid choice"),
        (["search", "--data-dir", ".", "--sampler", "magic"], "invalid choice"),
        (["search", "--data-dir", ".", "--trials", "-3"], "positive integer"),
        (["search", "--data-dir", "/nonexistent/data"], "does not exist"),
        (["export", "--study", "nope", "--out", "/tmp/definitely-not-here"], "no study 'nope'"),
        (["search", "--data-dir", "TINY", "--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot open storage"),
        (["search", "--data-dir", "TINY", "--storage", "nosuchdb://x"], "cannot open storage"),
    ],
)
def test_bad_arguments_one_line_exit_2(tiny_data: Path, tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tiny_data) if a == "TINY" else a for a in args]
    if args[0] == "search":
        args += ["--out", str(tmp_path)]
    result = _cli(*args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_export_prints_best_configuration(tiny_data: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_data, tmp_path, space="lenet", trials=1, epochs=1, study="exp")
    run_search(cfg, events=Progress(1).events())
    result = _cli("export", "--study", "exp", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["family"] == "lenet"
    listing = _cli("studies", "--out", str(tmp_path), timeout=120)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    header = rows[0]
    exp = [row for row in rows if row and row[0] == "exp"]  # the row of study "exp", not a path containing it
    assert len(exp) == 1 and dict(zip(header, exp[0]))["space"] == "lenet"
    assert dict(zip(header, exp[0]))["complete"] == "1"


def test_uint8_labels_and_images_stay_uint8(tiny_data: Path, tmp_path: Path) -> None:
    import pickle
    import shutil

    from search.data import load_dataset

    for name in ("train.p", "valid.p", "test.p"):
        shutil.copy(tiny_data / name, tmp_path / name)
    with open(tiny_data / "train.p", "rb") as fh:
        train = pickle.load(fh)
    labels = np.asarray(train["labels"])
    with open(tmp_path / "train.p", "wb") as fh:  # labels stored as uint8, as some conversions write them
        pickle.dump({**train, "labels": labels.astype(np.uint8)}, fh)
    ds = load_dataset(tmp_path)
    assert ds.train.features.dtype == np.uint8  # the model casts; memory stays at one byte a pixel
    assert ds.train.labels.dtype == np.int32 and np.array_equal(ds.train.labels, labels)  # read, not wrapped
