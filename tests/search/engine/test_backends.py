"""The smallest end-to-end search under every Keras backend that is installed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
OPTIONAL_BACKENDS = {"torch"}  # tensorflow is a dependency and jax is in the test extra: they must run


@pytest.mark.parametrize("backend", sorted(BACKEND_PACKAGES))
def test_smallest_search_runs_under_backend(backend: str, tiny_data: Path, tmp_path: Path) -> None:
    if backend in OPTIONAL_BACKENDS and importlib.util.find_spec(BACKEND_PACKAGES[backend]) is None:
        pytest.skip(f"the {backend} backend is not installed (pip install {BACKEND_PACKAGES[backend]})")
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_search.py"),
            "search",
            "--data-dir",
            str(tiny_data),
            "--space",
            "lenet",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--final-epochs",
            "1",
            "--out",
            str(tmp_path),
            "--study",
            "b",
            "--dashboard-every",
            "0",
            "--export",
            "",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
    config = json.loads((tmp_path / "b" / "best_config.json").read_text())
    # The tutorial LeNet once per member of the final model (the kept trial model and its retrain may
    # both be picked).
    assert config["backend"] == backend and config["params"] == 657_235 * len(config["final_model"]["members"])
    assert (tmp_path / "b" / "best_model.keras").exists()
