"""Best-config export and the studies table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
import results_fakes as fk

from results import best_config, format_config, studies_table
from search.schema import best_trial


def test_best_config_from_best_trial(tmp_path: Path) -> None:
    study = fk.full_study()
    cfg = best_config(study, tmp_path)  # no best_config.json there
    best = best_trial(study)
    assert cfg["trial_number"] == best.number and cfg["val_accuracy"] == pytest.approx(best.values[0])
    assert cfg["hyperparameters"] == best.params and cfg["family"] == best.params["family"]
    assert cfg["space"] == "all" and cfg["test_accuracy"] is None and cfg["study"] == "demo"
    assert cfg["params"] == best.user_attrs["params"] and cfg["epochs"] == 10
    assert cfg["val_accuracy"] == max(t.values[0] for t in study.trials if t.values)


def test_a_continuations_epochs_count_from_the_start_of_its_weights_training() -> None:
    study = fk.new_study(["maximize"])
    fk.add_trial(study, curve=[0.90, 0.93], attrs={"stop_reason": "time_cap"})
    fk.add_trial(study, curve=[0.95, 0.97, 0.96], attrs={"continues": 0, "resumed_epochs": 2})
    cfg = best_config(study, None)
    assert cfg["trial_number"] == 1 and cfg["continues"] == 0
    assert cfg["epochs"] == 5 and cfg["best_epoch"] == 4  # 2 + 3 epochs; its second is the fourth


def test_best_config_prefers_run_file(tmp_path: Path) -> None:
    fk.write_run_files(tmp_path)
    cfg = best_config(fk.full_study(), tmp_path)
    assert cfg["trial_number"] == 3 and cfg["test_accuracy"] is not None
    other = best_config(fk.full_study(name="other"), tmp_path)  # file of another study is ignored
    assert other["study"] == "other" and other["test_accuracy"] is None


def test_best_config_multi_objective_is_best_accuracy_on_pareto_front(tmp_path: Path) -> None:
    study = fk.new_study(["maximize", "minimize"])
    fk.add_trial(study, curve=[0.90], attrs={"params": 1000})
    fk.add_trial(study, curve=[0.95], attrs={"params": 5000})
    fk.add_trial(study, curve=[0.95], attrs={"params": 9000})  # dominated by trial 1
    fk.add_trial(study, curve=[0.80], attrs={"params": 2000})  # dominated by trial 0
    cfg = best_config(study, None)
    assert cfg["trial_number"] == 1 and cfg["objectives"] == {"val_accuracy": 0.95, "params": 5000}


def test_best_config_without_complete_trial_raises_clearly() -> None:
    study = fk.new_study(name="fresh")
    fk.add_trial(study, TrialState.PRUNED, curve=[0.1])
    with pytest.raises(ValueError, match="'fresh' has no complete trial"):
        best_config(study, None)


def test_format_config_round_trips() -> None:
    import numpy as np

    cfg = {
        "study": "s",
        "hyperparameters": {"b": np.int64(3), "lr": np.float32(0.5), "aug": True},
        "val_accuracy": 0.9,
        "list": (1, 2),
    }
    as_json = format_config(cfg, "json")
    assert json.loads(as_json)["hyperparameters"] == {"b": 3, "lr": 0.5, "aug": True} and as_json.endswith("\n")
    as_yaml = format_config(cfg, "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    assert as_yaml.index("study") < as_yaml.index("hyperparameters"), "key order kept"
    with pytest.raises(ValueError, match="toml"):
        format_config(cfg, "toml")


def test_studies_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'all.db'}"
    fk.full_study(n=4, storage=url, name="zeta")
    study = fk.new_study(["maximize", "minimize"], storage=url, name="alpha", space="cnn")
    fk.add_trial(study, curve=[0.91], attrs={"params": 12345})
    fk.new_study(storage=url, name="empty")
    table = studies_table(url)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["study", "space", "objectives"]
    assert [line.split()[0] for line in lines[2:]] == ["alpha", "empty", "zeta"]
    alpha = lines[2].split()
    assert alpha[1:8] == ["cnn", "val_accuracy+params", "1", "0", "0", "0", "0"] and "0.91" in lines[2]
    zeta = lines[4].split()
    assert zeta[3:8] == ["2", "0", "0", "1", "1"]
    assert "—" in lines[3]


def test_studies_table_empty_and_missing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    import optuna

    optuna.storages.RDBStorage(url)  # creates the schema only
    assert studies_table(url).startswith("no studies in sqlite:///")
    with pytest.raises(ValueError, match="does not exist"):
        studies_table(f"sqlite:///{tmp_path / 'absent.db'}")
    assert not (tmp_path / "absent.db").exists()


def test_results_never_imports_training_code() -> None:
    # search.schema (the contract, Optuna and numpy only) is the one part of search results may load,
    # with the URL redactor it re-exports (SQLAlchemy only).
    code = (
        "import sys, results, results.dashboard, results.export, results.figures;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'keras_tuner', 'spaces', 'search') "
        "and m not in ('search', 'search.schema', 'search.redaction'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
