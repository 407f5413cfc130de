"""Run a check script in a child process under the JAX backend (the test process runs TensorFlow).

The child takes half a minute or more, and xdist may run a module's tests on several workers; the
first worker to ask runs it and the others read its answer from the run's shared temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 400


def run_jax_checks(script: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The child's one JSON line of answers; one child runs every check, so JAX starts once."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # one folder per test run
    answer_file, lock = shared / f"{script.stem}.json", shared / f"{script.stem}.lock"
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
    except FileExistsError:  # another worker runs the child: wait for its answer
        deadline = time.monotonic() + TIMEOUT_S + 60
        while not answer_file.exists() and time.monotonic() < deadline:
            time.sleep(1.0)
    else:
        env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
        cache = tmp_path_factory.mktemp("xla_cache")
        done = subprocess.run(
            [sys.executable, str(script), str(data_dir), str(cache)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        lines = done.stdout.strip().splitlines()
        answer = json.loads(lines[-1]) if done.returncode == 0 and lines else {"error": done.stderr[-3000:]}
        partial = answer_file.with_suffix(".tmp")
        partial.write_text(json.dumps(answer))
        partial.replace(answer_file)
    assert answer_file.exists(), f"no answer from {script.name} within {TIMEOUT_S + 60} s"
    answer = json.loads(answer_file.read_text())
    assert "error" not in answer, answer.get("error")
    assert answer["backend"] == "jax"
    return answer
