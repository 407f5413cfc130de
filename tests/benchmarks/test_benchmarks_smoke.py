"""The benchmark scripts answer ``--help`` (they import nothing heavy before parsing arguments);
the quick ones also run end to end on tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = (
    "throughput.py",
    "overhead.py",
    "memory.py",
    "versus.py",
    "versus_report.py",
    "gpu.py",
    "gpu.sh",
    "space_health.py",
    "precision.py",
    "default_versus_commit.py",
    "point_cost.py",
)


def test_every_benchmark_script_answers_help() -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    for name in SCRIPTS:
        script = ROOT / "benchmarks" / name
        runner = ["bash"] if name.endswith(".sh") else [sys.executable]
        done = subprocess.run(
            [*runner, str(script), "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
        )
        assert done.returncode == 0, f"{name} --help failed:\n{done.stderr}"
        assert "usage:" in done.stdout, f"{name} --help printed no usage:\n{done.stdout}"


def test_space_health_runs_and_reports_the_guard(tiny_data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "space_health.py"),
            "--data-dir",
            str(tiny_data),
            "--space",
            "lenet",
            "--points",
            "2",
            "--epochs",
            "3",
            "--max-train",
            "200",
            "--max-valid",
            "100",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no-learning guard: would stop" in done.stdout and "optimizer=" in done.stdout
    results = json.loads(next(tmp_path.glob("space_health-*.json")).read_text())["results"]
    assert len(results["points"]) == 2
    assert all(len(p["val_curve"]) <= 3 and 0 <= p["guard_epoch"] <= 3 for p in results["points"])


def test_overhead_times_every_trial_through_the_objective_seam(tiny_data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "overhead.py"),
            "--data-dir",
            str(tiny_data),
            "--trials",
            "3",
            "--max-train",
            "200",
            "--max-valid",
            "100",
            "--quiet",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(next(tmp_path.glob("overhead-*.json")).read_text())["results"]
    assert [r["number"] for r in results["trials"]] == [0, 1, 2]
    for row in results["trials"]:  # the probe saw each trial's fit: its numbers are real, in order
        assert 0 < row["setup"] < row["start_to_first_batch"] < row["objective_seconds"], row


def test_point_cost_times_an_epoch_and_fits_the_factor(tiny_data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "point_cost.py"),
            "--data-dir",
            str(tiny_data),
            "--models",
            "lenet:tutorial",
            "--precision",
            "float32",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(next(tmp_path.glob("point_cost-*.json")).read_text())["results"]
    assert [r["model"] for r in results] == ["lenet:tutorial"]
    assert results[0]["macs"] > 1e6 and results[0]["seconds"] > 0 and results[0]["factor"] > 0
