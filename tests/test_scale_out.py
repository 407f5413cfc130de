"""Several workers on one study: PostgreSQL across processes, --workers on SQLite, dead workers."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, str(ROOT / "run_search.py")]
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> str | None:
    try:
        import sqlalchemy as sa

        with sa.create_engine(PG_URL).connect() as conn:
            conn.execute(sa.text("select 1"))
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}: {str(exc)[:80]})"


PG_SKIP = _postgres_reachable()
needs_pg = pytest.mark.skipif(PG_SKIP is not None, reason=PG_SKIP or "")


def _worker_args(data: Path, out: Path, study: str, storage: str, trials: int = 6) -> list[str]:
    return ["search", "--data-dir", str(data), "--space", "lenet", "--trials", str(trials), "--epochs", "1",
            "--pruner", "none", "--study", study, "--storage", storage, "--out", str(out), "--no-retrain",
            "--heartbeat", "1", "--dashboard-every", "0"]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([*RUN, *args], cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


@needs_pg
def test_two_postgres_workers_share_the_target(tiny_data: Path, tmp_path: Path) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    procs = [_start(_worker_args(tiny_data, tmp_path, name, PG_URL), log) for log in logs]
    codes = [p.wait(timeout=400) for p in procs]
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0], outputs
    study = optuna.load_study(study_name=name, storage=PG_URL)
    numbers = [t.number for t in study.trials]
    assert len(_finished(study)) == 6
    assert len(numbers) == len(set(numbers))
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    bests = {re.findall(r"best trial: #(\d+)", text)[-1] for text in outputs}
    assert len(bests) == 1 and int(bests.pop()) == max(
        _finished(study), key=lambda t: (t.values[0], -t.number)).number


@needs_pg
def test_killed_worker_trial_fails_and_is_retried(tiny_data: Path, tmp_path: Path) -> None:
    name = f"pg-kill-{uuid.uuid4().hex[:8]}"
    args = _worker_args(tiny_data, tmp_path, name, PG_URL, trials=3)
    # Long trials (no early stop), so that the victim is surely mid-trial when it is killed.
    args[args.index("--epochs") + 1] = "12"
    args += ["--patience", "12"]
    victim = _start(args, tmp_path / "victim.log")
    storage = PG_URL
    deadline = time.monotonic() + 240
    victim_trial = None
    while time.monotonic() < deadline and victim_trial is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING
                   and t.user_attrs.get("worker", "").endswith(f":{victim.pid}")]
        if running and _finished(study) and running[0].intermediate_values:
            victim_trial = running[0].number
    assert victim_trial is not None, (tmp_path / "victim.log").read_text()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    survivor = _start(args, tmp_path / "survivor.log")
    assert survivor.wait(timeout=400) == 0, (tmp_path / "survivor.log").read_text()
    study = optuna.load_study(study_name=name, storage=storage)
    killed = study.trials[victim_trial]
    assert killed.state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim_trial]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert len(_finished(study)) == 3
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_worker_with_different_data_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    (other / "valid.p").write_bytes((tiny_data / "train.p").read_bytes())
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = subprocess.run([*RUN, *_worker_args(tiny_data, tmp_path, "mix", storage, trials=1)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([*RUN, *_worker_args(other, tmp_path, "mix", storage, trials=1)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    assert "differs from the data study 'mix' was started with" in second.stderr
    assert second.stderr.count("\n") == 1


def test_workers_flag_on_sqlite(tiny_data: Path, tmp_path: Path) -> None:
    result = subprocess.run([*RUN, "search", "--data-dir", str(tiny_data), "--space", "lenet", "--trials", "4",
                             "--epochs", "1", "--pruner", "none", "--study", "local2", "--out", str(tmp_path),
                             "--workers", "2", "--no-retrain"], cwd=ROOT, capture_output=True, text=True,
                            timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    study = optuna.load_study(study_name="local2", storage=f"sqlite:///{tmp_path / 'local2' / 'study.db'}")
    assert len(_finished(study)) == 4
    workers = {t.user_attrs.get("worker") for t in _finished(study)}
    assert len(workers) == 2  # both processes ran trials
    assert "starting 2 workers" in result.stdout
