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
from optuna.trial import TrialState
from support.postgres import PG_URL, needs_pg
from support.study_db import finished_workers

from search.schema import FINISHED

ROOT = Path(__file__).resolve().parents[3]
RUN = [sys.executable, str(ROOT / "run_search.py")]


def _worker_args(data: Path, out: Path, study: str, storage: str, trials: int = 6) -> list[str]:
    return [
        "search",
        "--data-dir",
        str(data),
        "--space",
        "lenet",
        "--trials",
        str(trials),
        "--epochs",
        "1",
        "--pruner",
        "none",
        "--study",
        study,
        "--storage",
        storage,
        "--out",
        str(out),
        "--no-retrain",
        "--heartbeat",
        "1",
        "--dashboard-every",
        "0",
    ]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([*RUN, *args], cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _finished_in(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.state in FINISHED]


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return _finished_in(study.get_trials(deepcopy=False))


def _table(trials: list[optuna.trial.FrozenTrial]) -> str:
    """One line per trial, for failure messages."""
    return "\n".join(
        f"#{t.number} {t.state.name} worker={t.user_attrs.get('worker')} "
        f"epochs={len(t.intermediate_values)} {t.system_attrs}"
        for t in trials
    )


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
    assert len(bests) == 1 and int(bests.pop()) == max(_finished(study), key=lambda t: (t.values[0], -t.number)).number


@needs_pg
def test_killed_worker_trial_fails_and_is_retried(tiny_data: Path, tmp_path: Path) -> None:
    name = f"pg-kill-{uuid.uuid4().hex[:8]}"
    args = _worker_args(tiny_data, tmp_path, name, PG_URL, trials=3)
    # Long trials (no early stop), so that the victim is surely mid-trial when it is killed.
    args[args.index("--epochs") + 1] = "30"
    args += ["--patience", "30"]
    # One storage for all the polls, opened before the victim starts (no race to create the tables):
    # a new URL each time would open a connection pool per poll, and five polls a second use up the
    # server's connections within a minute.
    storage = optuna.storages.RDBStorage(PG_URL)
    victim = _start(args, tmp_path / "victim.log")
    deadline = time.monotonic() + 240
    victim_trial = None
    while time.monotonic() < deadline and victim_trial is None and victim.poll() is None:
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        # One snapshot for both checks: with two reads, a trial that ended between them looked
        # both running (first read) and finished (second), and the victim was killed after it.
        trials = study.get_trials(deepcopy=False)
        running = [
            t
            for t in trials
            if t.state == TrialState.RUNNING and t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
        ]
        if running and _finished_in(trials) and running[0].intermediate_values:  # mid-training
            victim_trial = running[0].number
            seen = _table(trials)
    assert victim_trial is not None, (tmp_path / "victim.log").read_text()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # The survivor finishes the study on short trials: the retried configuration is the same, its
    # epoch count is a setting the rerun overrides.
    survivor = _start([*args, "--epochs", "2", "--patience", "2"], tmp_path / "survivor.log")
    assert survivor.wait(timeout=400) == 0, (tmp_path / "survivor.log").read_text()
    study = optuna.load_study(study_name=name, storage=storage)
    killed = study.trials[victim_trial]
    logs = "\n".join((tmp_path / f"{who}.log").read_text()[-3000:] for who in ("victim", "survivor"))
    assert killed.state == TrialState.FAIL, f"seen when killed:\n{seen}\nnow:\n{_table(study.trials)}\n{logs}"
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
    first = subprocess.run(
        [*RUN, *_worker_args(tiny_data, tmp_path, "mix", storage, trials=1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr
    second = subprocess.run(
        [*RUN, *_worker_args(other, tmp_path, "mix", storage, trials=1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 2
    assert "differs from the data study 'mix' was started with" in second.stderr
    assert second.stderr.count("\n") == 1


def test_workers_flag_on_sqlite_stops_on_ctrl_c_and_resumes(tiny_data: Path, tmp_path: Path) -> None:
    args = [
        *RUN,
        "search",
        "--data-dir",
        str(tiny_data),
        "--space",
        "lenet",
        "--trials",
        "40",
        "--epochs",
        "1",
        "--pruner",
        "none",
        "--study",
        "local2",
        "--out",
        str(tmp_path),
        "--workers",
        "2",
        "--no-retrain",
    ]
    db = tmp_path / "local2" / "study.db"
    storage = f"sqlite:///{db}"
    parent = subprocess.Popen(args, cwd=ROOT, stdout=open(tmp_path / "first.log", "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    workers: set[str] = set()
    while time.monotonic() < deadline and len(workers) < 2 and parent.poll() is None:
        time.sleep(0.5)
        workers = finished_workers(db)  # read-only: a load_study here raced the parent's table set-up
    parent.send_signal(signal.SIGINT)  # as a terminal's Ctrl-C would, to the parent only
    parent.wait(timeout=120)
    first = (tmp_path / "first.log").read_text()
    assert parent.returncode == 130, first[-3000:]
    assert "starting 2 workers" in first and first.count("resume with") == 1, first[-3000:]
    study = optuna.load_study(study_name="local2", storage=storage)
    assert len({t.user_attrs.get("worker") for t in _finished(study)}) == 2  # both processes ran trials
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    # Every trial the signal cut short is queued again; a worker caught between trials has none.
    interrupted = {t.number for t in study.trials if t.user_attrs.get("stop_reason") == "interrupted"}
    requeued = [t for t in study.trials if t.state == TrialState.WAITING]
    assert {t.user_attrs.get("requeued_from") for t in requeued} == interrupted
    # Resume in one process: the requeued configurations run first and the study reaches its target.
    target = len(_finished(study)) + len(requeued) + 1
    args[args.index("40")] = str(target)
    args[args.index("--workers") + 1] = "1"
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    study = optuna.load_study(study_name="local2", storage=storage)
    assert len(_finished(study)) == target
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
