"""``--workers K``: K processes on this machine sharing one study through its storage.

Optuna's storage is the scheduler: each worker asks the study for its next trial, so workers can
also be started by hand on other machines against the same ``--storage``. Here the parent creates
the study first (so the named points are enqueued once), starts the workers, waits, and then does
the final retrain itself. With GPUs, workers are spread over the devices round-robin
(``CUDA_VISIBLE_DEVICES``); several on one GPU share it with memory growth on.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import optuna

from .config import SearchConfig
from .progress import Progress
from .runner import SearchOutcome, prepare_data
from .study import count_finished, make_storage, open_study, settle_target

RUN_SEARCH = Path(__file__).resolve().parent.parent / "run_search.py"


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


def worker_argv(argv: list[str], index: int) -> list[str]:
    """The parent's own arguments, as one worker that neither retrains nor writes dashboards."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--dashboard-every"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--dashboard-every=")) or arg == "--no-retrain":
            continue
        out.append(arg)
    return out + ["--workers", "1", "--no-retrain", "--dashboard-every", "0", "--worker-index", str(index)]


def worker_env(index: int, n_gpus: int) -> dict[str, str]:
    env = dict(os.environ, TF_FORCE_GPU_ALLOW_GROWTH="true", XLA_PYTHON_CLIENT_PREALLOCATE="false",
               PYTHONUNBUFFERED="1")
    if n_gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(index % n_gpus)
    return env


def run_workers(cfg: SearchConfig, progress: Progress) -> SearchOutcome:
    dataset = prepare_data(cfg, progress)
    study = open_study(cfg, make_storage(cfg), dataset.content_hash)
    target = settle_target(study, cfg.trials)
    n_gpus = visible_gpus()
    argv = list(cfg.extra.get("argv", []))
    if not argv:
        raise ValueError("run_workers needs the command-line arguments in cfg.extra['argv']")
    progress.say(f"starting {cfg.workers} workers on study {cfg.study_name!r} (target {target} trials"
                 + (f", {n_gpus} GPUs" if n_gpus else ", CPU") + ")")
    # Own session: a Ctrl-C in the terminal reaches only this process, which passes exactly
    # one SIGINT on; a second one would make the workers stop at once instead of after a batch.
    procs = [subprocess.Popen([sys.executable, str(RUN_SEARCH), *worker_argv(argv, i)],
                              env=worker_env(i, n_gpus), start_new_session=True) for i in range(cfg.workers)]
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
        progress.say(f"warning: worker exit codes {codes}")
    study = optuna.load_study(study_name=cfg.study_name, storage=make_storage(cfg))
    finished = count_finished(study)
    reason = "target" if finished >= target else "timeout"
    if all(code != 0 for code in codes) and finished < target:
        reason = "failures"
    return SearchOutcome(study=study, dataset=dataset, stop_reason=reason, finished=finished)

