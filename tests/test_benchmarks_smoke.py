"""The benchmark scripts answer ``--help`` (they import nothing heavy before parsing arguments)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("throughput.py", "overhead.py", "memory.py", "versus.py", "gpu.py", "gpu.sh")


def test_every_benchmark_script_answers_help() -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    for name in SCRIPTS:
        script = ROOT / "benchmarks" / name
        runner = ["bash"] if name.endswith(".sh") else [sys.executable]
        done = subprocess.run([*runner, str(script), "--help"], capture_output=True, text=True, timeout=60,
                              cwd=ROOT, env=env)
        assert done.returncode == 0, f"{name} --help failed:\n{done.stderr}"
        assert "usage:" in done.stdout, f"{name} --help printed no usage:\n{done.stdout}"
