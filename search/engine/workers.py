"""``--workers K``: K processes on this machine sharing one study through its storage.

Optuna's storage is the scheduler: each worker asks the study for its next trial, so workers can
also be started on other machines against the same ``--storage`` (``run_search.py join``). Here the
parent creates the study first (so the named points are enqueued once and the settings stored),
starts the workers with the serialised settings, waits, and then does the final retrain itself. With
GPUs, workers are spread over the devices round-robin (``CUDA_VISIBLE_DEVICES``); several on one GPU
share it with memory growth on.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
from collections.abc import Callable

from ..config import SearchConfig
from ..schema import SearchStop, count_finished
from .events import SearchEvents
from .loop import SearchOutcome
from .run import Run
from .study import settle_target


def visible_gpus() -> int:
    """Number of NVIDIA GPUs this process may use (0 without nvidia-smi)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        ids = [d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() and d.strip() != "-1"]
        return len(ids)
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def worker_env(index: int, n_gpus: int, workers: int = 1) -> dict[str, str]:
    """Worker ``index``'s environment: its GPU (round robin), and when several workers share one GPU
    under JAX, an equal share of its memory each (``XLA_PYTHON_CLIENT_MEM_FRACTION``; JAX would
    otherwise let the first worker take 75%). A fraction the user set is kept."""
    env = dict(
        os.environ, TF_FORCE_GPU_ALLOW_GROWTH="true", XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1"
    )
    if n_gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(index % n_gpus)
        sharing = -(-workers // n_gpus)  # workers on the busiest GPU
        if sharing > 1:
            env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / sharing:.2f}")
    return env


# (settings, index) -> (argv, text for the worker's standard input: its settings, passwords included)
WorkerCommand = Callable[[SearchConfig, int], tuple[list[str], str]]


def _start(command: tuple[list[str], str], env: dict[str, str]) -> subprocess.Popen:
    """One worker process, its settings written to its standard input and the pipe closed."""
    argv, settings = command
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(settings)
    return proc


def run_workers(run: Run, worker_command: WorkerCommand, events: SearchEvents) -> SearchOutcome:
    """Start ``cfg.workers`` processes on the run's study (opened, named points and warm starts
    enqueued), wait for them all.

    ``worker_command(settings, index)`` is the caller's way to start one worker: its arguments and
    the serialised settings, which go to its standard input, a private pipe, since a command line is
    visible to every local user (the command line passes ``python -m cli.worker``); each worker
    gets ``cfg`` as it is, never retrains and never writes dashboards.
    """
    cfg, dataset, study = run.cfg, run.dataset, run.study
    target = settle_target(study, cfg.trials)
    n_gpus = visible_gpus()
    child = dataclasses.replace(cfg, workers=1, retrain=False, dashboard_every=0)
    events.say(
        f"starting {cfg.workers} workers on study {cfg.study_name!r} (target {target} trials"
        + (f", {n_gpus} GPUs" if n_gpus else ", CPU")
        + ")"
    )
    # Own session: a Ctrl-C in the terminal reaches only this process, which passes exactly
    # one SIGINT on; a second one would make the workers stop at once instead of after a batch.
    procs = [_start(worker_command(child, i), worker_env(i, n_gpus, cfg.workers)) for i in range(cfg.workers)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    if any(codes):
        events.say(f"warning: worker exit codes {codes}")
    finished = count_finished(study.get_trials(deepcopy=False))
    reason = SearchStop.TARGET if finished >= target else SearchStop.TIMEOUT
    if all(code != 0 for code in codes) and finished < target:
        reason = SearchStop.FAILURES
    return SearchOutcome(study=study, dataset=dataset, stop_reason=reason, finished=finished)
