"""Settings travel with the study: ``retrain`` and ``join`` run as the search was started."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from support.postgres import PG_URL, needs_pg

from search.config import SearchConfig
from search.engine.loop import run_search
from search.engine.study import load_space, make_storage, open_study, settle_target
from search.schema import FINISHED, StudyKey

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "run_search.py")]


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]


def _cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([*RUN, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_retrain_later_uses_the_searched_split_and_settings(tiny_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "no-valid"
    data.mkdir()
    for name in ("train.p", "test.p"):
        shutil.copy(tiny_data / name, data / name)
    cfg = SearchConfig(
        data_dir=data,
        space="lenet",
        trials=1,
        epochs=1,
        valid_fraction=0.3,
        patience=1,
        retrain=False,
        study="vf",
        out=tmp_path,
        named_points=False,
        dashboard_every=0,
        export=(),
        command="python run_search.py search ...",
    )
    run_search(cfg)  # as `search --valid-fraction 0.3 --patience 1 --no-retrain` stores it
    storage = f"sqlite:///{tmp_path / 'vf' / 'study.db'}"
    stored = optuna.load_study(study_name="vf", storage=storage).user_attrs[StudyKey.CONFIG]
    assert stored["valid_fraction"] == 0.3 and stored["patience"] == 1 and stored["retrain"] is False

    again = _cli("retrain", "--study", "vf", "--out", str(tmp_path), "--final-epochs", "1")
    assert again.returncode == 0, again.stderr[-2000:]
    study = optuna.load_study(study_name="vf", storage=storage)
    config = json.loads((tmp_path / "vf" / "best_config.json").read_text())
    assert config["data_hash"] == study.user_attrs[StudyKey.DATA_HASH]  # the same 30% split of train.p
    assert config["pool"]["retrained"] == 1
    assert re.search(r"trial \d+ retrained: val_acc [\d.]+ after 1 epochs", again.stdout)  # the override
    assert "changed on this command line: final_epochs None -> 1 (for this run only)" in again.stdout
    log = study.user_attrs[StudyKey.OVERRIDES]
    assert log[-1]["changes"] == {"final_epochs": [None, 1]} and log[-1]["stored"] is False
    assert study.user_attrs[StudyKey.CONFIG] == stored  # a retrain does not change the study's settings


def test_join_never_extends_a_study_that_reached_its_target(tmp_path: Path) -> None:
    cfg = SearchConfig(data_dir=tmp_path, space="lenet", trials=1, study="done", out=tmp_path, named_points=False)
    study = open_study(cfg, make_storage(cfg), "hash", load_space(cfg.space))
    settle_target(study, cfg.trials)
    study.add_trial(optuna.trial.create_trial(value=0.5))
    before = len(study.trials)
    for _ in range(2):  # a restarted pod, twice
        joined = _cli("join", "--study", "done", "--out", str(tmp_path), timeout=120)
        assert joined.returncode == 0, joined.stderr[-2000:]
        assert "has reached its target (1 of 1 trials finished): nothing to do" in joined.stdout
    assert len(optuna.load_study(study_name="done", storage=cfg.storage_url).trials) == before


def test_retrain_refuses_data_other_than_the_studys(tiny_data: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(data_dir=tiny_data, space="lenet", trials=1, study="mixed", out=tmp_path)
    open_study(cfg, make_storage(cfg), "hash-of-other-data", load_space(cfg.space))
    result = _cli("retrain", "--study", "mixed", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "differs from the data study 'mixed' was started with (hash hash-of-other-data" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "mixed" / "best_model.keras").exists()


def test_join_refuses_a_study_that_does_not_exist(tmp_path: Path) -> None:
    result = _cli("join", "--study", "ghost", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2 and "no study 'ghost'" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "ghost").exists()


@needs_pg
@pytest.mark.slow
def test_join_adds_trials_to_a_running_postgres_study_with_its_settings(tiny_data: Path, tmp_path: Path) -> None:
    name = f"join-{uuid.uuid4().hex[:8]}"
    # One storage for all the polls, opened before the search starts: no race to create the tables.
    storage = optuna.storages.RDBStorage(PG_URL)
    first = subprocess.Popen(
        [
            *RUN,
            "search",
            "--data-dir",
            str(tiny_data),
            "--space",
            "lenet",
            "--trials",
            "5",
            "--epochs",
            "1",
            "--pruner",
            "none",
            "--study",
            name,
            "--storage",
            PG_URL,
            "--out",
            str(tmp_path),
            "--no-retrain",
            "--heartbeat",
            "1",
            "--dashboard-every",
            "0",
        ],
        cwd=ROOT,
        stdout=open(tmp_path / "first.log", "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    study = None
    while time.monotonic() < deadline:  # join once the study is running
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        if StudyKey.CONFIG in study.user_attrs and _finished(study):
            break
    assert study is not None and first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
    joined = subprocess.run(
        [*RUN, "join", "--study", name, "--storage", PG_URL, "--out", str(tmp_path / "pod")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    first.wait(timeout=400)
    assert joined.returncode == 0 and first.returncode == 0, joined.stdout[-2000:] + joined.stderr[-2000:]
    assert "changed on this command line" not in joined.stdout
    study = optuna.load_study(study_name=name, storage=PG_URL)
    finished = _finished(study)
    assert len(finished) == 5  # the first worker's --trials is the total
    assert len({t.user_attrs["worker"] for t in finished}) == 2, "the joined worker ran trials too"
    assert all(t.user_attrs["epochs"] == 1 for t in finished)  # the first one's --epochs 1, not the default
    assert study.user_attrs[StudyKey.CONFIG]["epochs"] == 1
